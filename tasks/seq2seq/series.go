package seq2seq

import (
	"cmp"
	"slices"

	"arbench/harness"
)

// settingName names a decoding in series parameters ("default" for the
// model's own).
func settingName(d *decoded) string {
	if d.setting.Name == "" {
		return "default"
	}
	return d.setting.Name
}

// exactMatch is the decoding's exact-match fraction.
func (d *decoded) exactMatch() float64 { return float64(d.quality.exact) / float64(d.quality.rows) }

// sweepKeys returns the parameters the swept settings vary, in order of
// first appearance, when each setting but the baseline has Params of
// exactly one numeric entry (a model may sweep two, as nar's iterations
// T and semi-autoregressive tokens_per_pass k: each is a sweep of its own);
// nil otherwise.
func sweepKeys(swept []*decoded) []string {
	var keys []string
	for _, d := range swept {
		k, ok := soleNumber(d.setting.Params)
		switch {
		case !ok && d.setting.Baseline:
			continue
		case !ok:
			return nil
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// soleNumber returns the key of params when it has exactly one entry and
// that entry is a number.
func soleNumber(params map[string]any) (string, bool) {
	if len(params) != 1 {
		return "", false
	}
	for k, v := range params {
		_, ok := number(v)
		return k, ok
	}
	return "", false
}

// number converts a numeric parameter to float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}

// sweepSeries returns, for each swept parameter K (sweepKeys), the series
// x = K increasing, one point per setting that has it: exact_match_vs_K;
// latency_vs_K (ms per sequence, labels "batch 1" and "large batch");
// over the settings other than the Baseline one, acceptance_vs_K when
// each of them reports acceptance and speedup_vs_K when there is a
// Baseline (labels likewise). None when there is no K or two
// settings share a value of it.
func sweepSeries(swept []*decoded) []harness.Series {
	var out []harness.Series
	for _, key := range sweepKeys(swept) {
		out = append(out, keySeries(swept, key)...)
	}
	return out
}

// keySeries is sweepSeries for one parameter.
func keySeries(swept []*decoded, key string) []harness.Series {
	pts, xs := sweepPoints(swept, key)
	if pts == nil {
		return nil
	}
	// mk makes one series; rows gives each point's number of rows.
	mk := func(name, label, unit string, ds []*decoded, xs []float64, y func(*decoded) float64, rows func(*decoded) *pass) harness.Series {
		s := harness.Series{Name: name + "_vs_" + key, Label: label, XName: key, Unit: unit, Split: "test"}
		for i, d := range ds {
			s.X, s.Y, s.N = append(s.X, xs[i]), append(s.Y, y(d)), append(s.N, rows(d).rows)
		}
		return s
	}
	large := func(d *decoded) *pass { return d.large }
	out := []harness.Series{mk("exact_match", "", "fraction", pts, xs, (*decoded).exactMatch, large)}
	base := baseline(swept)
	others, ox := without(pts, xs, base)
	for _, p := range []struct {
		label string
		pass  func(*decoded) *pass
	}{{"batch 1", func(d *decoded) *pass { return d.b1 }}, {"large batch", large}} {
		out = append(out, mk("latency", p.label, "ms", pts, xs, func(d *decoded) float64 { return p.pass(d).msPerSeq() }, p.pass))
		if len(others) > 0 && acceptanceEverywhere(others, p.pass) {
			out = append(out, mk("acceptance", p.label, "fraction", others, ox, func(d *decoded) float64 {
				st := p.pass(d).stats
				return st["accepted"] / st["drafted"]
			}, p.pass))
		}
		if base != nil && len(others) > 0 {
			out = append(out, mk("speedup", p.label, ratioUnit, others, ox, func(d *decoded) float64 { return speedup(p.pass(base), p.pass(d)) }, p.pass))
		}
	}
	return out
}

// without returns the points and their x values but skip.
func without(pts []*decoded, xs []float64, skip *decoded) ([]*decoded, []float64) {
	var ds []*decoded
	var dx []float64
	for i, d := range pts {
		if d != skip {
			ds, dx = append(ds, d), append(dx, xs[i])
		}
	}
	return ds, dx
}

// sweepPoints returns the settings that have key, ordered by its value,
// and the values; nil when two share a value.
func sweepPoints(swept []*decoded, key string) ([]*decoded, []float64) {
	var pts []*decoded
	for _, d := range swept {
		if _, ok := number(d.setting.Params[key]); ok && len(d.setting.Params) == 1 {
			pts = append(pts, d)
		}
	}
	x := func(d *decoded) float64 { v, _ := number(d.setting.Params[key]); return v }
	slices.SortStableFunc(pts, func(a, b *decoded) int { return cmp.Compare(x(a), x(b)) })
	xs := make([]float64, len(pts))
	for i, d := range pts {
		xs[i] = x(d)
		if i > 0 && xs[i] == xs[i-1] {
			return nil, nil
		}
	}
	return pts, xs
}

// acceptanceEverywhere reports whether every decoding's pass counts drafted
// and accepted tokens.
func acceptanceEverywhere(ds []*decoded, p func(*decoded) *pass) bool {
	for _, d := range ds {
		st := p(d).stats
		if _, ok := st["accepted"]; !ok || !(st["drafted"] > 0) {
			return false
		}
	}
	return true
}
