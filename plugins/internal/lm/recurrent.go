package lm

import (
	"context"
	"fmt"

	"arbench/harness"
	"arbench/nn"
)

// RecurrentNet is a network whose state is carried from step to step
// (h_t = f(h_{t-1}, x_t)), so generation never re-reads the prefix.
type RecurrentNet interface {
	// StateSizes returns the width of each carried state vector of one row
	// (e.g. [H] for a one-layer RNN, [H, H] for an LSTM's h and c).
	StateSizes() []int
	// Forward runs T steps from states (each [B, size]) and returns logits
	// [B*T, V] and the final states.
	Forward(g nn.Graph, ids nn.Tensor, states []nn.Tensor, B, T int, train bool) (nn.Tensor, []nn.Tensor)
}

// ZeroStateLogits adapts a RecurrentNet to Net: every row starts from zero state.
func ZeroStateLogits(net RecurrentNet, g nn.Graph, ids nn.Tensor, B, T int, train bool) nn.Tensor {
	logits, _ := net.Forward(g, ids, ZeroStates(net, g, B), B, T, train)
	return logits
}

// ZeroStates returns net's initial states for B rows: zero constants [B, size].
func ZeroStates(net RecurrentNet, g nn.Graph, B int) []nn.Tensor {
	sizes := net.StateSizes()
	states := make([]nn.Tensor, len(sizes))
	for i, n := range sizes {
		states[i] = g.Const(make([]float32, B*n), B, n)
	}
	return states
}

// Recurrent adds harness.Stepper to a Base whose Net is a RecurrentNet.
// Its zero value (a nil Base, before Setup) is safe: Start and Step return
// ErrNotSetup, and the Base methods behave as on a nil *Base.
type Recurrent struct {
	*Base
	net RecurrentNet
}

var (
	_ harness.Stepper         = Recurrent{}
	_ harness.InputGradienter = Recurrent{}
	_ harness.State           = (*recState)(nil)
)

// NewRecurrent wraps base; net must be the RecurrentNet base was built
// with, and an Embedder for InputGradientNorms to work.
func NewRecurrent(base *Base, net RecurrentNet) Recurrent { return Recurrent{Base: base, net: net} }

// InputGradientNorms is harness.InputGradienter through
// Base.EmbeddingGradientNorms: every row runs from zero state, as in
// training and scoring.
func (r Recurrent) InputGradientNorms(ctx context.Context, b harness.Batch, t int) ([][]float64, error) {
	return r.Base.EmbeddingGradientNorms(ctx, b, t)
}

type recState struct {
	n      int
	b      int
	states [][]float32
}

func (s *recState) Len() int { return s.n }

func stateFeed(i int) string { return fmt.Sprintf("state%d", i) }

// advance feeds rows of T tokens from the given states and returns the
// next-token log-probabilities after the last one and the new states.
func (r Recurrent) advance(ctx context.Context, rows [][]int, states [][]float32) ([][]float32, [][]float32, error) {
	if err := r.ready(); err != nil {
		return nil, nil, err
	}
	B, T, err := Shape("tokens", rows)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.family, err)
	}
	ids, err := Flatten("tokens", rows, r.vocab, false)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.family, err)
	}
	sizes := r.net.StateSizes()
	e, err := r.Exec(fmt.Sprintf("step/b%d/t%d", B, T), false, func(g nn.Graph) error {
		in := make([]nn.Tensor, len(sizes))
		for i, n := range sizes {
			in[i] = g.Floats(stateFeed(i), B, n)
		}
		logits, out := r.net.Forward(g, g.Ints(FeedIDs, B*T), in, B, T, false)
		V := logits.Shape()[1]
		last := g.Reshape(g.Slice(g.Reshape(logits, B, T, V), 1, T-1, T), B, V)
		g.Output(OutLogProbs, g.LogSoftmax(last))
		for i, s := range out {
			g.Output(stateFeed(i), s)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	feeds := nn.Feeds{Ints: map[string][]int{FeedIDs: ids}, Floats: map[string][]float32{}}
	for i, n := range sizes {
		if states == nil {
			feeds.Floats[stateFeed(i)] = make([]float32, B*n)
		} else {
			feeds.Floats[stateFeed(i)] = states[i]
		}
	}
	res, err := e.Run(ctx, feeds)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: generation step: %w", r.family, err)
	}
	next := make([][]float32, len(sizes))
	for i := range sizes {
		next[i] = res.Outputs[stateFeed(i)].Data
	}
	return LastRows(res.Outputs[OutLogProbs], B, 1), next, nil
}

// Start consumes the prompts from zero state.
func (r Recurrent) Start(ctx context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	logp, states, err := r.advance(ctx, prompts, nil)
	if err != nil {
		return nil, nil, err
	}
	return &recState{n: len(prompts[0]), b: len(prompts), states: states}, logp, nil
}

// Step feeds one token per row.
func (r Recurrent) Step(ctx context.Context, s harness.State, tokens []int) ([][]float32, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	st, ok := s.(*recState)
	if !ok {
		return nil, fmt.Errorf("%s: Step given a state of type %T not made by Start", r.family, s)
	}
	if len(tokens) != st.b {
		return nil, fmt.Errorf("%s: Step given %d tokens for %d rows", r.family, len(tokens), st.b)
	}
	rows := make([][]int, len(tokens))
	for i, t := range tokens {
		rows[i] = []int{t}
	}
	logp, states, err := r.advance(ctx, rows, st.states)
	if err != nil {
		return nil, err
	}
	st.states = states
	st.n++
	return logp, nil
}
