package slurm

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNoAccounting is what Accounting reports on a cluster without job
// accounting (AccountingStorageType=accounting_storage/none, as on the
// cluster of `make slurm-up`): sacct then fails saying "Slurm accounting
// storage is disabled". Progress must then come from squeue and from the
// shards' own result files.
var ErrNoAccounting = errors.New("slurm: no accounting on this cluster")

// Record is one job allocation (an array task, a plain job, or a group of
// pending array tasks) in sacct.
type Record struct {
	// JobID as sacct prints it: "123_4", "123", or "123_[5-9%2]" for array
	// tasks that have not started yet (sacct folds those into one line).
	JobID string
	// JobIDRaw is the allocation's own job ID (an array task has its own).
	JobIDRaw string
	// ArrayJobID is the array's job ID (what Submit returned); a plain job's
	// own ID.
	ArrayJobID string
	// ArrayTaskID is the array index, -1 for a plain job and for a folded
	// line of pending tasks, whose indices are in ArrayTasks.
	ArrayTaskID int
	// ArrayTasks are the array indices a folded pending line stands for.
	ArrayTasks []int
	State      State
	// ExitCode and Signal are sacct's ExitCode "code:signal".
	ExitCode, Signal int
	Elapsed          time.Duration
	Nodes            string
	// Start and End are zero while unknown ("Unknown", "None").
	Start, End time.Time
}

// sacctFields is what Accounting asks sacct for.
const sacctFields = "JobID,JobIDRaw,State,ExitCode,Elapsed,NodeList,Start,End"

// Accounting returns sacct's records of the given jobs (array job IDs or
// "123_4"), one per allocation (--allocations: the batch steps are left
// out), ordered by job and task. On a cluster without accounting it returns
// an error that errors.Is ErrNoAccounting. sacct knows jobs long after
// squeue has forgotten them, but only where accounting is configured, and
// it is still Slurm's view: a task that exited 0 may have written no
// results.
func Accounting(ctx context.Context, jobIDs []string) ([]Record, error) {
	if len(jobIDs) == 0 {
		return nil, nil
	}
	for _, id := range jobIDs {
		if !jobIDRE.MatchString(id) {
			return nil, fmt.Errorf("slurm: accounting: %q is not a job ID", id)
		}
	}
	out, err := runner(ctx, nil, "sacct", "--noheader", "--parsable2", "--allocations",
		"--jobs="+strings.Join(jobIDs, ","), "--format="+sacctFields)
	if err != nil {
		if noAccounting(err) {
			return nil, fmt.Errorf("%w: %w", ErrNoAccounting, err)
		}
		return nil, err
	}
	return parseSacct(out, time.Local)
}

// noAccounting reports whether a failed sacct says accounting is off.
// Slurm 22.05 and later print "Slurm accounting storage is disabled" (on
// stderr, exit status 1).
func noAccounting(err error) bool {
	var ce *CmdError
	return errors.As(err, &ce) && strings.Contains(strings.ToLower(ce.Stderr), "accounting storage is disabled")
}

func parseSacct(out []byte, loc *time.Location) ([]Record, error) {
	var recs []Record
	want := strings.Count(sacctFields, ",") + 1
	for n, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != want {
			return nil, fmt.Errorf("slurm: sacct line %d: %q has %d fields, want %d (%s)", n+1, line, len(f), want, sacctFields)
		}
		r := Record{JobID: f[0], JobIDRaw: f[1], ArrayJobID: f[0], ArrayTaskID: -1, Nodes: f[5]}
		if job, task, ok := strings.Cut(f[0], "_"); ok {
			r.ArrayJobID = job
			if strings.HasPrefix(task, "[") {
				idx, err := expandArray(strings.Trim(task, "[]"))
				if err != nil {
					return nil, fmt.Errorf("slurm: sacct line %d: job ID %q: %v", n+1, f[0], err)
				}
				r.ArrayTasks = idx
			} else {
				id, err := strconv.Atoi(task)
				if err != nil {
					return nil, fmt.Errorf("slurm: sacct line %d: job ID %q: array task is not a number", n+1, f[0])
				}
				r.ArrayTaskID = id
			}
		}
		// "CANCELLED by 1000": the state is the first word.
		st, _, _ := strings.Cut(f[2], " ")
		r.State = State(st)
		c, s, _ := strings.Cut(f[3], ":")
		var err1, err2 error
		r.ExitCode, err1 = strconv.Atoi(c)
		r.Signal, err2 = strconv.Atoi(s)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("slurm: sacct line %d: ExitCode %q is not code:signal", n+1, f[3])
		}
		r.Elapsed, _ = parseDuration(f[4])
		r.Start = parseTime(f[6], loc)
		r.End = parseTime(f[7], loc)
		recs = append(recs, r)
	}
	sortByJob(recs, func(r Record) (string, int) { return r.ArrayJobID, r.ArrayTaskID })
	return recs, nil
}

// parseTime reads sacct's times, local and without a zone; "Unknown",
// "None" and anything else unreadable give the zero time.
func parseTime(s string, loc *time.Location) time.Time {
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		return time.Time{}
	}
	return t
}

// expandArray reads an array index expression as Slurm prints it, "0-3,7",
// "1-9:2" (a step) or "4-8%2" (the limit, dropped).
func expandArray(spec string) ([]int, error) {
	spec, _, _ = strings.Cut(spec, "%")
	var out []int
	for part := range strings.SplitSeq(spec, ",") {
		rng, stepS, hasStep := strings.Cut(part, ":")
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad array index %q", part)
		}
		b, step := a, 1
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad array range %q", part)
			}
		}
		if hasStep {
			if step, err = strconv.Atoi(stepS); err != nil || step < 1 {
				return nil, fmt.Errorf("bad array step %q", part)
			}
		}
		if (b-a)/step > 1<<20 {
			return nil, fmt.Errorf("array range %q too large", part)
		}
		for i := a; i <= b; i += step {
			out = append(out, i)
		}
	}
	return out, nil
}
