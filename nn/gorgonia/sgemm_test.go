package gorgonia

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"arbench/nn"
)

// gemmPaths lists every kernel path, slowest first.
var gemmPaths = []gemmPath{gemmGo, gemmAVX2, gemmAVX512}

// useGemmPath makes the products of the rest of test t take path p,
// skipping t when this CPU lacks it.
func useGemmPath(t testing.TB, p gemmPath) {
	t.Helper()
	if !p.available() {
		t.Skipf("this CPU or build has no %s kernels", p)
	}
	prev := gemmUse
	gemmUse = p
	t.Cleanup(func() { gemmUse = prev })
}

// naiveGemm is the float64 reference of C = op(A)·op(B) (row-major, with
// leading dimensions lda and ldb).
func naiveGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int) []float64 {
	at := func(i, p int) float64 {
		if transA {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	bt := func(p, j int) float64 {
		if transB {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
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

// gemmCase is one product of the path tests, with its operands, the
// starting contents of C (row stride ldc) and the float64 reference of
// op(A)·op(B).
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	a, b, c0       []float32
	lda, ldb, ldc  int
	want           []float64
	name           string
}

// gemmCases covers every transpose combination at shapes around the
// tiles (6×16, 6×32; dot tiles 4×3, 6×8, 1×8, 1×16), the blocks (kc 256,
// mc 120, nc 1024) and k mod 8, serial and split across workers (the
// last shape is above every path's parallelMACs); every
// other shape has padded leading dimensions.
var gemmCases = sync.OnceValue(func() []gemmCase {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {1, 384, 128}, {1, 40, 300}, {1, 100, 513}, {2, 70, 7}, {5, 17, 3}, {6, 16, 8}, {6, 32, 9}, {6, 1100, 20}, {7, 33, 257}, {13, 80, 300}, {25, 1030, 17}, {50, 47, 7}, {121, 15, 300}, {64, 64, 32}, {130, 70, 513}, {300, 200, 64}, {260, 70, 513}}
	var cases []gemmCase
	for si, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		pad := 5 * (si % 2)
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				c := gemmCase{transA: ta, transB: tb, m: m, n: n, k: k, lda: k + pad, ldb: n + pad, ldc: n + pad}
				ra, rb := m, k
				if ta {
					ra, c.lda = k, m+pad
				}
				if tb {
					rb, c.ldb = n, k+pad
				}
				c.a, c.b = randVec(rng, ra*c.lda), randVec(rng, rb*c.ldb)
				c.c0 = randVec(rng, m*c.ldc)
				c.want = naiveGemm(ta, tb, m, n, k, c.a, c.lda, c.b, c.ldb)
				c.name = fmt.Sprintf("m=%d n=%d k=%d transA=%t transB=%t pad=%d", m, n, k, ta, tb, pad)
				cases = append(cases, c)
			}
		}
	}
	return cases
})

// run computes the case on the current path, C = op(A)·op(B) or with acc
// C = C0 + op(A)·op(B), starting from C0 either way.
func (g *gemmCase) run(pool *gemmPool, acc bool) []float32 {
	c := append([]float32(nil), g.c0...)
	pool.sgemm(g.transA, g.transB, g.m, g.n, g.k, g.a, g.lda, g.b, g.ldb, c, g.ldc, acc)
	return c
}

// check compares c with the reference, and the padding of C with C0.
func (g *gemmCase) check(t *testing.T, c []float32, acc bool) {
	t.Helper()
	tol := 4e-5 * math.Sqrt(float64(g.k)+1)
	for i := range g.m {
		for j := range g.ldc {
			got, at := c[i*g.ldc+j], fmt.Sprintf("%s acc=%t: c[%d,%d]", g.name, acc, i, j)
			if j >= g.n {
				if got != g.c0[i*g.ldc+j] {
					t.Fatalf("%s (padding) = %v, was %v", at, got, g.c0[i*g.ldc+j])
				}
				continue
			}
			w := g.want[i*g.n+j]
			if acc {
				w += float64(g.c0[i*g.ldc+j])
			}
			if d := math.Abs(float64(got) - w); !(d <= tol*(1+math.Abs(w))) {
				t.Fatalf("%s = %v, want %v", at, got, w)
			}
		}
	}
}

// TestSgemmAgainstNaive checks every kernel path against the float64
// reference on gemmCases, with and without accumulation into C.
func TestSgemmAgainstNaive(t *testing.T) {
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			var pool gemmPool
			for _, g := range gemmCases() {
				for _, acc := range []bool{false, true} {
					g.check(t, g.run(&pool, acc), acc)
				}
			}
		})
	}
}

// TestSgemmAVX512MatchesAVX2 checks that the AVX-512 path computes what
// the AVX2 path does bit for bit, on gemmCases.
func TestSgemmAVX512MatchesAVX2(t *testing.T) {
	useGemmPath(t, gemmAVX512)
	var pool gemmPool
	for _, g := range gemmCases() {
		for _, acc := range []bool{false, true} {
			gemmUse = gemmAVX2
			want := g.run(&pool, acc)
			gemmUse = gemmAVX512
			got := g.run(&pool, acc)
			for e := range got {
				if math.Float32bits(got[e]) != math.Float32bits(want[e]) {
					t.Fatalf("%s acc=%t: c[%d] is %v with AVX-512, %v with AVX2", g.name, acc, e, got[e], want[e])
				}
			}
		}
	}
}

// TestSgemmRowIndependent checks, on every path, the property incremental
// decoding relies on: a row of C is bitwise the same whether it is
// computed alone or inside a larger product (any position, any worker
// split, any column tiling).
func TestSgemmRowIndependent(t *testing.T) {
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			testRowIndependent(t)
		})
	}
}

func testRowIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const m, n, k = 131, 392, 300 // 392 = 12·32 + 8 = 24·16 + 8
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
		// Column subsets (different column tilings): the leading 20, and
		// 45 starting at column 7.
		for _, cols := range [][2]int{{0, 20}, {7, 45}} {
			j0, nc := cols[0], cols[1]
			bo := j0
			if tb {
				bo = j0 * ldb
			}
			sub := make([]float32, m*nc)
			pool.sgemm(false, tb, m, nc, k, a, k, b[bo:], ldb, sub, nc, false)
			for i := range m {
				for j := range nc {
					if sub[i*nc+j] != full[i*n+j0+j] {
						t.Fatalf("transB=%t: (%d,%d) in a %d-column product %v, in the full one %v", tb, i, j0+j, nc, sub[i*nc+j], full[i*n+j0+j])
					}
				}
			}
		}
	}
}

// TestGemmPathSelection checks ARBENCH_GEMM's parsing: every available
// path by name, the fastest for "", and a clear error for anything else.
func TestGemmPathSelection(t *testing.T) {
	best, err := parseGemmPath("")
	if err != nil || !best.available() {
		t.Fatalf(`parseGemmPath("") = %v, %v`, best, err)
	}
	for _, p := range gemmPaths {
		got, err := parseGemmPath(p.String())
		switch {
		case p.available() && (err != nil || got != p):
			t.Errorf("parseGemmPath(%q) = %v, %v", p, got, err)
		case !p.available() && (err == nil || !strings.Contains(err.Error(), "no "+p.String())):
			t.Errorf("parseGemmPath(%q) on a CPU without it: err %v", p, err)
		case p > best && p.available():
			t.Errorf("%s is available but the default is %s", p, best)
		}
	}
	for _, bad := range []string{"AVX2", "sse", "avx-512"} {
		if _, err := parseGemmPath(bad); err == nil || !strings.Contains(err.Error(), gemmEnv) {
			t.Errorf("parseGemmPath(%q): err %v, want one naming %s", bad, err, gemmEnv)
		}
	}
	// A refused name keeps the fastest path and makes opening the backend
	// by name fail with the variable's error (no panic at start-up).
	p, err := gemmPathFromEnv("bogus")
	if p != best || err == nil {
		t.Errorf(`gemmPathFromEnv("bogus") = %v, %v; want %v and an error`, p, err, best)
	}
	saved := gemmEnvErr
	defer func() { gemmEnvErr = saved }()
	gemmEnvErr = err
	if _, err := nn.OpenBackend("gorgonia", "cpu"); err == nil || !strings.Contains(err.Error(), gemmEnv) {
		t.Errorf("OpenBackend with a bad %s: %v", gemmEnv, err)
	}
}

// TestDotKernelsMatchPortable compares the assembly dot kernels with
// dotLanes (which rounds products separately) within rounding, and checks
// that a product's value does not depend on the kernel computing it.
func TestDotKernelsMatchPortable(t *testing.T) {
	useGemmPath(t, gemmAVX2)
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

// TestDotTilingIsBitwise checks, on every path, that A·Bᵀ (dotNT: tiles
// of 6 and 4 rows, overlapping where m mod 6 leaves no exact fit, column
// blocks and the overlapping last group of 8 columns) computes every
// element bit for bit as the product of its row alone does (one row: no
// tiles) and as a product of a block of columns does (how the sequence
// node's team splits it), at odd sizes past the dot kernels' cache block.
func TestDotTilingIsBitwise(t *testing.T) {
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			rng := rand.New(rand.NewPCG(21, 22))
			var pool gemmPool
			for _, nk := range [][2]int{{1037, 263}, {67, 515}, {9, 2053}, {16, 8}} {
				n, k := nk[0], nk[1]
				b := randVec(rng, n*k)
				for _, m := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 32, 71} {
					a := randVec(rng, m*k)
					full := make([]float32, m*n)
					pool.sgemm(false, true, m, n, k, a, k, b, k, full, n, false)
					testDotRows(t, &pool, m, n, k, a, b, full)
					testDotColumns(t, &pool, m, n, k, a, b, full)
				}
			}
		})
	}
}

func testDotRows(t *testing.T, pool *gemmPool, m, n, k int, a, b, full []float32) {
	t.Helper()
	row := make([]float32, n)
	for i := range m {
		pool.sgemm(false, true, 1, n, k, a[i*k:(i+1)*k], k, b, k, row, n, false)
		for j, v := range row {
			if math.Float32bits(v) != math.Float32bits(full[i*n+j]) {
				t.Fatalf("m=%d n=%d k=%d: (%d,%d) alone %v, in the product %v", m, n, k, i, j, v, full[i*n+j])
			}
		}
	}
}

func testDotColumns(t *testing.T, pool *gemmPool, m, n, k int, a, b, full []float32) {
	t.Helper()
	for _, cols := range [][2]int{{0, 8}, {8, min(n, 72)}, {n / 16 * 8, n}} {
		lo, hi := cols[0], cols[1]
		if lo >= hi {
			continue
		}
		sub := make([]float32, m*(hi-lo))
		pool.sgemm(false, true, m, hi-lo, k, a, k, b[lo*k:], k, sub, hi-lo, false)
		for i := range m {
			for j := lo; j < hi; j++ {
				if got, want := sub[i*(hi-lo)+j-lo], full[i*n+j]; math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("m=%d n=%d k=%d: (%d,%d) in columns [%d,%d) %v, in the product %v", m, n, k, i, j, lo, hi, got, want)
				}
			}
		}
	}
}

// TestDotRowTiles checks that the row tiles of dotLaneSums512 cover every
// row exactly once or, where they overlap, within the rows, for m = 4 to
// 100, with as few tiles as 6-row tiles leave.
func TestDotRowTiles(t *testing.T) {
	for m := 4; m <= 100; m++ {
		seen := make([]int, m)
		tiles := 0
		dotRowTiles(m, func(i, h int) {
			if h != 6 && h != 4 || i < 0 || i+h > m {
				t.Fatalf("m=%d: tile of %d rows at %d", m, h, i)
			}
			for r := i; r < i+h; r++ {
				seen[r]++
			}
			tiles++
		})
		for r, c := range seen {
			if c == 0 {
				t.Fatalf("m=%d: row %d not covered", m, r)
			}
		}
		if most := m/6 + 2; tiles > most {
			t.Errorf("m=%d: %d tiles, want at most %d", m, tiles, most)
		}
	}
}

// TestDotKernelsAVX512MatchAVX2 checks that the 6×8, 4×8 and 1×16 AVX-512
// dot tiles compute every product bit for bit as the AVX2 1×8 tile does.
func TestDotKernelsAVX512MatchAVX2(t *testing.T) {
	useGemmPath(t, gemmAVX512)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, k8 := range []int{1, 2, 5, 16, 64} {
		const groups = 2 // of 16 rows of b: two 1×16 groups, four 6×8 ones
		lda, ldb, ldc := 8*k8+3, 8*k8+5, 16*groups+1
		a, b := randVec(rng, 6*lda), randVec(rng, 16*groups*ldb)
		want := make([]float32, 6*ldc)
		for r := range 6 {
			dot1x8AVX2(k8, &a[r*lda], &b[0], ldb, 2*groups, &want[r*ldc])
		}
		c6 := make([]float32, 6*ldc)
		dot6x8(k8, a, lda, b, ldb, 2*groups, c6, ldc)
		c4 := make([]float32, 4*ldc)
		dot4x8(k8, a[2*lda:], lda, b, ldb, 2*groups, c4, ldc)
		c1 := make([]float32, 16*groups)
		dot1x16(k8, a[5*lda:], b, ldb, groups, c1)
		for r := range 6 {
			for j := range 16 * groups {
				w := want[r*ldc+j]
				if got := c6[r*ldc+j]; math.Float32bits(got) != math.Float32bits(w) {
					t.Fatalf("k8=%d: (%d,%d) is %v in a 6×8 tile, %v in an AVX2 1×8 tile", k8, r, j, got, w)
				}
				if got := c1[j]; r == 5 && math.Float32bits(got) != math.Float32bits(w) {
					t.Fatalf("k8=%d: (5,%d) is %v in a 1×16 tile, %v in an AVX2 1×8 tile", k8, j, got, w)
				}
				if r >= 2 && math.Float32bits(c4[(r-2)*ldc+j]) != math.Float32bits(w) {
					t.Fatalf("k8=%d: (%d,%d) is %v in a 4×8 tile, %v in an AVX2 1×8 tile", k8, r, j, c4[(r-2)*ldc+j], w)
				}
			}
		}
	}
}

// TestKernelGoMatchesAVX2 compares the portable micro-kernel with the
// assembly one (when the CPU has it) within rounding.
func TestKernelGoMatchesAVX2(t *testing.T) {
	useGemmPath(t, gemmAVX2)
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

// TestKernelsAVX512MatchAVX2 checks the AVX-512 micro-kernels against
// kernelAVX2B bit for bit, B packed and in place, and that they write
// nothing outside their tile.
func TestKernelsAVX512MatchAVX2(t *testing.T) {
	useGemmPath(t, gemmAVX512)
	rng := rand.New(rand.NewPCG(13, 14))
	const ldc = 37
	for _, k := range []int{1, 2, 3, 4, 5, 8, 255, 256} {
		for _, ldb := range []int{gemmNR, 2 * gemmNR, 41} {
			a, b := randVec(rng, k*gemmMR), randVec(rng, 2*k*ldb+gemmNR)
			next := gemmNR // the second panel: the next 16 columns, or the next packed panel
			if ldb == gemmNR {
				next = k * gemmNR
			}
			for _, load := range []bool{false, true} {
				init := randVec(rng, gemmMR*ldc)
				want := append([]float32(nil), init...)
				kernelAVX2B(k, &a[0], &b[0], ldb, &want[0], ldc, load)
				kernelAVX2B(k, &a[0], &b[next], ldb, &want[gemmNR], ldc, load)
				c32 := append([]float32(nil), init...)
				kernel6x32AVX512(k, &a[0], 1, gemmMR, &b[0], &b[next], ldb, &c32[0], ldc, load)
				c16 := append([]float32(nil), init...)
				kernel6x16AVX512(k, &a[0], 1, gemmMR, &b[0], ldb, &c16[0], ldc, load)
				for i := range want {
					w16 := want[i]
					if i%ldc >= gemmNR {
						w16 = init[i]
					}
					if math.Float32bits(c32[i]) != math.Float32bits(want[i]) || math.Float32bits(c16[i]) != math.Float32bits(w16) {
						t.Fatalf("k=%d ldb=%d load=%t: element (%d,%d): 6×32 %v, 6×16 %v, AVX2 %v", k, ldb, load, i/ldc, i%ldc, c32[i], c16[i], want[i])
					}
				}
			}
		}
	}
}

// BenchmarkSgemm measures every kernel path, in one run, on the square
// product of the ceiling and the shapes of a small model's training step
// (2048 positions, width 128 or 512) and decoding steps: NT is a linear
// layer's forward product (dotNT), NN and TN its backward ones.
func BenchmarkSgemm(b *testing.B) {
	shapes := []struct {
		m, n, k        int
		transA, transB bool
	}{
		{512, 512, 512, false, false},
		{2048, 384, 128, false, true},
		{2048, 128, 384, false, false},
		{384, 128, 2048, true, false},
		{2048, 128, 512, false, true},
		{2048, 512, 128, false, false},
		{32, 512, 128, false, true},
		{32, 128, 512, false, false},
		{1, 512, 512, false, true},
		{1, 512, 512, false, false},
	}
	op := map[bool]string{false: "N", true: "T"}
	for _, s := range shapes {
		shape := fmt.Sprintf("%dx%dx%d_%s%s", s.m, s.n, s.k, op[s.transA], op[s.transB])
		for _, p := range gemmPaths { // adjacent in time: the machine may be noisy
			b.Run(shape+"/"+p.String(), func(b *testing.B) {
				useGemmPath(b, p)
				benchSgemm(b, s.transA, s.transB, s.m, s.n, s.k)
			})
		}
	}
}

func benchSgemm(b *testing.B, transA, transB bool, m, n, k int) {
	rng := rand.New(rand.NewPCG(7, 8))
	x, w := randVec(rng, m*k), randVec(rng, k*n)
	c := make([]float32, m*n)
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	var pool gemmPool
	pool.sgemm(transA, transB, m, n, k, x, lda, w, ldb, c, n, false)
	b.ResetTimer()
	for range b.N {
		pool.sgemm(transA, transB, m, n, k, x, lda, w, ldb, c, n, false)
	}
	b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
