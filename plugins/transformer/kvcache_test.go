package transformer_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/transformer"
)

// newSmall returns a set-up transformer with a context of ctxLen positions.
func newSmall(t *testing.T, ctxLen int, kv bool) *transformer.Model {
	t.Helper()
	m := transformer.New().(*transformer.Model)
	cfg := m.Config().(*transformer.Config)
	cfg.Dim, cfg.Heads, cfg.Layers, cfg.Context, cfg.KVCache = 32, 4, 2, ctxLen, kv
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: 50, SeqLen: ctxLen, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	return m
}

// refeedOnly hides the model's Stepper, so harness.Decoder can only
// re-feed (NextLogProbs over the whole prefix at every step).
type refeedOnly struct{ m *transformer.Model }

func (r refeedOnly) Config() harness.Config { return r.m.Config() }
func (r refeedOnly) Setup(ctx context.Context, env harness.Env) error {
	return r.m.Setup(ctx, env)
}
func (r refeedOnly) Params() *nn.ParamSet    { return r.m.Params() }
func (r refeedOnly) Info() harness.ModelInfo { return r.m.Info() }
func (r refeedOnly) MaxContext() int         { return r.m.MaxContext() }
func (r refeedOnly) NextLogProbs(ctx context.Context, in [][]int) ([][][]float32, error) {
	return r.m.NextLogProbs(ctx, in)
}

// TestKVCacheStepsEqualTeacherForcing: stepping with the cache, across
// capacity growth (16 → 32 → 40 slots), gives the distributions of the
// full forward pass (bit for bit in the default build, see kvTol).
func TestKVCacheStepsEqualTeacherForcing(t *testing.T) {
	m := newSmall(t, 40, true)
	rows := [][]int{make([]int, 40), make([]int, 40)}
	for i := range rows[0] {
		rows[0][i] = (i*7 + 3) % 50
		rows[1][i] = (i*i + 1) % 50
	}
	plugintest.CheckStepper(t, m, rows, 3, kvTol)
}

// TestKVCacheGenerationMatchesRefeeding: greedy and sampled generation
// with the cache produce exactly the tokens of harness.Decoder's
// re-feeding loop, which kv_cache: false selects, and every step's
// log-probabilities agree within kvTol.
func TestKVCacheGenerationMatchesRefeeding(t *testing.T) {
	ctx := context.Background()
	const ctxLen, maxNew = 64, 56
	prompts := [][]int{{1, 2, 3, 4, 5, 6, 7, 8}, {9, 8, 7, 6, 5, 4, 3, 2}, {40, 41, 42, 43, 44, 45, 46, 47}}
	kv, loop, hidden := newSmall(t, ctxLen, true), newSmall(t, ctxLen, false), refeedOnly{newSmall(t, ctxLen, true)}
	for name, m := range map[string]harness.Model{"kv_cache: true": kv, "kv_cache: false": loop, "no Stepper": hidden} {
		d, err := harness.NewDecoder(m, len(prompts[0])+maxNew-1, harness.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := harness.DecodeRefeed
		if m == harness.Model(kv) {
			want = harness.DecodeCached
		}
		if d.Mode() != want {
			t.Errorf("%s: decodes by %v, want %v", name, d.Mode(), want)
		}
	}
	for _, temp := range []float64{0, 1} {
		opt := harness.GenOptions{MaxNew: maxNew, Temperature: temp, StopToken: -1, Seed: 3}
		got, err := harness.Generate(ctx, kv, prompts, opt)
		if err != nil {
			t.Fatal(err)
		}
		for name, m := range map[string]harness.Model{"kv_cache: false": loop, "no Stepper": hidden} {
			want, err := harness.Generate(ctx, m, prompts, opt)
			if err != nil {
				t.Fatal(err)
			}
			for i := range prompts {
				if len(got[i]) != maxNew {
					t.Fatalf("row %d: %d tokens, want %d", i, len(got[i]), maxNew)
				}
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("temperature %v row %d:\nkv cache  %v\n%s %v", temp, i, got[i], name, want[i])
				}
			}
		}
	}

	// The step distributions themselves agree, across the re-feeding
	// loop's padded widths (16, 32, 48).
	cached, err := harness.NewDecoder(kv, 8+40, harness.DecodeOptions{Mode: harness.DecodeCached})
	if err != nil {
		t.Fatal(err)
	}
	refed, err := harness.NewDecoder(kv, 8+40, harness.DecodeOptions{Mode: harness.DecodeRefeed})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := cached.Start(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := refed.Start(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 40 {
		for r := range p1 {
			for v := range p1[r] {
				if d := math.Abs(float64(p1[r][v] - p2[r][v])); d > kvTol {
					t.Fatalf("step %d row %d token %d: cached %v, re-fed %v", step, r, v, p1[r][v], p2[r][v])
				}
			}
		}
		next := []int{step % 50, (step * 3) % 50, 49}
		if p1, err = cached.Step(ctx, next); err != nil {
			t.Fatal(err)
		}
		if p2, err = refed.Step(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKVCacheStepErrors(t *testing.T) {
	ctx := context.Background()
	m := newSmall(t, 16, true)
	s, _, err := m.Start(ctx, [][]int{{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Step(ctx, s, []int{1, 2}); err == nil {
		t.Fatal("Step accepted 2 tokens for 1 row")
	}
	if _, err := m.Step(ctx, s, []int{50}); err == nil {
		t.Fatal("Step accepted a token outside the vocabulary")
	}
	for s.Len() < 16 {
		if _, err := m.Step(ctx, s, []int{1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Step(ctx, s, []int{1}); err == nil {
		t.Fatal("Step past the context succeeded")
	}
	if _, _, err := m.Start(ctx, [][]int{make([]int, 17)}); err == nil {
		t.Fatal("Start accepted a prompt longer than the context")
	}
	other := newSmall(t, 16, true)
	if _, err := other.Step(ctx, s, []int{1}); err == nil {
		t.Fatal("Step accepted another model's state")
	}
}

// TestNextLogProbsAtMatchesNextLogProbs: the one-position pass the
// re-feeding loop uses gives the full pass's distributions at that
// position (within kvTol), padded or not.
func TestNextLogProbsAtMatchesNextLogProbs(t *testing.T) {
	ctx := context.Background()
	m := newSmall(t, 32, true)
	rows := [][]int{{3, 1, 4, 1, 5, 9, 2, 6, 0, 0}, {2, 7, 1, 8, 2, 8, 1, 8, 0, 0}}
	full, err := m.NextLogProbs(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{0, 7, 9} {
		got, err := m.NextLogProbsAt(ctx, rows, at)
		if err != nil {
			t.Fatal(err)
		}
		for r := range rows {
			for v := range got[r] {
				if d := math.Abs(float64(got[r][v] - full[r][at][v])); d > kvTol {
					t.Fatalf("at %d row %d token %d: %v, full pass %v", at, r, v, got[r][v], full[r][at][v])
				}
			}
		}
	}
	for _, at := range []int{-1, 10} {
		if _, err := m.NextLogProbsAt(ctx, rows, at); err == nil {
			t.Errorf("position %d of 10-token rows accepted", at)
		}
	}
}
