package slurm

// Integration tests: against the real Slurm that `sinfo` reaches (the
// single-node cluster of `make slurm-up`, or a real cluster's login node).
// They skip when sinfo fails, unless ARBENCH_REQUIRE_SLURM=1 (`make
// test-slurm`, CI), which makes that a failure.
//
// The jobs write into a temporary directory; on a multi-node cluster set
// ARBENCH_SLURM_TESTDIR to a directory the nodes share (and
// ARBENCH_SLURM_PARTITION to a partition to use, else the default).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"arbench/internal/slurm/slurmtest"
)

// testDir is where the test's jobs write: under ARBENCH_SLURM_TESTDIR when
// set (a shared filesystem), else a temporary directory. The name has a
// space so that quoting is tested against the real sbatch.
func testDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("ARBENCH_SLURM_TESTDIR")
	if base == "" {
		base = t.TempDir()
	} else {
		var err error
		if base, err = os.MkdirTemp(base, "arbench-slurm-test-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
	}
	dir := filepath.Join(base, "run dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testScript is a small, short job array writing into dir.
func testScript(t *testing.T, name, dir, command string) Script {
	return Script{
		JobName:   "arbench-test-" + name,
		Partition: os.Getenv("ARBENCH_SLURM_PARTITION"),
		Time:      "5",
		Mem:       "64M",
		Output:    filepath.Join(dir, "slurm-%A_%a.out"),
		LogDir:    filepath.Join(dir, "logs"),
		Command:   command,
	}
}

// submit submits scripts (chained) and cancels the jobs when the test ends,
// whatever their state.
func submit(t *testing.T, ctx context.Context, scripts []Script) []Submission {
	t.Helper()
	subs, err := SubmitAll(ctx, scripts, true)
	t.Cleanup(func() {
		var ids []string
		for _, s := range subs {
			ids = append(ids, s.JobID)
		}
		if err := Cancel(context.Background(), ids...); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

// wait polls Queue until until is true of the states of subs's tasks, by
// task index (or squeue has forgotten all of them), and returns those
// states. It fails the test after timeout, listing the states.
func wait(t *testing.T, ctx context.Context, subs []Submission, timeout time.Duration, until func(map[int]State) bool) map[int]State {
	t.Helper()
	var ids []string
	byJob := map[string]Submission{}
	for _, s := range subs {
		ids = append(ids, s.JobID)
		byJob[s.JobID] = s
	}
	deadline := time.Now().Add(timeout)
	var states map[int]State
	for {
		tasks, err := Queue(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		states = map[int]State{}
		for _, x := range tasks {
			sub, ok := byJob[x.ArrayJobID]
			if !ok {
				t.Fatalf("Queue(%v) returned a task of job %s", ids, x.ArrayJobID)
			}
			states[sub.Task(x.ArrayTaskID)] = x.State
		}
		if len(tasks) == 0 || until(states) {
			return states
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs %v not done within %v; task states %v", ids, timeout, states)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// allFinished is true once every one of n tasks has a final state.
func allFinished(n int) func(map[int]State) bool {
	return func(states map[int]State) bool {
		for i := range n {
			if !states[i].Finished() {
				return false
			}
		}
		return true
	}
}

// dumpOnFailure logs every file under dir when the test fails: Slurm's
// output files and the tasks' logs say why a task failed.
func dumpOnFailure(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				t.Logf("--- %s\n%s", p, b)
			}
			return nil
		})
	})
}

func TestIntegrationMaxArraySize(t *testing.T) {
	slurmtest.Need(t, Ping)
	n, err := MaxArraySize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Fatalf("MaxArraySize = %d: this cluster has no job arrays", n)
	}
	t.Logf("MaxArraySize = %d", n)
}

// A job array of three tasks, at most two at once, each writing a file
// named by its task index; wait until all are done; check the files, the
// logs and what Queue and Accounting say.
func TestIntegrationArray(t *testing.T) {
	slurmtest.Need(t, Ping)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := testDir(t)
	dumpOnFailure(t, dir)
	max, err := MaxArraySize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := testScript(t, "array", dir, `echo "task $ARBENCH_TASK_ID" > `+Quote(dir)+`/out-"$ARBENCH_TASK_ID".txt`)
	s.Parallel = 2
	parts, err := Plan(s, Range(3), max)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 {
		t.Fatalf("3 tasks with MaxArraySize %d: %d submissions, want 1", max, len(parts))
	}
	subs := submit(t, ctx, parts)
	states := wait(t, ctx, subs, 2*time.Minute, allFinished(3))
	for i := range 3 {
		if st, ok := states[i]; ok && st != Completed {
			t.Errorf("task %d: %s, want COMPLETED", i, st)
		}
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out-%d.txt", i)))
		if err != nil || string(b) != fmt.Sprintf("task %d\n", i) {
			t.Errorf("task %d wrote %q, %v", i, b, err)
		}
		log, err := os.ReadFile(filepath.Join(dir, "logs", fmt.Sprintf("task-%d.log", i)))
		if want := fmt.Sprintf("arbench-slurm: task %d: job %s_%d on ", i, subs[0].JobID, i); err != nil || !strings.Contains(string(log), want) {
			t.Errorf("logs/task-%d.log = %q, %v; want a line %q", i, log, err, want)
		}
	}

	recs, err := Accounting(ctx, []string{subs[0].JobID})
	switch {
	case errors.Is(err, ErrNoAccounting):
		t.Logf("as expected without accounting: %v", err)
	case err != nil:
		t.Fatal(err)
	default:
		var done int
		for _, r := range recs {
			if r.ArrayJobID == subs[0].JobID && r.State == Completed && r.ExitCode == 0 {
				done++
			}
		}
		if done != 3 {
			t.Errorf("sacct: %d completed tasks, want 3: %+v", done, recs)
		}
	}
}

// Five tasks on a pretend MaxArraySize of 2: three chained submissions with
// offsets 0, 2 and 4, at most one task at a time over the whole sweep. Each
// task records when it ran; the intervals must not overlap, and every task
// index must have run exactly once.
func TestIntegrationSplitArray(t *testing.T) {
	slurmtest.Need(t, Ping)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := testDir(t)
	dumpOnFailure(t, dir)
	s := testScript(t, "split", dir, `out=`+Quote(dir)+`/out-"$ARBENCH_TASK_ID".txt
test ! -e "$out"   # each task index runs once
start=$(date +%s.%N); sleep 0.5; end=$(date +%s.%N)
echo "$start $end $SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID" > "$out"`)
	s.Parallel = 1
	parts, err := Plan(s, Range(5), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 || parts[2].Offset != 4 {
		t.Fatalf("Plan: %d parts, want 3 with the last at offset 4", len(parts))
	}
	subs := submit(t, ctx, parts)
	states := wait(t, ctx, subs, 2*time.Minute, allFinished(5))
	type span struct{ start, end float64 }
	var spans []span
	for i := range 5 {
		if st, ok := states[i]; ok && st != Completed {
			t.Errorf("task %d: %s, want COMPLETED", i, st)
		}
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out-%d.txt", i)))
		if err != nil {
			t.Errorf("task %d: %v", i, err)
			continue
		}
		f := strings.Fields(string(b))
		sub := subs[i/2]
		if len(f) != 4 || f[2] != sub.JobID || f[3] != strconv.Itoa(i-sub.Script.Offset) {
			t.Errorf("task %d ran as %q, want job %s array index %d", i, b, sub.JobID, i-sub.Script.Offset)
			continue
		}
		a, _ := strconv.ParseFloat(f[0], 64)
		e, _ := strconv.ParseFloat(f[1], 64)
		spans = append(spans, span{a, e})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			t.Errorf("tasks ran at the same time (%v and %v) despite Parallel 1 and chained submissions", spans[i-1], spans[i])
		}
	}
}

// A failing task is FAILED in Queue while its neighbour still runs; Cancel
// then ends the neighbour (CANCELLED).
func TestIntegrationFailAndCancel(t *testing.T) {
	slurmtest.Need(t, Ping)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := testDir(t)
	dumpOnFailure(t, dir)
	s := testScript(t, "fail", dir, `if [ "$ARBENCH_TASK_ID" = 1 ]; then echo failing >&2; exit 3; fi
exec sleep 300`)
	s.Tasks = Range(2)
	subs := submit(t, ctx, []Script{s})
	states := wait(t, ctx, subs, 2*time.Minute, func(st map[int]State) bool {
		return st[1].Finished() && (st[0] == Running || st[0].Finished())
	})
	if states[0] != Running || states[1] != Failed {
		t.Fatalf("states %v, want task 0 RUNNING and task 1 FAILED", states)
	}
	if err := Cancel(ctx, subs[0].JobID); err != nil {
		t.Fatal(err)
	}
	states = wait(t, ctx, subs, time.Minute, allFinished(2))
	if states[0] != Cancelled || states[1] != Failed {
		t.Errorf("after Cancel: %v, want task 0 CANCELLED and task 1 FAILED", states)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "logs", "task-1.log"))
	if !strings.Contains(string(log), "failing") {
		t.Errorf("logs/task-1.log = %q, want the task's stderr", log)
	}
}

// sbatch's refusal reaches the caller with its stderr.
func TestIntegrationSubmitError(t *testing.T) {
	slurmtest.Need(t, Ping)
	s := testScript(t, "bad", t.TempDir(), "true")
	s.Tasks = Range(1)
	s.Partition = "no-such-partition"
	id, err := Submit(context.Background(), s)
	var ce *CmdError
	if err == nil {
		Cancel(context.Background(), id)
		t.Fatalf("submitted to a missing partition as job %s", id)
	}
	if !errors.As(err, &ce) || !strings.Contains(strings.ToLower(ce.Stderr), "partition") {
		t.Errorf("error %v, want sbatch's stderr about the partition", err)
	}
	t.Logf("sbatch said: %v", err)
}
