// Package rnn registers the survey's RNN generator: embedding → tanh RNN
// (Elman 1990, h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)) → linear,
// with weights laid out as torch.nn.RNN(E, H, batch_first=True).
package rnn

import (
	"arbench/harness"
	"arbench/plugins/internal/recurrent"
)

func init() {
	harness.RegisterModel("rnn", "Elman tanh RNN language model (embedding → nn.RNN → linear), carried-state generation", New)
}

// New returns a fresh, unconfigured rnn model.
func New() harness.Model {
	return recurrent.New("rnn", recurrent.Config{Embed: 64, Hidden: 256, Layers: 1})
}
