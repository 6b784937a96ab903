// Package stats holds the interval estimates arbench reports: Wilson score
// intervals for proportions over rows, percentile bootstrap intervals for
// means and for paired differences, and the normal quantile they use. Every
// function is deterministic: a bootstrap draws its resamples from a PCG
// generator seeded by the caller, so a rerun reports the same interval.
//
// Tasks compute intervals from their per-row observations when they
// evaluate; reports combine seeds with Student t intervals (reports.Summary).
package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// Level is the confidence level of every interval arbench reports.
const Level = 0.95

// Resamples is the default number of bootstrap resamples.
const Resamples = 2000

// Interval is a two-sided confidence interval around an estimate.
type Interval struct {
	// Estimate is the point estimate (the observed proportion, mean or mean
	// difference).
	Estimate float64
	// Lo and Hi bound the interval; both are NaN when no interval exists
	// (no observations).
	Lo, Hi float64
}

// Contains reports whether x lies in [Lo, Hi].
func (iv Interval) Contains(x float64) bool { return x >= iv.Lo && x <= iv.Hi }

func empty() Interval { return Interval{math.NaN(), math.NaN(), math.NaN()} }

// Z returns the two-sided normal quantile of level: Φ⁻¹((1+level)/2), 1.95996…
// at 0.95. It panics when level is not in (0, 1), a programmer error.
func Z(level float64) float64 {
	checkLevel(level)
	return distuv.UnitNormal.Quantile((1 + level) / 2)
}

func checkLevel(level float64) {
	if !(level > 0 && level < 1) {
		panic(fmt.Sprintf("stats: confidence level %v outside (0, 1)", level))
	}
}

// Wilson returns the Wilson score interval (Wilson 1927, "Probable inference,
// the law of succession, and statistical inference", JASA 22, eq. for the
// score interval without continuity correction) of the proportion k/n:
//
//	(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)
//
// Unlike the normal (Wald) interval it stays inside [0, 1] and has width
// even at k = 0 or k = n. n = 0 gives the empty interval (NaN bounds); k
// outside [0, n] is a programmer error and panics.
func Wilson(k, n int, level float64) Interval {
	if k < 0 || k > n {
		panic(fmt.Sprintf("stats: Wilson(%d, %d): successes outside [0, n]", k, n))
	}
	if n == 0 {
		return empty()
	}
	z := Z(level)
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / (1 + z2/nf)
	lo, hi := max(0, centre-half), min(1, centre+half)
	// Exact ends: at k = 0 the lower bound is 0, at k = n the upper is 1.
	if k == 0 {
		lo = 0
	}
	if k == n {
		hi = 1
	}
	return Interval{Estimate: p, Lo: lo, Hi: hi}
}

// BootstrapMean returns the mean of xs with its percentile bootstrap
// interval (Efron & Tibshirani 1993, ch. 13): resamples means of n values
// drawn with replacement, and their (1−level)/2 and (1+level)/2 quantiles.
// Non-finite values make the interval NaN; an empty xs gives the empty
// interval; one value gives a zero-width interval.
func BootstrapMean(xs []float64, level float64, resamples int, seed uint64) Interval {
	checkLevel(level)
	if len(xs) == 0 {
		return empty()
	}
	mean := meanOf(xs)
	if !finite(mean) {
		return Interval{Estimate: mean, Lo: math.NaN(), Hi: math.NaN()}
	}
	if resamples <= 0 {
		resamples = Resamples
	}
	rng := rand.New(rand.NewPCG(seed, 0x6172626f6f74)) // "arboot"
	n := len(xs)
	means := make([]float64, resamples)
	for r := range means {
		var s float64
		for range n {
			s += xs[rng.IntN(n)]
		}
		means[r] = s / float64(n)
	}
	slices.Sort(means)
	return Interval{
		Estimate: mean,
		Lo:       SortedQuantile(means, (1-level)/2),
		Hi:       SortedQuantile(means, (1+level)/2),
	}
}

// PairedBootstrap returns the mean of the paired differences b[i] − a[i]
// with its percentile bootstrap interval: the pairs (rows scored by both
// conditions, or both models) are resampled together, so what the two
// conditions share cancels. a and b must have the same length (a
// programmer error otherwise).
func PairedBootstrap(a, b []float64, level float64, resamples int, seed uint64) Interval {
	if len(a) != len(b) {
		panic(fmt.Sprintf("stats: PairedBootstrap of %d and %d values", len(a), len(b)))
	}
	d := make([]float64, len(a))
	for i := range a {
		d[i] = b[i] - a[i]
	}
	return BootstrapMean(d, level, resamples, seed)
}

func meanOf(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of xs by linear
// interpolation between order statistics: with the sorted values x₀ ≤ … ≤
// x_{n-1} and h = q·(n-1), it is x_⌊h⌋ + (h-⌊h⌋)·(x_⌊h⌋+1 - x_⌊h⌋) (Hyndman &
// Fan's 1996 definition 7, the default of numpy.percentile and R's
// quantile). It returns NaN for an empty sample and panics when q is
// outside [0, 1] (a programmer error). xs is not modified.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		checkQuantile(q)
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return SortedQuantile(s, q)
}

// SortedQuantile is Quantile of s already sorted in increasing order (and
// not empty), for several quantiles of one sample without sorting again.
func SortedQuantile(s []float64, q float64) float64 {
	checkQuantile(q)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

func checkQuantile(q float64) {
	if !(q >= 0 && q <= 1) {
		panic(fmt.Sprintf("stats: quantile %v outside [0, 1]", q))
	}
}

// TInterval returns the mean of xs with its Student t interval,
// mean ± t_{(1+level)/2, n−1}·s/√n (s the sample standard deviation), the
// interval across seeds that reports use. Fewer than two values give NaN
// bounds (no interval exists); an empty xs gives the empty interval.
func TInterval(xs []float64, level float64) Interval {
	checkLevel(level)
	if len(xs) == 0 {
		return empty()
	}
	mean := meanOf(xs)
	if len(xs) < 2 {
		return Interval{Estimate: mean, Lo: math.NaN(), Hi: math.NaN()}
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	n := float64(len(xs))
	half := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}.Quantile((1+level)/2) * math.Sqrt(ss/(n-1)) / math.Sqrt(n)
	return Interval{Estimate: mean, Lo: mean - half, Hi: mean + half}
}
