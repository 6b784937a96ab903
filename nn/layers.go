package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// This file holds the backend-neutral layers arbench models are built from.
// Each layer mirrors a PyTorch module exactly: parameter names, shapes and
// memory layouts are those of the module's state_dict, and Init reproduces
// the module's default initialisation distribution (not its random stream),
// so weights trained here load into PyTorch and vice versa.

// joinName prefixes name with prefix and a dot (no dot for an empty prefix).
func joinName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// checkRank panics unless x has the given rank; op names the caller.
func checkRank(op string, x Tensor, rank int) []int {
	s := x.Shape()
	if len(s) != rank {
		panic(fmt.Sprintf("nn: %s: want rank %d input, got shape %v", op, rank, s))
	}
	return s
}

// Linear is torch.nn.Linear(in, out): y = x Wᵀ + b.
type Linear struct {
	// Weight is [out,in] (prefix.weight), Bias is [out] (prefix.bias).
	Weight, Bias *Param
	In, Out      int
}

// NewLinear adds prefix.weight [out,in] and prefix.bias [out] to ps.
func NewLinear(ps *ParamSet, prefix string, in, out int) *Linear {
	return &Linear{
		Weight: ps.Add(joinName(prefix, "weight"), out, in),
		Bias:   ps.Add(joinName(prefix, "bias"), out),
		In:     in,
		Out:    out,
	}
}

// Init applies PyTorch's default: weight kaiming_uniform(a=√5), which is
// U(-1/√in, 1/√in), and bias U(-1/√in, 1/√in).
func (l *Linear) Init(rng *rand.Rand) {
	InitUniform(l.Weight, rng, Bound(l.In))
	InitUniform(l.Bias, rng, Bound(l.In))
}

// Forward computes x Wᵀ + b for x [..., in] of any rank ≥ 2; the leading
// axes are flattened for one matrix product and restored afterwards, so
// the result is [..., out].
func (l *Linear) Forward(g Graph, x Tensor) Tensor {
	s := x.Shape()
	if len(s) < 2 || s[len(s)-1] != l.In {
		panic(fmt.Sprintf("nn: Linear(%s): want input [..., %d], got %v", l.Weight.Name, l.In, s))
	}
	flat := x
	if len(s) > 2 {
		flat = g.Reshape(x, prod(s[:len(s)-1]), l.In)
	}
	y := g.Add(g.MatMul(flat, g.Param(l.Weight), false, true), g.Param(l.Bias))
	if len(s) > 2 {
		out := append(append([]int(nil), s[:len(s)-1]...), l.Out)
		y = g.Reshape(y, out...)
	}
	return y
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Embedding is torch.nn.Embedding(V, D): a lookup table of row vectors.
type Embedding struct {
	// Weight is [V,D] (prefix.weight).
	Weight *Param
	V, D   int
}

// NewEmbedding adds prefix.weight [V,D] to ps.
func NewEmbedding(ps *ParamSet, prefix string, vocab, dim int) *Embedding {
	return &Embedding{Weight: ps.Add(joinName(prefix, "weight"), vocab, dim), V: vocab, D: dim}
}

// Init applies PyTorch's default N(0,1).
func (e *Embedding) Init(rng *rand.Rand) { InitNormal(e.Weight, rng, 1) }

// Forward maps integer ids [N] to rows [N,D].
func (e *Embedding) Forward(g Graph, ids Tensor) Tensor {
	checkRank("Embedding", ids, 1)
	return g.Gather(g.Param(e.Weight), ids)
}

// RNN is one layer of torch.nn.RNN(E, H, batch_first=True) with the tanh
// non-linearity (Elman 1990):
//
//	h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).
//
// A multi-layer torch.nn.RNN is a stack of these with layer = 0, 1, ...,
// where layer l > 0 takes the hidden states of layer l-1 as input (In = H).
type RNN struct {
	// WeightIH [H,E], WeightHH [H,H], BiasIH [H], BiasHH [H] are
	// prefix.weight_ih_l<layer>, prefix.weight_hh_l<layer>,
	// prefix.bias_ih_l<layer>, prefix.bias_hh_l<layer>.
	WeightIH, WeightHH, BiasIH, BiasHH *Param
	In, Hidden                         int
}

// NewRNN adds the parameters of layer `layer` of an RNN to ps.
func NewRNN(ps *ParamSet, prefix string, layer, in, hidden int) *RNN {
	sfx := fmt.Sprintf("_l%d", layer)
	return &RNN{
		WeightIH: ps.Add(joinName(prefix, "weight_ih"+sfx), hidden, in),
		WeightHH: ps.Add(joinName(prefix, "weight_hh"+sfx), hidden, hidden),
		BiasIH:   ps.Add(joinName(prefix, "bias_ih"+sfx), hidden),
		BiasHH:   ps.Add(joinName(prefix, "bias_hh"+sfx), hidden),
		In:       in,
		Hidden:   hidden,
	}
}

// Init applies PyTorch's default: every weight and bias U(-1/√H, 1/√H).
func (r *RNN) Init(rng *rand.Rand) {
	for _, p := range []*Param{r.WeightIH, r.WeightHH, r.BiasIH, r.BiasHH} {
		InitUniform(p, rng, Bound(r.Hidden))
	}
}

// Forward runs the layer over x [B,T,E] from h0 [B,H] and returns every
// hidden state out [B,T,H] and the last one hT [B,H]. The input projection
// W_ih x_t + b_ih + b_hh is one matrix product over all B·T positions; only
// the recurrent product is unrolled over time.
func (r *RNN) Forward(g Graph, x, h0 Tensor) (out, hT Tensor) {
	xs := checkRank("RNN", x, 3)
	b, t := xs[0], xs[1]
	r.checkInput(xs[2])
	checkState("RNN", h0, b, r.Hidden)
	proj := inputProjection(g, x, r.WeightIH, r.BiasIH, r.BiasHH) // [T,B,H]
	whh := g.Param(r.WeightHH)
	if sr, ok := g.(SequenceRecurrer); ok {
		seq, hT := sr.RNNSequence(proj, whh, h0)
		return g.Transpose(seq, 1, 0, 2), hT
	}
	h := h0
	steps := make([]Tensor, t)
	for i := range t {
		xi := g.Reshape(g.Slice(proj, 0, i, i+1), b, r.Hidden)
		h = g.Tanh(g.Add(xi, g.MatMul(h, whh, false, true)))
		steps[i] = g.Reshape(h, b, 1, r.Hidden)
	}
	return concatTime(g, steps), h
}

// Step advances the recurrence by one position: x [B,E], h [B,H] -> h' [B,H].
// It is Forward with T = 1, for generation with carried state.
func (r *RNN) Step(g Graph, x, h Tensor) Tensor {
	xs := checkRank("RNN.Step", x, 2)
	r.checkInput(xs[1])
	checkState("RNN.Step", h, xs[0], r.Hidden)
	pre := g.Add(g.Add(g.MatMul(x, g.Param(r.WeightIH), false, true), g.Param(r.BiasIH)), g.Param(r.BiasHH))
	return g.Tanh(g.Add(pre, g.MatMul(h, g.Param(r.WeightHH), false, true)))
}

func (r *RNN) checkInput(e int) {
	if e != r.In {
		panic(fmt.Sprintf("nn: RNN(%s): input size %d, want %d", r.WeightIH.Name, e, r.In))
	}
}

// checkState panics unless h is [b,hidden].
func checkState(op string, h Tensor, b, hidden int) {
	s := h.Shape()
	if len(s) != 2 || s[0] != b || s[1] != hidden {
		panic(fmt.Sprintf("nn: %s: state shape %v, want [%d %d]", op, s, b, hidden))
	}
}

// inputProjection returns x W_ihᵀ + b_ih + b_hh for x [B,T,E] as a
// time-major [T,B,G] tensor (G = rows of wih), so that each time step is a
// contiguous slice along axis 0.
func inputProjection(g Graph, x Tensor, wih, bih, bhh *Param) Tensor {
	s := x.Shape()
	b, t, e := s[0], s[1], s[2]
	rows := wih.Shape[0]
	// Transposing the (small) input rather than the projection keeps the
	// product's output in the time-major order directly.
	xt := g.Reshape(g.Transpose(x, 1, 0, 2), t*b, e)
	bias := g.Add(g.Param(bih), g.Param(bhh))
	p := g.Add(g.MatMul(xt, g.Param(wih), false, true), bias)
	return g.Reshape(p, t, b, rows)
}

// concatTime stacks [B,1,H] steps into [B,T,H].
func concatTime(g Graph, steps []Tensor) Tensor {
	if len(steps) == 1 {
		return steps[0]
	}
	return g.Concat(1, steps...)
}

// LSTM is one layer of torch.nn.LSTM(E, H, batch_first=True) (Hochreiter &
// Schmidhuber 1997, with forget gate as in Gers et al. 2000):
//
//	i = σ(W_ii x + b_ii + W_hi h + b_hi)
//	f = σ(W_if x + b_if + W_hf h + b_hf)
//	g = tanh(W_ig x + b_ig + W_hg h + b_hg)
//	o = σ(W_io x + b_io + W_ho h + b_ho)
//	c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c').
//
// The four gates are stacked in the order i, f, g, o along the first axis of
// the [4H,E] and [4H,H] weights and the [4H] biases, as in PyTorch.
type LSTM struct {
	// WeightIH [4H,E], WeightHH [4H,H], BiasIH [4H], BiasHH [4H] are
	// prefix.weight_ih_l<layer> etc.
	WeightIH, WeightHH, BiasIH, BiasHH *Param
	In, Hidden                         int
}

// NewLSTM adds the parameters of layer `layer` of an LSTM to ps.
func NewLSTM(ps *ParamSet, prefix string, layer, in, hidden int) *LSTM {
	sfx := fmt.Sprintf("_l%d", layer)
	return &LSTM{
		WeightIH: ps.Add(joinName(prefix, "weight_ih"+sfx), 4*hidden, in),
		WeightHH: ps.Add(joinName(prefix, "weight_hh"+sfx), 4*hidden, hidden),
		BiasIH:   ps.Add(joinName(prefix, "bias_ih"+sfx), 4*hidden),
		BiasHH:   ps.Add(joinName(prefix, "bias_hh"+sfx), 4*hidden),
		In:       in,
		Hidden:   hidden,
	}
}

// Init applies PyTorch's default: every weight and bias U(-1/√H, 1/√H).
func (l *LSTM) Init(rng *rand.Rand) {
	for _, p := range []*Param{l.WeightIH, l.WeightHH, l.BiasIH, l.BiasHH} {
		InitUniform(p, rng, Bound(l.Hidden))
	}
}

// Forward runs the layer over x [B,T,E] from (h0, c0), both [B,H], and
// returns every hidden state out [B,T,H] and the final hT, cT [B,H]. As in
// RNN.Forward the input projection is one product over all positions.
func (l *LSTM) Forward(g Graph, x, h0, c0 Tensor) (out, hT, cT Tensor) {
	xs := checkRank("LSTM", x, 3)
	b, t := xs[0], xs[1]
	l.checkInput(xs[2])
	checkState("LSTM", h0, b, l.Hidden)
	checkState("LSTM", c0, b, l.Hidden)
	proj := inputProjection(g, x, l.WeightIH, l.BiasIH, l.BiasHH) // [T,B,4H]
	whh := g.Param(l.WeightHH)
	if sr, ok := g.(SequenceRecurrer); ok {
		seq, hT, cT := sr.LSTMSequence(proj, whh, h0, c0)
		return g.Transpose(seq, 1, 0, 2), hT, cT
	}
	h, c := h0, c0
	steps := make([]Tensor, t)
	for i := range t {
		xi := g.Reshape(g.Slice(proj, 0, i, i+1), b, 4*l.Hidden)
		h, c = l.cell(g, g.Add(xi, g.MatMul(h, whh, false, true)), c)
		steps[i] = g.Reshape(h, b, 1, l.Hidden)
	}
	return concatTime(g, steps), h, c
}

// Step advances the recurrence by one position: x [B,E] and (h, c) [B,H]
// give (h', c').
func (l *LSTM) Step(g Graph, x, h, c Tensor) (Tensor, Tensor) {
	xs := checkRank("LSTM.Step", x, 2)
	l.checkInput(xs[1])
	checkState("LSTM.Step", h, xs[0], l.Hidden)
	checkState("LSTM.Step", c, xs[0], l.Hidden)
	pre := g.Add(g.Add(g.MatMul(x, g.Param(l.WeightIH), false, true), g.Param(l.BiasIH)), g.Param(l.BiasHH))
	return l.cell(g, g.Add(pre, g.MatMul(h, g.Param(l.WeightHH), false, true)), c)
}

// SequenceRecurrer is an optional interface of a Graph that runs a whole
// recurrence as one operation, as cuDNN and oneDNN do (detected by type
// assertion, like database/sql's optional driver interfaces). The input
// projection of every step is computed before, in one product
// (inputProjection); the operation runs only the recurrent product per
// step and, in the backward pass, accumulates the recurrent weight's
// gradient in one product over all steps. Both take proj time-major,
// [T,B,G] (G = H for the RNN, 4H with the gates i, f, g, o for the LSTM),
// the recurrent weight whh [G,H] and the initial state [B,H], and return
// every hidden state seq [T,B,H] (time-major) and the last ones:
//
//	RNN:  h_t = tanh(proj_t + h_{t-1} whhᵀ)
//	LSTM: (h_t, c_t) = cell(proj_t + h_{t-1} whhᵀ, c_{t-1})  (see LSTMCeller)
//
// with gradients for proj, whh and the initial state. They must agree with
// the step-by-step composition in RNN.Forward and LSTM.Forward (the
// reference semantics) to within float32 rounding. Absent: the layers
// unroll the recurrence into per-step nodes.
type SequenceRecurrer interface {
	RNNSequence(proj, whh, h0 Tensor) (seq, hT Tensor)
	LSTMSequence(proj, whh, h0, c0 Tensor) (seq, hT, cT Tensor)
}

// LSTMCeller is an optional interface of a Graph with a fused LSTM cell
// (detected by type assertion, like database/sql's optional driver
// interfaces). LSTMCell takes the pre-activations gates [B,4H] (i, f, g, o
// stacked along the last axis) and the cell state c [B,H] and returns
//
//	h' = σ(o) ⊙ tanh(c'),  c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
//
// both [B,H], with gradients for gates and c. It must agree with the
// composition of Slice, Sigmoid, Tanh, Mul and Add in LSTM.cell (the
// reference semantics) to within float32 rounding.
type LSTMCeller interface {
	LSTMCell(gates, c Tensor) (h, c2 Tensor)
}

// cell applies the gate non-linearities to the pre-activations [B,4H],
// fused when g implements LSTMCeller.
func (l *LSTM) cell(g Graph, gates, c Tensor) (Tensor, Tensor) {
	if fc, ok := g.(LSTMCeller); ok {
		return fc.LSTMCell(gates, c)
	}
	hd := l.Hidden
	i := g.Sigmoid(g.Slice(gates, 1, 0, hd))
	f := g.Sigmoid(g.Slice(gates, 1, hd, 2*hd))
	gg := g.Tanh(g.Slice(gates, 1, 2*hd, 3*hd))
	o := g.Sigmoid(g.Slice(gates, 1, 3*hd, 4*hd))
	c2 := g.Add(g.Mul(f, c), g.Mul(i, gg))
	return g.Mul(o, g.Tanh(c2)), c2
}

func (l *LSTM) checkInput(e int) {
	if e != l.In {
		panic(fmt.Sprintf("nn: LSTM(%s): input size %d, want %d", l.WeightIH.Name, e, l.In))
	}
}

// LayerNormEps is torch.nn.LayerNorm's default epsilon.
const LayerNormEps = 1e-5

// LayerNorm is torch.nn.LayerNorm(D) (Ba et al. 2016): over the last axis,
// y = (x - mean) / sqrt(var + eps) ⊙ weight + bias with the biased variance.
type LayerNorm struct {
	// Weight [D] (prefix.weight) and Bias [D] (prefix.bias).
	Weight, Bias *Param
	D            int
	Eps          float32
}

// NewLayerNorm adds prefix.weight and prefix.bias [d] to ps, eps 1e-5.
func NewLayerNorm(ps *ParamSet, prefix string, d int) *LayerNorm {
	return &LayerNorm{
		Weight: ps.Add(joinName(prefix, "weight"), d),
		Bias:   ps.Add(joinName(prefix, "bias"), d),
		D:      d,
		Eps:    LayerNormEps,
	}
}

// Init applies PyTorch's default: weight 1, bias 0.
func (n *LayerNorm) Init(*rand.Rand) {
	InitConst(n.Weight, 1)
	InitConst(n.Bias, 0)
}

// Forward normalises x [..., D] over its last axis; the result has x's shape.
func (n *LayerNorm) Forward(g Graph, x Tensor) Tensor {
	s := x.Shape()
	if len(s) < 1 || s[len(s)-1] != n.D {
		panic(fmt.Sprintf("nn: LayerNorm(%s): want input [..., %d], got %v", n.Weight.Name, n.D, s))
	}
	flat := x
	if len(s) != 2 {
		flat = g.Reshape(x, prod(s[:len(s)-1]), n.D)
	}
	y := g.LayerNorm(flat, g.Param(n.Weight), g.Param(n.Bias), n.Eps)
	if len(s) != 2 {
		y = g.Reshape(y, s...)
	}
	return y
}

// CausalMaskValue is the additive score CausalMask puts above the diagonal.
const CausalMaskValue = -1e9

// CausalMask returns the additive [T,T] attention mask (row-major) that lets
// position i attend to positions j ≤ i: 0 on and below the diagonal,
// CausalMaskValue above it.
//
// PyTorch's nn.Transformer.generate_square_subsequent_mask uses -inf instead.
// The two give the same softmax: every row keeps its diagonal, so the row
// maximum m is a finite score and each masked term is exp(s - 1e9 - m). For
// any score range far below 1e9 the exponent is far below -104, where
// float32 exp underflows to exactly 0, the value exp(-inf) has. (In float32,
// s + -1e9 even rounds to exactly -1e9 for |s| < 32.) A finite value avoids
// the inf - inf = NaN that -inf produces in backward passes and fused
// kernels.
func CausalMask(t int) []float32 {
	m := make([]float32, t*t)
	for i := range t {
		for j := i + 1; j < t; j++ {
			m[i*t+j] = CausalMaskValue
		}
	}
	return m
}

// ScaledDotProductAttention computes softmax(q kᵀ/√d_k + mask) v (Vaswani et
// al. 2017, eq. 1) batch by batch: q [N,Tq,dk], k [N,Tk,dk], v [N,Tk,dv],
// mask an additive [Tq,Tk] tensor shared by every batch, an additive
// [N,Tq,Tk] tensor with one mask per batch (AttentionBias builds one from a
// key padding mask), or nil; the result is [N,Tq,dv]. Keys and values may
// come from a cache or from another sequence, so Tk may differ from Tq.
// When dropout > 0 the attention weights go through Dropout (as in
// PyTorch's MultiheadAttention), which is the identity outside training.
func ScaledDotProductAttention(g Graph, q, k, v, mask Tensor, dropout float32) Tensor {
	qs := checkRank("ScaledDotProductAttention q", q, 3)
	ks := checkRank("ScaledDotProductAttention k", k, 3)
	vs := checkRank("ScaledDotProductAttention v", v, 3)
	if ks[0] != qs[0] || ks[2] != qs[2] || vs[0] != qs[0] || vs[1] != ks[1] {
		panic(fmt.Sprintf("nn: ScaledDotProductAttention: incompatible q %v, k %v, v %v", qs, ks, vs))
	}
	// PyTorch scales q before the product; doing the same keeps rounding close.
	scores := g.BatchMatMul(g.Scale(q, float32(1/math.Sqrt(float64(qs[2])))), k, false, true)
	if mask != nil {
		ms := mask.Shape()
		ok := len(ms) == 2 && ms[0] == qs[1] && ms[1] == ks[1] ||
			len(ms) == 3 && ms[0] == qs[0] && ms[1] == qs[1] && ms[2] == ks[1]
		if !ok {
			panic(fmt.Sprintf("nn: ScaledDotProductAttention: mask %v, want [%d %d] or [%d %d %d]",
				ms, qs[1], ks[1], qs[0], qs[1], ks[1]))
		}
		scores = g.Add(scores, mask)
	}
	weights := g.Softmax(scores)
	if dropout > 0 {
		weights = g.Dropout(weights, dropout)
	}
	return g.BatchMatMul(weights, v, false, false)
}

// CacheAttender is an optional interface of a Graph with a fused attention
// of one query per row over the filled slots of a key/value cache (detected
// by type assertion, like database/sql's optional driver interfaces; the
// fallback is CacheAttention's). CacheAttention takes q [N,1,dk], the
// caches k [N,C,dk] and v [N,C,dv] and n, an Ints tensor of one element:
// the number of filled slots 1 ≤ n ≤ C, read when the executable runs. It
// returns softmax(q kᵀ/√dk) v over slots 0..n-1 alone, [N,1,dv], and must
// agree with ScaledDotProductAttention under a mask of 0 on those slots and
// CausalMaskValue on the others (the reference semantics) to within float32
// rounding. It has no gradient: it serves decoding.
type CacheAttender interface {
	CacheAttention(q, k, v, n Tensor) Tensor
}

// CacheAttention is attention of q [N,1,dk] over the first n slots of the
// caches k [N,C,dk] and v [N,C,dv] (Pope et al. 2022, "Efficiently Scaling
// Transformer Inference", §2): fused when g implements CacheAttender, which
// skips the C-n empty slots, otherwise ScaledDotProductAttention(q, k, v,
// mask, 0) with mask [1,C] holding 0 on slots < n and CausalMaskValue after.
// mask and n must say the same: the caller feeds both.
func CacheAttention(g Graph, q, k, v, mask, n Tensor) Tensor {
	qs := checkRank("CacheAttention q", q, 3)
	ks := checkRank("CacheAttention k", k, 3)
	vs := checkRank("CacheAttention v", v, 3)
	if qs[1] != 1 || ks[0] != qs[0] || ks[2] != qs[2] || vs[0] != qs[0] || vs[1] != ks[1] {
		panic(fmt.Sprintf("nn: CacheAttention: q %v, k %v, v %v, want [N 1 dk], [N C dk], [N C dv]", qs, ks, vs))
	}
	if ns := n.Shape(); len(ns) != 1 || ns[0] != 1 {
		panic(fmt.Sprintf("nn: CacheAttention: n %v, want one element", ns))
	}
	if ca, ok := g.(CacheAttender); ok {
		return ca.CacheAttention(q, k, v, n)
	}
	return ScaledDotProductAttention(g, q, k, v, mask, 0)
}

// MultiheadAttention is torch.nn.MultiheadAttention(d, heads,
// batch_first=True) (Vaswani et al. 2017, §3.2.2): the input projections
// give Q, K, V, each split into heads of size d/heads; attention runs per
// head and the concatenated heads go through the output projection.
//
// As self-attention, attn(x, x, x), one packed product gives Q, K and V
// (Forward, SelfAttention). As cross-attention (encoder–decoder attention,
// §3.2.3), attn(x, memory, memory), the queries come from x [B,T,d] and the
// keys and values from memory [B,S,d], with S free to differ from T
// (CrossAttention); like PyTorch's _in_projection_packed, the keys and
// values are then one product with rows d..3d of the packed weight.
//
// Forward is Project, ScaledDotProductAttention and Combine in sequence; a
// key/value cache for incremental decoding can call the three separately,
// concatenating cached keys and values along the time axis in between. For
// cross-attention ProjectQuery, ProjectKV (once per memory) and Attend play
// the same roles.
type MultiheadAttention struct {
	// InProjWeight [3d,d] and InProjBias [3d] (prefix.in_proj_weight,
	// prefix.in_proj_bias) stack the Q, K, V projections in that order.
	InProjWeight, InProjBias *Param
	// OutProj is prefix.out_proj.{weight,bias}.
	OutProj  *Linear
	D, Heads int
	// Dropout is the probability applied to the attention weights during
	// training (PyTorch's dropout argument); NewMultiheadAttention sets 0.
	Dropout float32
}

// NewMultiheadAttention adds the parameters of an attention block with model
// width d and the given number of heads; heads must divide d.
func NewMultiheadAttention(ps *ParamSet, prefix string, d, heads int) *MultiheadAttention {
	if heads <= 0 || d%heads != 0 {
		panic(fmt.Sprintf("nn: MultiheadAttention(%s): %d heads do not divide width %d", prefix, heads, d))
	}
	return &MultiheadAttention{
		InProjWeight: ps.Add(joinName(prefix, "in_proj_weight"), 3*d, d),
		InProjBias:   ps.Add(joinName(prefix, "in_proj_bias"), 3*d),
		OutProj:      NewLinear(ps, joinName(prefix, "out_proj"), d, d),
		D:            d,
		Heads:        heads,
	}
}

// Init applies PyTorch's default (MultiheadAttention._reset_parameters):
// in_proj_weight xavier_uniform, U(±√(6/(d+3d))); in_proj_bias 0;
// out_proj.weight as nn.Linear, U(±1/√d); out_proj.bias 0.
func (m *MultiheadAttention) Init(rng *rand.Rand) {
	InitUniform(m.InProjWeight, rng, math.Sqrt(6/float64(m.D+3*m.D)))
	InitConst(m.InProjBias, 0)
	InitUniform(m.OutProj.Weight, rng, Bound(m.D))
	InitConst(m.OutProj.Bias, 0)
}

// HeadDim is d/heads.
func (m *MultiheadAttention) HeadDim() int { return m.D / m.Heads }

// Project computes the packed input projection of x [B,T,d] and returns the
// queries, keys and values split into heads, each [B·heads,T,d/heads] with
// batch index b·heads + h.
func (m *MultiheadAttention) Project(g Graph, x Tensor) (q, k, v Tensor) {
	qkv := m.project(g, x, 0, 3)
	return qkv[0], qkv[1], qkv[2]
}

// ProjectQuery returns the queries of x [B,T,d] alone, x W_qᵀ + b_q with
// W_q, b_q rows 0..d of the packed projection, split into heads
// [B·heads,T,d/heads].
func (m *MultiheadAttention) ProjectQuery(g Graph, x Tensor) Tensor {
	return m.project(g, x, 0, 1)[0]
}

// ProjectKV returns the keys and values of memory [B,S,d] (rows d..2d and
// 2d..3d of the packed projection, in one product), each split into heads
// [B·heads,S,d/heads]. A decoder computes them once per memory and reuses
// them at every step.
func (m *MultiheadAttention) ProjectKV(g Graph, memory Tensor) (k, v Tensor) {
	kv := m.project(g, memory, 1, 2)
	return kv[0], kv[1]
}

// project applies parts consecutive d-row blocks of the packed projection,
// starting with block first (0 = Q, 1 = K, 2 = V), to x [B,T,d] in one
// product and splits each result into heads.
func (m *MultiheadAttention) project(g Graph, x Tensor, first, parts int) []Tensor {
	s := checkRank("MultiheadAttention", x, 3)
	b, t, d := s[0], s[1], s[2]
	if d != m.D {
		panic(fmt.Sprintf("nn: MultiheadAttention(%s): input width %d, want %d", m.InProjWeight.Name, d, m.D))
	}
	// rows binds a parameter, sliced to the blocks unless all are used; the
	// full case builds exactly the ops of the packed self-attention product.
	rows := func(p *Param) Tensor {
		if first == 0 && parts == 3 {
			return g.Param(p)
		}
		return g.Slice(g.Param(p), 0, first*d, (first+parts)*d)
	}
	proj := g.Add(g.MatMul(g.Reshape(x, b*t, d), rows(m.InProjWeight), false, true), rows(m.InProjBias))
	out := make([]Tensor, parts)
	for i := range out {
		part := g.Reshape(g.Slice(proj, 1, i*d, (i+1)*d), b, t, m.Heads, m.HeadDim())
		out[i] = g.Reshape(g.Transpose(part, 0, 2, 1, 3), b*m.Heads, t, m.HeadDim())
	}
	return out
}

// Combine merges per-head attention outputs ctx [B·heads,T,d/heads] back
// into [B,T,d] and applies the output projection.
func (m *MultiheadAttention) Combine(g Graph, ctx Tensor) Tensor {
	s := checkRank("MultiheadAttention.Combine", ctx, 3)
	if s[0]%m.Heads != 0 || s[2] != m.HeadDim() {
		panic(fmt.Sprintf("nn: MultiheadAttention.Combine: context %v, want [B·%d T %d]", s, m.Heads, m.HeadDim()))
	}
	b, t := s[0]/m.Heads, s[1]
	merged := g.Transpose(g.Reshape(ctx, b, m.Heads, t, m.HeadDim()), 0, 2, 1, 3)
	return m.OutProj.Forward(g, g.Reshape(merged, b, t, m.D))
}

// Forward is self-attention over x [B,T,d] with an optional additive [T,T]
// mask (nil for none, or e.g. g.Const(CausalMask(T), T, T)); the result is
// [B,T,d].
func (m *MultiheadAttention) Forward(g Graph, x, mask Tensor) Tensor {
	return m.SelfAttention(g, x, mask, nil)
}

// SelfAttention is PyTorch's attn(x, x, x, attn_mask=mask,
// key_padding_mask=keyPadding): Forward with an optional additive key
// padding mask [B,T] as well (see AttentionBias).
func (m *MultiheadAttention) SelfAttention(g Graph, x, mask, keyPadding Tensor) Tensor {
	q, k, v := m.Project(g, x)
	return m.Attend(g, q, k, v, mask, keyPadding)
}

// CrossAttention is PyTorch's attn(x, memory, memory, attn_mask=mask,
// key_padding_mask=keyPadding): the queries of x [B,T,d] attend over the
// keys and values of memory [B,S,d], under an optional additive attention
// mask [T,S] and an optional additive key padding mask [B,S] (nil for
// none; see AttentionBias). The result is [B,T,d].
func (m *MultiheadAttention) CrossAttention(g Graph, x, memory, mask, keyPadding Tensor) Tensor {
	k, v := m.ProjectKV(g, memory)
	return m.Attend(g, m.ProjectQuery(g, x), k, v, mask, keyPadding)
}

// Attend runs attention of projected queries q [B·heads,Tq,d/heads] over
// projected keys and values k, v [B·heads,Tk,d/heads] (from Project,
// ProjectKV or a cache) under the optional masks of AttentionBias, with
// the layer's attention dropout, and applies Combine: the result is
// [B,Tq,d].
func (m *MultiheadAttention) Attend(g Graph, q, k, v, mask, keyPadding Tensor) Tensor {
	qs := checkRank("MultiheadAttention.Attend q", q, 3)
	bias := AttentionBias(g, mask, keyPadding, m.Heads, qs[1])
	return m.Combine(g, ScaledDotProductAttention(g, q, k, v, bias, m.Dropout))
}

// AttentionBias merges an optional additive attention mask [Tq,Tk] and an
// optional additive key padding mask [B,Tk] into the additive bias
// ScaledDotProductAttention adds to the scores of heads heads and Tq
// queries, as PyTorch's multi_head_attention_forward merges attn_mask and
// key_padding_mask: key padding row b applies to every head and query of
// batch b. It returns nil when both are nil, mask alone when keyPadding is
// nil, and otherwise a [B·heads,Tq,Tk] tensor (batch index b·heads + h).
//
// Masked entries hold CausalMaskValue where PyTorch uses -inf (or True in
// a boolean mask), which gives the same softmax (see CausalMask) as long as
// every query keeps at least one key. A query whose keys are all masked
// gets uniform weights here and NaN in PyTorch.
func AttentionBias(g Graph, mask, keyPadding Tensor, heads, tq int) Tensor {
	if keyPadding == nil {
		return mask
	}
	s := checkRank("AttentionBias key padding", keyPadding, 2)
	b, tk := s[0], s[1]
	// [heads·Tq, B, Tk] + [B,Tk] broadcasts the padding over heads and
	// queries; moving B to the front gives the [B·heads, Tq, Tk] order.
	rows := g.Add(g.Const(make([]float32, heads*tq*b*tk), heads*tq, b, tk), keyPadding)
	bias := g.Reshape(g.Transpose(rows, 1, 0, 2), b*heads, tq, tk)
	if mask != nil {
		ms := mask.Shape()
		if len(ms) != 2 || ms[0] != tq || ms[1] != tk {
			panic(fmt.Sprintf("nn: AttentionBias: mask %v, want [%d %d]", ms, tq, tk))
		}
		bias = g.Add(bias, mask)
	}
	return bias
}

// KeyPaddingMask returns the additive key padding mask [B,S] (row-major)
// for B rows of the given lengths padded to s positions: 0 at positions
// j < lengths[b], CausalMaskValue at the padding. It is PyTorch's boolean
// key_padding_mask (True at the padding) in the additive form
// AttentionBias takes.
func KeyPaddingMask(lengths []int, s int) []float32 {
	m := make([]float32, len(lengths)*s)
	for b, n := range lengths {
		if n < 0 || n > s {
			panic(fmt.Sprintf("nn: KeyPaddingMask: row %d has length %d, want 0..%d", b, n, s))
		}
		for j := n; j < s; j++ {
			m[b*s+j] = CausalMaskValue
		}
	}
	return m
}

// TransformerEncoderLayer is torch.nn.TransformerEncoderLayer(d, heads, ff,
// dropout=p, batch_first=True) with its defaults: ReLU activation and
// post-norm (norm_first=False), i.e. (Vaswani et al. 2017, §3.1, §3.3)
//
//	x = norm1(x + drop(self_attn(x)))
//	x = norm2(x + drop(linear2(drop(relu(linear1(x)))))).
//
// As in PyTorch, self_attn also applies dropout p to its attention weights.
// Masks come from DropoutMask, not PyTorch's generator, so training runs
// with p > 0 differ from PyTorch's only in the noise drawn.
type TransformerEncoderLayer struct {
	SelfAttn         *MultiheadAttention
	Linear1, Linear2 *Linear
	Norm1, Norm2     *LayerNorm
	Dropout          float32
}

// NewTransformerEncoderLayer adds the parameters prefix.self_attn.*,
// prefix.linear1.* ([ff,d]), prefix.linear2.* ([d,ff]), prefix.norm1.* and
// prefix.norm2.* to ps.
func NewTransformerEncoderLayer(ps *ParamSet, prefix string, d, heads, ff int, dropout float32) *TransformerEncoderLayer {
	if dropout < 0 || dropout >= 1 {
		panic(fmt.Sprintf("nn: TransformerEncoderLayer(%s): dropout %v outside [0,1)", prefix, dropout))
	}
	attn := NewMultiheadAttention(ps, joinName(prefix, "self_attn"), d, heads)
	attn.Dropout = dropout
	return &TransformerEncoderLayer{
		SelfAttn: attn,
		Linear1:  NewLinear(ps, joinName(prefix, "linear1"), d, ff),
		Linear2:  NewLinear(ps, joinName(prefix, "linear2"), ff, d),
		Norm1:    NewLayerNorm(ps, joinName(prefix, "norm1"), d),
		Norm2:    NewLayerNorm(ps, joinName(prefix, "norm2"), d),
		Dropout:  dropout,
	}
}

// Init applies PyTorch's defaults to every sub-module (the layer itself
// adds no re-initialisation).
func (e *TransformerEncoderLayer) Init(rng *rand.Rand) {
	e.SelfAttn.Init(rng)
	e.Linear1.Init(rng)
	e.Linear2.Init(rng)
	e.Norm1.Init(rng)
	e.Norm2.Init(rng)
}

// Forward applies the layer to x [B,T,d] with an optional additive [T,T]
// attention mask; the result is [B,T,d].
func (e *TransformerEncoderLayer) Forward(g Graph, x, mask Tensor) Tensor {
	return e.ForwardPadded(g, x, mask, nil)
}

// ForwardPadded is Forward with an optional additive key padding mask
// [B,T] as well (PyTorch's src_key_padding_mask; KeyPaddingMask), for
// rows of different lengths padded to T: padded positions are never
// attended to, and their own outputs are computed but meaningless.
func (e *TransformerEncoderLayer) ForwardPadded(g Graph, x, mask, keyPadding Tensor) Tensor {
	x = e.Norm1.Forward(g, g.Add(x, maybeDropout(g, e.SelfAttn.SelfAttention(g, x, mask, keyPadding), e.Dropout)))
	ff := e.Linear2.Forward(g, maybeDropout(g, g.ReLU(e.Linear1.Forward(g, x)), e.Dropout))
	return e.Norm2.Forward(g, g.Add(x, maybeDropout(g, ff, e.Dropout)))
}

// maybeDropout is g.Dropout(x, p), or x itself when p is 0: the
// Transformer layers' dropout sites, which build no op when it is off.
func maybeDropout(g Graph, x Tensor, p float32) Tensor {
	if p == 0 {
		return x
	}
	return g.Dropout(x, p)
}

// CrossEntropy returns the scalar −Σ_i w_i · log softmax(logits_i)[t_i] for
// logits [N,V], integer targets [N] and float weights [N].
//
// Callers feed w_i = 1/n for each of the n non-negative targets and w_i = 0
// for ignored (negative) ones, so the value is the mean cross-entropy over
// the scored tokens, as torch.nn.CrossEntropyLoss(ignore_index=-100) with
// reduction "mean" (CrossEntropyWeights computes these weights). Negative
// targets contribute nothing and no gradient whatever their weight.
func CrossEntropy(g Graph, logits, targets, weights Tensor) Tensor {
	ls := checkRank("CrossEntropy logits", logits, 2)
	ts := checkRank("CrossEntropy targets", targets, 1)
	ws := checkRank("CrossEntropy weights", weights, 1)
	if ts[0] != ls[0] || ws[0] != ls[0] {
		panic(fmt.Sprintf("nn: CrossEntropy: logits %v, targets %v, weights %v", ls, ts, ws))
	}
	picked := g.Pick(g.LogSoftmax(logits), targets)
	return g.Scale(g.Sum(g.Mul(picked, weights)), -1)
}

// CrossEntropyWeights returns the weights CrossEntropy expects for targets:
// 1/n for each of the n non-negative targets, 0 for negative ones. With no
// scored target every weight is 0 (the loss is then 0, where PyTorch's mean
// would be NaN).
func CrossEntropyWeights(targets []int) []float32 {
	n := 0
	for _, t := range targets {
		if t >= 0 {
			n++
		}
	}
	w := make([]float32, len(targets))
	if n == 0 {
		return w
	}
	inv := float32(1 / float64(n))
	for i, t := range targets {
		if t >= 0 {
			w[i] = inv
		}
	}
	return w
}
