// Package fsum adds floating-point numbers without accumulating rounding
// error, for sums of many per-token losses.
package fsum

import "math"

// Sum adds xs with Neumaier's compensated summation (Neumaier 1974, an
// improved Kahan summation that also handles terms larger than the running
// sum). An infinite sum (e.g. a zero-probability target) is returned as is:
// the compensation would be NaN (Inf − Inf).
func Sum(xs []float64) float64 {
	var s, c float64
	for _, x := range xs {
		t := s + x
		if math.Abs(s) >= math.Abs(x) {
			c += (s - t) + x
		} else {
			c += (x - t) + s
		}
		s = t
	}
	if math.IsInf(s, 0) {
		return s
	}
	return s + c
}
