// Package lstm registers the LSTM language model (Hochreiter & Schmidhuber
// 1997; gates i,f,g,o as torch.nn.LSTM): embedding → LSTM → linear.
package lstm

import (
	"arbench/harness"
	"arbench/plugins/internal/recurrent"
)

func init() {
	harness.RegisterModel("lstm", "LSTM language model (embedding → nn.LSTM → linear), carried-state generation", New)
}

// New returns a fresh, unconfigured lstm model.
func New() harness.Model {
	return recurrent.New("lstm", recurrent.Config{Embed: 64, Hidden: 256, Layers: 1})
}
