package s2s_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/s2s"
	"arbench/tasks/seq2seq"
)

// TestLearnsReverse: a small model trained with Adam on seq2seq/reverse
// brings the loss far below the uniform loss and translates held-out
// sources exactly through harness.Translate's greedy SourceStepper loop.
func TestLearnsReverse(t *testing.T) {
	cfg := seq2seq.DefaultConfig()
	cfg.Symbols, cfg.MinLen, cfg.MaxLen, cfg.ValidRows, cfg.TestRows = 6, 1, 6, 32, 128
	gen, err := seq2seq.NewGenerator(cfg, "reverse")
	if err != nil {
		t.Fatal(err)
	}
	srcLen, tgtLen := gen.MaxLens()
	m := s2s.New()
	mc := m.Config().(*s2s.Config)
	mc.Dim, mc.Heads, mc.Layers, mc.FF, mc.Context = 32, 4, 1, 64, 8
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: gen.Vocab(), SourceLen: srcLen, TargetLen: tgtLen + 1, Batch: 32, Seed: 5}
	if err := harness.CheckModel(m, env); err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	defer m.(*s2s.Model).Close()

	adam := nn.DefaultAdamConfig()
	adam.LR = 0.01
	opt := nn.NewAdam(m.Params(), adam)
	rng := rand.New(rand.NewPCG(11, 12))
	const steps = 400
	var last float64
	for s := range steps {
		exs := make([]seq2seq.Example, env.Batch)
		for i := range exs {
			exs[i] = gen.Train(rng)
		}
		loss, err := m.(harness.Trainer).Gradients(t.Context(), seq2seq.PadBatch(exs), uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		nn.ClipGradNorm(m.Params(), 1)
		opt.Step()
		last = 0.9*last + 0.1*loss
		if s < 10 {
			last = loss
		}
	}
	uniform := math.Log(float64(gen.Vocab()))
	t.Logf("loss after %d steps %.3f (uniform %.3f)", steps, last, uniform)
	if !(last < 0.2*uniform) {
		t.Errorf("loss %.3f after %d steps, want below %.3f (a fifth of the uniform loss)", last, steps, 0.2*uniform)
	}

	test, err := gen.Fixed(1, seq2seq.Test)
	if err != nil {
		t.Fatal(err)
	}
	sources := make([][]int, len(test))
	for i, e := range test {
		sources[i] = e.Source
	}
	tr, err := harness.Translate(t.Context(), m, sources, harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, MaxLen: tgtLen + 1})
	if err != nil {
		t.Fatal(err)
	}
	exact := 0
	for i, e := range test {
		if slices.Equal(tr.Outputs[i], e.Target) {
			exact++
		}
	}
	frac := float64(exact) / float64(len(test))
	t.Logf("exact match %d/%d on held-out sources, %d passes", exact, len(test), tr.Passes)
	if frac < 0.85 {
		t.Errorf("exact match %.2f on held-out sources, want at least 0.85", frac)
	}
}
