//go:build !openblas

package transformer_test

// kvTol is the largest difference allowed between log-probabilities of
// cached decoding and a full forward pass. The default build's GEMM
// computes every dot product in an order independent of the matrix sizes
// (nn/gorgonia/sgemm.go), so the two agree bit for bit.
const kvTol = 0
