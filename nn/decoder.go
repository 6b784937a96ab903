package nn

import (
	"fmt"
	"math/rand/v2"
)

// TransformerDecoderLayer is torch.nn.TransformerDecoderLayer(d, heads, ff,
// dropout=p, batch_first=True) with its defaults: ReLU activation and
// post-norm (norm_first=False), i.e. (Vaswani et al. 2017, §3.1, §3.3)
//
//	x = norm1(x + drop(self_attn(x, x, x)))
//	x = norm2(x + drop(multihead_attn(x, memory, memory)))
//	x = norm3(x + drop(linear2(drop(relu(linear1(x)))))).
//
// The self-attention runs under an optional target mask (CausalMask for an
// autoregressive decoder, none for a non-autoregressive one); the
// cross-attention attends over the encoder output memory [B,S,d], whose
// length S need not equal the target length T. As in PyTorch, both
// attention blocks also apply dropout p to their attention weights, and
// dropout acts only in training executables; its masks come from
// DropoutMask, so training runs with p > 0 differ from PyTorch's only in
// the noise drawn.
//
// For incremental decoding, MemoryKV projects the memory once per source
// and ForwardCached runs new positions against cached self-attention keys
// and values; Forward is ForwardCached with an empty cache.
type TransformerDecoderLayer struct {
	// SelfAttn is prefix.self_attn, CrossAttn prefix.multihead_attn.
	SelfAttn, CrossAttn *MultiheadAttention
	// Linear1 [ff,d] and Linear2 [d,ff] are prefix.linear1, prefix.linear2.
	Linear1, Linear2 *Linear
	// Norm1, Norm2, Norm3 follow the self-attention, the cross-attention and
	// the feed-forward block (prefix.norm1, .norm2, .norm3).
	Norm1, Norm2, Norm3 *LayerNorm
	Dropout             float32
}

// NewTransformerDecoderLayer adds the parameters prefix.self_attn.*,
// prefix.multihead_attn.*, prefix.linear1.*, prefix.linear2.*,
// prefix.norm1.*, prefix.norm2.* and prefix.norm3.* to ps, in PyTorch's
// state_dict order.
func NewTransformerDecoderLayer(ps *ParamSet, prefix string, d, heads, ff int, dropout float32) *TransformerDecoderLayer {
	if dropout < 0 || dropout >= 1 {
		panic(fmt.Sprintf("nn: TransformerDecoderLayer(%s): dropout %v outside [0,1)", prefix, dropout))
	}
	selfAttn := NewMultiheadAttention(ps, joinName(prefix, "self_attn"), d, heads)
	selfAttn.Dropout = dropout
	crossAttn := NewMultiheadAttention(ps, joinName(prefix, "multihead_attn"), d, heads)
	crossAttn.Dropout = dropout
	return &TransformerDecoderLayer{
		SelfAttn:  selfAttn,
		CrossAttn: crossAttn,
		Linear1:   NewLinear(ps, joinName(prefix, "linear1"), d, ff),
		Linear2:   NewLinear(ps, joinName(prefix, "linear2"), ff, d),
		Norm1:     NewLayerNorm(ps, joinName(prefix, "norm1"), d),
		Norm2:     NewLayerNorm(ps, joinName(prefix, "norm2"), d),
		Norm3:     NewLayerNorm(ps, joinName(prefix, "norm3"), d),
		Dropout:   dropout,
	}
}

// Init applies PyTorch's defaults to every sub-module (the layer itself
// adds no re-initialisation; nn.Transformer's xavier re-initialisation is
// the caller's business).
func (l *TransformerDecoderLayer) Init(rng *rand.Rand) {
	l.SelfAttn.Init(rng)
	l.CrossAttn.Init(rng)
	l.Linear1.Init(rng)
	l.Linear2.Init(rng)
	l.Norm1.Init(rng)
	l.Norm2.Init(rng)
	l.Norm3.Init(rng)
}

// DecoderMasks are the optional additive masks of a decoder layer, PyTorch's
// tgt_mask, memory_mask, tgt_key_padding_mask and memory_key_padding_mask
// (0 keeps an entry, CausalMaskValue drops it; see AttentionBias). A nil
// field means no mask. With T target positions (in ForwardCached, the new
// ones), P cached positions and S memory positions:
type DecoderMasks struct {
	// Tgt is the self-attention mask [T,P+T]: g.Const(CausalMask(T), T, T)
	// in Forward for an autoregressive decoder, nil for a non-autoregressive
	// one, and nil for a single new position in ForwardCached (it may see
	// every earlier position).
	Tgt Tensor
	// Memory is the cross-attention mask [T,S].
	Memory Tensor
	// TgtKeyPadding [B,P+T] drops padded target keys (KeyPaddingMask).
	TgtKeyPadding Tensor
	// MemoryKeyPadding [B,S] drops padded memory keys, e.g. the padding of
	// sources of different lengths (KeyPaddingMask).
	MemoryKeyPadding Tensor
}

// Forward applies the layer to the target x [B,T,d] given the memory
// [B,S,d]; the result is [B,T,d].
func (l *TransformerDecoderLayer) Forward(g Graph, x, memory Tensor, masks DecoderMasks) Tensor {
	memK, memV := l.MemoryKV(g, memory)
	out, _, _ := l.ForwardCached(g, x, nil, nil, memK, memV, masks)
	return out
}

// MemoryKV returns the cross-attention keys and values of memory [B,S,d],
// each [B·heads,S,d/heads]: an incremental decoder computes them once per
// source and passes them to every ForwardCached step.
func (l *TransformerDecoderLayer) MemoryKV(g Graph, memory Tensor) (k, v Tensor) {
	return l.CrossAttn.ProjectKV(g, memory)
}

// ForwardCached applies the layer to T new target positions x [B,T,d] that
// follow P earlier positions, whose self-attention keys and values pastK,
// pastV [B·heads,P,d/heads] come from earlier calls (both nil when P = 0),
// attending over the memory's keys and values memK, memV from MemoryKV.
// It returns the output [B,T,d] and the new positions' self-attention keys
// and values k, v [B·heads,T,d/heads], which the caller appends to its
// cache. Run position by position from an empty cache, it computes what
// Forward computes under the causal mask.
func (l *TransformerDecoderLayer) ForwardCached(g Graph, x, pastK, pastV, memK, memV Tensor, masks DecoderMasks) (out, k, v Tensor) {
	checkRank("TransformerDecoderLayer", x, 3)
	if (pastK == nil) != (pastV == nil) {
		panic("nn: TransformerDecoderLayer.ForwardCached: pastK and pastV must both be set or both nil")
	}
	q, k, v := l.SelfAttn.Project(g, x)
	keys, values := k, v
	if pastK != nil {
		keys, values = g.Concat(1, pastK, k), g.Concat(1, pastV, v)
	}
	attn := l.SelfAttn.Attend(g, q, keys, values, masks.Tgt, masks.TgtKeyPadding)
	x = l.Norm1.Forward(g, g.Add(x, l.drop(g, attn)))
	cross := l.CrossAttn.Attend(g, l.CrossAttn.ProjectQuery(g, x), memK, memV, masks.Memory, masks.MemoryKeyPadding)
	x = l.Norm2.Forward(g, g.Add(x, l.drop(g, cross)))
	ff := l.Linear2.Forward(g, l.drop(g, g.ReLU(l.Linear1.Forward(g, x))))
	return l.Norm3.Forward(g, g.Add(x, l.drop(g, ff))), k, v
}

func (l *TransformerDecoderLayer) drop(g Graph, x Tensor) Tensor {
	return maybeDropout(g, x, l.Dropout)
}
