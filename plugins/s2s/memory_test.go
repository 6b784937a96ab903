package s2s_test

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/s2s"
)

// memoryBatch is a batch of rows full-length sources and decoder rows of env.
func memoryBatch(env harness.Env, rows int) harness.Batch {
	rng := rand.New(rand.NewPCG(1, 1))
	b := harness.Batch{}
	for range rows {
		src, in, tg := make([]int, env.SourceLen), make([]int, env.TargetLen), make([]int, env.TargetLen)
		for j := range src {
			src[j] = 1 + rng.IntN(env.Vocab-1)
		}
		for j := range in {
			in[j], tg[j] = rng.IntN(env.Vocab), rng.IntN(env.Vocab)
		}
		b.Source, b.Inputs, b.Targets = append(b.Source, src), append(b.Inputs, in), append(b.Targets, tg)
	}
	return b
}

// TestMemoryEstimate: the parameters are estimated exactly, training and
// inference within a factor of 2 of the live heap measured after a
// training step with Adam and an evaluation batch (what the runner holds),
// and after an evaluation batch alone, on shapes where different values
// dominate the pooled buffers' peak: the feed-forward blocks (small, with
// and without dropout), long sources (the padded cross-attention's
// weights, h·S per decoder position), long decoder rows (the causal
// self-attention's) and the logits (a vocabulary of 1024).
func TestMemoryEstimate(t *testing.T) {
	for _, c := range []struct {
		name                       string
		dim, heads, enc, dec       int
		dropout                    float64
		vocab, src, tgt, batch, eb int
	}{
		{"small", 32, 4, 2, 1, 0, 32, 16, 17, 16, 16},
		{"small dropout", 32, 4, 2, 1, 0.1, 32, 16, 17, 16, 16},
		{"long sources", 32, 4, 1, 1, 0, 16, 256, 9, 4, 4},
		{"long targets", 32, 4, 1, 2, 0, 16, 9, 256, 4, 4},
		{"logits", 32, 2, 1, 1, 0, 1024, 16, 33, 16, 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := harness.Env{Backend: plugintest.Backend(t), Vocab: c.vocab, SourceLen: c.src, TargetLen: c.tgt, Batch: c.batch, EvalBatch: c.eb, Seed: 1}
			checkMemoryEstimate(t, env, func() harness.Model {
				m := s2s.New()
				cfg := m.Config().(*s2s.Config)
				cfg.Dim, cfg.Heads, cfg.Layers, cfg.DecLayers, cfg.Context, cfg.Dropout = c.dim, c.heads, c.enc, c.dec, max(c.src, c.tgt), c.dropout
				return m
			})
		})
	}
}

// checkMemoryEstimate is TestMemoryEstimate's check of one shape.
func checkMemoryEstimate(t *testing.T, env harness.Env, newModel func() harness.Model) {
	plugintest.SkipUnpooled(t)
	est := newModel().(harness.MemoryEstimator).EstimateMemory(env)
	evalBatch := memoryBatch(env, lm.EvalRows(env))
	measure := func(train bool) int64 {
		base := plugintest.LiveHeap()
		m := newModel()
		if err := m.Setup(t.Context(), env); err != nil {
			t.Fatal(err)
		}
		var keep []any
		if train {
			opt := nn.NewAdam(m.Params(), nn.DefaultAdamConfig())
			b := memoryBatch(env, env.Batch)
			if _, err := m.(harness.Trainer).Gradients(t.Context(), b, 1); err != nil {
				t.Fatal(err)
			}
			opt.Step()
			keep = append(keep, opt, b)
		}
		lp, err := m.(harness.Scorer).LogProbs(t.Context(), evalBatch)
		if err != nil {
			t.Fatal(err)
		}
		n := plugintest.LiveHeap() - base
		runtime.KeepAlive(keep)
		runtime.KeepAlive(lp)
		if want := 4 * int64(m.Params().Count()); est.Params != want {
			t.Errorf("estimated parameters %d bytes, Setup allocated %d", est.Params, want)
		}
		m.(*s2s.Model).Close()
		return n
	}
	for _, c := range []struct {
		what          string
		estimate, got int64
	}{{"training", est.Params + est.Training, measure(true)}, {"inference", est.Params + est.Inference, measure(false)}} {
		ratio := float64(c.estimate) / float64(c.got)
		t.Logf("%s: estimated %d bytes, measured %d (ratio %.2f)", c.what, c.estimate, c.got, ratio)
		if !(ratio >= 0.5 && ratio <= 2) {
			t.Errorf("%s: estimated %d bytes, measured %d: ratio %.2f outside [0.5, 2]", c.what, c.estimate, c.got, ratio)
		}
	}
}

// TestRefusesHuge: an absurd configuration is refused by its estimate
// without allocating.
func TestRefusesHuge(t *testing.T) {
	m := s2s.New()
	c := m.Config().(*s2s.Config)
	c.Dim, c.Heads = 1<<20, 1
	env := harness.Env{Vocab: 256, SourceLen: 64, TargetLen: 64, Batch: 32}
	err := harness.CheckMemory(m, env)
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("CheckMemory of a huge configuration = %v, want a refusal", err)
	}
}
