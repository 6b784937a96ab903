package main

// The end-to-end test of `arbench slurm`, against the real Slurm that
// `sinfo` reaches (the single-node cluster of `make slurm-up`, or a
// cluster's login node). It skips when sinfo fails, unless
// ARBENCH_REQUIRE_SLURM=1 (`make test-slurm`, CI), which makes that a
// failure. On a multi-node cluster set ARBENCH_SLURM_TESTDIR to a
// directory the nodes share (and ARBENCH_SLURM_PARTITION to a partition).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"arbench/harness"
	"arbench/internal/slurm"
	"arbench/internal/slurm/slurmtest"
)

// slurmTestDir is where the test's jobs read and write: under
// ARBENCH_SLURM_TESTDIR when set (a shared filesystem), else a temporary
// directory.
func slurmTestDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("ARBENCH_SLURM_TESTDIR")
	if base == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(base, "arbench-slurm-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// buildArbench builds this command into dir: the array tasks need a real
// arbench binary, not the test binary.
func buildArbench(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "arbench")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cli runs the built binary in dir and returns its stdout, stderr and
// exit status (-1 when it could not run).
func cli(t *testing.T, ctx context.Context, bin, dir string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, stderr.String())
	}
	t.Logf("arbench %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	return stdout.String(), stderr.String(), code
}

// readSubmissions reads out's record of submissions.
func readSubmissions(t *testing.T, out string) *submissionsFile {
	t.Helper()
	rec, err := loadSubmissions(filepath.Join(out, "slurm"))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// rec0 is the job ID of out's first submission.
func rec0(t *testing.T, out string) string {
	t.Helper()
	rec := readSubmissions(t, out)
	if len(rec.Submissions) == 0 {
		t.Fatalf("no submission recorded in %s", out)
	}
	return rec.Submissions[0].Jobs[0].JobID
}

// cancelJobs cancels every job recorded under the outs when the test ends.
func cancelJobs(t *testing.T, outs ...string) {
	t.Cleanup(func() {
		var ids []string
		for _, out := range outs {
			if rec, err := loadSubmissions(filepath.Join(out, "slurm")); err == nil {
				for _, sub := range rec.allSubmissions() {
					ids = append(ids, sub.JobID)
				}
			}
		}
		if err := slurm.Cancel(context.Background(), ids...); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
}

// dumpLogs logs the tasks' logs under out when the test fails.
func dumpLogs(t *testing.T, outs ...string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, out := range outs {
			logs, _ := filepath.Glob(filepath.Join(out, "slurm", "logs", "*"))
			for _, p := range logs {
				b, _ := os.ReadFile(p)
				t.Logf("--- %s\n%s", p, b)
			}
		}
	})
}

// taskStarts counts the times a shard's array task started (its log gets
// a line per start).
func taskStarts(t *testing.T, out string, shard int) int {
	t.Helper()
	f, err := os.Open(filepath.Join(out, "slurm", "logs", "task-"+strconv.Itoa(shard)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return strings.Count(string(b), "arbench-slurm: task "+strconv.Itoa(shard)+": job ")
}

// The acceptance test of `arbench slurm`: a 6-run experiment of real
// models (rnn and lstm, 3 seeds) run as a job array of 3 shards, at most 2
// at once, followed and merged, equals the same experiment run locally,
// metric for metric. Then a sweep with bad weights for one run of shard 1
// (a truncated file, refused by that shard before any work): it exits 1
// naming shard 1 to resubmit, with the other shards merged; once the file
// is fixed, -resubmit submits shard 1 alone and the final merge equals
// the local run with the same weights.
func TestSlurmEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the Slurm end-to-end test takes about half a minute")
	}
	slurmtest.Need(t, slurm.Ping)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	base := slurmTestDir(t)
	bin := buildArbench(t, base)
	data := filepath.Join(base, "corpus.txt")
	copyFile(t, corpus(t, 6000), data)
	sweepOut, weightsOut := filepath.Join(base, "sweep"), filepath.Join(base, "sweep-weights")
	cancelJobs(t, sweepOut, weightsOut)
	dumpLogs(t, sweepOut, weightsOut)
	cfg := filepath.Join(base, "sweep.yaml")
	copyFile(t, textSweep(t, data, sweepOut), cfg)
	resources := []string{"-shards", "3", "-parallel", "2", "-mem", "1G", "-time", "10", "-poll", "500ms"}
	if p := os.Getenv("ARBENCH_SLURM_PARTITION"); p != "" {
		resources = append(resources, "-partition", p)
	}

	// The local references, with the same binary: one run as it is (saving
	// its weights), one starting from those weights.
	single, singleW, weights := filepath.Join(base, "single"), filepath.Join(base, "single-weights"), filepath.Join(base, "weights")
	if _, _, code := cli(t, ctx, bin, base, "run", "-quiet", "-config", cfg, "-out", single, "-save-weights", weights); code != 0 {
		t.Fatal("local run failed")
	}
	if _, _, code := cli(t, ctx, bin, base, "run", "-quiet", "-config", cfg, "-out", singleW, "-load-weights", weights); code != 0 {
		t.Fatal("local run with weights failed")
	}

	start := time.Now()
	stdout, stderr, code := cli(t, ctx, bin, base, append([]string{"slurm", "-config", cfg}, resources...)...)
	if code != 0 || !strings.Contains(stderr, "shards: 3 done, 0 running, 0 failed, 0 pending; runs 6/6") ||
		!strings.Contains(stderr, "merged 6 run(s) of sweep into "+sweepOut+": complete") || !strings.Contains(stdout, "6 of 6 run(s) done") {
		t.Fatalf("arbench slurm: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("sweep of 3 shards: %v", time.Since(start))
	if _, err := slurm.Accounting(ctx, []string{rec0(t, sweepOut)}); errors.Is(err, slurm.ErrNoAccounting) && !strings.Contains(stderr, "sacct: this cluster keeps no job accounting") {
		t.Errorf("the cluster has no accounting, and arbench slurm did not say so:\n%s", stderr)
	}
	sameMetrics(t, single, sweepOut)
	rec := readSubmissions(t, sweepOut)
	if len(rec.Submissions) != 1 || !slices.Equal(rec.last().Tasks, []int{0, 1, 2}) || len(rec.last().Jobs) != 1 || rec.last().Jobs[0].Array != "0-2%2" {
		t.Errorf("submissions: %+v", rec.Submissions)
	}

	// Shard 1 of the second sweep loads a truncated weights file.
	e, err := harness.LoadExperiment(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := harness.PlanRuns(ctx, e, 3)
	if err != nil {
		t.Fatal(err)
	}
	bad := plan[slices.IndexFunc(plan, func(r harness.PlannedRun) bool { return r.Shard == 1 })]
	badWeights := filepath.Join(base, "weights-bad")
	if err := os.Mkdir(badWeights, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(weights, "*.safetensors"))
	for _, f := range files {
		copyFile(t, f, filepath.Join(badWeights, filepath.Base(f)))
	}
	badFile := filepath.Join(badWeights, harness.WeightsFileName(bad.Key.Task, bad.Key.Model, bad.Key.Seed))
	if err := os.Truncate(badFile, 10); err != nil {
		t.Fatal(err)
	}
	withWeights := append([]string{"-config", cfg, "-out", weightsOut, "-load-weights", badWeights}, resources...)
	stdout, stderr, code = cli(t, ctx, bin, base, append([]string{"slurm"}, withWeights...)...)
	for _, want := range []string{"shards: 2 done, 0 running, 1 failed, 0 pending; runs 4/6", "shard 1/3: no results, 0 of 2 run(s) done, 0 failed, 2 missing; Slurm: task",
		"in shard(s) 1 of 3", "resubmit them with: arbench slurm -resubmit", filepath.Base(badFile)} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the sweep with a bad weights file: stderr lacks %q", want)
		}
	}
	if code != 1 || !strings.Contains(stdout, "4 of 6 run(s) done (0 diverged), 0 failed, 2 missing") {
		t.Fatalf("the sweep with a bad weights file: exit %d, want 1\n%s", code, stdout)
	}
	if rf, err := harness.LoadResults(weightsOut); err != nil || rf.Manifest.Complete || len(rf.Runs) != 4 {
		t.Errorf("the incomplete merge: %v", err)
	}

	copyFile(t, filepath.Join(weights, filepath.Base(badFile)), badFile)
	stdout, stderr, code = cli(t, ctx, bin, base, append([]string{"slurm", "-resubmit"}, withWeights...)...)
	if code != 0 || !strings.Contains(stderr, "submitted shard(s) 1 of 3") || !strings.Contains(stderr, "merged 6 run(s) of sweep into "+weightsOut+": complete") {
		t.Fatalf("-resubmit: exit %d\n%s\n%s", code, stdout, stderr)
	}
	rec = readSubmissions(t, weightsOut)
	if len(rec.Submissions) != 2 {
		t.Fatalf("%d submissions recorded, want 2", len(rec.Submissions))
	}
	first, again := rec.Submissions[0], rec.Submissions[1]
	if !again.Resubmit || !slices.Equal(again.Tasks, []int{1}) || len(again.Jobs) != 1 || !slices.Equal(again.Jobs[0].Tasks, []int{1}) ||
		again.Jobs[0].JobID == first.Jobs[0].JobID {
		t.Errorf("the resubmission: %+v (first: %+v)", again, first)
	}
	for shard, want := range []int{1, 2, 1} {
		if got := taskStarts(t, weightsOut, shard); got != want {
			t.Errorf("shard %d's array task started %d times, want %d", shard, got, want)
		}
	}
	sameMetrics(t, singleW, weightsOut)
}
