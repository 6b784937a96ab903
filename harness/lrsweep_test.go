package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
)

// sweepModels are the models of sweepExperiment by default: fake-uniform
// inherits the sweep but has no Trainer.
const sweepModels = "  - name: fake-lm\n  - name: fake-uniform\n"

// sweepExperiment is a one-task experiment whose trained models choose
// their lr among three candidates (the last one diverges) in 4-step
// trials.
func sweepExperiment(t *testing.T, seeds, models string) *harness.Experiment {
	t.Helper()
	out := filepath.ToSlash(filepath.Join(t.TempDir(), "out"))
	e, err := parse(t, `name: sweep
backend: fake
out: `+out+`
seeds: `+seeds+`
train: {steps: 8, batch: 4, lr: 0.05, eval_every: 2, lr_sweep: {lrs: [0.003, 0.3, 3e38], steps: 4}}
tasks:
  - name: fake/count
    config: {seq_len: 6, length: 300}
models:
`+models)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// trialsStarted counts the sweep trials a log shows starting, of label
// when given.
func trialsStarted(log, label string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "[lr sweep ") && strings.HasSuffix(line, ": started") && strings.Contains(line, "] "+label) {
			n++
		}
	}
	return n
}

func runLogged(t *testing.T, e *harness.Experiment, opt harness.RunOptions) (*harness.ResultsFile, string, error) {
	t.Helper()
	var log bytes.Buffer
	opt.Log = &log
	rf, err := harness.Run(context.Background(), e, opt)
	return rf, log.String(), err
}

func TestLRSweepConfig(t *testing.T) {
	e, err := parse(t, `name: sweep
backend: fake
train: {steps: 100, lr_sweep: {lrs: [0.001, 0.01]}}
tasks: [{name: fake/count}]
models:
  - name: fake-lm
  - name: fake-lm
    label: short
    train: {lr_sweep: {steps: 10, seed: 7}}
  - name: fake-lm
    label: fixed
    train: {lr: 0.02, lr_sweep: null}
`)
	if err != nil {
		t.Fatal(err)
	}
	s0, s1 := e.Models[0].Train.LRSweep, e.Models[1].Train.LRSweep
	if s0 == nil || !reflect.DeepEqual(s0.LRs, []float64{0.001, 0.01}) || s0.Steps != nil || s0.TrialSteps(100) != 25 || s0.Seed != 0 {
		t.Errorf("models[0] sweep = %+v", s0)
	}
	// A per-model override changes the fields it names only, and not the
	// experiment-wide sweep.
	if s1 == nil || !reflect.DeepEqual(s1.LRs, s0.LRs) || s1.TrialSteps(100) != 10 || s1.Seed != 7 || e.Train.LRSweep.Steps != nil {
		t.Errorf("models[1] sweep = %+v, experiment's %+v", s1, e.Train.LRSweep)
	}
	if e.Models[2].Train.LRSweep != nil || e.Models[2].Train.LR != 0.02 {
		t.Errorf("models[2] train = %+v, want no sweep", e.Models[2].Train)
	}
	if got := (&harness.LRSweep{}).TrialSteps(3); got != 1 {
		t.Errorf("trial steps of a 3-step run = %d, want 1", got)
	}
	b, err := json.Marshal(e.Models[1])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"lr_sweep":{"lrs":[0.001,0.01],"steps":10,"seed":7}`)) {
		t.Errorf("resolved model lacks its sweep: %s", b)
	}
	// Without a sweep the resolved configuration (and so every run id)
	// is what it was before sweeps existed.
	if b, err = json.Marshal(e.Models[2]); err != nil || bytes.Contains(b, []byte("lr_sweep")) {
		t.Errorf("a model without a sweep: %s, %v", b, err)
	}
}

func TestLRSweepValidation(t *testing.T) {
	_, err := parse(t, `name: sweep
backend: fake
train:
  steps: 40
  warmup_steps: 10
  lr_sweep:
    lrs: [0.01, -1, 0.01, .nan]
    steps: 50
tasks: [{name: fake/count}]
models:
  - name: fake-lm
    train:
      lr_sweep:
        lrs: []
        steps: 0
  - name: fake-lm
    label: warm
    train: {lr_sweep: {lrs: [0.1], steps: 8}}
  - name: fake-lm
    label: defaulted
    train: {steps: 20, lr_sweep: {lrs: [0.1], steps: null}}
  - name: fake-lm
    label: typo
    train: {lr_sweep: {lr: [0.1]}}
`)
	var ce harness.ConfigErrors
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want ConfigErrors", err)
	}
	want := strings.Join([]string{
		`x.yaml:7: train.lr_sweep.lrs[3]: must be a finite number, got NaN`,
		`x.yaml:7: train.lr_sweep.lrs[1]: must be a positive number, got -1`,
		`x.yaml:7: train.lr_sweep.lrs[2]: duplicate of lr_sweep.lrs[0] (0.01)`,
		`x.yaml:8: train.lr_sweep.steps: must be <= train.steps (40): a trial is a shortened run, got 50`,
		`x.yaml:14: models[0].train.lr_sweep.lrs: must list at least one learning rate`,
		`x.yaml:15: models[0].train.lr_sweep.steps: must be >= 1 (omit it for a quarter of train.steps), got 0`,
		`x.yaml:18: models[1].train.lr_sweep.steps: trials of 8 steps do not get past warmup_steps (10), so none trains at its learning rate; set lr_sweep.steps above 10`,
		`x.yaml:21: models[2].train.lr_sweep.steps: trials of 5 steps (a quarter of train.steps) do not get past warmup_steps (10), so none trains at its learning rate; set lr_sweep.steps above 10`,
		`x.yaml:24: models[3].train.lr_sweep.lr: unknown field (known: lrs, seed, steps)`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

// The sweep trains one trial per candidate, picks the lowest validation
// loss (the diverged trial loses), records it, and every seed trains with
// the chosen rate: its runs are exactly those of an experiment that sets
// that rate. A trial is the run shortened, at the sweep's seed: its loss is
// that run's final validation loss.
func TestLRSweepChoosesAndTrains(t *testing.T) {
	e := sweepExperiment(t, "[1, 2]", sweepModels)
	rf, log, err := runLogged(t, e, runOpts())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSONOf(t, rf.LRSweeps, stored.LRSweeps) {
		t.Error("returned sweeps differ from the stored ones")
	}
	if len(stored.LRSweeps) != 1 {
		t.Fatalf("%d sweeps, want 1 (fake-uniform has no Trainer)", len(stored.LRSweeps))
	}
	sw := stored.LRSweeps[0]
	if sw.Task != "fake/count" || sw.Model != "fake-lm" || sw.Seed != 0 || sw.Steps != 4 || len(sw.Trials) != 3 || !(sw.InitialValidLoss > 0) {
		t.Fatalf("sweep = %+v", sw)
	}
	diverged := sw.Trials[2]
	if !math.IsNaN(float64(diverged.ValidLoss)) || !strings.HasPrefix(diverged.Note, "diverged at step") {
		t.Errorf("lr 3e38 trial = %+v, want diverged", diverged)
	}
	a, b := float64(sw.Trials[0].ValidLoss), float64(sw.Trials[1].ValidLoss)
	want := 0.003
	if b < a {
		want = 0.3
	}
	if !(a > 0 && b > 0 && a != b) || sw.Chosen != want {
		t.Errorf("valid losses %v, %v: chose %v, want %v", a, b, sw.Chosen, want)
	}
	if n := trialsStarted(log, ""); n != 3 {
		t.Errorf("%d trials started, want 3:\n%s", n, log)
	}
	if !strings.Contains(log, "lr sweep of fake-lm on fake/count (seed 0, 4 steps each): chose lr") ||
		strings.Contains(log, "widen lr_sweep.lrs") != (sw.AtEdge() != "") {
		t.Errorf("log lacks the sweep's summary:\n%s", log)
	}
	for _, r := range stored.Runs {
		switch {
		case r.Model == "fake-lm" && r.LR != sw.Chosen:
			t.Errorf("%s trained with lr %v, want the chosen %v", r.Key(), r.LR, sw.Chosen)
		case r.Model == "fake-uniform" && r.LR != 0:
			t.Errorf("%s: lr %v, but it did not train", r.Key(), r.LR)
		}
	}
	if got := stored.LRSweep("fake/count", "fake-lm"); got == nil || got.Chosen != sw.Chosen {
		t.Errorf("LRSweep lookup = %+v", got)
	}
	// Run ids are known before any sweep ran: they do not depend on the
	// chosen rate.
	planned, err := harness.PlanRuns(context.Background(), e, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range planned {
		if p.ID != stored.Runs[i].RunID {
			t.Errorf("%s: planned id %s, recorded %s", p.Key, p.ID, stored.Runs[i].RunID)
		}
	}

	// The same runs with the chosen rate set: identical results.
	fixed := sweepExperiment(t, "[1, 2]", sweepModels)
	fixed.SetTrain(func(c *harness.TrainConfig) { c.LRSweep, c.LR = nil, sw.Chosen })
	if _, err := harness.Run(context.Background(), fixed, runOpts()); err != nil {
		t.Fatal(err)
	}
	plain, err := harness.LoadResults(fixed.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plain.Results, stored.Results) || !reflect.DeepEqual(plain.Curves, stored.Curves) {
		t.Error("the runs after the sweep differ from runs with the chosen lr")
	}
	if plain.Runs[0].RunID == stored.Runs[0].RunID {
		t.Error("a swept run and a fixed-lr run share a run id: the sweep is not part of the configuration")
	}

	// Trial 0 is the run of seed 0 at lr 0.003 for 4 steps.
	trial := sweepExperiment(t, "[0]", sweepModels)
	trial.SetTrain(func(c *harness.TrainConfig) { c.LRSweep, c.LR, c.Steps, c.EvalEvery = nil, 0.003, 4, 0 })
	trf, err := harness.Run(context.Background(), trial, runOpts())
	if err != nil {
		t.Fatal(err)
	}
	if v := trf.Curves[1].Values; len(v) != 1 || v[0] != sw.Trials[0].ValidLoss {
		t.Errorf("a 4-step run at lr 0.003 seed 0 ends at valid loss %v; the trial recorded %v", v, sw.Trials[0].ValidLoss)
	}
}

// -resume reuses a recorded sweep; one that was interrupted runs again.
func TestLRSweepResume(t *testing.T) {
	e := sweepExperiment(t, "[1]", sweepModels)
	if _, log, err := runLogged(t, e, runOpts()); err != nil || trialsStarted(log, "") != 3 {
		t.Fatalf("first run: %v\n%s", err, log)
	}
	first, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	more := *e
	more.Seeds = []uint64{1, 2}
	opt := runOpts()
	opt.Resume = true
	_, log, err := runLogged(t, &more, opt)
	if err != nil {
		t.Fatal(err)
	}
	if n := trialsStarted(log, ""); n != 0 || !strings.Contains(log, "1 lr sweep(s) recorded") {
		t.Errorf("resume started %d trials, want 0 (the sweep is recorded):\n%s", n, log)
	}
	rf, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.LRSweeps) != 1 || sweepDiffers(rf.LRSweeps[0], first.LRSweeps[0]) || len(rf.Runs) != 4 {
		t.Fatalf("after resume: %d runs, sweeps %+v", len(rf.Runs), rf.LRSweeps)
	}
	for _, r := range rf.Runs {
		if r.Model == "fake-lm" && r.LR != first.LRSweeps[0].Chosen {
			t.Errorf("%s trained with lr %v, want the recorded sweep's %v", r.Key(), r.LR, first.LRSweeps[0].Chosen)
		}
	}

	// A recorded sweep whose configuration is not the planned one is
	// dropped and run again.
	path := filepath.Join(e.Out, harness.ResultsFileName)
	var raw map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	sw := raw["lr_sweeps"].([]any)[0].(map[string]any)
	sw["config"].(map[string]any)["seed"] = 5
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	more.Seeds = []uint64{1, 2, 3}
	if _, log, err = runLogged(t, &more, opt); err != nil {
		t.Fatal(err)
	}
	if n := trialsStarted(log, ""); n != 3 || !strings.Contains(log, "dropping the recorded lr sweep of fake-lm on fake/count: its configuration differs") {
		t.Errorf("a stale sweep: %d trials started, want 3:\n%s", n, log)
	}
}

// A sweep interrupted by the second model's sweep: the first model's
// sweep and runs are on disk, and -resume runs only the second's trials
// again, to the results of an uninterrupted run.
func TestLRSweepInterrupted(t *testing.T) {
	extra := sweepModels + "  - name: fake-lm\n    label: lm2\n    config: {init: 0.3}\n"
	whole := sweepExperiment(t, "[1]", extra)
	if _, err := harness.Run(context.Background(), whole, runOpts()); err != nil {
		t.Fatal(err)
	}
	want, err := harness.LoadResults(whole.Out)
	if err != nil {
		t.Fatal(err)
	}

	e := sweepExperiment(t, "[1]", extra)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// lm2's second trial is cancelled at its third step.
	steps, armed := 0, false
	ctx = context.WithValue(ctx, harnesstest.StepHook{}, func() {
		if steps++; armed && steps == 3 {
			cancel()
		}
	})
	log := &watchLog{on: "[lr sweep 2/3] lm2 on fake/count, lr 0.3: started", do: func() { steps, armed = 0, true }}
	opt := runOpts()
	opt.Log = log
	if _, err := harness.Run(ctx, e, opt); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled\n%s", err, log.String())
	}
	part, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(part.Runs) != 2 || len(part.LRSweeps) != 1 || part.LRSweeps[0].Model != "fake-lm" {
		t.Fatalf("kept %d runs and sweeps %+v, want fake-lm's and fake-uniform's runs and fake-lm's sweep\n%s", len(part.Runs), part.LRSweeps, log.String())
	}
	opt = runOpts()
	opt.Resume = true
	_, rlog, err := runLogged(t, e, opt)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := trialsStarted(rlog, "fake-lm on"), trialsStarted(rlog, "lm2 on"); a != 0 || b != 3 {
		t.Errorf("resume started %d trials of fake-lm and %d of lm2, want 0 and 3:\n%s", a, b, rlog)
	}
	got, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.LRSweeps) != 2 || sweepDiffers(got.LRSweeps[0], want.LRSweeps[0]) || sweepDiffers(got.LRSweeps[1], want.LRSweeps[1]) ||
		!reflect.DeepEqual(got.Results, want.Results) {
		t.Errorf("resumed sweeps %+v\nwant %+v", got.LRSweeps, want.LRSweeps)
	}
}

// sweepDiffers compares two sweeps but for the time their trials took.
func sweepDiffers(a, b harness.LRSweepRecord) bool {
	for _, s := range []*harness.LRSweepRecord{&a, &b} {
		s.Trials = append([]harness.LRTrial(nil), s.Trials...)
		for i := range s.Trials {
			s.Trials[i].TrainSeconds = 0
		}
	}
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	var x, y any
	json.Unmarshal(aj, &x)
	json.Unmarshal(bj, &y)
	return !reflect.DeepEqual(x, y)
}

// noValidTask is the fake task without a validation loss for any model.
type noValidTask struct{ *harnesstest.Task }

func (noValidTask) ValidLoss(context.Context, harness.Model) (float64, error) {
	return 0, fmt.Errorf("fake-novalid: %w", harness.ErrNoValidLoss)
}

// A model the task has no validation loss for cannot be swept: its runs
// fail before any trial trains, naming the remedy, and the others go on
// (a model with a fixed lr trains, and records why its convergence is not
// judged).
func TestLRSweepNeedsValidLoss(t *testing.T) {
	harness.RegisterTaskForTest(t, "fake-novalid", func() harness.Task { return noValidTask{harnesstest.NewTask()} })
	e, err := parse(t, `name: novalid
backend: fake
out: `+filepath.ToSlash(filepath.Join(t.TempDir(), "out"))+`
seeds: [1, 2]
train: {steps: 8, batch: 4, eval_every: 2, lr_sweep: {lrs: [0.01, 0.1]}}
tasks: [{name: fake-novalid/count, config: {seq_len: 6, length: 300}}]
models:
  - name: fake-lm
  - name: fake-lm
    label: fixed
    train: {lr_sweep: null}
`)
	if err != nil {
		t.Fatal(err)
	}
	_, log, err := runLogged(t, e, runOpts())
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Failed) != 2 {
		t.Fatalf("err = %v, want the 2 runs of fake-lm failed", err)
	}
	for _, f := range rp.Failed {
		if !strings.Contains(f, "fake-lm on fake-novalid/count") || !strings.Contains(f, "no validation loss") || !strings.Contains(f, "lr_sweep: null") {
			t.Errorf("failure %q", f)
		}
	}
	if n := trialsStarted(log, ""); n != 0 {
		t.Errorf("%d trials started, want 0", n)
	}
	rf, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Runs) != 2 || len(rf.Manifest.Failed) != 2 || len(rf.LRSweeps) != 0 {
		t.Fatalf("%d runs, %d failed, %d sweeps", len(rf.Runs), len(rf.Manifest.Failed), len(rf.LRSweeps))
	}
	for _, r := range rf.Runs {
		if r.LR != 0.003 || r.ValidSlope == nil || !strings.Contains(r.ValidSlope.Note, "no validation loss") || r.Convergence() != harness.ConvergenceUnknown {
			t.Errorf("%s: lr %v, valid slope %+v", r.Key(), r.LR, r.ValidSlope)
		}
	}
}

// When every trial diverges, the model's runs fail with that, and the
// sweep is recorded.
func TestLRSweepAllDiverge(t *testing.T) {
	e := sweepExperiment(t, "[1]", sweepModels)
	four := 4
	e.SetTrain(func(c *harness.TrainConfig) { c.LRSweep = &harness.LRSweep{LRs: []float64{2e38, 3e38}, Steps: &four} })
	_, _, err := runLogged(t, e, runOpts())
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Failed) != 1 || !strings.Contains(rp.Failed[0], "every learning rate of the lr sweep diverged in 4 steps") {
		t.Fatalf("err = %v", err)
	}
	rf, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.LRSweeps) != 1 || rf.LRSweeps[0].Chosen != 0 || len(rf.LRSweeps[0].Trials) != 2 {
		t.Errorf("sweeps %+v", rf.LRSweeps)
	}
}

// Shards run the sweeps their runs need; identical copies merge into one,
// in the order of a single run, and conflicting ones are refused, naming
// both directories.
func TestMergeLRSweeps(t *testing.T) {
	e := sweepExperiment(t, "[1, 2, 3]", "  - name: fake-lm\n")
	whole := runWhole(t, e)
	dirs := runShards(t, e, 3)
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := harness.Merge(context.Background(), dirs, mergeOpts(out)); err != nil {
		t.Fatal(err)
	}
	a, err := harness.LoadResults(whole)
	if err != nil {
		t.Fatal(err)
	}
	b, err := harness.LoadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	sameResults(t, a, b)
	if len(b.LRSweeps) != 1 || sweepDiffers(a.LRSweeps[0], b.LRSweeps[0]) {
		t.Errorf("merged sweeps %+v, want %+v", b.LRSweeps, a.LRSweeps)
	}
	withSweep := 0
	for _, d := range dirs {
		rf, err := harness.LoadResults(d)
		if err != nil {
			t.Fatal(err)
		}
		withSweep += len(rf.LRSweeps)
	}
	if withSweep != 3 {
		t.Fatalf("%d shards hold the sweep, want each of the 3", withSweep)
	}

	if !b.LRSweeps[0].Nondeterministic {
		t.Error("a sweep on the fake backend (not known to be deterministic) is not marked nondeterministic")
	}

	// Copies of a nondeterministic sweep agree within
	// NondeterministicTolerance; those of a deterministic one exactly.
	nudge := func(sw map[string]any) {
		trial := sw["trials"].([]any)[0].(map[string]any)
		trial["valid_loss"] = trial["valid_loss"].(float64) * (1 + 1e-6)
	}
	editSweep(t, dirs[0], nudge)
	if _, err := harness.Merge(context.Background(), dirs, mergeOpts(filepath.Join(t.TempDir(), "m1"))); err != nil {
		t.Errorf("a nondeterministic sweep within tolerance: %v", err)
	}
	for _, d := range dirs {
		editSweep(t, d, func(sw map[string]any) { delete(sw, "nondeterministic") })
	}
	_, err = harness.Merge(context.Background(), dirs, mergeOpts(filepath.Join(t.TempDir(), "m2")))
	var me *harness.MergeError
	if !errors.As(err, &me) || len(me.Problems) != 2 || !strings.Contains(err.Error(), "the lr sweep of fake-lm on fake/count is in "+dirs[0]+" and ") ||
		!strings.Contains(err.Error(), " with different results (valid loss at lr 0.003 ") {
		t.Errorf("err = %v", err)
	}
}

// editSweep rewrites the first lr sweep of dir's results with edit.
func editSweep(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, harness.ResultsFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	edit(raw["lr_sweeps"].([]any)[0].(map[string]any))
	if b, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A recorded sweep of another configuration is not the experiment's.
func TestMergeRefusesForeignSweep(t *testing.T) {
	e := sweepExperiment(t, "[1, 2]", "  - name: fake-lm\n")
	dirs := runShards(t, e, 2)
	// Runs and manifest keep their sweep; only the sweep's own record says
	// it ran other trials.
	editSweep(t, dirs[0], func(sw map[string]any) {
		cfg := sw["config"].(map[string]any)
		cfg["model"].(map[string]any)["train"].(map[string]any)["lr_sweep"].(map[string]any)["steps"] = 3
	})
	_, err := harness.Merge(context.Background(), dirs, mergeOpts(filepath.Join(t.TempDir(), "m")))
	if err == nil || !strings.Contains(err.Error(), "lr_sweeps[0] (fake-lm on fake/count): not the experiment's lr sweep: its configuration differs (model.train.lr_sweep.steps") {
		t.Errorf("err = %v", err)
	}
}

// ParseResults checks the sweeps: unique, distinct rates, and a choice
// that is the lowest validation loss's.
func TestParseResultsChecksSweeps(t *testing.T) {
	e := sweepExperiment(t, "[1]", sweepModels)
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(e.Out, harness.ResultsFileName))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	sweeps := raw["lr_sweeps"].([]any)
	sw := sweeps[0].(map[string]any)
	sw["chosen_lr"] = 3e38
	dup := map[string]any{}
	for k, v := range sw {
		dup[k] = v
	}
	dup["trials"] = []any{map[string]any{"lr": 0.1, "valid_loss": 1}, map[string]any{"lr": 0.1, "valid_loss": 2}}
	diverged := map[string]any{"task": "t", "model": "m", "trials": []any{map[string]any{"lr": 0.1, "valid_loss": "NaN"}}, "chosen_lr": 0.1, "config": map[string]any{}}
	raw["lr_sweeps"] = append(sweeps, dup, map[string]any{"model": "m", "trials": []any{}, "config": map[string]any{}}, diverged)
	b, _ = json.Marshal(raw)
	_, err = harness.ParseResults("r.json", b)
	want := strings.Join([]string{
		`r.json: lr_sweeps[0]: chosen_lr is 3e+38, not 0.3, the rate of the lowest validation loss`,
		`r.json: lr_sweeps[1]: duplicate of lr_sweeps[0] (lr sweep of fake-lm on fake/count)`,
		`r.json: lr_sweeps[1]: trials[1]: lr 0.1 is also trials[0]'s`,
		`r.json: lr_sweeps[2]: task is missing`,
		`r.json: lr_sweeps[3]: chosen_lr is 0.1, but every trial diverged`,
	}, "\n")
	if err == nil || !strings.Contains(err.Error(), "lr_sweeps[0]: chosen_lr is 3e+38") {
		t.Fatalf("err = %v", err)
	}
	// The chosen rate of this sweep is 0.3 or 0.003; put the right one in
	// the expectation.
	want = strings.Replace(want, "not 0.3,", "not "+chosenOf(t, e.Out)+",", 1)
	if err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func chosenOf(t *testing.T, dir string) string {
	t.Helper()
	rf, err := harness.LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rf.LRSweeps[0].Chosen)
	return string(b)
}

// watchLog is a log that calls do once a line holding on is written.
type watchLog struct {
	bytes.Buffer
	on string
	do func()
}

func (w *watchLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.on)) {
		w.do()
	}
	return w.Buffer.Write(p)
}

// sameJSONOf reports whether a and b encode to the same JSON.
func sameJSONOf(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func TestLRSweepAtEdge(t *testing.T) {
	trials := func(losses ...float64) []harness.LRTrial {
		var out []harness.LRTrial
		for i, l := range losses {
			out = append(out, harness.LRTrial{LR: []float64{0.01, 0.001, 0.1}[i], ValidLoss: harness.Number(l)})
		}
		return out
	}
	for _, c := range []struct {
		rec  harness.LRSweepRecord
		want string
	}{
		{harness.LRSweepRecord{Trials: trials(2, 1, 3), Chosen: 0.001}, "smallest"},
		{harness.LRSweepRecord{Trials: trials(2, 3, 1), Chosen: 0.1}, "largest"},
		{harness.LRSweepRecord{Trials: trials(1, 2, 3), Chosen: 0.01}, ""},
		{harness.LRSweepRecord{Trials: trials(1), Chosen: 0.01}, ""},
		{harness.LRSweepRecord{Trials: trials(math.NaN(), math.NaN()), Chosen: 0}, ""},
	} {
		if got := c.rec.AtEdge(); got != c.want {
			t.Errorf("chosen %v of %+v: %q, want %q", c.rec.Chosen, c.rec.Trials, got, c.want)
		}
	}
}
