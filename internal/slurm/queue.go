package slurm

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// State is a job's or array task's state as squeue and sacct print it in
// full ("PENDING", "RUNNING", "COMPLETED", ...). sacct's "CANCELLED by 0"
// is read as Cancelled.
type State string

// The states of squeue(1) "JOB STATE CODES" that matter to a sweep; any
// other (CONFIGURING, RESV_DEL_HOLD, ...) is kept as printed.
const (
	Pending     State = "PENDING"
	Running     State = "RUNNING"
	Suspended   State = "SUSPENDED"
	Completing  State = "COMPLETING"
	Completed   State = "COMPLETED"
	Failed      State = "FAILED"
	Cancelled   State = "CANCELLED"
	Timeout     State = "TIMEOUT"
	NodeFail    State = "NODE_FAIL"
	OutOfMemory State = "OUT_OF_MEMORY"
	Preempted   State = "PREEMPTED"
	BootFail    State = "BOOT_FAIL"
	Deadline    State = "DEADLINE"
	Revoked     State = "REVOKED"
	SpecialExit State = "SPECIAL_EXIT"
	Requeued    State = "REQUEUED"
)

// Finished reports whether the state is final: the task will not run (any
// more) unless resubmitted. COMPLETING is not final: the task's processes
// may still be writing.
func (s State) Finished() bool {
	switch s {
	case Completed, Failed, Cancelled, Timeout, NodeFail, OutOfMemory, Preempted,
		BootFail, Deadline, Revoked, SpecialExit:
		return true
	}
	return false
}

// Succeeded reports whether the task ended with exit status 0. Whether it
// produced its results is for its results directory to say.
func (s State) Succeeded() bool { return s == Completed }

// Task is one array task (or plain job) in squeue.
type Task struct {
	// JobID as squeue prints it: "123_4" for an array task, "123" otherwise.
	JobID string
	// ArrayJobID is the array's job ID (what Submit returned); a plain job's
	// own ID.
	ArrayJobID string
	// ArrayTaskID is the array index (Submission.Task turns it into the
	// task index), -1 for a job that is not an array task.
	ArrayTaskID int
	State       State
	// Reason is why it is pending or why it ended ("Resources",
	// "JobArrayTaskLimit", "Dependency", "NonZeroExitCode"; "None" if none).
	Reason string
	// Nodes it runs or ran on; empty while pending.
	Nodes string
	// Elapsed is the time it has run.
	Elapsed time.Duration
}

// squeueFormat is what Queue asks squeue for, one line per task; the
// reason comes last since it is free text.
const squeueFormat = "%i|%F|%K|%T|%M|%N|%r"

// Queue returns the tasks of the given jobs (array job IDs from Submit, or
// single tasks as "123_4") that squeue still knows, one per array task,
// pending tasks included, ordered by job and task. Finished tasks stay in
// squeue for MinJobAge (300 s by default) only; a task absent from the
// answer has ended long enough ago (or never existed), and its results
// directory says how it ended. Asking about no jobs returns none.
func Queue(ctx context.Context, jobIDs []string) ([]Task, error) {
	if len(jobIDs) == 0 {
		return nil, nil
	}
	for _, id := range jobIDs {
		if !jobIDRE.MatchString(id) {
			return nil, fmt.Errorf("slurm: queue: %q is not a job ID", id)
		}
	}
	out, err := runner(ctx, nil, "squeue", "--noheader", "--array", "--states=all",
		"--jobs="+strings.Join(jobIDs, ","), "--format="+squeueFormat)
	if err != nil {
		// Asked about a single job that squeue no longer (or never) knew,
		// squeue fails; asked about several, it prints those it knows.
		if ce, ok := err.(*CmdError); ok && strings.Contains(ce.Stderr, "Invalid job id specified") {
			return nil, nil
		}
		return nil, err
	}
	return parseSqueue(out)
}

func parseSqueue(out []byte) ([]Task, error) {
	var tasks []Task
	for n, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, "|", 7)
		if len(f) != 7 {
			return nil, fmt.Errorf("slurm: squeue line %d: %q has %d fields, want 7 (%s)", n+1, line, len(f), squeueFormat)
		}
		t := Task{JobID: f[0], ArrayJobID: f[1], State: State(f[3]), Nodes: f[5], Reason: f[6], ArrayTaskID: -1}
		if f[2] != "N/A" {
			id, err := strconv.Atoi(f[2])
			if err != nil {
				return nil, fmt.Errorf("slurm: squeue line %d: array task ID %q is not a number", n+1, f[2])
			}
			t.ArrayTaskID = id
		}
		t.Elapsed, _ = parseDuration(f[4]) // "INVALID" and the like read as 0
		tasks = append(tasks, t)
	}
	sortByJob(tasks, func(t Task) (string, int) { return t.ArrayJobID, t.ArrayTaskID })
	return tasks, nil
}

// sortByJob orders by array job ID (numerically) and then array task.
func sortByJob[T any](xs []T, key func(T) (string, int)) {
	slices.SortStableFunc(xs, func(a, b T) int {
		ja, ta := key(a)
		jb, tb := key(b)
		na, _ := strconv.Atoi(ja)
		nb, _ := strconv.Atoi(jb)
		return cmp.Or(cmp.Compare(na, nb), cmp.Compare(ja, jb), cmp.Compare(ta, tb))
	})
}

// parseDuration reads the elapsed times squeue and sacct print:
// [D-HH:]MM:SS or HH:MM:SS ("0:03", "1:02:03", "2-03:04:05"), seconds
// possibly fractional ("00:01.234", sacct's CPU times).
func parseDuration(s string) (time.Duration, error) {
	orig := s
	var days int
	d, rest, hasDays := strings.Cut(s, "-")
	if hasDays {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, fmt.Errorf("slurm: duration %q: bad days", orig)
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 || s == "" || (hasDays && len(parts) != 3) {
		return 0, fmt.Errorf("slurm: duration %q: want [D-][HH:]MM:SS", orig)
	}
	var secs float64
	for _, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("slurm: duration %q: want [D-][HH:]MM:SS", orig)
		}
		secs = secs*60 + v
	}
	return time.Duration(days)*24*time.Hour + time.Duration(secs*float64(time.Second)), nil
}
