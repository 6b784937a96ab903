//go:build !amd64 || purego

package gorgonia

// Without the amd64 assembly the fused LSTM cell's loops run in Go
// (gemmUse is then gemmGo).

func lstmStateAVX2(int, *float32, *float32, *float32, *float32, *float32) {
	panic("gorgonia: AVX2 LSTM cell kernel unavailable")
}

func lstmStateAVX512(int, *float32, *float32, *float32, *float32, *float32) {
	panic("gorgonia: AVX-512 LSTM cell kernel unavailable")
}

func lstmOutAVX2(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX2 LSTM cell kernel unavailable")
}

func lstmOutAVX512(int, *float32, *float32, *float32) {
	panic("gorgonia: AVX-512 LSTM cell kernel unavailable")
}

func lstmBackAVX2(int, int, int, *float32, *float32, *float32, *float32, *float32, *float32) {
	panic("gorgonia: AVX2 LSTM cell kernel unavailable")
}

func lstmBackAVX512(int, int, int, *float32, *float32, *float32, *float32, *float32, *float32) {
	panic("gorgonia: AVX-512 LSTM cell kernel unavailable")
}
