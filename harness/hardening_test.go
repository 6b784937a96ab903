package harness_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
)

// hardExperiment is a one-seed experiment on the given models and tasks
// (YAML list items) writing to a fresh directory.
func hardExperiment(t *testing.T, tasks, models string) *harness.Experiment {
	t.Helper()
	out := filepath.ToSlash(filepath.Join(t.TempDir(), "out"))
	e, err := parse(t, `name: hard
backend: fake
out: `+out+`
seed: 1
train: {steps: 4, batch: 4, lr: 0.05, eval_every: 2, log_every: 2}
tasks:
`+tasks+`
models:
`+models)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const countTask = "  - name: fake/count\n    config: {seq_len: 6, length: 300}\n"

// noOutput fails when dir exists: a refused run must write nothing.
func noOutput(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s was created: %v", dir, err)
	}
}

// Case 1: a model whose Setup fails (here before allocating, as the
// transformer refusing a short context did) is closed without a panic, and
// the mismatch its EnvChecker reports is found before any work.
func TestRunSetupFailureClosesModel(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-fragile\n    config: {fail_setup: true}\n")
	before := harnesstest.FragileCloses.Load()
	_, err := harness.Run(context.Background(), e, runOpts())
	if err == nil || !strings.Contains(err.Error(), "setup fails as configured") {
		t.Fatalf("err = %v", err)
	}
	// The preflight's probe instance and the run's model are both closed.
	if n := harnesstest.FragileCloses.Load() - before; n != 2 {
		t.Errorf("Close called %d times, want 2", n)
	}
}

func TestRunEnvCheckBeforeWork(t *testing.T) {
	e := hardExperiment(t, countTask+"  - name: fake/other\n    config: {seq_len: 12, length: 300}\n",
		"  - name: fake-lm\n  - name: fake-fragile\n    config: {context: 8}\n")
	var steps int
	_, err := harness.Run(countSteps(context.Background(), &steps), e, runOpts())
	var ce harness.ConfigErrors
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "models[1]") ||
		!strings.Contains(err.Error(), "context: 8 is shorter than the task's rows of 12; set context: >= 12") {
		t.Fatalf("err = %v", err)
	}
	if steps != 0 {
		t.Errorf("%d training steps ran before the check failed", steps)
	}
	noOutput(t, e.Out)
}

// Case 6: a run whose plugin reports divergence as an error is recorded as
// diverged and the other runs go on; Run says so after the last run.
func TestRunDivergedErrorContinues(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-fragile\n    config: {diverge_at: 3}\n  - name: fake-lm\n")
	rf, err := harness.Run(context.Background(), e, runOpts())
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Diverged) != 1 || !strings.Contains(rp.Diverged[0], "fake-fragile") {
		t.Fatalf("err = %v, want one diverged run", err)
	}
	if rf == nil || len(rf.Runs) != 2 || !strings.HasPrefix(rf.Runs[0].Note, "diverged at step 3") {
		t.Fatalf("runs = %+v", rf)
	}
	var lmResults, curves int
	for _, r := range rf.Results {
		if r.Model == "fake-lm" {
			lmResults++
		}
		if r.Model == "fake-fragile" {
			t.Errorf("diverged run has result %+v", r)
		}
	}
	for _, c := range rf.Curves {
		if c.Model == "fake-fragile" && c.Name == harness.CurveTrainLoss && len(c.Steps) > 0 {
			curves++
		}
	}
	if lmResults == 0 || curves != 1 {
		t.Errorf("%d results of the other model, %d curves of the diverged one", lmResults, curves)
	}
	stored, lerr := harness.LoadResults(e.Out)
	if lerr != nil || len(stored.Runs) != 2 {
		t.Fatalf("stored: %v", lerr)
	}
}

// A Close error is reported; the run it ends is kept.
func TestRunCloseErrorReported(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-fragile\n    config: {close_error: true}\n")
	rf, err := harness.Run(context.Background(), e, runOpts())
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Problems) != 1 || !strings.Contains(rp.Problems[0], "close fails as configured") {
		t.Fatalf("err = %v", err)
	}
	if rf == nil || len(rf.Runs) != 1 || len(rf.Results) == 0 {
		t.Errorf("run not kept: %+v", rf)
	}
}

// Case 4: an output directory locked by another process is refused, naming
// the holder and the lock file, and its results are left alone.
func TestRunRefusesLockedOutput(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n")
	if err := os.MkdirAll(e.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(e.Out, harness.LockFileName)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "pid 4242 on elsewhere since 2026-01-01T00:00:00Z\n")
	_, err = harness.Run(context.Background(), e, runOpts())
	if !errors.Is(err, harness.ErrOutputInUse) || !strings.Contains(err.Error(), "pid 4242") || !strings.Contains(err.Error(), lockPath) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.Out, harness.ResultsFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("results written under another process's lock: %v", err)
	}
	// Released (as by the holder dying): the stale file is taken over.
	f.Close()
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatalf("after release: %v", err)
	}
	if _, err := os.Stat(lockPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left behind: %v", err)
	}
}

// Two runs into one directory at the same time: exactly one writes.
func TestRunConcurrentSameOutput(t *testing.T) {
	e1 := hardExperiment(t, countTask, "  - name: fake-lm\n")
	e2 := hardExperiment(t, countTask, "  - name: fake-lm\n")
	e2.Out = e1.Out
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	ctx := context.WithValue(context.Background(), harnesstest.StepHook{}, func() {
		if first {
			first = false
			close(entered)
			<-release
		}
	})
	done := make(chan error)
	go func() {
		_, err := harness.Run(ctx, e1, runOpts())
		done <- err
	}()
	<-entered
	_, err := harness.Run(context.Background(), e2, runOpts())
	close(release)
	if !errors.Is(err, harness.ErrOutputInUse) {
		t.Errorf("second run: %v, want ErrOutputInUse", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
}

// Case 5: a plain run into a directory with results is refused; -overwrite
// replaces them, -resume finishes them.
func TestRunRefusesExistingResults(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n")
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(e.Out, harness.ResultsFileName))
	if err != nil {
		t.Fatal(err)
	}
	_, err = harness.Run(context.Background(), e, runOpts())
	if err == nil || !strings.Contains(err.Error(), e.Out+" already holds results") ||
		!strings.Contains(err.Error(), "-resume") || !strings.Contains(err.Error(), "-overwrite") {
		t.Fatalf("err = %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(e.Out, harness.ResultsFileName))
	if string(after) != string(before) {
		t.Error("refused run changed results.json")
	}
	opt := runOpts()
	opt.Overwrite = true
	if _, err := harness.Run(context.Background(), e, opt); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	opt = runOpts()
	opt.Resume = true
	if _, err := harness.Run(context.Background(), e, opt); err != nil {
		t.Fatalf("resume: %v", err)
	}
	opt.Overwrite = true
	if _, err := harness.Run(context.Background(), e, opt); err == nil {
		t.Error("resume and overwrite together accepted")
	}
}

// Case 12: problems found only after earlier runs trained are all reported
// before any work: a task that cannot be prepared, an output directory
// under a file, an unwritable -save-weights.
func TestRunPreflightReportsEverything(t *testing.T) {
	e := hardExperiment(t, countTask+"  - name: fake-needy/nope\n    config: {seq_len: 6, length: 300, fail_prepare: true}\n",
		"  - name: fake-lm\n")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Out = filepath.Join(file, "out")
	opt := runOpts()
	opt.SaveWeights = filepath.Join(file, "weights")
	var steps int
	_, err := harness.Run(countSteps(context.Background(), &steps), e, opt)
	var ce harness.ConfigErrors
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want ConfigErrors", err)
	}
	for _, want := range []string{"tasks[1]", `variant "nope" has no data`, "out: ", "-save-weights", file + " is a file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if steps != 0 {
		t.Errorf("%d steps trained before the check failed", steps)
	}
}

// Case 13: a task declares what it needs and a model lacking it is refused
// up front, naming model, task and capability.
func TestRunCapabilityCheck(t *testing.T) {
	e := hardExperiment(t, "  - name: fake-needy\n    config: {seq_len: 6, length: 300, needs: [Distributioner]}\n",
		"  - name: fake-lm\n  - name: fake-uniform\n")
	_, err := harness.Run(context.Background(), e, runOpts())
	if err == nil || !strings.Contains(err.Error(), "models[1]: model fake-uniform cannot run task fake-needy: it lacks Distributioner") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "models[0]") {
		t.Errorf("fake-lm has a Distributioner: %v", err)
	}
	noOutput(t, e.Out)
}

// A trained and evaluated run is kept when saving its weights fails.
func TestRunKeepsResultsWhenSaveFails(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n")
	opt := runOpts()
	opt.SaveWeights = t.TempDir()
	// The weights file's path is taken by a non-empty directory.
	blocker := filepath.Join(opt.SaveWeights, harness.WeightsFileName("fake/count", "fake-lm", 1))
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	rf, err := harness.Run(context.Background(), e, opt)
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Problems) != 1 || !strings.Contains(rp.Problems[0], "results are kept") {
		t.Fatalf("err = %v", err)
	}
	stored, lerr := harness.LoadResults(e.Out)
	if lerr != nil || len(stored.Runs) != 1 || len(stored.Results) == 0 || !strings.Contains(stored.Runs[0].Note, "weights not saved") {
		t.Fatalf("stored %+v, %v", stored, lerr)
	}
	if rf == nil || rf.Runs[0].WeightsOut != "" {
		t.Errorf("weights recorded as saved: %+v", rf)
	}
}

// Temporary files of a killed writer are removed by the next run.
func TestRunRemovesStaleTemporaries(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n")
	if err := os.MkdirAll(e.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(e.Out, ".results.json.tmp-123456")
	stalePlot := filepath.Join(e.Out, "plots", ".loss.png.tmp-42")
	keep := filepath.Join(e.Out, ".notes.txt.tmp-1")
	if err := os.MkdirAll(filepath.Dir(stalePlot), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, stalePlot, keep} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale, stalePlot} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale temporary %s kept: %v", p, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file that is not arbench's was removed: %v", err)
	}
}

// A panic inside a plugin's check is an error, and the output directory
// is released and left as it was.
func TestRunPanicInPreflightReleasesLock(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-fragile\n    config: {panic_check: true}\n")
	_, err := harness.Run(context.Background(), e, runOpts())
	if err == nil || !strings.Contains(err.Error(), "panic: fake-fragile: CheckEnv panics as configured") {
		t.Fatalf("err = %v", err)
	}
	noOutput(t, e.Out)
	e.Models[0].Config.(*harnesstest.FragileConfig).PanicCheck = false
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

// Case 12: weights that do not fit a later model, and a truncated second
// weights file, are found before the first model trains.
func TestRunWeightsCheckedBeforeWork(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n")
	opt := runOpts()
	opt.SaveWeights = t.TempDir()
	if _, err := harness.Run(context.Background(), e, opt); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(opt.SaveWeights, harness.WeightsFileName("fake/count", "fake-lm", 1))
	dir := t.TempDir()
	b, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"first.safetensors": b, "wide.safetensors": b, "short.safetensors": b[:len(b)-3]} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e2 := hardExperiment(t, countTask, "  - name: fake-lm\n    label: first\n  - name: fake-lm\n    label: wide\n    config: {hidden: 9}\n  - name: fake-lm\n    label: short\n")
	var steps int
	_, err = harness.Run(countSteps(context.Background(), &steps), e2, harness.RunOptions{LoadWeights: dir})
	for _, want := range []string{"models[1]: -load-weights", "extra", "-load-weights: short on fake/count seed 1", "truncated"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(fmt.Sprint(err), "models[0]") {
		t.Errorf("the matching file was refused: %v", err)
	}
	if steps != 0 {
		t.Errorf("%d steps trained before the check failed", steps)
	}
	noOutput(t, e2.Out)
}

// The memory check counts training memory only for models that train.
func TestRunMemoryCheckTrainingOnlyWhenTraining(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-fragile\n    config: {training_bytes: 9223372036854775807}\n")
	_, err := harness.Run(context.Background(), e, runOpts())
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("training estimate not refused: %v", err)
	}
	e.SetTrain(func(c *harness.TrainConfig) { c.Steps = 0 })
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatalf("an evaluated-only model refused for its training memory: %v", err)
	}
}

// Finish runs while the lock is held; a report.md failure is reported
// and the experiment goes on.
func TestRunFinishUnderLockAndReportFailure(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n  - name: fake-uniform\n")
	opt := runOpts()
	opt.Report = func(io.Writer, *harness.ResultsFile) error { return errors.New("no room for the report") }
	locked := false
	opt.Finish = func(dir string, rf *harness.ResultsFile) error {
		_, err := os.Stat(filepath.Join(dir, harness.LockFileName))
		locked = err == nil && len(rf.Runs) == 2
		return nil
	}
	rf, err := harness.Run(context.Background(), e, opt)
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Problems) != 2 || !strings.Contains(rp.Problems[0], "no room for the report") {
		t.Fatalf("err = %v", err)
	}
	if rf == nil || len(rf.Runs) != 2 || !locked {
		t.Errorf("runs %v, Finish saw the lock: %v", rf, locked)
	}
}

// A run that fails (here its model's Setup) fails alone: the experiment's
// other runs finish and are recorded, the failure is reported at the end
// (RunProblems.Failed) and not recorded, so -resume runs it again, and
// only it.
func TestFailedRunDoesNotStopTheOthers(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-fragile\n    config: {fail_setup: true}\n  - name: fake-lm\n")
	rf, err := harness.Run(context.Background(), e, runOpts())
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Failed) != 1 || !strings.Contains(rp.Failed[0], "fake-fragile") || !strings.Contains(rp.Failed[0], "setup fails as configured") {
		t.Fatalf("err = %v; want fake-fragile's run listed as failed", err)
	}
	if len(rf.Runs) != 1 || rf.Runs[0].Model != "fake-lm" || rf.Manifest.Complete {
		t.Fatalf("recorded %+v (complete %v); want fake-lm's run only", rf.Runs, rf.Manifest.Complete)
	}
	opt := runOpts()
	opt.Resume = true
	rf, err = harness.Run(context.Background(), e, opt)
	if !errors.As(err, &rp) || len(rp.Failed) != 1 {
		t.Fatalf("resumed: err = %v; want the failed run tried again", err)
	}
	if len(rf.Runs) != 1 {
		t.Errorf("resumed: %d runs recorded, want fake-lm's one (not rerun)", len(rf.Runs))
	}
}
