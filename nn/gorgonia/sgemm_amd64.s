//go:build amd64 && !purego

#include "textflag.h"

// func kernelAVX2(k int, a, b, c *float32, ldc int, load bool)
//
// The 6×16 float32 micro-kernel of the packed GEMM (the register blocking
// of BLIS's Haswell sgemm kernel, Van Zee & van de Geijn 2015): twelve YMM
// accumulators hold the tile C[0:6, 0:16]; every k step broadcasts the six
// values of one column of the packed A panel (a[6p:6p+6]) and multiplies
// them into the sixteen values of one row of the packed B panel
// (b[16p:16p+16]) with fused multiply-adds. The tile starts from C (load)
// or from zero and is stored back with row stride ldc (elements), so every
// element of C is one FMA chain over k in order.
TEXT ·kernelAVX2(SB), NOSPLIT, $0-41
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8
	MOVBQZX load+40(FP), AX

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	TESTQ AX, AX
	JZ    start
	MOVQ  DX, R9
	VMOVUPS (R9), Y4
	VMOVUPS 32(R9), Y5
	ADDQ  R8, R9
	VMOVUPS (R9), Y6
	VMOVUPS 32(R9), Y7
	ADDQ  R8, R9
	VMOVUPS (R9), Y8
	VMOVUPS 32(R9), Y9
	ADDQ  R8, R9
	VMOVUPS (R9), Y10
	VMOVUPS 32(R9), Y11
	ADDQ  R8, R9
	VMOVUPS (R9), Y12
	VMOVUPS 32(R9), Y13
	ADDQ  R8, R9
	VMOVUPS (R9), Y14
	VMOVUPS 32(R9), Y15

start:
	CMPQ CX, $4
	JL   tail

loop4:
	// k step 0
	VMOVUPS      (DI), Y0
	VMOVUPS      32(DI), Y1
	VBROADCASTSS (SI), Y2
	VBROADCASTSS 4(SI), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS 8(SI), Y2
	VBROADCASTSS 12(SI), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS 16(SI), Y2
	VBROADCASTSS 20(SI), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15

	// k step 1
	VMOVUPS      64(DI), Y0
	VMOVUPS      96(DI), Y1
	VBROADCASTSS 24(SI), Y2
	VBROADCASTSS 28(SI), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS 32(SI), Y2
	VBROADCASTSS 36(SI), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS 40(SI), Y2
	VBROADCASTSS 44(SI), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15

	// k step 2
	VMOVUPS      128(DI), Y0
	VMOVUPS      160(DI), Y1
	VBROADCASTSS 48(SI), Y2
	VBROADCASTSS 52(SI), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS 56(SI), Y2
	VBROADCASTSS 60(SI), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS 64(SI), Y2
	VBROADCASTSS 68(SI), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15

	// k step 3
	VMOVUPS      192(DI), Y0
	VMOVUPS      224(DI), Y1
	VBROADCASTSS 72(SI), Y2
	VBROADCASTSS 76(SI), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS 80(SI), Y2
	VBROADCASTSS 84(SI), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS 88(SI), Y2
	VBROADCASTSS 92(SI), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15

	ADDQ $96, SI
	ADDQ $256, DI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop4

tail:
	TESTQ CX, CX
	JZ    store

loop1:
	VMOVUPS      (DI), Y0
	VMOVUPS      32(DI), Y1
	VBROADCASTSS (SI), Y2
	VBROADCASTSS 4(SI), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS 8(SI), Y2
	VBROADCASTSS 12(SI), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS 16(SI), Y2
	VBROADCASTSS 20(SI), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop1

store:
	MOVQ    DX, R9
	VMOVUPS Y4, (R9)
	VMOVUPS Y5, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y6, (R9)
	VMOVUPS Y7, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y8, (R9)
	VMOVUPS Y9, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y10, (R9)
	VMOVUPS Y11, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y12, (R9)
	VMOVUPS Y13, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y14, (R9)
	VMOVUPS Y15, 32(R9)
	VZEROUPPER
	RET

// func kernelAVX2B(k int, a, b *float32, ldb int, c *float32, ldc int, load bool)
//
// kernelAVX2 reading B in place: row p of the 16-column panel is
// b[p·ldb : p·ldb+16] (ldb in elements), so a product with a single panel
// of A (one to six rows) needs no packing of B.
TEXT ·kernelAVX2B(SB), NOSPLIT, $0-49
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R10
	SHLQ $2, R10
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R8
	SHLQ $2, R8
	MOVBQZX load+48(FP), AX
	LEAQ (R10)(R10*2), R11

	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

	TESTQ AX, AX
	JZ    bstart
	MOVQ  DX, R9
	VMOVUPS (R9), Y4
	VMOVUPS 32(R9), Y5
	ADDQ  R8, R9
	VMOVUPS (R9), Y6
	VMOVUPS 32(R9), Y7
	ADDQ  R8, R9
	VMOVUPS (R9), Y8
	VMOVUPS 32(R9), Y9
	ADDQ  R8, R9
	VMOVUPS (R9), Y10
	VMOVUPS 32(R9), Y11
	ADDQ  R8, R9
	VMOVUPS (R9), Y12
	VMOVUPS 32(R9), Y13
	ADDQ  R8, R9
	VMOVUPS (R9), Y14
	VMOVUPS 32(R9), Y15

bstart:
	TESTQ CX, CX
	JZ    bstore

bloop:
	VMOVUPS      (DI), Y0
	VMOVUPS      32(DI), Y1
	VBROADCASTSS (SI), Y2
	VBROADCASTSS 4(SI), Y3
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS 8(SI), Y2
	VBROADCASTSS 12(SI), Y3
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS 16(SI), Y2
	VBROADCASTSS 20(SI), Y3
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15
	ADDQ         $24, SI
	ADDQ         R10, DI
	DECQ         CX
	JNZ          bloop

bstore:
	MOVQ    DX, R9
	VMOVUPS Y4, (R9)
	VMOVUPS Y5, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y6, (R9)
	VMOVUPS Y7, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y8, (R9)
	VMOVUPS Y9, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y10, (R9)
	VMOVUPS Y11, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y12, (R9)
	VMOVUPS Y13, 32(R9)
	ADDQ    R8, R9
	VMOVUPS Y14, (R9)
	VMOVUPS Y15, 32(R9)
	VZEROUPPER
	RET

// Horizontal sum of the eight lanes of Y (x0..x7) into the low float of
// X, in the fixed order ((x0+x4)+(x2+x6)) + ((x1+x5)+(x3+x7)); T and U
// are scratch registers (X form).
#define HSUM(Y, X, T, U) \
	VEXTRACTF128 $1, Y, T; \
	VADDPS       T, X, T;  \
	VMOVHLPS     T, T, U;  \
	VADDPS       U, T, T;  \
	VMOVSHDUP    T, U;     \
	VADDSS       U, T, X

// func dot4x3AVX2(n8 int, a *float32, lda int, b *float32, ldb int, groups int, c *float32, ldc int)
//
// For g < groups, the dot products of 4 rows of a (row stride lda
// elements) with rows 3g..3g+2 of b (stride ldb) over their first 8·n8
// elements: c[r·ldc + 3g + s] = a_r·b_{3g+s}. Each product accumulates
// eight lane-wise partial sums with FMAs in order of the element index and
// then adds the lanes in the fixed order of HSUM, so its value does not
// depend on which tile computed it.
TEXT ·dot4x3AVX2(SB), NOSPLIT, $0-64
	MOVQ n8+0(FP), R13
	MOVQ a+8(FP), R14
	MOVQ lda+16(FP), R8
	SHLQ $2, R8
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	MOVQ groups+40(FP), BX
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R11
	SHLQ $2, R11
	LEAQ (R8)(R8*2), R10
	LEAQ (R11)(R11*2), R12

dot43group:
	TESTQ BX, BX
	JZ    dot43end
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ   R14, SI
	MOVQ   DI, AX
	MOVQ   R13, CX
	TESTQ  CX, CX
	JZ     dot43sum

dot43loop:
	VMOVUPS     (AX), Y12
	VMOVUPS     (AX)(R9*1), Y13
	VMOVUPS     (AX)(R9*2), Y14
	VMOVUPS     (SI), Y15
	VFMADD231PS Y12, Y15, Y0
	VFMADD231PS Y13, Y15, Y1
	VFMADD231PS Y14, Y15, Y2
	VMOVUPS     (SI)(R8*1), Y15
	VFMADD231PS Y12, Y15, Y3
	VFMADD231PS Y13, Y15, Y4
	VFMADD231PS Y14, Y15, Y5
	VMOVUPS     (SI)(R8*2), Y15
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VFMADD231PS Y14, Y15, Y8
	VMOVUPS     (SI)(R10*1), Y15
	VFMADD231PS Y12, Y15, Y9
	VFMADD231PS Y13, Y15, Y10
	VFMADD231PS Y14, Y15, Y11
	ADDQ        $32, SI
	ADDQ        $32, AX
	DECQ        CX
	JNZ         dot43loop

dot43sum:
	HSUM(Y0, X0, X12, X13)
	VMOVSS X0, 0(DX)
	HSUM(Y1, X1, X12, X13)
	VMOVSS X1, 4(DX)
	HSUM(Y2, X2, X12, X13)
	VMOVSS X2, 8(DX)
	HSUM(Y3, X3, X12, X13)
	VMOVSS X3, (DX)(R11*1)
	HSUM(Y4, X4, X12, X13)
	VMOVSS X4, 4(DX)(R11*1)
	HSUM(Y5, X5, X12, X13)
	VMOVSS X5, 8(DX)(R11*1)
	HSUM(Y6, X6, X12, X13)
	VMOVSS X6, (DX)(R11*2)
	HSUM(Y7, X7, X12, X13)
	VMOVSS X7, 4(DX)(R11*2)
	HSUM(Y8, X8, X12, X13)
	VMOVSS X8, 8(DX)(R11*2)
	HSUM(Y9, X9, X12, X13)
	VMOVSS X9, (DX)(R12*1)
	HSUM(Y10, X10, X12, X13)
	VMOVSS X10, 4(DX)(R12*1)
	HSUM(Y11, X11, X12, X13)
	VMOVSS X11, 8(DX)(R12*1)

	ADDQ $12, DX
	LEAQ (DI)(R9*2), DI
	ADDQ R9, DI
	DECQ BX
	JMP  dot43group

dot43end:
	VZEROUPPER
	RET

// func dot1x8AVX2(n8 int, a *float32, b *float32, ldb int, groups int, c *float32)
//
// For g < groups, the dot products of one row a with rows 8g..8g+7 of b
// (stride ldb elements) over their first 8·n8 elements, into c[8g+s], with
// the arithmetic of dot4x3AVX2.
TEXT ·dot1x8AVX2(SB), NOSPLIT, $0-48
	MOVQ n8+0(FP), R13
	MOVQ a+8(FP), R14
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R9
	SHLQ $2, R9
	MOVQ groups+32(FP), BX
	MOVQ c+40(FP), DX
	LEAQ (R9)(R9*2), R10

dot18group:
	TESTQ BX, BX
	JZ    dot18end
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   R14, SI
	MOVQ   DI, AX
	LEAQ   (DI)(R9*4), R11
	MOVQ   R13, CX
	TESTQ  CX, CX
	JZ     dot18sum

dot18loop:
	VMOVUPS     (SI), Y15
	VFMADD231PS (AX), Y15, Y0
	VFMADD231PS (AX)(R9*1), Y15, Y1
	VFMADD231PS (AX)(R9*2), Y15, Y2
	VFMADD231PS (AX)(R10*1), Y15, Y3
	VFMADD231PS (R11), Y15, Y4
	VFMADD231PS (R11)(R9*1), Y15, Y5
	VFMADD231PS (R11)(R9*2), Y15, Y6
	VFMADD231PS (R11)(R10*1), Y15, Y7
	ADDQ        $32, SI
	ADDQ        $32, AX
	ADDQ        $32, R11
	DECQ        CX
	JNZ         dot18loop

dot18sum:
	HSUM(Y0, X0, X12, X13)
	VMOVSS X0, 0(DX)
	HSUM(Y1, X1, X12, X13)
	VMOVSS X1, 4(DX)
	HSUM(Y2, X2, X12, X13)
	VMOVSS X2, 8(DX)
	HSUM(Y3, X3, X12, X13)
	VMOVSS X3, 12(DX)
	HSUM(Y4, X4, X12, X13)
	VMOVSS X4, 16(DX)
	HSUM(Y5, X5, X12, X13)
	VMOVSS X5, 20(DX)
	HSUM(Y6, X6, X12, X13)
	VMOVSS X6, 24(DX)
	HSUM(Y7, X7, X12, X13)
	VMOVSS X7, 28(DX)

	ADDQ $32, DX
	LEAQ (DI)(R9*8), DI
	DECQ BX
	JMP  dot18group

dot18end:
	VZEROUPPER
	RET

// Constants of expAVX2, each broadcast to 8 lanes: the clamp bounds, log2 e,
// 0.5, 1, ln 2 split in two (Cody–Waite), the polynomial coefficients of
// Cephes' expf (Moshier 1989), 127.0 and +Inf.
DATA expc<>+0x000(SB)/4, $0x42b0c0a5
DATA expc<>+0x004(SB)/4, $0x42b0c0a5
DATA expc<>+0x008(SB)/4, $0x42b0c0a5
DATA expc<>+0x00c(SB)/4, $0x42b0c0a5
DATA expc<>+0x010(SB)/4, $0x42b0c0a5
DATA expc<>+0x014(SB)/4, $0x42b0c0a5
DATA expc<>+0x018(SB)/4, $0x42b0c0a5
DATA expc<>+0x01c(SB)/4, $0x42b0c0a5
DATA expc<>+0x020(SB)/4, $0xc2b0c0a5
DATA expc<>+0x024(SB)/4, $0xc2b0c0a5
DATA expc<>+0x028(SB)/4, $0xc2b0c0a5
DATA expc<>+0x02c(SB)/4, $0xc2b0c0a5
DATA expc<>+0x030(SB)/4, $0xc2b0c0a5
DATA expc<>+0x034(SB)/4, $0xc2b0c0a5
DATA expc<>+0x038(SB)/4, $0xc2b0c0a5
DATA expc<>+0x03c(SB)/4, $0xc2b0c0a5
DATA expc<>+0x040(SB)/4, $0x3fb8aa3b
DATA expc<>+0x044(SB)/4, $0x3fb8aa3b
DATA expc<>+0x048(SB)/4, $0x3fb8aa3b
DATA expc<>+0x04c(SB)/4, $0x3fb8aa3b
DATA expc<>+0x050(SB)/4, $0x3fb8aa3b
DATA expc<>+0x054(SB)/4, $0x3fb8aa3b
DATA expc<>+0x058(SB)/4, $0x3fb8aa3b
DATA expc<>+0x05c(SB)/4, $0x3fb8aa3b
DATA expc<>+0x060(SB)/4, $0x3f000000
DATA expc<>+0x064(SB)/4, $0x3f000000
DATA expc<>+0x068(SB)/4, $0x3f000000
DATA expc<>+0x06c(SB)/4, $0x3f000000
DATA expc<>+0x070(SB)/4, $0x3f000000
DATA expc<>+0x074(SB)/4, $0x3f000000
DATA expc<>+0x078(SB)/4, $0x3f000000
DATA expc<>+0x07c(SB)/4, $0x3f000000
DATA expc<>+0x080(SB)/4, $0x3f800000
DATA expc<>+0x084(SB)/4, $0x3f800000
DATA expc<>+0x088(SB)/4, $0x3f800000
DATA expc<>+0x08c(SB)/4, $0x3f800000
DATA expc<>+0x090(SB)/4, $0x3f800000
DATA expc<>+0x094(SB)/4, $0x3f800000
DATA expc<>+0x098(SB)/4, $0x3f800000
DATA expc<>+0x09c(SB)/4, $0x3f800000
DATA expc<>+0x0a0(SB)/4, $0x3f318000
DATA expc<>+0x0a4(SB)/4, $0x3f318000
DATA expc<>+0x0a8(SB)/4, $0x3f318000
DATA expc<>+0x0ac(SB)/4, $0x3f318000
DATA expc<>+0x0b0(SB)/4, $0x3f318000
DATA expc<>+0x0b4(SB)/4, $0x3f318000
DATA expc<>+0x0b8(SB)/4, $0x3f318000
DATA expc<>+0x0bc(SB)/4, $0x3f318000
DATA expc<>+0x0c0(SB)/4, $0xb95e8083
DATA expc<>+0x0c4(SB)/4, $0xb95e8083
DATA expc<>+0x0c8(SB)/4, $0xb95e8083
DATA expc<>+0x0cc(SB)/4, $0xb95e8083
DATA expc<>+0x0d0(SB)/4, $0xb95e8083
DATA expc<>+0x0d4(SB)/4, $0xb95e8083
DATA expc<>+0x0d8(SB)/4, $0xb95e8083
DATA expc<>+0x0dc(SB)/4, $0xb95e8083
DATA expc<>+0x0e0(SB)/4, $0x39506967
DATA expc<>+0x0e4(SB)/4, $0x39506967
DATA expc<>+0x0e8(SB)/4, $0x39506967
DATA expc<>+0x0ec(SB)/4, $0x39506967
DATA expc<>+0x0f0(SB)/4, $0x39506967
DATA expc<>+0x0f4(SB)/4, $0x39506967
DATA expc<>+0x0f8(SB)/4, $0x39506967
DATA expc<>+0x0fc(SB)/4, $0x39506967
DATA expc<>+0x100(SB)/4, $0x3ab743ce
DATA expc<>+0x104(SB)/4, $0x3ab743ce
DATA expc<>+0x108(SB)/4, $0x3ab743ce
DATA expc<>+0x10c(SB)/4, $0x3ab743ce
DATA expc<>+0x110(SB)/4, $0x3ab743ce
DATA expc<>+0x114(SB)/4, $0x3ab743ce
DATA expc<>+0x118(SB)/4, $0x3ab743ce
DATA expc<>+0x11c(SB)/4, $0x3ab743ce
DATA expc<>+0x120(SB)/4, $0x3c088908
DATA expc<>+0x124(SB)/4, $0x3c088908
DATA expc<>+0x128(SB)/4, $0x3c088908
DATA expc<>+0x12c(SB)/4, $0x3c088908
DATA expc<>+0x130(SB)/4, $0x3c088908
DATA expc<>+0x134(SB)/4, $0x3c088908
DATA expc<>+0x138(SB)/4, $0x3c088908
DATA expc<>+0x13c(SB)/4, $0x3c088908
DATA expc<>+0x140(SB)/4, $0x3d2aa9c1
DATA expc<>+0x144(SB)/4, $0x3d2aa9c1
DATA expc<>+0x148(SB)/4, $0x3d2aa9c1
DATA expc<>+0x14c(SB)/4, $0x3d2aa9c1
DATA expc<>+0x150(SB)/4, $0x3d2aa9c1
DATA expc<>+0x154(SB)/4, $0x3d2aa9c1
DATA expc<>+0x158(SB)/4, $0x3d2aa9c1
DATA expc<>+0x15c(SB)/4, $0x3d2aa9c1
DATA expc<>+0x160(SB)/4, $0x3e2aaaaa
DATA expc<>+0x164(SB)/4, $0x3e2aaaaa
DATA expc<>+0x168(SB)/4, $0x3e2aaaaa
DATA expc<>+0x16c(SB)/4, $0x3e2aaaaa
DATA expc<>+0x170(SB)/4, $0x3e2aaaaa
DATA expc<>+0x174(SB)/4, $0x3e2aaaaa
DATA expc<>+0x178(SB)/4, $0x3e2aaaaa
DATA expc<>+0x17c(SB)/4, $0x3e2aaaaa
DATA expc<>+0x180(SB)/4, $0x42fe0000
DATA expc<>+0x184(SB)/4, $0x42fe0000
DATA expc<>+0x188(SB)/4, $0x42fe0000
DATA expc<>+0x18c(SB)/4, $0x42fe0000
DATA expc<>+0x190(SB)/4, $0x42fe0000
DATA expc<>+0x194(SB)/4, $0x42fe0000
DATA expc<>+0x198(SB)/4, $0x42fe0000
DATA expc<>+0x19c(SB)/4, $0x42fe0000
DATA expc<>+0x1a0(SB)/4, $0x7f800000
DATA expc<>+0x1a4(SB)/4, $0x7f800000
DATA expc<>+0x1a8(SB)/4, $0x7f800000
DATA expc<>+0x1ac(SB)/4, $0x7f800000
DATA expc<>+0x1b0(SB)/4, $0x7f800000
DATA expc<>+0x1b4(SB)/4, $0x7f800000
DATA expc<>+0x1b8(SB)/4, $0x7f800000
DATA expc<>+0x1bc(SB)/4, $0x7f800000
GLOBL expc<>(SB), RODATA|NOPTR, $448

// func expAVX2(n8 int, x, out *float32)
//
// out[i] = e^x[i] for 8·n8 elements (x and out may be the same array), by
// Cephes' expf on eight lanes: with n = ⌊x·log2 e + 1/2⌋ and
// r = x - n·ln 2, e^x = 2^n · (1 + r + r²·P(r)), P of degree 5 (relative
// error about 1e-7). x is clamped to ±88.376 first: below, the result is 0
// (e^x < 2^-126, where the subnormal range is flushed); above, +Inf. NaN
// propagates.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ  n8+0(FP), CX
	MOVQ  x+8(FP), SI
	MOVQ  out+16(FP), DI
	TESTQ CX, CX
	JZ    expdone

exploop:
	VMOVUPS      (SI), Y0
	VMOVUPS      expc<>+0x000(SB), Y1
	VMINPS       Y0, Y1, Y0
	VMOVUPS      expc<>+0x020(SB), Y1
	VMAXPS       Y0, Y1, Y0
	VMOVUPS      expc<>+0x060(SB), Y1
	VFMADD231PS  expc<>+0x040(SB), Y0, Y1
	VROUNDPS     $1, Y1, Y1
	VFNMADD231PS expc<>+0x0a0(SB), Y1, Y0
	VFNMADD231PS expc<>+0x0c0(SB), Y1, Y0
	VMULPS       Y0, Y0, Y2
	VMOVUPS      expc<>+0x0e0(SB), Y3
	VFMADD213PS  expc<>+0x100(SB), Y0, Y3
	VFMADD213PS  expc<>+0x120(SB), Y0, Y3
	VFMADD213PS  expc<>+0x140(SB), Y0, Y3
	VFMADD213PS  expc<>+0x160(SB), Y0, Y3
	VFMADD213PS  expc<>+0x060(SB), Y0, Y3
	VFMADD213PS  Y0, Y2, Y3
	VADDPS       expc<>+0x080(SB), Y3, Y3
	VADDPS       expc<>+0x180(SB), Y1, Y1
	VCVTTPS2DQ   Y1, Y1
	VPSLLD       $23, Y1, Y1
	VMULPS       Y1, Y3, Y3
	VMOVUPS      (SI), Y4
	VCMPPS       $0x1e, expc<>+0x000(SB), Y4, Y5
	VBLENDVPS    Y5, expc<>+0x1a0(SB), Y3, Y3
	VMOVUPS      Y3, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DI
	DECQ         CX
	JNZ          exploop

expdone:
	VZEROUPPER
	RET

// func copyRowsAVX2(dst, src *float32, lds, rows, chunks int)
//
// packB's copy of whole panel rows: for r < rows, the 16·chunks values at
// src + r·lds (lds in elements) to dst + 16·chunks·r, 64 bytes (two YMM
// moves) at a time. rows and chunks are positive.
TEXT ·copyRowsAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R8
	SHLQ $2, R8
	MOVQ rows+24(FP), CX
	MOVQ chunks+32(FP), R9

crrow:
	MOVQ SI, AX
	MOVQ R9, DX

crchunk:
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, AX
	ADDQ    $64, DI
	DECQ    DX
	JNZ     crchunk
	ADDQ    R8, SI
	DECQ    CX
	JNZ     crrow
	VZEROUPPER
	RET
