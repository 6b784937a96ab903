package gorgonia

import (
	"fmt"

	"arbench/nn"
)

// Graphs of the shapes of the transformer and nar plugins' training steps,
// built through nn's public layers (the plugins themselves cannot be
// imported here), for the buffer-pooling tests and the memory benchmark.

// modelSize is a Transformer's size: batch b, t positions (the NAR's
// source and target both have t), width d, heads, layers, feed-forward
// width ff and vocabulary v.
type modelSize struct {
	b, t, d, heads, layers, ff, v int
}

// peerLarge is issue 13's large size (experiments/peer-large.yaml).
var peerLarge = modelSize{b: 16, t: 128, d: 512, heads: 8, layers: 4, ff: 2048, v: 256}

// memoryTestSize is small enough for a unit test and large enough that
// the attention scores and feed-forward activations dominate.
var memoryTestSize = modelSize{b: 4, t: 16, d: 32, heads: 4, layers: 2, ff: 64, v: 32}

// lmGraph is plugins/transformer's training step (lm.Base.Gradients with
// Model.Logits): E[x] + P[0:T], layers encoder layers under the causal
// mask, fc, and nn.CrossEntropy, with dropout p.
func lmGraph(s modelSize, p float32) (*nn.ParamSet, nn.Feeds, nn.BuildFunc) {
	ps := nn.NewParamSet()
	rng := nn.NewRNG(1)
	emb := nn.NewEmbedding(ps, "embedding", s.v, s.d)
	emb.Init(rng)
	pos := nn.NewEmbedding(ps, "pos", s.t, s.d)
	pos.Init(rng)
	var layers []*nn.TransformerEncoderLayer
	for i := range s.layers {
		l := nn.NewTransformerEncoderLayer(ps, fmt.Sprintf("encoder.layers.%d", i), s.d, s.heads, s.ff, p)
		l.Init(rng)
		layers = append(layers, l)
	}
	fc := nn.NewLinear(ps, "fc", s.d, s.v)
	fc.Init(rng)
	n := s.b * s.t
	build := func(g nn.Graph) error {
		x := g.Reshape(emb.Forward(g, g.Ints("ids", n)), s.b, s.t, s.d)
		x = g.Add(x, g.Slice(g.Param(pos.Weight), 0, 0, s.t))
		mask := g.Const(nn.CausalMask(s.t), s.t, s.t)
		for _, l := range layers {
			x = l.Forward(g, x, mask)
		}
		logits := fc.Forward(g, g.Reshape(x, n, s.d))
		g.Loss(nn.CrossEntropy(g, logits, g.Ints("tg", n), g.Floats("w", n)))
		return nil
	}
	ids, tg := tokenRows(n, s.v)
	feeds := nn.Feeds{
		Ints:   map[string][]int{"ids": ids, "tg": tg},
		Floats: map[string][]float32{"w": nn.CrossEntropyWeights(tg)},
		Seed:   7,
	}
	return ps, feeds, build
}

// narGraph is plugins/nar's training step (Model.Gradients): the shared
// encoder (encdec.Encoder: layers encoder layers without a causal mask,
// under the source's key padding mask), a decoder of layers decoder layers
// without a causal mask (self-attention under the target's key padding,
// cross-attention under the source's), the token loss and the length
// head's loss over the mean-pooled memory (encdec.MeanPool), with dropout
// p. Rows have t - i source and target tokens (row i), so the padding
// masks are not trivial.
func narGraph(s modelSize, p float32) (*nn.ParamSet, nn.Feeds, nn.BuildFunc) {
	const classes = 2*8 + 1 // nar's default max_offset 8
	ps := nn.NewParamSet()
	rng := nn.NewRNG(1)
	srcEmb := nn.NewEmbedding(ps, "src_embedding", s.v, s.d)
	srcEmb.Init(rng)
	srcPos := nn.NewEmbedding(ps, "src_pos", s.t, s.d)
	srcPos.Init(rng)
	var enc []*nn.TransformerEncoderLayer
	for i := range s.layers {
		l := nn.NewTransformerEncoderLayer(ps, fmt.Sprintf("encoder.layers.%d", i), s.d, s.heads, s.ff, p)
		l.Init(rng)
		enc = append(enc, l)
	}
	tgtEmb := nn.NewEmbedding(ps, "tgt_embedding", s.v+1, s.d)
	tgtEmb.Init(rng)
	tgtPos := nn.NewEmbedding(ps, "tgt_pos", s.t, s.d)
	tgtPos.Init(rng)
	var dec []*nn.TransformerDecoderLayer
	for i := range s.layers {
		l := nn.NewTransformerDecoderLayer(ps, fmt.Sprintf("decoder.layers.%d", i), s.d, s.heads, s.ff, p)
		l.Init(rng)
		dec = append(dec, l)
	}
	fc := nn.NewLinear(ps, "fc", s.d, s.v)
	fc.Init(rng)
	lengthHead := nn.NewLinear(ps, "length_head", s.d, classes)
	lengthHead.Init(rng)
	b, t, d := s.b, s.t, s.d
	build := func(g nn.Graph) error {
		srcPad, pool := g.Floats("src_pad", b, t), g.Floats("src_pool", b, 1, t)
		x := g.Reshape(srcEmb.Forward(g, g.Ints("src", b*t)), b, t, d)
		x = g.Add(x, g.Slice(g.Param(srcPos.Weight), 0, 0, t))
		for _, l := range enc {
			x = l.ForwardPadded(g, x, nil, srcPad)
		}
		memory := x
		y := g.Reshape(tgtEmb.Forward(g, g.Ints("tgt", b*t)), b, t, d)
		y = g.Add(y, g.Slice(g.Param(tgtPos.Weight), 0, 0, t))
		masks := nn.DecoderMasks{TgtKeyPadding: g.Floats("tgt_pad", b, t), MemoryKeyPadding: srcPad}
		for _, l := range dec {
			y = l.Forward(g, y, memory, masks)
		}
		logits := fc.Forward(g, g.Reshape(y, b*t, d))
		tok := nn.CrossEntropy(g, logits, g.Ints("labels", b*t), g.Floats("weights", b*t))
		pooled := g.Reshape(g.BatchMatMul(pool, memory, false, false), b, d)
		length := nn.CrossEntropy(g, lengthHead.Forward(g, pooled), g.Ints("len_labels", b), g.Floats("len_weights", b))
		g.Output("token_loss", tok)
		g.Output("length_loss", length)
		g.Loss(g.Add(tok, length))
		return nil
	}
	return ps, narFeeds(s, classes), build
}

// narFeeds are narGraph's inputs: row i has t - i%t source and target
// tokens, every other target masked (id v) and scored.
func narFeeds(s modelSize, classes int) nn.Feeds {
	b, t := s.b, s.t
	lens := make([]int, b)
	for i := range lens {
		lens[i] = t - i%t
	}
	src, tgt := tokenRows(b*t, s.v)
	labels := make([]int, b*t)
	pool := make([]float32, b*t)
	for i, n := range lens {
		for j := range t {
			k := i*t + j
			labels[k] = -1
			if j < n {
				pool[k] = 1 / float32(n)
				if j%2 == 0 {
					labels[k], tgt[k] = tgt[k], s.v
				}
			}
		}
	}
	lenLabels, lenWeights := make([]int, b), make([]float32, b)
	for i := range lenLabels {
		lenLabels[i], lenWeights[i] = i%classes, 0.1/float32(b)
	}
	pad := nn.KeyPaddingMask(lens, t)
	return nn.Feeds{
		Ints: map[string][]int{"src": src, "tgt": tgt, "labels": labels, "len_labels": lenLabels},
		Floats: map[string][]float32{
			"src_pad": pad, "src_pool": pool, "tgt_pad": pad,
			"weights": nn.CrossEntropyWeights(labels), "len_weights": lenWeights,
		},
		Seed: 9,
	}
}

// tokenRows returns n input ids and n targets in [0,v).
func tokenRows(n, v int) (ids, targets []int) {
	ids, targets = make([]int, n), make([]int, n)
	for i := range ids {
		ids[i] = (i*7 + i/v) % v
		targets[i] = (i*13 + 5) % v
	}
	return ids, targets
}
