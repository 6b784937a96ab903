package text

import (
	"fmt"
	"hash/fnv"
	"math"

	"arbench/harness"
	"arbench/internal/stats"
)

// Per-token losses of a text are correlated: neighbouring bytes share their
// context, and a hard passage (a table, a code listing) makes a run of
// bytes hard. A bootstrap that resampled single tokens would treat them as
// independent and understate the variance of their mean, so every interval
// of this package resamples whole groups of contiguous tokens: the
// evaluation windows of the test split, or blocks of consecutive ablation
// targets spanning at least one window (the non-overlapping block bootstrap
// of Carlstein 1986 and Künsch 1989, "The jackknife and the bootstrap for
// general stationary observations", Ann. Statist. 17).

// ciSeed derives the seed of one bootstrap from the run's seed and a name
// of what it resamples, so that every interval is reproducible from the
// seed and no two intervals share their resamples by accident.
func ciSeed(seed uint64, what string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(what))
	return seed ^ h.Sum64()
}

// blockTotals sums xs over consecutive blocks of size values (the last
// block may be shorter) and returns the sums and the blocks' sizes. size
// must be positive.
func blockTotals(xs []float64, size int) (totals []float64, counts []int) {
	if size <= 0 {
		panic("text: blockTotals with a non-positive block size")
	}
	for lo := 0; lo < len(xs); lo += size {
		var s float64
		hi := min(lo+size, len(xs))
		for _, x := range xs[lo:hi] {
			s += x
		}
		totals, counts = append(totals, s), append(counts, hi-lo)
	}
	return totals, counts
}

// windowCounts is the number of targets each window scores.
func windowCounts(wins []window) []int {
	out := make([]int, len(wins))
	for k, w := range wins {
		out[k] = w.n - w.skip
	}
	return out
}

// perToken turns the totals of groups of tokens (windows, blocks; counts[g]
// tokens in group g, n in all) into one value per group whose mean is the
// mean per token μ = Σtotals/n and whose bootstrap is that of the ratio
// Σtotals*/Σcounts* of resampled groups, linearised (the delta method; Efron
// & Tibshirani 1993, §21.3):
//
//	v_g = μ + (totals[g] − μ·counts[g]) · G/n
//
// for G groups. For groups of equal size it is totals[g]·G/n; unlike that
// scaling it adds no variance of its own when the groups are of unequal
// size (the last window, the sliding evaluation's first), so a loss that
// is the same for every token has an interval of zero width.
func perToken(totals []float64, counts []int) []float64 {
	if len(totals) != len(counts) {
		panic(fmt.Sprintf("text: perToken of %d totals and %d counts", len(totals), len(counts)))
	}
	var sum float64
	n := 0
	for g, x := range totals {
		sum += x
		n += counts[g]
	}
	mu := sum / float64(n)
	scale := float64(len(totals)) / float64(n)
	out := make([]float64, len(totals))
	for g, x := range totals {
		out[g] = mu + (x-mu*float64(counts[g]))*scale
	}
	return out
}

// meanCI is the percentile bootstrap interval (stats.BootstrapMean) of the
// mean of groups, each one observation of what of.
func meanCI(groups []float64, seed uint64, of string) *harness.Interval {
	return interval(stats.BootstrapMean(groups, stats.Level, stats.Resamples, seed), harness.CIBootstrap, len(groups), of)
}

// pairedCI is the paired percentile bootstrap interval
// (stats.PairedBootstrap) of the mean difference b − a over groups scored
// both ways.
func pairedCI(a, b []float64, seed uint64, of string) *harness.Interval {
	return interval(stats.PairedBootstrap(a, b, stats.Level, stats.Resamples, seed), harness.CIPairedBootstrap, len(a), of)
}

func interval(iv stats.Interval, method string, n int, of string) *harness.Interval {
	return &harness.Interval{Lo: harness.Number(iv.Lo), Hi: harness.Number(iv.Hi), Level: stats.Level, Method: method, N: n, Of: of}
}

// mapCI returns ci with f applied to both ends (nil for nil); f must be
// increasing, as the unit conversions are, so that the percentile
// interval of f(mean) is f of the interval.
func mapCI(ci *harness.Interval, f func(float64) float64) *harness.Interval {
	if ci == nil {
		return nil
	}
	out := *ci
	out.Lo, out.Hi = harness.Number(f(float64(ci.Lo))), harness.Number(f(float64(ci.Hi)))
	return &out
}

// lossUnit is one way a loss in nats per token is reported.
type lossUnit struct {
	name, unit string
	of         func(nats float64) float64
}

func identity(x float64) float64 { return x }
func toBits(x float64) float64   { return x / math.Ln2 }

// tokenUnits are the byte-level evaluations' metrics: nats_per_token,
// bits_per_byte (a token is a byte) and perplexity = exp(nats_per_token).
var tokenUnits = []lossUnit{
	{"nats_per_token", "nats/token", identity},
	{"bits_per_byte", "bits/byte", toBits},
	{"perplexity", "", math.Exp},
}

// byteUnits are the metrics of a model scoring text with its own tokenizer
// (evaluateText): total nats over bytes.
var byteUnits = []lossUnit{
	{"nats_per_byte", "nats/byte", identity},
	{"bits_per_byte", "bits/byte", toBits},
}

// lossMetrics reports a loss of nats per token (with its interval ci, or
// nil) in every unit, each name with suffix appended.
func lossMetrics(units []lossUnit, suffix string, nats float64, ci *harness.Interval, params map[string]any) []harness.Metric {
	out := make([]harness.Metric, len(units))
	for i, u := range units {
		out[i] = harness.Metric{Name: u.name + suffix, Value: u.of(nats), Unit: u.unit, Split: "test", Params: params, CI: mapCI(ci, u.of)}
	}
	return out
}
