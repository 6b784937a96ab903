package gorgonia

import (
	"context"
	"math/rand/v2"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// fusedCell returns g's fused LSTM cell; the test fails if it has none.
func fusedCell(t *testing.T, g nn.Graph) nn.LSTMCeller {
	fc, ok := g.(nn.LSTMCeller)
	if !ok {
		t.Fatalf("%T does not implement nn.LSTMCeller", g)
	}
	return fc
}

// TestGradLSTMCell checks the fused cell's gradients with respect to the
// gates and the cell state by finite differences, with both outputs (h'
// and c') reaching the Loss, and with only h' (the gradient of c' is then
// zero, as for the final state of a sequence).
func TestGradLSTMCell(t *testing.T) {
	const rows, hd = 3, 4
	for _, both := range []bool{true, false} {
		checkCase(t, gradCase{name: map[bool]string{true: "h+c", false: "h"}[both], setup: func(ps *nn.ParamSet) func(g nn.Graph) nn.Tensor {
			gates, c := param(ps, "gates", rows, 4*hd), param(ps, "c", rows, hd)
			return func(g nn.Graph) nn.Tensor {
				h, c2 := fusedCell(t, g).LSTMCell(g.Param(gates), g.Param(c))
				if !both {
					return h
				}
				return g.Concat(1, h, g.Tanh(c2))
			}
		}})
	}
}

// TestGradLSTMFused checks the gradients of two unrolled steps of nn.LSTM,
// which chain the fused cell's c' into the next cell, by finite differences.
func TestGradLSTMFused(t *testing.T) {
	const b, steps, in, hd = 2, 3, 3, 4
	ps := nn.NewParamSet()
	lstm := nn.NewLSTM(ps, "lstm", 0, in, hd)
	lstm.Init(rand.New(rand.NewPCG(7, 0)))
	x, h0, c0 := param(ps, "x", b, steps, in), param(ps, "h0", b, hd), param(ps, "c0", b, hd)
	build := func(g nn.Graph) error {
		fusedCell(t, g)
		out, _, cT := lstm.Forward(g, g.Param(x), g.Param(h0), g.Param(c0))
		g.Loss(g.Add(nntest.Projection(g, out, 5), nntest.Projection(g, cT, 6)))
		return nil
	}
	nntest.CheckGradientsWith(t, New(), ps, nn.Feeds{}, build, nntest.Options{MaxPerParam: -1})
}

// TestLSTMFusedMatchesComposition compares the outputs and every parameter
// gradient of nn.LSTM with the fused cell against the reference
// composition of primitive ops (composedGraph hides the fused cell), at a
// size where the cell's kernels split rows across goroutines.
func TestLSTMFusedMatchesComposition(t *testing.T) {
	const b, steps, in, hd = 160, 2, 8, 128
	ps := nn.NewParamSet()
	lstm := nn.NewLSTM(ps, "lstm", 0, in, hd)
	lstm.Init(rand.New(rand.NewPCG(3, 0)))
	x := nntest.RandomParam(ps, "x", 11, 2, b, steps, in)
	c0 := nntest.RandomParam(ps, "c0", 12, 1, b, hd)
	run := func(composed bool) (*nn.Result, map[string][]float32) {
		exe, err := New().Compile(nn.Spec{Key: "lstm", Params: ps, Train: true}, func(g nn.Graph) error {
			if composed {
				g = composedGraph{g}
			}
			out, hT, cT := lstm.Forward(g, g.Param(x), g.Const(make([]float32, b*hd), b, hd), g.Param(c0))
			g.Output("out", out)
			g.Output("h", hT)
			g.Output("c", cT)
			g.Loss(g.Add(nntest.Projection(g, out, 5), nntest.Projection(g, cT, 6)))
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
		grads := map[string][]float32{}
		for _, p := range ps.List() {
			grads[p.Name] = append([]float32(nil), p.Grad...)
		}
		return res, grads
	}
	fused, fusedGrads := run(false)
	ref, refGrads := run(true)
	for _, name := range []string{"out", "h", "c"} {
		nntest.AssertClose(t, name, fused.Outputs[name].Data, ref.Outputs[name].Data, 1e-6)
	}
	for _, p := range ps.List() {
		nntest.AssertClose(t, "grad "+p.Name, fusedGrads[p.Name], refGrads[p.Name], 1e-5)
	}
	// Same inputs, same bits.
	again, againGrads := run(false)
	for _, name := range []string{"out", "h", "c"} {
		nntest.AssertClose(t, name+" (rerun)", again.Outputs[name].Data, fused.Outputs[name].Data, 0)
	}
	for _, p := range ps.List() {
		nntest.AssertClose(t, "grad "+p.Name+" (rerun)", againGrads[p.Name], fusedGrads[p.Name], 0)
	}
}
