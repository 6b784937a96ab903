package rnn_test

import (
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/internal/recurrent"
	"arbench/plugins/rnn"
)

func TestMatchesPyTorch(t *testing.T) {
	m := rnn.New()
	cfg := m.Config().(*recurrent.Config)
	cfg.Embed = plugintest.Meta(t, "testdata", "embed")
	cfg.Hidden = plugintest.Meta(t, "testdata", "hidden")
	cfg.Layers = plugintest.Meta(t, "testdata", "layers")
	plugintest.CheckReference(t, m, "testdata", 1e-5)
	b := plugintest.Pattern(2, 9, 11)
	plugintest.CheckStepper(t, m, b.Inputs, 3, 1e-5)
}

func TestLearnsAndIsDeterministic(t *testing.T) {
	plugintest.CheckLearns(t, func() harness.Model {
		m := rnn.New()
		cfg := m.Config().(*recurrent.Config)
		cfg.Embed, cfg.Hidden = 8, 16
		return m
	}, 13, 60, 0.02)
}
