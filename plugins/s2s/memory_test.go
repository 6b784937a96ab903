package s2s_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"arbench/harness"
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
	evalBatch := memoryBatch(env, lm.EvalRows(env))
	got := plugintest.MeasureWith(t, newModel, env, plugintest.MemoryRuns{
		Step: func(m harness.Model) any { return plugintest.AdamStep(t, m, memoryBatch(env, env.Batch)) },
		Evaluate: func(m harness.Model) any {
			lp, err := m.(harness.Scorer).LogProbs(t.Context(), evalBatch)
			if err != nil {
				t.Fatal(err)
			}
			return lp
		},
	})
	plugintest.CheckEstimate(t, newModel().(harness.MemoryEstimator).EstimateMemory(env), got)
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
