// Package harness defines what arbench measures and how: the Model and Task
// interfaces with their optional capabilities, the registries, the runner,
// experiment configuration and the result files.
//
// # Optional interfaces
//
// A model need implement only Model, and a task only Task. Everything else
// is an optional interface that the harness detects by type assertion, as
// database/sql detects its drivers' abilities. A plugin declares what it
// implements with interface guards next to its type
// (var _ harness.Stepper = (*Model)(nil)). Each interface's fallback lives
// in one place, named below with what the harness does when it is absent.
//
// A task says what it needs of a model in TaskInfo.Needs (Capability,
// capability.go). The experiment check refuses, before any work, a pairing
// that lacks one of them, naming the model, the task and the missing
// capability.
//
// Optional interfaces of a Model:
//
//   - Trainer: gradients of the mean cross-entropy. Absent: the runner
//     evaluates the model untrained and says so in the run's note
//     (runner.go, runOne). No task declares NeedTrainer.
//   - Scorer: teacher-forced log-probabilities of targets. Absent: there is
//     no fallback, and tasks that score (validation loss, text metrics)
//     declare NeedScorer.
//   - Distributioner: full next-token distributions. Absent: a Decoder can
//     only step, through Stepper (decode.go), and tasks that read
//     distributions (oracle KL, argmax answers) declare NeedDistributions.
//   - PositionDistributioner: a Distributioner that computes one position.
//     Absent: a re-feeding Decoder calls NextLogProbs and keeps the
//     position it needs (decode.go).
//   - ContextLimiter: a maximum context, read through ContextOf. Absent
//     (or reporting 0): the context is unbounded.
//     Present: tasks feed windows of at most MaxContext tokens, and a
//     Decoder re-reads a sliding window of the last MaxContext tokens once
//     a sequence outgrows it (decode.go).
//   - Stepper: generation with carried state. Absent: a Decoder re-feeds
//     the prefix through Distributioner at every step (decode.go);
//     NeedDecoding is met by either.
//   - KVCacher: a Stepper whose cache the configuration can switch off.
//     Absent: the Stepper is used whenever the sequence fits the context.
//     Present with KVCacheEnabled false: a Decoder re-feeds (decode.go);
//     the throughput bench times such models both ways (package bench).
//   - EnvChecker: the configuration checked against a task's Env without
//     allocating. Absent: a mismatch (a context shorter than the task's
//     rows) is found only by Setup when the run starts. Present: the
//     experiment check calls CheckEnv for every (task, model) pairing.
//   - MemoryEstimator: estimated memory before allocation. Absent: nothing
//     is estimated and the configuration is not refused for its size.
//     Present: CheckMemory (memory.go) refuses, before any Setup, an
//     estimate above MemoryFraction of the machine's memory.
//   - Conditioner: the model reads Batch.Source. Absent: a language model,
//     which must refuse batches with a source; tasks that need one declare
//     NeedSource (capability.go).
//   - SourceJoiner: a language model that runs conditional tasks by
//     reading source and target as one sequence. Absent (and no
//     Conditioner): NeedSource refuses the pairing before any work.
//     Present: BatchFor joins training batches, ScoreBatch scores the
//     joined rows, Translate continues source + start token (seq2seq.go).
//   - SourceStepper: a Conditioner that generates with carried state.
//     Absent: Translate needs a Translator.
//   - Translator, DecodeSweeper: a conditional model's own decoding
//     (mask-predict, speculative decoding) and the settings an evaluation
//     sweeps. Absent: Translate decodes greedily through SourceStepper or
//     the joined sequence (seq2seq.go).
//   - StepTrainer: a model that owns its optimiser runs whole training
//     steps (external.go). Absent: the runner clips a Trainer's gradients
//     and steps its own Adam (runner.go, gradientStep). Present: the runner
//     calls it with the step's learning rate and clip instead.
//   - WeightsIO: the model saves and loads its own weights files. Absent:
//     the runner saves and loads Params() as safetensors (runner.go,
//     loadWeights/saveWeights) and the experiment check compares the file
//     with the parameters; present, only the file's readability is checked.
//   - DeterminismReporter: whether the model is deterministic. Absent: as
//     its backend. Present and false: ModelInfo.Nondeterministic is
//     recorded and reproduce compares its metrics with a tolerance.
//   - CapabilityDeclarer: which of the capability interfaces its Go type
//     implements the model behind it really has (an external plugin's
//     handshake). Absent: the type assertion decides. Present: Has,
//     StepperOf, DistributionerOf, ScorerOf and Trainable count only what
//     it declares (external.go, capability.go).
//   - TextScorer: raw text scored with the model's own tokenizer (total
//     nats per text). Absent: text tasks score byte tokens through Scorer.
//     Present without a Scorer: the text task reports bits per byte from
//     total nats over bytes (tasks/text) and has no validation loss.
//   - FLOPsDeclarer: FLOPs of a model the bench cannot count. Absent: the
//     bench counts them on nn's counting backend; present, it reports the
//     declared figure or unknown, never 0.
//   - ProcessReporter: the model computes in another process (an
//     external plugin). Absent: the bench's peak RSS is arbench's own
//     process only. Present: the bench also reports that process's peak
//     RSS (package bench, memory.go).
//   - InputGradienter: the norm of the gradient of one position's loss with
//     respect to every earlier input embedding (the vanishing-gradient
//     measurement). Absent: there is no fallback; tasks that measure it
//     declare NeedInputGradients or skip the model (a transformer and a
//     recurrent model can both provide it).
//   - NamedConfigurer: a family's named configurations, chosen as
//     FAMILY:NAME (NewModel, registry.go). Absent: FAMILY:NAME is an error.
//   - io.Closer: resources to release (compiled executables, device
//     memory). Absent: nothing is released. Present: the runner closes the
//     model when its run ends (runner.go, runOne), and a Close error is
//     reported, never dropped.
//
// Optional interfaces of a Task and its Config:
//
//   - InitialEvaluator on a Task: measurements of the model before
//     training (at initialisation, or as loaded with -load-weights). The
//     runner calls EvaluateInitial after Setup and before the first step
//     and records its metrics, series and samples with the run's
//     (runner.go, runOne). Absent: only the trained model is measured.
//   - io.Closer on a Task: the runner closes the task after its runs
//     (runner.go, runGroup) and reports a Close error.
//   - VariantValidator on a task's Config: problems that depend on the
//     variant ("copy" in "synthetic/copy") are reported with the rest of the
//     experiment's configuration errors (config.go, checkConfig), with
//     their file and line. Absent: they surface when the runner's
//     preflight prepares the task (preflight.go), still before any work.
//
// Every free-running use of a model (Generate, the synthetic tasks'
// rollouts, the throughput bench) goes through a Decoder, so the
// Stepper/Distributioner/ContextLimiter/KVCacher fallbacks above are
// decided once, in NewDecoder.
package harness

import (
	"context"

	"arbench/nn"
)

// Env is what a model learns about the run before it allocates parameters.
type Env struct {
	// Backend compiles the model's computations.
	Backend nn.Backend
	// Vocab is the task's vocabulary size (256 for byte-level text).
	Vocab int
	// SeqLen is the training/evaluation window length the task will use.
	SeqLen int
	// Seed initialises parameters deterministically.
	Seed uint64
	// Batch is the training batch size (windows per step), for memory
	// estimates; 0 when the model is only evaluated or generates.
	Batch int
	// EvalBatch is the number of rows the task scores at once (TaskInfo's
	// EvalBatch), for memory estimates; 0 when unknown.
	EvalBatch int
	// SourceLen and TargetLen are a conditional task's longest source and
	// longest decoder row (target plus end token), TaskInfo's; 0 for
	// language-modelling tasks. SeqLen is then the longest joined row a
	// SourceJoiner reads (source, start token, target, end token).
	SourceLen, TargetLen int
}

// ModelInfo describes a model instance for tables and the manifest.
type ModelInfo struct {
	// Family is the registry name ("rnn", "lstm", "transformer", ...).
	Family string `json:"family"`
	// Params is the number of scalar parameters after Setup.
	Params int `json:"params"`
	// Nondeterministic is set by the runner for a model that says it is
	// not deterministic (DeterminismReporter); reproduce then compares its
	// metrics with a tolerance.
	Nondeterministic bool `json:"nondeterministic,omitempty"`
	// Runtime says what computes a model that does not run on arbench's
	// backend (an external plugin's describe "runtime": framework,
	// version, threads), for tables; empty for arbench's own models.
	Runtime string `json:"runtime,omitempty"`
}

// Model is the interface every plugin implements. What a model can do beyond
// it is expressed by the optional interfaces below, which the harness detects
// by type assertion (like database/sql's optional driver interfaces).
type Model interface {
	// Config returns a pointer to the model's typed configuration, filled
	// with defaults. The harness decodes the experiment's model section into
	// it strictly (unknown fields are errors) before Setup.
	Config() Config
	// Setup validates the configuration against env and initialises parameters.
	Setup(ctx context.Context, env Env) error
	// Params returns the parameters (nil before Setup).
	Params() *nn.ParamSet
	// Info describes the model.
	Info() ModelInfo
}

// Config is a typed, strictly decoded configuration section.
type Config interface {
	// Validate reports every problem at once; nil or empty means valid.
	Validate() []error
}

// Batch is a batch of equal-length rows. For language modelling, Targets[i][t]
// is the token that follows Inputs[i][:t+1]; a negative target is ignored.
// Source is set for conditional (seq2seq) tasks only.
type Batch struct {
	Source  [][]int
	Inputs  [][]int
	Targets [][]int
}

// Tokens returns the number of scored (non-negative) targets.
func (b Batch) Tokens() int {
	n := 0
	for _, row := range b.Targets {
		for _, t := range row {
			if t >= 0 {
				n++
			}
		}
	}
	return n
}

// Positions returns the number of token positions the batch feeds a model
// (source plus input rows), the unit of training throughput.
func (b Batch) Positions() int {
	n := 0
	for _, row := range b.Source {
		n += len(row)
	}
	for _, row := range b.Inputs {
		n += len(row)
	}
	return n
}

// Trainer is a model that can be trained by gradient descent.
type Trainer interface {
	// Gradients computes the mean cross-entropy (nats/token) of the batch and
	// writes its gradient into Params().Grad, in training mode (dropout on,
	// masks drawn from seed). The runner applies clipping and the optimiser.
	Gradients(ctx context.Context, b Batch, seed uint64) (loss float64, err error)
}

// Scorer is a model that scores targets under teacher forcing.
type Scorer interface {
	// LogProbs returns, per row and position, log p(Targets[i][t] | Inputs[i][:t+1])
	// in nats; positions with a negative target get 0.
	LogProbs(ctx context.Context, b Batch) ([][]float64, error)
}

// Distributioner exposes full next-token distributions under teacher forcing.
type Distributioner interface {
	// NextLogProbs returns out[i][t][v] = log p(v | inputs[i][:t+1]).
	NextLogProbs(ctx context.Context, inputs [][]int) ([][][]float32, error)
}

// ContextLimiter is a model with a maximum usable context (e.g. learned
// positions); the harness never feeds it longer inputs. A MaxContext of 0
// or less means unbounded (a model that learns its limit only later, such
// as an external plugin). Consumers read it through ContextOf.
type ContextLimiter interface {
	MaxContext() int
}

// ContextOf is m's maximum context, 0 when unbounded (no ContextLimiter,
// or one reporting 0 or less): the one reading of ContextLimiter.
func ContextOf(m Model) int {
	if cl, ok := m.(ContextLimiter); ok && cl.MaxContext() > 0 {
		return cl.MaxContext()
	}
	return 0
}

// State is a model's carried generation state (recurrent state, key/value cache).
type State interface {
	// Len is the number of tokens consumed so far per row.
	Len() int
}

// Stepper generates position by position, carrying state instead of
// re-reading the prefix.
type Stepper interface {
	// Start consumes equal-length prompts (one row per sequence, at least one
	// token each) and returns the state and the next-token log-probabilities
	// out[i][v] after the last prompt token.
	Start(ctx context.Context, prompts [][]int) (State, [][]float32, error)
	// Step feeds one token per row and returns the next-token log-probabilities.
	Step(ctx context.Context, s State, tokens []int) ([][]float32, error)
}

// EnvChecker is a model whose configuration can be checked against a
// task's Env (vocabulary, window length) without allocating anything. The
// experiment check calls it for every (task, model) pairing before any work
// starts, so a mismatch such as a context shorter than the task's rows is
// reported with the plugin's own message up front. Setup must still reject
// what CheckEnv rejects.
type EnvChecker interface {
	CheckEnv(env Env) []error
}

// MemoryEstimate is a model's estimated memory use in bytes.
type MemoryEstimate struct {
	// Params is the parameters themselves.
	Params int64
	// Training is what training adds: gradients, optimiser state and the
	// activations kept for the backward pass of one batch of env.Batch
	// windows of env.SeqLen tokens (0 when env.Batch is 0).
	Training int64
	// Inference is the activations of one evaluation batch.
	Inference int64
}

// Total is the peak estimate: parameters plus the larger of training and
// inference.
func (m MemoryEstimate) Total() int64 { return m.Params + max(m.Training, m.Inference) }

// MemoryEstimator is a model that can estimate its memory before Setup
// allocates it; the experiment check refuses a configuration whose estimate
// exceeds the machine's memory.
type MemoryEstimator interface {
	EstimateMemory(env Env) MemoryEstimate
}

// Conditioner is a model that reads Batch.Source (a seq2seq model).
// Conditional reports whether it does for its configuration. Models without
// it are language models and must refuse batches with a source.
type Conditioner interface {
	Conditional() bool
}

// InputGradienter measures how strongly one position's loss depends on each
// earlier input, the quantity behind the vanishing-gradient explanation of
// why recurrent models lose long-range dependencies (Bengio, Simard and
// Frasconi 1994; Pascanu, Mikolov and Bengio 2013, eq. 3–5).
type InputGradienter interface {
	// InputGradientNorms returns, for every row i of b and every s in
	// [0, t], out[i][s] = ‖∂ℓ_{i,t}/∂x_{i,s}‖₂, where ℓ_{i,t} =
	// −log p(b.Targets[i][t] | b.Inputs[i][:t+1]) is row i's loss at
	// position t and x_{i,s} is the vector the model's first layer reads
	// at position s (the token embedding, plus the position embedding in a
	// Transformer). It runs in evaluation mode (no dropout) and leaves the
	// parameters and their gradients as they were. A target at t that is
	// negative (not scored) is an error.
	InputGradientNorms(ctx context.Context, b Batch, t int) ([][]float64, error)
}

// Factory returns a fresh, unconfigured model instance.
type Factory func() Model
