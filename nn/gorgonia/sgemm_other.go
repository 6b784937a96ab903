//go:build !amd64 || purego

package gorgonia

// Without the amd64 assembly every tile uses kernelGo.
const haveAVX2FMA = false

func kernelAVX2(int, *float32, *float32, *float32, int, bool) {
	panic("gorgonia: AVX2 micro-kernel unavailable")
}

func dot4x3AVX2(int, *float32, int, *float32, int, int, *float32, int) {
	panic("gorgonia: AVX2 dot kernel unavailable")
}

func dot1x8AVX2(int, *float32, *float32, int, int, *float32) {
	panic("gorgonia: AVX2 dot kernel unavailable")
}

func kernelAVX2B(int, *float32, *float32, int, *float32, int, bool) {
	panic("gorgonia: AVX2 micro-kernel unavailable")
}

func expAVX2(int, *float32, *float32) {
	panic("gorgonia: AVX2 exp kernel unavailable")
}

func copyRowsAVX2(*float32, *float32, int, int, int) {
	panic("gorgonia: AVX2 copy unavailable")
}
