package synthetic

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// HMM is a hidden Markov model over H hidden states emitting K symbols: the
// synthetic/oracle task's source, whose exact next-symbol distribution for
// any prefix is given by the forward algorithm (Rabiner 1989, "A tutorial
// on hidden Markov models", eqs. 19–21, with per-step normalisation).
type HMM struct {
	// Init[h] = P(h_1 = h).
	Init []float64
	// Trans[h][h'] = P(h_{t+1} = h' | h_t = h).
	Trans [][]float64
	// Emit[h][v] = P(x_t = v | h_t = h).
	Emit [][]float64
}

// NewHMM draws a random HMM: the initial distribution, every transition row
// and every emission row are independent Dirichlet(alpha, …, alpha) draws.
// Small alpha (< 1) makes sparse, predictable rows.
func NewHMM(rng *rand.Rand, states, symbols int, alpha float64) *HMM {
	if states < 1 || symbols < 1 || !(alpha > 0) {
		panic(fmt.Sprintf("synthetic: NewHMM(%d states, %d symbols, alpha %v)", states, symbols, alpha))
	}
	m := &HMM{Init: dirichlet(rng, states, alpha)}
	for range states {
		m.Trans = append(m.Trans, dirichlet(rng, states, alpha))
		m.Emit = append(m.Emit, dirichlet(rng, symbols, alpha))
	}
	return m
}

// States returns the number of hidden states H.
func (m *HMM) States() int { return len(m.Init) }

// Symbols returns the number of emitted symbols K.
func (m *HMM) Symbols() int { return len(m.Emit[0]) }

// Belief is the forward variable P(h_t = · | x_<t): the distribution of the
// next hidden state given the symbols seen so far.
type Belief []float64

// Start returns the belief before any symbol (the initial distribution).
func (m *HMM) Start() Belief { return append(Belief(nil), m.Init...) }

// Next writes P(x_t = v | x_<t) = Σ_h b[h]·Emit[h][v] into out (length K)
// and returns it.
func (m *HMM) Next(b Belief, out []float64) []float64 {
	clear(out)
	for h, bh := range b {
		if bh == 0 {
			continue
		}
		for v, e := range m.Emit[h] {
			out[v] += bh * e
		}
	}
	return out
}

// Observe returns the belief after seeing symbol v:
// b'[h'] ∝ Σ_h b[h]·Emit[h][v]·Trans[h][h'].
func (m *HMM) Observe(b Belief, v int) Belief {
	H := len(b)
	out := make(Belief, H)
	var z float64
	for h, bh := range b {
		w := bh * m.Emit[h][v]
		if w == 0 {
			continue
		}
		for h2, a := range m.Trans[h] {
			out[h2] += w * a
		}
		z += w
	}
	if z == 0 {
		panic(fmt.Sprintf("synthetic: HMM observed symbol %d of probability 0", v))
	}
	for h := range out {
		out[h] /= z
	}
	return out
}

// Sample draws n symbols from the generative process (hidden states then
// emissions).
func (m *HMM) Sample(rng *rand.Rand, n int) []int {
	out := make([]int, n)
	h := draw(m.Init, rng.Float64())
	for t := range n {
		out[t] = draw(m.Emit[h], rng.Float64())
		h = draw(m.Trans[h], rng.Float64())
	}
	return out
}

// draw returns the smallest index whose cumulative probability exceeds u ∈
// [0, 1) (inverse-CDF sampling in index order); the last index with
// positive probability when rounding leaves u above the total.
func draw(p []float64, u float64) int {
	var acc float64
	last := -1
	for i, pi := range p {
		if pi <= 0 {
			continue
		}
		acc += pi
		last = i
		if u < acc {
			return i
		}
	}
	if last < 0 {
		panic("synthetic: draw from an all-zero distribution")
	}
	return last
}

// dirichlet draws from Dirichlet(alpha, …, alpha) of dimension n by
// normalising independent Gamma(alpha, 1) variates.
func dirichlet(rng *rand.Rand, n int, alpha float64) []float64 {
	out := make([]float64, n)
	for {
		var z float64
		for i := range out {
			out[i] = gamma(rng, alpha)
			z += out[i]
		}
		if z > 0 && !math.IsInf(z, 0) {
			for i := range out {
				out[i] /= z
				if out[i] < 1e-12 {
					// Keep every probability positive so that any
					// sequence has a finite log-likelihood.
					out[i] = 1e-12
				}
			}
			renormalise(out)
			return out
		}
	}
}

func renormalise(p []float64) {
	var z float64
	for _, x := range p {
		z += x
	}
	for i := range p {
		p[i] /= z
	}
}

// gamma draws from Gamma(alpha, 1) with Marsaglia & Tsang's method (2000,
// "A simple method for generating gamma variables"); for alpha < 1 it uses
// Gamma(alpha) = Gamma(alpha+1)·U^(1/alpha).
func gamma(rng *rand.Rand, alpha float64) float64 {
	if alpha < 1 {
		u := rng.Float64()
		for u == 0 {
			u = rng.Float64()
		}
		return gamma(rng, alpha+1) * math.Pow(u, 1/alpha)
	}
	d := alpha - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x {
			return d * v
		}
		if u > 0 && math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
