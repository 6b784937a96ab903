package lm

import (
	"context"
	"errors"
	"fmt"
	"io"

	"arbench/harness"
	"arbench/nn"
)

// Net is the part of a language model that differs between families: the
// map from input tokens to next-token logits.
type Net interface {
	// Logits builds logits [B*T, V] for ids (an int tensor [B*T], row-major
	// B rows of T tokens). train enables dropout.
	Logits(g nn.Graph, ids nn.Tensor, B, T int, train bool) nn.Tensor
}

// Base implements training, teacher-forced scoring and next-token
// distributions for any Net: plugins embed it and get harness.Trainer,
// harness.Scorer and harness.Distributioner. For a Net that is an
// Embedder, EmbeddingGradientNorms measures the gradients with respect to
// the input embeddings, which plugins offer as harness.InputGradienter.
//
// Plugins embed a *Base that stays nil until Setup, and the harness may
// call Close (or anything else) before a Setup that failed or never ran,
// so every method is safe on a nil *Base: Close and Params return nil,
// Vocab 0 and the others ErrNotSetup.
//
// A language model reads no source sequence: Gradients and LogProbs refuse
// a batch whose Source is set rather than ignore it. Conditional tasks
// reach it through the harness's joined mode instead (JoinsSource).
//
// Divergence is not an error: Gradients returns a non-finite loss as the
// loss with a nil error, and the runner records the run as diverged (see
// harness.ErrDiverged), keeps its curves and goes on with the other runs.
type Base struct {
	family string
	vocab  int
	params *nn.ParamSet
	net    Net
	cache  *Cache
	// probes are the zero parameters EmbeddingGradientNorms adds to the
	// embedding, by executable key (inputgrad.go).
	probes map[string]*nn.Param
}

// ErrNotSetup is returned by a model's methods before its Setup succeeded.
var ErrNotSetup = errors.New("model used before Setup")

var (
	_ harness.Trainer        = (*Base)(nil)
	_ harness.Scorer         = (*Base)(nil)
	_ harness.Distributioner = (*Base)(nil)
	_ io.Closer              = (*Base)(nil)
	_ harness.SourceJoiner   = (*Base)(nil)
)

// JoinsSource reports that every language model built on Base runs
// conditional tasks in the joined mode: it reads the source, the start
// token and the target as one sequence (harness.JoinSource), so the
// harness hands it joined batches and decodes the target as the
// continuation of source + start token.
func (m *Base) JoinsSource() bool { return true }

// Init wires the base to a backend, parameters and network.
func (m *Base) Init(family string, b nn.Backend, ps *nn.ParamSet, vocab int, net Net) {
	m.family, m.vocab, m.params, m.net = family, vocab, ps, net
	m.cache = NewCache(b, ps)
}

// Params returns the parameter set (nil before Init).
func (m *Base) Params() *nn.ParamSet {
	if m == nil {
		return nil
	}
	return m.params
}

// Vocab returns the vocabulary size (0 before Init).
func (m *Base) Vocab() int {
	if m == nil {
		return 0
	}
	return m.vocab
}

// ready reports ErrNotSetup for a Base that was never initialised.
func (m *Base) ready() error {
	if m == nil || m.cache == nil {
		return ErrNotSetup
	}
	return nil
}

// Exec returns the cached executable for key.
func (m *Base) Exec(key string, train bool, build nn.BuildFunc) (nn.Executable, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	e, err := m.cache.Get(key, train, build)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.family, err)
	}
	return e, nil
}

// ExecUnbound returns the cached inference executable for key, compiled
// without the parameter set (see Cache.GetUnbound).
func (m *Base) ExecUnbound(key string, build nn.BuildFunc) (nn.Executable, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	e, err := m.cache.GetUnbound(key, build)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.family, err)
	}
	return e, nil
}

// Close releases compiled executables; it does nothing before Init.
func (m *Base) Close() error {
	if m.ready() != nil {
		return nil
	}
	return m.cache.Close()
}

// checkBatch refuses a batch a language model cannot read: before Init,
// or with a source sequence (a seq2seq task's batch).
func (m *Base) checkBatch(b harness.Batch) error {
	if err := m.ready(); err != nil {
		return err
	}
	if b.Source != nil {
		return fmt.Errorf("%s: the batch has a source sequence, but a language model reads only its inputs (it is no harness.Conditioner)", m.family)
	}
	return nil
}

// checkContext refuses rows of T tokens longer than the context of a Net
// that is a harness.ContextLimiter (learned positions), which could not
// build their graph.
func (m *Base) checkContext(what string, T int) error {
	if cl, ok := m.net.(harness.ContextLimiter); ok && T > cl.MaxContext() {
		return fmt.Errorf("%s: %s of %d tokens exceed the context of %d positions", m.family, what, T, cl.MaxContext())
	}
	return nil
}

// Gradients computes the mean cross-entropy of b and its gradient. A
// non-finite loss is returned with a nil error (see Base).
func (m *Base) Gradients(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	if err := m.checkBatch(b); err != nil {
		return 0, err
	}
	feeds, B, T, err := LMFeeds(b, m.vocab, seed)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.family, err)
	}
	if err := m.checkContext("inputs", T); err != nil {
		return 0, err
	}
	e, err := m.Exec(fmt.Sprintf("train/b%d/t%d", B, T), true, func(g nn.Graph) error {
		ids := g.Ints(FeedIDs, B*T)
		logits := m.net.Logits(g, ids, B, T, true)
		g.Loss(nn.CrossEntropy(g, logits, g.Ints(FeedTargets, B*T), g.Floats(FeedWeights, B*T)))
		return nil
	})
	if err != nil {
		return 0, err
	}
	res, err := e.Run(ctx, feeds)
	if err != nil {
		return 0, fmt.Errorf("%s: train step: %w", m.family, err)
	}
	return res.Loss, nil
}

// inputIDs checks that the model is set up and that inputs fit it (shape,
// context, vocabulary) and returns them flattened with their B and T.
func (m *Base) inputIDs(inputs [][]int) (ids []int, B, T int, err error) {
	if err := m.ready(); err != nil {
		return nil, 0, 0, err
	}
	if B, T, err = Shape("inputs", inputs); err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", m.family, err)
	}
	if err := m.checkContext("inputs", T); err != nil {
		return nil, 0, 0, err
	}
	if ids, err = Flatten("inputs", inputs, m.vocab, false); err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", m.family, err)
	}
	return ids, B, T, nil
}

// logProbs runs the evaluation graph: log-softmax over [B*T, V].
func (m *Base) logProbs(ctx context.Context, inputs [][]int) (nn.Value, int, int, error) {
	ids, B, T, err := m.inputIDs(inputs)
	if err != nil {
		return nn.Value{}, 0, 0, err
	}
	e, err := m.Exec(fmt.Sprintf("eval/b%d/t%d", B, T), false, func(g nn.Graph) error {
		logits := m.net.Logits(g, g.Ints(FeedIDs, B*T), B, T, false)
		g.Output(OutLogProbs, g.LogSoftmax(logits))
		return nil
	})
	if err != nil {
		return nn.Value{}, 0, 0, err
	}
	res, err := e.Run(ctx, nn.Feeds{Ints: map[string][]int{FeedIDs: ids}})
	if err != nil {
		return nn.Value{}, 0, 0, fmt.Errorf("%s: score: %w", m.family, err)
	}
	return res.Outputs[OutLogProbs], B, T, nil
}

// LogProbs returns log p(target) per position under teacher forcing. The
// targets are picked inside the graph (Pick of the log-softmax), so a run
// returns B·T values instead of the B·T·V distributions: at the quick
// size that is 8 KB instead of 2 MB copied out of the executable per
// batch, and the garbage collector's work on it.
func (m *Base) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	if err := m.checkBatch(b); err != nil {
		return nil, err
	}
	ids, B, T, err := m.inputIDs(b.Inputs)
	if err != nil {
		return nil, err
	}
	if tb, tt, err := Shape("targets", b.Targets); err != nil || tb != B || tt != T {
		return nil, fmt.Errorf("%s: targets do not match inputs %dx%d", m.family, B, T)
	}
	tg, err := Flatten("targets", b.Targets, m.vocab, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.family, err)
	}
	for i, t := range tg {
		tg[i] = max(t, 0) // ignored targets pick token 0; zeroed below
	}
	e, err := m.Exec(fmt.Sprintf("score/b%d/t%d", B, T), false, func(g nn.Graph) error {
		logits := m.net.Logits(g, g.Ints(FeedIDs, B*T), B, T, false)
		g.Output(OutPicked, g.Pick(g.LogSoftmax(logits), g.Ints(FeedTargets, B*T)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	res, err := e.Run(ctx, nn.Feeds{Ints: map[string][]int{FeedIDs: ids, FeedTargets: tg}})
	if err != nil {
		return nil, fmt.Errorf("%s: score: %w", m.family, err)
	}
	picked := res.Outputs[OutPicked].Data
	out := make([][]float64, B)
	for i, row := range b.Targets {
		out[i] = make([]float64, T)
		for t, tok := range row {
			if tok >= 0 {
				out[i][t] = float64(picked[i*T+t])
			}
		}
	}
	return out, nil
}

// NextLogProbs returns the full next-token distributions.
func (m *Base) NextLogProbs(ctx context.Context, inputs [][]int) ([][][]float32, error) {
	v, B, T, err := m.logProbs(ctx, inputs)
	if err != nil {
		return nil, err
	}
	return SplitRows(v, B, T), nil
}
