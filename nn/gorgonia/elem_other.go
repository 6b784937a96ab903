//go:build !amd64 || purego

package gorgonia

// Without the amd64 assembly binary runs its Go loops.

func addAVX512(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX-512 element-wise kernel unavailable")
}
func subAVX512(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX-512 element-wise kernel unavailable")
}
func mulAVX512(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX-512 element-wise kernel unavailable")
}
func addAVX2(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX2 element-wise kernel unavailable")
}
func subAVX2(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX2 element-wise kernel unavailable")
}
func mulAVX2(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX2 element-wise kernel unavailable")
}

func positiveSelectAVX512(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX-512 element-wise kernel unavailable")
}
