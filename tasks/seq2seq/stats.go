package seq2seq

import (
	"math"

	"arbench/harness"
	"arbench/internal/stats"
)

// ratioCI returns R = Σa/Σb and its 95% interval over rows, each row i
// contributing a[i] of b[i] (matched tokens of compared positions): the
// normal interval of a ratio estimator with the delta-method variance
// Σ(a_i − R·b_i)² / (n(n−1)·b̄²), so that positions of one row are not
// taken for independent trials; clipped to [0, 1]. The bounds are NaN for
// fewer than two rows.
func ratioCI(a, b []float64) (r, lo, hi float64) {
	n := len(a)
	var sa, sb float64
	for i := range a {
		sa, sb = sa+a[i], sb+b[i]
	}
	r = sa / sb
	if n < 2 {
		return r, math.NaN(), math.NaN()
	}
	var ss float64
	for i := range a {
		d := a[i] - r*b[i]
		ss += d * d
	}
	mb := sb / float64(n)
	se := math.Sqrt(ss/(float64(n)*float64(n-1))) / mb
	z := stats.Z(stats.Level)
	return r, max(0, r-z*se), min(1, r+z*se)
}

// quantile is stats.Quantile (NaN when xs is empty).
func quantile(xs []float64, q float64) float64 { return stats.Quantile(xs, q) }

// mean returns the mean of xs (NaN when empty).
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// wilsonCI is the Wilson interval of k of n rows (nil for no rows).
func wilsonCI(k, n int) *harness.Interval {
	iv := stats.Wilson(k, n, stats.Level)
	return harness.IntervalOf(iv.Lo, iv.Hi, harness.CIWilson, n, "rows")
}
