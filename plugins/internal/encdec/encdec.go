// Package encdec holds what arbench's encoder–decoder plugins share (the
// autoregressive transformer-s2s, the non-autoregressive nar and their
// hybrid): padding ragged sources into feeds and the Transformer encoder
// over them (Vaswani et al. 2017, §3.1: token embedding plus learned
// positions, then post-norm nn.TransformerEncoderLayer blocks).
//
// PyTorch twin of the encoder (state_dict names under the plugin's prefix):
//
//	self.src_embedding = nn.Embedding(V, d)
//	self.src_pos = nn.Embedding(context, d)
//	self.encoder = nn.TransformerEncoder(
//	    nn.TransformerEncoderLayer(d, heads, ff, dropout, batch_first=True), layers)
//	def encode(self, src, src_key_padding_mask):       # src [B,S]
//	    x = self.src_embedding(src) + self.src_pos(torch.arange(S))
//	    return self.encoder(x, src_key_padding_mask=src_key_padding_mask)
package encdec

import (
	"fmt"
	"math/rand/v2"

	"arbench/harness"
	"arbench/nn"
)

// Feed names of the encoder.
const (
	FeedSource     = "src"         // int [B*S] source tokens, SourcePad after each row's end
	FeedSourcePad  = "src_padding" // float [B,S] additive key padding mask (nn.KeyPaddingMask)
	FeedSourcePool = "src_pool"    // float [B,1,S] 1/len at a row's tokens, 0 at its padding
)

// Sources is a batch of sources padded for the encoder.
type Sources struct {
	// B rows of S positions; S is at least 1.
	B, S int
	// IDs is the row-major [B*S] token matrix, SourcePad after each row.
	IDs []int
	// Lens are the rows' lengths.
	Lens []int
}

// PadSources pads ragged sources of content tokens (each at least one
// token, each in [0, vocab)) to the longest. width, when larger, is the
// padded length instead (so batches share a compiled shape).
func PadSources(sources [][]int, vocab, width int) (Sources, error) {
	if len(sources) == 0 {
		return Sources{}, fmt.Errorf("sources: empty batch")
	}
	s := Sources{B: len(sources), S: max(width, 1), Lens: make([]int, len(sources))}
	for i, row := range sources {
		if len(row) == 0 {
			return Sources{}, fmt.Errorf("sources: row %d is empty", i)
		}
		s.S = max(s.S, len(row))
	}
	s.IDs = make([]int, s.B*s.S)
	for i, row := range sources {
		for j, t := range row {
			if t < 0 || t >= vocab || t == harness.SourcePad {
				return Sources{}, fmt.Errorf("sources: token %d at row %d position %d is outside the content vocabulary [1,%d)", t, i, j, vocab)
			}
		}
		copy(s.IDs[i*s.S:], row)
		s.Lens[i] = len(row)
	}
	return s, nil
}

// SourceBucket is the multiple decoding rounds a batch's source width up
// to (Bucket), so that sources of nearby lengths share compiled shapes.
const SourceBucket = 8

// Bucket is the padded width for sources whose longest row has n tokens:
// n rounded up to a multiple of SourceBucket, at most context (and at
// least n). Padding never changes a row's result (the padding is masked),
// only how many executables decoding compiles.
func Bucket(sources [][]int, context int) int {
	n := 0
	for _, s := range sources {
		n = max(n, len(s))
	}
	return max(min((n+SourceBucket-1)/SourceBucket*SourceBucket, context), n)
}

// FromBatch returns the sources of a padded Batch.Source (rows cut at
// their first SourcePad).
func FromBatch(src [][]int) [][]int {
	out := make([][]int, len(src))
	for i, row := range src {
		out[i] = row[:harness.SourceLen(row)]
	}
	return out
}

// Feeds adds the encoder's inputs to f (allocating its maps when nil).
func (s Sources) Feeds(f *nn.Feeds) {
	if f.Ints == nil {
		f.Ints = map[string][]int{}
	}
	if f.Floats == nil {
		f.Floats = map[string][]float32{}
	}
	f.Ints[FeedSource] = s.IDs
	f.Floats[FeedSourcePad] = nn.KeyPaddingMask(s.Lens, s.S)
	pool := make([]float32, s.B*s.S)
	for i, n := range s.Lens {
		for j := range n {
			pool[i*s.S+j] = 1 / float32(n)
		}
	}
	f.Floats[FeedSourcePool] = pool
}

// Config is the encoder's shape.
type Config struct {
	Vocab, Dim, Heads, FF, Layers, Context int
	Dropout                                float32
}

// Encoder is the Transformer encoder over padded sources.
type Encoder struct {
	cfg    Config
	Emb    *nn.Embedding
	Pos    *nn.Embedding
	Layers []*nn.TransformerEncoderLayer
}

// NewEncoder adds src_embedding, src_pos and encoder.layers.{i} (under
// prefix, which may be empty) to ps and initialises them from rng with
// PyTorch's defaults.
func NewEncoder(ps *nn.ParamSet, prefix string, c Config, rng *rand.Rand) *Encoder {
	e := &Encoder{cfg: c}
	e.Emb = nn.NewEmbedding(ps, prefix+"src_embedding", c.Vocab, c.Dim)
	e.Emb.Init(rng)
	e.Pos = nn.NewEmbedding(ps, prefix+"src_pos", c.Context, c.Dim)
	e.Pos.Init(rng)
	for i := range c.Layers {
		l := nn.NewTransformerEncoderLayer(ps, fmt.Sprintf("%sencoder.layers.%d", prefix, i), c.Dim, c.Heads, c.FF, c.Dropout)
		l.Init(rng)
		e.Layers = append(e.Layers, l)
	}
	return e
}

// Inputs declares the encoder's feeds for B rows of S positions: the
// source ids, the key padding mask [B,S] and the pooling weights [B,1,S].
type Inputs struct {
	IDs, Padding, Pool nn.Tensor
	B, S               int
}

// Declare declares the feeds of Sources.Feeds on g.
func Declare(g nn.Graph, B, S int) Inputs {
	return Inputs{
		IDs:     g.Ints(FeedSource, B*S),
		Padding: g.Floats(FeedSourcePad, B, S),
		Pool:    g.Floats(FeedSourcePool, B, 1, S),
		B:       B, S: S,
	}
}

// Forward returns the encoder output (the decoder's memory) [B,S,d].
func (e *Encoder) Forward(g nn.Graph, in Inputs) nn.Tensor {
	if in.S > e.cfg.Context {
		panic(fmt.Sprintf("encdec: sources of %d positions exceed the context %d", in.S, e.cfg.Context))
	}
	x := g.Reshape(e.Emb.Forward(g, in.IDs), in.B, in.S, e.cfg.Dim)
	x = g.Add(x, g.Slice(g.Param(e.Pos.Weight), 0, 0, in.S))
	for _, l := range e.Layers {
		x = l.ForwardPadded(g, x, nil, in.Padding)
	}
	return x
}

// MeanPool returns the mean of memory [B,S,d] over each row's source
// tokens, [B,d] (the padding excluded).
func MeanPool(g nn.Graph, in Inputs, memory nn.Tensor) nn.Tensor {
	return g.Reshape(g.BatchMatMul(in.Pool, memory, false, false), in.B, memory.Shape()[2])
}
