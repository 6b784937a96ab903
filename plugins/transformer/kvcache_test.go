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

// refeedOnly hides the model's Stepper, so harness.Generate takes its
// re-feeding path (NextLogProbs over the whole prefix at every step).
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

// TestKVCacheGenerationMatchesRefeeding: greedy generation with the cache
// produces exactly the tokens of the re-feeding loop, both the model's own
// (kv_cache: false) and the harness's, and the same log-probabilities
// (within kvTol).
func TestKVCacheGenerationMatchesRefeeding(t *testing.T) {
	ctx := context.Background()
	const ctxLen, maxNew = 64, 56
	prompts := [][]int{{1, 2, 3, 4, 5, 6, 7, 8}, {9, 8, 7, 6, 5, 4, 3, 2}, {40, 41, 42, 43, 44, 45, 46, 47}}
	opt := harness.GenOptions{MaxNew: maxNew, StopToken: -1, Seed: 3}

	kv := newSmall(t, ctxLen, true)
	got, err := harness.Generate(ctx, kv, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	loop := newSmall(t, ctxLen, false)
	want, err := harness.Generate(ctx, loop, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	viaHarness, err := harness.Generate(ctx, refeedOnly{newSmall(t, ctxLen, true)}, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if len(got[i]) != maxNew {
			t.Fatalf("row %d: %d tokens, want %d", i, len(got[i]), maxNew)
		}
		if !slices.Equal(got[i], want[i]) || !slices.Equal(got[i], viaHarness[i]) {
			t.Fatalf("row %d:\nkv cache  %v\nre-feed   %v\nharness   %v", i, got[i], want[i], viaHarness[i])
		}
	}
	// Sampling (temperature 1) draws from identical distributions too.
	opt.Temperature = 1
	a, err := harness.Generate(ctx, kv, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := harness.Generate(ctx, loop, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("sampled row %d:\nkv cache %v\nre-feed  %v", i, a[i], b[i])
		}
	}

	// The step distributions themselves agree.
	s1, p1, err := kv.Start(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	s2, p2, err := loop.Start(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 20 {
		for r := range p1 {
			for v := range p1[r] {
				if d := math.Abs(float64(p1[r][v] - p2[r][v])); d > kvTol {
					t.Fatalf("step %d row %d token %d: cached %v, re-fed %v", step, r, v, p1[r][v], p2[r][v])
				}
			}
		}
		next := []int{step % 50, (step * 3) % 50, 49}
		if p1, err = kv.Step(ctx, s1, next); err != nil {
			t.Fatal(err)
		}
		if p2, err = loop.Step(ctx, s2, next); err != nil {
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
