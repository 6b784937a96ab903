package lstm_test

import (
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/internal/recurrent"
	"arbench/plugins/lstm"
)

func TestPlugin(t *testing.T) {
	plugintest.CheckRecurrentPlugin(t, lstm.New, func(m harness.Model) (*int, *int, *int) {
		c := m.Config().(*recurrent.Config)
		return &c.Embed, &c.Hidden, &c.Layers
	})
}
