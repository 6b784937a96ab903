//go:build !amd64 || purego

package gorgonia

// Without the amd64 assembly there are no AVX-512 kernels.
const haveAVX512 = false

func kernel6x32AVX512(int, *float32, int, int, *float32, *float32, int, *float32, int, bool) {
	panic("gorgonia: AVX-512 micro-kernel unavailable")
}

func kernel6x64AVX512(int, *float32, int, int, *float32, int, int, *float32, int, bool) {
	panic("gorgonia: AVX-512 micro-kernel unavailable")
}

func kernel6x16AVX512(int, *float32, int, int, *float32, int, *float32, int, bool) {
	panic("gorgonia: AVX-512 micro-kernel unavailable")
}

func dot6x8AVX512(int, *float32, int, *float32, int, int, *float32, int) {
	panic("gorgonia: AVX-512 dot kernel unavailable")
}

func dot4x8AVX512(int, *float32, int, *float32, int, int, *float32, int) {
	panic("gorgonia: AVX-512 dot kernel unavailable")
}

func dot1x16AVX512(int, *float32, *float32, int, int, *float32) {
	panic("gorgonia: AVX-512 dot kernel unavailable")
}

func dot6x8pAVX512(int, *float32, int, *float32, int, *float32, int) {
	panic("gorgonia: AVX-512 dot kernel unavailable")
}

func dot4x8pAVX512(int, *float32, int, *float32, int, *float32, int) {
	panic("gorgonia: AVX-512 dot kernel unavailable")
}

func dotPackAVX512(*float32, *float32, int, int, int) {
	panic("gorgonia: AVX-512 dot packing unavailable")
}

func wsum4x32AVX512(int, *float32, int, *float32, int, int, *float32, int) {
	panic("gorgonia: AVX-512 weighted-sum kernel unavailable")
}

func wsum2x32AVX512(int, *float32, int, *float32, int, int, *float32, int) {
	panic("gorgonia: AVX-512 weighted-sum kernel unavailable")
}
