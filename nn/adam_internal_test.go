package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// adamValues draws n float32s, mostly N(0, scale²), with zeros, negative
// zeros, subnormals, huge values and infinities mixed in.
func adamValues(rng *rand.Rand, n int, scale float64) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -3e-42, 3e38, -1e30, float32(math.Inf(1)), 1e-20}
	out := make([]float32, n)
	for i := range out {
		if rng.IntN(8) == 0 {
			out[i] = special[rng.IntN(len(special))]
			continue
		}
		out[i] = float32(scale * rng.NormFloat64())
	}
	return out
}

// TestAdamKernelBitwise: adamSpan (the AVX-512 kernel where the CPU has
// it, adamElems for the tail) leaves bit for bit the parameters and
// moments of adamElems, with and without weight decay, early and late
// bias corrections, on lengths around the eight-element blocks and with
// special values among parameters, gradients and moments (NaN included).
func TestAdamKernelBitwise(t *testing.T) {
	if !haveAdamAVX512 {
		t.Log("no AVX-512: adamSpan is adamElems")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	for _, wd := range []float64{0, 0.01, math.Copysign(0, -1)} {
		for _, step := range []float64{1, 7, 3000} {
			u := adamUpdate{b1: 0.9, omb1: 1 - 0.9, b2: 0.999, omb2: 1 - 0.999,
				stepSize: 1e-3 / (1 - math.Pow(0.9, step)), bc2Sqrt: math.Sqrt(1 - math.Pow(0.999, step)), eps: 1e-8, wd: wd}
			for _, n := range []int{0, 1, 7, 8, 9, 16, 31, 1000} {
				p, g := adamValues(rng, n, 1), adamValues(rng, n, 0.1)
				m, v := adamValues(rng, n, 0.01), adamValues(rng, n, 1e-4)
				if n > 2 {
					g[1], p[2] = float32(math.NaN()), float32(math.NaN())
				}
				for i := range v {
					v[i] = float32(math.Abs(float64(v[i])))
				}
				want := [4][]float32{clone32(p), clone32(g), clone32(m), clone32(v)}
				adamElems(u, want[0], want[1], want[2], want[3])
				adamSpan(adamJob{u: u, p: p, g: g, m: m, v: v})
				sameAdamArrays(t, fmt.Sprintf("wd=%v t=%v n=%d", wd, step, n), [4][]float32{p, g, m, v}, want)
			}
		}
	}
}

func clone32(x []float32) []float32 { return append([]float32(nil), x...) }

// TestAdamJobsSplit: Step's jobs, run on several goroutines, update a
// large parameter exactly as one pass of adamElems does.
func TestAdamJobsSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	n := 5*adamChunk + 13
	p, g, m, v := adamValues(rng, n, 1), adamValues(rng, n, 0.1), make([]float32, n), make([]float32, n)
	u := adamUpdate{b1: 0.9, omb1: 0.1, b2: 0.999, omb2: 1 - 0.999, stepSize: 1e-2, bc2Sqrt: math.Sqrt(1 - 0.999), eps: 1e-8}
	want := [4][]float32{clone32(p), clone32(g), clone32(m), clone32(v)}
	adamElems(u, want[0], want[1], want[2], want[3])
	var jobs []adamJob
	for lo := 0; lo < n; lo += adamChunk {
		hi := min(lo+adamChunk, n)
		jobs = append(jobs, adamJob{u: u, p: p[lo:hi], g: g[lo:hi], m: m[lo:hi], v: v[lo:hi]})
	}
	runAdamJobs(jobs)
	sameAdamArrays(t, "split", [4][]float32{p, g, m, v}, want)
}

// sameAdamArrays fails t unless the parameters, gradients and moments got
// are bit for bit those of want.
func sameAdamArrays(t *testing.T, what string, got, want [4][]float32) {
	t.Helper()
	for k := range got {
		for i := range got[k] {
			if math.Float32bits(got[k][i]) != math.Float32bits(want[k][i]) {
				t.Fatalf("%s: array %d element %d is %v (%#x), adamElems gives %v (%#x)",
					what, k, i, got[k][i], math.Float32bits(got[k][i]), want[k][i], math.Float32bits(want[k][i]))
			}
		}
	}
}
