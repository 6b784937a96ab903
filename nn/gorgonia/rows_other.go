//go:build !amd64 || purego

package gorgonia

// Without the amd64 assembly the row kernels run their Go loops.

func rowMaxAVX512(int, *float32) (float32, bool) {
	panic("gorgonia: AVX-512 row kernel unavailable")
}

func subSubAVX512(int, *float32, float32, float32, *float32) {
	panic("gorgonia: AVX-512 row kernel unavailable")
}

func subMulAVX512(int, *float32, *float32, float32, *float32) {
	panic("gorgonia: AVX-512 row kernel unavailable")
}
