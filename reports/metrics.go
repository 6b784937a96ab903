package reports

import (
	"math"
	"strings"

	"arbench/harness"
)

// Direction says which way a metric improves.
type Direction int

// Directions: DirectionUnknown for a metric the table of directions does
// not know (or a difference between two measurements, which is neither
// good nor bad by itself); tables then draw no arrow and mark no best value.
const (
	DirectionUnknown Direction = iota
	LowerIsBetter
	HigherIsBetter
)

// Arrow is the header mark of d: "↓" (lower is better), "↑" or "".
func (d Direction) Arrow() string {
	switch d {
	case LowerIsBetter:
		return "↓"
	case HigherIsBetter:
		return "↑"
	}
	return ""
}

// Phrase is d in words ("lower is better"); "" when unknown.
func (d Direction) Phrase() string {
	switch d {
	case LowerIsBetter:
		return "lower is better"
	case HigherIsBetter:
		return "higher is better"
	}
	return ""
}

// The table of metric directions, by the words of a metric's name (split
// at '_') and then by its unit.
var (
	lowerWords = wordSet("bits", "nats", "perplexity", "error", "errors", "kl", "loss", "nll",
		"seconds", "latency", "bytes", "cost", "time")
	higherWords = wordSet("accuracy", "throughput", "speedup", "match", "usable")
	// differenceWords name a difference of two measurements (exposure
	// excess, ablation deltas): its sign is the finding, so it has no
	// direction and no bounds.
	differenceWords = wordSet("excess", "delta", "diff", "difference", "gain", "change", "drop")
	// fractionUnits are the units of a value in [0, 1].
	fractionUnits = wordSet("fraction", "fraction of rows", "probability", "accuracy", "error rate", "proportion")
	// countNouns are units whose values are counts (of the unit's last
	// word): an integer-valued column of such a unit prints as integers.
	countNouns = wordSet("token", "tokens", "pair", "pairs", "step", "steps", "pass", "passes", "row", "rows",
		"position", "positions", "symbol", "symbols", "sequence", "sequences", "param", "params", "parameters",
		"byte", "bytes", "item", "items", "window", "windows", "layer", "layers", "k")
)

func wordSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// nameWords splits a metric name into its lower-case words.
func nameWords(name string) []string {
	return strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '_' || r == ' ' || r == '-' })
}

func anyWord(words []string, set map[string]bool) bool {
	for _, w := range words {
		if set[w] {
			return true
		}
	}
	return false
}

// MetricDirection returns the direction of a metric from the table of
// directions: by name, bits, nats, perplexity, error, KL, loss, NLL,
// seconds, latency, bytes, cost and time are lower-is-better, accuracy,
// throughput, speed-up, (exact) match and usable (length) higher-is-better;
// a name with both kinds of word, or naming a difference (excess, delta,
// gain, ...), has no direction. Otherwise the unit decides: a rate per
// second (tokens/s) is higher-is-better, a time (s, ms), bits, nats, bytes
// or an error rate lower-is-better, accuracy higher-is-better. Anything else
// is DirectionUnknown.
func MetricDirection(name, unit string) Direction {
	words := nameWords(name)
	if anyWord(words, differenceWords) {
		return DirectionUnknown
	}
	lower, higher := anyWord(words, lowerWords), anyWord(words, higherWords)
	switch {
	case lower && higher:
		return DirectionUnknown
	case lower:
		return LowerIsBetter
	case higher:
		return HigherIsBetter
	}
	u := strings.ToLower(strings.TrimSpace(unit))
	switch {
	case u == "s/s": // a ratio of two times: the name says which way
		return DirectionUnknown
	case harness.IsTimingUnit(u) && (strings.HasSuffix(u, "/s") || strings.HasSuffix(u, "/sec")):
		return HigherIsBetter
	case harness.IsTimingUnit(u), u == "error rate":
		return LowerIsBetter
	case u == "accuracy":
		return HigherIsBetter
	}
	if uw := strings.FieldsFunc(u, func(r rune) bool { return r == '/' || r == ' ' }); len(uw) > 0 &&
		(uw[0] == "bits" || uw[0] == "nats" || uw[0] == "bytes") {
		return LowerIsBetter
	}
	return DirectionUnknown
}

// Bounds is the range of values a metric can take; intervals drawn for it
// are clipped to it and chart axes do not extend past it.
type Bounds struct{ Min, Max float64 }

// Clip returns v limited to b.
func (b Bounds) Clip(v float64) float64 { return math.Min(math.Max(v, b.Min), b.Max) }

// metricBounds returns the range of a metric: [0, 1] for fractions,
// probabilities, accuracies and error rates, [0, +Inf) for the other
// metrics with a direction (losses, bits, nats, KL, perplexity, times,
// rates) and for counts, and (-Inf, +Inf) for differences and unknown
// metrics.
func metricBounds(name, unit string) Bounds {
	all := Bounds{math.Inf(-1), math.Inf(1)}
	words := nameWords(name)
	if anyWord(words, differenceWords) {
		return all
	}
	u := strings.ToLower(strings.TrimSpace(unit))
	if fractionUnits[u] || (u == "" && anyWord(words, wordSet("accuracy"))) {
		return Bounds{0, 1}
	}
	if MetricDirection(name, unit) != DirectionUnknown || isCountUnit(unit) || u == "norm" {
		return Bounds{0, math.Inf(1)}
	}
	return all
}

// isCountUnit reports whether unit counts things (tokens, pairs, steps,
// "answer token"): not a rate ("/") and its last word a count noun.
func isCountUnit(unit string) bool {
	u := strings.ToLower(strings.TrimSpace(unit))
	if u == "" || strings.Contains(u, "/") {
		return false
	}
	words := strings.Fields(u)
	return countNouns[words[len(words)-1]]
}

// metricLabel is a metric's name for a reader: words instead of snake
// case, "_per_" as "/", acronyms in capitals (bits_per_byte → "bits/byte",
// kl_per_token_free_running → "KL/token free running"), and perplexity
// said "per byte" when perByte (its tokens are bytes).
func metricLabel(name string, perByte bool) string {
	words := strings.Split(name, "_")
	var out []string
	for i := 0; i < len(words); i++ {
		w := humanize(words[i])
		if words[i] == "per" && len(out) > 0 && i+1 < len(words) {
			out[len(out)-1] += "/" + humanize(words[i+1])
			i++
			continue
		}
		out = append(out, w)
		if words[i] == "perplexity" && perByte {
			out = append(out, "per", "byte")
		}
	}
	return strings.Join(out, " ")
}

// unitShown returns unit, or "" when label already says it ("bits/byte"
// for the label "bits/byte", "accuracy" for "accuracy").
func unitShown(label, unit string) string {
	u := strings.TrimSpace(unit)
	if u == "" {
		return ""
	}
	norm := func(s string) string {
		s = strings.ToLower(strings.ReplaceAll(s, " per ", "/"))
		return strings.ReplaceAll(s, " ", "")
	}
	if strings.Contains(norm(label), norm(u)) {
		return ""
	}
	return u
}

// axisLabel is an axis title: the quantity's name and its unit in
// parentheses, unless the name already says the unit (no
// "accuracy (accuracy)" or "bits/byte (bits/byte)").
func axisLabel(name, unit string) string {
	if u := unitShown(name, unit); u != "" {
		return name + " (" + u + ")"
	}
	return name
}

// metricKind classifies a result's metric name.
type metricKind int

const (
	plainMetric     metricKind = iota
	settingMetric              // METRIC@SETTING: a decoding setting's (settingsTable)
	referenceMetric            // METRIC~REFERENCE: a baseline the task computed (harness.ReferenceName)
)

// classify tells a reference value (harness.ReferenceName,
// "bits_per_byte~unigram") from a decoding setting's metric
// ("exact_match@T=4", SettingSep) and a plain metric, and returns the
// base metric and the reference or setting.
func classify(r harness.Result) (kind metricKind, base, suffix string) {
	if base, ref, ok := harness.SplitReference(r.Metric); ok {
		return referenceMetric, base, ref
	}
	if base, setting := splitSetting(r.Metric); setting != "" {
		return settingMetric, base, setting
	}
	return plainMetric, r.Metric, ""
}
