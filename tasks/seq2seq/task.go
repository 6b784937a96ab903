package seq2seq

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"arbench/harness"
	"arbench/internal/fsum"
)

func init() {
	harness.RegisterTask("seq2seq",
		"generated sequence-to-sequence tasks for autoregressive vs non-autoregressive decoding: seq2seq/{"+strings.Join(Variants(), ",")+"}", New)
}

// TaskConfig is the seq2seq task's typed configuration: the data (Config,
// whose fields it holds inline) and the evaluation.
type TaskConfig struct {
	Config `yaml:",inline"`
	// EvalBatch is the number of rows per Scorer call (validation loss,
	// target_nll).
	EvalBatch int `yaml:"eval_batch"`
	// LatencyRows is the number of test rows (the first ones, at most
	// test_rows) translated one at a time for the batch-1 latency, after
	// an untimed warm-up pass over the same rows.
	LatencyRows int `yaml:"latency_rows"`
	// LargeBatch is the number of rows per Translate call of the
	// large-batch pass, which times throughput and produces the outputs
	// the quality metrics score; 0 translates every test row in one call.
	// Every call is made once untimed first (a warm-up, so that compiling
	// a shape is not timed), so the pass costs twice the test set.
	LargeBatch int `yaml:"large_batch"`
	// MaxOut bounds an output's length in tokens, EOS included
	// (TranslateOptions.MaxLen); 0 means the longest target + 2 (one token
	// past the longest decoder row, so an output that does not stop is
	// seen to be too long). It must hold the longest target and its EOS.
	MaxOut int `yaml:"max_out"`
	// SampleRows is the number of test rows written as samples (source,
	// target, output); 0 writes none.
	SampleRows int `yaml:"sample_rows"`
}

// DefaultTaskConfig returns the defaults: the data defaults
// (DefaultConfig), 64 rows per Scorer call, 32 latency rows, every test
// row in one large batch, the default max_out and 64 samples.
func DefaultTaskConfig() TaskConfig {
	return TaskConfig{Config: DefaultConfig(), EvalBatch: 64, LatencyRows: 32, SampleRows: 64}
}

var (
	_ harness.Config           = (*TaskConfig)(nil)
	_ harness.VariantValidator = (*TaskConfig)(nil)
)

// Validate reports every invalid field at once: the data's (Config) and
// the evaluation's.
func (c *TaskConfig) Validate() []error {
	errs := c.Config.Validate()
	inRange := func(name string, v, lo, hi int) {
		if !(v >= lo && v <= hi) {
			errs = append(errs, fmt.Errorf("%s: must be in [%d, %d], got %d", name, lo, hi, v))
		}
	}
	inRange("eval_batch", c.EvalBatch, 1, maxRows)
	inRange("latency_rows", c.LatencyRows, 1, maxRows)
	inRange("large_batch", c.LargeBatch, 0, maxRows)
	inRange("max_out", c.MaxOut, 0, maxLen)
	inRange("sample_rows", c.SampleRows, 0, maxRows)
	return errs
}

// ValidateVariant reports the data's problems for variant
// (Config.ValidateVariant) and a max_out too short for its longest target.
func (c *TaskConfig) ValidateVariant(variant string) []error {
	if errs := c.Config.ValidateVariant(variant); len(errs) > 0 {
		return errs
	}
	_, tgt := (&Generator{cfg: c.Config, variant: variant}).MaxLens()
	if c.MaxOut != 0 && c.MaxOut < tgt+1 {
		return []error{fmt.Errorf("max_out: %d tokens cannot hold the longest target of variant %s (%d tokens and EOS: at least %d)", c.MaxOut, variant, tgt, tgt+1)}
	}
	return nil
}

// Task is a seq2seq task: a Generator's training stream and its fixed
// validation and test sets.
type Task struct {
	cfg         TaskConfig
	gen         *Generator
	valid, test []Example
}

var _ harness.Task = (*Task)(nil)

// New returns an unprepared task with the default configuration.
func New() harness.Task { return &Task{cfg: DefaultTaskConfig()} }

// Config returns the task's configuration, for strict decoding.
func (t *Task) Config() harness.Config { return &t.cfg }

// Prepare checks the configuration for env.Variant and draws the
// validation and test sets from env.Seed (Generator.Fixed).
func (t *Task) Prepare(ctx context.Context, env harness.TaskEnv) error {
	if env.DataFile != "" {
		return fmt.Errorf("seq2seq: generated tasks read no data file (got -data %s)", env.DataFile)
	}
	if errs := harness.ConfigProblems(&t.cfg, env.Variant); len(errs) > 0 {
		return fmt.Errorf("seq2seq/%s: invalid config: %w", env.Variant, errors.Join(errs...))
	}
	g, err := NewGenerator(t.cfg.Config, env.Variant)
	if err != nil {
		return err
	}
	valid, err := g.Fixed(env.Seed, Valid)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	test, err := g.Fixed(env.Seed, Test)
	if err != nil {
		return err
	}
	t.gen, t.valid, t.test = g, valid, test
	return nil
}

// lens returns the longest source, the longest decoder row (target and
// EOS) and the output bound (max_out or its default).
func (t *Task) lens() (source, target, maxOut int) {
	source, tgt := t.gen.MaxLens()
	maxOut = t.cfg.MaxOut
	if maxOut == 0 {
		maxOut = tgt + 2
	}
	return source, tgt + 1, maxOut
}

// Info describes the prepared task. SourceLen is the longest source,
// TargetLen the longest target plus EOS, and SeqLen the longest joined row
// a decoder-only model reads: the source, BOS and the target with EOS, or
// the source and max_out decoded tokens when that is longer (the default
// max_out gives the same length). EvalBatch is the most rows one model
// call gets: eval_batch (scoring) or the large batch (translating).
func (t *Task) Info() harness.TaskInfo {
	info := harness.TaskInfo{Kind: "seq2seq", HeadlineMetric: "exact_match", Needs: []harness.Capability{harness.NeedSource}}
	if t.gen == nil {
		return info
	}
	src, tgt, maxOut := t.lens()
	info.Name = "seq2seq/" + t.gen.Variant()
	info.Vocab = t.gen.Vocab()
	info.SourceLen, info.TargetLen = src, tgt
	info.SeqLen = src + max(1+tgt, maxOut)
	info.EvalBatch = max(min(t.cfg.EvalBatch, max(len(t.valid), len(t.test))), t.largeBatch())
	return info
}

// largeBatch is the number of rows per call of the large-batch pass.
func (t *Task) largeBatch() int {
	if t.cfg.LargeBatch == 0 {
		return len(t.test)
	}
	return min(t.cfg.LargeBatch, len(t.test))
}

// Datasets is empty: the data is generated.
func (t *Task) Datasets() []harness.DatasetRef { return nil }

// TrainBatch draws batch training examples (Generator.Train) and frames
// them for an encoder–decoder (PadBatch); the runner joins them for a
// decoder-only model (harness.BatchFor).
func (t *Task) TrainBatch(rng *rand.Rand, batch int) harness.Batch {
	if t.gen == nil {
		panic("seq2seq: TrainBatch before a successful Prepare")
	}
	exs := make([]Example, batch)
	for i := range exs {
		exs[i] = t.gen.Train(rng)
	}
	return PadBatch(exs)
}

// ValidLoss returns the mean nats per target token (EOS included) over the
// validation set, teacher-forced, through harness.ScoreBatch (which joins
// the rows for a decoder-only model). A model without a harness.Scorer (a
// decoder that only translates) has no validation loss: the error says
// so, as the text and synthetic tasks' do.
func (t *Task) ValidLoss(ctx context.Context, m harness.Model) (float64, error) {
	if t.gen == nil {
		panic("seq2seq: ValidLoss before a successful Prepare")
	}
	if _, ok := harness.ScorerOf(m); !ok {
		return 0, fmt.Errorf("seq2seq: model %s is no harness.Scorer: %w", m.Info().Family, harness.ErrNoValidLoss)
	}
	nll, err := t.meanNLL(ctx, m, t.valid)
	if err != nil {
		return 0, fmt.Errorf("seq2seq: valid loss: %w", err)
	}
	return nll, nil
}

// meanNLL scores exs in batches of eval_batch and returns the mean nats
// per scored target.
func (t *Task) meanNLL(ctx context.Context, m harness.Model, exs []Example) (float64, error) {
	if _, ok := harness.ScorerOf(m); !ok {
		return 0, fmt.Errorf("model %q cannot score targets (it does not implement harness.Scorer), so it has no teacher-forced loss", m.Info().Family)
	}
	var nll []float64
	for lo := 0; lo < len(exs); lo += t.cfg.EvalBatch {
		b := PadBatch(exs[lo:min(lo+t.cfg.EvalBatch, len(exs))])
		lp, err := harness.ScoreBatch(ctx, m, b)
		if err != nil {
			return 0, fmt.Errorf("rows %d..: %w", lo, err)
		}
		for r, row := range b.Targets {
			for k, tg := range row {
				if tg >= 0 {
					nll = append(nll, -lp[r][k])
				}
			}
		}
	}
	if len(nll) == 0 {
		return math.NaN(), nil
	}
	return fsum.Sum(nll) / float64(len(nll)), nil
}
