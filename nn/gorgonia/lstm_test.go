package gorgonia

import (
	"context"
	"fmt"
	"math"
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

// lstmCellForwardRows is lstmCellForward as it was before its loops had
// assembly versions: every row in turn, in scalar Go after the
// activations; the reference of TestLSTMCellKernels.
func lstmCellForwardRows(gates, c, h, c2, acts []float32, bh, hd, lo, hi int) {
	ig, fg, gg, og, tc := acts[:bh], acts[bh:2*bh], acts[2*bh:3*bh], acts[3*bh:4*bh], acts[4*bh:5*bh]
	for r0 := lo; r0 < hi; r0 += hd {
		row := gates[4*r0 : 4*r0+4*hd]
		r1 := r0 + hd
		sigmoidInto(row[:hd], ig[r0:r1])
		sigmoidInto(row[hd:2*hd], fg[r0:r1])
		tanhInto(row[2*hd:3*hd], gg[r0:r1])
		sigmoidInto(row[3*hd:], og[r0:r1])
		for j := r0; j < r1; j++ {
			c2[j] = float32(fg[j]*c[j]) + float32(ig[j]*gg[j])
		}
		tanhInto(c2[r0:r1], tc[r0:r1])
		for j := r0; j < r1; j++ {
			h[j] = og[j] * tc[j]
		}
	}
}

// cellPad is the number of sentinel values after every output of the
// kernel tests, which must stay as they are.
const cellPad = 19

// cellValues returns n values: normal ones of scale s, some of them
// (when special is set) replaced by ±0, ±Inf, NaN, subnormals, huge and
// tiny values and values near 1.
func cellValues(rng *rand.Rand, n int, s float64, special bool) []float32 {
	sp := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), 0x1p-140, -0x1p-130, 3e38, -3e38, 1e-30, 1, 1 - 0x1p-24, -1, 0.5, 89, -89}
	x := make([]float32, n+cellPad)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * s)
		if special && rng.IntN(5) == 0 {
			x[i] = sp[rng.IntN(len(sp))]
		}
	}
	return x[:n]
}

// sentinels returns n+cellPad copies of a NaN pattern no kernel makes,
// as n values with the padding behind them.
func sentinels(n int) []float32 {
	x := make([]float32, n+cellPad)
	for i := range x {
		x[i] = math.Float32frombits(0x7fa5a5a5)
	}
	return x[:n]
}

// sameBits reports whether got and want (with their padding) hold the same
// bits, any NaN matching any NaN (as in the activation kernels' tests,
// NaN payloads are unspecified), and names the first difference.
func sameBits(got, want []float32) (bool, string) {
	got, want = got[:len(got)+cellPad], want[:len(want)+cellPad]
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			return false, fmt.Sprintf("[%d] = %v (%#x), want %v (%#x)", i, g, math.Float32bits(g), w, math.Float32bits(w))
		}
	}
	return true, ""
}

// cellRanges returns the ranges [lo, hi) of rows × hd elements that
// splitRange gives bodies: all rows, and runs of whole rows.
func cellRanges(rows, hd int) [][2]int {
	rs := [][2]int{{0, rows * hd}}
	for a := 0; a < rows; a++ {
		for b := a + 1; b <= rows; b += 2 {
			rs = append(rs, [2]int{a * hd, b * hd})
		}
	}
	return rs
}

// TestLSTMCellKernels checks that the fused cell's forward and backward
// kernels give on every path (gemmUse: Go, AVX2, AVX-512) bitwise the
// results of the scalar Go loops (lstmCellForwardRows,
// lstmCellBackwardGo), for row widths hd below, at and between multiples
// of 8 and 16, on the ranges splitRange gives, with and without special
// values, with dc a separate slice and dc = dc2 (as LSTMSequence calls
// it), and that they write nothing outside their range.
func TestLSTMCellKernels(t *testing.T) {
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			rng := rand.New(rand.NewPCG(uint64(p), 13))
			for _, hd := range []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 40, 47, 128, 129} {
				for _, rows := range []int{1, 2, 3, 5} {
					for _, special := range []bool{false, true} {
						for _, r := range cellRanges(rows, hd) {
							name := fmt.Sprintf("rows=%d hd=%d special=%v [%d,%d)", rows, hd, special, r[0], r[1])
							checkCellForward(t, rng, name, rows, hd, r[0], r[1], special)
							checkCellBackward(t, rng, name, rows, hd, r[0], r[1], special, false)
							checkCellBackward(t, rng, name+" dc=dc2", rows, hd, r[0], r[1], special, true)
						}
					}
				}
			}
		})
	}
}

func checkCellForward(t *testing.T, rng *rand.Rand, name string, rows, hd, lo, hi int, special bool) {
	t.Helper()
	bh := rows * hd
	gates, c := cellValues(rng, 4*bh, 3, special), cellValues(rng, bh, 2, special)
	var out [2][3][]float32 // h, c2, acts: got, want
	for k := range out {
		out[k] = [3][]float32{sentinels(bh), sentinels(bh), sentinels(5 * bh)}
	}
	lstmCellForward(gates, c, out[0][0], out[0][1], out[0][2], bh, hd, lo, hi)
	lstmCellForwardRows(gates, c, out[1][0], out[1][1], out[1][2], bh, hd, lo, hi)
	for k, what := range []string{"h", "c2", "acts"} {
		if ok, msg := sameBits(out[0][k], out[1][k]); !ok {
			t.Fatalf("%s: forward %s%s", name, what, msg)
		}
	}
}

func checkCellBackward(t *testing.T, rng *rand.Rand, name string, rows, hd, lo, hi int, special, alias bool) {
	t.Helper()
	bh := rows * hd
	acts := cellValues(rng, 5*bh, 0.5, special)
	c, dh, dc2 := cellValues(rng, bh, 2, special), cellValues(rng, bh, 1, special), cellValues(rng, bh, 1, special)
	var dg, dc, d2 [2][]float32 // got, want
	for k := range dg {
		dg[k], dc[k], d2[k] = sentinels(4*bh), sentinels(bh), append([]float32(nil), dc2[:bh+cellPad]...)[:bh]
		if alias {
			dc[k] = d2[k]
		}
	}
	lstmCellBackward(acts, c, dh, d2[0], dg[0], dc[0], bh, hd, lo, hi)
	lstmCellBackwardGo(acts, c, dh, d2[1], dg[1], dc[1], bh, hd, lo, hi)
	for _, o := range []struct {
		what      string
		got, want []float32
	}{{"dgates", dg[0], dg[1]}, {"dc", dc[0], dc[1]}, {"dc2", d2[0], d2[1]}} {
		if ok, msg := sameBits(o.got, o.want); !ok {
			t.Fatalf("%s: backward %s%s", name, o.what, msg)
		}
	}
}

// BenchmarkLSTMCellKernels times the fused cell's forward and backward
// kernels on every path at B·H = 32·128, one range (no splitRange).
func BenchmarkLSTMCellKernels(b *testing.B) {
	const rows, hd = 32, 128
	const bh = rows * hd
	rng := rand.New(rand.NewPCG(1, 2))
	gates, c := cellValues(rng, 4*bh, 3, false), cellValues(rng, bh, 2, false)
	acts, h, c2 := make([]float32, 5*bh), make([]float32, bh), make([]float32, bh)
	dh, dc, dg := cellValues(rng, bh, 1, false), cellValues(rng, bh, 1, false), make([]float32, 4*bh)
	for _, p := range gemmPaths {
		b.Run("forward/"+p.String(), func(b *testing.B) {
			useGemmPath(b, p)
			for b.Loop() {
				lstmCellForward(gates, c, h, c2, acts, bh, hd, 0, bh)
			}
		})
		b.Run("backward/"+p.String(), func(b *testing.B) {
			useGemmPath(b, p)
			for b.Loop() {
				lstmCellBackward(acts, c, dh, dc, dg, dc, bh, hd, 0, bh)
			}
		})
	}
	b.Run("forward/rows", func(b *testing.B) {
		for b.Loop() {
			lstmCellForwardRows(gates, c, h, c2, acts, bh, hd, 0, bh)
		}
	})
}
