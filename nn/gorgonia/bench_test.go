package gorgonia

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// Benchmarks of one training step at the benchmark's reference size
// (batch 32, 64 positions, width 128, 256 symbols), built from raw ops:
//
//	go test ./nn/gorgonia -run - -bench . [-tags openblas]
const benchB, benchT, benchD, benchV = 32, 64, 128, 256

func benchFeeds() nn.Feeds {
	ids := make([]int, benchB*benchT)
	tg := make([]int, benchB*benchT)
	for i := range ids {
		ids[i] = (i * 7) % benchV
		tg[i] = (i * 13) % benchV
	}
	return nn.Feeds{Ints: map[string][]int{"ids": ids, "tg": tg}, Seed: 1}
}

func benchStep(b *testing.B, ps *nn.ParamSet, build nn.BuildFunc) {
	exe, err := New().Compile(nn.Spec{Key: b.Name(), Params: ps, Train: true}, build)
	if err != nil {
		b.Fatal(err)
	}
	defer exe.Close()
	feeds := benchFeeds()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := exe.Run(ctx, feeds); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchB*benchT*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// lmLoss is the mean cross-entropy of logits [B·T,V] against targets.
func lmLoss(g nn.Graph, logits nn.Tensor) nn.Tensor {
	picked := g.Pick(g.LogSoftmax(logits), g.Ints("tg", benchB*benchT))
	return g.Scale(g.Sum(picked), -1/float32(benchB*benchT))
}

// BenchmarkRNNTrainStep: embedding, an unrolled tanh RNN and a softmax head.
func BenchmarkRNNTrainStep(b *testing.B) {
	ps := nn.NewParamSet()
	s := 1 / math.Sqrt(benchD)
	emb := nntest.RandomParam(ps, "emb", 1, 1, benchV, benchD)
	wx := nntest.RandomParam(ps, "wx", 2, s, benchD, benchD)
	wh := nntest.RandomParam(ps, "wh", 3, s, benchD, benchD)
	bias := nntest.RandomParam(ps, "b", 4, s, benchD)
	out := nntest.RandomParam(ps, "out", 5, s, benchV, benchD)
	benchStep(b, ps, func(g nn.Graph) error {
		x := g.Gather(g.Param(emb), g.Ints("ids", benchB*benchT))
		xt := g.Reshape(g.Transpose(g.Reshape(x, benchB, benchT, benchD), 1, 0, 2), benchT*benchB, benchD)
		proj := g.Reshape(g.Add(g.MatMul(xt, g.Param(wx), false, true), g.Param(bias)), benchT, benchB, benchD)
		h := g.Const(make([]float32, benchB*benchD), benchB, benchD)
		steps := make([]nn.Tensor, benchT)
		for t := range benchT {
			xi := g.Reshape(g.Slice(proj, 0, t, t+1), benchB, benchD)
			h = g.Tanh(g.Add(xi, g.MatMul(h, g.Param(wh), false, true)))
			steps[t] = g.Reshape(h, benchB, 1, benchD)
		}
		hs := g.Reshape(g.Concat(1, steps...), benchB*benchT, benchD)
		g.Loss(lmLoss(g, g.MatMul(hs, g.Param(out), false, true)))
		return nil
	})
}

// BenchmarkAttentionTrainStep: embedding, one causal self-attention block
// with 4 heads, a ReLU feed-forward block, layer norms, dropout and a head.
func BenchmarkAttentionTrainStep(b *testing.B) {
	const heads, hd = 4, benchD / 4
	ps := nn.NewParamSet()
	s := 1 / math.Sqrt(benchD)
	emb := nntest.RandomParam(ps, "emb", 1, 1, benchV, benchD)
	qkv := nntest.RandomParam(ps, "qkv", 2, s, 3*benchD, benchD)
	o := nntest.RandomParam(ps, "o", 3, s, benchD, benchD)
	f1 := nntest.RandomParam(ps, "f1", 4, s, 4*benchD, benchD)
	f2 := nntest.RandomParam(ps, "f2", 5, s/2, benchD, 4*benchD)
	gamma, beta := ps.Add("gamma", benchD), ps.Add("beta", benchD)
	nn.InitConst(gamma, 1)
	out := nntest.RandomParam(ps, "out", 6, s, benchV, benchD)
	mask := make([]float32, benchT*benchT)
	for i := range benchT {
		for j := i + 1; j < benchT; j++ {
			mask[i*benchT+j] = -1e9
		}
	}
	benchStep(b, ps, func(g nn.Graph) error {
		n := benchB * benchT
		x := g.Gather(g.Param(emb), g.Ints("ids", n)) // [N,D]
		p := g.MatMul(x, g.Param(qkv), false, true)   // [N,3D]
		split := func(i int) nn.Tensor {
			part := g.Reshape(g.Slice(p, 1, i*benchD, (i+1)*benchD), benchB, benchT, heads, hd)
			return g.Reshape(g.Transpose(part, 0, 2, 1, 3), benchB*heads, benchT, hd)
		}
		q, k, v := split(0), split(1), split(2)
		scores := g.Add(g.BatchMatMul(g.Scale(q, float32(1/math.Sqrt(hd))), k, false, true), g.Const(mask, benchT, benchT))
		att := g.BatchMatMul(g.Dropout(g.Softmax(scores), 0.1), v, false, false)
		merged := g.Reshape(g.Transpose(g.Reshape(att, benchB, heads, benchT, hd), 0, 2, 1, 3), n, benchD)
		x = g.LayerNorm(g.Add(x, g.Dropout(g.MatMul(merged, g.Param(o), false, true), 0.1)), g.Param(gamma), g.Param(beta), 1e-5)
		ff := g.MatMul(g.ReLU(g.MatMul(x, g.Param(f1), false, true)), g.Param(f2), false, true)
		x = g.LayerNorm(g.Add(x, g.Dropout(ff, 0.1)), g.Param(gamma), g.Param(beta), 1e-5)
		g.Loss(lmLoss(g, g.MatMul(x, g.Param(out), false, true)))
		return nil
	})
}

// BenchmarkRunOverhead measures a run of a tiny inference graph (one
// generation step of a small recurrent cell), i.e. the per-Run cost.
func BenchmarkRunOverhead(b *testing.B) {
	ps := nn.NewParamSet()
	w := nntest.RandomParam(ps, "w", 1, 0.1, 16, 16)
	exe, err := New().Compile(nn.Spec{Key: "tiny", Params: ps}, func(g nn.Graph) error {
		h := g.Tanh(g.MatMul(g.Floats("h", 1, 16), g.Param(w), false, true))
		g.Output("h", h)
		g.Output("p", g.LogSoftmax(h))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer exe.Close()
	feeds := nn.Feeds{Floats: map[string][]float32{"h": make([]float32, 16)}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := exe.Run(ctx, feeds); err != nil {
			b.Fatal(err)
		}
	}
}

// composedGraph hides the backend's optional fused ops (nn.LSTMCeller,
// nn.SequenceRecurrer), so layers fall back to their reference
// composition of primitive ops.
type composedGraph struct{ nn.Graph }

// BenchmarkLSTMTrainStep: embedding, a 2-layer nn.LSTM and a softmax head,
// as one sequence node per layer (sequence: nn.SequenceRecurrer), unrolled
// over time with the fused cell (fused) and unrolled with the cell's
// composition (composed).
func BenchmarkLSTMTrainStep(b *testing.B) {
	b.Run("sequence", func(b *testing.B) { benchLSTM(b, func(g nn.Graph) nn.Graph { return g }) })
	b.Run("fused", func(b *testing.B) { benchLSTM(b, func(g nn.Graph) nn.Graph { return cellGraph{g} }) })
	b.Run("composed", func(b *testing.B) { benchLSTM(b, func(g nn.Graph) nn.Graph { return composedGraph{g} }) })
}

func benchLSTM(b *testing.B, wrap func(nn.Graph) nn.Graph) {
	ps := nn.NewParamSet()
	emb := nntest.RandomParam(ps, "emb", 1, 1, benchV, benchD)
	l0 := nn.NewLSTM(ps, "lstm", 0, benchD, benchD)
	l1 := nn.NewLSTM(ps, "lstm", 1, benchD, benchD)
	rng := rand.New(rand.NewPCG(2, 0))
	l0.Init(rng)
	l1.Init(rng)
	out := nntest.RandomParam(ps, "out", 5, 1/math.Sqrt(benchD), benchV, benchD)
	benchStep(b, ps, func(g nn.Graph) error {
		g = wrap(g)
		x := g.Reshape(g.Gather(g.Param(emb), g.Ints("ids", benchB*benchT)), benchB, benchT, benchD)
		zero := g.Const(make([]float32, benchB*benchD), benchB, benchD)
		x, _, _ = l0.Forward(g, x, zero, zero)
		x, _, _ = l1.Forward(g, x, zero, zero)
		g.Loss(lmLoss(g, g.MatMul(g.Reshape(x, benchB*benchT, benchD), g.Param(out), false, true)))
		return nil
	})
}

// recurrentModelSize is a size of arbench's recurrent language models
// (embedding → one nn.LSTM or nn.RNN layer → linear head; plugins/lstm,
// plugins/rnn): issue 13's quick size and a large one.
type recurrentModelSize struct {
	name           string
	vocab, d, b, t int
}

var recurrentModelSizes = []recurrentModelSize{
	{"quick", 256, 128, 32, 64},
	{"large", 256, 512, 16, 128},
}

// BenchmarkRecurrentModel times a training step (forward and gradients)
// and a scoring step (the forward pass to the loss) of the lstm and rnn
// models at each recurrentModelSize, reporting tokens/s:
//
//	go test ./nn/gorgonia -run '^$' -bench RecurrentModel/lstm
func BenchmarkRecurrentModel(b *testing.B) {
	for _, lstm := range []bool{true, false} {
		family := map[bool]string{true: "lstm", false: "rnn"}[lstm]
		for _, sz := range recurrentModelSizes {
			for _, train := range []bool{true, false} {
				mode := map[bool]string{true: "train", false: "score"}[train]
				b.Run(family+"/"+sz.name+"/"+mode, func(b *testing.B) { benchRecurrentModel(b, lstm, sz, train) })
			}
		}
	}
}

// recurrentModel builds the model's loss, the mean cross-entropy of the
// next symbols tg given ids, for ids and tg of b·t symbols.
func recurrentModel(ps *nn.ParamSet, lstm bool, sz recurrentModelSize) nn.BuildFunc {
	rng := rand.New(rand.NewPCG(3, 0))
	emb := nn.NewEmbedding(ps, "emb", sz.vocab, sz.d)
	emb.Init(rng)
	var layer recurrentLayer
	if lstm {
		layer.lstm = nn.NewLSTM(ps, "lstm", 0, sz.d, sz.d)
		layer.lstm.Init(rng)
	} else {
		layer.rnn = nn.NewRNN(ps, "rnn", 0, sz.d, sz.d)
		layer.rnn.Init(rng)
	}
	fc := nn.NewLinear(ps, "fc", sz.d, sz.vocab)
	fc.Init(rng)
	n := sz.b * sz.t
	return func(g nn.Graph) error {
		x := g.Reshape(emb.Forward(g, g.Ints("ids", n)), sz.b, sz.t, sz.d)
		zero := g.Const(make([]float32, sz.b*sz.d), sz.b, sz.d)
		h := layer.forward(g, x, zero, zero)[0]
		logits := fc.Forward(g, g.Reshape(h, n, sz.d))
		picked := g.Pick(g.LogSoftmax(logits), g.Ints("tg", n))
		g.Loss(g.Scale(g.Sum(picked), -1/float32(n)))
		return nil
	}
}

func benchRecurrentModel(b *testing.B, lstm bool, sz recurrentModelSize, train bool) {
	ps := nn.NewParamSet()
	exe, err := New().Compile(nn.Spec{Key: b.Name(), Params: ps, Train: train}, recurrentModel(ps, lstm, sz))
	if err != nil {
		b.Fatal(err)
	}
	defer exe.Close()
	n := sz.b * sz.t
	ids, tg := make([]int, n), make([]int, n)
	for i := range ids {
		ids[i], tg[i] = (i*7)%sz.vocab, (i*13)%sz.vocab
	}
	feeds := nn.Feeds{Ints: map[string][]int{"ids": ids, "tg": tg}, Seed: 1}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := exe.Run(ctx, feeds); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
