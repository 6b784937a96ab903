package seq2seq

import (
	"math"
	"slices"
)

// z95 is the standard normal quantile of a two-sided 95% interval, the
// level of every interval arbench reports.
const z95 = 1.959963984540054

// wilson returns the 95% Wilson score interval of a proportion of k
// successes in n trials (Wilson 1927), which stays inside [0, 1] and is
// not degenerate at 0 or n successes.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	p, nf, z2 := float64(k)/float64(n), float64(n), z95*z95
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z95 / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, centre-half), min(1, centre+half)
}

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
	return r, max(0, r-z95*se), min(1, r+z95*se)
}

// quantile returns the q-quantile of xs by linear interpolation between
// order statistics (Hyndman & Fan type 7, NumPy's default); NaN when xs is
// empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

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

// ciParams returns params with the interval bounds "ci_low" and "ci_high"
// added (a new map), leaving out bounds that do not exist (NaN).
func ciParams(params map[string]any, lo, hi float64) map[string]any {
	out := make(map[string]any, len(params)+2)
	for k, v := range params {
		out[k] = v
	}
	if !math.IsNaN(lo) && !math.IsNaN(hi) {
		out["ci_low"], out["ci_high"] = lo, hi
	}
	return out
}
