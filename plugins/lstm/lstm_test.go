package lstm_test

import (
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/internal/recurrent"
	"arbench/plugins/lstm"
)

func TestPlugin(t *testing.T) {
	plugintest.CheckRecurrentPlugin(t, lstm.New, func(m harness.Model) *recurrent.Config {
		return m.Config().(*recurrent.Config)
	})
}

// TestInputGradients: the registered model provides the vanishing-gradient
// measurement (plugintest.CheckInputGradients).
func TestInputGradients(t *testing.T) {
	m := lstm.New()
	c := m.Config().(*recurrent.Config)
	c.Embed, c.Hidden = 5, 7
	plugintest.CheckInputGradients(t, m)
}
