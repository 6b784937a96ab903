// Package transformer registers the survey's Transformer decoder: a
// decoder-only stack with learned positions and a causal mask (Vaswani et
// al. 2017; Radford et al. 2018), generating greedily or by sampling with a
// key/value cache (kvcache.go; `kv_cache: false` selects the survey's
// re-feeding loop instead).
//
// The survey's TransformerDecoder uses nn.TransformerDecoderLayer with a
// `memory` argument although a language model has no encoder output, and its
// generate_text passes memory=None, which fails in PyTorch. A decoder-only
// model is exactly a stack of encoder layers (self-attention + feed-forward)
// under a causal mask, which is what this plugin implements. Its weights map
// one to one onto this PyTorch module (names are identical):
//
//	class TransformerLM(nn.Module):
//	    def __init__(self, V, d, heads, layers, ctx):
//	        super().__init__()
//	        self.embedding = nn.Embedding(V, d)
//	        self.pos = nn.Embedding(ctx, d)
//	        self.encoder = nn.TransformerEncoder(
//	            nn.TransformerEncoderLayer(d, heads, 4*d, dropout=0, batch_first=True), layers)
//	        self.fc = nn.Linear(d, V)
//	    def forward(self, ids):                      # ids [B,T], T <= ctx
//	        T = ids.shape[1]
//	        x = self.embedding(ids) + self.pos(torch.arange(T))
//	        mask = nn.Transformer.generate_square_subsequent_mask(T)
//	        return self.fc(self.encoder(x, mask=mask))  # logits [B,T,V]
//
// state_dict names: embedding.weight, pos.weight,
// encoder.layers.{i}.self_attn.{in_proj_weight,in_proj_bias,out_proj.weight,out_proj.bias},
// encoder.layers.{i}.{linear1,linear2,norm1,norm2}.{weight,bias}, fc.weight, fc.bias.
package transformer

import (
	"context"
	"fmt"
	"io"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

func init() {
	harness.RegisterModel("transformer", "decoder-only Transformer (causal self-attention, learned positions, post-norm)", New)
}

// Config is the transformer plugin's typed configuration.
type Config struct {
	// Dim is the model width d.
	Dim int `yaml:"dim"`
	// Heads is the number of attention heads; it must divide Dim.
	Heads int `yaml:"heads"`
	// Layers is the number of decoder blocks.
	Layers int `yaml:"layers"`
	// FF is the feed-forward width (0 means 4·Dim, PyTorch's usual choice).
	FF int `yaml:"ff"`
	// Context is the number of learned positions: the longest input.
	Context int `yaml:"context"`
	// Dropout is applied as in nn.TransformerEncoderLayer during training.
	Dropout float64 `yaml:"dropout"`
	// KVCache makes generation incremental: each new token attends to
	// cached keys and values and costs one position (default true). False
	// selects the survey's re-feeding loop, which reruns the model over
	// the whole sequence for every token (see kvcache.go).
	KVCache bool `yaml:"kv_cache"`
}

// Validate reports every invalid field.
func (c *Config) Validate() []error {
	return lm.TransformerShape{Dim: c.Dim, Heads: c.Heads, Layers: c.Layers, FF: c.FF, Context: c.Context, Dropout: c.Dropout}.Errors()
}

func (c *Config) ff() int {
	if c.FF == 0 {
		return 4 * c.Dim
	}
	return c.FF
}

// Model is the decoder-only Transformer language model.
type Model struct {
	*lm.Base
	cfg Config

	emb    *nn.Embedding
	pos    *nn.Param
	layers []*nn.TransformerEncoderLayer
	// evalLayers are layers with dropout 0, sharing their parameters: what
	// Logits builds when train is false, so that a training executable
	// built in evaluation mode (EmbeddingGradientNorms) has no dropout.
	evalLayers []*nn.TransformerEncoderLayer
	fc         *nn.Linear
	// kv holds the parameters decoding executables bind the key/value
	// caches to, by (batch, capacity); see kvcache.go.
	kv map[[2]int][]*nn.Param
}

var (
	_ harness.Model           = (*Model)(nil)
	_ harness.Trainer         = (*Model)(nil)
	_ harness.Scorer          = (*Model)(nil)
	_ harness.Distributioner  = (*Model)(nil)
	_ harness.ContextLimiter  = (*Model)(nil)
	_ harness.Stepper         = (*Model)(nil)
	_ harness.InputGradienter = (*Model)(nil)
	_ harness.EnvChecker      = (*Model)(nil)
	_ harness.MemoryEstimator = (*Model)(nil)
	_ io.Closer               = (*Model)(nil)
	_ harness.Config          = (*Config)(nil)
	_ lm.Net                  = (*Model)(nil)
	_ lm.Embedder             = (*Model)(nil)
)

// New returns a fresh, unconfigured transformer.
func New() harness.Model {
	return &Model{cfg: Config{Dim: 128, Heads: 4, Layers: 2, Context: 128, KVCache: true}}
}

// Config returns the configuration to decode into.
func (m *Model) Config() harness.Config { return &m.cfg }

// Info describes the model.
func (m *Model) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: "transformer", Params: m.Params().Count()}
}

// MaxContext is the number of learned positions.
func (m *Model) MaxContext() int { return m.cfg.Context }

// CheckEnv reports what env asks that the model cannot do: besides
// lm.CheckEnv, rows longer than the learned positions. Setup checks the same.
func (m *Model) CheckEnv(env harness.Env) []error {
	errs := lm.CheckEnv(env)
	if env.SeqLen > m.cfg.Context {
		errs = append(errs, fmt.Errorf("context: %d is shorter than the task's rows of %d; set context: >= %d", m.cfg.Context, env.SeqLen, env.SeqLen))
	}
	return errs
}

// Setup allocates parameters with PyTorch's default initialisation.
func (m *Model) Setup(_ context.Context, env harness.Env) error {
	if err := lm.CheckSetup("transformer", m.cfg.Validate(), m.CheckEnv(env), env.Backend != nil); err != nil {
		return err
	}
	ps := nn.NewParamSet()
	rng := nn.NewRNG(env.Seed)
	m.emb = nn.NewEmbedding(ps, "embedding", env.Vocab, m.cfg.Dim)
	m.emb.Init(rng)
	pos := nn.NewEmbedding(ps, "pos", m.cfg.Context, m.cfg.Dim)
	pos.Init(rng)
	m.pos = pos.Weight
	m.layers, m.evalLayers = nil, nil
	for i := range m.cfg.Layers {
		l := nn.NewTransformerEncoderLayer(ps, fmt.Sprintf("encoder.layers.%d", i), m.cfg.Dim, m.cfg.Heads, m.cfg.ff(), float32(m.cfg.Dropout))
		l.Init(rng)
		m.layers = append(m.layers, l)
		m.evalLayers = append(m.evalLayers, withoutDropout(l))
	}
	m.fc = nn.NewLinear(ps, "fc", m.cfg.Dim, env.Vocab)
	m.fc.Init(rng)
	m.kv = nil
	m.Base = &lm.Base{}
	m.Base.Init("transformer", env.Backend, ps, env.Vocab, m)
	return nil
}

// withoutDropout returns a copy of l with dropout 0 everywhere (its
// attention weights included) and the same parameters.
func withoutDropout(l *nn.TransformerEncoderLayer) *nn.TransformerEncoderLayer {
	c := *l
	attn := *l.SelfAttn
	attn.Dropout = 0
	c.SelfAttn, c.Dropout = &attn, 0
	return &c
}

// Logits computes fc(Blocks(E[x] + P[0:T])) under the causal mask
// softmax(QKᵀ/√d_k + M)V with M_ij = -∞ for j > i (Vaswani et al. 2017, eq. 1).
func (m *Model) Logits(g nn.Graph, ids nn.Tensor, B, T int, train bool) nn.Tensor {
	return m.FromEmbedding(g, m.Embed(g, ids, B, T), B, T, train)
}

// Embed builds E[x] + P[0:T], [B,T,d]: the input of the first block.
func (m *Model) Embed(g nn.Graph, ids nn.Tensor, B, T int) nn.Tensor {
	if T > m.cfg.Context {
		panic(fmt.Sprintf("transformer: %d positions exceed the context %d", T, m.cfg.Context))
	}
	x := g.Reshape(m.emb.Forward(g, ids), B, T, m.cfg.Dim)
	return g.Add(x, g.Slice(g.Param(m.pos), 0, 0, T))
}

// FromEmbedding computes fc(Blocks(x)) for x [B,T,d] under the causal
// mask; train selects the layers with dropout, false those without.
func (m *Model) FromEmbedding(g nn.Graph, x nn.Tensor, B, T int, train bool) nn.Tensor {
	layers := m.evalLayers
	if train {
		layers = m.layers
	}
	mask := g.Const(nn.CausalMask(T), T, T)
	for _, l := range layers {
		x = l.Forward(g, x, mask)
	}
	return m.fc.Forward(g, g.Reshape(x, B*T, m.cfg.Dim))
}

// InputGradientNorms is harness.InputGradienter through
// lm.Base.EmbeddingGradientNorms, with x_{i,s} = E[x_{i,s}] + P[s].
func (m *Model) InputGradientNorms(ctx context.Context, b harness.Batch, t int) ([][]float64, error) {
	return m.Base.EmbeddingGradientNorms(ctx, b, t)
}

// EstimateMemory estimates the model's memory for env without allocating
// it (see lm.Footprint.Estimate for the bytes, lm.Values for what the
// gorgonia backend's pooled buffers hold). With V = env.Vocab, width d,
// ff, heads h, layers L, context C and T = env.SeqLen, the parameters are
//
//	P = V·d + C·d + L·(4d² + 2d·ff + 9d + ff) + d·V + V,
//
// and the values per position, counted from the graph and checked by
// measuring (plugintest.CheckMemoryEstimate, on shapes where the
// feed-forward block, the logits or the attention weights dominate), are
//
//	training    lm.Embedded(d), L × lm.EncoderLayer(d, ff, h·T keys), then
//	            lm.OutputTrain(d, V): at the top of the backward pass
//	            L·(8d + ff + h·T) + d + V saved and the largest of 2V, 2·ff,
//	            2·h·T − ff − 2d and d in flight (with dropout h·T + ff more
//	            saved and h·T + 2d + ff of masks per layer);
//	evaluation  the largest of the embedding's stage (2d), the layers'
//	            (7d, h·T + 4d, 2·h·T + 2d, 2·ff + d) and the output's
//	            (2V), plus the V of the distributions NextLogProbs hands
//	            out.
//
// The training executable's packing buffers are lm.GemmWorkspace of its
// layers over B·T rows (lm.TransformerLinears), and the
// graph has about 20 + L·lm.EncoderLayerOps ops (lm.Footprint.Ops). Left
// out: the [T,T] causal mask (T/B values per position). The estimate
// assumes the gorgonia backend's pooled buffers (see lm.Values).
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	c := &m.cfg
	d, ff, L := float64(c.Dim), float64(c.ff()), float64(c.Layers)
	V, C, T := float64(env.Vocab), float64(c.Context), float64(max(env.SeqLen, 0))
	attn := lm.Attention{Heads: float64(c.Heads), Keys: T}
	embTrain, embEval := lm.Embedded(d)
	layerTrain, layerEval := lm.EncoderLayer(d, ff, attn, c.Dropout > 0)
	f := lm.Footprint{
		Params:    V*d + C*d + L*(4*d*d+2*d*ff+9*d+ff) + d*V + V,
		Train:     embTrain.Then(layerTrain.Times(L)).Then(lm.OutputTrain(d, V)).Total(),
		Eval:      embEval.Then(layerEval).Then(lm.OutputEval(V)).Total(),
		Workspace: lm.GemmWorkspace(float64(max(env.Batch, 0))*T, lm.TransformerLinears(d, ff, V)...),
		Ops:       20 + L*lm.EncoderLayerOps(c.Dropout > 0),
	}
	return f.Estimate(env)
}
