//go:build openblas

package gorgonia

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"

	// Links libopenblas (cgo) for netlib.
	_ "arbench/nn/gorgonia/internal/openblas"
)

// With the openblas build tag every matrix product (and gorgonia/tensor's
// BLAS calls) goes through OpenBLAS via gonum's netlib cgo bindings instead
// of gonum's pure-Go BLAS. Building needs cgo and libopenblas-dev.
func init() { G.Use(netlib.Implementation{}) }

// externalBLAS routes the backend's matrix products to G.WhichBLAS.
const externalBLAS = true
