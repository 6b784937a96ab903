// Package nar registers the survey's non-autoregressive Transformer as a
// conditional masked language model (CMLM) decoded with mask-predict
// (Ghazvininejad et al. 2019, "Mask-Predict: Parallel Decoding of
// Conditional Masked Language Models").
//
// The model reads a source X with the shared Transformer encoder
// (plugins/internal/encdec) and predicts a whole target sequence
// Y = (y_1, …, y_N) at once: a decoder without a causal mask sees every
// target position, each either an observed token or [MASK], and predicts
// every masked one independently (Sec. 2),
//
//	P(y_j | X, Y_obs)   for j ∈ Y_mask.
//
// The target sequence of a row is its scored targets: the content tokens
// and then the task's end token, which the model predicts as an ordinary
// token (it never reads the decoder inputs Batch.Inputs, nor knows which
// token is the end). Its own [MASK] is an extra row of the target
// embedding, id V for a task vocabulary of V tokens; it is never predicted
// (fc has V outputs).
//
// Target length. Before decoding, N is predicted from the source: a linear
// head over the mean of the encoder output (encdec.MeanPool) classifies the
// offset N − |X|, clipped to [−max_offset, max_offset], into 2·max_offset+1
// classes. The paper predicts N from a special LENGTH token of the encoder;
// the pooled offset head is fairseq's nat/cmlm variant (forward_length with
// pred_length_offset), whose length_loss_factor 0.1 is the default
// length_loss_weight here.
//
// Training (Sec. 2): for every row, k is drawn uniformly from 1..N and k
// positions uniformly without replacement are masked; the loss is
//
//	L = − mean_{(i,j): j ∈ Y_mask(i)} log P(y_ij | X_i, Y_obs(i))
//	    + length_loss_weight · mean_i − log P(offset_i | X_i),
//
// the first mean over all masked positions of the batch (fairseq's mean
// over masked tokens), the second over rows.
//
// Decoding (Sec. 3): the length_beam most probable lengths are decoded in
// parallel with decoding.MaskPredict in T passes (the linear re-masking
// schedule n = ⌊N·(T−t)/T⌋), and the candidate of highest mean
// log-probability is chosen. T = 1 is plain one-pass non-autoregressive
// decoding (Gu et al. 2018). The settings of `sweep_iterations` are the
// model's DecodeSettings ("T=1", "T=4", …). As a speculative drafter
// (encdec.Proposer) it proposes the next γ tokens of a prefix in one pass.
// With `distill:` it trains on an autoregressive teacher's outputs instead
// of the references (sequence-level knowledge distillation, distill.go).
//
// PyTorch twin (state_dict names are identical):
//
//	class CMLM(nn.Module):
//	    def __init__(self, V, d, heads, layers, ff, ctx, M, p):
//	        super().__init__()
//	        self.src_embedding = nn.Embedding(V, d)
//	        self.src_pos = nn.Embedding(ctx, d)
//	        self.encoder = nn.TransformerEncoder(
//	            nn.TransformerEncoderLayer(d, heads, ff, p, batch_first=True), layers)
//	        self.tgt_embedding = nn.Embedding(V + 1, d)      # row V is [MASK]
//	        self.tgt_pos = nn.Embedding(ctx, d)
//	        self.decoder = nn.TransformerDecoder(
//	            nn.TransformerDecoderLayer(d, heads, ff, p, batch_first=True), layers)
//	        self.fc = nn.Linear(d, V)
//	        self.length_head = nn.Linear(d, 2 * M + 1)   # offset N − |X| + M
//	    def forward(self, src, src_pad, tgt, tgt_pad):  # pads: True at padding
//	        S, T = src.shape[1], tgt.shape[1]
//	        x = self.src_embedding(src) + self.src_pos(torch.arange(S))
//	        memory = self.encoder(x, src_key_padding_mask=src_pad)
//	        keep = (~src_pad).float().unsqueeze(-1)
//	        length_logits = self.length_head((memory * keep).sum(1) / keep.sum(1))
//	        y = self.tgt_embedding(tgt) + self.tgt_pos(torch.arange(T))
//	        h = self.decoder(y, memory, tgt_key_padding_mask=tgt_pad,
//	                         memory_key_padding_mask=src_pad)  # no tgt_mask
//	        return self.fc(h), length_logits
//
// state_dict names: src_embedding.weight, src_pos.weight,
// encoder.layers.{i}.{self_attn.*,linear1,linear2,norm1,norm2},
// tgt_embedding.weight, tgt_pos.weight,
// decoder.layers.{i}.{self_attn.*,multihead_attn.*,linear1,linear2,norm1,norm2,norm3},
// fc.{weight,bias}, length_head.{weight,bias}.
package nar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/internal/lm"
	"arbench/plugins/s2s"
)

func init() {
	harness.RegisterModel("nar", "non-autoregressive Transformer: conditional masked LM with a length head, mask-predict decoding (Ghazvininejad et al. 2019)", New)
}

// Bounds that keep a configuration from asking for absurd sizes by accident.
const (
	maxIterations = 1000
	maxOffsetCap  = 1 << 16
)

// Config is the nar plugin's typed configuration.
type Config struct {
	// Dim is the model width d.
	Dim int `yaml:"dim"`
	// Heads is the number of attention heads; it must divide Dim.
	Heads int `yaml:"heads"`
	// Layers is the number of blocks of the encoder and of the decoder each.
	Layers int `yaml:"layers"`
	// FF is the feed-forward width (0 means 4·Dim).
	FF int `yaml:"ff"`
	// Context is the number of learned positions of the source and of the
	// target: the longest source and the longest output (end token
	// included).
	Context int `yaml:"context"`
	// Dropout is applied as in PyTorch's Transformer layers in training.
	Dropout float64 `yaml:"dropout"`
	// MaxOffset M bounds the predicted length offset N − |source| to
	// [−M, M] (2M+1 classes).
	MaxOffset int `yaml:"max_offset"`
	// LengthLossWeight multiplies the length head's cross-entropy in the
	// training loss (fairseq cmlm's length_loss_factor, default 0.1).
	LengthLossWeight float64 `yaml:"length_loss_weight"`
	// LengthBeam is ℓ, the number of most probable lengths decoded per
	// source; the candidate of highest mean log-probability wins.
	LengthBeam int `yaml:"length_beam"`
	// Iterations is mask-predict's T when no decoding setting is chosen.
	Iterations int `yaml:"iterations"`
	// EarlyStop freezes a candidate after a pass that changed none of its
	// tokens (decoding.MaskOptions.EarlyStop).
	EarlyStop bool `yaml:"early_stop"`
	// SweepIterations lists the T of the DecodeSettings an evaluation
	// sweeps ("T=1", "T=2", …).
	SweepIterations []int `yaml:"sweep_iterations"`
	// SemiAR lists the tokens per pass k of the semi-autoregressive
	// DecodeSettings "k=K" an evaluation also sweeps (semiar.go); empty
	// by default.
	SemiAR []int `yaml:"semi_ar"`
	// Distill trains the model on a teacher's outputs (distill.go); off
	// while distill.teacher_steps is 0.
	Distill DistillConfig `yaml:"distill"`
}

// DefaultConfig returns the plugin's defaults.
func DefaultConfig() Config {
	return Config{
		Dim: 128, Heads: 4, Layers: 2, Context: 128,
		MaxOffset: 16, LengthLossWeight: 0.1, LengthBeam: 1, Iterations: 1,
		SweepIterations: []int{1, 2, 4, 10},
		SemiAR:          []int{},
		Distill:         defaultDistill(),
	}
}

// Validate reports every invalid field. Comparisons are written so that
// NaN fails them.
func (c *Config) Validate() []error {
	errs := lm.TransformerShape{Dim: c.Dim, Heads: c.Heads, Layers: c.Layers, FF: c.FF, Context: c.Context, Dropout: c.Dropout}.Errors()
	okOffset := c.MaxOffset >= 0 && c.MaxOffset <= maxOffsetCap
	if !okOffset {
		errs = append(errs, fmt.Errorf("max_offset: must be in [0, %d], got %d", maxOffsetCap, c.MaxOffset))
	}
	if !(c.LengthLossWeight >= 0) || math.IsInf(c.LengthLossWeight, 1) {
		errs = append(errs, fmt.Errorf("length_loss_weight: must be a finite number >= 0, got %v", c.LengthLossWeight))
	}
	if c.LengthBeam < 1 {
		errs = append(errs, fmt.Errorf("length_beam: must be positive, got %d", c.LengthBeam))
	} else if okOffset && c.LengthBeam > 2*c.MaxOffset+1 {
		errs = append(errs, fmt.Errorf("length_beam: %d exceeds the %d length classes (2·max_offset+1)", c.LengthBeam, 2*c.MaxOffset+1))
	}
	if c.Iterations < 1 || c.Iterations > maxIterations {
		errs = append(errs, fmt.Errorf("iterations: must be in [1, %d], got %d", maxIterations, c.Iterations))
	}
	errs = append(errs, sweepErrors("sweep_iterations", c.SweepIterations)...)
	errs = append(errs, sweepErrors("semi_ar", c.SemiAR)...)
	return append(errs, c.Distill.validate()...)
}

// sweepErrors reports the entries of a swept list (field: its YAML key)
// outside [1, maxIterations] or repeated.
func sweepErrors(field string, xs []int) []error {
	var errs []error
	seen := map[int]int{}
	for i, x := range xs {
		switch j, dup := seen[x]; {
		case x < 1 || x > maxIterations:
			errs = append(errs, fmt.Errorf("%s[%d]: must be in [1, %d], got %d", field, i, maxIterations, x))
		case dup:
			errs = append(errs, fmt.Errorf("%s[%d]: %d repeats %s[%d]", field, i, x, field, j))
		default:
			seen[x] = i
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

// classes is the number of length classes, 2·max_offset+1.
func (c *Config) classes() int { return 2*c.MaxOffset + 1 }

// Feed and output names of the plugin's executables (the encoder's are
// encdec's).
const (
	feedTarget     = "tgt"         // int [B*T] target tokens, [MASK] = V at masked positions
	feedTargetPad  = "tgt_padding" // float [B,T] additive key padding mask
	feedMemory     = "memory"      // float [B,S,d] encoder output (decoder-only executables)
	feedLabels     = "labels"      // int [B*T] the token at masked positions, −1 elsewhere
	feedWeights    = "weights"     // float [B*T] 1/(masked positions of the batch) at masked positions
	feedLenLabels  = "len_labels"  // int [B] length class offset+M
	feedLenWeights = "len_weights" // float [B] length_loss_weight/B
	outLogProbs    = "logp"        // float [B*T,V] token log-probabilities
	outMemory      = "memory"      // float [B,S,d]
	outLenLogProbs = "length_logp" // float [B,2M+1]
	outTokenLoss   = "token_loss"  // float [] masked-token cross-entropy
	outLengthLoss  = "length_loss" // float [] length cross-entropy (unweighted)
)

// maskStream is the second word of the PCG that draws training masks.
const maskStream = 0x6e61726d61736b73 // "narmasks"

// Model is the conditional masked language model.
type Model struct {
	cfg   Config
	vocab int
	ps    *nn.ParamSet
	cache *lm.Cache

	enc        *encdec.Encoder
	tgtEmb     *nn.Embedding
	tgtPos     *nn.Embedding
	layers     []*nn.TransformerDecoderLayer
	fc         *nn.Linear
	lengthHead *nn.Linear

	// decoderPasses counts runs of the decoder over a batch (decode), the
	// test hook that checks T = 1 is one pass.
	decoderPasses int
	// teacher is the distillation teacher (nil when distillation is off).
	teacher *teacher
	// lastLosses are the token and the (unweighted) length cross-entropy
	// of the last Gradients call; the length one is 0 when
	// length_loss_weight is 0 (its weights are then 0 too).
	lastLosses [2]float64
}

var (
	_ harness.Model           = (*Model)(nil)
	_ harness.Trainer         = (*Model)(nil)
	_ harness.Conditioner     = (*Model)(nil)
	_ harness.Translator      = (*Model)(nil)
	_ harness.DecodeSweeper   = (*Model)(nil)
	_ harness.EnvChecker      = (*Model)(nil)
	_ harness.MemoryEstimator = (*Model)(nil)
	_ io.Closer               = (*Model)(nil)
	_ encdec.Proposer         = (*Model)(nil)
	_ harness.Config          = (*Config)(nil)
)

// New returns a fresh, unconfigured model with DefaultConfig.
func New() harness.Model { return &Model{cfg: DefaultConfig()} }

// Config returns the configuration to decode into.
func (m *Model) Config() harness.Config { return &m.cfg }

// Params returns the parameters (nil before Setup).
func (m *Model) Params() *nn.ParamSet { return m.ps }

// Info describes the model.
func (m *Model) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: "nar", Params: m.ps.Count()}
}

// Conditional reports that the model reads Batch.Source.
func (m *Model) Conditional() bool { return true }

// Close releases the compiled executables; it does nothing before Setup.
func (m *Model) Close() error {
	if m.cache == nil {
		return nil
	}
	err := m.cache.Close()
	if m.teacher != nil {
		err = errors.Join(err, m.teacher.m.Close())
	}
	return err
}

// ready reports lm.ErrNotSetup before a successful Setup.
func (m *Model) ready() error {
	if m.cache == nil {
		return fmt.Errorf("nar: %w", lm.ErrNotSetup)
	}
	return nil
}

// CheckEnv reports what env asks that the model cannot do: no vocabulary,
// no source (a language-modelling task), and sources or targets longer
// than the learned positions. Setup checks the same.
func (m *Model) CheckEnv(env harness.Env) []error {
	errs := lm.CheckEnv(env)
	if env.SourceLen <= 0 {
		errs = append(errs, errors.New("the task has no source sequence (it is no conditional task); nar is a conditional model and needs one"))
	}
	if env.SourceLen > m.cfg.Context {
		errs = append(errs, fmt.Errorf("context: %d is shorter than the task's sources of %d tokens; set context: >= %d", m.cfg.Context, env.SourceLen, env.SourceLen))
	}
	if env.TargetLen > m.cfg.Context {
		errs = append(errs, fmt.Errorf("context: %d is shorter than the task's targets of %d tokens (end token included); set context: >= %d", m.cfg.Context, env.TargetLen, env.TargetLen))
	}
	if d := &m.cfg.Distill; d.on() {
		t := s2s.New()
		*t.Config().(*s2s.Config) = d.Teacher
		for _, err := range t.(harness.EnvChecker).CheckEnv(env) {
			errs = append(errs, fmt.Errorf("distill.teacher.%w", err))
		}
		if d.TeacherWeights != "" {
			if err := nn.CheckSafetensors(d.TeacherWeights); err != nil {
				errs = append(errs, fmt.Errorf("distill.teacher_weights: %w", err))
			}
		}
	}
	return errs
}

// Setup allocates parameters with PyTorch's default initialisation, in
// the twin's state_dict order.
func (m *Model) Setup(ctx context.Context, env harness.Env) error {
	if err := lm.CheckSetup("nar", m.cfg.Validate(), m.CheckEnv(env), env.Backend != nil); err != nil {
		return err
	}
	if m.cache != nil {
		m.cache.Close()
	}
	c := &m.cfg
	ps := nn.NewParamSet()
	rng := nn.NewRNG(env.Seed)
	p := float32(c.Dropout)
	m.enc = encdec.NewEncoder(ps, "", encdec.Config{Vocab: env.Vocab, Dim: c.Dim, Heads: c.Heads, FF: c.ff(), Layers: c.Layers, Context: c.Context, Dropout: p}, rng)
	m.tgtEmb = nn.NewEmbedding(ps, "tgt_embedding", env.Vocab+1, c.Dim)
	m.tgtEmb.Init(rng)
	m.tgtPos = nn.NewEmbedding(ps, "tgt_pos", c.Context, c.Dim)
	m.tgtPos.Init(rng)
	m.layers = nil
	for i := range c.Layers {
		l := nn.NewTransformerDecoderLayer(ps, fmt.Sprintf("decoder.layers.%d", i), c.Dim, c.Heads, c.ff(), p)
		l.Init(rng)
		m.layers = append(m.layers, l)
	}
	m.fc = nn.NewLinear(ps, "fc", c.Dim, env.Vocab)
	m.fc.Init(rng)
	m.lengthHead = nn.NewLinear(ps, "length_head", c.Dim, c.classes())
	m.lengthHead.Init(rng)
	m.vocab, m.ps = env.Vocab, ps
	m.cache = lm.NewCache(env.Backend, ps)
	var err error
	m.teacher, err = m.setupTeacher(ctx, env)
	return err
}

// decoderLogits returns fc(Decoder(E_tgt[y] + P_tgt[0:T], memory)) [B*T,V]
// for target ids [B*T] under no causal mask, the padded target keys and
// source keys dropped by the additive key padding masks tgtPad [B,T] and
// memPad [B,S].
func (m *Model) decoderLogits(g nn.Graph, ids, tgtPad, memory, memPad nn.Tensor, B, T int) nn.Tensor {
	d := m.cfg.Dim
	x := g.Reshape(m.tgtEmb.Forward(g, ids), B, T, d)
	x = g.Add(x, g.Slice(g.Param(m.tgtPos.Weight), 0, 0, T))
	masks := nn.DecoderMasks{TgtKeyPadding: tgtPad, MemoryKeyPadding: memPad}
	for _, l := range m.layers {
		x = l.Forward(g, x, memory, masks)
	}
	return m.fc.Forward(g, g.Reshape(x, B*T, d))
}

// lengthLogits returns the length head's logits [B,2M+1] over the mean
// of memory across each row's source tokens.
func (m *Model) lengthLogits(g nn.Graph, in encdec.Inputs, memory nn.Tensor) nn.Tensor {
	return m.lengthHead.Forward(g, encdec.MeanPool(g, in, memory))
}

// targetRows returns the target sequence of each row of b.Targets: its
// scored targets, which must be a non-empty prefix of the row.
func (m *Model) targetRows(targets [][]int) ([][]int, error) {
	out := make([][]int, len(targets))
	for i, row := range targets {
		n := 0
		for n < len(row) && row[n] >= 0 {
			if row[n] >= m.vocab {
				return nil, fmt.Errorf("nar: target %d at row %d position %d is outside the vocabulary [0,%d)", row[n], i, n, m.vocab)
			}
			n++
		}
		for j := n; j < len(row); j++ {
			if row[j] >= 0 {
				return nil, fmt.Errorf("nar: row %d scores position %d after an unscored one at %d; a target sequence must be a prefix of the row", i, j, n)
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("nar: row %d has no scored target", i)
		}
		out[i] = row[:n]
	}
	return out, nil
}

// lengthClass is the length head's class of a target of n tokens for a
// source of srcLen: the offset n − srcLen clipped to [−M, M], plus M.
func (m *Model) lengthClass(n, srcLen int) int {
	M := m.cfg.MaxOffset
	return min(max(n-srcLen, -M), M) + M
}

// Gradients computes the loss of the package comment for one batch with
// masks drawn from seed (and dropout from seed), writing its gradient into
// Params().Grad. It refuses a batch without a source. A non-finite loss is
// returned with a nil error (the runner records divergence).
func (m *Model) Gradients(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	if err := m.ready(); err != nil {
		return 0, err
	}
	if b.Source == nil {
		return 0, errors.New("nar: the batch has no source sequence; nar is a conditional model (harness.Conditioner) and trains on (source, target) pairs")
	}
	if len(b.Source) != len(b.Targets) {
		return 0, fmt.Errorf("nar: %d source rows for %d target rows", len(b.Source), len(b.Targets))
	}
	if t := m.teacher; t != nil {
		if t.steps > 0 {
			return m.teacherStep(ctx, b, seed)
		}
		var err error
		if b, err = m.distilled(ctx, b); err != nil {
			return 0, err
		}
	}
	src, err := encdec.PadSources(encdec.FromBatch(b.Source), m.vocab, 0)
	if err != nil {
		return 0, fmt.Errorf("nar: %w", err)
	}
	tgts, err := m.targetRows(b.Targets)
	if err != nil {
		return 0, err
	}
	B, S, T := src.B, src.S, 0
	for _, r := range tgts {
		T = max(T, len(r))
	}
	if S > m.cfg.Context || T > m.cfg.Context {
		return 0, fmt.Errorf("nar: sources of %d or targets of %d tokens exceed the context of %d positions", S, T, m.cfg.Context)
	}
	rng := rand.New(rand.NewPCG(seed, maskStream))
	ids := make([]int, B*T)
	labels := make([]int, B*T)
	lens := make([]int, B)
	for k := range ids {
		ids[k], labels[k] = m.vocab, -1
	}
	masked := 0
	for i, r := range tgts {
		N := len(r)
		lens[i] = N
		copy(ids[i*T:], r)
		k := 1 + rng.IntN(N)
		for _, j := range rng.Perm(N)[:k] {
			ids[i*T+j], labels[i*T+j] = m.vocab, r[j]
		}
		masked += k
	}
	weights := make([]float32, B*T)
	for k, l := range labels {
		if l >= 0 {
			weights[k] = 1 / float32(masked)
		}
	}
	lenLabels := make([]int, B)
	lenWeights := make([]float32, B)
	for i := range B {
		lenLabels[i] = m.lengthClass(lens[i], src.Lens[i])
		lenWeights[i] = float32(m.cfg.LengthLossWeight / float64(B))
	}
	feeds := nn.Feeds{
		Ints:   map[string][]int{feedTarget: ids, feedLabels: labels, feedLenLabels: lenLabels},
		Floats: map[string][]float32{feedTargetPad: nn.KeyPaddingMask(lens, T), feedWeights: weights, feedLenWeights: lenWeights},
		Seed:   seed,
	}
	src.Feeds(&feeds)
	e, err := m.exec(fmt.Sprintf("train/b%d/s%d/t%d", B, S, T), true, func(g nn.Graph) error {
		in := encdec.Declare(g, B, S)
		memory := m.enc.Forward(g, in)
		logits := m.decoderLogits(g, g.Ints(feedTarget, B*T), g.Floats(feedTargetPad, B, T), memory, in.Padding, B, T)
		tok := nn.CrossEntropy(g, logits, g.Ints(feedLabels, B*T), g.Floats(feedWeights, B*T))
		length := nn.CrossEntropy(g, m.lengthLogits(g, in, memory), g.Ints(feedLenLabels, B), g.Floats(feedLenWeights, B))
		g.Output(outTokenLoss, tok)
		g.Output(outLengthLoss, length)
		g.Loss(g.Add(tok, length))
		return nil
	})
	if err != nil {
		return 0, err
	}
	res, err := e.Run(ctx, feeds)
	if err != nil {
		return 0, fmt.Errorf("nar: train step: %w", err)
	}
	m.lastLosses[0] = scalar(res.Outputs[outTokenLoss])
	m.lastLosses[1] = 0
	if w := m.cfg.LengthLossWeight; w > 0 {
		m.lastLosses[1] = scalar(res.Outputs[outLengthLoss]) / w
	}
	return res.Loss, nil
}

func scalar(v nn.Value) float64 {
	if len(v.Data) == 0 {
		return math.NaN()
	}
	return float64(v.Data[0])
}

// exec returns the cached executable for key.
func (m *Model) exec(key string, train bool, build nn.BuildFunc) (nn.Executable, error) {
	e, err := m.cache.Get(key, train, build)
	if err != nil {
		return nil, fmt.Errorf("nar: %w", err)
	}
	return e, nil
}

// EstimateMemory estimates the model's memory for env without allocating
// it (lm.Footprint.Estimate turns values into bytes). With V = env.Vocab,
// width d, ff, heads h, L layers per stack, context C and M = max_offset,
// the parameters are exact:
//
//	encoder   V·d + C·d + L·(4d² + 2d·ff + 9d + ff)
//	decoder   (V+1)·d + C·d + L·(8d² + 2d·ff + 15d + ff) + d·V + V
//	length    (2M+1)·(d+1)
//
// The values of a row of S = env.SourceLen source and T = env.TargetLen
// target positions (env.SeqLen each when the task gives neither) are
// counted from the graphs as the gorgonia backend's pooled buffers hold
// them (lm.Values): in training encdec.Shape.TrainRow with a padded,
// non-causal decoder self-attention (the length head's values are per
// row, not per position, and left out); in evaluation (translation) the
// encoder's executable and, per candidate length (length_beam), the
// decoder's (evalRow). Packing buffers: lm.GemmWorkspace of the layers
// over B·max(S, T) rows (lm.TransformerLinears and the keys' and values'
// projection, d to 2d); ops: encdec.Shape.Ops with about 30 for the
// embeddings, the heads and the losses. A distillation teacher
// (distill.go) is a second model the estimate does not count.
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	c := &m.cfg
	d, ff, L := float64(c.Dim), float64(c.ff()), float64(c.Layers)
	V, C, K := float64(env.Vocab), float64(c.Context), float64(c.classes())
	S, T := float64(max(env.SourceLen, 0)), float64(max(env.TargetLen, 0))
	if S == 0 && T == 0 {
		S, T = float64(max(env.SeqLen, 0)), float64(max(env.SeqLen, 0))
	}
	shape := encdec.Shape{D: d, FF: ff, Heads: float64(c.Heads), EncLayers: L, DecLayers: L, V: V, S: S, T: T, SelfPadded: true, Dropout: c.Dropout > 0}
	rowLen := max(S+T, 1)
	f := lm.Footprint{
		Params: V*d + C*d + L*(4*d*d+2*d*ff+9*d+ff) +
			(V+1)*d + C*d + L*(8*d*d+2*d*ff+15*d+ff) + d*V + V +
			K*(d+1),
		Train:     shape.TrainRow() / rowLen,
		Eval:      m.evalRow(shape) / rowLen,
		Workspace: lm.GemmWorkspace(float64(max(env.Batch, 0))*max(S, T), append(lm.TransformerLinears(d, ff, V), lm.Linear{In: d, Out: 2 * d})...),
		Ops:       shape.Ops(30),
	}
	e := env
	e.SeqLen = int(min(S+T, 1<<40)) // saturates absurd sizes (the estimate saturates too)
	return f.Estimate(e)
}

// evalRow is the values of one source row in translation: the encoder's
// executable (its largest stage and constants; the memory it hands out,
// S·d, kept for every decoder pass) and, for each of length_beam
// candidates, the decoder's executable (its largest stage: the memory's
// projections with a target position's input, the decoder layers' with
// the memory fed and its keys and values, the output layer's; its
// constants, the copy of the memory fed in, and the distributions handed
// out, lm.OutputEval).
func (m *Model) evalRow(s encdec.Shape) float64 {
	enc, dec, memory, projecting := s.EvalStreams()
	out := lm.OutputEval(s.V)
	encoder := s.S*enc.Peak + s.S*enc.Held + s.S*s.D
	peak := max(s.S*projecting+s.T*s.D, s.T*dec.Peak+s.S*memory, s.T*out.Peak)
	decoder := peak + s.T*(dec.Held+out.Held) + s.S*s.D
	return encoder + float64(max(m.cfg.LengthBeam, 1))*decoder
}
