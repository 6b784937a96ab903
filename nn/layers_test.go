package nn_test

import (
	"math"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// Finite-difference gradient checks of every layer on tiny sizes. Each
// build reduces the layer's outputs to a scalar with fixed random weights
// (so no output's gradient is trivially uniform) and marks it as the loss.

const gradTol = 1e-2

// randFeed returns n deterministic N(0,1) values.
func randFeed(seed uint64, n int) []float32 {
	rng := nn.NewRNG(seed)
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

// initAll re-initialises every parameter with N(0, 0.5²) so that biases and
// norm parameters are not at their (degenerate) defaults.
func initAll(ps *nn.ParamSet, seed uint64) {
	rng := nn.NewRNG(seed)
	for _, p := range ps.List() {
		nn.InitNormal(p, rng, 0.5)
	}
}

// weightedSum returns Σ x ⊙ r for a fed random r of x's shape.
func weightedSum(g nn.Graph, x nn.Tensor, name string) nn.Tensor {
	return g.Sum(g.Mul(x, g.Floats(name, x.Shape()...)))
}

func size(shape ...int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func TestLinearGradients(t *testing.T) {
	ps := nn.NewParamSet()
	lin := nn.NewLinear(ps, "lin", 3, 2)
	initAll(ps, 1)
	feeds := nn.Feeds{Floats: map[string][]float32{"x": randFeed(2, size(2, 2, 3)), "r": randFeed(3, size(2, 2, 2))}}
	nntest.CheckGradients(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		g.Loss(weightedSum(g, lin.Forward(g, g.Floats("x", 2, 2, 3)), "r"))
		return nil
	}, gradTol)
}

func TestEmbeddingGradients(t *testing.T) {
	ps := nn.NewParamSet()
	emb := nn.NewEmbedding(ps, "emb", 5, 3)
	emb.Init(nn.NewRNG(1))
	feeds := nn.Feeds{
		Ints:   map[string][]int{"ids": {4, 0, 4, 2}},
		Floats: map[string][]float32{"r": randFeed(3, size(4, 3))},
	}
	nntest.CheckGradients(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		g.Loss(weightedSum(g, emb.Forward(g, g.Ints("ids", 4)), "r"))
		return nil
	}, gradTol)
}

func TestRNNGradients(t *testing.T) {
	ps := nn.NewParamSet()
	rnn := nn.NewRNN(ps, "rnn", 0, 2, 3)
	rnn.Init(nn.NewRNG(1))
	b, T := 2, 3
	feeds := nn.Feeds{Floats: map[string][]float32{
		"x": randFeed(2, size(b, T, 2)), "h0": randFeed(3, size(b, 3)),
		"r": randFeed(4, size(b, T, 3)), "rh": randFeed(5, size(b, 3)), "xs": randFeed(6, size(b, 2)),
	}}
	nntest.CheckGradients(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		out, hT := rnn.Forward(g, g.Floats("x", b, T, 2), g.Floats("h0", b, 3))
		step := rnn.Step(g, g.Floats("xs", b, 2), hT)
		g.Loss(g.Add(weightedSum(g, out, "r"), weightedSum(g, step, "rh")))
		return nil
	}, gradTol)
}

func TestLSTMGradients(t *testing.T) {
	ps := nn.NewParamSet()
	lstm := nn.NewLSTM(ps, "lstm", 0, 2, 3)
	lstm.Init(nn.NewRNG(1))
	b, T := 2, 3
	feeds := nn.Feeds{Floats: map[string][]float32{
		"x": randFeed(2, size(b, T, 2)), "h0": randFeed(3, size(b, 3)), "c0": randFeed(4, size(b, 3)),
		"r": randFeed(5, size(b, T, 3)), "rh": randFeed(6, size(b, 3)), "rc": randFeed(7, size(b, 3)),
		"xs": randFeed(8, size(b, 2)),
	}}
	nntest.CheckGradients(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		out, hT, cT := lstm.Forward(g, g.Floats("x", b, T, 2), g.Floats("h0", b, 3), g.Floats("c0", b, 3))
		h, c := lstm.Step(g, g.Floats("xs", b, 2), hT, cT)
		loss := g.Add(weightedSum(g, out, "r"), weightedSum(g, h, "rh"))
		g.Loss(g.Add(loss, weightedSum(g, c, "rc")))
		return nil
	}, gradTol)
}

func TestLayerNormGradients(t *testing.T) {
	ps := nn.NewParamSet()
	ln := nn.NewLayerNorm(ps, "ln", 4)
	initAll(ps, 1)
	feeds := nn.Feeds{Floats: map[string][]float32{"x": randFeed(2, size(2, 3, 4)), "r": randFeed(3, size(2, 3, 4))}}
	nntest.CheckGradients(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		g.Loss(weightedSum(g, ln.Forward(g, g.Floats("x", 2, 3, 4)), "r"))
		return nil
	}, gradTol)
}

func TestMultiheadAttentionGradients(t *testing.T) {
	ps := nn.NewParamSet()
	mha := nn.NewMultiheadAttention(ps, "attn", 4, 2)
	initAll(ps, 1)
	b, T := 2, 3
	feeds := nn.Feeds{Floats: map[string][]float32{
		"x": randFeed(2, size(b, T, 4)), "r": randFeed(3, size(b, T, 4)), "r2": randFeed(4, size(b, T, 4)),
	}}
	nntest.CheckGradients(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		x := g.Floats("x", b, T, 4)
		causal := mha.Forward(g, x, g.Const(nn.CausalMask(T), T, T))
		g.Loss(g.Add(weightedSum(g, causal, "r"), weightedSum(g, mha.Forward(g, x, nil), "r2")))
		return nil
	}, gradTol)
}

func TestTransformerEncoderLayerGradients(t *testing.T) {
	ps := nn.NewParamSet()
	enc := nn.NewTransformerEncoderLayer(ps, "enc", 4, 2, 8, 0)
	initAll(ps, 1)
	b, T := 2, 3
	feeds := nn.Feeds{Floats: map[string][]float32{"x": randFeed(2, size(b, T, 4)), "r": randFeed(3, size(b, T, 4))}}
	// ReLU's kink breaks central differences whose step crosses it, so the
	// step is smaller than the default 1e-2.
	opts := nntest.Options{Eps: 1e-3, RelTol: gradTol, AbsTol: gradTol}
	nntest.CheckGradientsWith(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		out := enc.Forward(g, g.Floats("x", b, T, 4), g.Const(nn.CausalMask(T), T, T))
		g.Loss(weightedSum(g, out, "r"))
		return nil
	}, opts)
}

func TestCrossEntropyGradients(t *testing.T) {
	ps := nn.NewParamSet()
	lin := nn.NewLinear(ps, "out", 3, 5)
	initAll(ps, 1)
	targets := []int{4, -1, 0, 2}
	feeds := nn.Feeds{
		Ints:   map[string][]int{"t": targets},
		Floats: map[string][]float32{"x": randFeed(2, size(4, 3)), "w": nn.CrossEntropyWeights(targets)},
	}
	nntest.CheckGradients(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		logits := lin.Forward(g, g.Floats("x", 4, 3))
		g.Loss(nn.CrossEntropy(g, logits, g.Ints("t", 4), g.Floats("w", 4)))
		return nil
	}, gradTol)
}

func TestCrossEntropyWeights(t *testing.T) {
	got := nn.CrossEntropyWeights([]int{3, -1, 0, -100, 7})
	want := []float32{1.0 / 3, 0, 1.0 / 3, 0, 1.0 / 3}
	assertClose(t, "weights", got, want, 0)
	for _, w := range nn.CrossEntropyWeights([]int{-1, -1}) {
		if w != 0 {
			t.Fatalf("all-ignored targets give weight %v, want 0", w)
		}
	}
}

func TestCausalMask(t *testing.T) {
	m := nn.CausalMask(3)
	want := []float32{0, -1e9, -1e9, 0, 0, -1e9, 0, 0, 0}
	assertClose(t, "mask", m, want, 0)
}

// TestParamNames checks the state_dict names and shapes of the composite
// layers (the reference tests cover the others through LoadSafetensors).
func TestParamNames(t *testing.T) {
	ps := nn.NewParamSet()
	nn.NewLSTM(ps, "lstm", 1, 3, 4)
	nn.NewRNN(ps, "", 2, 3, 5)
	nn.NewTransformerEncoderLayer(ps, "layers.0", 8, 2, 32, 0.1)
	want := map[string][]int{
		"lstm.weight_ih_l1":                  {16, 3},
		"lstm.weight_hh_l1":                  {16, 4},
		"lstm.bias_ih_l1":                    {16},
		"lstm.bias_hh_l1":                    {16},
		"weight_ih_l2":                       {5, 3},
		"weight_hh_l2":                       {5, 5},
		"bias_ih_l2":                         {5},
		"bias_hh_l2":                         {5},
		"layers.0.self_attn.in_proj_weight":  {24, 8},
		"layers.0.self_attn.in_proj_bias":    {24},
		"layers.0.self_attn.out_proj.weight": {8, 8},
		"layers.0.self_attn.out_proj.bias":   {8},
		"layers.0.linear1.weight":            {32, 8},
		"layers.0.linear1.bias":              {32},
		"layers.0.linear2.weight":            {8, 32},
		"layers.0.linear2.bias":              {8},
		"layers.0.norm1.weight":              {8},
		"layers.0.norm1.bias":                {8},
		"layers.0.norm2.weight":              {8},
		"layers.0.norm2.bias":                {8},
	}
	if len(ps.List()) != len(want) {
		t.Errorf("%d parameters, want %d", len(ps.List()), len(want))
	}
	for name, shape := range want {
		p := ps.Get(name)
		if p == nil {
			t.Errorf("missing parameter %s", name)
			continue
		}
		if !intsEqual(p.Shape, shape) {
			t.Errorf("%s has shape %v, want %v", name, p.Shape, shape)
		}
	}
}

// TestInit checks PyTorch's default initialisation ranges and constants.
func TestInit(t *testing.T) {
	ps := nn.NewParamSet()
	emb := nn.NewEmbedding(ps, "emb", 50, 40)
	lstm := nn.NewLSTM(ps, "lstm", 0, 7, 16)
	enc := nn.NewTransformerEncoderLayer(ps, "enc", 16, 4, 64, 0)
	rng := nn.NewRNG(3)
	emb.Init(rng)
	lstm.Init(rng)
	enc.Init(rng)

	within := func(p *nn.Param, bound float64) {
		t.Helper()
		maxAbs := 0.0
		for _, v := range p.Data {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		// Uniform samples reach close to the bound: [0.8·bound, bound].
		if maxAbs > bound || maxAbs < 0.8*bound {
			t.Errorf("%s: max |value| %v, want U(±%v)", p.Name, maxAbs, bound)
		}
	}
	constant := func(p *nn.Param, v float32) {
		t.Helper()
		for i, x := range p.Data {
			if x != v {
				t.Fatalf("%s[%d] = %v, want %v", p.Name, i, x, v)
			}
		}
	}
	within(lstm.WeightIH, 0.25)
	within(lstm.WeightHH, 0.25)
	within(lstm.BiasIH, 0.25)
	within(enc.SelfAttn.InProjWeight, math.Sqrt(6.0/(16+48)))
	constant(enc.SelfAttn.InProjBias, 0)
	within(enc.SelfAttn.OutProj.Weight, 0.25)
	constant(enc.SelfAttn.OutProj.Bias, 0)
	within(enc.Linear1.Weight, 0.25)
	within(enc.Linear1.Bias, 0.25)
	within(enc.Linear2.Weight, 0.125)
	constant(enc.Norm1.Weight, 1)
	constant(enc.Norm2.Bias, 0)

	var sum, sq float64
	for _, v := range emb.Weight.Data {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(emb.Weight.Data))
	if mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n)); math.Abs(mean) > 0.1 || math.Abs(std-1) > 0.1 {
		t.Errorf("embedding init mean %v std %v, want N(0,1)", mean, std)
	}
}

func TestCrossAttentionGradients(t *testing.T) {
	ps := nn.NewParamSet()
	mha := nn.NewMultiheadAttention(ps, "attn", 4, 2)
	initAll(ps, 1)
	b, T, S := 2, 3, 4
	mask := nn.CausalMask(S)[:T*S] // rows 0..T-1 of a causal mask: query i sees keys 0..i
	feeds := nn.Feeds{Floats: map[string][]float32{
		"x": randFeed(2, size(b, T, 4)), "mem": randFeed(3, size(b, S, 4)),
		"r": randFeed(4, size(b, T, 4)), "r2": randFeed(5, size(b, T, 4)),
	}}
	opts := nntest.Options{RelTol: gradTol, AbsTol: gradTol, Inputs: []string{"x", "mem"}}
	nntest.CheckGradientsWith(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
		x, mem := g.Floats("x", b, T, 4), g.Floats("mem", b, S, 4)
		pad := g.Const(nn.KeyPaddingMask([]int{S, 2}, S), b, S)
		plain := mha.CrossAttention(g, x, mem, nil, nil)
		masked := mha.CrossAttention(g, x, mem, g.Const(mask, T, S), pad)
		g.Loss(g.Add(weightedSum(g, plain, "r"), weightedSum(g, masked, "r2")))
		return nil
	}, opts)
}

// TestCrossAttentionOfItself checks that the split projections of
// CrossAttention (queries, then keys and values) agree with the packed one
// of self-attention when the memory is the input itself.
func TestCrossAttentionOfItself(t *testing.T) {
	ps := nn.NewParamSet()
	mha := nn.NewMultiheadAttention(ps, "attn", 8, 2)
	initAll(ps, 1)
	b, T := 2, 5
	res := compileRun(t, nn.Spec{Key: "cross/self", Params: ps}, func(g nn.Graph) error {
		x := g.Floats("x", b, T, 8)
		mask := g.Const(nn.CausalMask(T), T, T)
		pad := g.Const(nn.KeyPaddingMask([]int{3, T}, T), b, T)
		g.Output("self", mha.Forward(g, x, mask))
		g.Output("cross", mha.CrossAttention(g, x, x, mask, nil))
		g.Output("self_pad", mha.SelfAttention(g, x, mask, pad))
		g.Output("cross_pad", mha.CrossAttention(g, x, x, mask, pad))
		return nil
	}, nn.Feeds{Floats: map[string][]float32{"x": randFeed(2, size(b, T, 8))}})
	assertClose(t, "cross vs self", res.Outputs["cross"].Data, res.Outputs["self"].Data, 1e-6)
	assertClose(t, "cross vs self, padded", res.Outputs["cross_pad"].Data, res.Outputs["self_pad"].Data, 1e-6)
}

func TestTransformerDecoderLayerGradients(t *testing.T) {
	for _, dropout := range []float32{0, 0.2} {
		ps := nn.NewParamSet()
		dec := nn.NewTransformerDecoderLayer(ps, "dec", 4, 2, 8, dropout)
		initAll(ps, 1)
		b, T, S := 2, 3, 4
		feeds := nn.Feeds{Floats: map[string][]float32{
			"x": randFeed(2, size(b, T, 4)), "mem": randFeed(3, size(b, S, 4)),
			"r": randFeed(4, size(b, T, 4)), "r2": randFeed(5, size(b, T, 4)),
		}, Seed: 7} // fixed dropout masks for every evaluation
		// ReLU's kink breaks central differences whose step crosses it (see
		// TestTransformerEncoderLayerGradients).
		opts := nntest.Options{Eps: 1e-3, RelTol: gradTol, AbsTol: gradTol, Inputs: []string{"x", "mem"}}
		nntest.CheckGradientsWith(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
			x, mem := g.Floats("x", b, T, 4), g.Floats("mem", b, S, 4)
			ar := dec.Forward(g, x, mem, nn.DecoderMasks{
				Tgt:              g.Const(nn.CausalMask(T), T, T),
				MemoryKeyPadding: g.Const(nn.KeyPaddingMask([]int{S, 2}, S), b, S),
			})
			nar := dec.Forward(g, x, mem, nn.DecoderMasks{
				TgtKeyPadding: g.Const(nn.KeyPaddingMask([]int{2, T}, T), b, T),
			})
			g.Loss(g.Add(weightedSum(g, ar, "r"), weightedSum(g, nar, "r2")))
			return nil
		}, opts)
	}
}

// dropoutRecorder records the shape of every Dropout call.
type dropoutRecorder struct {
	nn.Graph
	shapes [][]int
}

func (r *dropoutRecorder) Dropout(x nn.Tensor, p float32) nn.Tensor {
	r.shapes = append(r.shapes, x.Shape())
	return r.Graph.Dropout(x, p)
}

// TestTransformerDecoderLayerDropoutSites pins PyTorch's six dropout sites
// in its order: self-attention weights, dropout1, cross-attention weights,
// dropout2, the feed-forward hidden layer, dropout3.
func TestTransformerDecoderLayerDropoutSites(t *testing.T) {
	ps := nn.NewParamSet()
	dec := nn.NewTransformerDecoderLayer(ps, "dec", 4, 2, 8, 0.1)
	b, T, S := 2, 3, 5
	rec := &dropoutRecorder{}
	compileRun(t, nn.Spec{Key: "dec/dropout", Params: ps, Train: true}, func(g nn.Graph) error {
		rec.Graph = g
		out := dec.Forward(rec, g.Floats("x", b, T, 4), g.Floats("mem", b, S, 4), nn.DecoderMasks{})
		g.Loss(g.Sum(out))
		return nil
	}, nn.Feeds{Floats: map[string][]float32{"x": randFeed(1, size(b, T, 4)), "mem": randFeed(2, size(b, S, 4))}})
	want := [][]int{{b * 2, T, T}, {b, T, 4}, {b * 2, T, S}, {b, T, 4}, {b, T, 8}, {b, T, 4}}
	if len(rec.shapes) != len(want) {
		t.Fatalf("%d dropout calls %v, want %d %v", len(rec.shapes), rec.shapes, len(want), want)
	}
	for i := range want {
		if !intsEqual(rec.shapes[i], want[i]) {
			t.Errorf("dropout call %d on %v, want %v", i, rec.shapes[i], want[i])
		}
	}
}

func TestKeyPaddingMask(t *testing.T) {
	got := nn.KeyPaddingMask([]int{3, 1, 0}, 3)
	want := []float32{0, 0, 0, 0, -1e9, -1e9, -1e9, -1e9, -1e9}
	assertClose(t, "mask", got, want, 0)
	defer func() {
		if recover() == nil {
			t.Error("a length beyond the padded size did not panic")
		}
	}()
	nn.KeyPaddingMask([]int{4}, 3)
}

// TestTransformerDecoderLayerParams checks the state_dict names, shapes
// and order of nn.TransformerDecoderLayer and its default initialisation.
func TestTransformerDecoderLayerParams(t *testing.T) {
	ps := nn.NewParamSet()
	dec := nn.NewTransformerDecoderLayer(ps, "layers.1", 16, 4, 64, 0.1)
	var want []string
	shapes := map[string][]int{}
	for _, attn := range []string{"self_attn", "multihead_attn"} {
		for _, p := range []struct {
			name  string
			shape []int
		}{{"in_proj_weight", []int{48, 16}}, {"in_proj_bias", []int{48}}, {"out_proj.weight", []int{16, 16}}, {"out_proj.bias", []int{16}}} {
			want = append(want, "layers.1."+attn+"."+p.name)
			shapes[want[len(want)-1]] = p.shape
		}
	}
	for _, m := range []struct {
		name  string
		shape []int
	}{{"linear1", []int{64, 16}}, {"linear2", []int{16, 64}}, {"norm1", []int{16}}, {"norm2", []int{16}}, {"norm3", []int{16}}} {
		for _, kind := range []string{"weight", "bias"} {
			name := "layers.1." + m.name + "." + kind
			want = append(want, name)
			shapes[name] = m.shape
			if kind == "bias" {
				shapes[name] = m.shape[:1]
			}
		}
	}
	got := ps.List()
	if len(got) != len(want) {
		t.Fatalf("%d parameters, want %d", len(got), len(want))
	}
	for i, p := range got {
		if p.Name != want[i] || !intsEqual(p.Shape, shapes[want[i]]) {
			t.Errorf("parameter %d is %s %v, want %s %v", i, p.Name, p.Shape, want[i], shapes[want[i]])
		}
	}
	if dec.SelfAttn.Dropout != 0.1 || dec.CrossAttn.Dropout != 0.1 {
		t.Errorf("attention dropout %v, %v, want 0.1", dec.SelfAttn.Dropout, dec.CrossAttn.Dropout)
	}

	dec.Init(nn.NewRNG(3))
	bound := math.Sqrt(6.0 / (16 + 48))
	for _, p := range []*nn.Param{dec.SelfAttn.InProjWeight, dec.CrossAttn.InProjWeight} {
		for _, v := range p.Data {
			if math.Abs(float64(v)) > bound {
				t.Fatalf("%s: %v outside U(±%v)", p.Name, v, bound)
			}
		}
	}
	for _, c := range []struct {
		p *nn.Param
		v float32
	}{{dec.CrossAttn.InProjBias, 0}, {dec.CrossAttn.OutProj.Bias, 0}, {dec.Norm3.Weight, 1}, {dec.Norm3.Bias, 0}} {
		for _, v := range c.p.Data {
			if v != c.v {
				t.Fatalf("%s holds %v, want %v", c.p.Name, v, c.v)
			}
		}
	}
}
