// Package bernoulli registers the factorised baseline of the image tasks:
// every pixel independent, p(x) = Π_t p_t^{x_t} (1 − p_t)^{1−x_t} with
// p_t = σ(θ_t) learned per position t and no dependence on the other
// pixels. It is the likelihood floor an autoregressive model must beat
// (the "independent pixels" row of the binarized-MNIST tables), and, since
// its pixels need no previous ones, the model that could be sampled in a
// single parallel pass.
//
// It models binary sequences (tokens 0 and 1), optionally with one more
// token (the image tasks' start token, 2) that it never predicts: the
// logits of position t are (0, θ_t, NoMass), so that log-softmax gives
// log(1 − σ(θ_t)), log σ(θ_t) and a negligible start-token mass, whatever
// the inputs. The weights map onto this PyTorch module (state_dict name
// `logit`):
//
//	class Bernoulli(nn.Module):
//	    def __init__(self, N, V=3):                  # N = positions, V in {2, 3}
//	        super().__init__()
//	        self.V = V
//	        self.logit = nn.Parameter(torch.zeros(N))  # θ_t; p_t = sigmoid(θ_t)
//	    def forward(self, ids):                      # ids [B,T], T <= N; ignored
//	        B, T = ids.shape
//	        th = self.logit[:T]
//	        cols = [torch.zeros_like(th), th] + [torch.full_like(th, -1e4)] * (self.V - 2)
//	        return torch.stack(cols, -1).expand(B, T, self.V)  # logits [B,T,V]
//
// Cross-entropy on those logits is torch.nn.functional.binary_cross_entropy_with_logits(th, x)
// for binary targets. θ starts at 0 (p_t = 1/2: exactly 1 bit per pixel).
package bernoulli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

func init() {
	harness.RegisterModel("bernoulli", "factorised baseline for binary images: independent pixels, p_t = sigmoid(θ_t) per position", New)
}

// NoMass is the logit of the tokens after 0 and 1 (the start token): a
// finite stand-in for −∞ whose probability, e^−10000, is 0 in float32.
const NoMass = -1e4

// ParamName is the state_dict name of θ.
const ParamName = "logit"

// Config is the bernoulli plugin's configuration: it has no fields (θ has
// one entry per position of the task's rows).
type Config struct{}

// Validate reports nothing: every configuration is valid.
func (c *Config) Validate() []error { return nil }

// Model is the factorised Bernoulli model.
type Model struct {
	*lm.Base
	cfg   Config
	logit *nn.Param
	vocab int
}

var (
	_ harness.Model                  = (*Model)(nil)
	_ harness.Trainer                = (*Model)(nil)
	_ harness.Scorer                 = (*Model)(nil)
	_ harness.Distributioner         = (*Model)(nil)
	_ harness.PositionDistributioner = (*Model)(nil)
	_ harness.ContextLimiter         = (*Model)(nil)
	_ harness.Stepper                = (*Model)(nil)
	_ harness.EnvChecker             = (*Model)(nil)
	_ harness.MemoryEstimator        = (*Model)(nil)
	_ io.Closer                      = (*Model)(nil)
	_ harness.Config                 = (*Config)(nil)
	_ lm.Net                         = (*Model)(nil)
)

// New returns a fresh, unconfigured model.
func New() harness.Model { return &Model{} }

// Config returns the configuration to decode into.
func (m *Model) Config() harness.Config { return &m.cfg }

// Info describes the model.
func (m *Model) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: "bernoulli", Params: m.Params().Count()}
}

// MaxContext is the number of positions θ covers (0 before Setup).
func (m *Model) MaxContext() int {
	if m.logit == nil {
		return 0
	}
	return m.logit.Size()
}

// CheckEnv reports what env asks that the model cannot do: besides
// lm.CheckEnv, a vocabulary other than 2 or 3 tokens (binary values and at
// most a start token) and rows of no positions.
func (m *Model) CheckEnv(env harness.Env) []error {
	errs := lm.CheckEnv(env)
	if env.Vocab != 2 && env.Vocab != 3 {
		errs = append(errs, fmt.Errorf("the task's vocabulary has %d tokens; bernoulli models binary values (tokens 0 and 1) and at most a start token: vocabulary 2 or 3", env.Vocab))
	}
	if env.SeqLen <= 0 {
		errs = append(errs, fmt.Errorf("the task's rows have %d positions; bernoulli learns one probability per position and needs at least one", env.SeqLen))
	}
	return errs
}

// Setup allocates θ (env.SeqLen zeros).
func (m *Model) Setup(_ context.Context, env harness.Env) error {
	if err := lm.CheckSetup("bernoulli", m.cfg.Validate(), m.CheckEnv(env), env.Backend != nil); err != nil {
		return err
	}
	ps := nn.NewParamSet()
	m.logit = ps.Add(ParamName, env.SeqLen)
	m.vocab = env.Vocab
	m.Base = &lm.Base{}
	m.Base.Init("bernoulli", env.Backend, ps, env.Vocab, m)
	return nil
}

// Logits returns, for every row, the logits (0, θ_t, NoMass…) of
// positions t < T: a [T, V] table broadcast over the B rows (Add with a
// trailing-suffix operand), independent of ids.
func (m *Model) Logits(g nn.Graph, ids nn.Tensor, B, T int, train bool) nn.Tensor {
	if T > m.logit.Size() {
		panic(fmt.Sprintf("bernoulli: %d positions exceed the %d learned ones", T, m.logit.Size()))
	}
	th := g.Reshape(g.Slice(g.Param(m.logit), 0, 0, T), T, 1)
	cols := []nn.Tensor{g.Const(make([]float32, T), T, 1), th}
	for range m.vocab - 2 {
		cols = append(cols, g.Const(filled(T, NoMass), T, 1))
	}
	table := g.Concat(1, cols...) // [T, V]
	out := g.Add(g.Const(make([]float32, B*T*m.vocab), B, T, m.vocab), table)
	return g.Reshape(out, B*T, m.vocab)
}

func filled(n int, v float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// LogProbsAt returns log p(v) at position t for v < V, computed on the
// host from θ: log-softmax of (0, θ_t, NoMass…) in float64, rounded to
// float32.
func (m *Model) LogProbsAt(t int) []float32 {
	th := float64(m.logit.Data[t])
	logits := []float64{0, th}
	for range m.vocab - 2 {
		logits = append(logits, NoMass)
	}
	hi := max(0, th)
	var s float64
	for _, z := range logits {
		s += math.Exp(z - hi)
	}
	lse := hi + math.Log(s)
	out := make([]float32, len(logits))
	for v, z := range logits {
		out[v] = float32(z - lse)
	}
	return out
}

// NextLogProbsAt returns the distribution of position at for every row
// (the same for all: the inputs are not read).
func (m *Model) NextLogProbsAt(_ context.Context, inputs [][]int, at int) ([][]float32, error) {
	if m.logit == nil {
		return nil, lm.ErrNotSetup
	}
	if _, _, err := lm.Shape("inputs", inputs); err != nil {
		return nil, fmt.Errorf("bernoulli: %w", err)
	}
	if at < 0 || at >= min(len(inputs[0]), m.logit.Size()) {
		return nil, fmt.Errorf("bernoulli: position %d outside rows of %d tokens (and %d learned positions)", at, len(inputs[0]), m.logit.Size())
	}
	out := make([][]float32, len(inputs))
	for i := range out {
		out[i] = m.LogProbsAt(at)
	}
	return out, nil
}

// state is the number of tokens read per row.
type state struct{ n int }

func (s *state) Len() int { return s.n }

// Start reads the prompts (only their length matters) and returns the
// distribution of the next position.
func (m *Model) Start(_ context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	if m.logit == nil {
		return nil, nil, lm.ErrNotSetup
	}
	_, T, err := lm.Shape("prompts", prompts)
	if err != nil {
		return nil, nil, fmt.Errorf("bernoulli: %w", err)
	}
	s := &state{n: T}
	out, err := m.next(s, len(prompts))
	return s, out, err
}

// Step feeds one token per row and returns the next position's
// distribution.
func (m *Model) Step(_ context.Context, st harness.State, tokens []int) ([][]float32, error) {
	if m.logit == nil {
		return nil, lm.ErrNotSetup
	}
	s, ok := st.(*state)
	if !ok || s == nil {
		return nil, errors.New("bernoulli: Step with a state Start did not return")
	}
	s.n++
	return m.next(s, len(tokens))
}

// next returns the distribution of position s.n−1 (the one after s.n
// tokens) for rows rows.
func (m *Model) next(s *state, rows int) ([][]float32, error) {
	if s.n > m.logit.Size() {
		return nil, fmt.Errorf("bernoulli: %d tokens exceed the %d learned positions", s.n, m.logit.Size())
	}
	lp := m.LogProbsAt(s.n - 1)
	out := make([][]float32, rows)
	for i := range out {
		out[i] = append([]float32(nil), lp...)
	}
	return out, nil
}

// EstimateMemory estimates the model's memory for env without allocating
// it (lm.Footprint.Estimate): N = env.SeqLen parameters, and per position
// the values the gorgonia backend's pooled buffers hold (lm.Values), with
// V = env.Vocab: the zero constant [B,T,V] the table is broadcast onto
// (V, held), then in training lm.OutputTrain(0, V) (the log-softmax saved,
// its gradient and the Pick's in flight; there is no fc input) and in
// evaluation lm.OutputEval(V) (the broadcast sum and its log-softmax, the
// distributions handed out): 4V each. The per-position table has no
// gradient buffer of its own beyond the [T,V] sum over rows, and about 10
// ops (lm.Footprint.Ops).
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	V := float64(env.Vocab)
	zeros := lm.Values{Held: V}
	return lm.Footprint{
		Params: float64(max(env.SeqLen, 0)),
		Train:  zeros.Then(lm.OutputTrain(0, V)).Total(),
		Eval:   zeros.Then(lm.OutputEval(V)).Total(),
		Ops:    10 + V,
	}.Estimate(env)
}
