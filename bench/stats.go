package bench

import (
	"slices"

	"arbench/internal/stats"
)

// Quantile is stats.Quantile: the q-quantile of xs by linear
// interpolation between order statistics (Hyndman & Fan's definition 7).
func Quantile(xs []float64, q float64) float64 { return stats.Quantile(xs, q) }

// sortedQuantile is stats.SortedQuantile.
func sortedQuantile(s []float64, q float64) float64 { return stats.SortedQuantile(s, q) }

// Summary describes repeated measurements of one quantity.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	// Q1 and Q3 are the first and third quartiles; IQR = Q3 - Q1.
	Q1  float64 `json:"q1"`
	Q3  float64 `json:"q3"`
	IQR float64 `json:"iqr"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// Values are the measurements in the order they were taken.
	Values []float64 `json:"values,omitempty"`
}

// Summarize computes the Summary of xs (the zero Summary, N = 0, when
// empty).
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q1, q3 := sortedQuantile(s, 0.25), sortedQuantile(s, 0.75)
	return Summary{
		N: len(s), Median: sortedQuantile(s, 0.5), Q1: q1, Q3: q3, IQR: q3 - q1,
		Min: s[0], Max: s[len(s)-1], Values: slices.Clone(xs),
	}
}

// Latency holds percentiles of per-token latencies, in seconds.
type Latency struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Latencies computes the Latency of samples (seconds); the zero Latency
// (N = 0) when there are none.
func Latencies(samples []float64) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Latency{
		N: len(s), Mean: sum / float64(len(s)),
		P50: sortedQuantile(s, 0.5), P90: sortedQuantile(s, 0.9), P99: sortedQuantile(s, 0.99),
		Max: s[len(s)-1],
	}
}
