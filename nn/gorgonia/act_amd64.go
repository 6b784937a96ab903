//go:build amd64 && !purego

package gorgonia

import "golang.org/x/sys/cpu"

// actAVX512 selects the sixteen-lane activation kernels (act_amd64.s),
// which need AVX-512 F only; see actLanes.
var actAVX512 = haveAVX2FMA && cpu.X86.HasAVX512F

// tanhAVX2, sigmoidAVX2 (eight lanes) and tanhAVX512, sigmoidAVX512,
// expAVX512 (sixteen) are implemented in act_amd64.s; see tanhInto,
// sigmoidInto and expInto.
//
//go:noescape
func tanhAVX2(n int, x, out *float32)

//go:noescape
func sigmoidAVX2(n int, x, out *float32)

//go:noescape
func tanhAVX512(n int, x, out *float32)

//go:noescape
func sigmoidAVX512(n int, x, out *float32)

//go:noescape
func expAVX512(n int, x, out *float32)
