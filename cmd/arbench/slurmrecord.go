package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"arbench/harness"
	"arbench/internal/slurm"
)

// SubmissionsFileName is the record of a sweep's submissions, in
// OUT/slurm.
const SubmissionsFileName = "submissions.json"

// maxSubmissionsFile bounds the record read (thousands of submissions).
const maxSubmissionsFile = 16 << 20

// submissionsFile is OUT/slurm/submissions.json: every submission of the
// sweep, oldest first. -follow follows the last; a new submission is
// refused while a task of any is still queued or running.
type submissionsFile struct {
	Submissions []submissionRecord `json:"submissions"`
	// path is the file's path.
	path string
}

// submissionRecord is one `arbench slurm` submission: the shards it ran,
// as one or more chained job arrays.
type submissionRecord struct {
	Time       time.Time `json:"time"`
	Experiment string    `json:"experiment"`
	// Shards is the sweep's shard count N; Tasks the shards submitted.
	Shards   int   `json:"shards"`
	Tasks    []int `json:"tasks"`
	Resubmit bool  `json:"resubmit"`
	// Command is what each array task runs (bash; $ARBENCH_TASK_ID is its
	// shard).
	Command string `json:"command"`
	// Invocation is the arbench slurm command line.
	Invocation []string    `json:"invocation"`
	Jobs       []jobRecord `json:"jobs"`
}

// jobRecord is one job array of a submission.
type jobRecord struct {
	JobID string `json:"job_id"`
	// Array is its --array value; array index = shard - Offset.
	Array  string `json:"array"`
	Offset int    `json:"offset"`
	Tasks  []int  `json:"tasks"`
	// Script is the sbatch script submitted.
	Script string `json:"script"`
}

// loadSubmissions reads dir's record; a missing file is an empty record.
func loadSubmissions(dir string) (*submissionsFile, error) {
	path := filepath.Join(dir, SubmissionsFileName)
	rec := &submissionsFile{path: path}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSubmissionsFile+1))
	if err != nil {
		return nil, fmt.Errorf("slurm: read %s: %w", path, err)
	}
	if len(b) > maxSubmissionsFile {
		return nil, fmt.Errorf("slurm: %s: larger than %d MiB", path, maxSubmissionsFile>>20)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rec); err != nil {
		return nil, fmt.Errorf("slurm: %s: %w", path, err)
	}
	if err := rec.check(); err != nil {
		return nil, fmt.Errorf("slurm: %s: %w", path, err)
	}
	return rec, nil
}

// check refuses a record that could not have been written by a
// submission.
func (r *submissionsFile) check() error {
	var errs []error
	for i, s := range r.Submissions {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("submissions[%d]: %s", i, fmt.Sprintf(format, args...)))
		}
		if s.Shards < 1 || s.Shards > harness.MaxShards {
			bad("shards: %d is not a shard count", s.Shards)
		}
		if len(s.Jobs) == 0 {
			bad("jobs: none")
		}
		for j, job := range s.Jobs {
			if job.JobID == "" || job.Offset < 0 || len(job.Tasks) == 0 {
				bad("jobs[%d]: needs a job_id, an offset >= 0 and tasks", j)
			}
			for _, t := range job.Tasks {
				if t < job.Offset || t >= s.Shards {
					bad("jobs[%d]: task %d outside %d..%d", j, t, job.Offset, s.Shards-1)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// last is the latest submission, or nil.
func (r *submissionsFile) last() *submissionRecord {
	if len(r.Submissions) == 0 {
		return nil
	}
	return &r.Submissions[len(r.Submissions)-1]
}

// allSubmissions are the job arrays of every recorded submission.
func (r *submissionsFile) allSubmissions() []slurm.Submission {
	var out []slurm.Submission
	for i := range r.Submissions {
		out = append(out, r.Submissions[i].submissions()...)
	}
	return out
}

// submissions are the job arrays of one submission, as Queue's answers
// map back to shards (Submission.Task).
func (s *submissionRecord) submissions() []slurm.Submission {
	out := make([]slurm.Submission, len(s.Jobs))
	for i, j := range s.Jobs {
		out[i] = slurm.Submission{JobID: j.JobID, Script: slurm.Script{Tasks: j.Tasks, Offset: j.Offset}}
	}
	return out
}

// record writes the scripts submitted into OUT/slurm (submit-NNN.sbatch,
// -K for the parts of a split array) and appends the submission to the
// record, each atomically; the caller holds OUT/slurm's lock.
func (s *sweep) record(subs []slurm.Submission, tasks []int, resubmit bool) (*submissionRecord, error) {
	n := len(s.rec.Submissions) + 1
	rec := submissionRecord{Time: time.Now().UTC(), Experiment: s.e.Name, Shards: s.shards, Tasks: tasks, Resubmit: resubmit,
		Command: subs[0].Script.Command, Invocation: append([]string{"arbench", "slurm"}, s.f.args...)}
	for k, sub := range subs {
		name := fmt.Sprintf("submit-%03d.sbatch", n)
		if len(subs) > 1 {
			name = fmt.Sprintf("submit-%03d-%d.sbatch", n, k+1)
		}
		path := filepath.Join(s.dir, name)
		if err := harness.WriteFileAtomic(path, sub.Script.Render); err != nil {
			return nil, fmt.Errorf("slurm: record the submission: %w", err)
		}
		rec.Jobs = append(rec.Jobs, jobRecord{JobID: sub.JobID, Array: sub.Script.ArraySpec(), Offset: sub.Script.Offset, Tasks: sub.Script.Tasks, Script: path})
	}
	next := &submissionsFile{Submissions: append(s.rec.Submissions[:len(s.rec.Submissions):len(s.rec.Submissions)], rec), path: s.rec.path}
	if err := harness.WriteFileAtomic(next.path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(next)
	}); err != nil {
		return nil, fmt.Errorf("slurm: record the submission: %w", err)
	}
	s.rec = next
	return next.last(), nil
}
