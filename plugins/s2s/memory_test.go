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

// liveHeap returns the bytes of live heap objects after collecting garbage.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

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
// and after an evaluation batch alone.
func TestMemoryEstimate(t *testing.T) {
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: 32, SourceLen: 16, TargetLen: 17, Batch: 16, EvalBatch: 16, Seed: 1}
	for _, dropout := range []float64{0, 0.1} {
		newModel := func() harness.Model {
			m := s2s.New()
			c := m.Config().(*s2s.Config)
			c.Dim, c.Heads, c.Layers, c.DecLayers, c.Context, c.Dropout = 32, 4, 2, 1, 20, dropout
			return m
		}
		est := newModel().(harness.MemoryEstimator).EstimateMemory(env)
		evalBatch := memoryBatch(env, lm.EvalRows(env))
		measure := func(train bool) int64 {
			base := liveHeap()
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
			n := liveHeap() - base
			runtime.KeepAlive(keep)
			runtime.KeepAlive(lp)
			if want := 4 * int64(m.Params().Count()); est.Params != want {
				t.Errorf("dropout %v: estimated parameters %d bytes, Setup allocated %d", dropout, est.Params, want)
			}
			m.(*s2s.Model).Close()
			return n
		}
		for _, c := range []struct {
			what          string
			estimate, got int64
		}{{"training", est.Params + est.Training, measure(true)}, {"inference", est.Params + est.Inference, measure(false)}} {
			ratio := float64(c.estimate) / float64(c.got)
			t.Logf("dropout %v, %s: estimated %d bytes, measured %d (ratio %.2f)", dropout, c.what, c.estimate, c.got, ratio)
			if !(ratio >= 0.5 && ratio <= 2) {
				t.Errorf("dropout %v, %s: estimated %d bytes, measured %d: ratio %.2f outside [0.5, 2]", dropout, c.what, c.estimate, c.got, ratio)
			}
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
