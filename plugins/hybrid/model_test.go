package hybrid

import (
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/nar"
	"arbench/plugins/s2s"
	"arbench/tasks/seq2seq"
)

// TestDecodeConfig: the experiment's YAML section decodes strictly into
// Config, nested sections included (the verifier's and the drafter's
// fields keep their defaults unless written); problems name the nested
// field; a decoded config serialised as results files store it decodes
// back to itself.
func TestDecodeConfig(t *testing.T) {
	m := New().(*Model)
	src := `
verifier: {dim: 64, heads: 8, layers: 3}
drafter: transformer-s2s
draft:
  transformer-s2s: {dim: 24, heads: 2}
  nar: {iterations: 2}
gamma: 6
sweep_gamma: [2, 5]
temperature: 0.7
top_k: 3
`
	if err := harness.DecodeConfig("x.yaml", []byte(src), m.Config()); err != nil {
		t.Fatal(err)
	}
	c := m.cfg
	def := DefaultConfig()
	if c.Verifier.Dim != 64 || c.Verifier.Heads != 8 || c.Verifier.Layers != 3 || c.Verifier.Context != def.Verifier.Context ||
		c.Drafter != DrafterS2S || c.Draft.S2S.Dim != 24 || c.Draft.S2S.Layers != def.Draft.S2S.Layers ||
		c.Draft.NAR.Iterations != 2 || c.Draft.NAR.Dim != def.Draft.NAR.Dim ||
		c.Gamma != 6 || !slices.Equal(c.SweepGamma, []int{2, 5}) || c.Temperature != 0.7 || c.TopK != 3 {
		t.Fatalf("decoded %+v", c)
	}
	data, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	back := New().(*Model)
	if err := harness.DecodeConfig("results.json", data, back.Config()); err != nil {
		t.Fatalf("a serialised config does not decode: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back.cfg, c) {
		t.Fatalf("round trip: %+v, want %+v", back.cfg, c)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"verifier: {dimm: 3}\n", "verifier.dimm: unknown field"},
		{"draft: {nar: {heads: x}}\n", "draft.nar.heads"},
		{"draft: {lstm: {}}\n", "draft.lstm: unknown field"},
		{"drafter: lstm\n", "drafter: must be nar or transformer-s2s"},
		{"draft: {nar: {dim: 30, heads: 4}}\n", "draft.nar: heads: 4 does not divide dim 30"},
		{"drafter: transformer-s2s\ndraft: {transformer-s2s: {context: 0}}\n", "draft.transformer-s2s: context: must be positive"},
		{"sweep_gamma: [2, 2]\n", "sweep_gamma[1]: 2 is listed twice"},
		{"temperature: .nan\n", "temperature: must be a finite number"},
	} {
		err := harness.DecodeConfig("x.yaml", []byte(tc.yaml), New().Config())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yaml, err, tc.want)
		}
	}
}

// TestValidateReportsEveryProblem: Validate reports all problems at once,
// the inner configurations' under their names; the unused drafter's
// section is not checked.
func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Verifier.Dim = 0
	c.Draft.NAR.Heads = 0
	c.Draft.S2S.Dim = -1 // not the drafter: ignored
	c.Gamma = -1
	c.SweepGamma = []int{0, 3, 3, maxGamma + 1}
	c.Temperature, c.TopK, c.TopP = -1, -2, 1.5
	var msgs []string
	for _, err := range c.Validate() {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"verifier: dim", "draft.nar: heads", "gamma: must be in [0,1024]", "sweep_gamma[0]", "sweep_gamma[2]: 3 is listed twice",
		"sweep_gamma[3]", "temperature", "top_k", "top_p"} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem mentions %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "transformer-s2s") {
		t.Errorf("the unused drafter's section was checked:\n%s", all)
	}
	if errs := (&Config{}).Validate(); len(errs) < 5 {
		t.Errorf("a zero config gave only %v", errs)
	}
	if d := DefaultConfig(); len(d.Validate()) != 0 {
		t.Errorf("defaults invalid: %v", d.Validate())
	}
}

// TestDecodeSettings: the baseline is the verifier alone, then one
// setting per sweep_gamma entry; "" selects gamma; an unknown name is
// refused, naming the known ones.
func TestDecodeSettings(t *testing.T) {
	m := New().(*Model)
	got := m.DecodeSettings()
	want := []harness.DecodeSetting{
		{Name: "gamma=0", Params: map[string]any{"gamma": 0}, Baseline: true},
		{Name: "gamma=1", Params: map[string]any{"gamma": 1}},
		{Name: "gamma=2", Params: map[string]any{"gamma": 2}},
		{Name: "gamma=4", Params: map[string]any{"gamma": 4}},
		{Name: "gamma=8", Params: map[string]any{"gamma": 8}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeSettings = %v, want %v", got, want)
	}
	for setting, g := range map[string]int{"": 4, "gamma=0": 0, "gamma=8": 8} {
		if k, err := m.gamma(setting); err != nil || k != g {
			t.Errorf("setting %q: gamma %d, %v; want %d", setting, k, err, g)
		}
	}
	if _, err := m.gamma("gamma=3"); err == nil || !strings.Contains(err.Error(), "known: gamma=0, gamma=1, gamma=2, gamma=4, gamma=8") {
		t.Errorf("unknown setting: %v", err)
	}
}

// TestBeforeSetup: every use before Setup is an error, and Close is a no-op.
func TestBeforeSetup(t *testing.T) {
	m := New().(*Model)
	ctx := t.Context()
	if _, err := m.Translate(ctx, [][]int{{3}}, harness.TranslateOptions{MaxLen: 2}); err == nil {
		t.Error("Translate before Setup")
	}
	if _, err := m.Gradients(ctx, harness.Batch{}, 1); err == nil {
		t.Error("Gradients before Setup")
	}
	if _, err := m.LogProbs(ctx, harness.Batch{}); err == nil {
		t.Error("LogProbs before Setup")
	}
	if err := m.Close(); err != nil || m.Params() != nil || m.Info().Params != 0 {
		t.Errorf("before Setup: Close %v, params %v", err, m.Params())
	}
	err := m.Setup(ctx, harness.Env{Vocab: 10, SourceLen: 5, TargetLen: 6})
	if err == nil || !strings.Contains(err.Error(), "backend") {
		t.Errorf("Setup without a backend: %v", err)
	}
	m.cfg.Gamma = -1
	err = m.Setup(ctx, harness.Env{Backend: plugintest.Backend(t), Vocab: 10, SourceLen: 5, TargetLen: 6})
	if err == nil || !strings.Contains(err.Error(), "config: gamma") {
		t.Errorf("Setup with an invalid config: %v", err)
	}
}

// TestRegistered: the registry builds the hybrid, a Conditioner and
// DecodeSweeper that harness.SourceMode reads as one.
func TestRegistered(t *testing.T) {
	m, err := harness.NewModel(Family)
	if err != nil {
		t.Fatal(err)
	}
	if m.Info().Family != Family || harness.SourceMode(m) != "conditioner" {
		t.Errorf("registered %T: %+v, mode %q", m, m.Info(), harness.SourceMode(m))
	}
	if _, ok := m.(harness.DecodeSweeper); !ok {
		t.Error("not a DecodeSweeper")
	}
}

// TestCheckEnvAndMemory: CheckEnv reports both models' problems under
// their names; the memory estimate is the sum of both models'.
func TestCheckEnvAndMemory(t *testing.T) {
	m := New().(*Model)
	m.cfg.Verifier.Context, m.cfg.Draft.NAR.Context = 8, 6
	env := harness.Env{Vocab: 20, SourceLen: 10, TargetLen: 7, Batch: 32}
	var msgs []string
	for _, err := range m.CheckEnv(env) {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, "verifier: context: 8") || !strings.Contains(all, "draft.nar: context: 6") {
		t.Errorf("CheckEnv:\n%s", all)
	}
	v := s2s.New()
	*v.Config().(*s2s.Config) = m.cfg.Verifier
	d := nar.New()
	*d.Config().(*nar.Config) = m.cfg.Draft.NAR
	ve := v.(harness.MemoryEstimator).EstimateMemory(env)
	de := d.(harness.MemoryEstimator).EstimateMemory(env)
	got := m.EstimateMemory(env)
	if got.Params != ve.Params+de.Params || got.Training != ve.Training+de.Training || got.Inference != ve.Inference+de.Inference || got.Params == 0 {
		t.Errorf("estimate %+v, want the sum of %+v and %+v", got, ve, de)
	}
}

// TestGradientsAreBothModels': the hybrid's loss is the verifier's plus
// the drafter's, each computed as by the model alone (the verifier with
// the run's seeds, the drafter with derived ones), and the gradients in
// the combined set are theirs.
func TestGradientsAreBothModels(t *testing.T) {
	gen := reverseGen(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 1))
	exs := make([]seq2seq.Example, 8)
	for i := range exs {
		exs[i] = gen.Train(rng)
	}
	b := seq2seq.PadBatch(exs)
	for _, drafter := range []string{DrafterNAR, DrafterS2S} {
		cfg := tinyConfig(drafter)
		cfg.Verifier.Dropout, cfg.Draft.NAR.Dropout, cfg.Draft.S2S.Dropout = 0.1, 0.1, 0.1
		m := setUp(t, cfg, gen, 5)
		loss, err := m.Gradients(ctx, b, 77)
		if err != nil {
			t.Fatal(err)
		}
		v, d, _, err := cfg.newInner()
		if err != nil {
			t.Fatal(err)
		}
		src, tgt := gen.MaxLens()
		env := harness.Env{Backend: plugintest.Backend(t), Vocab: gen.Vocab(), SourceLen: src, TargetLen: tgt + 1, Batch: 32, Seed: 5}
		denv := env
		denv.Seed = draftSeed(5)
		if err := v.Setup(ctx, env); err != nil {
			t.Fatal(err)
		}
		if err := d.Setup(ctx, denv); err != nil {
			t.Fatal(err)
		}
		lv, err := v.Gradients(ctx, b, 77)
		if err != nil {
			t.Fatal(err)
		}
		ld, err := d.Gradients(ctx, b, draftSeed(77))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(loss-(lv+ld)) > 1e-6*math.Abs(loss) {
			t.Errorf("%s: loss %v, the verifier's %v + the drafter's %v = %v", drafter, loss, lv, ld, lv+ld)
		}
		for prefix, ps := range map[string]*nn.ParamSet{"verifier.": v.Params(), "drafter.": d.Params()} {
			for _, p := range ps.List() {
				q := m.Params().Get(prefix + p.Name)
				if !slices.Equal(q.Data, p.Data) || !slices.Equal(q.Grad, p.Grad) {
					t.Fatalf("%s: %s%s differs from the model alone's", drafter, prefix, p.Name)
				}
			}
		}
		for _, x := range []harness.Model{v, d} {
			if err := closeModel(x); err != nil {
				t.Error(err)
			}
		}
	}
}

// fakeHybrid returns a hybrid over the fakes, as Setup would assemble it
// from real models.
func fakeHybrid(cfg Config, verifier, draft distFn, seed uint64) *Model {
	return &Model{cfg: cfg, verifier: &fakeAR{dist: verifier}, drafter: &fakeAR{dist: draft},
		draft: narDraft{&fakeNAR{dist: draft}}, rng: nn.NewRNG(seed)}
}

// TestModelTranslateWithFakes: Model.Translate through harness.Translate,
// greedy at every setting equal to the verifier alone; sampled, seeded by
// Setup's generator: the same seed gives the same outputs, and successive
// calls draw afresh.
func TestModelTranslateWithFakes(t *testing.T) {
	const vocab = 6
	vl := verifierLogits(3, vocab, 2, 0.3)
	rng := rand.New(rand.NewPCG(3, 3))
	sources := randomSources(rng, 9, vocab, 5)
	ctx := t.Context()
	opt := harness.TranslateOptions{Start: fakeStart, End: fakeEnd, MaxLen: 10}
	want, err := harness.Translate(ctx, &fakeAR{dist: fromLogits(vl)}, sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := fakeHybrid(DefaultConfig(), fromLogits(vl), noisy(vl, 9, 1), 1)
	for _, s := range append(m.DecodeSettings(), harness.DecodeSetting{}) {
		opt.Setting = s.Name
		got, err := harness.Translate(ctx, m, sources, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got.Outputs, want.Outputs, slices.Equal) {
			t.Errorf("setting %q: %v, want %v", s.Name, got.Outputs, want.Outputs)
		}
	}
	cfg := DefaultConfig()
	cfg.Temperature = 1
	opt.Setting = ""
	a, b := fakeHybrid(cfg, fromLogits(vl), noisy(vl, 9, 1), 7), fakeHybrid(cfg, fromLogits(vl), noisy(vl, 9, 1), 7)
	first, err := a.Translate(ctx, sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	same, err := b.Translate(ctx, sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Translate(ctx, sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(first.Outputs, same.Outputs, slices.Equal) {
		t.Errorf("the same seed sampled %v and %v", first.Outputs, same.Outputs)
	}
	if slices.EqualFunc(first.Outputs, again.Outputs, slices.Equal) {
		t.Errorf("a second call sampled the same %v", again.Outputs)
	}
	if _, err := a.Translate(ctx, sources, harness.TranslateOptions{Start: fakeStart, End: fakeEnd}); err == nil {
		t.Error("MaxLen 0 accepted")
	}
	if _, err := a.Translate(ctx, nil, opt); err == nil {
		t.Error("no sources accepted")
	}
}

// TestDocExample: the configuration in the package documentation decodes
// and validates (so the documentation cannot rot).
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("hybrid.go")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case line == "//\tmodels:":
			in = true
		case in && !strings.HasPrefix(line, "//\t"):
			in = false
		}
		if in {
			block = append(block, strings.TrimPrefix(line, "//\t"))
		}
	}
	var doc struct {
		Models []struct {
			Name   string    `yaml:"name"`
			Config yaml.Node `yaml:"config"`
		} `yaml:"models"`
	}
	if err := yaml.Unmarshal([]byte(strings.Join(block, "\n")), &doc); err != nil || len(doc.Models) != 1 || doc.Models[0].Name != Family {
		t.Fatalf("the documentation's example (%d lines): %v, %+v", len(block), err, doc)
	}
	data, err := yaml.Marshal(&doc.Models[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	m := New().(*Model)
	if err := harness.DecodeConfig("hybrid.go", data, m.Config()); err != nil {
		t.Fatalf("the documentation's example: %v", err)
	}
	if !reflect.DeepEqual(m.cfg, DefaultConfig()) {
		t.Errorf("the documentation's example is not the defaults:\n%+v\n%+v", m.cfg, DefaultConfig())
	}
}
