//go:build !openblas

package gorgonia

// externalBLAS is false in the default build: matrix products use this
// package's GEMM (sgemm.go), which is faster than gonum's pure-Go Sgemm.
const externalBLAS = false
