// Package claims judges the survey's claims an experiment tests (its
// `claims:` section, harness.ClaimSpec) from the experiment's saved results,
// so that no verdict is written by hand.
//
// Each test compares one quantity with a threshold: a metric (or a series
// read at one x) of a model, averaged over seeds, or its difference to
// (ratio over) another model's on the same seeds. Its interval is
//
//   - with two or more seeds: the Student t interval across seeds — of the
//     per-seed differences (log ratios) when two models are compared, since
//     one seed's runs read the same data;
//   - with one seed: the task's own interval over rows (harness.Result.CI,
//     Series.Lo/Hi); for two models the two intervals are combined as
//     independent (the half-widths add in quadrature, on the log scale for a
//     ratio), which is conservative when both models scored the same rows.
//
// A test is supported when its whole interval lies on the expected side of
// the threshold, contradicted when the whole interval lies on the other
// side, and not resolved otherwise (or when no interval exists; the reason
// then names the runs whose validation loss was still falling when training
// ended, harness.RunRecord.Convergence). A claim is
// supported when all its tests are, contradicted when any is, and otherwise
// not resolved at the experiment's budget.
package claims

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"arbench/harness"
	"arbench/internal/stats"
)

// Verdict is the outcome of a test or a claim.
type Verdict string

// The verdicts.
const (
	Supported    Verdict = "supported"
	Contradicted Verdict = "contradicted"
	Unresolved   Verdict = "not resolved at this budget"
	NotMeasured  Verdict = "not measured"
)

// Quantity is a measured value with its interval.
type Quantity struct {
	Estimate float64 `json:"estimate"`
	// Lo and Hi are NaN when there is no interval.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
	// N counts the observations behind the interval, Of says what they are
	// ("seeds", or the task's "rows", "pairs", "windows").
	N  int    `json:"n"`
	Of string `json:"of"`
	// Method says how the interval was computed.
	Method string `json:"method"`
}

// HasInterval reports whether the quantity has finite bounds.
func (q Quantity) HasInterval() bool { return finite(q.Lo) && finite(q.Hi) }

// TestResult is the judgement of one ClaimTest.
type TestResult struct {
	Test     harness.ClaimTest `json:"test"`
	Quantity Quantity          `json:"quantity"`
	Verdict  Verdict           `json:"verdict"`
	// Reason explains a verdict other than supported or contradicted.
	Reason string `json:"reason,omitempty"`
}

// Judgement is the verdict on one claim.
type Judgement struct {
	ID      string       `json:"id"`
	Claim   string       `json:"claim"`
	Verdict Verdict      `json:"verdict"`
	Tests   []TestResult `json:"tests"`
}

// Specs returns the claims of the experiment that produced rf (its
// manifest's resolved configuration); none when it has no claims section.
func Specs(rf *harness.ResultsFile) ([]harness.ClaimSpec, error) {
	if len(rf.Manifest.Config) == 0 {
		return nil, nil
	}
	var e struct {
		Claims []harness.ClaimSpec `json:"claims"`
	}
	if err := json.Unmarshal(rf.Manifest.Config, &e); err != nil {
		return nil, fmt.Errorf("claims: read the manifest's configuration: %w", err)
	}
	return e.Claims, nil
}

// Judge judges every claim of rf's experiment.
func Judge(rf *harness.ResultsFile) ([]Judgement, error) {
	specs, err := Specs(rf)
	if err != nil {
		return nil, err
	}
	out := make([]Judgement, 0, len(specs))
	for _, c := range specs {
		out = append(out, JudgeClaim(rf, c))
	}
	return out, nil
}

// JudgeClaim judges one claim against rf.
func JudgeClaim(rf *harness.ResultsFile, c harness.ClaimSpec) Judgement {
	j := Judgement{ID: c.ID, Claim: c.Claim}
	for _, t := range c.Tests {
		j.Tests = append(j.Tests, judgeTest(rf, t))
	}
	j.Verdict = combine(j.Tests)
	return j
}

// combine is the claim's verdict from its tests' (see the package comment).
func combine(ts []TestResult) Verdict {
	count := map[Verdict]int{}
	for _, t := range ts {
		count[t.Verdict]++
	}
	switch {
	case len(ts) > 0 && count[Supported] == len(ts):
		return Supported
	case count[Contradicted] > 0:
		return Contradicted
	case count[Unresolved] > 0 || count[Supported] > 0:
		return Unresolved
	}
	return NotMeasured
}

func judgeTest(rf *harness.ResultsFile, t harness.ClaimTest) TestResult {
	res := TestResult{Test: t, Quantity: Quantity{Estimate: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}}
	a, err := observe(rf, t, t.Model, t.Metric)
	if err == nil {
		err = nonFinite(t.Model, a)
	}
	if err == nil && (t.Other != "" || t.OtherMetric != "") {
		model, metric := cmp.Or(t.Other, t.Model), cmp.Or(t.OtherMetric, t.Metric)
		var b map[uint64]observation
		if b, err = observe(rf, t, model, metric); err == nil {
			if err = nonFinite(model, b); err == nil {
				res.Quantity, err = compare(a, b, t.Ratio)
			}
		}
	} else if err == nil {
		res.Quantity = single(a)
	}
	if err != nil {
		res.Verdict, res.Reason = NotMeasured, err.Error()
		return res
	}
	res.Verdict, res.Reason = decide(res.Quantity, t.Expect, t.Threshold())
	if res.Verdict == Unresolved {
		if still := improving(rf, t); still != "" {
			res.Reason += "; still improving at the end of training: " + still
		}
	}
	return res
}

// improving lists the runs of t's models on its task whose validation loss
// was still falling when training ended (harness.ConvergenceImproving): a
// test they leave unresolved might resolve with a larger budget.
func improving(rf *harness.ResultsFile, t harness.ClaimTest) string {
	var parts []string
	for _, model := range slices.Compact([]string{t.Model, cmp.Or(t.Other, t.Model)}) {
		var seeds []string
		for _, r := range rf.Runs {
			if r.Task == t.Task && r.Model == model && r.Convergence() == harness.ConvergenceImproving {
				seeds = append(seeds, strconv.FormatUint(r.Seed, 10))
			}
		}
		if len(seeds) > 0 {
			parts = append(parts, fmt.Sprintf("%s (seed %s)", model, strings.Join(seeds, ", ")))
		}
	}
	return strings.Join(parts, ", ")
}

// decide compares q's interval with the threshold.
func decide(q Quantity, expect string, th float64) (Verdict, string) {
	if !finite(q.Estimate) {
		return NotMeasured, "the measured value is not finite"
	}
	if !q.HasInterval() {
		return Unresolved, "no interval: one seed and no per-row interval"
	}
	below, above := q.Hi < th, q.Lo > th
	if expect == harness.ExpectGreater {
		below, above = above, below
	}
	switch {
	case below:
		return Supported, ""
	case above:
		return Contradicted, ""
	}
	return Unresolved, "the interval contains the threshold"
}

// nonFinite names the seeds whose value is NaN or infinite, with what the
// task said of them: a mean over seeds would hide them.
func nonFinite(model string, obs map[uint64]observation) error {
	var seeds, notes []string
	for _, s := range sortedSeeds(obs) {
		if o := obs[s]; !finite(o.value) {
			seeds = append(seeds, strconv.FormatUint(s, 10))
			if o.note != "" && !slices.Contains(notes, o.note) {
				notes = append(notes, o.note)
			}
		}
	}
	if len(seeds) == 0 {
		return nil
	}
	msg := fmt.Sprintf("%s's value is not finite on seed %s", model, strings.Join(seeds, ", "))
	if len(notes) > 0 {
		msg += " (" + strings.Join(notes, "; ") + ")"
	}
	return errors.New(msg)
}

// observation is one seed's value of a test's quantity for one model.
type observation struct {
	value float64
	ci    *harness.Interval
	// note is the task's word on the value (a result's params.verdict,
	// such as "longer context hurts" for a NaN effective context).
	note string
}

// observe collects, per seed, model's value of metric (a series point
// with t.At) on t's task.
func observe(rf *harness.ResultsFile, t harness.ClaimTest, model, metric string) (map[uint64]observation, error) {
	out := map[uint64]observation{}
	switch {
	case t.At != nil:
		return observeSeries(rf, t, model, metric)
	case metric == harness.ClaimTrainTokensPerSec:
		for _, r := range rf.Runs {
			if r.Task == t.Task && r.Model == model && r.Trained && r.TokensPerSec > 0 {
				out[r.Seed] = observation{value: r.TokensPerSec}
			}
		}
	default:
		for _, r := range rf.Results {
			if r.Task == t.Task && r.Model == model && r.Metric == metric {
				note, _ := r.Params["verdict"].(string)
				out[r.Seed] = observation{float64(r.Value), r.CI, note}
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no result %s of %s on %s", metric, model, t.Task)
	}
	return out, nil
}

func observeSeries(rf *harness.ResultsFile, t harness.ClaimTest, model, metric string) (map[uint64]observation, error) {
	out := map[uint64]observation{}
	var labels []string
	for _, s := range rf.Series {
		if s.Task != t.Task || s.Model != model || s.Name != metric {
			continue
		}
		if !slices.Contains(labels, s.Label) {
			labels = append(labels, s.Label)
		}
		if s.Label != t.Label {
			continue
		}
		i := slices.IndexFunc(s.X, func(x float64) bool { return math.Abs(x-*t.At) <= 1e-9*max(1, math.Abs(x)) })
		if i < 0 || i >= len(s.Y) {
			continue
		}
		o := observation{value: s.Y[i]}
		if len(s.Lo) == len(s.Y) && len(s.Hi) == len(s.Y) {
			n := 0
			if i < len(s.N) {
				n = s.N[i]
			}
			o.ci = &harness.Interval{Lo: harness.Number(s.Lo[i]), Hi: harness.Number(s.Hi[i]), Level: stats.Level, Method: s.CIMethod, N: n, Of: "rows"}
		}
		out[s.Seed] = o
	}
	if len(out) == 0 {
		if len(labels) > 0 && !slices.Contains(labels, t.Label) {
			return nil, fmt.Errorf("series %s of %s on %s has no label %q (it has %s)", metric, model, t.Task, t.Label, quoted(labels))
		}
		return nil, fmt.Errorf("no point at %s of series %s of %s on %s", num(*t.At), metric, model, t.Task)
	}
	return out, nil
}

// single is one model's quantity: the mean over seeds with its interval.
func single(a map[uint64]observation) Quantity {
	seeds := sortedSeeds(a)
	if len(seeds) >= 2 {
		xs := make([]float64, len(seeds))
		for i, s := range seeds {
			xs[i] = a[s].value
		}
		return fromInterval(stats.TInterval(xs, stats.Level), len(xs), "seeds", harness.CIStudentT)
	}
	o := a[seeds[0]]
	q := Quantity{Estimate: o.value, Lo: math.NaN(), Hi: math.NaN(), N: 1, Of: "seeds"}
	if o.ci != nil {
		q.Lo, q.Hi, q.N, q.Of, q.Method = float64(o.ci.Lo), float64(o.ci.Hi), o.ci.N, o.ci.Of, o.ci.Method
	}
	return q
}

// compare is the difference (or ratio) of a's and b's quantities, paired
// by seed (see the package comment).
func compare(a, b map[uint64]observation, ratio bool) (Quantity, error) {
	var seeds []uint64
	for _, s := range sortedSeeds(a) {
		if _, ok := b[s]; ok {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return Quantity{}, fmt.Errorf("the two models share no seed")
	}
	f := func(x float64) float64 { return x }
	inv := f
	if ratio {
		for _, s := range seeds {
			if !(a[s].value > 0 && b[s].value > 0) {
				return Quantity{}, fmt.Errorf("a ratio needs positive values (seed %d: %v and %v)", s, a[s].value, b[s].value)
			}
		}
		f, inv = math.Log, math.Exp
	}
	if len(seeds) >= 2 {
		ds := make([]float64, len(seeds))
		for i, s := range seeds {
			ds[i] = f(a[s].value) - f(b[s].value)
		}
		iv := stats.TInterval(ds, stats.Level)
		return fromInterval(stats.Interval{Estimate: inv(iv.Estimate), Lo: inv(iv.Lo), Hi: inv(iv.Hi)}, len(ds), "seeds", "paired t"), nil
	}
	x, y := a[seeds[0]], b[seeds[0]]
	est := f(x.value) - f(y.value)
	q := Quantity{Estimate: inv(est), Lo: math.NaN(), Hi: math.NaN(), N: 1, Of: "seeds"}
	if x.ci == nil || y.ci == nil || (ratio && !(x.ci.Lo > 0 && y.ci.Lo > 0)) {
		return q, nil
	}
	// Independent intervals: lower and upper distances add in quadrature.
	down := math.Hypot(f(x.value)-f(float64(x.ci.Lo)), f(float64(y.ci.Hi))-f(y.value))
	up := math.Hypot(f(float64(x.ci.Hi))-f(x.value), f(y.value)-f(float64(y.ci.Lo)))
	q.Lo, q.Hi = inv(est-down), inv(est+up)
	q.N, q.Of, q.Method = min(x.ci.N, y.ci.N), x.ci.Of, "independent "+x.ci.Method
	return q, nil
}

func fromInterval(iv stats.Interval, n int, of, method string) Quantity {
	return Quantity{Estimate: iv.Estimate, Lo: iv.Lo, Hi: iv.Hi, N: n, Of: of, Method: method}
}

func sortedSeeds(m map[uint64]observation) []uint64 {
	out := make([]uint64, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func quoted(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Quote(x)
	}
	return strings.Join(out, ", ")
}
