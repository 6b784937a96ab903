package reports

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"arbench/harness"
)

// The runs table says each run's rate and whether it was still improving;
// the sweeps table lists every candidate and warns at an edge.
func TestSweepsAndConvergence(t *testing.T) {
	rf := &harness.ResultsFile{Manifest: harness.Manifest{Name: "x"},
		LRSweeps: []harness.LRSweepRecord{{Task: "t/a", Model: "lstm", Steps: 25, Chosen: 0.01, Trials: []harness.LRTrial{
			{LR: 0.001, ValidLoss: 2.5}, {LR: 0.003, ValidLoss: harness.Number(math.NaN())}, {LR: 0.01, ValidLoss: 2.1}}}},
		Runs: []harness.RunRecord{
			{Task: "t/a", Model: "lstm", Seed: 1, Trained: true, LR: 0.01, ValidSlope: &harness.ValidSlope{Slope: -2, Unit: "nats/token per 1000 steps",
				CI: &harness.Interval{Lo: -3, Hi: -1}}},
			{Task: "t/a", Model: "lstm", Seed: 2, Trained: true, LR: 0.01, ValidSlope: &harness.ValidSlope{Slope: 0.1, Unit: "nats/token per 1000 steps",
				CI: &harness.Interval{Lo: -1, Hi: 1}}},
			{Task: "t/a", Model: "lstm", Seed: 3, ValidSlope: &harness.ValidSlope{Slope: harness.Number(math.NaN()), Note: "too few validation points"}},
		}}
	var md bytes.Buffer
	if err := Markdown(&md, rf); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"## Learning-rate sweeps",
		"| t/a | lstm | 0 | 25 | 0.001: 2.5000, 0.003: diverged, 0.01: 2.1000 | 0.01 | the largest candidate: the best rate may lie beyond them |",
		"| 0.01 |", "not converged at this budget (still improving: -2 [-3, -1] nats/token per 1000 steps)",
		"flat: 0.1 [-1, 1] nats/token per 1000 steps", "too few validation points",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	rf.LRSweeps = nil
	md.Reset()
	if err := Markdown(&md, rf); err != nil || strings.Contains(md.String(), "Learning-rate sweeps") {
		t.Errorf("a sweeps section without sweeps (%v)", err)
	}
}
