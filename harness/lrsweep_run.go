package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// sweepOutcome is what the lr sweep of a (task, model) decided for its
// runs.
type sweepOutcome struct {
	// rec is the sweep; nil when none ran (the model has no Trainer).
	rec *LRSweepRecord
	// err fails the model's runs: the sweep failed, or every trial
	// diverged.
	err error
}

// makeSweeps plans the lr sweep of every (task, model) whose training has
// one and trains (train.steps > 0): the combination of the sweep's seed,
// whose resolved configuration identifies the sweep (LRSweepRecord.Config).
// Weights to load are looked up as for runs (weightsFinder); a sweep
// without them is a ConfigErrors problem.
func makeSweeps(e *Experiment, loadWeights string) (map[SweepKey]combo, error) {
	find, err := weightsFinder(loadWeights)
	if err != nil {
		return nil, err
	}
	out := map[SweepKey]combo{}
	var errs ConfigErrors
	for ti := range e.Tasks {
		for mi := range e.Models {
			ms := &e.Models[mi]
			if ms.Train.LRSweep == nil || ms.Train.Steps <= 0 {
				continue
			}
			c, err := newCombo(e, &e.Tasks[ti], ms, ms.Train.LRSweep.Seed, find)
			var ce *ConfigError
			if errors.As(err, &ce) {
				ce.Msg = "the lr sweep's trials (seed " + fmt.Sprint(c.seed) + ") need weights too: " + ce.Msg
				errs = append(errs, ce)
				continue
			}
			if err != nil {
				return nil, err
			}
			out[SweepKey{c.key.Task, ms.Label}] = c
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// trainConfig returns the training configuration of c's run: its model's,
// with the learning rate its sweep chose when it has one. The sweep runs
// on the run's first need of it (task is c's prepared task); its failure
// is every run's of the (task, model), an interruption none's.
func (r *runner) trainConfig(ctx context.Context, c combo, task Task) (TrainConfig, error) {
	cfg := c.model.Train
	key := SweepKey{c.key.Task, c.model.Label}
	spec, ok := r.sweepSpecs[key]
	if !ok {
		return cfg, nil
	}
	out := r.sweeps[key]
	if out == nil {
		var err error
		if out, err = r.sweep(ctx, spec, c, task); err != nil {
			return cfg, err
		}
		r.sweeps[key] = out
	}
	if out.err != nil {
		return cfg, out.err
	}
	if out.rec != nil {
		cfg.LR = out.rec.Chosen
	}
	return cfg, nil
}

// sweep runs the trials of spec's sweep, chooses the rate, logs and
// records the sweep. Its error is an interruption (ctx); every other
// failure is the outcome's.
func (r *runner) sweep(ctx context.Context, spec, c combo, task Task) (*sweepOutcome, error) {
	sweepTask, err := r.sweepTaskFor(ctx, spec, c, task)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &sweepOutcome{err: fmt.Errorf("lr sweep: %w", err)}, nil
	}
	sw := spec.model.Train.LRSweep
	rec := &LRSweepRecord{Task: spec.key.Task, Model: spec.key.Model, Seed: spec.seed, Steps: sw.TrialSteps(spec.model.Train.Steps),
		InitialValidLoss: Number(math.NaN()), Trials: []LRTrial{}, Config: spec.config, Nondeterministic: !DefaultTolerance(r.backend).Exact()}
	for i, lr := range sw.LRs {
		t, trainable, err := r.trial(ctx, spec, sweepTask, rec, i)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return &sweepOutcome{err: fmt.Errorf("lr sweep, trial at lr %v: %w", lr, err)}, nil
		}
		if !trainable {
			return &sweepOutcome{}, nil // nothing trains, so there is nothing to choose
		}
		rec.Trials = append(rec.Trials, t)
	}
	err = rec.choose()
	r.logf("%s", rec.summary())
	r.rf.LRSweeps = append(withoutSweep(r.rf.LRSweeps, rec.Key()), *rec)
	r.rewrite("recording the lr sweep of " + rec.Key().String())
	return &sweepOutcome{rec: rec, err: err}, nil
}

// withoutSweep returns a new list of the sweeps in ss other than key's.
func withoutSweep(ss []LRSweepRecord, key SweepKey) []LRSweepRecord {
	var out []LRSweepRecord
	for _, s := range ss {
		if s.Key() != key {
			out = append(out, s)
		}
	}
	return out
}

// sweepTaskFor returns the task prepared for the sweep's seed: c's own
// when c runs with it, else one prepared for the sweep (kept for the
// task's other models until the runner moves on to another task).
func (r *runner) sweepTaskFor(ctx context.Context, spec, c combo, task Task) (Task, error) {
	if spec.task == c.task && spec.seed == c.seed {
		return task, nil
	}
	st := &r.sweepTask
	if st.task != nil && st.spec == spec.task && st.seed == spec.seed {
		return st.task, nil
	}
	r.closeSweepTask()
	r.logf("preparing %s (seed %d) for the lr sweep", spec.key.Task, spec.seed)
	t, err := prepareTask(ctx, spec.task, spec.seed, r.opt.DataDir)
	if err != nil {
		return nil, err
	}
	st.spec, st.seed, st.task = spec.task, spec.seed, t
	return t, nil
}

// closeSweepTask closes the task prepared for sweeps, if any.
func (r *runner) closeSweepTask() {
	st := &r.sweepTask
	if st.task == nil {
		return
	}
	if err := closeTask(st.task); err != nil {
		r.problems = append(r.problems, err.Error())
	}
	st.spec, st.task = nil, nil
}

// trial trains the i-th candidate of rec's sweep on a fresh model and
// measures its validation loss; trainable is false for a model without a
// Trainer (nothing was trained). Before the first trial trains, it
// measures the validation loss of the untrained model
// (rec.InitialValidLoss): a model without one cannot be swept.
func (r *runner) trial(ctx context.Context, spec combo, task Task, rec *LRSweepRecord, i int) (t LRTrial, trainable bool, err error) {
	m, err := NewModel(spec.model.Name)
	if err != nil {
		return t, false, err
	}
	defer func() {
		if cerr := closeModel(m); cerr != nil {
			r.problems = append(r.problems, fmt.Sprintf("lr sweep of %s: %v", rec.Key(), cerr))
		}
	}()
	if err := r.setup(ctx, spec, m, task.Info(), &RunRecord{}); err != nil {
		return t, false, err
	}
	if !Trainable(m) {
		return t, false, nil
	}
	rec.Nondeterministic = rec.Nondeterministic || Nondeterministic(m)
	if i == 0 {
		if rec.InitialValidLoss, err = initialValidLoss(ctx, task, m, rec.Key()); err != nil {
			return t, true, err
		}
	}
	lrs := spec.model.Train.LRSweep.LRs
	cfg := spec.model.Train
	cfg.LR, cfg.Steps, cfg.EvalEvery, cfg.LRSweep = lrs[i], rec.Steps, 0, nil
	t, err = r.trainTrial(ctx, spec, task, m, cfg, fmt.Sprintf("[lr sweep %d/%d] %s, lr %v", i+1, len(lrs), rec.Key(), lrs[i]))
	return t, true, err
}

// initialValidLoss is the validation loss of m before training; a task
// without one for m (ErrNoValidLoss) is an error naming the remedy.
func initialValidLoss(ctx context.Context, task Task, m Model, key SweepKey) (Number, error) {
	vl, err := task.ValidLoss(ctx, m)
	if errors.Is(err, ErrNoValidLoss) {
		return 0, fmt.Errorf("%w; the sweep chooses by the validation loss, so give %s a fixed learning rate instead (its train: {lr_sweep: null, lr: ...})", err, key.Model)
	}
	if err != nil {
		return 0, fmt.Errorf("validation loss before training: %w", err)
	}
	return Number(vl), nil
}

// trainTrial trains m by cfg (a trial's: its rate and length, validation
// only after the last step), showing progress as desc. A trial that
// diverged is a result (a NaN loss and a note), not an error.
func (r *runner) trainTrial(ctx context.Context, spec combo, task Task, m Model, cfg TrainConfig, desc string) (LRTrial, error) {
	evalUnits := 1
	total := func() int { return cfg.Steps + evalUnits }
	tr, _ := m.(Trainer)
	st := &trainState{r: r, cfg: cfg, seed: spec.seed, m: m, tr: tr, task: task, total: total, evalUnits: &evalUnits,
		train: &Curve{}, valid: &Curve{}}
	r.prog.begin(desc, total())
	err := st.loop(ctx, cfg.Steps)
	t := LRTrial{LR: cfg.LR, ValidLoss: Number(math.NaN()), TrainLoss: lastValue(st.train.Values), TrainSeconds: st.trainTime.Seconds()}
	var d *divergedError
	switch {
	case errors.As(err, &d):
		t.Note = d.event()
		r.prog.end(t.Note)
		return t, nil
	case err != nil && ctx.Err() != nil:
		r.prog.end("interrupted; discarded")
		return t, err
	case err == nil && (st.noValid || len(st.valid.Values) == 0):
		err = fmt.Errorf("no validation loss after training: %w", ErrNoValidLoss)
	}
	if err != nil {
		r.prog.end("failed")
		return t, err
	}
	t.ValidLoss = lastValue(st.valid.Values)
	r.prog.end(fmt.Sprintf("valid %.4f nats/token after %d steps (trained in %.1fs)", float64(t.ValidLoss), st.step, t.TrainSeconds))
	return t, nil
}

// reuseSweeps keeps the stored sweeps of a resumed run that are planned
// with the same configuration; the others (of a (task, model) no longer
// in the experiment, or whose configuration changed, so that no stored
// run depends on them: -resume refuses such runs) are dropped, and run
// again when needed.
func (r *runner) reuseSweeps(stored []LRSweepRecord) {
	for _, s := range stored {
		spec, ok := r.sweepSpecs[s.Key()]
		if !ok {
			r.logf("dropping the recorded lr sweep of %s: this experiment has none", s.Key())
			continue
		}
		if diff, err := configDiff(s.Config, spec.config); err != nil || diff != "" {
			if err != nil {
				diff = err.Error()
			}
			r.logf("dropping the recorded lr sweep of %s: its configuration differs (%s); it runs again", s.Key(), diff)
			continue
		}
		rec := s
		out := &sweepOutcome{rec: &rec}
		if rec.Chosen == 0 {
			out.err = rec.allDiverged()
		}
		r.sweeps[s.Key()] = out
		r.rf.LRSweeps = append(r.rf.LRSweeps, s)
	}
}

// validSlope is the run's ValidSlope (see FitValidSlope).
func (s *trainState) validSlope() *ValidSlope {
	if s.noValid {
		return &ValidSlope{Slope: Number(math.NaN()), Unit: s.valid.Unit + " per 1000 steps", ToStep: s.cfg.Steps, Note: noValidNote}
	}
	return FitValidSlope(*s.valid, s.cfg.Steps)
}
