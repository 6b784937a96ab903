package transformer_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/transformer"
)

func TestMatchesPyTorch(t *testing.T) {
	m := transformer.New()
	cfg := m.Config().(*transformer.Config)
	cfg.Dim = plugintest.Meta(t, "testdata", "dim")
	cfg.Heads = plugintest.Meta(t, "testdata", "heads")
	cfg.Layers = plugintest.Meta(t, "testdata", "layers")
	cfg.Context = plugintest.Meta(t, "testdata", "context")
	plugintest.CheckReference(t, m, "testdata", 1e-5)
}

func TestLearnsAndIsDeterministic(t *testing.T) {
	plugintest.CheckLearns(t, func() harness.Model {
		m := transformer.New()
		cfg := m.Config().(*transformer.Config)
		cfg.Dim, cfg.Heads, cfg.Layers, cfg.Context = 16, 2, 1, 16
		return m
	}, 13, 60, 0.01)
}

func TestConfigValidate(t *testing.T) {
	c := transformer.Config{Dim: 10, Heads: 3, Layers: 0, Context: -1, Dropout: 1}
	if errs := c.Validate(); len(errs) != 4 {
		t.Fatalf("want 4 errors (heads, layers, context, dropout), got %v", errs)
	}
	for _, d := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		c := transformer.Config{Dim: 8, Heads: 2, Layers: 1, Context: 8, Dropout: d}
		if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "dropout") {
			t.Errorf("dropout %v: Validate = %v, want one dropout error", d, errs)
		}
	}
}

// small returns a transformer small enough to set up in a test.
func small() harness.Model {
	m := transformer.New()
	cfg := m.Config().(*transformer.Config)
	cfg.Dim, cfg.Heads, cfg.Layers, cfg.Context = 8, 2, 1, 8
	return m
}

// TestBeforeSetup: the runner may Close a model whose Setup failed or
// never ran (case 1 of issue 9 crashed in lm.(*Base).Close).
func TestBeforeSetup(t *testing.T) {
	plugintest.CheckBeforeSetup(t, transformer.New())
	m := transformer.New()
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: 10, SeqLen: 138}); err == nil {
		t.Fatal("Setup with rows longer than the context succeeded")
	}
	plugintest.CheckBeforeSetup(t, m)
}

// TestCheckEnv: rows longer than the context are reported by CheckEnv,
// before any work, and by Setup with the same message.
func TestCheckEnv(t *testing.T) {
	const want = "context: 128 is shorter than the task's rows of 138; set context: >= 138"
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: 20, SeqLen: 138}
	m := transformer.New()
	if errs := m.(harness.EnvChecker).CheckEnv(env); len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("CheckEnv = %v, want [%s]", errs, want)
	}
	if err := m.Setup(context.Background(), env); err == nil || err.Error() != "transformer: "+want {
		t.Errorf("Setup = %v, want transformer: %s", err, want)
	}
	env.SeqLen = 128
	if errs := m.(harness.EnvChecker).CheckEnv(env); len(errs) != 0 {
		t.Errorf("CheckEnv of rows as long as the context = %v", errs)
	}
	if errs := m.(harness.EnvChecker).CheckEnv(harness.Env{Vocab: 0, SeqLen: 4}); len(errs) != 1 {
		t.Errorf("CheckEnv without a vocabulary = %v, want one error", errs)
	}
}

func TestSetupRejectsNaNDropout(t *testing.T) {
	m := small()
	m.Config().(*transformer.Config).Dropout = math.NaN()
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: 5, SeqLen: 4}); err == nil || !strings.Contains(err.Error(), "dropout") {
		t.Errorf("Setup with NaN dropout = %v", err)
	}
}

func TestHardening(t *testing.T) {
	m := small()
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: 5, SeqLen: 4, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	plugintest.CheckRefusesSource(t, m)
	long := plugintest.Pattern(1, 9, 5)
	if _, err := m.(harness.Scorer).LogProbs(context.Background(), long); err == nil || !strings.Contains(err.Error(), "context") {
		t.Errorf("LogProbs of 9 tokens with a context of 8 = %v, want an error", err)
	}
	if _, err := m.(harness.Trainer).Gradients(context.Background(), long, 1); err == nil || !strings.Contains(err.Error(), "context") {
		t.Errorf("Gradients of 9 tokens with a context of 8 = %v, want an error", err)
	}
	plugintest.CheckDivergedLoss(t, m)
}

// TestMemoryEstimate compares the estimate with the live heap measured
// after a training step and an evaluation batch (plugintest.
// CheckMemoryEstimate) on shapes where different values dominate the
// pooled buffers' peak: the feed-forward block (the default width, with
// and without dropout, with two and four layers), the logits (a
// vocabulary of 2048) and the attention weights (512 positions, where
// h·T is 16 times ff).
func TestMemoryEstimate(t *testing.T) {
	for _, c := range []struct {
		name                     string
		dim, heads, ff, layers   int
		dropout                  float64
		vocab, seqLen, batch, eb int
	}{
		{"default", 128, 4, 0, 2, 0, 256, 64, 32, 0},
		{"dropout", 128, 4, 0, 2, 0.1, 256, 64, 32, 0},
		{"four layers", 128, 4, 0, 4, 0, 256, 32, 32, 0},
		{"logits", 64, 4, 256, 2, 0, 2048, 32, 16, 16},
		{"long attention", 32, 2, 64, 1, 0, 16, 512, 4, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := harness.Env{Backend: plugintest.Backend(t), Vocab: c.vocab, SeqLen: c.seqLen, Batch: c.batch, EvalBatch: c.eb, Seed: 1}
			plugintest.CheckMemoryEstimate(t, func() harness.Model {
				m := transformer.New()
				cfg := m.Config().(*transformer.Config)
				cfg.Dim, cfg.Heads, cfg.FF, cfg.Layers, cfg.Dropout = c.dim, c.heads, c.ff, c.layers, c.dropout
				cfg.Context = max(cfg.Context, c.seqLen)
				return m
			}, env)
		})
	}
	env := harness.Env{Vocab: 256, SeqLen: 64, Batch: 32}
	huge := transformer.New()
	huge.Config().(*transformer.Config).Dim = 100000000
	plugintest.CheckRefusesHuge(t, huge, env)
}

// TestInputGradients: the registered model provides the vanishing-gradient
// measurement (plugintest.CheckInputGradients).
func TestInputGradients(t *testing.T) {
	plugintest.CheckInputGradients(t, small())
}
