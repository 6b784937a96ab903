package harness

import "context"

// The optional interfaces of a model that does not run on arbench's
// backend, such as an out-of-process plugin (plugins/external): it owns
// its training step and its weights, may not be deterministic, declares
// which capability interfaces it really has, and its FLOPs cannot be
// counted. Their fallbacks live here (and in capability.go's Has).

// StepInfo is what one optimiser step a model owns is told.
type StepInfo struct {
	// Step is the step number, from 1.
	Step int
	// LR is the learning rate the run's schedule gives this step, Clip
	// the global gradient-norm clip (0: none).
	LR, Clip float64
	// Seed seeds the step's randomness (dropout masks).
	Seed uint64
}

// StepTrainer is a model that owns its optimiser and weights: TrainStep
// runs one whole training step (forward, loss, backward, clipping,
// update) and returns the mean cross-entropy in nats per scored target
// before the update. The runner prefers it to Trainer (whose gradients the
// runner clips and feeds to its own Adam).
type StepTrainer interface {
	TrainStep(ctx context.Context, b Batch, s StepInfo) (loss float64, err error)
}

// WeightsIO is a model that saves and loads its own weights (a file at
// path; safetensors with PyTorch state_dict names recommended). Absent:
// the runner saves and loads Params() as safetensors. Present: it is used
// instead, and the experiment check cannot compare a weights file with
// the parameters before the run.
type WeightsIO interface {
	SaveWeights(ctx context.Context, path string, meta map[string]string) error
	LoadWeights(ctx context.Context, path string) error
}

// DeterminismReporter is a model that says whether it is deterministic
// (the same seed and inputs give bitwise identical results). Absent: the
// model is as deterministic as its backend (DefaultTolerance). Present and
// false: the run records it (ModelInfo.Nondeterministic) and reproduce
// compares the model's metrics with NondeterministicTolerance.
type DeterminismReporter interface {
	Deterministic() bool
}

// CapabilityDeclarer is a model whose Go type implements capability
// interfaces that the model behind it may lack (a plugin declares what it
// has at its handshake). Declares reports whether it has c, one of
// NeedTrainer, NeedScorer, NeedDistributions, NeedStepper and
// NeedTextScorer; Has, StepperOf, DistributionerOf, ScorerOf,
// TextScorerOf and Trainable count only what it declares.
type CapabilityDeclarer interface {
	Declares(c Capability) bool
}

// TextScorer is a model with a tokenizer of its own that scores raw text:
// ScoreText returns, per text, the total negative log-likelihood in nats
// of its bytes, each text scored on its own from an empty context. Text
// tasks then report bits per byte from total nats over bytes, so models
// with different tokenizers (a pretrained model a user wraps) compare
// with arbench's byte-level ones. Absent: text is scored as byte tokens
// through Scorer. A model with both is scored through its Scorer.
type TextScorer interface {
	ScoreText(ctx context.Context, texts [][]byte) ([]float64, error)
}

// TextScorerOf returns m's TextScorer when it has (and declares) one.
func TextScorerOf(m Model) (TextScorer, bool) {
	s, ok := m.(TextScorer)
	return s, ok && declares(m, NeedTextScorer)
}

// FLOPsDeclarer is a model whose computations arbench cannot count (it
// does not run on the backend): FLOPsPerToken is its own figure for a
// training step's matrix-product FLOPs per token, known false when it has
// none. Absent: the bench counts FLOPs on nn's counting backend.
type FLOPsDeclarer interface {
	FLOPsPerToken() (flops float64, known bool)
}

// ProcessReporter is a model that computes in a process of its own (an
// external plugin): ProcessID is that process's id while the model is set
// up, 0 when none is running. The bench reads the process's peak resident
// set size from it, next to arbench's own.
type ProcessReporter interface {
	ProcessID() int
}

// declares reports whether m has c, consulting a CapabilityDeclarer.
func declares(m Model, c Capability) bool {
	d, ok := m.(CapabilityDeclarer)
	return !ok || d.Declares(c)
}

// StepperOf returns m's Stepper when it has (and declares) one.
func StepperOf(m Model) (Stepper, bool) {
	s, ok := m.(Stepper)
	return s, ok && declares(m, NeedStepper)
}

// DistributionerOf returns m's Distributioner when it has (and declares)
// one.
func DistributionerOf(m Model) (Distributioner, bool) {
	d, ok := m.(Distributioner)
	return d, ok && declares(m, NeedDistributions)
}

// ScorerOf returns m's Scorer when it has (and declares) one.
func ScorerOf(m Model) (Scorer, bool) {
	s, ok := m.(Scorer)
	return s, ok && declares(m, NeedScorer)
}

// InputGradienterOf returns m's InputGradienter when it has (and declares)
// one.
func InputGradienterOf(m Model) (InputGradienter, bool) {
	g, ok := m.(InputGradienter)
	return g, ok && declares(m, NeedInputGradients)
}

// Trainable reports whether the runner can train m: a StepTrainer or a
// Trainer (with parameters for the runner's optimiser), as declared.
func Trainable(m Model) bool {
	_, st := m.(StepTrainer)
	_, tr := m.(Trainer)
	return (st || tr) && declares(m, NeedTrainer)
}

// Nondeterministic reports whether m says it is not deterministic.
func Nondeterministic(m Model) bool {
	d, ok := m.(DeterminismReporter)
	return ok && !d.Deterministic()
}
