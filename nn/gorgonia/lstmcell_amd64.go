//go:build amd64 && !purego

package gorgonia

// lstmStateAVX2, lstmOutAVX2 and lstmBackAVX2 (eight lanes, AVX) and
// their sixteen-lane AVX-512 F versions are implemented in
// lstmcell_amd64.s; see lstmCellState, lstmCellOut and lstmCellBackward.
//
//go:noescape
func lstmStateAVX2(n int, f, c, i, tg, out *float32)

//go:noescape
func lstmStateAVX512(n int, f, c, i, tg, out *float32)

//go:noescape
func lstmOutAVX2(n int, o, t, out *float32)

//go:noescape
func lstmOutAVX512(n int, o, t, out *float32)

//go:noescape
func lstmBackAVX2(rows, hd, bh int, acts, c, dh, dc2, dgates, dc *float32)

//go:noescape
func lstmBackAVX512(rows, hd, bh int, acts, c, dh, dc2, dgates, dc *float32)
