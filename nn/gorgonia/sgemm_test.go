package gorgonia

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveGemm is the float64 reference of C = op(A)·op(B).
func naiveGemm(transA, transB bool, m, n, k int, a, b []float32) []float64 {
	at := func(i, p int) float64 {
		if transA {
			return float64(a[p*m+i])
		}
		return float64(a[i*k+p])
	}
	bt := func(p, j int) float64 {
		if transB {
			return float64(b[j*k+p])
		}
		return float64(b[p*n+j])
	}
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				s += at(i, p) * bt(p, j)
			}
			c[i*n+j] = s
		}
	}
	return c
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestSgemmAgainstNaive covers every transpose combination and shapes
// around the tile (6×16) and block (kc 256, mc 120) boundaries, serial and
// split across workers.
func TestSgemmAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {1, 384, 128}, {1, 40, 300}, {5, 17, 3}, {6, 16, 8}, {6, 1100, 20}, {7, 33, 257}, {121, 15, 300}, {64, 64, 32}, {130, 70, 513}, {300, 200, 64}}
	var pool gemmPool
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				a, b := randVec(rng, m*k), randVec(rng, k*n)
				want := naiveGemm(ta, tb, m, n, k, a, b)
				lda, ldb := k, n
				if ta {
					lda = m
				}
				if tb {
					ldb = k
				}
				c := randVec(rng, m*n) // stale contents must be overwritten
				pool.sgemm(ta, tb, m, n, k, a, lda, b, ldb, c, n, false)
				tol := 1e-5 * math.Sqrt(float64(k)) * 4
				for i, w := range want {
					if d := math.Abs(float64(c[i]) - w); d > tol*(1+math.Abs(w)) {
						t.Fatalf("m=%d n=%d k=%d transA=%t transB=%t: c[%d] = %v, want %v", m, n, k, ta, tb, i, c[i], w)
					}
				}
			}
		}
	}
}

// TestSgemmRowIndependent checks the property incremental decoding relies
// on: a row of C is bitwise the same whether it is computed alone or
// inside a larger product (any position, any worker split).
func TestSgemmRowIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const m, n, k = 131, 384, 300
	var pool gemmPool
	for _, tb := range []bool{false, true} {
		a, b := randVec(rng, m*k), randVec(rng, k*n)
		ldb := n
		if tb {
			ldb = k
		}
		full := make([]float32, m*n)
		pool.sgemm(false, tb, m, n, k, a, k, b, ldb, full, n, false)
		for _, i := range []int{0, 5, 6, 64, 130} {
			row := make([]float32, n)
			pool.sgemm(false, tb, 1, n, k, a[i*k:(i+1)*k], k, b, ldb, row, n, false)
			for j := range n {
				if row[j] != full[i*n+j] {
					t.Fatalf("transB=%t: row %d col %d alone %v, in the full product %v", tb, i, j, row[j], full[i*n+j])
				}
			}
		}
		// The leading 20 columns alone (a different column tiling).
		sub := make([]float32, m*20)
		pool.sgemm(false, tb, m, 20, k, a, k, b, ldb, sub, 20, false)
		for i := range m {
			for j := range 20 {
				if sub[i*20+j] != full[i*n+j] {
					t.Fatalf("transB=%t: (%d,%d) in a 20-column product %v, in the full one %v", tb, i, j, sub[i*20+j], full[i*n+j])
				}
			}
		}
	}
}

// TestDotKernelsMatchPortable compares the assembly dot kernels with
// dotLanes (which rounds products separately) within rounding, and checks
// that a product's value does not depend on the kernel computing it.
func TestDotKernelsMatchPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, k8 := range []int{0, 1, 4, 16} {
		a, b := randVec(rng, 4*8*k8+8), randVec(rng, 8*8*k8+8)
		lda, ldb := 8*k8, 8*k8
		c4 := make([]float32, 4*3)
		dot4x3(k8, a, lda, b, ldb, 1, c4, 3)
		c1 := make([]float32, 8)
		dot1x8(k8, a, b, ldb, 1, c1)
		for s := range 3 {
			if c4[s] != c1[s] {
				t.Fatalf("k8=%d: product (0,%d) is %v in a 4×3 tile and %v in a 1×8 tile", k8, s, c4[s], c1[s])
			}
		}
		for r := range 4 {
			for s := range 3 {
				want := dotLanes(k8, a[r*lda:], b[s*ldb:])
				if d := math.Abs(float64(c4[3*r+s] - want)); d > 1e-5*float64(1+k8)*(1+math.Abs(float64(want))) {
					t.Fatalf("k8=%d: (%d,%d) = %v, portable %v", k8, r, s, c4[3*r+s], want)
				}
			}
		}
	}
}

// TestKernelGoMatchesAVX2 compares the portable micro-kernel with the
// assembly one (when the CPU has it) within rounding.
func TestKernelGoMatchesAVX2(t *testing.T) {
	if !haveAVX2FMA {
		t.Skip("no AVX2+FMA micro-kernel on this machine")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{1, 3, 4, 5, 8, 255} {
		a, b := randVec(rng, k*gemmMR), randVec(rng, k*gemmNR)
		for _, load := range []bool{false, true} {
			init := randVec(rng, gemmMR*20)
			c1 := append([]float32(nil), init...)
			c2 := append([]float32(nil), init...)
			kernelAVX2(k, &a[0], &b[0], &c1[0], 20, load)
			kernelGo(k, a, b, gemmNR, c2, 20, load)
			for i := range c1 {
				if i%20 >= gemmNR {
					if c1[i] != init[i] || c2[i] != init[i] {
						t.Fatalf("k=%d: element %d outside the tile was written", k, i)
					}
					continue
				}
				if d := math.Abs(float64(c1[i] - c2[i])); d > 1e-5*math.Sqrt(float64(k))*(1+math.Abs(float64(c2[i]))) {
					t.Fatalf("k=%d load=%t: element %d: AVX2 %v, Go %v", k, load, i, c1[i], c2[i])
				}
			}
		}
	}
}

// BenchmarkSgemm measures the GEMM at the shapes of a training step's
// projections (2048 positions, width 128 → 384).
func BenchmarkSgemm(b *testing.B) {
	const m, n, k = 2048, 384, 128
	rng := rand.New(rand.NewPCG(7, 8))
	x, w := randVec(rng, m*k), randVec(rng, n*k)
	c := make([]float32, m*n)
	var pool gemmPool
	b.ResetTimer()
	for range b.N {
		pool.sgemm(false, true, m, n, k, x, k, w, k, c, n, false)
	}
	b.ReportMetric(2*m*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
