package gorgonia

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// cellGraph hides nn.SequenceRecurrer but keeps the fused cell, so that the
// layers unroll the recurrence step by step with the same kernels.
type cellGraph struct{ nn.Graph }

func (c cellGraph) LSTMCell(gates, cs nn.Tensor) (nn.Tensor, nn.Tensor) {
	return c.Graph.(nn.LSTMCeller).LSTMCell(gates, cs)
}

// recurrentLayer is an nn.RNN or nn.LSTM of in → hd inputs, for the tests.
type recurrentLayer struct {
	rnn  *nn.RNN
	lstm *nn.LSTM
}

func newRecurrentLayer(ps *nn.ParamSet, lstm bool, in, hd int, seed uint64) recurrentLayer {
	rng := rand.New(rand.NewPCG(seed, 0))
	if lstm {
		l := nn.NewLSTM(ps, "lstm", 0, in, hd)
		l.Init(rng)
		return recurrentLayer{lstm: l}
	}
	r := nn.NewRNN(ps, "rnn", 0, in, hd)
	r.Init(rng)
	return recurrentLayer{rnn: r}
}

// forward returns the layer's outputs: every hidden state, the last one
// and, for the LSTM, the last cell state.
func (l recurrentLayer) forward(g nn.Graph, x, h0, c0 nn.Tensor) []nn.Tensor {
	if l.rnn != nil {
		out, hT := l.rnn.Forward(g, x, h0)
		return []nn.Tensor{out, hT}
	}
	out, hT, cT := l.lstm.Forward(g, x, h0, c0)
	return []nn.Tensor{out, hT, cT}
}

// TestGradRecurrentSequence checks the gradients of the sequence nodes
// (nn.RNN and nn.LSTM on gorgonia, which implements nn.SequenceRecurrer)
// with respect to every weight, the input and the initial state by finite
// differences, with every output reaching the loss, at one step and at
// several (odd sizes).
func TestGradRecurrentSequence(t *testing.T) {
	for _, lstm := range []bool{false, true} {
		for _, steps := range []int{1, 4} {
			t.Run(fmt.Sprintf("lstm=%v/T=%d", lstm, steps), func(t *testing.T) {
				const b, in, hd = 3, 5, 3
				ps := nn.NewParamSet()
				layer := newRecurrentLayer(ps, lstm, in, hd, 7)
				x, h0, c0 := param(ps, "x", b, steps, in), param(ps, "h0", b, hd), param(ps, "c0", b, hd)
				build := func(g nn.Graph) error {
					if _, ok := g.(nn.SequenceRecurrer); !ok {
						t.Fatalf("%T does not implement nn.SequenceRecurrer", g)
					}
					outs := layer.forward(g, g.Param(x), g.Param(h0), g.Param(c0))
					loss := nntest.Projection(g, outs[0], 5)
					for i, o := range outs[1:] {
						loss = g.Add(loss, nntest.Projection(g, o, uint64(6+i)))
					}
					g.Loss(loss)
					return nil
				}
				nntest.CheckGradientsWith(t, New(), ps, nn.Feeds{}, build, nntest.Options{MaxPerParam: -1})
			})
		}
	}
}

// runLayer compiles and runs the layer on g (wrapped by wrap) and returns
// its outputs and every parameter's gradient.
func runLayer(t *testing.T, ps *nn.ParamSet, layer recurrentLayer, x, h0, c0 *nn.Param, wrap func(nn.Graph) nn.Graph) ([][]float32, map[string][]float32) {
	t.Helper()
	exe, err := New().Compile(nn.Spec{Key: "seq", Params: ps, Train: true}, func(g nn.Graph) error {
		g = wrap(g)
		outs := layer.forward(g, g.Param(x), g.Param(h0), g.Param(c0))
		loss := nntest.Projection(g, outs[0], 5)
		for i, o := range outs {
			g.Output(fmt.Sprint(i), o)
			if i > 0 {
				loss = g.Add(loss, nntest.Projection(g, o, uint64(6+i)))
			}
		}
		g.Loss(loss)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	res, err := exe.Run(context.Background(), nn.Feeds{})
	if err != nil {
		t.Fatal(err)
	}
	outs := make([][]float32, len(res.Outputs))
	for i := range outs {
		outs[i] = res.Outputs[fmt.Sprint(i)].Data
	}
	grads := map[string][]float32{}
	for _, p := range ps.List() {
		grads[p.Name] = append([]float32(nil), p.Grad...)
	}
	return outs, grads
}

// TestSequenceMatchesUnrolled: the sequence nodes compute bit for bit the
// unrolled graph's forward values (same kernels in the same order), and
// gradients within float32 rounding of the unrolled graph's and of the
// composition of primitive ops, for the RNN and the LSTM, with few rows
// (the backward product through the transposed weight, dotNT) and with
// more than smallProductRows rows (the packed product), at sizes where
// the kernels split rows across goroutines. A rerun gives the same bits.
func TestSequenceMatchesUnrolled(t *testing.T) {
	for _, lstm := range []bool{false, true} {
		for _, b := range []int{5, smallProductRows + 7} {
			t.Run(fmt.Sprintf("lstm=%v/B=%d", lstm, b), func(t *testing.T) {
				const steps, in, hd = 6, 9, 67
				ps := nn.NewParamSet()
				layer := newRecurrentLayer(ps, lstm, in, hd, 3)
				x := nntest.RandomParam(ps, "x", 11, 2, b, steps, in)
				h0 := nntest.RandomParam(ps, "h0", 12, 1, b, hd)
				c0 := nntest.RandomParam(ps, "c0", 13, 1, b, hd)
				seq, seqGrads := runLayer(t, ps, layer, x, h0, c0, func(g nn.Graph) nn.Graph { return g })
				unrolled, unrolledGrads := runLayer(t, ps, layer, x, h0, c0, func(g nn.Graph) nn.Graph { return cellGraph{g} })
				composed, composedGrads := runLayer(t, ps, layer, x, h0, c0, func(g nn.Graph) nn.Graph { return composedGraph{g} })
				for i := range seq {
					nntest.AssertClose(t, fmt.Sprintf("output %d vs unrolled", i), seq[i], unrolled[i], 0)
					nntest.AssertClose(t, fmt.Sprintf("output %d vs composed", i), seq[i], composed[i], 1e-6)
				}
				for _, p := range ps.List() {
					nntest.AssertClose(t, "grad "+p.Name+" vs unrolled", seqGrads[p.Name], unrolledGrads[p.Name], 1e-5)
					nntest.AssertClose(t, "grad "+p.Name+" vs composed", seqGrads[p.Name], composedGrads[p.Name], 1e-5)
				}
				again, againGrads := runLayer(t, ps, layer, x, h0, c0, func(g nn.Graph) nn.Graph { return g })
				for i := range seq {
					nntest.AssertClose(t, fmt.Sprintf("output %d (rerun)", i), again[i], seq[i], 0)
				}
				for _, p := range ps.List() {
					nntest.AssertClose(t, "grad "+p.Name+" (rerun)", againGrads[p.Name], seqGrads[p.Name], 0)
				}
			})
		}
	}
}

// TestSequenceTeamIsBitwise: on every kernel path, the sequence nodes'
// outputs and gradients are bit for bit the same whether each pass runs
// on the calling goroutine alone or on a team of 2 or 3 workers (see
// team), for the RNN and the LSTM, with 1 to 71 rows: dot tiles of every
// kind, the backward product through W_hhᵀ and, past smallProductRows,
// the packed one.
func TestSequenceTeamIsBitwise(t *testing.T) {
	defer func(step, all int) { seqTeamStepMACs, seqTeamMACs = step, all }(seqTeamStepMACs, seqTeamMACs)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			for _, lstm := range []bool{false, true} {
				for _, b := range []int{1, 5, 32, smallProductRows + 7} {
					const steps, in, hd = 5, 9, 67
					ps := nn.NewParamSet()
					layer := newRecurrentLayer(ps, lstm, in, hd, 3)
					x := nntest.RandomParam(ps, "x", 11, 2, b, steps, in)
					h0 := nntest.RandomParam(ps, "h0", 12, 1, b, hd)
					c0 := nntest.RandomParam(ps, "c0", 13, 1, b, hd)
					seq := func(g nn.Graph) nn.Graph { return g }
					seqTeamStepMACs = math.MaxInt
					want, wantGrads := runLayer(t, ps, layer, x, h0, c0, seq)
					seqTeamStepMACs, seqTeamMACs = 0, 0
					for _, procs := range []int{2, 3} {
						runtime.GOMAXPROCS(procs)
						got, gotGrads := runLayer(t, ps, layer, x, h0, c0, seq)
						name := fmt.Sprintf("lstm=%v B=%d, %d workers", lstm, b, procs)
						for i := range want {
							assertBits(t, fmt.Sprintf("%s: output %d", name, i), got[i], want[i])
						}
						for _, p := range ps.List() {
							assertBits(t, name+": grad "+p.Name, gotGrads[p.Name], wantGrads[p.Name])
						}
					}
				}
			}
		})
	}
}

// assertBits fails t unless got and want hold the same bits.
func assertBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}
