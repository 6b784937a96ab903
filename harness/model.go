// Package harness defines what arbench measures and how: the Model and Task
// interfaces with their optional capabilities, the registries, the runner,
// experiment configuration and the result files.
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
}

// ModelInfo describes a model instance for tables and the manifest.
type ModelInfo struct {
	// Family is the registry name ("rnn", "lstm", "transformer", ...).
	Family string `json:"family"`
	// Params is the number of scalar parameters after Setup.
	Params int `json:"params"`
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
// positions); the harness never feeds it longer inputs.
type ContextLimiter interface {
	MaxContext() int
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

// Factory returns a fresh, unconfigured model instance.
type Factory func() Model
