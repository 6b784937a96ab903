package seq2seq

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
)

// reverser is an untrainable sweeper that reverses each source (right on
// seq2seq/reverse) at T=2 and by default, and outputs Mask tokens at T=1.
type reverser struct{ sweeper }

func (*reverser) Config() harness.Config { return &harnesstest.UniformConfig{} }

func init() {
	harness.RegisterModel("s2s-test-joiner", "bigram language model in joined mode (tasks/seq2seq tests)",
		func() harness.Model { return joiner{harnesstest.NewLM()} })
	harness.RegisterModel("s2s-test-reverser", "reversing decode sweeper (tasks/seq2seq tests)", func() harness.Model {
		rev := func(src []int) []int { out := slices.Clone(src); slices.Reverse(out); return out }
		return &reverser{sweeper{oracle{fakeBase: fakeBase{"s2s-test-reverser"}, answer: rev}}}
	})
}

// The runner trains a joined language model on the task's batches, draws
// its validation curve and evaluates it; an untrainable sweeper is
// evaluated; the results file they give loads (every metric and series
// identity unique).
func TestRunEndToEnd(t *testing.T) {
	out := filepath.ToSlash(filepath.Join(t.TempDir(), "out"))
	e, err := harness.ParseExperiment("s2s.yaml", []byte(`name: s2s
backend: fake
out: `+out+`
seed: 1
train: {steps: 4, batch: 4, lr: 0.05, eval_every: 2, log_every: 2}
tasks:
  - name: seq2seq/reverse
    config: {min_len: 2, max_len: 5, valid_rows: 16, test_rows: 24, latency_rows: 4, large_batch: 10}
models:
  - name: s2s-test-joiner
  - name: s2s-test-reverser
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := harness.Run(context.Background(), e, harness.RunOptions{CommandLine: []string{"test"}}); err != nil {
		t.Fatal(err)
	}
	rf, err := harness.LoadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range rf.Results {
		got[r.Model+" "+r.Metric] = float64(r.Value)
	}
	for name, want := range map[string]float64{"s2s-test-reverser exact_match": 1, "s2s-test-reverser exact_match@T=1": 0, "s2s-test-reverser exact_match@T=2": 1} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (reported: %v), want %v", name, v, ok, want)
		}
	}
	if _, ok := got["s2s-test-joiner target_nll"]; !ok {
		t.Error("the joined model has no target_nll")
	}
	valid := 0
	for _, c := range rf.Curves {
		if c.Model == "s2s-test-joiner" && c.Name == harness.CurveValidLoss {
			valid = len(c.Values)
		}
	}
	if valid != 2 {
		t.Errorf("joined model: %d validation points, want 2", valid)
	}
	series := 0
	for _, s := range rf.Series {
		if s.Model == "s2s-test-reverser" && s.Name == "exact_match_vs_iterations" {
			series++
		}
	}
	if series != 1 {
		t.Errorf("%d exact_match_vs_iterations series for the sweeper, want 1", series)
	}
}
