//go:build amd64 && !purego

package gorgonia

// rowMaxAVX512, subSubAVX512 and subMulAVX512 are implemented in
// rows_amd64.s; see rowMax, logSoftmaxInto and logSoftmaxGrad.
//
//go:noescape
func rowMaxAVX512(n int, x *float32) (m float32, nan bool)

//go:noescape
func subSubAVX512(n int, x *float32, a, b float32, out *float32)

//go:noescape
func subMulAVX512(n int, dy, e *float32, s float32, out *float32)
