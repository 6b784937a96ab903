//go:build amd64 && !purego

package gorgonia

import "golang.org/x/sys/cpu"

// haveAVX512 reports whether the CPU and OS support the AVX-512 kernels
// (sgemm512_amd64.s): F for the 512-bit FMAs, DQ for the 256-bit lane
// inserts, extracts and broadcasts, VL for EVEX-encoded YMM moves.
var haveAVX512 = haveAVX2FMA && cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL

// kernel6x64AVX512, kernel6x32AVX512 and kernel6x16AVX512 are the AVX-512
// micro-kernels;
// see microKernel.
//
//go:noescape
func kernel6x32AVX512(k int, a *float32, rsa, csa int, b0, b1 *float32, ldb int, c *float32, ldc int, load bool)

//go:noescape
func kernel6x64AVX512(k int, a *float32, rsa, csa int, b *float32, next, ldb int, c *float32, ldc int, load bool)

//go:noescape
func kernel6x16AVX512(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, load bool)

// dot6x8AVX512, dot4x8AVX512 and dot1x16AVX512 are the AVX-512 dot
// kernels; see dot6x8, dot4x8 and dot1x16.
//
//go:noescape
func dot6x8AVX512(n8 int, a *float32, lda int, b *float32, ldb int, groups int, c *float32, ldc int)

//go:noescape
func dot4x8AVX512(n8 int, a *float32, lda int, b *float32, ldb int, groups int, c *float32, ldc int)

//go:noescape
func dot1x16AVX512(n8 int, a *float32, b *float32, ldb int, groups int, c *float32)

// dot6x8pAVX512 and dot4x8pAVX512 are dot6x8AVX512 and dot4x8AVX512 over
// b packed by dotPackB; see dotPacked.
//
//go:noescape
func dot6x8pAVX512(n8 int, a *float32, lda int, b *float32, groups int, c *float32, ldc int)

//go:noescape
func dot4x8pAVX512(n8 int, a *float32, lda int, b *float32, groups int, c *float32, ldc int)

// dotPackAVX512 is dotPackB's copy.
//
//go:noescape
func dotPackAVX512(dst, b *float32, ldb, groups, k8 int)

// wsum4x32AVX512 is CacheAttention's four weighted sums at once; see
// wsum4x32.
//
//go:noescape
func wsum4x32AVX512(k int, w *float32, ldw int, v *float32, ldv, sv int, c *float32, ldc int)

// wsum2x32AVX512 is wsum4x32AVX512 for two rows.
//
//go:noescape
func wsum2x32AVX512(k int, w *float32, ldw int, v *float32, ldv, sv int, c *float32, ldc int)
