package lm

import (
	"context"
	"errors"
	"fmt"
	"math"

	"arbench/harness"
	"arbench/nn"
)

// Embedder is a Net whose first layer's input is built apart from the
// layers that read it, so that the gradient of a loss with respect to that
// input can be measured (Base.EmbeddingGradientNorms).
//
// Logits(g, ids, B, T, train) must equal
// FromEmbedding(g, Embed(g, ids, B, T), B, T, train).
type Embedder interface {
	Net
	// Embed builds x [B,T,D] for ids (an int tensor [B*T]): the vectors
	// the first layer reads (the token embedding, plus the position
	// embedding in a Transformer).
	Embed(g nn.Graph, ids nn.Tensor, B, T int) nn.Tensor
	// FromEmbedding builds logits [B*T, V] from x [B,T,D]. train enables
	// dropout; false must build none, whatever kind of executable the
	// graph belongs to.
	FromEmbedding(g nn.Graph, x nn.Tensor, B, T int, train bool) nn.Tensor
}

// probeName is the name of the zero parameter added to the embedding.
const probeName = "input_probe"

// ErrNoEmbedder is returned by EmbeddingGradientNorms when the Net does
// not build its embedding apart (it is no Embedder).
var ErrNoEmbedder = errors.New("the network does not build its input embedding apart (it is no lm.Embedder)")

// EmbeddingGradientNorms implements harness.InputGradienter for a Base
// whose Net is an Embedder: out[i][s] = ‖∂ℓ_{i,t}/∂x_{i,s}‖₂ for s in
// [0, t], with ℓ_{i,t} = −log p(b.Targets[i][t] | b.Inputs[i][:t+1]) and
// x_{i,s} the embedding the first layer reads. This is the quantity whose
// decay with t−s Bengio, Simard & Frasconi (1994) and Hochreiter (1991)
// identify as the vanishing gradient of recurrent networks.
//
// The gradient is read off a zero "probe" parameter P [B,T,D] added to
// the embedding, x' = x + P, in a training executable with the loss
// Σ_i ℓ_{i,t}: ∂(Σ_j ℓ_{j,t})/∂P_{i,s} = ∂ℓ_{i,t}/∂x_{i,s} because row i's
// loss depends only on row i. The network is built in evaluation mode
// (FromEmbedding with train false: no dropout). The executable also
// overwrites every model parameter's Grad; those slices are swapped for
// scratch ones during the run, so the parameters and their gradients are
// left exactly as they were.
//
// Models that provide harness.InputGradienter call it from their own
// InputGradientNorms, so that models embedding Base with another Net do
// not claim the ability.
func (m *Base) EmbeddingGradientNorms(ctx context.Context, b harness.Batch, t int) ([][]float64, error) {
	g, T, err := m.embeddingGradients(ctx, b, t)
	if err != nil {
		return nil, err
	}
	return rowNorms(g, len(b.Inputs), T, t+1), nil
}

// embeddingGradients checks the request, runs the probe executable and
// returns the probe's gradient [B*T*D] and T.
func (m *Base) embeddingGradients(ctx context.Context, b harness.Batch, t int) (nn.Value, int, error) {
	if err := m.checkBatch(b); err != nil {
		return nn.Value{}, 0, err
	}
	emb, ok := m.net.(Embedder)
	if !ok {
		return nn.Value{}, 0, fmt.Errorf("%s: input gradients: %w", m.family, ErrNoEmbedder)
	}
	ids, B, T, err := m.inputIDs(b.Inputs)
	if err != nil {
		return nn.Value{}, 0, err
	}
	tg, err := m.targetAt(b.Targets, B, T, t)
	if err != nil {
		return nn.Value{}, 0, err
	}
	key := fmt.Sprintf("inputgrad/b%d/t%d", B, T)
	e, err := m.cache.GetUnboundTraining(key, func(g nn.Graph) error {
		x := emb.Embed(g, g.Ints(FeedIDs, B*T), B, T)
		logits := emb.FromEmbedding(g, g.Add(x, g.Param(m.probe(key, x.Shape()))), B, T, false)
		g.Loss(g.Scale(g.Sum(g.Pick(g.LogSoftmax(logits), g.Ints(FeedTargets, B*T))), -1))
		return nil
	})
	if err != nil {
		return nn.Value{}, 0, fmt.Errorf("%s: %w", m.family, err)
	}
	restore := m.swapGrads()
	_, err = e.Run(ctx, nn.Feeds{Ints: map[string][]int{FeedIDs: ids, FeedTargets: tg}})
	restore()
	if err != nil {
		return nn.Value{}, 0, fmt.Errorf("%s: input gradients: %w", m.family, err)
	}
	probe := m.probes[key]
	return nn.Value{Shape: probe.Shape, Data: probe.Grad}, T, nil
}

// targetAt checks targets against the inputs' B×T shape and position t,
// and returns the feed that scores only position t of every row (-1
// elsewhere: Pick gives those positions no gradient).
func (m *Base) targetAt(targets [][]int, B, T, t int) ([]int, error) {
	if tb, tt, err := Shape("targets", targets); err != nil || tb != B || tt != T {
		return nil, fmt.Errorf("%s: targets do not match inputs %dx%d", m.family, B, T)
	}
	if t < 0 || t >= T {
		return nil, fmt.Errorf("%s: input gradients at position %d of rows of %d tokens (want 0 <= t < %d)", m.family, t, T, T)
	}
	tg := make([]int, B*T)
	for i := range tg {
		tg[i] = -1
	}
	for i, row := range targets {
		v := row[t]
		if v < 0 || v >= m.vocab {
			return nil, fmt.Errorf("%s: input gradients: target %d at row %d position %d is not a scored token of the vocabulary [0,%d)", m.family, v, i, t, m.vocab)
		}
		tg[i*T+t] = v
	}
	return tg, nil
}

// probe returns the zero probe parameter of the executable key, of the
// given shape, the same one for every build (a backend may rerun the
// build function on every Run). It is in no ParamSet: optimisers and
// weight files never see it.
func (m *Base) probe(key string, shape []int) *nn.Param {
	if p, ok := m.probes[key]; ok {
		return p
	}
	if m.probes == nil {
		m.probes = map[string]*nn.Param{}
	}
	p := nn.NewParamSet().Add(probeName, shape...)
	m.probes[key] = p
	return p
}

// swapGrads points every parameter's Grad at a fresh scratch slice and
// returns the function that puts the originals back, untouched by the run.
func (m *Base) swapGrads() (restore func()) {
	list := m.params.List()
	saved := make([][]float32, len(list))
	for i, p := range list {
		saved[i], p.Grad = p.Grad, make([]float32, len(p.Data))
	}
	return func() {
		for i, p := range list {
			p.Grad = saved[i]
		}
	}
}

// rowNorms returns out[i][s] = ‖g[i,s,:]‖₂ for s < n from g [B,T,D],
// summed in float64.
func rowNorms(g nn.Value, B, T, n int) [][]float64 {
	D := len(g.Data) / (B * T)
	out := make([][]float64, B)
	for i := range out {
		out[i] = make([]float64, n)
		for s := range n {
			var sum float64
			for _, v := range g.Data[(i*T+s)*D : (i*T+s+1)*D] {
				sum += float64(v) * float64(v)
			}
			out[i][s] = math.Sqrt(sum)
		}
	}
	return out
}
