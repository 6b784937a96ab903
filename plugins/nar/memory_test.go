package nar

import (
	"math/rand/v2"
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/lm"
	"arbench/plugins/internal/plugintest"
)

// memoryBatch returns rows sources of env.SourceLen content tokens and
// targets of env.TargetLen tokens.
func memoryBatch(env harness.Env, rows int) harness.Batch {
	rng := rand.New(rand.NewPCG(1, 1))
	var b harness.Batch
	for range rows {
		src, tg := make([]int, env.SourceLen), make([]int, env.TargetLen)
		for j := range src {
			src[j] = 1 + rng.IntN(env.Vocab-1)
		}
		for j := range tg {
			tg[j] = rng.IntN(env.Vocab)
		}
		b.Source, b.Targets = append(b.Source, src), append(b.Targets, tg)
	}
	return b
}

// TestMemoryMeasured: the estimate is within a factor of 2 of the live
// heap measured after a training step with Adam and a translation of an
// evaluation batch (what the runner holds), and after a translation
// alone, on shapes where different values dominate: the feed-forward
// blocks (small), long rows (the padded attentions' weights), the logits
// (a vocabulary of 1024) and three candidate lengths per source (the
// decoder runs three times the rows).
func TestMemoryMeasured(t *testing.T) {
	for _, c := range []struct {
		name                       string
		dim, heads, layers, beam   int
		length                     bool
		vocab, src, tgt, batch, eb int
	}{
		{"small", 32, 2, 1, 1, true, 16, 16, 16, 16, 16},
		{"long rows", 32, 4, 2, 1, true, 16, 128, 128, 4, 4},
		{"logits", 32, 2, 1, 1, true, 1024, 16, 16, 16, 16},
		{"length beam", 32, 2, 1, 3, false, 16, 32, 32, 16, 16},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := harness.Env{Backend: plugintest.Backend(t), Vocab: c.vocab, SourceLen: c.src, TargetLen: c.tgt, Batch: c.batch, EvalBatch: c.eb, Seed: 1}
			opt := harness.TranslateOptions{Start: 1, End: -1, MaxLen: c.tgt}
			if c.length {
				opt.Length = c.tgt
			}
			checkMemory(t, env, opt, func() *Model {
				m := New().(*Model)
				m.cfg.Dim, m.cfg.Heads, m.cfg.Layers, m.cfg.LengthBeam = c.dim, c.heads, c.layers, c.beam
				m.cfg.Context, m.cfg.MaxOffset = max(c.src, c.tgt), 4
				return m
			})
		})
	}
}

// checkMemory is TestMemoryMeasured's check of one shape.
func checkMemory(t *testing.T, env harness.Env, opt harness.TranslateOptions, newModel func() *Model) {
	plugintest.SkipUnpooled(t)
	sources := memoryBatch(env, lm.EvalRows(env)).Source
	got := plugintest.MeasureWith(t, func() harness.Model { return newModel() }, env, plugintest.MemoryRuns{
		Step: func(m harness.Model) any { return plugintest.AdamStep(t, m, memoryBatch(env, env.Batch)) },
		Evaluate: func(m harness.Model) any {
			out, err := m.(*Model).Translate(t.Context(), sources, opt)
			if err != nil {
				t.Fatal(err)
			}
			return out
		},
	})
	plugintest.CheckEstimate(t, newModel().EstimateMemory(env), got)
}
