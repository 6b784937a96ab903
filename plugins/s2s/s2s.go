// Package s2s registers transformer-s2s, the autoregressive encoder–decoder
// Transformer of Vaswani et al. 2017 ("Attention Is All You Need", §3):
// the baseline of arbench's sequence-to-sequence tasks and the verifier of
// speculative decoding (encdec.Verifier).
//
// With a source s of S tokens (right-padded with harness.SourcePad) and a
// decoder input y of T tokens (the start token, then the target), the
// model computes
//
//	z = Encoder(E_src[s] + P_src[0:S])                         (§3.1, encdec.Encoder)
//	h = Decoder(E_tgt[y] + P_tgt[0:T], z)                       (§3.1, §3.2.3)
//	p(y_{t+1} | y_{≤t}, s) = softmax(W h_t + b)                  (§3.4)
//
// where every attention is softmax(QKᵀ/√d_k + M)V (eq. 1): the encoder's
// self-attention and the decoder's cross-attention mask the source's
// padding (M = −∞ at padded keys), the decoder's self-attention is causal
// (M_ij = −∞ for j > i). Training minimises the mean cross-entropy over
// the scored (non-negative) targets. Decoder rows are right-padded after
// their end token; the causal mask keeps every real position from seeing
// the padding, whose targets are ignored, so no target key padding mask is
// needed. Positions are learned (as in the survey's models, not the
// paper's sinusoids), so sources and decoder rows are at most Context long.
//
// Generation carries a key/value cache (decode.go): the source is encoded
// once, each decoder layer's cross-attention keys and values of it are
// kept, and each step feeds only the new positions.
//
// The weights map one to one onto this PyTorch module (state_dict names
// are identical; plugins/s2s/testdata/gen_reference.py builds it and the
// tests match its log-probabilities):
//
//	class TransformerS2S(nn.Module):
//	    def __init__(self, V, d, heads, enc_layers, dec_layers, ff, ctx, dropout=0.0):
//	        super().__init__()
//	        self.src_embedding = nn.Embedding(V, d)
//	        self.src_pos = nn.Embedding(ctx, d)
//	        self.encoder = nn.TransformerEncoder(
//	            nn.TransformerEncoderLayer(d, heads, ff, dropout, batch_first=True),
//	            enc_layers, enable_nested_tensor=False)
//	        self.tgt_embedding = nn.Embedding(V, d)
//	        self.tgt_pos = nn.Embedding(ctx, d)
//	        self.decoder = nn.TransformerDecoder(
//	            nn.TransformerDecoderLayer(d, heads, ff, dropout, batch_first=True), dec_layers)
//	        self.fc = nn.Linear(d, V)
//	    def forward(self, src, tgt_in):          # src [B,S] (0 pads), tgt_in [B,T]
//	        S, T = src.shape[1], tgt_in.shape[1]
//	        pad = src == 0
//	        memory = self.encoder(self.src_embedding(src) + self.src_pos(torch.arange(S)),
//	                              src_key_padding_mask=pad)
//	        y = self.tgt_embedding(tgt_in) + self.tgt_pos(torch.arange(T))
//	        mask = nn.Transformer.generate_square_subsequent_mask(T)
//	        h = self.decoder(y, memory, tgt_mask=mask, memory_key_padding_mask=pad)
//	        return self.fc(h)                    # logits [B,T,V]
//
// state_dict names: src_embedding.weight, src_pos.weight,
// encoder.layers.{i}.{self_attn.*,linear1,linear2,norm1,norm2}, tgt_embedding.weight,
// tgt_pos.weight, decoder.layers.{i}.{self_attn.*,multihead_attn.*,linear1,linear2,norm1,norm2,norm3},
// fc.weight, fc.bias.
package s2s

import (
	"context"
	"errors"
	"fmt"
	"io"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/internal/lm"
)

// Family is the registry name.
const Family = "transformer-s2s"

func init() {
	harness.RegisterModel(Family, "encoder–decoder Transformer (post-norm, learned positions, causal decoder with cross-attention, key/value cache)", New)
}

// Config is the transformer-s2s plugin's typed configuration.
type Config struct {
	// Dim is the model width d.
	Dim int `yaml:"dim"`
	// Heads is the number of attention heads; it must divide Dim.
	Heads int `yaml:"heads"`
	// Layers is the number of encoder and of decoder layers.
	Layers int `yaml:"layers"`
	// EncLayers and DecLayers override Layers for the encoder and the
	// decoder (0 means Layers).
	EncLayers int `yaml:"enc_layers"`
	DecLayers int `yaml:"dec_layers"`
	// FF is the feed-forward width (0 means 4·Dim).
	FF int `yaml:"ff"`
	// Context is the number of learned positions of the sources and of the
	// decoder rows: the longest source and the longest decoder row.
	Context int `yaml:"context"`
	// Dropout is applied as in nn.TransformerEncoderLayer and
	// nn.TransformerDecoderLayer during training.
	Dropout float64 `yaml:"dropout"`
}

// Validate reports every invalid field.
func (c *Config) Validate() []error {
	errs := lm.TransformerShape{Dim: c.Dim, Heads: c.Heads, Layers: c.Layers, FF: c.FF, Context: c.Context, Dropout: c.Dropout}.Errors()
	for _, f := range []struct {
		name string
		v    int
	}{{"enc_layers", c.EncLayers}, {"dec_layers", c.DecLayers}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be 0 (layers) or positive, got %d", f.name, f.v))
		}
	}
	return errs
}

func (c *Config) ff() int {
	if c.FF == 0 {
		return 4 * c.Dim
	}
	return c.FF
}

func (c *Config) encLayers() int {
	if c.EncLayers == 0 {
		return c.Layers
	}
	return c.EncLayers
}

func (c *Config) decLayers() int {
	if c.DecLayers == 0 {
		return c.Layers
	}
	return c.DecLayers
}

// Model is the encoder–decoder Transformer.
type Model struct {
	cfg   Config
	vocab int
	ps    *nn.ParamSet
	cache *lm.Cache

	enc    *encdec.Encoder
	tgtEmb *nn.Embedding
	tgtPos *nn.Embedding
	dec    []*nn.TransformerDecoderLayer
	fc     *nn.Linear
}

var (
	_ harness.Model           = (*Model)(nil)
	_ harness.Trainer         = (*Model)(nil)
	_ harness.Scorer          = (*Model)(nil)
	_ harness.Conditioner     = (*Model)(nil)
	_ harness.SourceStepper   = (*Model)(nil)
	_ encdec.Verifier         = (*Model)(nil)
	_ harness.EnvChecker      = (*Model)(nil)
	_ harness.MemoryEstimator = (*Model)(nil)
	_ io.Closer               = (*Model)(nil)
	_ harness.Config          = (*Config)(nil)
)

// New returns a fresh, unconfigured transformer-s2s.
func New() harness.Model {
	return &Model{cfg: Config{Dim: 128, Heads: 4, Layers: 2, Context: 128}}
}

// Config returns the configuration to decode into.
func (m *Model) Config() harness.Config { return &m.cfg }

// Info describes the model.
func (m *Model) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: Family, Params: m.ps.Count()}
}

// Params returns the parameters (nil before Setup).
func (m *Model) Params() *nn.ParamSet { return m.ps }

// Conditional reports that the model reads Batch.Source.
func (m *Model) Conditional() bool { return true }

// CheckEnv reports what env asks that the model cannot do: a vocabulary
// without content tokens, a task without sources, and sources or decoder
// rows longer than the learned positions. Setup checks the same.
func (m *Model) CheckEnv(env harness.Env) []error {
	var errs []error
	if env.Vocab < 2 {
		errs = append(errs, fmt.Errorf("the task's vocabulary has %d tokens; an encoder–decoder needs at least 2 (token %d pads sources)", env.Vocab, harness.SourcePad))
	}
	if env.SourceLen < 0 || env.TargetLen < 0 || env.Batch < 0 {
		errs = append(errs, fmt.Errorf("the task's source length %d, decoder row length %d and batch %d must not be negative", env.SourceLen, env.TargetLen, env.Batch))
	}
	if env.SourceLen == 0 && env.TargetLen == 0 {
		errs = append(errs, errors.New("the task has no sources (Env.SourceLen and TargetLen are 0): transformer-s2s runs sequence-to-sequence tasks only"))
	}
	need := max(env.SourceLen, env.TargetLen)
	if env.SourceLen > m.cfg.Context {
		errs = append(errs, fmt.Errorf("context: %d is shorter than the task's sources of %d; set context: >= %d", m.cfg.Context, env.SourceLen, need))
	}
	if env.TargetLen > m.cfg.Context {
		errs = append(errs, fmt.Errorf("context: %d is shorter than the task's decoder rows of %d; set context: >= %d", m.cfg.Context, env.TargetLen, need))
	}
	return errs
}

// Setup allocates parameters with PyTorch's default initialisation, in
// the PyTorch twin's state_dict order.
func (m *Model) Setup(_ context.Context, env harness.Env) error {
	if err := lm.CheckSetup(Family, m.cfg.Validate(), m.CheckEnv(env), env.Backend != nil); err != nil {
		return err
	}
	c := &m.cfg
	ps := nn.NewParamSet()
	rng := nn.NewRNG(env.Seed)
	m.enc = encdec.NewEncoder(ps, "", encdec.Config{
		Vocab: env.Vocab, Dim: c.Dim, Heads: c.Heads, FF: c.ff(), Layers: c.encLayers(),
		Context: c.Context, Dropout: float32(c.Dropout),
	}, rng)
	m.tgtEmb = nn.NewEmbedding(ps, "tgt_embedding", env.Vocab, c.Dim)
	m.tgtEmb.Init(rng)
	m.tgtPos = nn.NewEmbedding(ps, "tgt_pos", c.Context, c.Dim)
	m.tgtPos.Init(rng)
	m.dec = nil
	for i := range c.decLayers() {
		l := nn.NewTransformerDecoderLayer(ps, fmt.Sprintf("decoder.layers.%d", i), c.Dim, c.Heads, c.ff(), float32(c.Dropout))
		l.Init(rng)
		m.dec = append(m.dec, l)
	}
	m.fc = nn.NewLinear(ps, "fc", c.Dim, env.Vocab)
	m.fc.Init(rng)
	m.vocab, m.ps = env.Vocab, ps
	m.cache = lm.NewCache(env.Backend, ps)
	return nil
}

// ready reports lm.ErrNotSetup before a successful Setup.
func (m *Model) ready() error {
	if m.cache == nil {
		return fmt.Errorf("%s: %w", Family, lm.ErrNotSetup)
	}
	return nil
}

// exec returns the cached executable for key.
func (m *Model) exec(key string, train bool, build func(g nn.Graph)) (nn.Executable, error) {
	e, err := m.cache.Get(key, train, func(g nn.Graph) error { build(g); return nil })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Family, err)
	}
	return e, nil
}

// Close releases compiled executables; it does nothing before Setup.
func (m *Model) Close() error {
	if m.cache == nil {
		return nil
	}
	return m.cache.Close()
}

// EstimateMemory estimates the model's memory for env without allocating
// it, as lm.Footprint.Estimate does for the language models, over the
// S + T positions of a row (S = env.SourceLen, T = env.TargetLen; both
// env.SeqLen when the task gives neither). With V = env.Vocab, width d,
// ff, heads h, encoder and decoder layers Le and Ld and context C, the
// parameters are exact,
//
//	P = 2·V·d + 2·C·d + Le·(4d² + 2d·ff + 9d + ff) + Ld·(8d² + 2d·ff + 15d + ff) + d·V + V,
//
// and the values are counted from the graph as the gorgonia backend's
// pooled buffers hold them (lm.Values): in training encdec.Shape.TrainRow
// with a causal decoder; in evaluation (one executable, encoder and
// decoder) the largest of the encoder's stages, the memory's projections
// and the decoder's with the memory's keys and values, and the output
// layer's 2V, LogProbs handing out one pick per position
// (encdec.Shape.EvalStreams). The training executable's packing buffers
// are lm.GemmWorkspace of its layers over B·max(S, T) rows
// (lm.TransformerLinears and the keys' and values' projection, d to 2d),
// and the graph's ops encdec.Shape.Ops with about 20
// for the embeddings, the output layer and the loss. The test checks the
// estimate against a measurement within a factor of 2.
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	c := &m.cfg
	d, ff := float64(c.Dim), float64(c.ff())
	Le, Ld := float64(c.encLayers()), float64(c.decLayers())
	V, C := float64(env.Vocab), float64(c.Context)
	S, T := float64(max(env.SourceLen, 0)), float64(max(env.TargetLen, 0))
	if S == 0 && T == 0 {
		S, T = float64(max(env.SeqLen, 0)), float64(max(env.SeqLen, 0))
	}
	shape := encdec.Shape{D: d, FF: ff, Heads: float64(c.Heads), EncLayers: Le, DecLayers: Ld, V: V, S: S, T: T, Dropout: c.Dropout > 0}
	rowLen := S + T
	if rowLen == 0 {
		rowLen = 1
	}
	f := lm.Footprint{
		Params:    2*V*d + 2*C*d + Le*(4*d*d+2*d*ff+9*d+ff) + Ld*(8*d*d+2*d*ff+15*d+ff) + d*V + V,
		Train:     shape.TrainRow() / rowLen,
		Eval:      evalRow(shape) / rowLen,
		Workspace: lm.GemmWorkspace(float64(max(env.Batch, 0))*max(S, T), append(lm.TransformerLinears(d, ff, V), lm.Linear{In: d, Out: 2 * d})...),
		Ops:       shape.Ops(20),
	}
	rows := env
	rows.SeqLen = int(min(S+T, 1<<40)) // saturates absurd sizes (the estimate saturates too)
	return f.Estimate(rows)
}

// evalRow is the values of one row at the peak of the evaluation
// executable: its largest stage (the encoder's, the memory's projection
// with a decoder position's input, the decoder's with the memory and its
// keys and values, the output layer's) and the constants both streams
// hold.
func evalRow(s encdec.Shape) float64 {
	enc, dec, memory, projecting := s.EvalStreams()
	out := 2 * s.V // the logits and their log-softmax, the output
	peak := max(s.S*enc.Peak, s.S*projecting+s.T*s.D, s.T*dec.Peak+s.S*memory, s.T*out)
	return peak + s.S*enc.Held + s.T*dec.Held
}
