//go:build openblas

// Package openblas links OpenBLAS (libopenblas-dev) into binaries built
// with the openblas tag, for gonum's netlib bindings. It is a package of
// its own because a package that uses cgo cannot also contain Go assembly
// (nn/gorgonia has its kernels in assembly).
package openblas

// #cgo LDFLAGS: -lopenblas
import "C"
