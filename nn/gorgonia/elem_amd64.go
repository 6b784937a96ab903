//go:build amd64 && !purego

package gorgonia

// addAVX512, subAVX512, mulAVX512 (sixteen lanes, AVX-512 F) and their
// eight-lane AVX versions are implemented in elem_amd64.s; see binary.
//
//go:noescape
func addAVX512(n int, a, b, out *float32)

//go:noescape
func subAVX512(n int, a, b, out *float32)

//go:noescape
func mulAVX512(n int, a, b, out *float32)

//go:noescape
func addAVX2(n8 int, a, b, out *float32)

//go:noescape
func subAVX2(n8 int, a, b, out *float32)

//go:noescape
func mulAVX2(n8 int, a, b, out *float32)

// positiveSelectAVX512 is positiveBits over n elements (see reluInto):
// out[i] = u[i] where y[i] > 0, else +0.
//
//go:noescape
func positiveSelectAVX512(n int, y, u, out *float32)
