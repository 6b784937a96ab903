package reports

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// CILevel is the confidence level of every interval arbench reports.
const CILevel = 0.95

// TQuantile returns the p-quantile of Student's t distribution with df
// degrees of freedom (df > 0, 0 < p < 1): the x with P(T <= x) = p. It is
// computed exactly, by inverting the regularised incomplete beta function
// (gonum's distuv.StudentsT), not looked up in a table. It panics on
// arguments outside the domain, which are programmer errors.
func TQuantile(p, df float64) float64 {
	if !(p > 0 && p < 1) || !(df > 0) || math.IsInf(df, 0) {
		panic(fmt.Sprintf("reports: TQuantile(%v, %v) outside 0 < p < 1, 0 < df < Inf", p, df))
	}
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(p)
}

// Summary describes a sample of values (one per seed).
type Summary struct {
	// N is the number of values.
	N int
	// Mean is the sample mean (NaN when N is 0).
	Mean float64
	// Std is the sample standard deviation (n-1 denominator); 0 when N < 2.
	Std float64
	// HalfWidth is the half-width of the two-sided CILevel confidence
	// interval of the mean, t_{(1+CILevel)/2, N-1}·Std/√N (Student t); it is
	// NaN when N < 2, where no interval exists.
	HalfWidth float64
}

// Summarize computes the Summary of xs.
func Summarize(xs []float64) Summary {
	s := Summary{N: len(xs), Mean: math.NaN(), HalfWidth: math.NaN()}
	if s.N == 0 {
		return s
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	s.Mean = sum / float64(s.N)
	if s.N < 2 {
		return s
	}
	var ss float64
	for _, x := range xs {
		ss += (x - s.Mean) * (x - s.Mean)
	}
	s.Std = math.Sqrt(ss / float64(s.N-1))
	s.HalfWidth = TQuantile((1+CILevel)/2, float64(s.N-1)) * s.Std / math.Sqrt(float64(s.N))
	return s
}

// HasCI reports whether the summary has a confidence interval (N >= 2).
func (s Summary) HasCI() bool { return s.N >= 2 && !math.IsNaN(s.HalfWidth) }

// Lo and Hi are the interval's bounds; both equal Mean when there is none.
func (s Summary) Lo() float64 {
	if !s.HasCI() {
		return s.Mean
	}
	return s.Mean - s.HalfWidth
}

// Hi is the upper bound of the interval (Mean when there is none).
func (s Summary) Hi() float64 {
	if !s.HasCI() {
		return s.Mean
	}
	return s.Mean + s.HalfWidth
}
