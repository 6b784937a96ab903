package hybrid

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/s2s"
	"arbench/tasks/seq2seq"
)

// reverseGen is seq2seq/reverse with sources of 3 to 8 symbols, so that
// the rows of a batch end at different rounds.
func reverseGen(t testing.TB) *seq2seq.Generator {
	t.Helper()
	cfg := seq2seq.DefaultConfig()
	cfg.MinLen, cfg.MaxLen, cfg.TestRows = 3, 8, 64
	g, err := seq2seq.NewGenerator(cfg, "reverse")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// tinyConfig is a hybrid of width 32 (the verifier) with a tiny drafter
// of the family given.
func tinyConfig(drafter string) Config {
	c := DefaultConfig()
	c.Verifier = s2s.Config{Dim: 32, Heads: 2, Layers: 1, FF: 64, Context: 16}
	c.Drafter = drafter
	c.Draft.NAR.Dim, c.Draft.NAR.Heads, c.Draft.NAR.Layers, c.Draft.NAR.FF = 32, 2, 1, 64
	c.Draft.NAR.Context, c.Draft.NAR.MaxOffset = 16, 2
	c.Draft.S2S = s2s.Config{Dim: 16, Heads: 2, Layers: 1, FF: 32, Context: 16}
	c.SweepGamma = []int{1, 3, 6}
	return c
}

// setUp returns a set-up hybrid of cfg for gen's task, closed at the end
// of the test.
func setUp(t testing.TB, cfg Config, gen *seq2seq.Generator, seed uint64) *Model {
	t.Helper()
	m := New().(*Model)
	m.cfg = cfg
	src, tgt := gen.MaxLens()
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: gen.Vocab(), SourceLen: src, TargetLen: tgt + 1, Batch: 32, Seed: seed}
	if err := m.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// trainedHybrids holds one hybrid per drafter family, trained once on
// reverse for the tests that share them.
var trainedHybrids struct {
	sync.Mutex
	m map[string]*Model
}

const trainSteps = 200

// trainedHybrid trains (once) a tiny hybrid with drafter on reverse:
// Adam at 3e-3 on batches of 32, clipping at 1, through the hybrid's own
// Gradients and combined parameters.
func trainedHybrid(t *testing.T, drafter string) *Model {
	t.Helper()
	trainedHybrids.Lock()
	defer trainedHybrids.Unlock()
	if m := trainedHybrids.m[drafter]; m != nil {
		return m
	}
	start := time.Now()
	gen := reverseGen(t)
	m := New().(*Model)
	m.cfg = tinyConfig(drafter)
	src, tgt := gen.MaxLens()
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: gen.Vocab(), SourceLen: src, TargetLen: tgt + 1, Batch: 32, Seed: 3}
	if err := m.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	cfg := nn.DefaultAdamConfig()
	cfg.LR = 3e-3
	opt := nn.NewAdam(m.Params(), cfg)
	rng := rand.New(rand.NewPCG(11, 12))
	var first, last float64
	for step := range trainSteps {
		exs := make([]seq2seq.Example, 32)
		for i := range exs {
			exs[i] = gen.Train(rng)
		}
		loss, err := m.Gradients(context.Background(), seq2seq.PadBatch(exs), uint64(step))
		if err != nil {
			t.Fatal(err)
		}
		nn.ClipGradNorm(m.Params(), 1)
		opt.Step()
		if step == 0 {
			first = loss
		}
		last = loss
	}
	t.Logf("%s drafter: %d steps in %v, summed loss %.3f → %.3f", drafter, trainSteps, time.Since(start).Round(time.Millisecond), first, last)
	if !(last < 0.8*first) {
		t.Errorf("%s drafter: summed loss %.3f → %.3f after %d steps: the hybrid does not train", drafter, first, last, trainSteps)
	}
	if trainedHybrids.m == nil {
		trainedHybrids.m = map[string]*Model{}
	}
	trainedHybrids.m[drafter] = m
	return m
}

// heldOut returns n test sources of gen.
func heldOut(t *testing.T, gen *seq2seq.Generator, n int) [][]int {
	t.Helper()
	exs, err := gen.Fixed(1, seq2seq.Test)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]int
	for _, e := range exs[:n] {
		out = append(out, e.Source)
	}
	return out
}

// TestTrainedGreedyMatchesVerifier: a hybrid trained on reverse decodes
// greedily, at every γ and with either drafter, exactly what
// harness.Translate decodes with its verifier alone, on 50 held-out
// sources (one batch, and batches of 7).
func TestTrainedGreedyMatchesVerifier(t *testing.T) {
	gen := reverseGen(t)
	sources := heldOut(t, gen, 50)
	_, tgt := gen.MaxLens()
	for _, drafter := range []string{DrafterNAR, DrafterS2S} {
		t.Run(drafter, func(t *testing.T) {
			m := trainedHybrid(t, drafter)
			opt := harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, MaxLen: tgt + 1}
			want, err := harness.Translate(t.Context(), m.verifier, sources, opt)
			if err != nil {
				t.Fatal(err)
			}
			exact := 0
			for i, o := range want.Outputs {
				if slices.Equal(o, reversed(sources[i])) {
					exact++
				}
			}
			t.Logf("the verifier reverses %d of %d held-out sources", exact, len(sources))
			for _, setting := range []string{"gamma=0", "gamma=1", "gamma=3", "gamma=6"} {
				opt.Setting = setting
				got, err := harness.Translate(t.Context(), m, sources, opt)
				if err != nil {
					t.Fatal(err)
				}
				for i := range sources {
					if !slices.Equal(got.Outputs[i], want.Outputs[i]) {
						t.Errorf("%s: source %v: hybrid %v, verifier alone %v", setting, sources[i], got.Outputs[i], want.Outputs[i])
					}
				}
				s := got.Stats
				t.Logf("%s: %d verifier passes (alone %d), %v of %v drafted tokens accepted (α̂ = %.2f), %v drafter passes",
					setting, got.Passes, want.Passes, s["accepted"], s["drafted"], s["tested_accepted"]/max(s["tested"], 1), s["draft_calls"])
				if setting == "gamma=0" && got.Passes != want.Passes {
					t.Errorf("gamma=0: %d passes, the verifier alone %d", got.Passes, want.Passes)
				}
				if setting != "gamma=0" && s["tested_accepted"] == 0 {
					t.Errorf("%s: the trained drafter never had a token accepted", setting)
				}
				// Smaller batches, which end at other rounds, and batch 1
				// (every 5th source), where no other row limits a round.
				for _, size := range []int{7, 1} {
					passes, alone := 0, 0
					for lo := 0; lo < len(sources); lo += size {
						if size == 1 && lo%5 != 0 {
							continue
						}
						part := sources[lo:min(lo+size, len(sources))]
						got, err := m.Translate(t.Context(), part, opt)
						if err != nil {
							t.Fatal(err)
						}
						passes += got.Passes
						for i := range part {
							if !slices.Equal(got.Outputs[i], want.Outputs[lo+i]) {
								t.Errorf("%s, batch of %d at %d: source %v: hybrid %v, verifier alone %v", setting, size, lo, part[i], got.Outputs[i], want.Outputs[lo+i])
							}
							alone += emitted(want.Outputs[lo+i], opt.MaxLen)
						}
					}
					if size == 1 {
						t.Logf("%s at batch 1: %d verifier passes, the verifier alone %d", setting, passes, alone)
					}
				}
			}
			// Outputs of a fixed length, past the end token (bench's timing).
			fixed := harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, Length: tgt + 3}
			want, err = harness.Translate(t.Context(), m.verifier, sources[:10], fixed)
			if err != nil {
				t.Fatal(err)
			}
			fixed.Setting = "gamma=3"
			got, err := harness.Translate(t.Context(), m, sources[:10], fixed)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want.Outputs {
				if len(got.Outputs[i]) != fixed.Length || !slices.Equal(got.Outputs[i], want.Outputs[i]) {
					t.Errorf("Length %d: source %v: hybrid %v, verifier alone %v", fixed.Length, sources[i], got.Outputs[i], want.Outputs[i])
				}
			}
		})
	}
}

func reversed(s []int) []int {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// TestParamsShareInnerModels: the combined set names every inner
// parameter under its model's prefix, shares its values and gradients,
// and round-trips through a safetensors file into a fresh hybrid that then
// decodes alike.
func TestParamsShareInnerModels(t *testing.T) {
	gen := reverseGen(t)
	m := trainedHybrid(t, DrafterNAR)
	ps := m.Params()
	if got, want := ps.Count(), m.verifier.Params().Count()+m.drafter.Params().Count(); got != want || m.Info().Params != want {
		t.Fatalf("%d parameters (Info %d), the inner models hold %d", got, m.Info().Params, want)
	}
	for prefix, inner := range map[string]*nn.ParamSet{"verifier.": m.verifier.Params(), "drafter.": m.drafter.Params()} {
		for _, p := range inner.List() {
			q := ps.Get(prefix + p.Name)
			if q == nil {
				t.Fatalf("%s%s missing", prefix, p.Name)
			}
			if &q.Data[0] != &p.Data[0] || &q.Grad[0] != &p.Grad[0] {
				t.Fatalf("%s%s does not share the inner parameter's values and gradient", prefix, p.Name)
			}
		}
	}
	for _, p := range ps.List() {
		if !strings.HasPrefix(p.Name, "verifier.") && !strings.HasPrefix(p.Name, "drafter.") {
			t.Errorf("parameter %s has neither prefix", p.Name)
		}
	}
	path := filepath.Join(t.TempDir(), "hybrid.safetensors")
	if err := nn.SaveSafetensors(path, ps, nil); err != nil {
		t.Fatal(err)
	}
	fresh := setUp(t, m.cfg, gen, 99)
	if err := nn.LoadSafetensors(path, fresh.Params()); err != nil {
		t.Fatal(err)
	}
	sources := heldOut(t, gen, 10)
	_, tgt := gen.MaxLens()
	opt := harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, MaxLen: tgt + 1, Setting: "gamma=3"}
	a, err := m.Translate(t.Context(), sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fresh.Translate(t.Context(), sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(a.Outputs, b.Outputs, slices.Equal) || a.Stats["accepted"] != b.Stats["accepted"] {
		t.Errorf("reloaded hybrid decodes %v (%v accepted), the original %v (%v)", b.Outputs, b.Stats["accepted"], a.Outputs, a.Stats["accepted"])
	}
}

// TestTrainedRowsVsSync: on the trained hybrids and 50 held-out sources
// in one batch, per-row decoding (the default) emits the verifier's
// greedy outputs in no more verifier passes than the synchronous scheme
// (the same models behind a Verifier without RewindRows).
func TestTrainedRowsVsSync(t *testing.T) {
	gen := reverseGen(t)
	sources := heldOut(t, gen, 50)
	_, tgt := gen.MaxLens()
	for _, drafter := range []string{DrafterNAR, DrafterS2S} {
		t.Run(drafter, func(t *testing.T) {
			m := trainedHybrid(t, drafter)
			opt := harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, MaxLen: tgt + 1}
			dmSync := m.draft
			if a, ok := m.draft.(arDraft); ok {
				dmSync = arDraft{syncOnly{a.v.(verifierModel)}}
			}
			for _, gamma := range []int{1, 3, 6} {
				dp := decodeParams{gamma: gamma, sampling: m.cfg.sampling()}
				rows, err := speculate(t.Context(), m.verifier, m.draft, sources, opt, dp)
				if err != nil {
					t.Fatal(err)
				}
				sync, err := speculate(t.Context(), syncOnly{m.verifier}, dmSync, sources, opt, dp)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(rows.Outputs, sync.Outputs, slices.Equal) {
					t.Errorf("gamma=%d: per-row and synchronous outputs differ", gamma)
				}
				rs, ss := rows.Stats, sync.Stats
				t.Logf("gamma=%d: verifier passes %d per row, %d synchronous; drafter passes %v vs %v; α̂ %.2f vs %.2f",
					gamma, rows.Passes, sync.Passes, rs["draft_calls"], ss["draft_calls"],
					rs["tested_accepted"]/max(rs["tested"], 1), ss["tested_accepted"]/max(ss["tested"], 1))
				if rows.Passes > sync.Passes {
					t.Errorf("gamma=%d: %d verifier passes per row, more than the synchronous %d", gamma, rows.Passes, sync.Passes)
				}
			}
		})
	}
}
