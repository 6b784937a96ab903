package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"arbench/harness"
	"arbench/internal/slurm"
	"arbench/reports"
)

// A shard's phase in the sweep, as a progress line counts it.
const (
	// phaseDone: its results hold every run of it (the results decide,
	// whatever Slurm says).
	phaseDone = "done"
	// phaseRunning: its array task runs (squeue), or its directory is
	// being written.
	phaseRunning = "running"
	// phasePending: its array task waits in the queue.
	phasePending = "pending"
	// phaseFailed: its task has ended (or it was not submitted) and runs of
	// it failed or are missing.
	phaseFailed = "failed"
)

// maxQueueFailures is how many polls in a row squeue may fail before
// following gives up.
const maxQueueFailures = 10

// readResults reads the shards' results as `arbench merge -status` does:
// nil when no shard holds results yet.
func (s *sweep) readResults(ctx context.Context) (*harness.Merged, error) {
	dirs, has := s.shardDirs()
	if !has {
		return nil, nil
	}
	return harness.Merge(ctx, dirs, harness.MergeOptions{})
}

// shardDirs lists the shard directories that exist, and whether any of
// them holds a results file.
func (s *sweep) shardDirs() (dirs []string, results bool) {
	for i := range s.shards {
		d := s.shardDir(i)
		if _, err := os.Lstat(d); err != nil {
			continue
		}
		dirs = append(dirs, d)
		if _, err := os.Lstat(filepath.Join(d, harness.ResultsFileName)); err == nil {
			results = true
		}
	}
	return dirs, results
}

// shardStates is every shard's progress by its results (m from
// readResults; nil: none has results, so every run is missing).
func (s *sweep) shardStates(m *harness.Merged) []harness.ShardProgress {
	out := make([]harness.ShardProgress, s.shards)
	for i := range out {
		out[i].Shard = harness.Shard{Index: i, Count: s.shards}
	}
	for _, r := range s.plan {
		out[r.Shard].Runs++
		out[r.Shard].Missing++
	}
	if m == nil {
		return out
	}
	for _, p := range m.Shards {
		if p.Shard.Count == s.shards {
			out[p.Shard.Index] = p
		}
	}
	return out
}

// taskState is what Slurm says of one shard's array task.
type taskState struct {
	shard             int
	jobID, arrayJobID string
	state             slurm.State
}

// queueStates asks squeue about the tasks of subs; tasks squeue has
// forgotten (ended more than MinJobAge ago) are absent.
func queueStates(ctx context.Context, subs []slurm.Submission) ([]taskState, error) {
	byJob := map[string]slurm.Submission{}
	var ids []string
	for _, sub := range subs {
		byJob[sub.JobID] = sub
		ids = append(ids, sub.JobID)
	}
	tasks, err := slurm.Queue(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []taskState
	for _, t := range tasks {
		sub, ok := byJob[t.ArrayJobID]
		if !ok || t.ArrayTaskID < 0 {
			continue
		}
		out = append(out, taskState{shard: sub.Task(t.ArrayTaskID), jobID: t.JobID, arrayJobID: t.ArrayJobID, state: t.State})
	}
	return out, nil
}

// follower follows one submission: Slurm's view of its tasks and the
// shards' results.
type follower struct {
	s    *sweep
	subs []slurm.Submission
	// submitted are the submission's shards; state their tasks' Slurm
	// states ("" once squeue and sacct know nothing of them), seen the
	// last state Slurm gave each and exit sacct's exit code.
	submitted map[int]bool
	state     map[int]slurm.State
	seen      map[int]slurm.State
	exit      map[int]string
	// known is set once squeue has answered since the last failure.
	known          bool
	queueFailures  int
	noAccounting   bool
	askedSacct     bool
	lastLine, note string
}

func newFollower(s *sweep, rec *submissionRecord) *follower {
	fl := &follower{s: s, subs: rec.submissions(), submitted: map[int]bool{}, seen: map[int]slurm.State{}, exit: map[int]string{}}
	for _, t := range rec.Tasks {
		fl.submitted[t] = true
	}
	return fl
}

// progress is one look at the sweep.
type progress struct {
	phases      []string
	done, total int
	// finished: every submitted task has ended.
	finished bool
}

func (p progress) count(phase string) int {
	n := 0
	for _, x := range p.phases {
		if x == phase {
			n++
		}
	}
	return n
}

// line is the progress line: "shards: 2 done, 1 running, 0 failed, 0
// pending; runs 4/6".
func (p progress) line() string {
	return fmt.Sprintf("shards: %d done, %d running, %d failed, %d pending; runs %d/%d",
		p.count(phaseDone), p.count(phaseRunning), p.count(phaseFailed), p.count(phasePending), p.done, p.total)
}

// poll asks Slurm and reads the results once.
func (fl *follower) poll(ctx context.Context) (progress, error) {
	if err := fl.pollSlurm(ctx); err != nil {
		return progress{}, err
	}
	m, err := fl.s.readResults(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return progress{}, ctx.Err()
		}
		fl.say(fmt.Sprintf("reading the shards' results: %v (will look again)", err))
		m = nil
	}
	return fl.progress(m), nil
}

// pollSlurm updates the tasks' states from squeue, and from sacct for
// those squeue no longer lists. A failing squeue is noted and tolerated
// maxQueueFailures times in a row.
func (fl *follower) pollSlurm(ctx context.Context) error {
	states, err := queueStates(ctx, fl.subs)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fl.known = false
		if fl.queueFailures++; fl.queueFailures >= maxQueueFailures {
			return fmt.Errorf("slurm: squeue failed %d times in a row: %w", fl.queueFailures, err)
		}
		fl.say(fmt.Sprintf("squeue: %v (will ask again)", err))
		return nil
	}
	fl.queueFailures, fl.known = 0, true
	fl.state = map[int]slurm.State{}
	for _, t := range states {
		fl.state[t.shard] = t.state
		fl.seen[t.shard] = t.state
	}
	fl.accounting(ctx)
	return nil
}

// accounting asks sacct about the submitted tasks squeue no longer lists
// (where the cluster has accounting: it says once when it has none).
func (fl *follower) accounting(ctx context.Context) {
	if fl.noAccounting {
		return
	}
	gone := false
	for t := range fl.submitted {
		gone = gone || fl.state[t] == ""
	}
	if !gone && fl.askedSacct {
		return
	}
	fl.askedSacct = true // the first time, to learn whether it answers
	var ids []string
	byJob := map[string]slurm.Submission{}
	for _, sub := range fl.subs {
		ids = append(ids, sub.JobID)
		byJob[sub.JobID] = sub
	}
	recs, err := slurm.Accounting(ctx, ids)
	switch {
	case errors.Is(err, slurm.ErrNoAccounting):
		fl.noAccounting = true
		fmt.Fprintf(fl.s.stderr, "arbench slurm: sacct: this cluster keeps no job accounting; tasks squeue has forgotten count as ended, and the shards' results say how\n")
		return
	case err != nil:
		fl.say(fmt.Sprintf("sacct: %v", err))
		return
	}
	for _, r := range recs {
		sub, ok := byJob[r.ArrayJobID]
		if !ok || r.ArrayTaskID < 0 {
			continue
		}
		t := sub.Task(r.ArrayTaskID)
		if fl.state[t] == "" && fl.submitted[t] {
			fl.state[t], fl.seen[t] = r.State, r.State
			fl.exit[t] = fmt.Sprintf("exit %d", r.ExitCode)
			if r.Signal != 0 {
				fl.exit[t] += fmt.Sprintf(", signal %d", r.Signal)
			}
		}
	}
}

// say prints a note about following once, until it changes.
func (fl *follower) say(note string) {
	if note != fl.note {
		fmt.Fprintf(fl.s.stderr, "arbench slurm: %s\n", note)
		fl.note = note
	}
}

// progress combines the results (the truth about what finished) with
// Slurm's states (whether a task is still to run, or running).
func (fl *follower) progress(m *harness.Merged) progress {
	p := progress{finished: fl.known, total: len(fl.s.plan)}
	if m != nil {
		p.done, p.total = m.Count(harness.RunDone)+m.Count(harness.RunDiverged), len(m.Runs)
	}
	for _, sp := range fl.s.shardStates(m) {
		i := sp.Shard.Index
		st := fl.state[i]
		active := fl.submitted[i] && st != "" && !st.Finished()
		if active {
			p.finished = false
		}
		p.phases = append(p.phases, shardPhase(sp, st, active))
	}
	return p
}

// shardPhase is a shard's phase from its results and its task's state.
func shardPhase(sp harness.ShardProgress, st slurm.State, active bool) string {
	switch {
	case sp.State() == harness.ShardComplete:
		return phaseDone
	case active && (st == slurm.Pending || st == slurm.Requeued):
		return phasePending
	case active, sp.Running != "":
		return phaseRunning
	}
	return phaseFailed
}

// followLast follows the last recorded submission (-follow).
func (s *sweep) followLast(ctx context.Context) error {
	return s.followAndFinish(ctx, s.rec.last())
}

// followAndFinish prints a progress line per change until every task of
// rec has ended, then merges. Cancelling ctx stops following and leaves
// the jobs running.
func (s *sweep) followAndFinish(ctx context.Context, rec *submissionRecord) error {
	fl := newFollower(s, rec)
	fmt.Fprintf(s.stderr, "arbench slurm: following job(s) %s every %v (Ctrl-C stops following; the jobs keep running)\n", strings.Join(fl.jobIDs(), ", "), s.f.poll)
	for {
		p, err := fl.poll(ctx)
		if ctx.Err() != nil {
			return s.interrupted(fl, ctx.Err())
		}
		if err != nil {
			return fmt.Errorf("%w; follow again with: %s", err, s.hint("-follow"))
		}
		if line := p.line(); line != fl.lastLine {
			fmt.Fprintf(s.stderr, "%s %s\n", time.Now().Format("15:04:05"), line)
			fl.lastLine = line
		}
		if p.finished {
			return s.finish(ctx, fl)
		}
		select {
		case <-ctx.Done():
			return s.interrupted(fl, ctx.Err())
		case <-time.After(s.f.poll):
		}
	}
}

func (fl *follower) jobIDs() []string {
	ids := make([]string, len(fl.subs))
	for i, sub := range fl.subs {
		ids[i] = sub.JobID
	}
	return ids
}

// interrupted is the error of a follow stopped by ctx: the jobs keep
// running, and the way to follow them again.
func (s *sweep) interrupted(fl *follower, err error) error {
	ids := strings.Join(fl.jobIDs(), ",")
	return fmt.Errorf("slurm: stopped following; job(s) %s keep running (squeue --jobs=%s); follow them again, and merge when they have ended, with: %s: %w",
		ids, ids, s.hint("-follow"), err)
}

// finish merges the shards into OUT (as arbench merge -out OUT
// OUT/shards/*-of-N) and reports the result; it fails naming the shards to
// resubmit when runs failed or are missing.
func (s *sweep) finish(ctx context.Context, fl *follower) error {
	m, err := s.merge(ctx)
	if m != nil {
		for _, w := range m.Warnings {
			fmt.Fprintf(s.stderr, "arbench slurm: warning: %s\n", w)
		}
		if perr := printMerge(s.stdout, m); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	if err != nil {
		return err
	}
	states := s.shardStates(m)
	bad := incompleteShards(states)
	if len(bad) == 0 {
		fmt.Fprintf(s.stderr, "arbench slurm: merged %d run(s) of %s into %s: complete\n", len(m.Runs), s.e.Name, s.out)
		return nil
	}
	failed, missing := 0, 0
	for _, i := range bad {
		s.describeShard(states[i], fl)
		failed, missing = failed+states[i].Failed, missing+states[i].Missing
	}
	return fmt.Errorf("slurm: %s is incomplete: %d of %d run(s) failed and %d missing, in shard(s) %s of %d; fix the cause (see the logs) and resubmit them with: %s",
		s.e.Name, failed, len(s.plan), missing, compressInts(bad), s.shards, s.hint("-resubmit"))
}

// merge writes the merged results into OUT; nil, nil when no shard holds
// results (nothing to merge).
func (s *sweep) merge(ctx context.Context) (*harness.Merged, error) {
	dirs, has := s.shardDirs()
	if !has {
		fmt.Fprintf(s.stderr, "arbench slurm: no shard of %s holds results; nothing merged\n", s.e.Name)
		return nil, nil
	}
	opt := harness.MergeOptions{
		Out:         s.out,
		Report:      reports.Markdown,
		CommandLine: append([]string{"arbench", "slurm"}, s.f.args...),
		Finish: func(dir string, rf *harness.ResultsFile) error {
			_, err := reports.WriteReport(dir, rf)
			return err
		},
	}
	m, err := harness.Merge(ctx, dirs, opt)
	if err != nil {
		return m, fmt.Errorf("slurm: merge %s into %s: %w", filepath.Join(s.out, "shards"), s.out, err)
	}
	return m, nil
}

// describeShard says what became of an incomplete shard: its results,
// what Slurm last said of its task, and the end of its log.
func (s *sweep) describeShard(p harness.ShardProgress, fl *follower) {
	i := p.Shard.Index
	slurmSays := "not in the submission followed"
	if fl == nil {
		slurmSays = "not submitted"
	} else if fl.submitted[i] {
		slurmSays = "task ended (squeue no longer lists it)"
		if st := fl.seen[i]; st != "" {
			slurmSays = "task " + string(st)
			if x := fl.exit[i]; x != "" {
				slurmSays += " (" + x + ")"
			}
		}
	}
	fmt.Fprintf(s.stderr, "arbench slurm: shard %s: %s, %d of %d run(s) done, %d failed, %d missing; Slurm: %s; log: %s\n",
		p.Shard, p.State(), p.Done, p.Runs, p.Failed, p.Missing, slurmSays, s.logFile(i))
	for _, line := range logTail(s.logFile(i), 5) {
		fmt.Fprintf(s.stderr, "    | %s\n", line)
	}
}

// logTail returns up to n last non-empty lines of the file (read from its
// last 8 KiB; none when it cannot be read).
func logTail(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const window = 8 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		if _, err := f.Seek(st.Size()-window, io.SeekStart); err != nil {
			return nil
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, window))
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 300 {
				l = l[:300] + "..."
			}
			lines = append(lines, l)
		}
	}
	return lines[max(0, len(lines)-n):]
}
