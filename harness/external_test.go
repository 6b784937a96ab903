package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
)

// TestRunnerUsesStepTrainerAndWeightsIO: a model that owns its training
// step is trained through it (the runner's learning-rate schedule and clip
// passed per step, no optimiser of the runner's), saves and loads its own
// weights files, and is recorded as nondeterministic.
func TestRunnerUsesStepTrainerAndWeightsIO(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	e, err := parse(t, `name: own
backend: fake
out: `+filepath.ToSlash(out)+`
seed: 3
train: {steps: 5, batch: 2, lr: 0.1, clip: 0.5, warmup_steps: 2, eval_every: 0}
tasks:
  - name: fake/count
    config: {seq_len: 6, length: 300}
models:
  - name: fake-ownstep
`)
	if err != nil {
		t.Fatal(err)
	}
	weights := filepath.Join(t.TempDir(), "w")
	rf, err := harness.Run(context.Background(), e, harness.RunOptions{SaveWeights: weights})
	if err != nil {
		t.Fatal(err)
	}
	m := harnesstest.LastOwnStep
	if len(m.Steps) != 5 {
		t.Fatalf("%d TrainStep calls, want 5", len(m.Steps))
	}
	for i, s := range m.Steps {
		if s.Step != i+1 || s.LR != e.Models[0].Train.LRAt(i+1) || s.Clip != 0.5 {
			t.Errorf("step %d told %+v; want step %d, lr %v, clip 0.5", i, s, i+1, e.Models[0].Train.LRAt(i+1))
		}
	}
	if m.Steps[0].LR == m.Steps[4].LR {
		t.Error("warmup: the first step's learning rate equals the last's")
	}
	run := rf.Runs[0]
	if !run.Trained || run.Steps != 5 || !run.Info.Nondeterministic || run.Params != 7 {
		t.Errorf("run %+v", run)
	}
	b, err := os.ReadFile(run.WeightsOut)
	if err != nil || string(b) != "ownstep 5" {
		t.Fatalf("weights %s: %q, %v", run.WeightsOut, b, err)
	}
	// Loading: the model reads its own file before training.
	e.Out = filepath.Join(t.TempDir(), "again")
	if _, err := harness.Run(context.Background(), e, harness.RunOptions{LoadWeights: run.WeightsOut}); err != nil {
		t.Fatal(err)
	}
	if m := harnesstest.LastOwnStep; m.Loaded != run.WeightsOut || m.Taken != 5 {
		t.Errorf("loaded %q (%d steps), want %s", m.Loaded, m.Taken, run.WeightsOut)
	}
	// A file the model cannot read fails the run, naming the file.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("garbage"), 0o644)
	e.Out = filepath.Join(t.TempDir(), "bad-out")
	_, err = harness.Run(context.Background(), e, harness.RunOptions{LoadWeights: bad})
	if err == nil || !strings.Contains(err.Error(), "load weights "+bad) || !strings.Contains(err.Error(), "not an ownstep file") {
		t.Errorf("bad weights: %v", err)
	}
}
