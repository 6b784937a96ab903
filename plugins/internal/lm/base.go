package lm

import (
	"context"
	"fmt"

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
// harness.Scorer and harness.Distributioner.
type Base struct {
	family string
	vocab  int
	params *nn.ParamSet
	net    Net
	cache  *Cache
}

var (
	_ harness.Trainer        = (*Base)(nil)
	_ harness.Scorer         = (*Base)(nil)
	_ harness.Distributioner = (*Base)(nil)
)

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

// Vocab returns the vocabulary size.
func (m *Base) Vocab() int { return m.vocab }

// Exec returns the cached executable for key.
func (m *Base) Exec(key string, train bool, build nn.BuildFunc) (nn.Executable, error) {
	if m.cache == nil {
		return nil, fmt.Errorf("%s: model used before Setup", m.family)
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
	if m.cache == nil {
		return nil, fmt.Errorf("%s: model used before Setup", m.family)
	}
	e, err := m.cache.GetUnbound(key, build)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.family, err)
	}
	return e, nil
}

// Close releases compiled executables.
func (m *Base) Close() error {
	if m.cache == nil {
		return nil
	}
	return m.cache.Close()
}

// Gradients computes the mean cross-entropy of b and its gradient.
func (m *Base) Gradients(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	feeds, B, T, err := LMFeeds(b, m.vocab, seed)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.family, err)
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
	return res.Loss, CheckLoss(m.family, res.Loss)
}

// logProbs runs the evaluation graph: log-softmax over [B*T, V].
func (m *Base) logProbs(ctx context.Context, inputs [][]int) (nn.Value, int, int, error) {
	B, T, err := Shape("inputs", inputs)
	if err != nil {
		return nn.Value{}, 0, 0, fmt.Errorf("%s: %w", m.family, err)
	}
	ids, err := Flatten("inputs", inputs, m.vocab, false)
	if err != nil {
		return nn.Value{}, 0, 0, fmt.Errorf("%s: %w", m.family, err)
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

// LogProbs returns log p(target) per position under teacher forcing.
func (m *Base) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	if _, err := Flatten("targets", b.Targets, m.vocab, true); err != nil {
		return nil, fmt.Errorf("%s: %w", m.family, err)
	}
	v, B, T, err := m.logProbs(ctx, b.Inputs)
	if err != nil {
		return nil, err
	}
	if tb, tt, err := Shape("targets", b.Targets); err != nil || tb != B || tt != T {
		return nil, fmt.Errorf("%s: targets do not match inputs %dx%d", m.family, B, T)
	}
	return PickLogProbs(v, b.Targets)
}

// NextLogProbs returns the full next-token distributions.
func (m *Base) NextLogProbs(ctx context.Context, inputs [][]int) ([][][]float32, error) {
	v, B, T, err := m.logProbs(ctx, inputs)
	if err != nil {
		return nil, err
	}
	return SplitRows(v, B, T), nil
}
