package nn_test

import (
	"testing"

	"arbench/nn"
	"arbench/nn/gorgonia"
)

// testBackend returns the backend the layer tests run on: the gorgonia CPU
// backend, which needs neither cgo nor a GPU.
func testBackend(testing.TB) nn.Backend { return gorgonia.New() }
