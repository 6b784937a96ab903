package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// CmdError is a Slurm command that failed: which command, how, and what it
// wrote to stderr (Slurm's clients explain themselves there, e.g.
// "sbatch: error: invalid partition specified: gpu").
type CmdError struct {
	// Command is the command line, name and arguments joined by spaces.
	Command string
	// Stderr is the command's stderr, trimmed (its last 4 KiB if longer).
	Stderr string
	// Err is the exec error: an *exec.ExitError, exec.ErrNotFound (Slurm
	// not installed), or the context's error.
	Err error
}

func (e *CmdError) Error() string {
	msg := e.Command + ": " + e.Err.Error()
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }

// runner runs one Slurm client and returns its stdout; a failure is a
// *CmdError. The unit tests replace it to play back captured outputs.
var runner = func(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, newCmdError(name, args, stderr.Bytes(), err)
	}
	return stdout.Bytes(), nil
}

func newCmdError(name string, args []string, stderr []byte, err error) *CmdError {
	const max = 4 << 10
	s := strings.TrimSpace(string(stderr))
	if len(s) > max {
		s = "..." + s[len(s)-max:]
	}
	return &CmdError{Command: strings.TrimSpace(name + " " + strings.Join(args, " ")), Stderr: s, Err: err}
}

// Ping reports whether a Slurm controller answers: nil when `sinfo` works,
// else its error (errors.Is(err, exec.ErrNotFound) when Slurm's clients are
// not installed).
func Ping(ctx context.Context) error {
	_, err := runner(ctx, nil, "sinfo", "--noheader", "--format=%T")
	return err
}

// Config returns the controller's running configuration, `scontrol show
// config` as key → value ("MaxArraySize" → "1001").
func Config(ctx context.Context) (map[string]string, error) {
	out, err := runner(ctx, nil, "scontrol", "show", "config")
	if err != nil {
		return nil, err
	}
	return parseConfig(out), nil
}

// parseConfig reads the "Key = Value" lines of `scontrol show config`; the
// first occurrence of a key wins (plugin sections at the end repeat none of
// the main keys, but they need not be trusted to).
func parseConfig(out []byte) map[string]string {
	conf := make(map[string]string)
	for line := range strings.SplitSeq(string(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		if _, dup := conf[k]; !dup {
			conf[k] = v
		}
	}
	return conf
}

// MaxArraySize is the cluster's MaxArraySize: array indices must lie in
// 0..MaxArraySize-1 (Slurm's default is 1001; 0 disables arrays). Pass it
// to Plan.
func MaxArraySize(ctx context.Context) (int, error) {
	conf, err := Config(ctx)
	if err != nil {
		return 0, err
	}
	return maxArraySize(conf)
}

func maxArraySize(conf map[string]string) (int, error) {
	v, ok := conf["MaxArraySize"]
	if !ok {
		return 0, errors.New("slurm: scontrol show config has no MaxArraySize")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("slurm: scontrol show config: MaxArraySize = %q is not a count", v)
	}
	return n, nil
}

// Submit renders s and submits it with `sbatch --parsable` (the script on
// stdin), returning the array's job ID. Submission runs in this process's
// working directory, which is the tasks' too unless s.Workdir says
// otherwise.
func Submit(ctx context.Context, s Script) (string, error) {
	var b bytes.Buffer
	if err := s.Render(&b); err != nil {
		return "", err
	}
	out, err := runner(ctx, b.Bytes(), "sbatch", "--parsable")
	if err != nil {
		return "", err
	}
	return parseSbatch(out)
}

// parseSbatch reads `sbatch --parsable`: "JOBID" or "JOBID;CLUSTER".
func parseSbatch(out []byte) (string, error) {
	s := strings.TrimSpace(string(out))
	// sbatch may print warnings before the ID on stdout; the ID is last.
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	id, _, _ := strings.Cut(s, ";")
	if !jobIDRE.MatchString(id) {
		return "", fmt.Errorf("slurm: sbatch --parsable printed %q, not a job ID", strings.TrimSpace(string(out)))
	}
	return id, nil
}

// Submission is a submitted Script and its job ID.
type Submission struct {
	JobID  string
	Script Script
}

// Task is the task index of this submission's array index (a Task's
// ArrayTaskID from Queue, or a Record's from Accounting).
func (s Submission) Task(arrayTaskID int) int { return s.Script.Offset + arrayTaskID }

// SubmitAll submits the scripts of a Plan in order. With chain, each one
// after the first waits for the one before to end (afterany, whatever its
// tasks' states), so that the sweep as a whole never runs more than
// Parallel tasks at once; without it they all queue at once, each with its
// own limit. It returns the submissions made so far along with any error,
// so that a caller can cancel them.
func SubmitAll(ctx context.Context, scripts []Script, chain bool) ([]Submission, error) {
	var subs []Submission
	for i, s := range scripts {
		if chain && i > 0 {
			s.After = append(s.After[:len(s.After):len(s.After)], subs[i-1].JobID)
		}
		id, err := Submit(ctx, s)
		if err != nil {
			return subs, fmt.Errorf("slurm: submission %d of %d: %w", i+1, len(scripts), err)
		}
		subs = append(subs, Submission{JobID: id, Script: s})
	}
	return subs, nil
}

// Cancel cancels jobs (whole arrays, or single tasks as "123_4") with
// scancel; cancelling none does nothing. Jobs that already ended are not
// an error to scancel.
func Cancel(ctx context.Context, jobIDs ...string) error {
	if len(jobIDs) == 0 {
		return nil
	}
	for _, id := range jobIDs {
		if !jobIDRE.MatchString(id) {
			return fmt.Errorf("slurm: cancel: %q is not a job ID", id)
		}
	}
	_, err := runner(ctx, nil, "scancel", jobIDs...)
	return err
}
