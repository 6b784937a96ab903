package rnn_test

import (
	"context"
	"math"
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/internal/recurrent"
	"arbench/plugins/rnn"
)

func TestPlugin(t *testing.T) {
	plugintest.CheckRecurrentPlugin(t, rnn.New, func(m harness.Model) (*int, *int, *int) {
		c := m.Config().(*recurrent.Config)
		return &c.Embed, &c.Hidden, &c.Layers
	})
}

// TestInputGradients: the registered model provides the vanishing-gradient
// measurement (harness.NeedInputGradients), one finite, positive norm per
// row and position s <= t (finite differences, causality and the
// parameters left alone are tested in plugins/internal/lm).
func TestInputGradients(t *testing.T) {
	m := rnn.New()
	if !harness.NeedInputGradients.Has(m) {
		t.Fatal("rnn lacks harness.InputGradienter")
	}
	c := m.Config().(*recurrent.Config)
	c.Embed, c.Hidden = 5, 7
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: 7, SeqLen: 5, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	norms, err := m.(harness.InputGradienter).InputGradientNorms(context.Background(), plugintest.Pattern(2, 5, 7), 3)
	if err != nil || len(norms) != 2 {
		t.Fatalf("InputGradientNorms = %v, %v; want 2 rows", norms, err)
	}
	for i, row := range norms {
		for s, v := range row {
			if len(row) != 4 || !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("row %d (%d norms) s=%d: norm %v", i, len(row), s, v)
			}
		}
	}
}
