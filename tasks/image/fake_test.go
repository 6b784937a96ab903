package image

import (
	"context"
	"fmt"
	"math"

	"arbench/harness"
	"arbench/nn"
)

// constModel is a fake model that gives every pixel probability p1 of
// being 1, whatever the pixels before it, and no mass to the start token:
// a Scorer and a Stepper written without nn.Graph.
type constModel struct {
	baseModel
	p1 float64
}

// baseModel is the Model part of the fakes.
type baseModel struct{ family string }

func (m baseModel) Config() harness.Config                   { return nil }
func (m baseModel) Setup(context.Context, harness.Env) error { return nil }
func (m baseModel) Params() *nn.ParamSet                     { return nil }
func (m baseModel) Info() harness.ModelInfo                  { return harness.ModelInfo{Family: m.family} }

func (m *constModel) dist() []float32 {
	return []float32{float32(math.Log(1 - m.p1)), float32(math.Log(m.p1)), float32(math.Inf(-1))}
}

func (m *constModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	out := make([][]float64, len(b.Targets))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
		for k, tg := range row {
			switch tg {
			case 0:
				out[i][k] = math.Log(1 - m.p1)
			case 1:
				out[i][k] = math.Log(m.p1)
			case Start:
				out[i][k] = math.Inf(-1)
			default:
				if tg >= 0 {
					return nil, fmt.Errorf("target %d outside the vocabulary", tg)
				}
			}
		}
	}
	return out, nil
}

type constState struct{ n int }

func (s *constState) Len() int { return s.n }

func (m *constModel) Start(_ context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	out := make([][]float32, len(prompts))
	for i := range out {
		out[i] = m.dist()
	}
	return &constState{n: len(prompts[0])}, out, nil
}

func (m *constModel) Step(_ context.Context, s harness.State, tokens []int) ([][]float32, error) {
	s.(*constState).n++
	out := make([][]float32, len(tokens))
	for i := range out {
		out[i] = m.dist()
	}
	return out, nil
}

var (
	_ harness.Scorer  = (*constModel)(nil)
	_ harness.Stepper = (*constModel)(nil)
)

// limitedModel is a constModel whose context is limit tokens.
type limitedModel struct {
	constModel
	limit int
}

func (m *limitedModel) MaxContext() int { return m.limit }

// copyModel predicts pixel t to equal pixel t−1 with probability q (pixel 0
// is 1/2): a model whose samples depend on what it generated, for the
// completion's free-running path. It is a Scorer and a Distributioner
// (so the Decoder re-feeds it).
type copyModel struct {
	baseModel
	q float64
}

func (m *copyModel) logp(prev, tg int) float64 {
	if prev == Start {
		return math.Log(0.5)
	}
	if tg == prev {
		return math.Log(m.q)
	}
	return math.Log(1 - m.q)
}

func (m *copyModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	out := make([][]float64, len(b.Targets))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
		for k, tg := range row {
			out[i][k] = m.logp(b.Inputs[i][k], tg)
		}
	}
	return out, nil
}

func (m *copyModel) NextLogProbs(_ context.Context, inputs [][]int) ([][][]float32, error) {
	out := make([][][]float32, len(inputs))
	for i, row := range inputs {
		for _, prev := range row {
			out[i] = append(out[i], []float32{float32(m.logp(prev, 0)), float32(m.logp(prev, 1)), float32(math.Inf(-1))})
		}
	}
	return out, nil
}

var _ harness.Distributioner = (*copyModel)(nil)
