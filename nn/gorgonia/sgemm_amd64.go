//go:build amd64 && !purego

package gorgonia

import "golang.org/x/sys/cpu"

// haveAVX2FMA selects the assembly micro-kernel (sgemm_amd64.s).
var haveAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernelAVX2 is implemented in sgemm_amd64.s; see microKernel.
//
//go:noescape
func kernelAVX2(k int, a, b, c *float32, ldc int, load bool)

// kernelAVX2B is kernelAVX2 reading B unpacked with row stride ldb.
//
//go:noescape
func kernelAVX2B(k int, a, b *float32, ldb int, c *float32, ldc int, load bool)

// dot4x3AVX2 and dot1x8AVX2 are implemented in sgemm_amd64.s; see dotNT.
//
//go:noescape
func dot4x3AVX2(n8 int, a *float32, lda int, b *float32, ldb int, groups int, c *float32, ldc int)

//go:noescape
func dot1x8AVX2(n8 int, a *float32, b *float32, ldb int, groups int, c *float32)

// copyRowsAVX2 is implemented in sgemm_amd64.s; see copyRows.
//
//go:noescape
func copyRowsAVX2(dst, src *float32, lds, rows, chunks int)

// expAVX2 is implemented in sgemm_amd64.s; see expInto.
//
//go:noescape
func expAVX2(n8 int, x, out *float32)
