package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/internal/slurm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fakeSlurmConfig writes an experiment of the fake models (6 runs: 2
// models × 3 seeds, unless seeds say otherwise) with output out, and
// returns its path.
func fakeSlurmConfig(t *testing.T, dir, out, models, seeds string) string {
	t.Helper()
	cfg := fmt.Sprintf(`name: fakesweep
backend: fake
seeds: [%s]
out: %s
train: {steps: 2, batch: 4, lr: 0.05}
tasks:
  - name: fake/count
    config: {seq_len: 6, length: 300}
models:
%s`, seeds, out, models)
	path := filepath.Join(dir, "sweep.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const fakeModels = "  - name: fake-lm\n  - name: fake-uniform\n"

// fakeCluster makes the sweep's binary a fixed path and the cluster's
// MaxArraySize max, for the length of the test.
func fakeCluster(t *testing.T, max int) {
	t.Helper()
	oldExe, oldMax := executable, maxArraySize
	executable = func() (string, error) { return "/opt/arbench/bin/arbench", nil }
	maxArraySize = func(context.Context) (int, error) { return max, nil }
	t.Cleanup(func() { executable, maxArraySize = oldExe, oldMax })
}

// Every mistake of the flags is a usage error naming its flag, reported
// before anything is read or written.
func TestSlurmFlagErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := fakeSlurmConfig(t, dir, out, fakeModels, "1, 2, 3")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-time", "1h", "-mem", "4GB", "-partition", "a b", "-parallel", "-1", "-cpus-per-task", "-2", "-poll", "1ms", "-shards", "0"},
			[]string{`-time: "1h" is not a Slurm time limit`, `-mem: "4GB" is not a memory size`, `-partition: "a b" is not a partition name`,
				"-parallel: must be at least 0", "-cpus-per-task: must be at least 0", "-poll: must be between 100ms and 1h", "-shards: must be in 1.."}},
		{[]string{"-follow", "-resubmit", "-dry-run", "-parallel", "2", "-mem", "1G"},
			[]string{"-follow submits nothing: drop -resubmit", "drop -dry-run", "-parallel applies to a submission", "-mem applies to a submission"}},
		{[]string{"-load-weights", filepath.Join(dir, "nowhere")}, []string{"-load-weights: ", "nowhere"}},
	} {
		_, _, err := arbench(t, append([]string{"slurm", "-config", cfg, "-dry-run"}, tc.args...)...)
		if err == nil || exitCode(err) != exitUsage {
			t.Errorf("%v: err = %v (exit %d), want a usage error", tc.args, err, exitCode(err))
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error lacks %q:\n%v", tc.args, w, err)
			}
		}
	}
	_, stderr, err := arbench(t, "slurm", "-config", cfg, "-dry-run", "-sbatch", "-A proj")
	if exitCode(err) != exitUsage || !strings.Contains(stderr, `invalid value "-A proj" for flag -sbatch`) {
		t.Errorf("-sbatch '-A proj': err = %v, stderr:\n%s", err, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dry-run", "-config", filepath.Join(dir, "missing.yaml")}, "missing.yaml"},
		{[]string{"-dry-run", "-config", cfg, "-shards", "7"}, "-shards 7: 7 shards for 6 run(s) would leave shards without work; use at most 6"},
		{[]string{"-follow", "-config", cfg}, "-follow: no submission recorded in " + filepath.Join(out, "slurm", SubmissionsFileName)},
		{[]string{"-resubmit", "-dry-run", "-config", cfg}, "-resubmit: no submission recorded in " + filepath.Join(out, "slurm", SubmissionsFileName) + ": give -shards N"},
		{[]string{"-dry-run", "-config", cfg, "-model", "nosuch"}, `-model: "nosuch" is not a model of`},
	} {
		if _, _, err := arbench(t, append([]string{"slurm"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if _, _, err := arbench(t, "slurm", "-config", cfg); err == nil || !strings.Contains(err.Error(), "slurm: sbatch is not installed here") || !strings.Contains(err.Error(), "-dry-run") {
		t.Errorf("without sbatch: err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused arbench slurm created %s: %v", out, err)
	}
}

// sanitize replaces the test's directories in out with fixed names.
func sanitize(t *testing.T, out string, dirs map[string]string) string {
	t.Helper()
	keys := slices.Collect(func(yield func(string) bool) {
		for k := range dirs {
			if !yield(k) {
				return
			}
		}
	})
	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) }) // longest first
	for _, k := range keys {
		out = strings.ReplaceAll(out, k, dirs[k])
	}
	return out
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/arbench -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs (rewrite with -update and review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// -dry-run prints the script(s) it would submit, each array task running
// this binary's `run` of its shard with the experiment flags, and writes
// nothing; on a cluster with a small MaxArraySize the array is split into
// chained submissions.
func TestSlurmDryRunGolden(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := fakeSlurmConfig(t, dir, out, fakeModels, "1, 2, 3")
	weights := filepath.Join(dir, "weights dir")
	if err := os.Mkdir(weights, 0o755); err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"slurm", "-dry-run", "-config", cfg, "-shards", "3", "-parallel", "2", "-partition", "debug", "-time", "30",
		"-cpus-per-task", "2", "-mem", "1G", "-sbatch", "--account=proj", "-steps", "3", "-load-weights", weights}
	for _, tc := range []struct {
		name       string
		max        int
		wantStderr string
	}{
		{"slurm-dry-run.sbatch", 1001, "dry run: shard(s) 0-2 of 3 (6 run(s)) in 1 submission(s); nothing submitted or written"},
		{"slurm-dry-run-split.sbatch", 2, "dry run: shard(s) 0-2 of 3 (6 run(s)) in 2 submission(s)"},
	} {
		fakeCluster(t, tc.max)
		stdout, stderr, err := arbench(t, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if !strings.Contains(stderr, tc.wantStderr) {
			t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr)
		}
		golden(t, tc.name, sanitize(t, stdout, map[string]string{dir: "$TMP", cwd: "$CWD"}))
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("-dry-run created %s: %v", out, err)
	}
}

// -resubmit picks the shards whose results are not complete: those with
// a failed run, those with no results, never the complete ones; -dry-run
// shows the sparse array it would submit.
func TestSlurmResubmitSelection(t *testing.T) {
	fakeCluster(t, 1001)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	models := "  - name: fake-lm\n  - name: fake-fragile\n    config: {fail_setup: true}\n"
	cfg := fakeSlurmConfig(t, dir, out, models, "1, 2, 3, 4")
	const n = 4
	e, err := harness.LoadExperiment(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := harness.PlanRuns(context.Background(), e, n)
	if err != nil {
		t.Fatal(err)
	}
	// Shards 0..2 run (those with a fake-fragile run fail it); shard 3
	// never runs.
	want := []int{}
	for i := range n {
		fragile := slices.ContainsFunc(plan, func(r harness.PlannedRun) bool { return r.Shard == i && r.Key.Model == "fake-fragile" })
		if i == n-1 || fragile {
			want = append(want, i)
		}
		if i < n-1 {
			arbench(t, "run", "-quiet", "-config", cfg, "-shard", fmt.Sprintf("%d/%d", i, n))
		}
	}
	if len(want) == n || len(want) < 2 {
		t.Fatalf("the test needs complete and incomplete shards; it has incomplete %v", want)
	}

	f := newSlurmFlags(os.Stderr)
	if err := f.fs.Parse([]string{"-config", cfg, "-shards", fmt.Sprint(n), "-resubmit"}); err != nil || f.check() != nil {
		t.Fatal(err)
	}
	s, err := newSweep(context.Background(), f, os.Stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.readResults(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	states := s.shardStates(m)
	if got := incompleteShards(states); !slices.Equal(got, want) {
		t.Errorf("incomplete shards %v, want %v", got, want)
	}
	if p := states[n-1]; p.State() != harness.ShardNoResults || p.Missing != p.Runs {
		t.Errorf("the shard never run: %+v (%s)", p, p.State())
	}
	for _, i := range want[:len(want)-1] {
		if st := states[i].State(); st != harness.ShardFailed && st != harness.ShardNoResults {
			t.Errorf("shard %d with a failing run: %s", i, st)
		}
	}

	stdout, stderr, err := arbench(t, "slurm", "-dry-run", "-resubmit", "-config", cfg, "-shards", fmt.Sprint(n), "-parallel", "3")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	sc := slurm.Script{Tasks: want, Offset: want[0], Parallel: 3}
	if line := "#SBATCH --array=" + sc.ArraySpec() + "\n"; !strings.Contains(stdout, line) || !strings.Contains(stdout, fmt.Sprintf("SLURM_ARRAY_TASK_ID + %d", want[0])) {
		t.Errorf("dry run of -resubmit lacks %q:\n%s", line, stdout)
	}
	if !strings.Contains(stderr, "shard(s) "+compressInts(want)+" of 4") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

// A submission is refused before anything is submitted when OUT holds the
// results of a run (the final merge would not replace them), or shards of
// another configuration of the experiment.
func TestSlurmRefusesWhatTheMergeWould(t *testing.T) {
	fakeCluster(t, 1001)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := fakeSlurmConfig(t, dir, out, fakeModels, "1, 2, 3")
	if _, stderr, err := arbench(t, "run", "-quiet", "-config", cfg, "-shard", "0/3", "-steps", "1"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	_, _, err := arbench(t, "slurm", "-dry-run", "-config", cfg, "-shards", "3")
	if err == nil || !strings.Contains(err.Error(), "holds shards of another configuration of fakesweep") {
		t.Errorf("shards of -steps 1: err = %v", err)
	}
	if _, _, err := arbench(t, "slurm", "-dry-run", "-config", cfg, "-shards", "3", "-steps", "1"); err != nil {
		t.Errorf("the same configuration: %v", err)
	}
	if _, stderr, err := arbench(t, "run", "-quiet", "-config", cfg); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	_, _, err = arbench(t, "slurm", "-dry-run", "-config", cfg, "-shards", "3", "-steps", "1")
	if err == nil || !strings.Contains(err.Error(), "which holds the results of a run") {
		t.Errorf("OUT holding a run's results: err = %v", err)
	}
}

// A shard's phase: its results decide whether it is done; otherwise
// Slurm's state of its task whether it is pending or running; a shard
// neither done nor still to run has failed.
func TestSlurmShardPhase(t *testing.T) {
	complete := harness.ShardProgress{Runs: 2, Done: 2}
	partial := harness.ShardProgress{Runs: 2, Done: 1, Missing: 1}
	locked := harness.ShardProgress{Runs: 2, Missing: 2, Running: "pid 1"}
	for _, tc := range []struct {
		p      harness.ShardProgress
		st     slurm.State
		active bool
		want   string
	}{
		{complete, slurm.Running, true, phaseDone},
		{complete, slurm.Failed, false, phaseDone},
		{partial, slurm.Pending, true, phasePending},
		{partial, slurm.Requeued, true, phasePending},
		{partial, slurm.Running, true, phaseRunning},
		{partial, slurm.Completing, true, phaseRunning},
		{locked, "", false, phaseRunning},
		{partial, slurm.Completed, false, phaseFailed},
		{partial, "", false, phaseFailed},
	} {
		if got := shardPhase(tc.p, tc.st, tc.active); got != tc.want {
			t.Errorf("%+v, %s, active %v: %s, want %s", tc.p, tc.st, tc.active, got, tc.want)
		}
	}
	p := progress{phases: []string{phaseDone, phaseDone, phaseRunning, phasePending}, done: 4, total: 8}
	if got, want := p.line(), "shards: 2 done, 1 running, 0 failed, 1 pending; runs 4/8"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}

// The record of submissions round-trips, and -follow reads it: the shard
// count is the submission's; a damaged record is refused naming the file.
// Following with a cancelled context stops at once, telling how to follow
// again.
func TestSlurmSubmissionsRecord(t *testing.T) {
	fakeCluster(t, 1001)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := fakeSlurmConfig(t, dir, out, fakeModels, "1, 2, 3")
	f := newSlurmFlags(os.Stderr)
	if err := f.fs.Parse([]string{"-config", cfg, "-shards", "3"}); err != nil || f.check() != nil {
		t.Fatal(err)
	}
	s, err := newSweep(context.Background(), f, os.Stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmpl, err := s.template()
	if err != nil {
		t.Fatal(err)
	}
	parts, err := slurm.Plan(tmpl, []int{0, 1, 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s.record([]slurm.Submission{{JobID: "41", Script: parts[0]}, {JobID: "42", Script: parts[1]}}, []int{0, 1, 2}, false)
	if err != nil {
		t.Fatal(err)
	}
	back, err := loadSubmissions(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Submissions) != 1 || back.last().Shards != 3 || len(back.last().Jobs) != 2 || back.last().Jobs[1].Offset != 2 ||
		back.last().Jobs[1].Array != "0" || !slices.Equal(back.last().Tasks, []int{0, 1, 2}) || back.last().Command != rec.Command {
		t.Errorf("record read back: %+v", back.last())
	}
	for _, j := range rec.Jobs {
		b, err := os.ReadFile(j.Script)
		if err != nil || !strings.Contains(string(b), "#SBATCH --array="+j.Array) {
			t.Errorf("script %s: %v\n%s", j.Script, err, b)
		}
	}

	_, _, err = arbench(t, "slurm", "-follow", "-config", cfg, "-shards", "2")
	if err == nil || !strings.Contains(err.Error(), "has 3 shards, not 2") {
		t.Errorf("-follow -shards 2: err = %v", err)
	}
	fl := newSweepFor(t, cfg, "-follow")
	if fl.shards != 3 {
		t.Errorf("-follow: %d shards, want the submission's 3", fl.shards)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = fl.followAndFinish(ctx, fl.rec.last())
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "job(s) 41,42 keep running") ||
		!strings.Contains(err.Error(), "arbench slurm -follow -config "+cfg) {
		t.Errorf("cancelled follow: %v", err)
	}

	if err := os.WriteFile(back.path, []byte(`{"submissions": [{"shards": 0, "jobs": []}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSubmissions(s.dir); err == nil || !strings.Contains(err.Error(), back.path+": submissions[0]: shards: 0 is not a shard count") {
		t.Errorf("damaged record: %v", err)
	}
}

// newSweepFor is the sweep of arbench slurm with these flags.
func newSweepFor(t *testing.T, cfg string, args ...string) *sweep {
	t.Helper()
	f := newSlurmFlags(os.Stderr)
	if err := f.fs.Parse(append([]string{"-config", cfg, "-poll", "100ms"}, args...)); err != nil || f.check() != nil {
		t.Fatal(err)
	}
	s, err := newSweep(context.Background(), f, os.Stdout, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
