package transformer_test

import (
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
}
