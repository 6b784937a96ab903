//go:build !amd64 || purego

package nn

const haveAdamAVX512 = false

func adamAVX512(int, *float32, *float32, *float32, *float32, *adamUpdate) {
	panic("nn: AVX-512 Adam kernel unavailable")
}
