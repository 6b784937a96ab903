// Package hybrid registers the hybrid model: speculative decoding
// (Leviathan et al. 2023, "Fast Inference from Transformers via
// Speculative Decoding", Algorithm 1; Chen et al. 2023, "Accelerating
// Large Language Model Decoding with Speculative Sampling") of an
// autoregressive encoder–decoder, the verifier (transformer-s2s), with
// drafts from a cheaper model, the drafter: a non-autoregressive CMLM
// (nar, one pass proposes γ tokens) or a second, smaller transformer-s2s
// (γ passes, one token each).
//
// Each round of decoding the drafter proposes x_1..x_γ, the verifier scores
// them in one pass over the tokens decoded so far and the drafts, and
// decoding.Verify keeps the longest accepted prefix of the draft plus one
// token of the verifier's own (the replacement of the first rejected draft
// token, or a bonus token after γ accepted ones). The output is exactly the
// verifier's: greedy decoding (temperature 0) emits its greedy tokens,
// token for token what harness.Translate decodes with the verifier alone;
// sampling emits sequences distributed as the verifier samples them
// (Leviathan et al., Appendix A.1), whatever the drafter proposes. The
// drafter only decides how many verifier passes that takes: a round costs
// one verifier pass and emits between 1 and γ+1 tokens. (Greedy equality
// holds as far as the verifier's k-token pass StepN gives the
// distributions its one-token Step would, as encdec.Verifier requires: a
// rounding difference between the two could flip a near-tie. The tests
// find none on trained models.)
//
// Batches. When the verifier keeps a length per row (encdec.RowVerifier,
// as transformer-s2s does) and so can the drafter (nar drafts for any
// prefixes; a transformer-s2s drafter is a RowVerifier itself), the rows
// of a batch advance independently: each round every row still decoding
// gets up to g_i = min(γ, MaxLen − n_i − 1) drafts after its own n_i
// tokens, one verifier pass scores every row's drafts, and each row emits
// its whole outcome (its accepted drafts and the verifier's replacement
// or bonus token), whatever the other rows accepted. The caches then
// hold different numbers of tokens per row; each pass first rewinds every
// row to its own kept tokens (RowVerifier.RewindRows) and, since a pass
// feeds the same number k of tokens to every row, a row that needs fewer
// re-feeds tokens it had (rewound further back) or feeds padding after
// its drafts, which the causal mask keeps from changing anything it
// reads; finished rows keep only the start token and feed padding. A
// transformer-s2s drafter drafts every row on its own prefix (padding
// that a pass fed is rewound away by the next); nar's one Propose pass
// takes equal-length prefixes, so every row's prefix is cut to the
// shortest row's and a row ahead reads its drafts further along, with its
// last tokens masked: worse drafts for it, still exact (drafts are drawn
// from the q that is tested). A batch then takes about as many verifier
// passes as its slowest row alone.
//
// Otherwise (a verifier or an autoregressive drafter without RewindRows;
// and γ = 0, the verifier alone, the baseline) all rows of a batch
// advance together, as the cache holds the same number of tokens in every
// row: each round every row still decoding takes m+1 tokens of its own
// outcome, where m is the smallest accepted count among the rows that the
// round does not finish (a row whose emitted tokens include its end
// token, or reach MaxLen, does not limit m). The first m+1 tokens of a
// row's outcome are valid: with a_i ≥ m accepted, they are m accepted
// draft tokens and then either the (m+1)-th accepted draft token or, when
// a_i = m, the verifier's replacement or bonus token. Each of them is
// emitted with the verifier's distribution given the tokens before it,
// and whether it is emitted is decided before it is drawn (by the
// acceptance tests of the draft tokens before it and by the other rows),
// so keeping a prefix of a round's tokens and discarding the rest keeps
// the output exact; in greedy decoding the kept tokens are simply the
// verifier's greedy tokens. Both caches are then rewound
// (encdec.Verifier.Rewind) to the tokens kept. Finished rows keep feeding
// the end token as padding and are ignored.
//
// TranslateOptions.Length (outputs of exactly Length tokens, for timing)
// is applied as harness.Translate applies it to the verifier alone: no
// token ends an output, MaxLen is Length.
//
// Training trains both models on the same batches: the loss is the sum of
// the verifier's and the drafter's losses (the drafter's is its own
// objective: a CMLM's masked-token and length losses, or a
// transformer-s2s' cross-entropy), and each gradient lands in its own
// model's parameters. Scoring (Scorer) is the verifier's.
//
// Parameters are one nn.ParamSet holding the verifier's under "verifier."
// and the drafter's under "drafter." (their PyTorch state_dict names
// after the prefix), sharing the inner models' values and gradients, so
// the optimiser, gradient clipping and safetensors files see both. The
// verifier is initialised from the run's seed, exactly as a transformer-s2s
// of its configuration alone would be, the drafter from a seed derived
// from it.
//
// Decoding settings (harness.DecodeSweeper): "gamma=0" is the verifier
// alone (its autoregressive decoding, the speed-up baseline) and
// "gamma=k" drafts k tokens per round, for each k of sweep_gamma.
//
// Configuration (every field optional; the inner sections are the inner
// plugins' own, decoded as strictly, and only the drafter's section that
// `drafter` names is used):
//
//	models:
//	  - name: hybrid
//	    config:
//	      verifier: {dim: 128, heads: 4, layers: 2, context: 128}  # transformer-s2s
//	      drafter: nar                                             # or transformer-s2s
//	      draft:
//	        nar: {dim: 128, heads: 4, layers: 2, context: 128}
//	        transformer-s2s: {dim: 64, heads: 4, layers: 1, context: 128}
//	      gamma: 4                   # draft tokens per round by default
//	      sweep_gamma: [1, 2, 4, 8]  # the settings an evaluation sweeps
//	      temperature: 0             # 0: greedy; top_k and top_p filter as in generate
package hybrid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"arbench/harness"
	"arbench/internal/decoding"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/nar"
	"arbench/plugins/s2s"
)

// Family is the registry name.
const Family = "hybrid"

// The drafter families.
const (
	DrafterNAR = "nar"
	DrafterS2S = s2s.Family
)

// maxGamma bounds the draft length.
const maxGamma = 1024

func init() {
	harness.RegisterModel(Family, "speculative decoding: a transformer-s2s verifier with drafts from nar or a smaller transformer-s2s (Leviathan et al. 2023)", New)
}

// Config is the hybrid plugin's typed configuration.
type Config struct {
	// Verifier is the transformer-s2s whose output decoding reproduces.
	Verifier s2s.Config `yaml:"verifier"`
	// Drafter is the family that drafts: "nar" or "transformer-s2s".
	Drafter string `yaml:"drafter"`
	// Draft holds the drafter's configuration, under its family's name;
	// only the one Drafter names is used.
	Draft DraftConfig `yaml:"draft"`
	// Gamma is γ, the draft tokens per round when no decoding setting is
	// chosen; 0 decodes with the verifier alone.
	Gamma int `yaml:"gamma"`
	// SweepGamma lists the γ of the DecodeSettings an evaluation sweeps
	// ("gamma=1", …), besides the baseline "gamma=0".
	SweepGamma []int `yaml:"sweep_gamma"`
	// Temperature, TopK and TopP are decoding.Sampling's: 0 decodes
	// greedily; otherwise drafts and outputs are sampled from the
	// verifier's and drafter's distributions filtered alike.
	Temperature float64 `yaml:"temperature"`
	TopK        int     `yaml:"top_k"`
	TopP        float64 `yaml:"top_p"`
}

// DraftConfig is the drafter's configuration, one section per family.
type DraftConfig struct {
	NAR nar.Config `yaml:"nar"`
	S2S s2s.Config `yaml:"transformer-s2s"`
}

// DefaultConfig returns the plugin's defaults: transformer-s2s's default
// verifier, nar's default drafter (a transformer-s2s drafter defaults to
// half the width and one layer), γ = 4, greedy.
func DefaultConfig() Config {
	return Config{
		Verifier:   *s2s.New().Config().(*s2s.Config),
		Drafter:    DrafterNAR,
		Draft:      DraftConfig{NAR: nar.DefaultConfig(), S2S: s2s.Config{Dim: 64, Heads: 4, Layers: 1, Context: 128}},
		Gamma:      4,
		SweepGamma: []int{1, 2, 4, 8},
	}
}

// Validate reports every invalid field.
func (c *Config) Validate() []error {
	var errs []error
	for _, err := range c.Verifier.Validate() {
		errs = append(errs, fmt.Errorf("verifier: %w", err))
	}
	switch c.Drafter {
	case DrafterNAR:
		for _, err := range c.Draft.NAR.Validate() {
			errs = append(errs, fmt.Errorf("draft.nar: %w", err))
		}
	case DrafterS2S:
		for _, err := range c.Draft.S2S.Validate() {
			errs = append(errs, fmt.Errorf("draft.%s: %w", DrafterS2S, err))
		}
	default:
		errs = append(errs, fmt.Errorf("drafter: must be %s or %s, got %q", DrafterNAR, DrafterS2S, c.Drafter))
	}
	if c.Gamma < 0 || c.Gamma > maxGamma {
		errs = append(errs, fmt.Errorf("gamma: must be in [0,%d] (0: the verifier alone), got %d", maxGamma, c.Gamma))
	}
	seen := map[int]bool{}
	for i, g := range c.SweepGamma {
		switch {
		case g < 1 || g > maxGamma:
			errs = append(errs, fmt.Errorf("sweep_gamma[%d]: must be in [1,%d] (gamma=0 is always swept), got %d", i, maxGamma, g))
		case seen[g]:
			errs = append(errs, fmt.Errorf("sweep_gamma[%d]: %d is listed twice", i, g))
		}
		seen[g] = true
	}
	if !(c.Temperature >= 0) {
		errs = append(errs, fmt.Errorf("temperature: must be >= 0 (0: greedy), got %v", c.Temperature))
	}
	if c.TopK < 0 {
		errs = append(errs, fmt.Errorf("top_k: must be >= 0 (0: all tokens), got %d", c.TopK))
	}
	if !(c.TopP >= 0 && c.TopP <= 1) {
		errs = append(errs, fmt.Errorf("top_p: must be in [0,1] (0 or 1: all tokens), got %v", c.TopP))
	}
	return errs
}

// sampling returns the configured decoding.Sampling.
func (c *Config) sampling() decoding.Sampling {
	return decoding.Sampling{Temperature: c.Temperature, TopK: c.TopK, TopP: c.TopP}
}

// verifierModel is what the hybrid needs of its verifier.
type verifierModel interface {
	harness.Model
	harness.Trainer
	harness.Scorer
	encdec.Verifier
}

// drafterModel is what the hybrid needs of its drafter's model besides
// drafting (draftModel).
type drafterModel interface {
	harness.Model
	harness.Trainer
}

// Model is the speculative hybrid.
type Model struct {
	cfg      Config
	verifier verifierModel
	drafter  drafterModel
	draft    draftModel
	ps       *nn.ParamSet

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

var (
	_ harness.Model           = (*Model)(nil)
	_ harness.Trainer         = (*Model)(nil)
	_ harness.Scorer          = (*Model)(nil)
	_ harness.Conditioner     = (*Model)(nil)
	_ harness.Translator      = (*Model)(nil)
	_ harness.DecodeSweeper   = (*Model)(nil)
	_ harness.EnvChecker      = (*Model)(nil)
	_ harness.MemoryEstimator = (*Model)(nil)
	_ io.Closer               = (*Model)(nil)
	_ harness.Config          = (*Config)(nil)

	_ verifierModel   = (*s2s.Model)(nil)
	_ drafterModel    = (*nar.Model)(nil)
	_ encdec.Proposer = (*nar.Model)(nil)
)

// New returns a fresh, unconfigured hybrid.
func New() harness.Model { return &Model{cfg: DefaultConfig()} }

// Config returns the configuration to decode into.
func (m *Model) Config() harness.Config { return &m.cfg }

// Info describes the model.
func (m *Model) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: Family, Params: m.ps.Count()}
}

// Params returns the verifier's parameters under "verifier." and the
// drafter's under "drafter." (nil before Setup).
func (m *Model) Params() *nn.ParamSet { return m.ps }

// Conditional reports that the model reads Batch.Source.
func (m *Model) Conditional() bool { return true }

// newInner returns the unconfigured verifier and drafter of c.
func (c *Config) newInner() (verifierModel, drafterModel, draftModel, error) {
	v := s2s.New().(*s2s.Model)
	*v.Config().(*s2s.Config) = c.Verifier
	switch c.Drafter {
	case DrafterNAR:
		d := nar.New().(*nar.Model)
		*d.Config().(*nar.Config) = c.Draft.NAR
		return v, d, narDraft{d}, nil
	case DrafterS2S:
		d := s2s.New().(*s2s.Model)
		*d.Config().(*s2s.Config) = c.Draft.S2S
		return v, d, arDraft{d}, nil
	}
	return nil, nil, nil, fmt.Errorf("drafter: unknown family %q", c.Drafter)
}

// CheckEnv reports what env asks that the verifier or the drafter cannot
// do, each under its configuration's name. Setup checks the same.
func (m *Model) CheckEnv(env harness.Env) []error {
	v, d, _, err := m.cfg.newInner()
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, inner := range []struct {
		name string
		m    harness.Model
	}{{"verifier", v}, {"draft." + m.cfg.Drafter, d}} {
		if ec, ok := inner.m.(harness.EnvChecker); ok {
			for _, e := range ec.CheckEnv(env) {
				errs = append(errs, fmt.Errorf("%s: %w", inner.name, e))
			}
		}
	}
	return errs
}

// EstimateMemory is the sum of the verifier's and the drafter's
// estimates: both are held, trained on every batch and run while decoding.
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	v, d, _, err := m.cfg.newInner()
	if err != nil {
		return harness.MemoryEstimate{}
	}
	var est harness.MemoryEstimate
	for _, inner := range []harness.Model{v, d} {
		if me, ok := inner.(harness.MemoryEstimator); ok {
			e := me.EstimateMemory(env)
			est.Params += e.Params
			est.Training += e.Training
			est.Inference += e.Inference
		}
	}
	return est
}

// draftSeed derives the drafter's seed (initialisation and dropout masks)
// from the run's: a SplitMix64 step, so that it differs from the
// verifier's for every seed.
func draftSeed(seed uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Setup validates the configuration and sets up the verifier (seed
// env.Seed) and the drafter (a derived seed) on env's backend. A model set
// up before is closed first.
func (m *Model) Setup(ctx context.Context, env harness.Env) error {
	if err := m.Close(); err != nil {
		return fmt.Errorf("%s: close the previous setup: %w", Family, err)
	}
	m.verifier, m.drafter, m.draft, m.ps = nil, nil, nil, nil
	var errs []error
	for _, err := range m.cfg.Validate() {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	if len(errs) == 0 {
		errs = m.CheckEnv(env)
	}
	if env.Backend == nil {
		errs = append(errs, errors.New("setup needs a backend"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", Family, errors.Join(errs...))
	}
	v, d, dm, err := m.cfg.newInner()
	if err != nil {
		return fmt.Errorf("%s: %w", Family, err)
	}
	ve, de := env, env
	de.Seed = draftSeed(env.Seed)
	if err := v.Setup(ctx, ve); err != nil {
		return fmt.Errorf("%s: verifier: %w", Family, errors.Join(err, closeModel(v)))
	}
	if err := d.Setup(ctx, de); err != nil {
		return fmt.Errorf("%s: drafter: %w", Family, errors.Join(err, closeModel(d), closeModel(v)))
	}
	ps := nn.NewParamSet()
	share(ps, "verifier.", v.Params())
	share(ps, "drafter.", d.Params())
	m.verifier, m.drafter, m.draft, m.ps = v, d, dm, ps
	m.rng = nn.NewRNG(draftSeed(draftSeed(env.Seed)))
	return nil
}

// share adds to ps, under prefix, a parameter for every parameter of from
// that shares its values and gradient (as nntest.InputsAsParams does):
// backends copy into Data and Grad in place, so the inner model and ps see
// the same numbers.
func share(ps *nn.ParamSet, prefix string, from *nn.ParamSet) {
	for _, p := range from.List() {
		q := ps.Add(prefix+p.Name, p.Shape...)
		q.Data, q.Grad = p.Data, p.Grad
	}
}

// ready reports a model that has not been set up.
func (m *Model) ready() error {
	if m.verifier == nil {
		return fmt.Errorf("%s: model used before Setup", Family)
	}
	return nil
}

// Gradients computes both models' losses on b and their gradients (the
// verifier's with seed, the drafter's with a derived seed for its own
// dropout and masking) and returns the sum of the two losses.
func (m *Model) Gradients(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	if err := m.ready(); err != nil {
		return 0, err
	}
	lv, err := m.verifier.Gradients(ctx, b, seed)
	if err != nil {
		return 0, fmt.Errorf("%s: verifier: %w", Family, err)
	}
	ld, err := m.drafter.Gradients(ctx, b, draftSeed(seed))
	if err != nil {
		return 0, fmt.Errorf("%s: drafter: %w", Family, err)
	}
	return lv + ld, nil
}

// LogProbs scores targets with the verifier.
func (m *Model) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	return m.verifier.LogProbs(ctx, b)
}

// settingName is the name of the decoding setting of draft length gamma.
func settingName(gamma int) string { return "gamma=" + strconv.Itoa(gamma) }

// DecodeSettings are "gamma=0", the verifier alone (the baseline), then
// "gamma=k" for each k of sweep_gamma.
func (m *Model) DecodeSettings() []harness.DecodeSetting {
	out := []harness.DecodeSetting{{Name: settingName(0), Params: map[string]any{"gamma": 0}, Baseline: true}}
	for _, g := range m.cfg.SweepGamma {
		out = append(out, harness.DecodeSetting{Name: settingName(g), Params: map[string]any{"gamma": g}})
	}
	return out
}

// gamma returns the draft length of a decoding setting: the configured
// gamma for "".
func (m *Model) gamma(setting string) (int, error) {
	if setting == "" {
		return m.cfg.Gamma, nil
	}
	var names []string
	for _, s := range m.DecodeSettings() {
		if s.Name == setting {
			return s.Params["gamma"].(int), nil
		}
		names = append(names, s.Name)
	}
	return 0, fmt.Errorf("%s: no decoding setting %q (known: %s)", Family, setting, strings.Join(names, ", "))
}

// Translate decodes sources by speculative decoding with the setting's γ
// (see the package documentation); γ = 0 decodes with the verifier alone.
// Passes counts the verifier's passes (its start included). Stats:
//
//	drafted          draft tokens proposed to live rows (at most γ per row and
//	                 round: fewer near MaxLen or the drafter's context)
//	accepted         accepted draft tokens that the output kept
//	tested           draft tokens that went through the acceptance test
//	tested_accepted  draft tokens accepted by it (tested_accepted/tested
//	                 estimates the acceptance rate α, Leviathan et al. §3.1)
//	verify_calls     verifier passes (= Passes)
//	draft_calls      drafter passes (nar: Propose calls; transformer-s2s:
//	                 its start and steps)
//	verify_seconds   wall time of the verifier's passes and the acceptance tests
//	                 (the synchronous loop's cache rewinds not included)
//	draft_seconds    wall time of drafting (encoding the sources included; a
//	                 drafter's rewinds not included)
func (m *Model) Translate(ctx context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	g, err := m.gamma(opt.Setting)
	if err != nil {
		return nil, err
	}
	dp := decodeParams{gamma: g, sampling: m.cfg.sampling()}
	if !dp.sampling.Greedy() {
		m.mu.Lock()
		defer m.mu.Unlock()
		dp.rng = m.rng
	}
	return speculate(ctx, m.verifier, m.draft, sources, opt, dp)
}

// Close releases both models' compiled executables; it does nothing
// before Setup.
func (m *Model) Close() error {
	var errs []error
	if m.verifier != nil {
		errs = append(errs, closeModel(m.verifier))
	}
	if m.drafter != nil {
		errs = append(errs, closeModel(m.drafter))
	}
	return errors.Join(errs...)
}

// closeModel closes m when it is an io.Closer.
func closeModel(m harness.Model) error {
	if c, ok := m.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
