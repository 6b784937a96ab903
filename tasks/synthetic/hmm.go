package synthetic

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"
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

// Sticky returns a copy of m whose transitions stay near the current state:
// every row becomes
//
//	Trans'[h] = p·R_h + (1−p)·Trans[h],
//
// R_h being Trans[h] restricted to the block of h and renormalised. States
// are split into blocks contiguous blocks of near-equal size (state h is in
// block ⌊h·blocks/H⌋); blocks 0 makes every state its own block, so R_h is
// the point mass on h and p an extra probability of staying. With one
// block per state the eigenvalues are p + (1−p)·λ for the eigenvalues λ of
// Trans: the chain mixes about 1/(1−p) times slower. Emissions and the
// initial distribution are unchanged. p outside [0, 1) or blocks outside
// [0, H] is a programmer error.
func (m *HMM) Sticky(p float64, blocks int) *HMM {
	H := m.States()
	if !(p >= 0 && p < 1) || blocks < 0 || blocks > H {
		panic(fmt.Sprintf("synthetic: Sticky(%v, %d blocks) of %d states", p, blocks, H))
	}
	if blocks == 0 {
		blocks = H
	}
	block := func(h int) int { return h * blocks / H }
	out := &HMM{Init: append([]float64(nil), m.Init...)}
	for h, row := range m.Trans {
		var z float64
		for h2, a := range row {
			if block(h2) == block(h) {
				z += a
			}
		}
		next := make([]float64, H)
		for h2, a := range row {
			next[h2] = (1 - p) * a
			if block(h2) == block(h) {
				next[h2] += p * a / z
			}
		}
		renormalise(next)
		out.Trans = append(out.Trans, next)
		out.Emit = append(out.Emit, append([]float64(nil), m.Emit[h]...))
	}
	return out
}

// Mixing returns the second largest eigenvalue modulus |λ₂| of Trans and
// the relaxation time 1/(1−|λ₂|): the distance of the hidden state's law
// from stationarity shrinks like |λ₂|^t (Levin, Peres & Wilmer 2009,
// "Markov chains and mixing times", §12.2 and Theorem 12.5 for the
// reversible case; for any finite chain |λ₂| is the asymptotic rate), so
// the relaxation time is the number of steps over which the hidden state,
// and what the symbols reveal about it, is remembered. Eigenvalues come
// from a general (non-symmetric) eigendecomposition (gonum's LAPACK
// Dgeev); λ₁ = 1 is the largest modulus of a stochastic matrix, so |λ₂| is
// the second entry of the moduli sorted in decreasing order, which needs
// no identification of the eigenvalue 1 among rounding errors. A chain
// with one state has |λ₂| = 0; a reducible one |λ₂| = 1 and relaxation
// time +Inf.
func (m *HMM) Mixing() (lambda2, relaxation float64, err error) {
	H := m.States()
	if H == 1 {
		return 0, 1, nil
	}
	a := mat.NewDense(H, H, nil)
	for h, row := range m.Trans {
		a.SetRow(h, row)
	}
	var eig mat.Eigen
	if !eig.Factorize(a, mat.EigenNone) {
		return 0, 0, errors.New("synthetic: eigendecomposition of the HMM's transition matrix did not converge")
	}
	mods := make([]float64, H)
	for i, v := range eig.Values(nil) {
		mods[i] = cmplx.Abs(v)
	}
	slices.SortFunc(mods, func(x, y float64) int { return cmp.Compare(y, x) })
	lambda2 = min(mods[1], 1)
	if lambda2 >= 1 {
		return 1, math.Inf(1), nil
	}
	return lambda2, 1 / (1 - lambda2), nil
}

// ConditionalEntropies returns H(X_t | x_<t) = −Σ_v p(v|x_<t)·log p(v|x_<t)
// for t = 1..len(x): the oracle's entropy of each next symbol along x, in
// nats. Their mean over sequences x drawn from m is the block entropy rate
// H(X_1..X_T)/T by the chain rule (Cover & Thomas 2006, "Elements of
// information theory", eq. 2.48 and §4.2), with less variance than the
// mean of −log p(x)/T.
func (m *HMM) ConditionalEntropies(x []int) []float64 {
	p := make([]float64, m.Symbols())
	out := make([]float64, len(x))
	b := m.Start()
	for t, v := range x {
		out[t] = entropy(m.Next(b, p))
		b = m.Observe(b, v)
	}
	return out
}

// Unigram returns ū = (1/T)·Σ_{t=1..T} P(X_t = ·), the symbol frequencies
// of sequences of T symbols, exactly: π_1 = Init, π_{t+1} = π_t·Trans,
// P(X_t) = π_t·Emit. Its entropy H(ū) is the expected loss per token of
// the best model that ignores context (a unigram fitted to infinitely
// many such sequences), since Σ_t −P(X_t)·log ū = T·H(ū).
func (m *HMM) Unigram(T int) []float64 {
	u := make([]float64, m.Symbols())
	pi := m.Start()
	for range T {
		for h, ph := range pi {
			for v, e := range m.Emit[h] {
				u[v] += ph * e / float64(T)
			}
		}
		next := make([]float64, len(pi))
		for h, ph := range pi {
			for h2, a := range m.Trans[h] {
				next[h2] += ph * a
			}
		}
		pi = next
	}
	return u
}

// entropy returns −Σ p·log p in nats (0·log 0 = 0).
func entropy(p []float64) float64 {
	var h float64
	for _, x := range p {
		if x > 0 {
			h -= x * math.Log(x)
		}
	}
	return h
}
