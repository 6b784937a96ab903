package claims

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"arbench/harness"
)

func f(v float64) *float64 { return &v }

func result(model, metric string, seed uint64, v float64, ci *harness.Interval) harness.Result {
	return harness.Result{Task: "t/a", Model: model, Metric: metric, Seed: seed, Value: harness.Number(v), CI: ci}
}

func ci(lo, hi float64, n int) *harness.Interval {
	return &harness.Interval{Lo: harness.Number(lo), Hi: harness.Number(hi), Level: 0.95, Method: harness.CIWilson, N: n, Of: "rows"}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

// Three seeds per model: the per-seed differences' t interval decides.
func TestPairedSeedsDecide(t *testing.T) {
	rf := &harness.ResultsFile{}
	for i, v := range []float64{0.20, 0.25, 0.22} {
		rf.Results = append(rf.Results, result("rnn", "acc", uint64(i+1), v, nil))
		rf.Results = append(rf.Results, result("tf", "acc", uint64(i+1), v+0.7+0.01*float64(i), nil))
	}
	test := harness.ClaimTest{Task: "t/a", Metric: "acc", Model: "rnn", Other: "tf", Expect: harness.ExpectLess}
	got := judgeTest(rf, test)
	// Differences −0.70, −0.71, −0.72: mean −0.71, s = 0.01, t_{.975,2} =
	// 4.302653, half-width 0.024841.
	if got.Verdict != Supported || !near(got.Quantity.Estimate, -0.71) ||
		math.Abs(got.Quantity.Hi-(-0.71+0.0248414)) > 1e-6 || got.Quantity.N != 3 || got.Quantity.Of != "seeds" {
		t.Errorf("less: %+v", got)
	}
	test.Expect = harness.ExpectGreater
	if got := judgeTest(rf, test); got.Verdict != Contradicted {
		t.Errorf("greater: %+v", got)
	}
	// A threshold inside the interval: not resolved.
	test.Than = f(-0.71)
	if got := judgeTest(rf, test); got.Verdict != Unresolved || got.Reason == "" {
		t.Errorf("threshold inside: %+v", got)
	}
}

// One seed: the task's row intervals combine as independent.
func TestOneSeedCombinesRowIntervals(t *testing.T) {
	rf := &harness.ResultsFile{Results: []harness.Result{
		result("rnn", "acc", 1, 0.5, ci(0.4, 0.6, 128)),
		result("tf", "acc", 1, 0.8, ci(0.7, 0.9, 128)),
		result("lstm", "acc", 1, 0.55, ci(0.45, 0.65, 128)),
		result("bare", "acc", 1, 0.1, nil),
	}}
	got := judgeTest(rf, harness.ClaimTest{Task: "t/a", Metric: "acc", Model: "rnn", Other: "tf", Expect: harness.ExpectLess})
	h := math.Hypot(0.1, 0.1)
	if got.Verdict != Supported || !near(got.Quantity.Estimate, -0.3) || !near(got.Quantity.Lo, -0.3-h) ||
		!near(got.Quantity.Hi, -0.3+h) || got.Quantity.N != 128 || got.Quantity.Of != "rows" {
		t.Errorf("rnn − tf: %+v", got)
	}
	got = judgeTest(rf, harness.ClaimTest{Task: "t/a", Metric: "acc", Model: "rnn", Other: "lstm", Expect: harness.ExpectLess})
	if got.Verdict != Unresolved {
		t.Errorf("rnn − lstm (overlapping): %+v", got)
	}
	got = judgeTest(rf, harness.ClaimTest{Task: "t/a", Metric: "acc", Model: "bare", Expect: harness.ExpectLess, Than: f(0.5)})
	if got.Verdict != Unresolved || !strings.Contains(got.Reason, "no interval") {
		t.Errorf("no interval: %+v", got)
	}
	got = judgeTest(rf, harness.ClaimTest{Task: "t/a", Metric: "acc", Model: "rnn", Expect: harness.ExpectGreater, Than: f(0.3)})
	if got.Verdict != Supported || got.Quantity.Lo != 0.4 {
		t.Errorf("one model against a constant: %+v", got)
	}
}

// A ratio is judged on the log scale: the geometric mean of the per-seed
// ratios with its interval.
func TestRatio(t *testing.T) {
	rf := &harness.ResultsFile{}
	for i, r := range []float64{2, 2.2, 2.1} {
		rf.Results = append(rf.Results, result("nar", "tok/s", uint64(i), 100*r, nil), result("ar", "tok/s", uint64(i), 100, nil))
	}
	test := harness.ClaimTest{Task: "t/a", Metric: "tok/s", Model: "nar", Other: "ar", Ratio: true, Expect: harness.ExpectGreater, Than: f(1.5)}
	got := judgeTest(rf, test)
	gm := math.Cbrt(2 * 2.2 * 2.1)
	if got.Verdict != Supported || !near(got.Quantity.Estimate, gm) || !(got.Quantity.Lo < gm && got.Quantity.Hi > gm) {
		t.Errorf("ratio: %+v (geometric mean %v)", got, gm)
	}
	rf.Results[0].Value = 0
	if got := judgeTest(rf, test); got.Verdict != NotMeasured || !strings.Contains(got.Reason, "positive") {
		t.Errorf("zero in a ratio: %+v", got)
	}
}

func TestSeriesPoints(t *testing.T) {
	rf := &harness.ResultsFile{Series: []harness.SeriesRecord{
		{Task: "t/a", Model: "rnn", Seed: 1, Series: harness.Series{Name: "acc_vs_d", Label: "trained", X: []float64{4, 128}, Y: []float64{0.9, 0.3},
			N: []int{100, 100}, Lo: []float64{0.8, 0.2}, Hi: []float64{0.95, 0.4}, CIMethod: harness.CIWilson}},
		{Task: "t/a", Model: "rnn", Seed: 1, Series: harness.Series{Name: "acc_vs_d", Label: "init", X: []float64{4, 128}, Y: []float64{0.1, 0.1}}},
	}}
	test := harness.ClaimTest{Task: "t/a", Metric: "acc_vs_d", At: f(128), Label: "trained", Model: "rnn", Expect: harness.ExpectLess, Than: f(0.5)}
	got := judgeTest(rf, test)
	if got.Verdict != Supported || got.Quantity.Estimate != 0.3 || got.Quantity.Hi != 0.4 || got.Quantity.N != 100 {
		t.Errorf("series point: %+v", got)
	}
	test.Label = "free"
	if got := judgeTest(rf, test); got.Verdict != NotMeasured || !strings.Contains(got.Reason, `has no label "free" (it has "trained", "init")`) {
		t.Errorf("unknown label: %+v", got)
	}
	test.Label, test.At = "trained", f(64)
	if got := judgeTest(rf, test); got.Verdict != NotMeasured || !strings.Contains(got.Reason, "no point at 64") {
		t.Errorf("missing x: %+v", got)
	}
}

func TestCombine(t *testing.T) {
	v := func(vs ...Verdict) []TestResult {
		var out []TestResult
		for _, x := range vs {
			out = append(out, TestResult{Verdict: x})
		}
		return out
	}
	for _, c := range []struct {
		in   []TestResult
		want Verdict
	}{
		{v(Supported, Supported), Supported},
		{v(Supported, Contradicted), Contradicted},
		{v(Unresolved, Contradicted), Contradicted},
		{v(Supported, Unresolved), Unresolved},
		{v(Supported, NotMeasured), Unresolved},
		{v(NotMeasured), NotMeasured},
		{nil, NotMeasured},
	} {
		if got := combine(c.in); got != c.want {
			t.Errorf("combine(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Judge reads the claims from the manifest's resolved configuration and
// renders them.
func TestJudgeFromManifest(t *testing.T) {
	e := harness.Experiment{Name: "x", Claims: []harness.ClaimSpec{{ID: "c1", Claim: "rnn forgets", Tests: []harness.ClaimTest{
		{Task: "t/a", Metric: "acc", Model: "rnn", Other: "tf", Expect: harness.ExpectLess},
		{Task: "t/a", Metric: "missing", Model: "rnn", Expect: harness.ExpectLess, Than: f(1)},
	}}}}
	cfg, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	rf := &harness.ResultsFile{Manifest: harness.Manifest{Config: cfg}, Results: []harness.Result{
		result("rnn", "acc", 1, 0.5, ci(0.4, 0.6, 128)), result("tf", "acc", 1, 0.8, ci(0.7, 0.9, 128)),
	}}
	js, err := Judge(rf)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || js[0].Verdict != Unresolved || js[0].Tests[0].Verdict != Supported || js[0].Tests[1].Verdict != NotMeasured {
		t.Fatalf("judged %+v", js)
	}
	var md bytes.Buffer
	if err := Markdown(&md, js); err != nil {
		t.Fatal(err)
	}
	want := `| claim | verdict | test | measured (95% interval) | test verdict |
|---|---|---|---|---|
| c1: rnn forgets | not resolved at this budget | acc: rnn − tf < 0 on t/a | -0.3 [-0.4414, -0.1586] (n=128 rows) | supported |
|  |  | missing: rnn < 1 on t/a | – | not measured (no result missing of rnn on t/a) |
`
	if md.String() != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", md.String(), want)
	}
	var js2 bytes.Buffer
	rf.Manifest.Name, rf.Manifest.GitSHA, rf.Manifest.Seeds = "x", "0123456789abcdef0123", []uint64{1, 2}
	rf.Manifest.End = time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	if err := WriteJSON(&js2, ProvenanceOf(rf.Manifest), js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js2.String(), `"estimate": null`) || !strings.Contains(js2.String(), `"verdict": "supported"`) {
		t.Errorf("json:\n%s", js2.String())
	}
	// What WriteJSON writes, ReadJSON reads back to the same table.
	run, back, err := ReadJSON(&js2)
	if err != nil {
		t.Fatal(err)
	}
	if got := run.String(); got != "x at commit 0123456789ab, seeds 1, 2, finished 2026-12-02" {
		t.Errorf("provenance %q", got)
	}
	var md2 bytes.Buffer
	if err := Markdown(&md2, back); err != nil || md2.String() != want {
		t.Errorf("table after a JSON round trip (%v):\n%s", err, md2.String())
	}
	// No claims section: no judgements and no table.
	rf.Manifest.Config = []byte(`{"name":"x"}`)
	if js, err := Judge(rf); err != nil || len(js) != 0 {
		t.Errorf("no claims: %v %v", js, err)
	}
}

// other_metric compares two metrics of one model (free-running against
// teacher-forced error); train_tokens_per_sec reads the run records.
func TestOtherMetricAndThroughput(t *testing.T) {
	rf := &harness.ResultsFile{}
	for s := uint64(1); s <= 3; s++ {
		rf.Results = append(rf.Results, result("lstm", "err_fr", s, 0.3+0.01*float64(s), nil), result("lstm", "err_tf", s, 0.1, nil))
		rf.Runs = append(rf.Runs,
			harness.RunRecord{Task: "t/a", Model: "rnn", Seed: s, Trained: true, TokensPerSec: 1000 + float64(s)},
			harness.RunRecord{Task: "t/a", Model: "tf", Seed: s, Trained: true, TokensPerSec: 300 + 2*float64(s)})
	}
	test := harness.ClaimTest{Task: "t/a", Metric: "err_fr", OtherMetric: "err_tf", Model: "lstm", Expect: harness.ExpectGreater}
	if got := judgeTest(rf, test); got.Verdict != Supported || !near(got.Quantity.Estimate, 0.22) {
		t.Errorf("free-running − teacher-forced: %+v", got)
	}
	if d := Describe(test); d != "err_fr of lstm − err_tf of lstm > 0 on t/a" {
		t.Errorf("Describe = %q", d)
	}
	test = harness.ClaimTest{Task: "t/a", Metric: harness.ClaimTrainTokensPerSec, Model: "tf", Other: "rnn", Ratio: true, Expect: harness.ExpectGreater}
	got := judgeTest(rf, test)
	if got.Verdict != Contradicted || !(got.Quantity.Estimate < 0.31 && got.Quantity.Estimate > 0.30) {
		t.Errorf("throughput ratio: %+v", got)
	}
	if d := Describe(test); d != "train_tokens_per_sec: tf / rnn > 1 on t/a" {
		t.Errorf("Describe = %q", d)
	}
}

// An unresolved test names the runs that were still improving.
func TestUnresolvedNamesImprovingRuns(t *testing.T) {
	rf := &harness.ResultsFile{Results: []harness.Result{
		result("rnn", "acc", 1, 0.5, ci(0.4, 0.6, 128)), result("lstm", "acc", 1, 0.55, ci(0.45, 0.65, 128)),
	}}
	falling := &harness.ValidSlope{Slope: -2, CI: &harness.Interval{Lo: -3, Hi: -1}}
	flat := &harness.ValidSlope{Slope: 0, CI: &harness.Interval{Lo: -1, Hi: 1}}
	rf.Runs = []harness.RunRecord{
		{Task: "t/a", Model: "rnn", Seed: 1, Trained: true, ValidSlope: falling},
		{Task: "t/a", Model: "lstm", Seed: 1, Trained: true, ValidSlope: flat},
	}
	got := judgeTest(rf, harness.ClaimTest{Task: "t/a", Metric: "acc", Model: "rnn", Other: "lstm", Expect: harness.ExpectLess})
	if got.Verdict != Unresolved || !strings.HasSuffix(got.Reason, "; still improving at the end of training: rnn (seed 1)") {
		t.Errorf("%+v", got)
	}
}

// A seed whose value is not finite makes the test not measured, naming the
// seed and the task's word on it.
func TestNonFiniteSeedNamed(t *testing.T) {
	rf := &harness.ResultsFile{}
	for s, v := range []float64{8, math.NaN(), 16} {
		r := result("tf", "effective_context", uint64(s+1), v, nil)
		if math.IsNaN(v) {
			r.Params = map[string]any{"verdict": "longer context hurts"}
		}
		rf.Results = append(rf.Results, r)
	}
	got := judgeTest(rf, harness.ClaimTest{Task: "t/a", Metric: "effective_context", Model: "tf", Expect: harness.ExpectLess, Than: f(64)})
	if got.Verdict != NotMeasured || got.Reason != "tf's value is not finite on seed 2 (longer context hurts)" {
		t.Errorf("%+v", got)
	}
}
