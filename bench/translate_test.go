package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	_ "arbench/harness/harnesstest" // fake-lm: a language model without SourceJoiner
	"arbench/nn"
	nngorgonia "arbench/nn/gorgonia"
)

// Fake conditional models, computing nothing on the backend (so any
// backend runs them and the count backend counts no FLOPs):
//
//   - bench-fake-s2s: an autoregressive encoder–decoder (Conditioner,
//     Trainer, Scorer, SourceStepper) that emits token 3 at every step;
//   - bench-fake-sweep: a speculative decoder (Conditioner, DecodeSweeper)
//     with settings gamma=0 (the baseline) and gamma=2, accepting half of
//     its drafts; with refuse_count it fails on the count backend, as a
//     verifier checking CountBackend's zero distributions does.
//
// Both refuse a point whose Env lacks the source and target lengths, and
// the s2s fake refuses training and scoring batches without a source.
func init() {
	harness.RegisterModel("bench-fake-s2s", "fake encoder–decoder (bench tests)", func() harness.Model { return &fakeS2S{} })
	harness.RegisterModel("bench-fake-sweep", "fake speculative decoder (bench tests)", func() harness.Model { return &fakeSweep{} })
}

type fakeConfig struct {
	RefuseCount bool `yaml:"refuse_count"`
	// Context, when positive, bounds sources and decoder rows (CheckEnv).
	Context int `yaml:"context"`
}

func (*fakeConfig) Validate() []error { return nil }

func (f *fakeBase) CheckEnv(env harness.Env) []error {
	if c := f.cfg.Context; c > 0 && max(env.SourceLen, env.TargetLen) > c {
		return []error{fmt.Errorf("context %d < %d", c, max(env.SourceLen, env.TargetLen))}
	}
	return nil
}

// fakeBase is what both fakes share.
type fakeBase struct {
	cfg     fakeConfig
	ps      *nn.ParamSet
	vocab   int
	backend string
}

func (f *fakeBase) Config() harness.Config { return &f.cfg }
func (f *fakeBase) Params() *nn.ParamSet   { return f.ps }
func (*fakeBase) Conditional() bool        { return true }

func (f *fakeBase) Setup(_ context.Context, env harness.Env) error {
	if env.SourceLen < 1 || env.TargetLen < 1 {
		return fmt.Errorf("env without source and target lengths: %+v", env)
	}
	f.ps, f.vocab, f.backend = nn.NewParamSet(), env.Vocab, env.Backend.Name()
	f.ps.Add("w", 2)
	return nil
}

// dist is a log-distribution over the vocabulary with its mode at tok.
func (f *fakeBase) dist(tok int) []float32 {
	out := make([]float32, f.vocab)
	for v := range out {
		out[v] = -5
	}
	out[tok] = -0.1
	return out
}

func checkSources(sources [][]int, vocab int) error {
	for i, row := range sources {
		for _, t := range row {
			if t < 1 || t >= vocab {
				return fmt.Errorf("source %d holds token %d", i, t)
			}
		}
	}
	return nil
}

type fakeS2S struct{ fakeBase }

var (
	_ harness.Conditioner   = (*fakeS2S)(nil)
	_ harness.Trainer       = (*fakeS2S)(nil)
	_ harness.Scorer        = (*fakeS2S)(nil)
	_ harness.SourceStepper = (*fakeS2S)(nil)
)

func (f *fakeS2S) Info() harness.ModelInfo { return harness.ModelInfo{Family: "bench-fake-s2s"} }

func checkConditional(b harness.Batch) error {
	if b.Source == nil || len(b.Source) != len(b.Inputs) {
		return errors.New("a batch without a source")
	}
	for i := range b.Inputs {
		if b.Inputs[i][0] != startToken || b.Targets[i][len(b.Targets[i])-1] != endToken || harness.SourceLen(b.Source[i]) != len(b.Source[i]) {
			return fmt.Errorf("row %d is not framed as a conditional row: %v %v %v", i, b.Source[i], b.Inputs[i], b.Targets[i])
		}
	}
	return nil
}

func (f *fakeS2S) Gradients(_ context.Context, b harness.Batch, _ uint64) (float64, error) {
	if err := checkConditional(b); err != nil {
		return 0, err
	}
	f.ps.Get("w").Grad[0] = 0.5
	return 1, nil
}

func (f *fakeS2S) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	if err := checkConditional(b); err != nil {
		return nil, err
	}
	out := make([][]float64, len(b.Targets))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
	}
	return out, nil
}

type fakeState struct{ n int }

func (s *fakeState) Len() int { return s.n }

func (f *fakeS2S) StartSource(_ context.Context, sources, prompts [][]int) (harness.State, [][]float32, error) {
	if err := checkSources(sources, f.vocab); err != nil {
		return nil, nil, err
	}
	out := make([][]float32, len(prompts))
	for i := range out {
		out[i] = f.dist(3)
	}
	return &fakeState{n: 1}, out, nil
}

func (f *fakeS2S) Step(_ context.Context, s harness.State, tokens []int) ([][]float32, error) {
	s.(*fakeState).n++
	out := make([][]float32, len(tokens))
	for i := range out {
		out[i] = f.dist(3)
	}
	return out, nil
}

type fakeSweep struct{ fakeBase }

var _ harness.DecodeSweeper = (*fakeSweep)(nil)

func (f *fakeSweep) Info() harness.ModelInfo { return harness.ModelInfo{Family: "bench-fake-sweep"} }

func (f *fakeSweep) DecodeSettings() []harness.DecodeSetting {
	return []harness.DecodeSetting{
		{Name: "gamma=0", Params: map[string]any{"gamma": 0}, Baseline: true},
		{Name: "gamma=2", Params: map[string]any{"gamma": 2}},
	}
}

// Translate verifies every row's draft of gamma tokens in one call and
// accepts half of them, plus the verifier's own token.
func (f *fakeSweep) Translate(_ context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	if f.cfg.RefuseCount && f.backend == "count" {
		return nil, errors.New("verifier: draft distribution sums to 0")
	}
	if err := checkSources(sources, f.vocab); err != nil {
		return nil, err
	}
	var gamma int
	if _, err := fmt.Sscanf(opt.Setting, "gamma=%d", &gamma); err != nil {
		return nil, fmt.Errorf("setting %q: %w", opt.Setting, err)
	}
	if opt.Length < 1 {
		return nil, errors.New("the bench must force the length")
	}
	perCall := 1 + gamma/2
	calls := (opt.Length + perCall - 1) / perCall
	tr := &harness.Translation{Passes: calls, Outputs: make([][]int, len(sources))}
	for i := range sources {
		tr.Outputs[i] = slices.Repeat([]int{3}, opt.Length)
	}
	rows := float64(len(sources))
	if gamma > 0 {
		tr.Stats = map[string]float64{"drafted": rows * float64(calls*gamma), "accepted": rows * float64(calls*gamma/2), "verify_calls": float64(calls)}
	}
	return tr, nil
}

func translateConfig() *harness.BenchConfig {
	c := tinyConfig()
	c.Generate.Batches = []int{1}
	c.Generate.Lengths = []int{4}
	c.Translate = harness.BenchTranslate{Source: 5, Batches: []int{1, 2}, Lengths: []int{4, 6}, Repeats: 3}
	return c
}

// TestPlanTranslate: models that read a source get translate points over
// batches × lengths, in every decoding setting of a DecodeSweeper and
// greedy otherwise, and a conditional model's training and scoring rows
// get sources; a language model without SourceJoiner gets none.
func TestPlanTranslate(t *testing.T) {
	r := &runner{opt: Options{Config: translateConfig(), Seed: 1}}
	modes := func(pts []Point) map[string]int {
		n := map[string]int{}
		for _, p := range pts {
			if p.Kind == KindTranslate {
				n[p.Mode]++
				if p.Source != 5 || !slices.Contains([]int{4, 6}, p.Length) || !slices.Contains([]int{1, 2}, p.Batch) {
					t.Errorf("translate point %+v", p)
				}
			}
		}
		return n
	}
	s2s := spec(t, "bench-fake-s2s", "{}")
	pts := r.plan(&s2s)
	if got := modes(pts); len(got) != 1 || got[ModeGreedy] != 4 {
		t.Errorf("conditional model: translate modes %v, want greedy × 4", got)
	}
	for _, p := range pts {
		if (p.Kind == KindTrain || p.Kind == KindScore) && p.Source != p.SeqLen {
			t.Errorf("conditional %s point without a source of its length: %+v", p.Kind, p)
		}
	}
	sweep := spec(t, "bench-fake-sweep", "{}")
	pts = r.plan(&sweep)
	if got := modes(pts); len(got) != 2 || got["gamma=0"] != 4 || got["gamma=2"] != 4 {
		t.Errorf("DecodeSweeper: translate modes %v, want gamma=0 and gamma=2 × 4", got)
	}
	for _, p := range pts {
		if p.Kind == KindTranslate && (p.DecodeBaseline != (p.Mode == "gamma=0") || p.DecodeParams["gamma"] == nil) {
			t.Errorf("setting not recorded: %+v", p)
		}
	}
	lm := spec(t, "fake-lm", "{}")
	if got := modes(r.plan(&lm)); len(got) != 0 {
		t.Errorf("a language model without SourceJoiner got translate points %v", got)
	}
	r.opt.Config.Translate.Batches = nil
	if got := modes(r.plan(&s2s)); len(got) != 0 {
		t.Errorf("an empty translate sweep planned %v", got)
	}
}

// TestRunTranslate runs the sweep over the fake conditional models and
// checks the translate points' measurements, the conditional training and
// scoring, the skipped generation, the FLOPs note and the outputs.
func TestRunTranslate(t *testing.T) {
	cfg := translateConfig()
	opt := Options{
		Name: "s2s", Backend: nngorgonia.New(), Config: cfg, Seed: 3,
		Models: []harness.ModelSpec{spec(t, "bench-fake-s2s", "{}"), spec(t, "bench-fake-sweep", "{refuse_count: true}")},
	}
	opt.Models[1].Label = "sweep"
	rep, err := Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range rep.Points {
		count[p.Model+"/"+p.Kind]++
		switch p.Kind {
		case KindGenerate:
			if p.Skipped != "conditional model: see the translate points" {
				t.Errorf("generation point of a conditional model: %+v", p)
			}
		case KindTrain, KindScore:
			if p.Source != p.SeqLen || (p.Model == "sweep") != (p.Skipped != "") || (p.Skipped == "" && p.TokensPerSec.N != cfg.Repeats) {
				t.Errorf("conditional %s point: %+v", p.Kind, p)
			}
		case KindTranslate:
			if p.Skipped != "" || p.SeqPerSec == nil || p.SeqPerSec.N != 3 || p.TokensPerSec.N != 3 || p.StepSeconds.N != 3 || p.SeqLatency.N != 3 {
				t.Fatalf("translate point not measured: %+v", p)
			}
			if ratio := p.TokensPerSec.Values[0] / p.SeqPerSec.Values[0]; math.Abs(ratio-float64(p.Length)) > 1e-9 {
				t.Errorf("tokens/s over seq/s = %v, want the length %d", ratio, p.Length)
			}
			if l := p.SeqLatency.P50; math.Abs(l-Quantile(p.StepSeconds.Values, 0.5)/float64(p.Batch)) > 1e-12 {
				t.Errorf("latency per sequence %v, decode times %v at batch %d", l, p.StepSeconds.Values, p.Batch)
			}
			if p.Note != "" {
				t.Errorf("note %q", p.Note)
			}
		}
		if p.Model == "bench-fake-s2s" && p.Kind == KindTranslate {
			if p.Passes != float64(p.Length) || p.Acceptance != nil || p.FLOPsNote != "" {
				t.Errorf("greedy s2s point: %+v", p)
			}
		}
		if p.Model == "sweep" && p.Kind == KindTranslate {
			if !strings.Contains(p.FLOPsNote, "draft distribution sums to 0") || p.FLOPsPerToken != 0 {
				t.Errorf("sweep point without its FLOPs note: %+v", p)
			}
			switch p.Mode {
			case "gamma=0":
				if p.Passes != float64(p.Length) || p.Acceptance != nil || p.TokensPerVerify != nil {
					t.Errorf("baseline setting: %+v", p)
				}
			case "gamma=2":
				calls := (p.Length + 1) / 2
				if p.Passes != float64(calls) || p.Acceptance == nil || *p.Acceptance != 0.5 ||
					p.TokensPerVerify == nil || *p.TokensPerVerify != float64(p.Length)/float64(calls) || p.Stats["verify_calls"] != float64(calls) || p.Stats["drafted"] != float64(2*p.Batch*calls) {
					t.Errorf("speculative setting: %+v", p)
				}
			}
		}
	}
	want := map[string]int{
		"bench-fake-s2s/train": 3, "bench-fake-s2s/score": 1, "bench-fake-s2s/generate": 1, "bench-fake-s2s/translate": 4,
		"sweep/train": 3, "sweep/score": 1, "sweep/generate": 1, "sweep/translate": 8,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: %d points, want %d (all: %v)", k, count[k], n, count)
		}
	}

	dir := t.TempDir()
	if _, err := Write(dir, rep); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFileName))
	for _, s := range []string{
		"## Translation", "| sweep | gamma=2 | 2 | 6 |", "| 0.50 |",
		"- sweep (gamma=0 b=1 len=4, gamma=0 b=1 len=6, gamma=0 b=2 len=4, gamma=0 b=2 len=6, gamma=2 b=1 len=4, ", "): FLOPs not counted",
		"### Speed-up over autoregressive decoding", "**bench-fake-s2s greedy** (bench-fake-s2s)",
		"| bench-fake-s2s | greedy | 1 | 4 |", "| 1.00× |",
		"sweep train b=3 T=6: not trainable", "bench-fake-s2s generate/cached b=1 len=4: conditional model",
	} {
		if !strings.Contains(string(md), s) {
			t.Errorf("bench.md lacks %q:\n%s", s, md)
		}
	}
	checkBenchstat(t, filepath.Join(dir, BenchstatFileName), rep)
	txt, _ := os.ReadFile(filepath.Join(dir, BenchstatFileName))
	for _, s := range []string{"BenchmarkTranslate/model=sweep/mode=gamma=2/batch=2/len=6-", "seq/s", "passes/op", "acceptance"} {
		if !strings.Contains(string(txt), s) {
			t.Errorf("bench.txt lacks %q", s)
		}
	}
	for _, name := range []string{"translate_latency_vs_length_b1", "translate_latency_vs_length_b2"} {
		if _, err := os.Stat(filepath.Join(dir, ChartsDir, name+".svg")); err != nil {
			t.Errorf("chart %s: %v", name, err)
		}
	}
	lines := Charts(rep)["translate_latency_vs_length_b2"].Lines
	if len(lines) != 3 {
		t.Errorf("batch-2 latency chart has %d lines, want 3 (one per model and mode)", len(lines))
	}
}

// TestTranslateRefusedPoint: a point a conditional model's own check
// refuses (its context, without ContextLimiter) is skipped with the
// reason, not an error of the run.
func TestTranslateRefusedPoint(t *testing.T) {
	r := &runner{opt: Options{Backend: nngorgonia.New(), Config: translateConfig(), Seed: 1}}
	s := spec(t, "bench-fake-s2s", "{context: 5}")
	for _, c := range []struct {
		p    Point
		skip bool
	}{
		{Point{Kind: KindTranslate, Mode: ModeGreedy, Batch: 1, Source: 5, Length: 6}, true},
		{Point{Kind: KindTrain, Batch: 1, SeqLen: 6, Source: 6}, true},
		{Point{Kind: KindTranslate, Mode: ModeGreedy, Batch: 1, Source: 5, Length: 4}, false},
	} {
		p, err := r.measure(context.Background(), &s, c.p)
		if err != nil || (p.Skipped != "") != c.skip || (c.skip && p.Skipped != "refused by the model's check: context 5 < 6") {
			t.Errorf("%s: skipped %q, %v", describe(c.p), p.Skipped, err)
		}
	}
}

// TestTranslateSpeedupBaseline: speed-ups are over the transformer-s2s
// model's greedy points when the report has them, else over the first
// model with greedy points, at the same batch and length.
func TestTranslateSpeedupBaseline(t *testing.T) {
	pt := func(model, family, mode string, batch, length int, seqPerSec float64) Point {
		return Point{Model: model, Family: family, Kind: KindTranslate, Mode: mode, Batch: batch, Length: length,
			SeqPerSec: &Summary{N: 1, Median: seqPerSec}, SeqLatency: &Latency{N: 1}}
	}
	trans := []Point{
		pt("lstm", "lstm", ModeGreedy, 1, 8, 10),
		pt("nar", "nar", "T=1", 1, 8, 200),
		pt("nar", "nar", "T=1", 4, 8, 400),
		pt("s2s", BaselineFamily, ModeGreedy, 1, 8, 50),
	}
	base, rows := translateSpeedups(trans)
	if base.Model != "s2s" || len(rows) != 3 {
		t.Fatalf("baseline %q with %d rows, want s2s with 3 (no baseline at batch 4)", base.Model, len(rows))
	}
	if rows[1].p.Model != "nar" || rows[1].base != 50 || rows[1].p.SeqPerSec.Median/rows[1].base != 4 {
		t.Errorf("nar's speed-up row %+v", rows[1])
	}
	base, rows = translateSpeedups(trans[:3])
	if base.Model != "lstm" || len(rows) != 2 || rows[1].base != 10 {
		t.Errorf("without transformer-s2s: baseline %q, rows %+v", base.Model, rows)
	}
	if base, rows := translateSpeedups(trans[1:3]); base.Model != "" || rows != nil {
		t.Errorf("without greedy points: baseline %q, rows %+v", base.Model, rows)
	}
	var b strings.Builder
	writeTranslate(&b, &Report{Config: translateConfig()}, trans)
	for _, s := range []string{"**s2s greedy** (transformer-s2s)", "| nar | T=1 | 1 | 8 | 200 | 50.0 | 4.00× |", "| lstm | greedy | 1 | 8 | 10.0 | 50.0 | 0.20× |"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("translation section lacks %q:\n%s", s, b.String())
		}
	}
}
