//go:build !amd64 || purego

package gorgonia

// Without the amd64 assembly tanhInto and sigmoidInto use tanh32 and
// sigmoid32.
const actAVX512 = false

func tanhAVX2(int, *float32, *float32) {
	panic("gorgonia: AVX2 tanh kernel unavailable")
}

func sigmoidAVX2(int, *float32, *float32) {
	panic("gorgonia: AVX2 sigmoid kernel unavailable")
}

func tanhAVX512(int, *float32, *float32) {
	panic("gorgonia: AVX-512 tanh kernel unavailable")
}

func sigmoidAVX512(int, *float32, *float32) {
	panic("gorgonia: AVX-512 sigmoid kernel unavailable")
}

func expAVX512(int, *float32, *float32) {
	panic("gorgonia: AVX-512 exp kernel unavailable")
}
