package nar

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"arbench/harness"
	"arbench/internal/decoding"
	"arbench/nn"
	"arbench/plugins/internal/lm"
	"arbench/plugins/internal/plugintest"
	"arbench/tasks/seq2seq"
)

// reverseLen is the source length of the fixed-length reverse task the
// tests train on; its targets have reverseLen+1 tokens (EOS included).
const reverseLen = 6

// reverseGen returns the seq2seq/reverse generator with min_len = max_len.
func reverseGen(t testing.TB) *seq2seq.Generator {
	t.Helper()
	cfg := seq2seq.DefaultConfig()
	cfg.MinLen, cfg.MaxLen = reverseLen, reverseLen
	cfg.TestRows = 128
	g, err := seq2seq.NewGenerator(cfg, "reverse")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// newTiny returns a set-up model of width 32 with one layer per stack for
// the vocabulary of vocab tokens, edited by edit before Setup.
func newTiny(t testing.TB, vocab int, edit func(*Config)) *Model {
	t.Helper()
	m := New().(*Model)
	c := &m.cfg
	c.Dim, c.Heads, c.Layers, c.FF, c.Context, c.MaxOffset = 32, 2, 1, 64, 12, 4
	if edit != nil {
		edit(c)
	}
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: vocab, SourceLen: reverseLen, TargetLen: reverseLen + 1, Seed: 3}
	if err := m.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	return m
}

// trained is a model trained on reverse once, shared by the tests that
// need one.
var trained struct {
	once     sync.Once
	m        *Model
	gen      *seq2seq.Generator
	test     []seq2seq.Example
	first    [2]float64 // token and length loss of the first step
	last     [2]float64 // mean over the last 20 steps
	duration time.Duration
	err      error
}

const (
	trainSteps = 300
	trainBatch = 32
)

// trainedModel trains a tiny model on seq2seq/reverse (length 6) once,
// for the tests that share it.
func trainedModel(t *testing.T) *Model {
	t.Helper()
	trained.once.Do(func() {
		start := time.Now()
		gen := reverseGen(t)
		m := newTiny(t, gen.Vocab(), nil)
		trained.first, trained.last, trained.err = train(m, gen, trainSteps)
		if trained.err == nil {
			trained.test, trained.err = gen.Fixed(1, seq2seq.Test)
		}
		trained.m, trained.gen, trained.duration = m, gen, time.Since(start)
	})
	if trained.err != nil || trained.m == nil {
		t.Fatalf("training the shared model failed: %v", trained.err)
	}
	return trained.m
}

// train runs steps of Adam (lr 3e-3, batches of 32 from gen's training
// stream of a fixed seed, clipping at 1) and returns the token and length
// losses of the first step and their means over the last 20.
func train(m *Model, gen *seq2seq.Generator, steps int) (first, last [2]float64, err error) {
	cfg := nn.DefaultAdamConfig()
	cfg.LR = 3e-3
	opt := nn.NewAdam(m.Params(), cfg)
	rng := rand.New(rand.NewPCG(11, 12))
	for step := range steps {
		exs := make([]seq2seq.Example, trainBatch)
		for i := range exs {
			exs[i] = gen.Train(rng)
		}
		if _, err := m.Gradients(context.Background(), seq2seq.PadBatch(exs), uint64(step)); err != nil {
			return first, last, err
		}
		nn.ClipGradNorm(m.Params(), 1)
		opt.Step()
		if step == 0 {
			first = m.lastLosses
		}
		if n := min(steps, 20); step >= steps-n {
			last[0] += m.lastLosses[0] / float64(n)
			last[1] += m.lastLosses[1] / float64(n)
		}
	}
	return first, last, nil
}

// exactMatch returns the fraction of exs whose output under setting is
// one of their valid targets, and the Translation.
func exactMatch(t *testing.T, m *Model, exs []seq2seq.Example, setting string) (float64, *harness.Translation) {
	t.Helper()
	tr, err := m.Translate(context.Background(), sources(exs), opts(setting))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, e := range exs {
		if e.Match(tr.Outputs[i]) >= 0 {
			n++
		}
	}
	return float64(n) / float64(len(exs)), tr
}

func sources(exs []seq2seq.Example) [][]int {
	out := make([][]int, len(exs))
	for i, e := range exs {
		out[i] = e.Source
	}
	return out
}

func opts(setting string) harness.TranslateOptions {
	return harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, MaxLen: 2 * reverseLen, Setting: setting}
}

// TestOnePassAtT1: at T = 1 a batch costs one decoder pass (counted at
// the executable, not from the result), and the output is what
// decoding.MaskPredict with one iteration gives over the model's
// predictor, which is in turn the argmax of one all-[MASK] decoder pass.
// With a length beam of 2 it is still one pass, over twice the rows.
func TestOnePassAtT1(t *testing.T) {
	gen := reverseGen(t)
	for _, beam := range []int{1, 2} {
		m := newTiny(t, gen.Vocab(), func(c *Config) { c.LengthBeam = beam })
		ctx := context.Background()
		srcs := [][]int{{6, 7, 8, 9, 10, 11}, {7, 7, 7}, {13, 12, 6, 6, 6, 6}}
		before := m.decoderPasses
		tr, err := m.Translate(ctx, srcs, opts(""))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.decoderPasses - before; got != 1 || tr.Passes != 1 {
			t.Fatalf("beam %d: T=1 ran %d decoder passes, Translation.Passes = %d; want 1 and 1", beam, got, tr.Passes)
		}
		if got := tr.Stats["length_candidates"]; got != float64(beam*len(srcs)) {
			t.Errorf("beam %d: length_candidates = %v, want %d", beam, got, beam*len(srcs))
		}
		if beam > 1 {
			continue
		}
		e, err := m.encode(ctx, srcs)
		if err != nil {
			t.Fatal(err)
		}
		var lengths []int
		rowSrc := []int{0, 1, 2}
		for i := range srcs {
			lengths = append(lengths, e.lengths(i, m.cfg.MaxOffset, 1, 2*reverseLen)[0])
		}
		if !slices.Equal(lengths, tr.Lengths) {
			t.Fatalf("Translation.Lengths = %v, the length head's argmax gives %v", tr.Lengths, lengths)
		}
		res, err := decoding.MaskPredict(ctx, lengths, decoding.MaskOptions{Iterations: 1, Mask: m.vocab}, m.predictor(e, rowSrc))
		if err != nil {
			t.Fatal(err)
		}
		masks := make([][]int, len(srcs))
		for i, n := range lengths {
			masks[i] = slices.Repeat([]int{m.vocab}, n)
		}
		v, T, err := m.decode(ctx, e, rowSrc, masks)
		if err != nil {
			t.Fatal(err)
		}
		for i := range srcs {
			want := res.Tokens[i]
			for j, tok := range want {
				if a := decoding.Argmax(v.Data[(i*T+j)*m.vocab : (i*T+j+1)*m.vocab]); a != tok {
					t.Fatalf("row %d position %d: mask-predict chose %d, the all-[MASK] pass's argmax is %d", i, j, tok, a)
				}
			}
			if k := slices.Index(want, seq2seq.EOS); k >= 0 {
				want = want[:k]
			}
			if !slices.Equal(tr.Outputs[i], want) {
				t.Errorf("row %d: Translate = %v, MaskPredict(T=1) = %v", i, tr.Outputs[i], want)
			}
		}
	}
}

// TestPassesFollowTheSchedule: T passes when every candidate has N ≥ T
// tokens, and 1 + T − ⌈T/N⌉ for T > N (decoding.MaskPredict skips passes
// that re-mask nothing); Passes is what ran.
func TestPassesFollowTheSchedule(t *testing.T) {
	gen := reverseGen(t)
	m := newTiny(t, gen.Vocab(), func(c *Config) { c.MaxOffset = 0 }) // N = |source|
	srcs := [][]int{{6, 7, 8, 9, 10, 11}, {7, 8, 9, 10, 11, 12}}
	for _, c := range []struct {
		setting string
		passes  int
	}{
		{"T=1", 1}, {"T=2", 2}, {"T=4", 4}, {"T=10", 1 + 10 - 2},
	} {
		before := m.decoderPasses
		tr, err := m.Translate(context.Background(), srcs, opts(c.setting))
		if err != nil {
			t.Fatal(err)
		}
		if ran := m.decoderPasses - before; tr.Passes != c.passes || ran != c.passes {
			t.Errorf("%s: Passes = %d, ran %d decoder passes; want %d", c.setting, tr.Passes, ran, c.passes)
		}
		if !slices.Equal(tr.Lengths, []int{6, 6}) {
			t.Errorf("%s: Lengths = %v, want [6 6] (max_offset 0)", c.setting, tr.Lengths)
		}
	}
}

// TestLengthHeadLearnsFixedLength: after training on reverse of length 6
// the predicted length is 7 (6 + EOS) on ≥ 95% of held-out sources.
func TestLengthHeadLearnsFixedLength(t *testing.T) {
	m := trainedModel(t)
	t.Logf("trained %d steps in %v", trainSteps, trained.duration.Round(time.Millisecond))
	tr, err := m.Translate(context.Background(), sources(trained.test), opts(""))
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	for _, n := range tr.Lengths {
		if n == reverseLen+1 {
			right++
		}
	}
	frac := float64(right) / float64(len(tr.Lengths))
	t.Logf("predicted length %d on %d of %d held-out sources; length loss %.3f -> %.3f", reverseLen+1, right, len(tr.Lengths), trained.first[1], trained.last[1])
	if frac < 0.95 {
		t.Fatalf("predicted length %d on %.1f%% of held-out sources, want >= 95%%", reverseLen+1, 100*frac)
	}
}

// TestTrainingLearnsReverse: the masked-token loss falls well below the
// uniform log V, and mask-predict with T = 4 matches at least as many
// held-out targets exactly as T = 1 (deterministic: fixed seeds).
func TestTrainingLearnsReverse(t *testing.T) {
	m := trainedModel(t)
	uniform := math.Log(float64(m.vocab))
	t.Logf("masked-token loss %.3f -> %.3f (uniform %.3f)", trained.first[0], trained.last[0], uniform)
	if !(trained.last[0] < 0.6*uniform) {
		t.Fatalf("masked-token loss %.3f after %d steps, want < 0.6 × uniform %.3f", trained.last[0], trainSteps, uniform)
	}
	exact := map[string]float64{}
	for _, s := range []string{"T=1", "T=4"} {
		var tr *harness.Translation
		exact[s], tr = exactMatch(t, m, trained.test, s)
		t.Logf("%s: exact match %.3f, %d passes", s, exact[s], tr.Passes)
	}
	if exact["T=4"] < exact["T=1"] {
		t.Errorf("exact match T=4 %.3f < T=1 %.3f", exact["T=4"], exact["T=1"])
	}
}

// TestIterationsResolveMultimodality: on seq2seq/multimodal (each target
// is the source or its reverse, drawn at random) one pass predicts every
// position independently and mixes the two modes; re-masking the least
// confident tokens lets later passes condition on the mode the rest
// chose (the survey's case for iterative refinement). Measured with these
// fixed seeds (gorgonia): T=1 0.180, T=2 0.383, T=4 0.445, T=10 0.469
// after 300 steps. Over 4 initialisation seeds × 2 contexts × 300 or 600
// steps the gain of T=4 over T=1 ranged from 0.04 to 0.27, never below,
// so the test asks only that T=4 beat T=1.
func TestIterationsResolveMultimodality(t *testing.T) {
	start := time.Now()
	cfg := seq2seq.DefaultConfig()
	cfg.MinLen, cfg.MaxLen, cfg.TestRows = 4, 8, 128
	gen, err := seq2seq.NewGenerator(cfg, "multimodal")
	if err != nil {
		t.Fatal(err)
	}
	m := newTiny(t, gen.Vocab(), nil)
	if _, _, err := train(m, gen, 300); err != nil {
		t.Fatal(err)
	}
	test, err := gen.Fixed(1, seq2seq.Test)
	if err != nil {
		t.Fatal(err)
	}
	exact := map[string]float64{}
	for _, s := range m.DecodeSettings() {
		exact[s.Name], _ = exactMatch(t, m, test, s.Name)
		t.Logf("%s: exact match %.3f", s.Name, exact[s.Name])
	}
	t.Logf("trained and decoded in %v", time.Since(start).Round(time.Millisecond))
	if !(exact["T=4"] > exact["T=1"]) {
		t.Errorf("exact match T=4 %.3f, T=1 %.3f: want T=4 higher", exact["T=4"], exact["T=1"])
	}
}

// TestPropose: γ distributions over the vocabulary per row; with an empty
// prefix (and γ within the predicted length) they are the distributions
// of Translate's single pass, whose argmax tokens Translate outputs; the
// context caps γ; bad prefixes are errors.
func TestPropose(t *testing.T) {
	gen := reverseGen(t)
	m := newTiny(t, gen.Vocab(), nil)
	ctx := context.Background()
	srcs := [][]int{{6, 7, 8, 9, 10, 11}, {12, 13, 6}}
	st, err := m.StartDraft(ctx, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows() != 2 {
		t.Fatalf("Rows = %d", st.Rows())
	}
	d := st.(*draft)
	const gamma = 2
	for _, n := range d.lengths {
		if n < gamma {
			t.Fatalf("predicted lengths %v shorter than gamma %d: the comparison below needs them longer", d.lengths, gamma)
		}
	}
	before := m.decoderPasses
	q, err := m.Propose(ctx, st, [][]int{{}, {}}, gamma)
	if err != nil {
		t.Fatal(err)
	}
	if m.decoderPasses-before != 1 {
		t.Errorf("Propose ran %d decoder passes, want 1", m.decoderPasses-before)
	}
	if len(q) != 2 || len(q[0]) != gamma || len(q[1]) != gamma || len(q[0][0]) != m.vocab {
		t.Fatalf("Propose shape %d×%d×%d, want 2×%d×%d", len(q), len(q[0]), len(q[0][0]), gamma, m.vocab)
	}
	// Translate's single pass: all-[MASK] rows of the predicted lengths.
	masks := [][]int{slices.Repeat([]int{m.vocab}, d.lengths[0]), slices.Repeat([]int{m.vocab}, d.lengths[1])}
	v, T, err := m.decode(ctx, d.enc, []int{0, 1}, masks)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := m.Translate(ctx, srcs, harness.TranslateOptions{End: -1, MaxLen: m.cfg.Context})
	if err != nil {
		t.Fatal(err)
	}
	for i := range q {
		for j := range gamma {
			sum := 0.0
			for k, lp := range q[i][j] {
				sum += math.Exp(float64(lp))
				if w := v.Data[(i*T+j)*m.vocab+k]; math.Abs(float64(lp-w)) > 1e-5 {
					t.Fatalf("row %d position %d token %d: Propose %g, Translate's pass %g", i, j, k, lp, w)
				}
			}
			if math.Abs(sum-1) > 1e-4 {
				t.Errorf("row %d position %d: probabilities sum to %g", i, j, sum)
			}
			if a := decoding.Argmax(q[i][j]); a != tr.Outputs[i][j] {
				t.Errorf("row %d position %d: Propose's argmax %d, Translate output %d", i, j, a, tr.Outputs[i][j])
			}
		}
	}
	// A prefix: γ distributions after it.
	if q, err := m.Propose(ctx, st, [][]int{{8, 7}, {6, 13}}, 3); err != nil || len(q[0]) != 3 || len(q[1]) != 3 {
		t.Errorf("Propose after a prefix of 2: %d distributions, %v; want 3", len(q[0]), err)
	}
	// The context (12) caps γ, and a full context leaves nothing.
	full := slices.Repeat([]int{6}, m.cfg.Context-2)
	if q, err := m.Propose(ctx, st, [][]int{full, full}, 5); err != nil || len(q[0]) != 2 {
		t.Errorf("Propose at 2 positions from the context's end: %v, %v; want 2 distributions", len(q), err)
	}
	full = slices.Repeat([]int{6}, m.cfg.Context)
	if _, err := m.Propose(ctx, st, [][]int{full, full}, 1); err == nil || !strings.Contains(err.Error(), "context") {
		t.Errorf("Propose with a full context: %v, want an error naming the context", err)
	}
	for name, prefixes := range map[string][][]int{
		"ragged":       {{6}, {}},
		"rows":         {{}},
		"out of vocab": {{m.vocab}, {6}},
	} {
		if _, err := m.Propose(ctx, st, prefixes, 2); err == nil {
			t.Errorf("Propose with %s prefixes succeeded", name)
		}
	}
	if _, err := m.Propose(ctx, st, [][]int{{}, {}}, 0); err == nil {
		t.Error("Propose with gamma 0 succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	if errs := (func() *Config { c := DefaultConfig(); return &c })().Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	c := Config{Dim: 10, Heads: 3, Layers: 0, FF: -1, Context: 0, Dropout: 1, MaxOffset: -1,
		LengthLossWeight: math.NaN(), LengthBeam: 0, Iterations: 0, SweepIterations: []int{1, 0, 1}}
	errs := c.Validate()
	want := []string{"heads", "layers", "ff", "context", "dropout", "max_offset", "length_loss_weight", "length_beam", "iterations", "sweep_iterations[1]", "sweep_iterations[2]"}
	if len(errs) != len(want) {
		t.Fatalf("Validate = %v, want %d errors (%v)", errs, len(want), want)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w+":") {
			t.Errorf("error %d = %v, want one about %s", i, errs[i], w)
		}
	}
	c = DefaultConfig()
	c.MaxOffset, c.LengthBeam = 1, 4
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "length classes") {
		t.Errorf("beam 4 over 3 classes: %v", errs)
	}
	c = DefaultConfig()
	c.LengthLossWeight = math.Inf(1)
	if errs := c.Validate(); len(errs) != 1 {
		t.Errorf("length_loss_weight +Inf: %v", errs)
	}
}

func TestDecodeSettings(t *testing.T) {
	gen := reverseGen(t)
	m := newTiny(t, gen.Vocab(), func(c *Config) { c.Iterations = 2; c.MaxOffset = 0 })
	var names []string
	for i, s := range m.DecodeSettings() {
		names = append(names, s.Name)
		if T := []int{1, 2, 4, 10}[min(i, 3)]; len(s.Params) != 1 || s.Params["iterations"] != T {
			t.Errorf("%s: Params %v, want {iterations: %d}", s.Name, s.Params, T)
		}
		if s.Baseline {
			t.Errorf("%s is a baseline", s.Name)
		}
	}
	if !slices.Equal(names, []string{"T=1", "T=2", "T=4", "T=10"}) {
		t.Fatalf("settings %v", names)
	}
	srcs := [][]int{{6, 7, 8, 9, 10, 11}}
	// Through the harness, so the DecodeSweeper is reached as the runner reaches it.
	tr, err := harness.Translate(context.Background(), m, srcs, opts("T=4"))
	if err != nil || tr.Passes != 4 {
		t.Fatalf("T=4: %v passes, %v", tr, err)
	}
	if tr, err := m.Translate(context.Background(), srcs, opts("")); err != nil || tr.Passes != 2 {
		t.Fatalf("empty setting (iterations 2): %v, %v; want 2 passes", tr, err)
	}
	_, err = m.Translate(context.Background(), srcs, opts("T=3"))
	if err == nil || !strings.Contains(err.Error(), `"T=3"`) || !strings.Contains(err.Error(), "T=1, T=2, T=4, T=10") {
		t.Fatalf("unknown setting: %v, want an error naming it and the known ones", err)
	}
	m.cfg.SweepIterations = nil
	if s := m.DecodeSettings(); len(s) != 0 {
		t.Errorf("no sweep: settings %v", s)
	}
}

// TestBeforeSetup: what the harness may call before (or after a failed)
// Setup errs or is nil, never panics.
func TestBeforeSetup(t *testing.T) {
	m := New().(*Model)
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if m.Params() != nil || m.Info().Params != 0 || m.Info().Family != "nar" {
		t.Errorf("Params %v, Info %v", m.Params(), m.Info())
	}
	ctx := context.Background()
	b := seq2seq.PadBatch([]seq2seq.Example{{Source: []int{6}, Target: []int{6}}})
	_, gerr := m.Gradients(ctx, b, 1)
	_, terr := m.Translate(ctx, [][]int{{6}}, opts(""))
	_, serr := m.StartDraft(ctx, [][]int{{6}})
	_, perr := m.Propose(ctx, nil, [][]int{{}}, 1)
	for name, err := range map[string]error{"Gradients": gerr, "Translate": terr, "StartDraft": serr, "Propose": perr} {
		if !errors.Is(err, lm.ErrNotSetup) {
			t.Errorf("%s before Setup: %v, want %v", name, err, lm.ErrNotSetup)
		}
	}
	if err := m.Setup(ctx, harness.Env{Vocab: 10, SourceLen: 4, TargetLen: 5}); err == nil || !strings.Contains(err.Error(), "backend") {
		t.Errorf("Setup without a backend: %v", err)
	}
}

func TestCheckEnv(t *testing.T) {
	m := New().(*Model)
	m.cfg.Context = 8
	if errs := m.CheckEnv(harness.Env{Vocab: 10, SourceLen: 8, TargetLen: 8}); len(errs) != 0 {
		t.Errorf("fitting env: %v", errs)
	}
	errs := m.CheckEnv(harness.Env{Vocab: 10, SeqLen: 64})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "conditional") {
		t.Errorf("language-modelling env: %v, want one error about the missing source", errs)
	}
	errs = m.CheckEnv(harness.Env{Vocab: 10, SourceLen: 9, TargetLen: 10})
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), ">= 9") || !strings.Contains(errs[1].Error(), ">= 10") {
		t.Errorf("long rows: %v, want two context errors", errs)
	}
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: 10, SourceLen: 9, TargetLen: 4}); err == nil {
		t.Error("Setup accepted sources longer than the context")
	}
}

// TestGradients: a batch without a source is refused; the loss is the
// token loss plus length_loss_weight × the length loss; the same seed
// gives the same loss (same masks), another seed other masks; NaN
// parameters give a NaN loss and no error (divergence is a result).
func TestGradients(t *testing.T) {
	gen := reverseGen(t)
	m := newTiny(t, gen.Vocab(), nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 1))
	exs := []seq2seq.Example{gen.Train(rng), gen.Train(rng), {Source: []int{6, 7}, Target: []int{7, 6, 6}}}
	b := seq2seq.PadBatch(exs)
	if _, err := m.Gradients(ctx, harness.Batch{Inputs: b.Inputs, Targets: b.Targets}, 1); err == nil || !strings.Contains(err.Error(), "source") {
		t.Errorf("batch without a source: %v", err)
	}
	l1, err := m.Gradients(ctx, b, 5)
	if err != nil {
		t.Fatal(err)
	}
	parts := m.lastLosses
	if want := parts[0] + m.cfg.LengthLossWeight*parts[1]; math.Abs(l1-want) > 1e-5 {
		t.Errorf("loss %v, token %v + %v × length %v = %v", l1, parts[0], m.cfg.LengthLossWeight, parts[1], want)
	}
	if l2, _ := m.Gradients(ctx, b, 5); l2 != l1 {
		t.Errorf("same seed: loss %v then %v", l1, l2)
	}
	if l3, _ := m.Gradients(ctx, b, 6); l3 == l1 {
		t.Errorf("seeds 5 and 6 gave the same loss %v (same masks?)", l1)
	}
	bad := seq2seq.PadBatch(exs)
	bad.Targets[0][1] = -1
	if _, err := m.Gradients(ctx, bad, 1); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Errorf("target with a hole: %v", err)
	}
	for _, p := range m.Params().List() {
		for i := range p.Data {
			p.Data[i] = float32(math.NaN())
		}
	}
	if loss, err := m.Gradients(ctx, b, 1); err != nil || !math.IsNaN(loss) {
		t.Errorf("NaN parameters: %v, %v; want NaN and no error", loss, err)
	}
}

// TestTranslateEdges: lengths are clipped to MaxLen, length beams stay
// distinct, invalid sources are errors.
func TestTranslateEdges(t *testing.T) {
	gen := reverseGen(t)
	m := newTiny(t, gen.Vocab(), func(c *Config) { c.LengthBeam = 3 })
	ctx := context.Background()
	srcs := [][]int{{6, 7, 8, 9}, {10}}
	tr, err := m.Translate(ctx, srcs, harness.TranslateOptions{End: -1, MaxLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range tr.Lengths {
		if n < 1 || n > 2 || len(tr.Outputs[i]) != n {
			t.Errorf("row %d: length %d, output %v; want 1..2 tokens, all of them (no End)", i, n, tr.Outputs[i])
		}
	}
	if got := tr.Stats["length_candidates"]; got != 4 {
		t.Errorf("MaxLen 2 leaves 2 distinct lengths per source: %v candidates, want 4", got)
	}
	fixed, err := m.Translate(ctx, srcs, harness.TranslateOptions{End: 2, Length: 5})
	if err != nil || len(fixed.Outputs[0]) != 5 || len(fixed.Outputs[1]) != 5 || fixed.Stats["length_candidates"] != 2 {
		t.Errorf("Length 5: %v, %v; want two outputs of 5 tokens, one candidate each", fixed, err)
	}
	if _, err := m.Translate(ctx, srcs, harness.TranslateOptions{End: 2, Length: 1000}); err == nil {
		t.Error("a fixed length beyond the context was accepted")
	}
	for name, s := range map[string][][]int{"empty row": {{6}, {}}, "pad token": {{6, 0}}, "out of vocab": {{gen.Vocab()}}, "too long": {slices.Repeat([]int{6}, 13)}} {
		if _, err := m.Translate(ctx, s, opts("")); err == nil {
			t.Errorf("%s: Translate succeeded", name)
		}
	}
}

func TestEstimateMemory(t *testing.T) {
	gen := reverseGen(t)
	m := newTiny(t, gen.Vocab(), func(c *Config) { c.Layers = 2; c.MaxOffset = 3 })
	env := harness.Env{Vocab: gen.Vocab(), SourceLen: reverseLen, TargetLen: reverseLen + 1, Batch: 32}
	est := m.EstimateMemory(env)
	if want := 4 * int64(m.Params().Count()); est.Params != want {
		t.Errorf("estimated parameters %d bytes, Setup allocated %d", est.Params, want)
	}
	if est.Training <= est.Params || est.Inference <= est.Params {
		t.Errorf("estimate %+v", est)
	}
	huge := New().(*Model)
	huge.cfg.Dim = 1 << 20
	if err := harness.CheckMemory(huge, env); err == nil {
		t.Error("CheckMemory accepted a model of width 2^20")
	}
}

func TestRegistered(t *testing.T) {
	m, err := harness.NewModel("nar")
	if err != nil {
		t.Fatal(err)
	}
	if harness.SourceMode(m) != "conditioner" {
		t.Errorf("SourceMode = %q", harness.SourceMode(m))
	}
	if _, ok := m.(harness.Scorer); ok {
		t.Error("nar is a Scorer; a CMLM defines no autoregressive likelihood")
	}
}

// TestPaddingInvariance: a row's length distribution and decoder
// distributions do not depend on the other rows of its batch, whose
// longer sources and targets pad it (the source and target key padding
// masks reach every attention).
func TestPaddingInvariance(t *testing.T) {
	gen := reverseGen(t)
	m := newTiny(t, gen.Vocab(), nil)
	ctx := context.Background()
	short := []int{6, 9, 7}
	alone, err := m.encode(ctx, [][]int{short})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := m.encode(ctx, [][]int{{13, 12, 11, 10, 9, 8}, short})
	if err != nil {
		t.Fatal(err)
	}
	for k, lp := range alone.lengthLogp[0] {
		if d := math.Abs(float64(lp - batch.lengthLogp[1][k])); d > 1e-5 {
			t.Fatalf("length class %d: log p %g alone, %g padded in a batch", k, lp, batch.lengthLogp[1][k])
		}
	}
	row := []int{m.vocab, 8, m.vocab, m.vocab}
	va, Ta, err := m.decode(ctx, alone, []int{0}, [][]int{row})
	if err != nil {
		t.Fatal(err)
	}
	vb, Tb, err := m.decode(ctx, batch, []int{0, 1}, [][]int{slices.Repeat([]int{m.vocab}, 9), row})
	if err != nil {
		t.Fatal(err)
	}
	V := m.vocab
	for j := range row {
		for k := range V {
			a, b := va.Data[j*V+k], vb.Data[(Tb+j)*V+k]
			if d := math.Abs(float64(a - b)); d > 1e-5 {
				t.Fatalf("position %d token %d: log p %g alone (T=%d), %g padded to T=%d", j, k, a, Ta, b, Tb)
			}
		}
	}
}

// TestDecodeConfig: the experiment's YAML section decodes strictly into
// Config, a list replacing the default sweep, and problems name the field.
func TestDecodeConfig(t *testing.T) {
	m := New().(*Model)
	yaml := "dim: 16\nheads: 2\nlength_beam: 3\nearly_stop: true\nsweep_iterations: [1, 3]\nlength_loss_weight: 0.5\n"
	if err := harness.DecodeConfig("x.yaml", []byte(yaml), m.Config()); err != nil {
		t.Fatal(err)
	}
	c := m.cfg
	if c.Dim != 16 || c.LengthBeam != 3 || !c.EarlyStop || !slices.Equal(c.SweepIterations, []int{1, 3}) || c.LengthLossWeight != 0.5 || c.Context != 128 {
		t.Fatalf("decoded %+v", c)
	}
	err := harness.DecodeConfig("x.yaml", []byte("sweep_iterations: [2, 2]\nbeam: 1\n"), New().Config())
	if err == nil || !strings.Contains(err.Error(), "beam") {
		t.Fatalf("unknown field: %v", err)
	}
	err = harness.DecodeConfig("x.yaml", []byte("sweep_iterations: [2, 2]\n"), New().Config())
	if err == nil || !strings.Contains(err.Error(), "sweep_iterations[1]") {
		t.Fatalf("repeated sweep entry: %v", err)
	}
	t.Log(err)
}
