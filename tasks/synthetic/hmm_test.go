package synthetic

import (
	"math"
	"math/rand/v2"
	"testing"

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
