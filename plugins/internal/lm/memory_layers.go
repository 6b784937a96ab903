package lm

// Values of the Transformer layers of nn (post-norm, ReLU; Vaswani et al.
// 2017, §3.1–3.3) per query position, as the pooled buffers hold them (see
// Values): d wide, ff the feed-forward width, h heads attending over k
// keys, so that the attention weights [B·h, T, k] are h·k values per
// position. Counted from nn.TransformerEncoderLayer, nn.MultiheadAttention
// and the gorgonia backend's gradient rules, and checked by measuring
// (plugintest.CheckMemoryEstimate).

// Attention is a Transformer layer's attention shape: h heads over k keys,
// with a key padding mask (nn.AttentionBias: an additive bias [B·h, T, k]
// built per layer) or not (a [T,k] constant mask, or none).
type Attention struct {
	Heads, Keys float64
	Padded      bool
}

// scores is the attention weights' values per position, h·k.
func (a Attention) scores() float64 { return a.Heads * a.Keys }

// evalPeak is the attention's largest evaluation stage with the layer's
// input and the values alive around it: the score product (scores, queries,
// keys, values, input: h·k + 4d), the masked sum (scores and sum, values,
// input: 2·h·k + 2d), with a padding bias alive from before the product to
// the sum (3·h·k + 2d).
func (a Attention) evalPeak(d float64) float64 {
	s := a.scores()
	p := max(s+4*d, 2*s+2*d)
	if a.Padded {
		p = max(p, 3*s+2*d)
	}
	return p
}

// trainPeak is the attention's values in flight at the top of the layer's
// backward pass, on top of the saved values: the gradients of the weights
// and the scores, of the values and of the layer's input (2·h·k + 3d), once
// the layer's feed-forward ReLU output, residual sums, norm output, merged
// heads and values (ff + 5d) are freed. (A padding bias adds nothing here:
// the bias has no gradient, and in the forward pass the bias, scores and
// sum, 3·h·k, come before the weights and the layer's later values exist.)
func (a Attention) trainPeak(d, ff float64) float64 {
	return 2*a.scores() - ff - 2*d
}

// EncoderLayer is nn.TransformerEncoderLayer, self-attention then the
// feed-forward block, per position:
//
//	training, saved: the layer's input (the packed projection's weight
//	  gradient reads it), the scaled queries, keys and values (the two
//	  attention products'), the attention weights (the softmax's and the
//	  value product's), the merged heads (the output projection's), the two
//	  residual sums (the norms'), the first norm's output (linear1's) and
//	  the ReLU's output: 8d + ff + h·k;
//	training, peak: the ReLU's gradient and the product's before it (2·ff)
//	  or the attention's (Attention.trainPeak);
//	training with dropout: the dropped attention weights and ReLU output
//	  saved (h·k + ff) and the masks held (h·k + 2d + ff);
//	evaluation, peak: the packed projection (the input, the product and
//	  its bias sum, a slice: 7d), the attention (Attention.evalPeak) or the
//	  feed-forward block (its product and bias sum, the residual: 2·ff + d).
func EncoderLayer(d, ff float64, a Attention, dropout bool) (train, eval Values) {
	s := a.scores()
	train = Values{Saved: 8*d + ff + s, Peak: max(2*ff, a.trainPeak(d, ff))}
	if dropout {
		train.Saved += s + ff
		train.Held += s + 2*d + ff
	}
	eval = Values{Peak: max(7*d, a.evalPeak(d), 2*ff+d)}
	return train, eval
}

// DecoderLayer is nn.TransformerDecoderLayer, self-attention (self), the
// cross-attention over the memory (cross, always padded here) and the
// feed-forward block, per target position; the memory's keys and values,
// projected in the layer, are per memory position (MemoryKV):
//
//	training, saved: EncoderLayer's 8d + ff + h·k of the self-attention and
//	  feed-forward block, and of the cross-attention the scaled queries, the
//	  weights, the merged heads, the residual sum and the norm's output
//	  (4d + h·S);
//	training, peak: the largest of the two attentions' and the
//	  feed-forward block's (as EncoderLayer);
//	training with dropout: the dropped weights of both attentions and the
//	  dropped ReLU output saved, their masks and three d-wide ones held;
//	evaluation, peak: EncoderLayer's stages or the cross-attention's
//	  (Attention.evalPeak, whose d of values stands for the queries'
//	  projection here: the memory's keys and values are per memory
//	  position).
func DecoderLayer(d, ff float64, self, cross Attention, dropout bool) (train, eval Values) {
	train, eval = EncoderLayer(d, ff, self, dropout)
	c := cross.scores()
	train.Saved += 4*d + c
	train.Peak = max(train.Peak, cross.trainPeak(d, ff))
	if dropout {
		train.Saved += c
		train.Held += c + d
	}
	eval.Peak = max(eval.Peak, cross.evalPeak(d))
	return train, eval
}

// MemoryKV is a decoder layer's cross-attention keys and values per memory
// position: in training both saved (2d, for the attention products'
// gradients); in evaluation the memory, its keys and values (3d) alive
// through the layer, and while they are projected the product and its bias
// sum (2d each) and a slice (d) with the memory, 6d.
func MemoryKV(d float64) (train, eval Values) {
	return Values{Saved: 2 * d}, Values{Peak: 6 * d}
}

// Ops of the Transformer layers' graphs (nodes: the ops, the views, the
// parameter and constant inputs they bind), for lm.Footprint.Ops: an
// encoder layer has 56 (the packed projection and its 12 head slices and
// transposes, the attention's 5, the merge and output projection's 9, two
// norms of 5, the feed-forward block's 13, two residual sums), and 8 more
// with dropout (4 sites, an op and a mask each); a padding bias adds 4 (a
// zero constant, the sum, its transposition and reshape); a decoder
// layer's cross-attention 47 more (the keys' and values' projection 14,
// the queries' 9, the padding bias, the attention, the merge and output
// projection, a norm and a residual sum) and 4 more with dropout.
const (
	encoderLayerOps = 56
	dropoutOps      = 8
	PaddingOps      = 4
	crossOps        = 47
)

// EncoderLayerOps is the ops of an encoder layer without a padding bias.
func EncoderLayerOps(dropout bool) float64 {
	if dropout {
		return encoderLayerOps + dropoutOps
	}
	return encoderLayerOps
}

// DecoderLayerOps is the ops of a decoder layer with a padded
// cross-attention.
func DecoderLayerOps(dropout bool) float64 {
	if dropout {
		return EncoderLayerOps(true) + crossOps + dropoutOps/2
	}
	return EncoderLayerOps(false) + crossOps
}

// TransformerLinears is the layers of a Transformer language model for
// GemmWorkspace: the packed projection (d to 3d), the output projection
// (d to d), the feed-forward block (d to ff, ff to d) and the output layer
// (d to V).
func TransformerLinears(d, ff, v float64) []Linear {
	return []Linear{{In: d, Out: 3 * d}, {In: d, Out: d}, {In: d, Out: ff}, {In: ff, Out: d}, {In: d, Out: v}}
}
