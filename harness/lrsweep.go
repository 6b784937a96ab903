package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// LRSweep is the `lr_sweep` section of a training configuration: the
// learning rate of each (task, model) is chosen on the validation split by
// one short trial per candidate before the model's runs, and every seed of
// the model then trains with the chosen rate.
//
//	train:
//	  steps: 1000
//	  lr_sweep: {lrs: [0.001, 0.003, 0.01]}   # steps: 250 (a quarter)
//
// Like the rest of train it is experiment-wide and overridable per model
// (models[i].train.lr_sweep, field by field; `lr_sweep: null` turns the
// sweep off for that model, which then trains with its lr).
//
// A trial is the model's run shortened to Steps steps at one candidate
// rate: the same configuration (batch, clip, warmup, Adam settings, weights
// to load), the task and the model initialised and batched from Seed, and
// the validation loss (Task.ValidLoss) measured once, after its last step.
// The chosen rate is the one with the lowest validation loss; equal losses
// go to the smaller rate; a trial that diverged (a non-finite loss or
// gradient norm) loses. When every trial diverged, the model's runs fail
// with that error, and the sweep is recorded all the same. A model for
// which the task has no validation loss (ErrNoValidLoss: it is no Scorer,
// or scores with its own tokenizer) cannot be swept: its runs fail before
// any trial trains (the check runs before the first trial), naming the
// remedy (`lr_sweep: null` and a fixed lr for that model). No sweep runs
// for a model without a Trainer or with train.steps 0 (nothing trains).
//
// Every sweep is recorded in results.json (ResultsFile.LRSweeps) and each
// run records the rate it trained with (RunRecord.LR). The sweep is part of
// the run's configuration (its spec is in the run's resolved train), so it
// is part of the run id; the chosen rate is a result, and is not. A
// resumed run reuses a recorded sweep whose configuration is the planned
// one, and runs an interrupted sweep again from its first trial. Each shard
// of a sharded experiment runs the sweeps its runs need (the same sweeps,
// as they are deterministic); `arbench merge` keeps identical copies once
// and refuses conflicting ones.
type LRSweep struct {
	// LRs are the candidate learning rates: at least one, each positive,
	// no two equal.
	LRs []float64 `yaml:"lrs" json:"lrs"`
	// Steps is the length of each trial, at most train.steps and beyond
	// warmup_steps; omitted, it is a quarter of train.steps (at least 1;
	// see TrialSteps), so a sweep of k rates costs k/4 of one run.
	Steps *int `yaml:"steps" json:"steps,omitempty"`
	// Seed seeds every trial (the task's data, the model's initialisation,
	// batches and dropout); 0 by default. It is the sweep's own seed, so
	// the chosen rate is not tuned to the initialisation or batches of any
	// reported seed.
	Seed uint64 `yaml:"seed" json:"seed"`
}

// TrialSteps is the length of each trial of a sweep for runs of
// trainSteps steps: Steps, or max(1, trainSteps/4).
func (s *LRSweep) TrialSteps(trainSteps int) int {
	if s.Steps != nil {
		return *s.Steps
	}
	return max(1, trainSteps/4)
}

// check reports the problems of the sweep of training configuration c
// through add (see TrainConfig.problems), with fields under "lr_sweep".
func (s *LRSweep) check(c TrainConfig, add func(bad bool, field, format string, args ...any)) {
	add(len(s.LRs) == 0, "lr_sweep.lrs", "must list at least one learning rate")
	seen := map[float64]int{}
	for i, lr := range s.LRs {
		field := fmt.Sprintf("lr_sweep.lrs[%d]", i)
		add(!(lr > 0), field, "must be a positive number, got %v", lr)
		j, dup := seen[lr]
		add(dup, field, "duplicate of lr_sweep.lrs[%d] (%v)", j, lr)
		if !dup {
			seen[lr] = i
		}
	}
	if s.Steps != nil && *s.Steps < 1 {
		add(true, "lr_sweep.steps", "must be >= 1 (omit it for a quarter of train.steps), got %d", *s.Steps)
		return
	}
	if c.Steps <= 0 {
		return // nothing trains, so no sweep runs
	}
	n, how := s.TrialSteps(c.Steps), ""
	if s.Steps == nil {
		how = " (a quarter of train.steps)"
	}
	add(n > c.Steps, "lr_sweep.steps", "must be <= train.steps (%d): a trial is a shortened run, got %d", c.Steps, n)
	add(n <= c.Steps && n <= c.WarmupSteps, "lr_sweep.steps",
		"trials of %d steps%s do not get past warmup_steps (%d), so none trains at its learning rate; set lr_sweep.steps above %d",
		n, how, c.WarmupSteps, c.WarmupSteps)
}

// LRSweepRecord is one learning-rate sweep of a (task, model), as
// results.json records it (ResultsFile.LRSweeps; see LRSweep).
type LRSweepRecord struct {
	Task  string `json:"task"`
	Model string `json:"model"`
	// Seed seeded every trial, and Steps is each trial's length.
	Seed  uint64 `json:"seed"`
	Steps int    `json:"steps"`
	// InitialValidLoss is the validation loss of the model before
	// training (after loading weights, if any), in nats/token.
	InitialValidLoss Number `json:"initial_valid_loss"`
	// Trials are the candidates in the order lr_sweep.lrs lists them.
	Trials []LRTrial `json:"trials"`
	// Chosen is the rate the model's runs train with; absent (0) when
	// every trial diverged.
	Chosen float64 `json:"chosen_lr,omitempty"`
	// Nondeterministic says the trials may not reproduce bitwise: the
	// backend is not known to be deterministic (DefaultTolerance) or the
	// model says it is not. Copies of such a sweep (from several shards)
	// agree when their losses are within NondeterministicTolerance.
	Nondeterministic bool `json:"nondeterministic,omitempty"`
	// Config is the resolved configuration the sweep ran: the one of the
	// model's run with seed Seed (RunRecord.Config), lr_sweep included.
	// -resume reuses the record when it is the planned one.
	Config json.RawMessage `json:"config"`
}

// LRTrial is one trial of a sweep.
type LRTrial struct {
	LR float64 `json:"lr"`
	// ValidLoss is the validation loss after the trial's last step, in
	// nats/token; NaN when the trial diverged.
	ValidLoss Number `json:"valid_loss"`
	// TrainLoss is the mean training loss of the last log_every steps.
	TrainLoss Number `json:"train_loss"`
	// Note says where a trial diverged.
	Note         string  `json:"note,omitempty"`
	TrainSeconds float64 `json:"train_seconds"`
}

// Key identifies the (task, model) of the sweep.
func (s LRSweepRecord) Key() SweepKey { return SweepKey{s.Task, s.Model} }

// SweepKey identifies one (task, model label) of an experiment.
type SweepKey struct {
	Task  string
	Model string
}

func (k SweepKey) String() string { return fmt.Sprintf("%s on %s", k.Model, k.Task) }

// LRSweep returns the recorded sweep of a (task, model), or nil.
func (rf *ResultsFile) LRSweep(task, model string) *LRSweepRecord {
	for i := range rf.LRSweeps {
		if rf.LRSweeps[i].Task == task && rf.LRSweeps[i].Model == model {
			return &rf.LRSweeps[i]
		}
	}
	return nil
}

// chooseLR returns the index of the trial with the lowest finite
// validation loss, equal losses going to the smaller rate; -1 when no
// trial has a finite loss (every one diverged).
func chooseLR(trials []LRTrial) int {
	best := -1
	for i, t := range trials {
		v := float64(t.ValidLoss)
		if !finite(v) {
			continue
		}
		if b := best; b < 0 || v < float64(trials[b].ValidLoss) ||
			(v == float64(trials[b].ValidLoss) && t.LR < trials[b].LR) {
			best = i
		}
	}
	return best
}

// choose sets Chosen from the trials, and returns the error of a sweep in
// which every trial diverged.
func (s *LRSweepRecord) choose() error {
	s.Chosen = 0
	if i := chooseLR(s.Trials); i >= 0 {
		s.Chosen = s.Trials[i].LR
		return nil
	}
	return s.allDiverged()
}

// allDiverged is the error of the runs of a sweep without a chosen rate.
func (s *LRSweepRecord) allDiverged() error {
	var parts []string
	for _, t := range s.Trials {
		parts = append(parts, fmt.Sprintf("lr %v: %s", t.LR, t.Note))
	}
	return fmt.Errorf("every learning rate of the lr sweep diverged in %d steps (%s); give lr_sweep.lrs smaller rates",
		s.Steps, strings.Join(parts, "; "))
}

// AtEdge says whether the chosen rate is the "smallest" or the "largest"
// of several candidates ("" otherwise): the best rate may then lie beyond
// the candidates, and the sweep should be widened.
func (s *LRSweepRecord) AtEdge() string {
	if s.Chosen == 0 || len(s.Trials) < 2 {
		return ""
	}
	lo, hi := true, true
	for _, t := range s.Trials {
		lo = lo && t.LR >= s.Chosen
		hi = hi && t.LR <= s.Chosen
	}
	switch {
	case lo:
		return "smallest"
	case hi:
		return "largest"
	}
	return ""
}

// summary describes the sweep's outcome in one line.
func (s *LRSweepRecord) summary() string {
	parts := make([]string, len(s.Trials))
	for i, t := range s.Trials {
		if v := float64(t.ValidLoss); finite(v) {
			parts[i] = fmt.Sprintf("%v: %.4f", t.LR, v)
		} else {
			parts[i] = fmt.Sprintf("%v: diverged", t.LR)
		}
	}
	chosen := "no rate (every trial diverged)"
	if s.Chosen > 0 {
		chosen = fmt.Sprintf("lr %v", s.Chosen)
	}
	edge := ""
	if e := s.AtEdge(); e != "" {
		edge = fmt.Sprintf("; lr %v is the %s candidate, so the best rate may lie beyond them: widen lr_sweep.lrs", s.Chosen, e)
	}
	return fmt.Sprintf("lr sweep of %s (seed %d, %d steps each): chose %s; valid loss by lr %s%s",
		s.Key(), s.Seed, s.Steps, chosen, strings.Join(parts, ", "), edge)
}

// sweepDiff describes the first difference between two copies of a sweep
// ("" when they agree): candidates, losses (exactly, as runDiff compares
// metrics, or within NondeterministicTolerance for a nondeterministic
// sweep), notes and the choice, but not the time the trials took.
func sweepDiff(a, b *LRSweepRecord) string {
	tol := Tolerance{}
	if a.Nondeterministic || b.Nondeterministic {
		tol = NondeterministicTolerance()
	}
	switch {
	case a.Seed != b.Seed || a.Steps != b.Steps:
		return fmt.Sprintf("seed %d and %d steps, then seed %d and %d steps", a.Seed, a.Steps, b.Seed, b.Steps)
	case len(a.Trials) != len(b.Trials):
		return fmt.Sprintf("%d trials, then %d", len(a.Trials), len(b.Trials))
	case !tol.Agree(float64(a.InitialValidLoss), float64(b.InitialValidLoss)):
		return fmt.Sprintf("initial valid loss %v, then %v", float64(a.InitialValidLoss), float64(b.InitialValidLoss))
	}
	for i, x := range a.Trials {
		y := b.Trials[i]
		switch {
		case x.LR != y.LR:
			return fmt.Sprintf("trial %d has lr %v, then %v", i, x.LR, y.LR)
		case !tol.Agree(float64(x.ValidLoss), float64(y.ValidLoss)):
			return fmt.Sprintf("valid loss at lr %v %v, then %v", x.LR, float64(x.ValidLoss), float64(y.ValidLoss))
		case x.Note != y.Note:
			return fmt.Sprintf("note at lr %v %q, then %q", x.LR, x.Note, y.Note)
		}
	}
	if a.Chosen != b.Chosen {
		return fmt.Sprintf("chosen lr %v, then %v", a.Chosen, b.Chosen)
	}
	return ""
}

// lastValue returns the last value of vs, or NaN when it is empty.
func lastValue(vs []Number) Number {
	if len(vs) == 0 {
		return Number(math.NaN())
	}
	return vs[len(vs)-1]
}
