// Package recurrent implements the survey's RNN generator (embedding →
// recurrent layers → linear) for both the tanh RNN and the LSTM cell; the
// rnn and lstm plugins register it under their names.
//
// Weights use exactly the names, shapes and layouts of this PyTorch module's
// state_dict (batch_first; gate order i,f,g,o for the LSTM):
//
//	embedding = nn.Embedding(V, E)
//	rnn = nn.RNN(E, H, num_layers=L, batch_first=True)   # or nn.LSTM
//	fc = nn.Linear(H, V)
//
// so `-load-weights` reads a file saved from PyTorch with
// safetensors.torch.save_file(model.state_dict(), path) and vice versa.
package recurrent

import (
	"context"
	"fmt"
	"io"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

// Config is the typed configuration of the rnn and lstm plugins.
type Config struct {
	// Embed is the embedding width E.
	Embed int `yaml:"embed"`
	// Hidden is the hidden state width H.
	Hidden int `yaml:"hidden"`
	// Layers is the number of stacked recurrent layers.
	Layers int `yaml:"layers"`
	// Dropout is applied between layers and to the last layer's outputs
	// during training (Zaremba et al. 2014: non-recurrent connections only).
	Dropout float64 `yaml:"dropout"`
}

// Validate reports every invalid field.
func (c *Config) Validate() []error {
	var errs []error
	if c.Embed <= 0 {
		errs = append(errs, fmt.Errorf("embed: must be positive, got %d", c.Embed))
	}
	if c.Hidden <= 0 {
		errs = append(errs, fmt.Errorf("hidden: must be positive, got %d", c.Hidden))
	}
	if c.Layers <= 0 {
		errs = append(errs, fmt.Errorf("layers: must be positive, got %d", c.Layers))
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) { // NaN fails both comparisons
		errs = append(errs, fmt.Errorf("dropout: must be in [0,1), got %v", c.Dropout))
	}
	return errs
}

// Model is an embedding → RNN/LSTM stack → linear language model.
type Model struct {
	lm.Recurrent
	family string
	cfg    Config

	emb   *nn.Embedding
	rnns  []*nn.RNN
	lstms []*nn.LSTM
	fc    *nn.Linear
}

var (
	_ harness.Model           = (*Model)(nil)
	_ harness.Trainer         = (*Model)(nil)
	_ harness.Scorer          = (*Model)(nil)
	_ harness.Distributioner  = (*Model)(nil)
	_ harness.Stepper         = (*Model)(nil)
	_ harness.InputGradienter = (*Model)(nil)
	_ harness.EnvChecker      = (*Model)(nil)
	_ harness.MemoryEstimator = (*Model)(nil)
	_ io.Closer               = (*Model)(nil)
	_ harness.Config          = (*Config)(nil)
	_ lm.RecurrentNet         = (*net)(nil)
	_ lm.Embedder             = (*net)(nil)
)

// New returns an unconfigured model of the given cell family ("rnn" or "lstm").
func New(family string, defaults Config) *Model {
	if family != "rnn" && family != "lstm" {
		panic("recurrent: unknown cell family " + family)
	}
	return &Model{family: family, cfg: defaults}
}

// Config returns the configuration to decode into.
func (m *Model) Config() harness.Config { return &m.cfg }

// Info describes the model.
func (m *Model) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: m.family, Params: m.Params().Count()}
}

// CheckEnv reports what env asks that the model cannot do (see
// lm.CheckEnv; a recurrent model has no context limit). Setup checks the same.
func (m *Model) CheckEnv(env harness.Env) []error { return lm.CheckEnv(env) }

// Setup allocates and initialises the parameters with PyTorch's defaults.
func (m *Model) Setup(_ context.Context, env harness.Env) error {
	if err := lm.CheckSetup(m.family, m.cfg.Validate(), m.CheckEnv(env), env.Backend != nil); err != nil {
		return err
	}
	ps := nn.NewParamSet()
	rng := nn.NewRNG(env.Seed)
	m.emb = nn.NewEmbedding(ps, "embedding", env.Vocab, m.cfg.Embed)
	m.emb.Init(rng)
	m.rnns, m.lstms = nil, nil
	for l := range m.cfg.Layers {
		in := m.cfg.Hidden
		if l == 0 {
			in = m.cfg.Embed
		}
		if m.family == "rnn" {
			r := nn.NewRNN(ps, "rnn", l, in, m.cfg.Hidden)
			r.Init(rng)
			m.rnns = append(m.rnns, r)
		} else {
			r := nn.NewLSTM(ps, "rnn", l, in, m.cfg.Hidden)
			r.Init(rng)
			m.lstms = append(m.lstms, r)
		}
	}
	m.fc = nn.NewLinear(ps, "fc", m.cfg.Hidden, env.Vocab)
	m.fc.Init(rng)
	base := &lm.Base{}
	n := &net{m}
	base.Init(m.family, env.Backend, ps, env.Vocab, n)
	m.Recurrent = lm.NewRecurrent(base, n)
	return nil
}

// net adapts the model to lm.RecurrentNet.
type net struct{ m *Model }

// Logits runs every row from zero state.
func (n *net) Logits(g nn.Graph, ids nn.Tensor, B, T int, train bool) nn.Tensor {
	return lm.ZeroStateLogits(n, g, ids, B, T, train)
}

// StateSizes is [H] per layer for the RNN, [H, H] (h, c) per layer for the LSTM.
func (n *net) StateSizes() []int {
	per := 1
	if n.m.family == "lstm" {
		per = 2
	}
	sizes := make([]int, per*n.m.cfg.Layers)
	for i := range sizes {
		sizes[i] = n.m.cfg.Hidden
	}
	return sizes
}

// Embed gathers the embedding rows x_t = embedding(ids_t), [B,T,E]: the
// input of the first recurrent layer.
func (n *net) Embed(g nn.Graph, ids nn.Tensor, B, T int) nn.Tensor {
	return g.Reshape(n.m.emb.Forward(g, ids), B, T, n.m.cfg.Embed)
}

// FromEmbedding runs every row of x [B,T,E] from zero state.
func (n *net) FromEmbedding(g nn.Graph, x nn.Tensor, B, T int, train bool) nn.Tensor {
	logits, _ := n.layers(g, x, lm.ZeroStates(n, g, B), B, T, train)
	return logits
}

// Forward computes logits_t = fc(h_t^L), h_t^l = cell(h_{t-1}^l, h_t^{l-1}),
// h_t^0 = embedding(x_t) (Elman 1990; Hochreiter & Schmidhuber 1997).
func (n *net) Forward(g nn.Graph, ids nn.Tensor, states []nn.Tensor, B, T int, train bool) (nn.Tensor, []nn.Tensor) {
	return n.layers(g, n.Embed(g, ids, B, T), states, B, T, train)
}

// layers is Forward from the embedding x [B,T,E] on: the recurrent stack,
// with dropout on each layer's outputs when train, and the output layer.
func (n *net) layers(g nn.Graph, x nn.Tensor, states []nn.Tensor, B, T int, train bool) (nn.Tensor, []nn.Tensor) {
	m := n.m
	out := make([]nn.Tensor, 0, len(states))
	drop := func(t nn.Tensor) nn.Tensor {
		if train && m.cfg.Dropout > 0 {
			return g.Dropout(t, float32(m.cfg.Dropout))
		}
		return t
	}
	for l := range m.cfg.Layers {
		if m.family == "rnn" {
			seq, h := m.rnns[l].Forward(g, x, states[l])
			x = seq
			out = append(out, h)
		} else {
			seq, h, c := m.lstms[l].Forward(g, x, states[2*l], states[2*l+1])
			x = seq
			out = append(out, h, c)
		}
		x = drop(x)
	}
	return m.fc.Forward(g, g.Reshape(x, B*T, m.cfg.Hidden)), out
}
