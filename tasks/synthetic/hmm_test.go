package synthetic

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"

	"arbench/internal/fsum"
)

func TestHMMNextSumsToOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, alpha := range []float64{0.05, 0.5, 3} {
		m := NewHMM(rng, 7, 5, alpha)
		for _, row := range append(m.Trans, m.Emit...) {
			if s := fsum.Sum(row); math.Abs(s-1) > 1e-12 {
				t.Fatalf("alpha %v: a row sums to %v", alpha, s)
			}
		}
		p := make([]float64, m.Symbols())
		for range 20 {
			b := m.Start()
			for _, x := range m.Sample(rng, 30) {
				m.Next(b, p)
				if s := fsum.Sum(p); math.Abs(s-1) > 1e-12 {
					t.Fatalf("alpha %v: next-symbol probabilities sum to %v", alpha, s)
				}
				for v, pv := range p {
					if !(pv > 0) {
						t.Fatalf("alpha %v: p(%d) = %v, want > 0", alpha, v, pv)
					}
				}
				b = m.Observe(b, x)
				if s := fsum.Sum(b); math.Abs(s-1) > 1e-12 {
					t.Fatalf("alpha %v: belief sums to %v", alpha, s)
				}
			}
		}
	}
}

// enumerate returns P(x) by summing over every hidden path (no forward
// algorithm involved).
func enumerate(m *HMM, x []int) float64 {
	H := m.States()
	var total float64
	path := make([]int, len(x))
	var rec func(t int, p float64)
	rec = func(t int, p float64) {
		if t == len(x) {
			total += p
			return
		}
		for h := range H {
			q := p
			if t == 0 {
				q *= m.Init[h]
			} else {
				q *= m.Trans[path[t-1]][h]
			}
			path[t] = h
			rec(t+1, q*m.Emit[h][x[t]])
		}
	}
	rec(0, 1)
	return total
}

// chain returns Π_t P(x_t | x_<t) from the forward algorithm.
func chain(m *HMM, x []int) float64 {
	p := make([]float64, m.Symbols())
	b := m.Start()
	prob := 1.0
	for _, v := range x {
		prob *= m.Next(b, p)[v]
		b = m.Observe(b, v)
	}
	return prob
}

func TestHMMForwardMatchesEnumeration(t *testing.T) {
	m := NewHMM(rand.New(rand.NewPCG(3, 4)), 3, 3, 0.7)
	for a := range 3 {
		for b := range 3 {
			for c := range 3 {
				x := []int{a, b, c, (a + b) % 3}
				if got, want := chain(m, x), enumerate(m, x); math.Abs(got-want) > 1e-14 {
					t.Errorf("P(%v): forward %v, enumeration %v", x, got, want)
				}
			}
		}
	}
}

// TestHMMMatchesMonteCarlo checks the forward algorithm's probabilities of
// every length-3 sequence against frequencies of sequences drawn by the
// generative process (hidden states, then emissions).
func TestHMMMatchesMonteCarlo(t *testing.T) {
	m := NewHMM(rand.New(rand.NewPCG(5, 6)), 3, 3, 0.5)
	const N = 200000
	rng := rand.New(rand.NewPCG(7, 8))
	counts := map[[3]int]int{}
	for range N {
		x := m.Sample(rng, 3)
		counts[[3]int{x[0], x[1], x[2]}]++
	}
	var total float64
	for a := range 3 {
		for b := range 3 {
			for c := range 3 {
				p := chain(m, []int{a, b, c})
				total += p
				freq := float64(counts[[3]int{a, b, c}]) / N
				sigma := math.Sqrt(p * (1 - p) / N)
				if math.Abs(freq-p) > 5*sigma+1e-5 {
					t.Errorf("P(%d,%d,%d) = %.5f, Monte-Carlo frequency %.5f (5σ = %.5f)", a, b, c, p, freq, 5*sigma)
				}
			}
		}
	}
	if math.Abs(total-1) > 1e-12 {
		t.Errorf("probabilities of all length-3 sequences sum to %v", total)
	}
}

func TestGammaMean(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, alpha := range []float64{0.1, 0.5, 1, 2.5} {
		const N = 100000
		var s, s2 float64
		for range N {
			x := gamma(rng, alpha)
			if !(x >= 0) {
				t.Fatalf("gamma(%v) drew %v", alpha, x)
			}
			s += x
			s2 += x * x
		}
		mean, variance := s/N, s2/N-(s/N)*(s/N)
		// Gamma(α, 1) has mean α and variance α.
		if tol := 5 * math.Sqrt(alpha/N); math.Abs(mean-alpha) > tol {
			t.Errorf("gamma(%v): mean %v, want %v ± %v", alpha, mean, alpha, tol)
		}
		if math.Abs(variance-alpha) > 0.05*alpha+0.01 {
			t.Errorf("gamma(%v): variance %v, want about %v", alpha, variance, alpha)
		}
	}
}

func TestDrawInverseCDF(t *testing.T) {
	p := []float64{0.25, 0, 0.5, 0.25}
	for _, c := range []struct {
		u    float64
		want int
	}{{0, 0}, {0.2499, 0}, {0.25, 2}, {0.7499, 2}, {0.75, 3}, {0.99999, 3}, {1, 3}} {
		if got := draw(p, c.u); got != c.want {
			t.Errorf("draw(%v, %v) = %d, want %d", p, c.u, got, c.want)
		}
	}
}

// forEachSequence calls f with every sequence of T symbols of m.
func forEachSequence(m *HMM, T int, f func(x []int)) {
	x := make([]int, T)
	var rec func(t int)
	rec = func(t int) {
		if t == T {
			f(x)
			return
		}
		for v := range m.Symbols() {
			x[t] = v
			rec(t + 1)
		}
	}
	rec(0)
}

// TestEntropyRateMatchesEnumeration: the mean of the conditional
// entropies along x, weighted by P(x) over every sequence, is the block
// entropy H(X_1..X_T)/T = −Σ_x P(x)·log P(x)/T with P(x) summed over every
// hidden path (enumerate), for plain and sticky chains.
func TestEntropyRateMatchesEnumeration(t *testing.T) {
	base := NewHMM(rand.New(rand.NewPCG(11, 12)), 3, 3, 0.6)
	for name, m := range map[string]*HMM{"plain": base, "sticky": base.Sticky(0.8, 0), "blocks": base.Sticky(0.7, 2)} {
		const T = 5
		var block, viaChain, total float64
		forEachSequence(m, T, func(x []int) {
			p := enumerate(m, x)
			total += p
			block -= p * math.Log(p)
			viaChain += p * fsum.Sum(m.ConditionalEntropies(x))
		})
		if math.Abs(total-1) > 1e-12 {
			t.Fatalf("%s: probabilities sum to %v", name, total)
		}
		if math.Abs(block-viaChain) > 1e-12 {
			t.Errorf("%s: H(X_1..X_%d) = %v by enumeration, %v from the conditional entropies", name, T, block, viaChain)
		}
	}
}

// TestUnigramMatchesEnumeration: ū is the mean over positions of the
// marginals P(X_t = v), summed over every sequence.
func TestUnigramMatchesEnumeration(t *testing.T) {
	m := NewHMM(rand.New(rand.NewPCG(13, 14)), 3, 2, 0.5).Sticky(0.5, 0)
	const T = 4
	want := make([]float64, m.Symbols())
	forEachSequence(m, T, func(x []int) {
		p := enumerate(m, x)
		for _, v := range x {
			want[v] += p / T
		}
	})
	got := m.Unigram(T)
	for v := range want {
		if math.Abs(got[v]-want[v]) > 1e-14 {
			t.Errorf("ū(%d) = %v, enumeration %v", v, got[v], want[v])
		}
	}
}

// TestMixingTwoStates: a two-state chain [[1−a, a], [b, 1−b]] has
// λ₂ = 1 − a − b.
func TestMixingTwoStates(t *testing.T) {
	for _, c := range []struct{ a, b float64 }{{0.3, 0.2}, {0.9, 0.8}, {0.05, 0.01}} {
		m := &HMM{Init: []float64{0.5, 0.5}, Trans: [][]float64{{1 - c.a, c.a}, {c.b, 1 - c.b}}, Emit: [][]float64{{1}, {1}}}
		l2, relax, err := m.Mixing()
		if err != nil {
			t.Fatal(err)
		}
		want := math.Abs(1 - c.a - c.b)
		if math.Abs(l2-want) > 1e-12 || math.Abs(relax-1/(1-want)) > 1e-9 {
			t.Errorf("a=%v b=%v: |λ₂| = %v, relaxation %v; want %v, %v", c.a, c.b, l2, relax, want, 1/(1-want))
		}
	}
	// A reducible chain never mixes.
	m := &HMM{Init: []float64{0.5, 0.5}, Trans: [][]float64{{1, 0}, {0, 1}}, Emit: [][]float64{{1}, {1}}}
	if l2, relax, err := m.Mixing(); err != nil || l2 != 1 || !math.IsInf(relax, 1) {
		t.Errorf("identity chain: |λ₂| = %v, relaxation %v, %v; want 1, +Inf", l2, relax, err)
	}
}

// TestStickinessSlowsMixing: with one block per state the eigenvalues of
// the sticky chain are p + (1−p)·λ, so the relaxation time grows with p
// (about as 1/(1−p)); rows still sum to one, and emissions and the initial
// distribution are unchanged. With blocks, the mass leaving a block is
// (1−p) times the drawn row's.
func TestStickinessSlowsMixing(t *testing.T) {
	base := NewHMM(rand.New(rand.NewPCG(21, 22)), 16, 8, 0.1)
	baseVals := eigenvalues(t, base)
	prev := 0.0
	for _, p := range []float64{0, 0.5, 0.9, 0.99} {
		m := base.Sticky(p, 0)
		for h, row := range m.Trans {
			if s := fsum.Sum(row); math.Abs(s-1) > 1e-12 {
				t.Fatalf("p=%v: row %d sums to %v", p, h, s)
			}
		}
		got := eigenvalues(t, m)
		for _, l := range baseVals {
			want := complex(p, 0) + complex(1-p, 0)*l
			if !slices.ContainsFunc(got, func(g complex128) bool { return cmplx.Abs(g-want) < 1e-8 }) {
				t.Errorf("p=%v: p+(1−p)λ = %v is no eigenvalue of the sticky chain (%v)", p, want, got)
			}
		}
		_, relax, err := m.Mixing()
		if err != nil {
			t.Fatal(err)
		}
		if !(relax > prev) {
			t.Errorf("p=%v: relaxation time %v not above %v at smaller p", p, relax, prev)
		}
		prev = relax
		if !slices.Equal(m.Init, base.Init) || !slices.EqualFunc(m.Emit, base.Emit, slices.Equal) {
			t.Errorf("p=%v: Sticky changed the emissions or the initial distribution", p)
		}
	}
	if _, relax, _ := base.Sticky(0.99, 0).Mixing(); relax < 50 {
		t.Errorf("stickiness 0.99: relaxation time %v, want ≥ 50 steps", relax)
	}
	const p, blocks = 0.9, 4
	m := base.Sticky(p, blocks)
	for h := range 16 {
		var out, baseOut float64
		for h2 := range 16 {
			if h2/4 != h/4 {
				out += m.Trans[h][h2]
				baseOut += base.Trans[h][h2]
			}
		}
		if math.Abs(out-(1-p)*baseOut) > 1e-12 {
			t.Errorf("state %d: mass leaving its block %v, want (1−p)·%v", h, out, baseOut)
		}
	}
}

func eigenvalues(t *testing.T, m *HMM) []complex128 {
	t.Helper()
	a := mat.NewDense(m.States(), m.States(), nil)
	for h, row := range m.Trans {
		a.SetRow(h, row)
	}
	var eig mat.Eigen
	if !eig.Factorize(a, mat.EigenNone) {
		t.Fatal("eigendecomposition failed")
	}
	return eig.Values(nil)
}
