package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"arbench/nn"
)

// RunOptions are the parts of a run that are not the experiment itself.
type RunOptions struct {
	// SaveWeights, when set, is a directory where each trained model is
	// saved as <task>-<model>-seed<N>.safetensors (see WeightsFileName).
	SaveWeights string
	// LoadWeights, when set, initialises every model from weights before
	// training: a .safetensors file used for every run, or a directory
	// searched for <task>-<model>-seed<N>.safetensors, then
	// <model>.safetensors. A run whose file is missing is an error found
	// before any work starts.
	LoadWeights string
	// Resume skips the combinations already in OUT/results.json, after
	// checking that their stored configuration is identical.
	Resume bool
	// Overwrite replaces the results already in OUT; without it (or
	// Resume) Run refuses an OUT that holds results.
	Overwrite bool
	// DataDir is the dataset cache directory passed to tasks.
	DataDir string
	// Log receives progress (bars or lines); nil is silent.
	Log io.Writer
	// Bars draws a progress bar per run on Log (for terminals) instead of
	// plain lines.
	Bars bool
	// Report renders OUT/report.md from the results after every run; nil
	// writes no report. (Package reports provides one; harness cannot import
	// it.)
	Report func(w io.Writer, rf *ResultsFile) error
	// CommandLine is recorded in the manifest; nil records os.Args.
	CommandLine []string
	// Shard, when set, runs only the runs of that shard (see Shard) and
	// writes them to ShardDir(e.Out, *Shard) instead of e.Out; the
	// manifest records the shard, and its config the experiment (with
	// e.Out), the same for every shard.
	Shard *Shard
	// Finish, when set, is called once after the last run with OUT and
	// the results, while OUT's lock is still held (the command line writes
	// the full report there). Its error is reported with the run's
	// problems; finished results are kept.
	Finish func(dir string, rf *ResultsFile) error
}

// Random streams derived from a run's seed (the PCG's second word).
const (
	batchStream   = 0x62617463685f726e // "batch_rn"
	dropoutStream = 0x64726f706f757421 // "dropout!"
)

// combo is one (task, model, seed) of the plan.
type combo struct {
	task      *TaskSpec
	model     *ModelSpec
	seed      uint64
	key       RunKey
	id        string
	config    json.RawMessage
	weightsIn string
}

// Run executes the experiment: for each task and seed it prepares the task
// once, then for each model builds, optionally loads, trains and evaluates
// it. After every finished (task, model, seed) it atomically rewrites
// OUT/results.json, OUT/samples.jsonl and OUT/report.md, so an interrupted
// run keeps what finished. A (task, model) whose training has an lr sweep
// (LRSweep) runs the sweep's trials before its first run, and every run of
// it trains with the chosen rate; each run records the slope of its
// validation loss at the end of training (ValidSlope, Convergence).
//
// Before any work, Run checks the experiment, the weights to load, the
// output directories, the stored results of a resumed run, every task (by
// preparing it) and every (task, model) pairing (capabilities, EnvChecker,
// memory), and reports every problem at once; then nothing is written. It
// holds OUT's lock (LockFileName) while it runs, refuses an OUT that already
// holds results unless opt.Resume or opt.Overwrite is set, and removes the
// temporary files a killed run left there.
//
// A run that diverges is recorded (with its curves) and the others go on; a
// run whose weights could not be saved keeps its results. Either way Run
// returns a *RunProblems after the last run. The returned ResultsFile holds
// every finished run, also when err is non-nil (e.g. after ctx was
// cancelled); it is nil when nothing finished.
func Run(ctx context.Context, e *Experiment, opt RunOptions) (rf *ResultsFile, err error) {
	var r *runner
	defer func() {
		// A bug in a plugin or task must not crash the program: what
		// finished is on disk already; report the panic as an error and
		// release the output directory.
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error (a bug; please report it): panic: %v\n%s", p, debug.Stack())
			if r != nil {
				closeTasks(r.prepared)
				r.lock.release(!r.wrote)
				if r.rf != nil {
					rf, err = r.result(), r.failure(err)
				}
			}
		}
	}()
	if opt.Resume && opt.Overwrite {
		return nil, errors.New("resume and overwrite are mutually exclusive")
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	resolved, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("resolve experiment: %w", err)
	}
	backend, err := nn.OpenBackend(e.Backend, e.Device)
	if err != nil {
		return nil, fmt.Errorf("open backend: %w", err)
	}
	plan, err := makePlan(e, opt.LoadWeights)
	if err != nil {
		return nil, err
	}
	// Sweeps are planned from the whole experiment: a shard's runs need
	// their sweeps whichever shard holds the runs of the sweep's seed.
	sweeps, err := makeSweeps(e, opt.LoadWeights)
	if err != nil {
		return nil, err
	}
	if opt.Shard != nil {
		if plan, err = selectShard(plan, *opt.Shard); err != nil {
			return nil, err
		}
		sharded := *e
		sharded.Out = ShardDir(e.Out, *opt.Shard)
		e = &sharded
	}
	r = &runner{e: e, opt: opt, backend: backend, prog: newProgress(opt.Log, opt.Bars), resultsPath: filepath.Join(e.Out, ResultsFileName),
		sweepSpecs: sweeps, sweeps: map[SweepKey]*sweepOutcome{}}
	prev, err := r.open(ctx, plan)
	if err != nil {
		return nil, err
	}
	r.start(ctx, resolved, prev, plan)
	r.total = len(plan)
	rf, err = r.run(ctx, plan)
	return rf, r.finish(err, prev == nil)
}

// start makes the results file, holding what a resumed run keeps (its
// finished runs, and its failures of runs of plan that are still to do).
func (r *runner) start(ctx context.Context, resolved json.RawMessage, prev *ResultsFile, plan []combo) {
	r.rf = &ResultsFile{Manifest: collectManifest(ctx, r.e), Results: []Result{}, Curves: []Curve{}, Runs: []RunRecord{}}
	r.rf.Manifest.Config = resolved
	r.rf.Manifest.Shard = r.opt.Shard
	r.rf.Manifest.Start = time.Now().UTC()
	if r.opt.CommandLine != nil {
		r.rf.Manifest.CommandLine = append([]string(nil), r.opt.CommandLine...)
	}
	if prev != nil && len(prev.Runs) > 0 {
		r.rf.Manifest.Start = prev.Manifest.Start
		r.rf.Manifest.Resumed = true
		r.rf.Manifest.Datasets = prev.Manifest.Datasets
		r.rf.Results = append(r.rf.Results, prev.Results...)
		r.rf.Curves = append(r.rf.Curves, prev.Curves...)
		r.rf.Series = append(r.rf.Series, prev.Series...)
		r.rf.Runs = append(r.rf.Runs, prev.Runs...)
		r.resumedSamples = true
		r.reuseSweeps(prev.LRSweeps)
	}
	if prev != nil {
		todo := map[string]bool{}
		for _, c := range plan {
			todo[c.id] = !r.done[c.key]
		}
		for _, f := range prev.Manifest.Failed {
			if todo[f.RunID] {
				r.rf.Manifest.Failed = append(r.rf.Manifest.Failed, f)
			}
		}
	}
}

// finish closes what is left open, runs opt.Finish while the lock is still
// held, releases the lock and folds the problems after finished runs into
// err (a *RunProblems when nothing else went wrong).
func (r *runner) finish(err error, fresh bool) error {
	if cerr := closeTasks(r.prepared); cerr != nil {
		r.problems = append(r.problems, cerr.Error())
	}
	r.closeSweepTask()
	if r.opt.Finish != nil && len(r.rf.Runs) > 0 {
		if ferr := r.opt.Finish(r.e.Out, r.rf); ferr != nil {
			r.problems = append(r.problems, ferr.Error())
		}
	}
	r.lock.release(!r.wrote && fresh)
	if len(r.diverged) == 0 && len(r.failed) == 0 && len(r.problems) == 0 {
		return err
	}
	rp := &RunProblems{Total: r.total, Diverged: r.diverged, Failed: r.failed, Problems: r.problems}
	if err != nil {
		return fmt.Errorf("%w; besides, %v", err, rp)
	}
	return rp
}

// open takes the output directory's lock, reads what a resumed run keeps
// and runs the preflight checks, reporting every problem at once. On
// failure it releases the lock and leaves nothing behind.
func (r *runner) open(ctx context.Context, plan []combo) (*ResultsFile, error) {
	var errs ConfigErrors
	add := func(path string, err error) { errs = append(errs, &ConfigError{Path: path, Msg: err.Error()}) }
	lock, err := lockOutput(r.e.Out)
	if errors.Is(err, ErrOutputInUse) {
		return nil, err
	}
	r.lock = lock
	var prev *ResultsFile
	if err != nil {
		add("out", err)
	} else {
		if err := removeStaleTemps(r.e.Out); err != nil {
			add("out", err)
		}
		if err := checkOutput(r.e, r.opt); err != nil {
			add("out", err)
		} else if r.opt.Resume {
			if prev, err = loadForResume(r.resultsPath, plan, r.opt.Shard); err != nil {
				add("-resume", errors.New(strings.TrimPrefix(err.Error(), "resume: ")))
			}
		}
	}
	r.done = map[RunKey]bool{}
	if prev != nil {
		for _, run := range prev.Runs {
			r.done[run.Key()] = true
		}
	}
	var pending []combo
	for _, c := range plan {
		if !r.done[c.key] {
			pending = append(pending, c)
		}
	}
	r.prepared, err = preflight(ctx, r.e, pending, r.opt, r.backend)
	if err != nil {
		var ce ConfigErrors
		if !errors.As(err, &ce) {
			r.lock.release(true)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted: %w; no run finished; nothing was written", err)
			}
			return nil, err
		}
		errs = append(errs, ce...)
	}
	if len(errs) > 0 {
		if err := closeTasks(r.prepared); err != nil {
			add("tasks", err)
		}
		r.lock.release(true)
		return nil, errs
	}
	return prev, nil
}

// RunProblems is Run's error when every run was attempted but some diverged
// or finished with a problem (weights not saved, a Close failing). Their
// results, when they have any, are in the results file.
type RunProblems struct {
	// Total is the number of runs of the experiment.
	Total int
	// Diverged describes each run stopped by a non-finite loss or gradient.
	Diverged []string
	// Failed describes each run that failed (its model's error: a plugin
	// that crashed, a Setup that failed). It is not recorded, so -resume
	// runs it again; the other runs went on.
	Failed []string
	// Problems describes every other failure after a run finished.
	Problems []string
}

func (p *RunProblems) Error() string {
	var parts []string
	if n := len(p.Diverged); n > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d runs diverged: %s", n, p.Total, strings.Join(p.Diverged, "; ")))
	}
	if n := len(p.Failed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d runs failed (not recorded; -resume runs them again): %s", n, p.Total, strings.Join(p.Failed, "; ")))
	}
	if len(p.Problems) > 0 {
		parts = append(parts, strings.Join(p.Problems, "; "))
	}
	return strings.Join(parts, "; ")
}

type runner struct {
	e           *Experiment
	opt         RunOptions
	backend     nn.Backend
	prog        progress
	rf          *ResultsFile
	resultsPath string
	done        map[RunKey]bool
	// wrote says results were written by this invocation (samples.jsonl is
	// then appended to instead of started afresh).
	wrote bool
	// resumedSamples says samples.jsonl holds lines of resumed runs to keep.
	resumedSamples bool
	total          int
	// prepared holds the tasks preflight prepared, for their first seed.
	prepared map[preparedKey]Task
	// lock is the output directory's lock, held from open to finish.
	lock *outputLock
	// sweepSpecs are the planned lr sweeps; sweeps their outcomes so far
	// (run or reused), and sweepTask the task prepared for a sweep's seed
	// when no run of the group uses it (see sweepTaskFor).
	sweepSpecs map[SweepKey]combo
	sweeps     map[SweepKey]*sweepOutcome
	sweepTask  struct {
		spec *TaskSpec
		seed uint64
		task Task
	}
	// diverged and problems are reported by Run after the last run.
	diverged []string
	failed   []string
	problems []string
}

func (r *runner) run(ctx context.Context, plan []combo) (*ResultsFile, error) {
	kept := len(r.done)
	if kept == r.total && kept > 0 {
		r.logf("all %d runs of %s are already in %s; nothing to do", kept, r.e.Name, r.resultsPath)
		return r.rf, nil
	}
	if kept > 0 {
		reused := ""
		if n := len(r.sweeps); n > 0 {
			reused = fmt.Sprintf(", %d lr sweep(s) recorded", n)
		}
		r.logf("resuming %s: %d of %d runs already done%s", r.e.Name, kept, r.total, reused)
	}
	// Group the plan by (task, seed): each task is prepared once per seed.
	for i := 0; i < len(plan); {
		j := i
		for j < len(plan) && plan[j].task == plan[i].task && plan[j].seed == plan[i].seed {
			j++
		}
		group := plan[i:j]
		i = j
		pending := group[:0:0]
		for _, c := range group {
			if !r.done[c.key] {
				pending = append(pending, c)
			}
		}
		if len(pending) == 0 {
			continue
		}
		if r.sweepTask.spec != pending[0].task {
			r.closeSweepTask() // the plan is done with that task
		}
		if err := r.runGroup(ctx, pending); err != nil {
			return r.result(), r.failure(err)
		}
	}
	return r.rf, nil
}

// result returns the results file when something is in it.
func (r *runner) result() *ResultsFile {
	if len(r.rf.Runs) == 0 {
		return nil
	}
	return r.rf
}

// failure describes what an aborted run kept.
func (r *runner) failure(err error) error {
	n := len(r.rf.Runs)
	var kept string
	switch {
	case n == 0:
		kept = "no run finished; nothing was written"
	case !r.wrote:
		kept = fmt.Sprintf("%s is unchanged (%d runs)", r.resultsPath, n)
	default:
		kept = fmt.Sprintf("kept %d finished run(s) of %d in %s", n, r.total, r.resultsPath)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("interrupted: %w; %s", err, kept)
	}
	return fmt.Errorf("%w; %s", err, kept)
}

func (r *runner) logf(format string, args ...any) {
	if r.opt.Log != nil {
		fmt.Fprintf(r.opt.Log, format+"\n", args...)
	}
}

// runGroup prepares one task for one seed (or takes the one preflight
// prepared) and runs the pending models on it.
func (r *runner) runGroup(ctx context.Context, group []combo) error {
	spec, seed := group[0].task, group[0].seed
	task, ok := r.prepared[preparedKey{spec, seed}]
	if ok {
		delete(r.prepared, preparedKey{spec, seed})
	} else {
		var err error
		if task, err = prepareTask(ctx, spec, seed, r.opt.DataDir); err != nil {
			return err
		}
	}
	defer func() {
		if err := closeTask(task); err != nil {
			r.problems = append(r.problems, err.Error())
		}
	}()
	info := task.Info()
	for _, c := range group {
		out, err := r.runOne(ctx, c, task, info)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s discarded: %w", c.key, ctx.Err())
			}
			// This run fails; the others go on.
			r.failRun(c, err)
			continue
		}
		if err := r.record(c, task, out); err != nil {
			return err
		}
	}
	return nil
}

// failRun records a run that failed: Run reports it after the last run,
// and the manifest lists it (Manifest.Failed) until it is recorded. When
// the results file holds runs already it is rewritten at once, so that
// `arbench merge` sees the failure while the experiment goes on.
func (r *runner) failRun(c combo, err error) {
	r.failed = append(r.failed, fmt.Sprintf("%s: %v", c.key, err))
	r.logf("%s failed: %v", c.key, err)
	f := FailedRun{RunID: c.id, Task: c.key.Task, Model: c.key.Model, Seed: c.key.Seed, Error: err.Error()}
	r.rf.Manifest.Failed = append(withoutRun(r.rf.Manifest.Failed, c.id), f)
	r.rewrite(fmt.Sprintf("%s: recording the failure", c.key))
}

// rewrite writes the results file again when it holds runs (nothing is
// written before a run finishes), so that what changed besides runs (a
// failure, an lr sweep) is on disk while the experiment goes on. A write
// error is reported after the last run, under what.
func (r *runner) rewrite(what string) {
	if len(r.rf.Runs) == 0 {
		return
	}
	next := *r.rf
	next.Manifest.End = time.Now().UTC()
	if err := next.Write(r.resultsPath); err != nil {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v", what, err))
		return
	}
	*r.rf = next
}

// withoutRun returns a new list of the failures in fs of runs other than id.
func withoutRun(fs []FailedRun, id string) []FailedRun {
	var out []FailedRun
	for _, f := range fs {
		if f.RunID != id {
			out = append(out, f)
		}
	}
	return out
}

// runOutput is what one finished run produced.
type runOutput struct {
	rec     RunRecord
	results []Result
	curves  []Curve
	series  []SeriesRecord
	samples []Sample
}

// record adds a finished run and rewrites the output files.
func (r *runner) record(c combo, task Task, out runOutput) error {
	lines, err := encodeSamples(c.key, out.samples)
	if err != nil {
		return err
	}
	// The new state is committed to r.rf only once both files hold it, so
	// what the caller reports and renders is what is on disk.
	next := *r.rf
	next.Runs = append(r.rf.Runs[:len(r.rf.Runs):len(r.rf.Runs)], out.rec)
	next.Results = append(r.rf.Results[:len(r.rf.Results):len(r.rf.Results)], out.results...)
	next.Curves = append(r.rf.Curves[:len(r.rf.Curves):len(r.rf.Curves)], out.curves...)
	next.Series = append(r.rf.Series[:len(r.rf.Series):len(r.rf.Series)], out.series...)
	next.Manifest.Datasets = mergeDatasets(append([]DatasetRef(nil), r.rf.Manifest.Datasets...), task.Datasets())
	next.Manifest.End = time.Now().UTC()
	next.Manifest.Complete = len(r.done)+1 == r.total
	next.Manifest.Failed = withoutRun(r.rf.Manifest.Failed, c.id)

	// samples.jsonl first: a crash before results.json is rewritten leaves
	// extra lines that the next -resume drops, never missing ones.
	if err := os.MkdirAll(r.e.Out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	samplesPath := filepath.Join(r.e.Out, SamplesFileName)
	var keep func(RunKey) bool
	fresh := !r.wrote && !r.resumedSamples
	if !r.wrote && r.resumedSamples {
		stored := map[RunKey]bool{}
		for _, run := range r.rf.Runs {
			stored[run.Key()] = true
		}
		keep = func(k RunKey) bool { return stored[k] }
	}
	if err := appendSamples(samplesPath, fresh, keep, lines); err != nil {
		return err
	}
	if err := next.Write(r.resultsPath); err != nil {
		return err
	}
	*r.rf = next
	r.done[c.key] = true
	r.wrote = true
	if r.opt.Report != nil {
		if err := WriteFileAtomic(filepath.Join(r.e.Out, ReportFileName), func(w io.Writer) error {
			return r.opt.Report(w, r.rf)
		}); err != nil {
			// results.json is written; the report can be rendered again
			// with `arbench report`, so the experiment goes on.
			r.problems = append(r.problems, fmt.Sprintf("%s: report: %v", c.key, err))
		}
	}
	return nil
}

func mergeDatasets(have, add []DatasetRef) []DatasetRef {
	for _, d := range add {
		dup := false
		for _, h := range have {
			if h == d {
				dup = true
				break
			}
		}
		if !dup {
			have = append(have, d)
		}
	}
	return have
}

// runOne builds, trains and evaluates one model. The model is closed
// however the run ends (also after a failed Setup); a Close error is
// reported after the last run, the run itself is kept.
func (r *runner) runOne(ctx context.Context, c combo, task Task, info TaskInfo) (out runOutput, err error) {
	ms := c.model
	out.rec = RunRecord{RunID: c.id, Model: ms.Label, Task: c.key.Task, Seed: c.seed, TaskInfo: info, Config: c.config, Started: time.Now().UTC()}
	// The sweep (when the model has one) runs before the run's model is
	// built, so that only one instance is alive at a time.
	cfg, err := r.trainConfig(ctx, c, task)
	if err != nil {
		return out, err
	}
	m, err := NewModel(ms.Name)
	if err != nil {
		return out, err
	}
	defer func() {
		if cerr := closeModel(m); cerr != nil {
			r.problems = append(r.problems, fmt.Sprintf("%s: %v", c.key, cerr))
		}
	}()
	if err := r.setup(ctx, c, m, info, &out.rec); err != nil {
		return out, err
	}
	tr, _ := m.(Trainer)
	trainable := Trainable(m)
	steps := ms.Train.Steps
	if !trainable {
		steps = 0
		out.rec.Note = "no Trainer: evaluated untrained"
	}
	evalUnits := 1
	nValid := 0
	if trainable {
		nValid = validCount(ms.Train)
	}
	total := func() int { return steps + (nValid+1)*evalUnits }
	desc := fmt.Sprintf("[%d/%d] %s", len(r.done)+1, r.total, c.key)
	r.prog.begin(desc, total())
	defer func() {
		if err != nil {
			if ctx.Err() != nil {
				r.prog.end("interrupted; discarded")
			} else {
				r.prog.end("failed")
			}
		}
	}()

	var evalTime time.Duration
	var initial *Evaluation
	if ie, ok := task.(InitialEvaluator); ok {
		t0 := time.Now()
		initial, err = ie.EvaluateInitial(ctx, m)
		evalTime += time.Since(t0)
		if err != nil {
			return out, fmt.Errorf("evaluate before training: %w", err)
		}
	}
	if trainable {
		st := &trainState{r: r, cfg: cfg, seed: c.seed, m: m, tr: tr, task: task, total: total, evalUnits: &evalUnits}
		st.train = &Curve{Model: ms.Label, Task: c.key.Task, Seed: c.seed, Name: CurveTrainLoss, Unit: "nats/token", Steps: []int{}, Values: []Number{}}
		st.valid = &Curve{Model: ms.Label, Task: c.key.Task, Seed: c.seed, Name: CurveValidLoss, Unit: "nats/token", Steps: []int{}, Values: []Number{}}
		err := st.loop(ctx, steps)
		evalTime += st.evalTime
		st.fill(&out.rec, c.weightsIn != "")
		out.curves = append(out.curves, *st.train)
		if !st.noValid {
			out.curves = append(out.curves, *st.valid)
		}
		if steps > 0 {
			out.rec.LR = cfg.LR
		}
		if err != nil {
			var d *divergedError
			if !errors.As(err, &d) {
				return out, err
			}
			out.rec.Note = d.Error()
			if initial != nil {
				// What was measured before training still holds.
				out.results, out.series = r.collect(c, initial)
				out.samples = initial.Samples
			}
			out.rec.EvalSeconds = evalTime.Seconds()
			out.rec.Finished = time.Now().UTC()
			r.prog.end(d.Error())
			r.diverged = append(r.diverged, fmt.Sprintf("%s %s", c.key, d.Error()))
			return out, nil
		}
		if steps > 0 {
			out.rec.ValidSlope = st.validSlope()
		}
	}

	t0 := time.Now()
	ev, err := task.Evaluate(ctx, m)
	evalTime += time.Since(t0)
	if err != nil {
		return out, fmt.Errorf("evaluate: %w", err)
	}
	r.prog.add(evalUnits)
	out.rec.EvalSeconds = evalTime.Seconds()
	if initial != nil {
		ev = &Evaluation{
			Metrics: append(slices.Clip(initial.Metrics), ev.Metrics...),
			Series:  append(slices.Clip(initial.Series), ev.Series...),
			Samples: append(slices.Clip(initial.Samples), ev.Samples...),
		}
	}
	out.results, out.series = r.collect(c, ev)
	out.samples = ev.Samples
	if _, own := m.(WeightsIO); r.opt.SaveWeights != "" && (own || m.Params() != nil) {
		path, err := r.saveWeights(ctx, c, m, info)
		if err != nil {
			// The run trained and evaluated: keep it, report the failure.
			out.rec.Note = strings.TrimPrefix(out.rec.Note+"; weights not saved: "+err.Error(), "; ")
			r.problems = append(r.problems, fmt.Sprintf("%s: %v (its results are kept)", c.key, err))
		} else {
			out.rec.WeightsOut = path
		}
	}
	out.rec.Finished = time.Now().UTC()
	r.prog.end(summary(info, out.results, out.rec))
	return out, nil
}

// setup configures m, sets it up for the task and loads its weights.
func (r *runner) setup(ctx context.Context, c combo, m Model, info TaskInfo, rec *RunRecord) error {
	if err := copyConfig(m.Config(), c.model.Config); err != nil {
		return fmt.Errorf("model %s: %w", c.model.Name, err)
	}
	if err := m.Setup(ctx, runEnv(c, info, r.backend, m)); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if c.weightsIn != "" {
		if err := loadWeights(ctx, m, c.weightsIn); err != nil {
			return err
		}
		rec.WeightsIn = c.weightsIn
	}
	rec.Info = m.Info()
	rec.Info.Nondeterministic = Nondeterministic(m)
	rec.Params = rec.Info.Params
	if ps := m.Params(); ps != nil {
		rec.Params = ps.Count()
	}
	return nil
}

// loadWeights initialises m from the weights file at path: through the
// model's own WeightsIO, else its Params() as safetensors.
func loadWeights(ctx context.Context, m Model, path string) error {
	if w, ok := m.(WeightsIO); ok {
		if err := w.LoadWeights(ctx, path); err != nil {
			return fmt.Errorf("load weights %s: %w", path, err)
		}
		return nil
	}
	ps := m.Params()
	if ps == nil {
		return fmt.Errorf("load weights %s: model has no parameters", path)
	}
	if err := nn.LoadSafetensors(path, ps); err != nil {
		return fmt.Errorf("load weights %s: %w", path, err)
	}
	return nil
}

// collect turns an evaluation into result and series records.
func (r *runner) collect(c combo, ev *Evaluation) ([]Result, []SeriesRecord) {
	var results []Result
	for _, mt := range ev.Metrics {
		var params map[string]any
		if mt.Params != nil {
			params = sanitize(mt.Params).(map[string]any)
		}
		results = append(results, Result{Model: c.model.Label, Task: c.key.Task, Metric: mt.Name, Value: Number(mt.Value),
			Unit: mt.Unit, Seed: c.seed, Split: mt.Split, Params: params, CI: mt.CI})
	}
	var series []SeriesRecord
	for _, sr := range ev.Series {
		if sr.Params != nil {
			sr.Params = sanitize(sr.Params).(map[string]any)
		}
		series = append(series, SeriesRecord{Model: c.model.Label, Task: c.key.Task, Seed: c.seed, Series: sr})
	}
	return results, series
}

// validCount is the number of validation measurements of a training run.
func validCount(c TrainConfig) int {
	n := 1 // after the last step
	if c.EvalEvery > 0 && c.Steps > 0 {
		n += (c.Steps - 1) / c.EvalEvery
	}
	return n
}

func summary(info TaskInfo, results []Result, rec RunRecord) string {
	var parts []string
	for _, res := range results {
		if res.Metric == info.HeadlineMetric {
			parts = append(parts, fmt.Sprintf("%s %.4f", res.Metric, float64(res.Value)))
			break
		}
	}
	if rec.Steps > 0 {
		parts = append(parts, fmt.Sprintf("trained %d steps in %.1fs (%.0f tok/s)", rec.Steps, rec.TrainSeconds, rec.TokensPerSec))
	}
	parts = append(parts, fmt.Sprintf("eval %.1fs", rec.EvalSeconds))
	return "done: " + strings.Join(parts, ", ")
}

// saveWeights writes the model's parameters (through its WeightsIO when it
// has one) with metadata that `arbench
// generate` reads back: the model family and label, the task, seed,
// vocabulary size, window length and the run's resolved configuration.
func (r *runner) saveWeights(ctx context.Context, c combo, m Model, info TaskInfo) (string, error) {
	if err := os.MkdirAll(r.opt.SaveWeights, 0o755); err != nil {
		return "", fmt.Errorf("save weights: %w", err)
	}
	path := filepath.Join(r.opt.SaveWeights, WeightsFileName(c.key.Task, c.model.Label, c.seed))
	meta := map[string]string{
		"arbench_version": Version,
		"model":           c.model.Label,
		"family":          c.model.Name,
		"task":            c.key.Task,
		"seed":            fmt.Sprint(c.seed),
		"vocab":           fmt.Sprint(info.Vocab),
		"seq_len":         fmt.Sprint(info.SeqLen),
		"config":          string(c.config),
	}
	var err error
	if w, ok := m.(WeightsIO); ok {
		err = w.SaveWeights(ctx, path, meta)
	} else {
		err = nn.SaveSafetensors(path, m.Params(), meta)
	}
	if err != nil {
		return "", fmt.Errorf("save weights %s: %w", path, err)
	}
	return path, nil
}

// divergedError stops a run whose loss or gradient norm is not finite. The
// run is recorded (with its curves and a note) but not evaluated.
type divergedError struct {
	step int
	what string
	v    float64
}

func (d *divergedError) Error() string { return d.event() + "; not evaluated" }

// event says where and how the run diverged.
func (d *divergedError) event() string {
	return fmt.Sprintf("%s %d (%s %v)", divergedNote, d.step, d.what, d.v)
}

// divergedNote starts the note of a run that diverged (RunRecord.Note).
const divergedNote = "diverged at step"

// Diverged reports whether the run was stopped by a non-finite loss or
// gradient norm (recorded without metrics).
func (r RunRecord) Diverged() bool { return strings.HasPrefix(r.Note, divergedNote) }

// trainState is one training loop.
type trainState struct {
	r *runner
	// cfg is the training configuration: the model's, with the learning
	// rate its sweep chose, or a sweep trial's.
	cfg       TrainConfig
	seed      uint64
	m         Model
	tr        Trainer
	task      Task
	train     *Curve
	valid     *Curve
	total     func() int
	evalUnits *int

	step      int
	tokens    int64
	trainTime time.Duration
	evalTime  time.Duration
	validDone bool
	// noValid is set when the task has no validation loss for the model
	// (ErrNoValidLoss): validation is skipped from then on.
	noValid bool
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// fill records the training loop's counts in rec.
func (s *trainState) fill(rec *RunRecord, loaded bool) {
	rec.Steps, rec.TrainTokens = s.step, s.tokens
	rec.TrainSeconds = s.trainTime.Seconds()
	if rec.TrainSeconds > 0 {
		rec.TokensPerSec = float64(rec.TrainTokens) / rec.TrainSeconds
	}
	rec.Trained = s.step > 0 || loaded
}

// loop runs steps optimiser steps: batch from the task's sampler, then the
// model's own step (StepTrainer) or gradients with a per-step dropout
// seed, global-norm clipping and Adam with warmup (Trainer).
func (s *trainState) loop(ctx context.Context, steps int) error {
	cfg := s.cfg
	own, owns := s.m.(StepTrainer)
	var opt *nn.Adam
	if steps > 0 && !owns {
		ps := s.m.Params()
		if ps == nil || len(ps.List()) == 0 {
			return errors.New("train: model has no parameters")
		}
		opt = nn.NewAdam(ps, cfg.Adam())
	}
	batchRNG := rand.New(rand.NewPCG(s.seed, batchStream))
	dropRNG := rand.New(rand.NewPCG(s.seed, dropoutStream))
	var window float64
	var inWindow int
	for step := 1; step <= steps; step++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		b, err := BatchFor(s.m, s.task.TrainBatch(batchRNG, cfg.Batch))
		if err != nil {
			return fmt.Errorf("train step %d: %w", step, err)
		}
		info := StepInfo{Step: step, LR: cfg.LRAt(step), Clip: cfg.Clip, Seed: dropRNG.Uint64()}
		var loss float64
		if owns {
			loss, err = own.TrainStep(ctx, b, info)
		} else {
			loss, err = s.gradientStep(ctx, b, info, opt)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var d *divergedError
			if errors.As(err, &d) {
				return err
			}
			if errors.Is(err, ErrDiverged) {
				return &divergedError{step, "training loss", math.NaN()}
			}
			return fmt.Errorf("train step %d: %w", step, err)
		}
		if !finite(loss) {
			return &divergedError{step, "training loss", loss}
		}
		s.trainTime += time.Since(t0)
		s.step = step
		s.tokens += int64(b.Positions())
		window += loss
		inWindow++
		if step%cfg.LogEvery == 0 || step == steps {
			s.train.Steps = append(s.train.Steps, step)
			s.train.Values = append(s.train.Values, Number(window/float64(inWindow)))
			window, inWindow = 0, 0
		}
		s.r.prog.add(1)
		if cfg.EvalEvery > 0 && step%cfg.EvalEvery == 0 && step < steps {
			if err := s.validate(ctx); err != nil {
				return err
			}
		}
	}
	return s.validate(ctx)
}

// gradientStep is a Trainer's step: its gradients, the global-norm clip
// and an Adam step at the step's learning rate. A non-finite loss or
// gradient norm is a *divergedError.
func (s *trainState) gradientStep(ctx context.Context, b Batch, info StepInfo, opt *nn.Adam) (float64, error) {
	loss, err := s.tr.Gradients(ctx, b, info.Seed)
	if err != nil {
		return 0, err
	}
	if !finite(loss) {
		return 0, &divergedError{info.Step, "training loss", loss}
	}
	if info.Clip > 0 {
		if norm := nn.ClipGradNorm(s.m.Params(), info.Clip); !finite(norm) {
			return 0, &divergedError{info.Step, "gradient norm", norm}
		}
	}
	opt.SetLR(info.LR)
	opt.Step()
	return loss, nil
}

// validate measures the validation loss at the current step.
func (s *trainState) validate(ctx context.Context) error {
	if s.noValid {
		return nil
	}
	t0 := time.Now()
	vl, err := s.task.ValidLoss(ctx, s.m)
	d := time.Since(t0)
	s.evalTime += d
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrNoValidLoss) {
			s.noValid = true
			return nil
		}
		return fmt.Errorf("validation loss at step %d: %w", s.step, err)
	}
	s.valid.Steps = append(s.valid.Steps, s.step)
	s.valid.Values = append(s.valid.Values, Number(vl))
	if !s.validDone && s.step > 0 {
		// Re-estimate an evaluation's cost in steps from the first timing.
		s.validDone = true
		perStep := s.trainTime / time.Duration(s.step)
		if perStep > 0 {
			*s.evalUnits = max(1, int(d/perStep))
			s.r.prog.setTotal(s.total())
		}
	}
	s.r.prog.add(*s.evalUnits)
	last := Number(math.NaN())
	if n := len(s.train.Values); n > 0 {
		last = s.train.Values[n-1]
	}
	s.r.prog.status("step %d/%d train %.4f valid %.4f nats/token", s.step, s.cfg.Steps, float64(last), vl)
	if !finite(vl) {
		return &divergedError{s.step, "validation loss", vl}
	}
	return nil
}

// WeightsFileName is the file name a run's weights are saved under:
// <task>-<model>-seed<N>.safetensors, with the task name's characters other
// than letters, digits, '.', '_' and '-' replaced by '_'.
func WeightsFileName(task, model string, seed uint64) string {
	return fmt.Sprintf("%s-%s-seed%d.safetensors", safeFileName(task), model, seed)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeFileName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// makePlan lists the combinations in execution order (task, seed, model)
// with their resolved configuration and weights to load.
func makePlan(e *Experiment, loadWeights string) ([]combo, error) {
	var plan []combo
	var errs ConfigErrors
	find, err := weightsFinder(loadWeights)
	if err != nil {
		return nil, err
	}
	for ti := range e.Tasks {
		for _, seed := range e.Seeds {
			for mi := range e.Models {
				c, err := newCombo(e, &e.Tasks[ti], &e.Models[mi], seed, find)
				var ce *ConfigError
				if errors.As(err, &ce) {
					errs = append(errs, ce)
					continue
				}
				if err != nil {
					return nil, err
				}
				plan = append(plan, c)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return plan, nil
}

// newCombo makes the combination of a task, model and seed: its key,
// weights to load (find), resolved configuration and id. Missing weights
// are a *ConfigError.
func newCombo(e *Experiment, task *TaskSpec, model *ModelSpec, seed uint64, find func(RunKey) (string, error)) (combo, error) {
	c := combo{task: task, model: model, seed: seed}
	c.key = RunKey{Task: task.Label(), Model: model.Label, Seed: seed}
	var err error
	if c.weightsIn, err = find(c.key); err != nil {
		return c, err
	}
	cfg, err := json.Marshal(struct {
		Task        TaskSpec  `json:"task"`
		Model       ModelSpec `json:"model"`
		Seed        uint64    `json:"seed"`
		Backend     string    `json:"backend"`
		Device      string    `json:"device"`
		LoadWeights string    `json:"load_weights,omitempty"`
	}{*task, *model, seed, e.Backend, e.Device, c.weightsIn})
	if err != nil {
		return c, fmt.Errorf("resolve %s: %w", c.key, err)
	}
	c.config = cfg
	if c.id, err = RunID(c.key, cfg); err != nil {
		return c, err
	}
	return c, nil
}

// weightsFinder returns the lookup of the weights file each run loads
// with -load-weights (RunOptions.LoadWeights): none without it, the file
// itself, or in a directory <task>-<model>-seed<N>.safetensors, then
// <model>.safetensors, a *ConfigError when neither exists.
func weightsFinder(loadWeights string) (func(RunKey) (string, error), error) {
	if loadWeights == "" {
		return func(RunKey) (string, error) { return "", nil }, nil
	}
	st, err := os.Stat(loadWeights)
	if err != nil {
		return nil, fmt.Errorf("load weights: %w", err)
	}
	if !st.IsDir() {
		return func(RunKey) (string, error) { return loadWeights, nil }, nil
	}
	return func(k RunKey) (string, error) {
		cands := []string{
			filepath.Join(loadWeights, WeightsFileName(k.Task, k.Model, k.Seed)),
			filepath.Join(loadWeights, k.Model+".safetensors"),
		}
		for _, p := range cands {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", &ConfigError{Path: "-load-weights", Msg: fmt.Sprintf("no weights for %s: neither %s nor %s exists", k, cands[0], cands[1])}
	}, nil
}

// loadForResume reads the stored results and checks they belong to this
// experiment (and shard, which must be the stored one): every stored run
// must be one of the plan's combinations with an identical resolved
// configuration. A missing file resumes nothing.
func loadForResume(path string, plan []combo, shard *Shard) (*ResultsFile, error) {
	rf, err := LoadResults(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	if have, want := describeShard(rf.Manifest.Shard), describeShard(shard); have != want {
		return nil, fmt.Errorf("cannot resume %s: it holds the results of %s, not of %s; use another output directory, or -overwrite to start over",
			path, have, want)
	}
	part := "this experiment"
	if shard != nil {
		part = "shard " + shard.String() + " of this experiment"
	}
	byKey := map[RunKey]combo{}
	for _, c := range plan {
		byKey[c.key] = c
	}
	var problems []string
	for _, run := range rf.Runs {
		c, ok := byKey[run.Key()]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is stored but not part of %s", run.Key(), part))
			continue
		}
		if diff, err := configDiff(run.Config, c.config); err != nil {
			return nil, fmt.Errorf("resume: %s: %w", run.Key(), err)
		} else if diff != "" {
			problems = append(problems, fmt.Sprintf("%s was run with a different configuration (%s)", run.Key(), diff))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("cannot resume %s: %s; use another output directory, or -overwrite to start over",
			path, strings.Join(problems, "; "))
	}
	return rf, nil
}

// describeShard names the part of an experiment a results file holds.
func describeShard(s *Shard) string {
	if s == nil {
		return "a whole experiment (no -shard)"
	}
	return "shard " + s.String()
}
