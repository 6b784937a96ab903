// Package slurm is what `arbench slurm` needs from a Slurm cluster: it
// renders sbatch job-array scripts (one array task per shard of an
// experiment), splits arrays longer than the cluster's MaxArraySize into
// several submissions, submits them (sbatch), follows their tasks (squeue,
// and sacct where the cluster has accounting) and cancels them (scancel).
//
// It talks to Slurm only through its command-line clients, as a user at a
// login node would; every function takes a context first and reports a
// failed command as a *CmdError carrying the command's stderr.
//
// Slurm's records are only a help: squeue forgets a finished job after
// MinJobAge (300 s by default) and sacct answers only where accounting is
// configured (ErrNoAccounting otherwise). What a shard produced, its own
// results directory, is the source of truth about whether it finished.
//
// The tests run against a real single-node cluster when `sinfo` answers
// (`make slurm-up` starts one on localhost) and skip otherwise;
// ARBENCH_REQUIRE_SLURM=1 (`make test-slurm`) makes them fail instead.
package slurm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// TaskEnv is the environment variable through which a task's command learns
// its task index: SLURM_ARRAY_TASK_ID plus the submission's Offset. A
// command must use it rather than SLURM_ARRAY_TASK_ID, which is relative to
// its submission once an array has been split.
const TaskEnv = "ARBENCH_TASK_ID"

// Script is one sbatch job-array submission: a set of tasks (for arbench,
// shard indices), each running Command under bash with $ARBENCH_TASK_ID set
// to its index, and the resources every task asks for.
type Script struct {
	// JobName is the job's name (--job-name); required. Every submission of
	// a split array carries the same name.
	JobName string
	// Tasks are the task indices this submission runs (Range(n) for all of
	// 0..n-1; a subset for a resubmission), each in [Offset, Offset+MaxArraySize).
	// Plan fills Tasks and Offset.
	Tasks []int
	// Offset is subtracted from each task index to give its array index:
	// SLURM_ARRAY_TASK_ID = task - Offset, ARBENCH_TASK_ID = task.
	Offset int
	// Parallel is the most tasks of this array that run at once (the %K of
	// --array); 0 means no limit.
	Parallel int
	// Partition (--partition); empty for the cluster's default.
	Partition string
	// Time is each task's time limit (--time) in one of Slurm's forms:
	// minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED;
	// empty for the partition's default.
	Time string
	// CPUsPerTask (--cpus-per-task); 0 for Slurm's default (1).
	CPUsPerTask int
	// Mem is each task's memory (--mem), a number with an optional K, M, G
	// or T suffix (megabytes without one); empty for the cluster's default.
	Mem string
	// Output and Error are sbatch's filename patterns for the batch step's
	// stdout and stderr (--output, --error): %A is the array's job ID, %a
	// the array index (relative to Offset), %j the task's own job ID. Empty
	// Output is Slurm's default, slurm-%A_%a.out in the working directory;
	// empty Error joins stderr to Output.
	Output, Error string
	// Workdir is the tasks' working directory (--chdir); empty for the
	// directory sbatch was run in.
	Workdir string
	// LogDir, if set, receives each task's stdout and stderr, appended to
	// LogDir/task-<ARBENCH_TASK_ID>.log: named by the task index, so that a
	// resubmission of a task appends to the same log, and split
	// submissions cannot collide. The script creates the directory; it
	// must be on a filesystem the nodes share to be read from elsewhere.
	LogDir string
	// After are job IDs that must have ended (in any state) before this
	// submission's tasks start (--dependency=afterany:...). SubmitAll chains
	// the submissions of a split array this way.
	After []string
	// Extra are further sbatch options, each a whole option as sbatch reads
	// it on an #SBATCH line ("--account=proj", "--gres=gpu:1").
	Extra []string
	// Command is the shell command line (bash, may span several lines) that
	// each task runs; $ARBENCH_TASK_ID is its task index. Quote builds
	// words for it. The script runs it under `set -euo pipefail`, and the
	// task's exit status is the command's.
	Command string
}

// Range returns the task indices 0..n-1.
func Range(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

var (
	// Slurm's --time forms (sbatch(1)), and its words for no limit.
	timeRE = regexp.MustCompile(`^([0-9]+|[0-9]+:[0-9]+|[0-9]+:[0-9]+:[0-9]+|[0-9]+-[0-9]+|[0-9]+-[0-9]+:[0-9]+|[0-9]+-[0-9]+:[0-9]+:[0-9]+|(?i:unlimited|infinite))$`)
	memRE  = regexp.MustCompile(`^[0-9]+[KMGTkmgt]?$`)
	// A partition name, or several separated by commas.
	partitionRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$`)
	jobIDRE     = regexp.MustCompile(`^[0-9]+(_[0-9]+)?$`)
	// Characters that need no quoting on an #SBATCH line or in bash.
	plainRE = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)
)

// Validate reports every problem of s at once, naming the field.
func (s *Script) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("slurm script: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	noControl := func(field, v string) bool {
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			bad(field, "%q contains a newline or another control character", v)
			return false
		}
		return true
	}
	if s.JobName == "" {
		bad("JobName", "empty")
	} else {
		noControl("JobName", s.JobName)
	}
	if len(s.Tasks) == 0 {
		bad("Tasks", "no tasks")
	}
	if s.Offset < 0 {
		bad("Offset", "%d is negative", s.Offset)
	}
	seen := make(map[int]bool, len(s.Tasks))
	for _, t := range s.Tasks {
		switch {
		case t < s.Offset:
			bad("Tasks", "task %d is below Offset %d (array indices cannot be negative)", t, s.Offset)
		case seen[t]:
			bad("Tasks", "task %d listed twice", t)
		}
		seen[t] = true
	}
	if s.Parallel < 0 {
		bad("Parallel", "%d is negative (0 means no limit)", s.Parallel)
	}
	for _, c := range []struct {
		field, v string
		check    func(string) error
	}{{"Partition", s.Partition, CheckPartition}, {"Time", s.Time, CheckTime}, {"Mem", s.Mem, CheckMem}} {
		if c.v != "" {
			if err := c.check(c.v); err != nil {
				bad(c.field, "%v", err)
			}
		}
	}
	if s.CPUsPerTask < 0 {
		bad("CPUsPerTask", "%d is negative", s.CPUsPerTask)
	}
	noControl("Output", s.Output)
	noControl("Error", s.Error)
	noControl("Workdir", s.Workdir)
	noControl("LogDir", s.LogDir)
	for _, id := range s.After {
		if !jobIDRE.MatchString(id) {
			bad("After", "%q is not a job ID", id)
		}
	}
	for _, e := range s.Extra {
		if err := CheckOption(e); err != nil {
			bad("Extra", "%v", err)
		}
	}
	if strings.TrimSpace(s.Command) == "" {
		bad("Command", "empty")
	} else if strings.ContainsRune(s.Command, 0) {
		bad("Command", "contains a NUL byte")
	}
	return errors.Join(errs...)
}

// CheckPartition reports whether p is a partition name, or several
// separated by commas, as --partition takes them.
func CheckPartition(p string) error {
	if !partitionRE.MatchString(p) {
		return fmt.Errorf("%q is not a partition name (letters, digits, _ . -; several separated by commas)", p)
	}
	return nil
}

// CheckTime reports whether t is a time limit in one of the forms of
// --time (Script.Time).
func CheckTime(t string) error {
	if !timeRE.MatchString(t) {
		return fmt.Errorf("%q is not a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED)", t)
	}
	return nil
}

// CheckMem reports whether m is a memory size as --mem takes it (Script.Mem).
func CheckMem(m string) error {
	if !memRE.MatchString(m) {
		return fmt.Errorf("%q is not a memory size (a number with an optional K, M, G or T suffix)", m)
	}
	return nil
}

// CheckOption reports whether o is a whole long sbatch option as an
// #SBATCH line takes it (Script.Extra): "--name=value" or "--flag", without
// control characters.
func CheckOption(o string) error {
	if strings.ContainsFunc(o, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%q contains a newline or another control character", o)
	}
	if !strings.HasPrefix(o, "--") || len(o) == 2 {
		return fmt.Errorf("%q is not a long sbatch option (--name=value)", o)
	}
	return nil
}

// ArraySpec is the value of --array: the array indices (task - Offset) as
// sorted ranges, "0-9", "2,5-7", then "%K" when Parallel limits them.
func (s *Script) ArraySpec() string {
	idx := make([]int, len(s.Tasks))
	for i, t := range s.Tasks {
		idx[i] = t - s.Offset
	}
	spec := compress(idx)
	if s.Parallel > 0 {
		spec += "%" + strconv.Itoa(s.Parallel)
	}
	return spec
}

// compress writes sorted, de-duplicated integers as ranges: 0-3,5,7-8.
func compress(xs []int) string {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	xs = slices.Compact(xs)
	var b strings.Builder
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(xs[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(xs[j]))
		}
		i = j + 1
	}
	return b.String()
}

// Render writes s as an sbatch script: the #SBATCH options, then a bash
// body that sets ARBENCH_TASK_ID, sends the task's output to LogDir when
// set, prints one line naming the task, job and node, and runs Command.
func (s *Script) Render(w io.Writer) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var b bytes.Buffer
	opt := func(name, value string) {
		if value != "" {
			fmt.Fprintf(&b, "#SBATCH --%s=%s\n", name, sbatchQuote(value))
		}
	}
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "# arbench job array (internal/slurm): %d task(s), %s; array index = task - %d.\n",
		len(s.Tasks), compress(s.Tasks), s.Offset)
	opt("job-name", s.JobName)
	opt("array", s.ArraySpec())
	opt("partition", s.Partition)
	opt("time", s.Time)
	if s.CPUsPerTask > 0 {
		opt("cpus-per-task", strconv.Itoa(s.CPUsPerTask))
	}
	opt("mem", s.Mem)
	opt("output", s.Output)
	opt("error", s.Error)
	opt("chdir", s.Workdir)
	if len(s.After) > 0 {
		opt("dependency", "afterany:"+strings.Join(s.After, ":"))
	}
	for _, e := range s.Extra {
		fmt.Fprintf(&b, "#SBATCH %s\n", e)
	}
	b.WriteString("set -euo pipefail\n")
	b.WriteString(`: "${SLURM_ARRAY_TASK_ID:?is not set: submit this script with sbatch, it is a job array}"` + "\n")
	fmt.Fprintf(&b, "%s=$((SLURM_ARRAY_TASK_ID + %d))\nexport %s\n", TaskEnv, s.Offset, TaskEnv)
	if s.LogDir != "" {
		fmt.Fprintf(&b, "mkdir -p %s\n", Quote(s.LogDir))
		fmt.Fprintf(&b, "exec >>%s/task-\"$%s\".log 2>&1\n", Quote(s.LogDir), TaskEnv)
	}
	fmt.Fprintf(&b, "echo \"arbench-slurm: task $%s: job ${SLURM_ARRAY_JOB_ID:-?}_${SLURM_ARRAY_TASK_ID} on $(hostname) at $(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\n", TaskEnv)
	b.WriteString(strings.TrimRight(s.Command, "\n"))
	b.WriteString("\n")
	_, err := w.Write(b.Bytes())
	return err
}

// sbatchQuote quotes v for an #SBATCH line: sbatch splits those lines into
// words itself, honouring double quotes and backslashes and taking an
// unquoted # as the start of a comment.
func sbatchQuote(v string) string {
	if plainRE.MatchString(v) {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}

// Quote returns s as one bash word (single-quoted unless it needs no
// quoting), for building Script.Command from arguments.
func Quote(s string) string {
	if s != "" && plainRE.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteArgs quotes each argument with Quote and joins them with spaces.
func QuoteArgs(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// Chunk is one submission's share of the tasks after Split.
type Chunk struct {
	// Offset is the smallest task of the chunk; its array indices are
	// Tasks[i] - Offset, all below the MaxArraySize Split was given.
	Offset int
	// Tasks are the chunk's task indices, ascending.
	Tasks []int
}

// Split divides tasks among as few job arrays as a cluster with the given
// MaxArraySize allows. Slurm accepts array indices 0..MaxArraySize-1 only,
// so each chunk starts at its smallest task (its Offset) and takes every
// task below Offset+maxArraySize; the greedy cut gives the fewest chunks,
// and for Range(n) it gives offsets 0, max, 2·max, ... Tasks must be
// non-negative and distinct; their order does not matter.
func Split(tasks []int, maxArraySize int) ([]Chunk, error) {
	if maxArraySize <= 0 {
		return nil, fmt.Errorf("slurm: MaxArraySize is %d: job arrays are disabled on this cluster", maxArraySize)
	}
	if len(tasks) == 0 {
		return nil, errors.New("slurm: no tasks to split")
	}
	sorted := slices.Clone(tasks)
	slices.Sort(sorted)
	for i, t := range sorted {
		if t < 0 {
			return nil, fmt.Errorf("slurm: task %d is negative", t)
		}
		if i > 0 && sorted[i-1] == t {
			return nil, fmt.Errorf("slurm: task %d listed twice", t)
		}
	}
	var chunks []Chunk
	for i := 0; i < len(sorted); {
		off := sorted[i]
		j := i
		for j < len(sorted) && sorted[j]-off < maxArraySize {
			j++
		}
		chunks = append(chunks, Chunk{Offset: off, Tasks: sorted[i:j:j]})
		i = j
	}
	return chunks, nil
}

// Plan turns the template s (every field but Tasks and Offset) into the
// submissions that run tasks on a cluster whose MaxArraySize is
// maxArraySize (see MaxArraySize): one Script per Chunk of Split. Each
// keeps s's Parallel limit; submit them with SubmitAll and chain set to
// keep the limit over the whole sweep. With several submissions an Output
// or Error pattern must tell them apart (%A or %j), since %a restarts at 0
// in each.
func Plan(s Script, tasks []int, maxArraySize int) ([]Script, error) {
	chunks, err := Split(tasks, maxArraySize)
	if err != nil {
		return nil, err
	}
	if len(chunks) > 1 {
		for _, p := range []struct{ field, v string }{{"Output", s.Output}, {"Error", s.Error}} {
			if strings.Contains(p.v, "%a") && !strings.Contains(p.v, "%A") && !strings.Contains(p.v, "%j") {
				return nil, fmt.Errorf("slurm script: %s: %q would collide across the %d submissions of a split array (%%a restarts at 0 in each): add %%A or %%j", p.field, p.v, len(chunks))
			}
		}
	}
	out := make([]Script, len(chunks))
	for i, c := range chunks {
		p := s
		p.Tasks = c.Tasks
		p.Offset = c.Offset
		p.After = slices.Clone(s.After)
		p.Extra = slices.Clone(s.Extra)
		if err := p.Validate(); err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}
