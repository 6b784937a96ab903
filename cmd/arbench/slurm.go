package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"arbench/harness"
	"arbench/internal/slurm"
)

// slurmFlags are the flags of `arbench slurm`: the experiment's and the
// weights flags (as for run, forwarded to every array task), the sweep's
// shape, the resources each array task asks for, and the mode.
type slurmFlags struct {
	*runFlags
	shards, parallel, cpus    int
	partition, timeLimit, mem string
	extra                     []string
	dryRun, resubmit, follow  bool
	noWait                    bool
	poll                      time.Duration
	args                      []string // the command line, for the record
	set                       map[string]bool
}

// forwardedFlags are the flags of `arbench slurm` that every array task's
// `arbench run` receives as given (-config is made absolute): those that
// make the experiment and the weights flags.
var forwardedFlags = []string{"name", "model", "task", "data", "steps", "batch", "lr", "seed", "seeds", "out",
	"backend", "device", "load-weights", "save-weights"}

// submitOnlyFlags apply to a submission; -follow refuses them.
var submitOnlyFlags = []string{"parallel", "partition", "time", "cpus-per-task", "mem", "sbatch"}

const slurmUsage = `Usage: arbench slurm (-config FILE | -model LIST -task LIST) [-shards N] [-parallel K]
                     [-partition P] [-time T] [-cpus-per-task C] [-mem M] [-sbatch OPTION]...
                     [-dry-run | -resubmit | -follow] [-no-wait] [-poll D] [experiment flags]

Runs the experiment's shards as a Slurm job array, one array task per shard
(arbench run -shard I/N -resume, with this binary and the experiment flags
given here, in the current directory), follows the sweep and merges the
shards into OUT (the experiment's out, or -out) when every task has ended.
The scripts, OUT/slurm/submissions.json (every submission: job ids, shards,
command, time) and the tasks' logs (OUT/slurm/logs/task-I.log) are kept in
OUT/slurm. Arrays longer than the cluster's MaxArraySize are split into
submissions that run one after the other.

Progress comes from the shards' own results files (the source of truth:
squeue forgets finished jobs) together with squeue, and sacct where the
cluster has accounting; one line per change:
  shards: 2 done, 1 running, 0 failed, 0 pending; runs 4/6
Ctrl-C stops following and leaves the jobs running; -follow follows them
again. Exits 1 when runs failed or are missing after the merge, naming the
shards; -resubmit submits only those (failed or missing runs, no results).

OUT, its shard directories and this binary must be on a filesystem every
node shares, at the same path.

Flags:
`

func newSlurmFlags(w io.Writer) *slurmFlags {
	f := &slurmFlags{runFlags: &runFlags{}}
	f.fs = newFlagSet("slurm", w)
	fs := f.fs
	f.addExperimentFlags()
	fs.StringVar(&f.saveWeights, "save-weights", "", "each task saves its trained models to `DIR` (as run -save-weights)")
	fs.StringVar(&f.loadWeights, "load-weights", "", "each task initialises its models from `PATH` (as run -load-weights)")
	fs.IntVar(&f.shards, "shards", 0, "split the runs into `N` shards, one array task each (default: the last submission's count, else one shard per run)")
	fs.IntVar(&f.parallel, "parallel", 0, "run at most `K` array tasks at once (0: no limit)")
	fs.StringVar(&f.partition, "partition", "", "submit to `PARTITION` (several: comma-separated; default: the cluster's)")
	fs.StringVar(&f.timeLimit, "time", "", "time limit `T` of each array task (minutes, HH:MM:SS, D-HH:MM, ...; default: the partition's)")
	fs.IntVar(&f.cpus, "cpus-per-task", 0, "`C` CPUs for each array task (default: Slurm's, 1)")
	fs.StringVar(&f.mem, "mem", "", "memory `M` of each array task (512M, 4G, ...; default: the cluster's)")
	fs.Func("sbatch", "a further sbatch `OPTION` for every submission (--account=proj, --gres=gpu:1); repeatable", func(v string) error {
		if err := slurm.CheckOption(v); err != nil {
			return err
		}
		f.extra = append(f.extra, v)
		return nil
	})
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the sbatch script(s) and submit nothing (writes nothing)")
	fs.BoolVar(&f.resubmit, "resubmit", false, "submit only the shards with failed or missing runs, or no results")
	fs.BoolVar(&f.follow, "follow", false, "submit nothing: follow the last submission (OUT/slurm/submissions.json) and merge when it has ended")
	fs.BoolVar(&f.noWait, "no-wait", false, "submit, record and return without following (-follow follows later)")
	fs.DurationVar(&f.poll, "poll", 15*time.Second, "look at the jobs and the shards' results every `D`")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), slurmUsage)
		fs.PrintDefaults()
	}
	return f
}

// check reports every mistake of the flags at once, each naming its flag.
func (f *slurmFlags) check() error {
	f.set = map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, usageErrorf(format, args...)) }
	if f.set["shards"] && (f.shards < 1 || f.shards > harness.MaxShards) {
		bad("-shards: must be in 1..%d, got %d", harness.MaxShards, f.shards)
	}
	if f.parallel < 0 {
		bad("-parallel: must be at least 0 (0: no limit), got %d", f.parallel)
	}
	if f.cpus < 0 {
		bad("-cpus-per-task: must be at least 0 (0: Slurm's default), got %d", f.cpus)
	}
	for _, c := range []struct {
		name, v string
		check   func(string) error
	}{{"partition", f.partition, slurm.CheckPartition}, {"time", f.timeLimit, slurm.CheckTime}, {"mem", f.mem, slurm.CheckMem}} {
		if f.set[c.name] {
			if err := c.check(c.v); err != nil {
				bad("-%s: %v", c.name, err)
			}
		}
	}
	if f.poll < 100*time.Millisecond || f.poll > time.Hour {
		bad("-poll: must be between 100ms and 1h, got %v", f.poll)
	}
	if f.follow {
		for _, other := range []string{"resubmit", "dry-run", "no-wait"} {
			if f.set[other] {
				bad("-follow submits nothing: drop -%s", other)
			}
		}
		for _, name := range submitOnlyFlags {
			if f.set[name] {
				bad("-follow submits nothing: -%s applies to a submission; drop it", name)
			}
		}
	}
	return errors.Join(errs...)
}

// Test hooks: the binary the array tasks run, and the cluster's
// MaxArraySize.
var (
	executable   = os.Executable
	maxArraySize = slurm.MaxArraySize
)

// defaultMaxArraySize is Slurm's, assumed by -dry-run where no controller
// answers.
const defaultMaxArraySize = 1001

func cmdSlurm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newSlurmFlags(stderr)
	if done, err := parseFlags(f.fs, args); done {
		return err
	}
	f.args = args
	if err := f.check(); err != nil {
		return err
	}
	s, err := newSweep(ctx, f, stdout, stderr)
	if err != nil {
		return err
	}
	if !f.dryRun {
		if err := needClients(f.follow); err != nil {
			return err
		}
	}
	switch {
	case f.follow:
		return s.followLast(ctx)
	case f.resubmit:
		return s.resubmitIncomplete(ctx)
	}
	return s.submit(ctx, slurm.Range(s.shards), false)
}

// needClients checks that Slurm's client commands are installed: squeue to
// follow, and sbatch and scontrol besides to submit.
func needClients(followOnly bool) error {
	names := []string{"sbatch", "scontrol", "squeue"}
	if followOnly {
		names = []string{"squeue"}
	}
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return fmt.Errorf("slurm: %s is not installed here (%w): run arbench slurm where Slurm's client commands are (a cluster's login node), or use -dry-run to only print the script", n, err)
		}
	}
	return nil
}

// sweep is the experiment being run over Slurm: where it writes, its shard
// count and runs, and its record of submissions.
type sweep struct {
	f *slurmFlags
	e *harness.Experiment
	// out is the experiment's output directory, absolute; dir is out/slurm
	// and logs out/slurm/logs.
	out, dir, logs string
	shards         int
	plan           []harness.PlannedRun
	rec            *submissionsFile
	stdout, stderr io.Writer
}

// newSweep builds the experiment from the flags, reads the record of
// earlier submissions and settles the shard count (-shards, else the last
// submission's, else one shard per run), checking it against the runs.
func newSweep(ctx context.Context, f *slurmFlags, stdout, stderr io.Writer) (*sweep, error) {
	e, err := f.experiment()
	if err != nil {
		return nil, err
	}
	if f.loadWeights != "" {
		if _, err := os.Stat(f.loadWeights); err != nil {
			return nil, usageErrorf("-load-weights: %v", err)
		}
	}
	out, err := filepath.Abs(e.Out)
	if err != nil {
		return nil, fmt.Errorf("slurm: output directory %s: %w", e.Out, err)
	}
	s := &sweep{f: f, e: e, out: out, dir: filepath.Join(out, "slurm"), logs: filepath.Join(out, "slurm", "logs"), stdout: stdout, stderr: stderr}
	if s.rec, err = loadSubmissions(s.dir); err != nil {
		return nil, err
	}
	if s.shards, err = s.shardCount(ctx); err != nil {
		return nil, err
	}
	if s.plan, err = harness.PlanRuns(ctx, e, s.shards); err != nil {
		return nil, err
	}
	return s, nil
}

// shardCount is -shards, else the last submission's count, else the
// number of runs; -follow takes the submission's and refuses another.
func (s *sweep) shardCount(ctx context.Context) (int, error) {
	last := s.rec.last()
	switch {
	case s.f.follow && last == nil:
		return 0, fmt.Errorf("slurm: -follow: no submission recorded in %s: submit first (arbench slurm without -follow)", s.rec.path)
	case s.f.follow && s.f.set["shards"] && s.f.shards != last.Shards:
		return 0, usageErrorf("-shards: the last submission (%s) has %d shards, not %d; drop -shards to follow it", s.rec.path, last.Shards, s.f.shards)
	case s.f.set["shards"]:
		return s.f.shards, nil
	case last != nil:
		return last.Shards, nil
	case s.f.resubmit:
		return 0, usageErrorf("-resubmit: no submission recorded in %s: give -shards N, the count the shards were run with", s.rec.path)
	}
	runs, err := harness.PlanRuns(ctx, s.e, 1)
	if err != nil {
		return 0, err
	}
	return len(runs), nil
}

// shardDir is shard i's results directory, OUT/shards/I-of-N.
func (s *sweep) shardDir(i int) string {
	return harness.ShardDir(s.out, harness.Shard{Index: i, Count: s.shards})
}

// logFile is the log of shard i's array task (appended to by every
// submission of it).
func (s *sweep) logFile(i int) string {
	return filepath.Join(s.logs, fmt.Sprintf("task-%d.log", i))
}

// template is the sbatch script of the sweep but for its tasks.
func (s *sweep) template() (slurm.Script, error) {
	bin, err := executable()
	if err != nil {
		return slurm.Script{}, fmt.Errorf("slurm: the arbench binary's path: %w", err)
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return slurm.Script{}, fmt.Errorf("slurm: the arbench binary's path: %w", err)
	}
	if strings.Contains(bin, string(filepath.Separator)+"go-build") && !s.f.dryRun {
		return slurm.Script{}, fmt.Errorf("slurm: this arbench (%s) is a temporary `go run` build, deleted when it exits: build it (make build) where the nodes see it and run that binary", bin)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return slurm.Script{}, fmt.Errorf("slurm: working directory: %w", err)
	}
	cmd, err := s.taskCommand(bin)
	if err != nil {
		return slurm.Script{}, err
	}
	return slurm.Script{
		JobName:     "arbench-" + s.e.Name,
		Parallel:    s.f.parallel,
		Partition:   s.f.partition,
		Time:        s.f.timeLimit,
		CPUsPerTask: s.f.cpus,
		Mem:         s.f.mem,
		Output:      filepath.Join(s.logs, "slurm-%A_%a.out"),
		Workdir:     cwd,
		LogDir:      s.logs,
		Extra:       slices.Clone(s.f.extra),
		Command:     cmd,
	}, nil
}

// taskCommand is what each array task runs: this binary's `run` of shard
// $ARBENCH_TASK_ID/N with -resume and the experiment flags as given (the
// tasks run in this directory, so relative paths mean the same there).
func (s *sweep) taskCommand(bin string) (string, error) {
	args := []string{bin, "run"}
	if s.f.config != "" {
		cfg, err := filepath.Abs(s.f.config)
		if err != nil {
			return "", fmt.Errorf("slurm: -config %s: %w", s.f.config, err)
		}
		args = append(args, "-config", cfg)
	}
	cmd := "exec " + slurm.QuoteArgs(args...) + fmt.Sprintf(` -shard "$%s/%d" -resume`, slurm.TaskEnv, s.shards)
	if fw := s.forwarded(); len(fw) > 0 {
		cmd += " " + slurm.QuoteArgs(fw...)
	}
	return cmd, nil
}

// forwarded are the experiment and weights flags given, as arguments.
func (s *sweep) forwarded() []string {
	var out []string
	for _, name := range forwardedFlags {
		if s.f.set[name] {
			out = append(out, "-"+name, s.f.fs.Lookup(name).Value.String())
		}
	}
	return out
}

// hint is the arbench slurm command line that repeats this sweep in the
// given mode (-follow, -resubmit).
func (s *sweep) hint(mode string) string {
	args := []string{"arbench", "slurm", mode}
	if s.f.config != "" {
		cfg, err := filepath.Abs(s.f.config)
		if err != nil {
			cfg = s.f.config
		}
		args = append(args, "-config", cfg)
	}
	args = append(args, s.forwarded()...)
	if mode != "-follow" {
		args = append(args, "-shards", strconv.Itoa(s.shards))
		for _, name := range submitOnlyFlags {
			if s.f.set[name] && name != "sbatch" {
				args = append(args, "-"+name, s.f.fs.Lookup(name).Value.String())
			}
		}
		for _, x := range s.f.extra {
			args = append(args, "-sbatch", x)
		}
	}
	return slurm.QuoteArgs(args...)
}

// resubmitIncomplete submits the shards whose results are not complete;
// when every shard is, it only merges.
func (s *sweep) resubmitIncomplete(ctx context.Context) error {
	m, err := s.readResults(ctx)
	if err != nil {
		return fmt.Errorf("slurm: -resubmit: %w", err)
	}
	tasks := incompleteShards(s.shardStates(m))
	if len(tasks) == 0 {
		fmt.Fprintf(s.stderr, "arbench slurm: all %d shard(s) of %s are complete; nothing to resubmit\n", s.shards, s.e.Name)
		if s.f.dryRun {
			return nil
		}
		return s.finish(ctx, nil)
	}
	return s.submit(ctx, tasks, true)
}

// incompleteShards are the shards with failed or missing runs, or no
// results: those -resubmit submits.
func incompleteShards(states []harness.ShardProgress) []int {
	var out []int
	for _, p := range states {
		if p.State() != harness.ShardComplete {
			out = append(out, p.Shard.Index)
		}
	}
	return out
}

// submit plans the array of the given shards, prints it (-dry-run) or
// submits and records it, and unless -no-wait follows it and merges.
func (s *sweep) submit(ctx context.Context, tasks []int, resubmit bool) error {
	tmpl, err := s.template()
	if err != nil {
		return err
	}
	max, err := s.maxArraySize(ctx)
	if err != nil {
		return err
	}
	scripts, err := slurm.Plan(tmpl, tasks, max)
	if err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	if err := s.checkShards(ctx, tasks); err != nil {
		return err
	}
	if s.f.dryRun {
		return s.printDryRun(scripts, tasks)
	}
	if err := s.checkNothingActive(ctx); err != nil {
		return err
	}
	rec, err := s.submitAndRecord(ctx, scripts, tasks, resubmit)
	if err != nil {
		return err
	}
	if s.f.noWait {
		fmt.Fprintf(s.stderr, "not following; follow the sweep and merge it when it has ended with:\n  %s\n", s.hint("-follow"))
		return nil
	}
	return s.followAndFinish(ctx, rec)
}

// maxArraySize asks the cluster; -dry-run assumes Slurm's default where
// no controller answers.
func (s *sweep) maxArraySize(ctx context.Context) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := maxArraySize(cctx)
	switch {
	case err != nil && s.f.dryRun:
		fmt.Fprintf(s.stderr, "arbench slurm: %v; assuming Slurm's default MaxArraySize, %d\n", err, defaultMaxArraySize)
		return defaultMaxArraySize, nil
	case err != nil:
		return 0, fmt.Errorf("slurm: the cluster's MaxArraySize: %w", err)
	}
	return n, nil
}

// printDryRun writes the scripts that would be submitted, in order.
func (s *sweep) printDryRun(scripts []slurm.Script, tasks []int) error {
	for i, sc := range scripts {
		if len(scripts) > 1 {
			fmt.Fprintf(s.stdout, "# ---- submission %d of %d", i+1, len(scripts))
			if i > 0 {
				fmt.Fprintf(s.stdout, ", submitted with --dependency=afterany:<job ID of submission %d>", i)
			}
			fmt.Fprintln(s.stdout, " ----")
		}
		if err := sc.Render(s.stdout); err != nil {
			return fmt.Errorf("slurm: %w", err)
		}
	}
	fmt.Fprintf(s.stderr, "arbench slurm: dry run: shard(s) %s of %d (%d run(s)) in %d submission(s); nothing submitted or written\n",
		compressInts(tasks), s.shards, s.runsOf(tasks), len(scripts))
	return nil
}

// runsOf counts the planned runs of the given shards.
func (s *sweep) runsOf(tasks []int) int {
	n := 0
	for _, r := range s.plan {
		if slices.Contains(tasks, r.Shard) {
			n++
		}
	}
	return n
}

// compressInts writes sorted integers as ranges, "0-3,5".
func compressInts(xs []int) string {
	if len(xs) == 0 {
		return "-"
	}
	sc := slurm.Script{Tasks: xs}
	return sc.ArraySpec()
}

// checkShards refuses a submission that could not succeed: shard
// directories of another experiment, a shard being written by another
// process, and an OUT holding results the final merge would not replace.
func (s *sweep) checkShards(ctx context.Context, tasks []int) error {
	m, err := s.readResults(ctx)
	if err != nil {
		return fmt.Errorf("slurm: the shards already in %s cannot be resumed by this sweep (remove them, or choose another -out): %w", filepath.Join(s.out, "shards"), err)
	}
	if err := s.sameExperiment(m); err != nil {
		return err
	}
	states := s.shardStates(m)
	for _, i := range tasks {
		if p := states[i]; p.Running != "" {
			return fmt.Errorf("slurm: shard %s (%s) is being written by %s: wait for it, or stop it, before submitting it", p.Shard, s.shardDir(i), p.Running)
		}
	}
	return checkMergeTarget(s.out)
}

// sameExperiment refuses shard directories holding another experiment
// than this sweep's (another name, or runs with other ids: another
// configuration), which the tasks' -resume would refuse one by one.
func (s *sweep) sameExperiment(m *harness.Merged) error {
	if m == nil {
		return nil
	}
	shards := filepath.Join(s.out, "shards")
	if m.Name != s.e.Name {
		return fmt.Errorf("slurm: %s holds shards of experiment %q, not %q: remove them, or choose another -out", shards, m.Name, s.e.Name)
	}
	want := map[string]bool{}
	for _, r := range s.plan {
		want[r.ID] = true
	}
	for _, r := range m.Runs {
		if !want[r.ID] {
			return fmt.Errorf("slurm: %s holds shards of another configuration of %s (their run %s, %s, is not one of this experiment's; see arbench plan): remove them, or choose another -out",
				shards, s.e.Name, r.ID, r.Key)
		}
	}
	return nil
}

// checkMergeTarget refuses an OUT whose results a merge would not replace:
// the results of a run (not of a merge), or a file that does not load.
func checkMergeTarget(out string) error {
	path := filepath.Join(out, harness.ResultsFileName)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	rf, err := harness.LoadResults(path)
	if err != nil {
		return fmt.Errorf("slurm: the shards are merged into %s, whose results file does not load (%v): move it, or choose another -out", out, err)
	}
	if len(rf.Manifest.MergedFrom) == 0 {
		return fmt.Errorf("slurm: the shards are merged into %s, which holds the results of a run (%s), not of a merge: move them, or choose another -out", out, path)
	}
	return nil
}

// checkNothingActive refuses to submit while a task of an earlier
// submission is still queued or running: it would run a shard twice.
func (s *sweep) checkNothingActive(ctx context.Context) error {
	subs := s.rec.allSubmissions()
	if len(subs) == 0 {
		return nil
	}
	states, err := queueStates(ctx, subs)
	if err != nil {
		return fmt.Errorf("slurm: the jobs of earlier submissions (%s): %w", s.rec.path, err)
	}
	var active []string
	var ids []string
	for _, st := range states {
		if !st.state.Finished() {
			active = append(active, fmt.Sprintf("shard %d: job %s %s", st.shard, st.jobID, st.state))
			if !slices.Contains(ids, st.arrayJobID) {
				ids = append(ids, st.arrayJobID)
			}
		}
	}
	if len(active) == 0 {
		return nil
	}
	return fmt.Errorf("slurm: an earlier submission is still queued or running (%s); follow it with `%s`, or cancel it (scancel %s) before submitting again",
		strings.Join(active, ", "), s.hint("-follow"), strings.Join(ids, " "))
}

// submitAndRecord submits the scripts (chained) and records them in
// OUT/slurm, under OUT/slurm's lock; jobs it cannot record are cancelled.
func (s *sweep) submitAndRecord(ctx context.Context, scripts []slurm.Script, tasks []int, resubmit bool) (*submissionRecord, error) {
	if err := os.MkdirAll(s.logs, 0o755); err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	release, err := harness.LockOutput(s.dir)
	if err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	defer release()
	if s.rec, err = loadSubmissions(s.dir); err != nil { // as another process may have left it
		return nil, err
	}
	subs, err := slurm.SubmitAll(ctx, scripts, true)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("slurm: %w", err), s.cancel(subs))
	}
	rec, err := s.record(subs, tasks, resubmit)
	if err != nil {
		return nil, errors.Join(err, s.cancel(subs))
	}
	for _, j := range rec.Jobs {
		fmt.Fprintf(s.stderr, "arbench slurm: submitted shard(s) %s of %d of %s as job %s (array %s): %s\n",
			compressInts(j.Tasks), s.shards, s.e.Name, j.JobID, j.Array, j.Script)
	}
	fmt.Fprintf(s.stderr, "arbench slurm: logs: %s; record: %s\n", filepath.Join(s.logs, "task-I.log"), s.rec.path)
	return rec, nil
}

// cancel cancels jobs that were submitted but cannot be followed, and
// says so.
func (s *sweep) cancel(subs []slurm.Submission) error {
	if len(subs) == 0 {
		return nil
	}
	var ids []string
	for _, sub := range subs {
		ids = append(ids, sub.JobID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := slurm.Cancel(ctx, ids...); err != nil {
		return fmt.Errorf("slurm: cancelling the jobs submitted (%s): %w; cancel them by hand (scancel %s)", strings.Join(ids, ", "), err, strings.Join(ids, " "))
	}
	return fmt.Errorf("slurm: cancelled the jobs submitted (%s)", strings.Join(ids, ", "))
}
