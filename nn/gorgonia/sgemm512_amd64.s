//go:build amd64 && !purego

#include "textflag.h"

// The AVX-512 kernels of the GEMM (see "Kernel paths" in sgemm.go). Each
// computes every element of C with the instructions, operand order and
// summation order of its AVX2 counterpart in sgemm_amd64.s, only more of
// them at once in 512-bit registers, so the results are bitwise the same.

// WSUMARGS loads the arguments of wsum4x32AVX512 and wsum2x32AVX512:
// CX = k, SI = w, R8 = ldw, DI = V_0, R11 = V_1, R10 = ldv, AX = sv,
// DX = c, BX = ldc (strides in bytes); WSUMROW(W, V, A, B, T) adds w_r[p]·V_r[p] (w_r[p] at
// W, V_r[p] at register V) to the accumulators A, B through T; WSUMSTORE(A, B)
// stores them as the next row of c.
#define WSUMARGS \
	MOVQ k+0(FP), CX; \
	MOVQ w+8(FP), SI; \
	MOVQ ldw+16(FP), R8; \
	SHLQ $2, R8; \
	MOVQ v+24(FP), DI; \
	MOVQ ldv+32(FP), R10; \
	SHLQ $2, R10; \
	MOVQ sv+40(FP), AX; \
	SHLQ $2, AX; \
	LEAQ (DI)(AX*1), R11; \
	MOVQ c+48(FP), DX; \
	MOVQ ldc+56(FP), BX; \
	SHLQ $2, BX

#define WSUMROW(W, V, A, B, T) \
	VBROADCASTSS W, T; \
	VFMADD231PS  (V), T, A; \
	VFMADD231PS  64(V), T, B

// ZERO4 clears four vector registers.
#define ZERO4(A, B, C, D) \
	VPXORD A, A, A; \
	VPXORD B, B, B; \
	VPXORD C, C, C; \
	VPXORD D, D, D

#define WSUMSTORE(A, B) \
	VMOVUPS A, (DX); \
	VMOVUPS B, 64(DX); \
	ADDQ    BX, DX

// DOTPARGS loads the arguments of the packed dot tiles: R13 = n8, R14 =
// a, R8 = lda and R10 = ldc in bytes, DI = the packed b, BX = groups, DX =
// c.
#define DOTPARGS \
	VMOVUPS dotperm<>(SB), Z31; \
	MOVQ    n8+0(FP), R13; \
	MOVQ    a+8(FP), R14; \
	MOVQ    lda+16(FP), R8; \
	SHLQ    $2, R8; \
	MOVQ    b+24(FP), DI; \
	MOVQ    groups+32(FP), BX; \
	MOVQ    c+40(FP), DX; \
	MOVQ    ldc+48(FP), R10; \
	SHLQ    $2, R10

// APANELARGS loads the arguments every micro-kernel begins with (k, a,
// rsa, csa): CX = k, SI = row 0 of the A panel, R13 = its row stride and
// R14 its column stride in bytes, R12 = row 3.
#define APANELARGS \
	MOVQ k+0(FP), CX; \
	MOVQ a+8(FP), SI; \
	MOVQ rsa+16(FP), R13; \
	SHLQ $2, R13; \
	MOVQ csa+24(FP), R14; \
	SHLQ $2, R14; \
	LEAQ (R13)(R13*2), R12; \
	ADDQ SI, R12

// CTILEARGS loads the arguments that end the 6×32 and 6×64 kernels' (ldb,
// c, ldc, load, at the same offsets): R10 = B's row stride in bytes, DX =
// c, R8 = C's row stride in bytes, AX = load.
#define CTILEARGS \
	MOVQ    ldb+48(FP), R10; \
	SHLQ    $2, R10; \
	MOVQ    c+56(FP), DX; \
	MOVQ    ldc+64(FP), R8; \
	SHLQ    $2, R8; \
	MOVBQZX load+72(FP), AX

// One k step of the 6×32 tile: the 32 values of row p of B (two 16-column
// halves, at DI and R11) times the six values of column p of the A panel
// (rows 0..2 at SI + i·R13, rows 3..5 at R12 + (i-3)·R13), into the
// accumulators Z4..Z15 (row i: Z(4+2i) columns 0..15, Z(5+2i) columns
// 16..31), as kernelAVX2 does for 16 columns; then SI and R12 step to the
// next k by R14 bytes, DI and R11 by R10 (B's row stride).
#define STEP6X32 \
	VMOVUPS      (DI), Z0; \
	VMOVUPS      (R11), Z1; \
	VBROADCASTSS (SI), Z2; \
	VBROADCASTSS (SI)(R13*1), Z3; \
	VFMADD231PS  Z0, Z2, Z4; \
	VFMADD231PS  Z1, Z2, Z5; \
	VFMADD231PS  Z0, Z3, Z6; \
	VFMADD231PS  Z1, Z3, Z7; \
	VBROADCASTSS (SI)(R13*2), Z2; \
	VBROADCASTSS (R12), Z3; \
	VFMADD231PS  Z0, Z2, Z8; \
	VFMADD231PS  Z1, Z2, Z9; \
	VFMADD231PS  Z0, Z3, Z10; \
	VFMADD231PS  Z1, Z3, Z11; \
	VBROADCASTSS (R12)(R13*1), Z2; \
	VBROADCASTSS (R12)(R13*2), Z3; \
	VFMADD231PS  Z0, Z2, Z12; \
	VFMADD231PS  Z1, Z2, Z13; \
	VFMADD231PS  Z0, Z3, Z14; \
	VFMADD231PS  Z1, Z3, Z15; \
	ADDQ         R14, SI; \
	ADDQ         R14, R12; \
	ADDQ         R10, DI; \
	ADDQ         R10, R11

// One k step of the 6×16 tile: as STEP6X32 with one panel (at DI) and the
// accumulators Z4..Z9 (row i in Z(4+i)).
#define STEP6X16 \
	VMOVUPS      (DI), Z0; \
	VBROADCASTSS (SI), Z2; \
	VBROADCASTSS (SI)(R13*1), Z3; \
	VFMADD231PS  Z0, Z2, Z4; \
	VFMADD231PS  Z0, Z3, Z5; \
	VBROADCASTSS (SI)(R13*2), Z2; \
	VBROADCASTSS (R12), Z3; \
	VFMADD231PS  Z0, Z2, Z6; \
	VFMADD231PS  Z0, Z3, Z7; \
	VBROADCASTSS (R12)(R13*1), Z2; \
	VBROADCASTSS (R12)(R13*2), Z3; \
	VFMADD231PS  Z0, Z2, Z8; \
	VFMADD231PS  Z0, Z3, Z9; \
	ADDQ         R14, SI; \
	ADDQ         R14, R12; \
	ADDQ         R10, DI

// func kernel6x32AVX512(k int, a *float32, rsa, csa int, b0, b1 *float32, ldb int, c *float32, ldc int, load bool)
//
// The 6×32 micro-kernel: kernelAVX2's 6×16 tile twice over, for the
// columns of b0 (0..15) and b1 (16..31), both with row stride ldb, and
// with element (i, p) of the A panel at a[i·rsa + p·csa] (strides in
// elements: 1 and 6 packed, or A in place): twelve ZMM accumulators,
// Z4..Z15, one per row and half; every k step loads the two 16-value rows
// of B (Z0, Z1), broadcasts the six values of column p of A (Z2, Z3 in
// turn) and adds their products with fused multiply-adds. Each element of
// C is the same FMA chain over k in order as in kernelAVX2, started from C
// (load) or zero, and is stored back with row stride ldc (elements).
TEXT ·kernel6x32AVX512(SB), NOSPLIT, $0-73
	APANELARGS
	MOVQ    b0+32(FP), DI
	MOVQ    b1+40(FP), R11
	CTILEARGS
	ZERO4(Z4, Z5, Z6, Z7)
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	TESTQ AX, AX
	JZ    k32start
	MOVQ    DX, R9
	VMOVUPS (R9), Z4
	VMOVUPS 64(R9), Z5
	ADDQ    R8, R9
	VMOVUPS (R9), Z6
	VMOVUPS 64(R9), Z7
	ADDQ    R8, R9
	VMOVUPS (R9), Z8
	VMOVUPS 64(R9), Z9
	ADDQ    R8, R9
	VMOVUPS (R9), Z10
	VMOVUPS 64(R9), Z11
	ADDQ    R8, R9
	VMOVUPS (R9), Z12
	VMOVUPS 64(R9), Z13
	ADDQ    R8, R9
	VMOVUPS (R9), Z14
	VMOVUPS 64(R9), Z15

k32start:
	CMPQ CX, $2
	JL   k32tail

k32loop:
	STEP6X32
	STEP6X32
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  k32loop

k32tail:
	TESTQ CX, CX
	JZ    k32store
	STEP6X32

k32store:
	MOVQ    DX, R9
	VMOVUPS Z4, (R9)
	VMOVUPS Z5, 64(R9)
	ADDQ    R8, R9
	VMOVUPS Z6, (R9)
	VMOVUPS Z7, 64(R9)
	ADDQ    R8, R9
	VMOVUPS Z8, (R9)
	VMOVUPS Z9, 64(R9)
	ADDQ    R8, R9
	VMOVUPS Z10, (R9)
	VMOVUPS Z11, 64(R9)
	ADDQ    R8, R9
	VMOVUPS Z12, (R9)
	VMOVUPS Z13, 64(R9)
	ADDQ    R8, R9
	VMOVUPS Z14, (R9)
	VMOVUPS Z15, 64(R9)
	VZEROUPPER
	RET

// One k step of the 6×64 tile: the 64 values of row p of B (four
// 16-column panels at DI, DI + BX, DI + 2·BX and R11 + 2·BX, R11 = DI + BX)
// times the six values of column p of the A panel (as STEP6X32), into the
// accumulators Z8..Z31 (row i, panel q: Z(8+4i+q)), each product added with
// the FMA of STEP6X32 (VFMADD231PS B, a, acc); then SI and R12 step to the
// next k by R14 bytes, DI and R11 by R10 (B's row stride). ROW64(X, T, A,
// B, C, D) broadcasts A's value at X into T and adds its products with the
// four panels to the row's accumulators A..D.
#define ROW64(X, T, A, B, C, D) \
	VBROADCASTSS X, T; \
	VFMADD231PS  Z0, T, A; \
	VFMADD231PS  Z1, T, B; \
	VFMADD231PS  Z2, T, C; \
	VFMADD231PS  Z3, T, D

#define STEP6X64 \
	VMOVUPS (DI), Z0; \
	VMOVUPS (DI)(BX*1), Z1; \
	VMOVUPS (DI)(BX*2), Z2; \
	VMOVUPS (R11)(BX*2), Z3; \
	ROW64((SI), Z4, Z8, Z9, Z10, Z11); \
	ROW64((SI)(R13*1), Z5, Z12, Z13, Z14, Z15); \
	ROW64((SI)(R13*2), Z4, Z16, Z17, Z18, Z19); \
	ROW64((R12), Z5, Z20, Z21, Z22, Z23); \
	ROW64((R12)(R13*1), Z4, Z24, Z25, Z26, Z27); \
	ROW64((R12)(R13*2), Z5, Z28, Z29, Z30, Z31); \
	ADDQ    R14, SI; \
	ADDQ    R14, R12; \
	ADDQ    R10, DI; \
	ADDQ    R10, R11

// LOAD64(A, B, C, D) loads the row of 64 values at R9 into A..D and
// steps R9 to the next row (R8 bytes); STORE64 stores them.
#define LOAD64(A, B, C, D) \
	VMOVUPS (R9), A; \
	VMOVUPS 64(R9), B; \
	VMOVUPS 128(R9), C; \
	VMOVUPS 192(R9), D; \
	ADDQ    R8, R9

#define STORE64(A, B, C, D) \
	VMOVUPS A, (R9); \
	VMOVUPS B, 64(R9); \
	VMOVUPS C, 128(R9); \
	VMOVUPS D, 192(R9); \
	ADDQ    R8, R9

// func kernel6x64AVX512(k int, a *float32, rsa, csa int, b *float32, next, ldb int, c *float32, ldc int, load bool)
//
// The 6×64 micro-kernel: kernel6x32AVX512's tile twice over, for the
// columns of four 16-column panels of B starting next elements apart (row
// stride ldb), with 24 ZMM accumulators: every k step loads the four
// 16-value rows of B and broadcasts each of the six values of column p of
// A once for four FMAs instead of two (a block of a product measured
// 12–21% faster than with 6×32 tiles on a Xeon, whose A panel is read from
// L2). Each element of C is the same FMA chain over k in order as in the
// 6×32 and 6×16 kernels, started from C (load) or zero, so tiles of either
// width give the same bits.
TEXT ·kernel6x64AVX512(SB), NOSPLIT, $0-73
	APANELARGS
	MOVQ    b+32(FP), DI
	MOVQ    next+40(FP), BX
	SHLQ    $2, BX
	LEAQ    (DI)(BX*1), R11
	CTILEARGS
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	ZERO4(Z16, Z17, Z18, Z19)
	ZERO4(Z20, Z21, Z22, Z23)
	ZERO4(Z24, Z25, Z26, Z27)
	ZERO4(Z28, Z29, Z30, Z31)
	TESTQ AX, AX
	JZ    k64start
	MOVQ    DX, R9
	LOAD64(Z8, Z9, Z10, Z11)
	LOAD64(Z12, Z13, Z14, Z15)
	LOAD64(Z16, Z17, Z18, Z19)
	LOAD64(Z20, Z21, Z22, Z23)
	LOAD64(Z24, Z25, Z26, Z27)
	LOAD64(Z28, Z29, Z30, Z31)

k64start:
	TESTQ CX, CX
	JZ    k64store

k64loop:
	STEP6X64
	DECQ CX
	JNZ  k64loop

k64store:
	MOVQ    DX, R9
	STORE64(Z8, Z9, Z10, Z11)
	STORE64(Z12, Z13, Z14, Z15)
	STORE64(Z16, Z17, Z18, Z19)
	STORE64(Z20, Z21, Z22, Z23)
	STORE64(Z24, Z25, Z26, Z27)
	STORE64(Z28, Z29, Z30, Z31)
	VZEROUPPER
	RET

// func kernel6x16AVX512(k int, a *float32, rsa, csa int, b *float32, ldb int, c *float32, ldc int, load bool)
//
// The 6×16 micro-kernel for the columns a 6×32 tile cannot cover:
// kernel6x32AVX512 with one half, that is kernelAVX2B with one ZMM
// accumulator per row (Z4..Z9) instead of two YMM ones and the same FMA
// chain per element.
TEXT ·kernel6x16AVX512(SB), NOSPLIT, $0-65
	APANELARGS
	MOVQ    b+32(FP), DI
	MOVQ    ldb+40(FP), R10
	SHLQ    $2, R10
	MOVQ    c+48(FP), DX
	MOVQ    ldc+56(FP), R8
	SHLQ    $2, R8
	MOVBQZX load+64(FP), AX
	ZERO4(Z4, Z5, Z6, Z7)
	VPXORD  Z8, Z8, Z8
	VPXORD  Z9, Z9, Z9
	TESTQ AX, AX
	JZ    k16start
	MOVQ    DX, R9
	VMOVUPS (R9), Z4
	ADDQ    R8, R9
	VMOVUPS (R9), Z5
	ADDQ    R8, R9
	VMOVUPS (R9), Z6
	ADDQ    R8, R9
	VMOVUPS (R9), Z7
	ADDQ    R8, R9
	VMOVUPS (R9), Z8
	ADDQ    R8, R9
	VMOVUPS (R9), Z9

k16start:
	TESTQ CX, CX
	JZ    k16store

k16loop:
	STEP6X16
	DECQ CX
	JNZ  k16loop

k16store:
	MOVQ    DX, R9
	VMOVUPS Z4, (R9)
	ADDQ    R8, R9
	VMOVUPS Z5, (R9)
	ADDQ    R8, R9
	VMOVUPS Z6, (R9)
	ADDQ    R8, R9
	VMOVUPS Z7, (R9)
	ADDQ    R8, R9
	VMOVUPS Z8, (R9)
	ADDQ    R8, R9
	VMOVUPS Z9, (R9)
	VZEROUPPER
	RET

// The dot kernels hold the eight lane-wise partial sums of two products
// in one ZMM register, product 2q in the low 256 bits and 2q+1 in the
// high ones, and reduce them sixteen products at a time with the sums of
// HSUM (sgemm_amd64.s), ((x0+x4)+(x2+x6)) + ((x1+x5)+(x3+x7)), in the
// same order and with the same first operand, by whole-register shuffles.
// Products of register X are (c, d) and of Y (e, f) below.
//
// PAIRSUM: S = [c0+c4..c3+c7 | d0+d4.. | e0+e4.. | f0+f4..], one 128-bit
// lane per product (the low half of each product's lanes plus the high).
#define PAIRSUM(X, Y, S, T) \
	VSHUFF32X4 $0x88, Y, X, S; \
	VSHUFF32X4 $0xdd, Y, X, T; \
	VADDPS     T, S, S

// QUADSUM: from S0 (products 0..3, one per 128-bit lane g) and S1
// (products 4..7), U's lane g = [(t0+t2), (t1+t3) of product g; the same
// of product 4+g], t the four partial sums PAIRSUM left.
#define QUADSUM(S0, S1, U, T) \
	VSHUFPS $0x44, S1, S0, U; \
	VSHUFPS $0xee, S1, S0, T; \
	VADDPS  T, U, U

// FINALSUM: from U0 (products 0..7) and U1 (8..15), R's lane g = the sums
// of products g, 4+g, 8+g, 12+g.
#define FINALSUM(U0, U1, R, T) \
	VSHUFPS $0x88, U1, U0, R; \
	VSHUFPS $0xdd, U1, U0, T; \
	VADDPS  T, R, R

// REDUCE16 reduces the sixteen products of A0..A3, B0..B3 (products 0..7
// and 8..15, two per register) into A0, in order, with Z31 holding
// dotperm and Z24, Z25 as scratch; the other registers are overwritten.
#define REDUCE16(A0, A1, A2, A3, B0, B1, B2, B3) \
	PAIRSUM(A0, A1, Z24, Z25); \
	PAIRSUM(A2, A3, A0, A1);   \
	QUADSUM(Z24, A0, A1, A2);  \
	PAIRSUM(B0, B1, Z24, Z25); \
	PAIRSUM(B2, B3, B0, B1);   \
	QUADSUM(Z24, B0, B1, B2);  \
	FINALSUM(A1, B1, A0, A2);  \
	VPERMPS    A0, Z31, A0

// dotperm takes FINALSUM's lane 4g+e (product g+4e) to lane g+4e.
DATA dotperm<>+0x00(SB)/4, $0
DATA dotperm<>+0x04(SB)/4, $4
DATA dotperm<>+0x08(SB)/4, $8
DATA dotperm<>+0x0c(SB)/4, $12
DATA dotperm<>+0x10(SB)/4, $1
DATA dotperm<>+0x14(SB)/4, $5
DATA dotperm<>+0x18(SB)/4, $9
DATA dotperm<>+0x1c(SB)/4, $13
DATA dotperm<>+0x20(SB)/4, $2
DATA dotperm<>+0x24(SB)/4, $6
DATA dotperm<>+0x28(SB)/4, $10
DATA dotperm<>+0x2c(SB)/4, $14
DATA dotperm<>+0x30(SB)/4, $3
DATA dotperm<>+0x34(SB)/4, $7
DATA dotperm<>+0x38(SB)/4, $11
DATA dotperm<>+0x3c(SB)/4, $15
GLOBL dotperm<>(SB), RODATA|NOPTR, $64

// The shared parts of the dot tiles (dot6x8AVX512, dot4x8AVX512 and their
// packed twins). Registers: SI = row 0 of the tile's a (rows R8 bytes
// apart), R15 = row 3, Z24..Z27 the four pairs of b chunks of a k step,
// DX = the tile's c (rows R10 bytes apart), Z31 = dotperm.
//
// DOTPAIRS loads the pairs of b rows 2q, 2q+1 (q < 4) from b in place: b
// rows at AX (row 0), R11 (row 4), R9 bytes apart, R12 = 3·R9.
#define DOTPAIRS \
	VMOVUPS         (AX), Y24; \
	VINSERTF32X8    $1, (AX)(R9*1), Z24, Z24; \
	VMOVUPS         (AX)(R9*2), Y25; \
	VINSERTF32X8    $1, (AX)(R12*1), Z25, Z25; \
	VMOVUPS         (R11), Y26; \
	VINSERTF32X8    $1, (R11)(R9*1), Z26, Z26; \
	VMOVUPS         (R11)(R9*2), Y27; \
	VINSERTF32X8    $1, (R11)(R12*1), Z27, Z27

// DOTPACKED loads them from dotPackB's layout at DI (one 256-byte row
// per k step) and steps DI to the next.
#define DOTPACKED \
	VMOVUPS (DI), Z24; \
	VMOVUPS 64(DI), Z25; \
	VMOVUPS 128(DI), Z26; \
	VMOVUPS 192(DI), Z27; \
	ADDQ    $256, DI

// DOTROW(X, T, A, B, C, D) broadcasts the chunk of a at X to both halves
// of T and adds its products with the four pairs to A..D; DOTROWS does
// rows 0..3 into Z0..Z15, DOTROWS2 rows 4 and 5 into Z16..Z23.
#define DOTROW(X, T, A, B, C, D) \
	VBROADCASTF32X8 X, T; \
	VFMADD231PS     Z24, T, A; \
	VFMADD231PS     Z25, T, B; \
	VFMADD231PS     Z26, T, C; \
	VFMADD231PS     Z27, T, D

#define DOTROWS(A0, A1, A2, A3, B0, B1, B2, B3, C0, C1, C2, C3, D0, D1, D2, D3) \
	DOTROW((SI), Z28, A0, A1, A2, A3); \
	DOTROW((SI)(R8*1), Z29, B0, B1, B2, B3); \
	DOTROW((SI)(R8*2), Z28, C0, C1, C2, C3); \
	DOTROW((R15), Z29, D0, D1, D2, D3)

#define DOTROWS2(A0, A1, A2, A3, B0, B1, B2, B3) \
	DOTROW((R15)(R8*1), Z28, A0, A1, A2, A3); \
	DOTROW((R15)(R8*2), Z29, B0, B1, B2, B3)

// DOTSUM4 reduces rows 0..3 (Z0..Z15) and stores them as 8 values per row
// of c; SI = row 3 of c afterwards. DOTSUM2 does rows 4 and 5 (Z16..Z23).
#define DOTSUM4 \
	LEAQ          (R10)(R10*2), SI; \
	ADDQ          DX, SI; \
	REDUCE16(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7); \
	VMOVUPS       Y0, (DX); \
	VEXTRACTF32X8 $1, Z0, (DX)(R10*1); \
	REDUCE16(Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15); \
	VMOVUPS       Y8, (DX)(R10*2); \
	VEXTRACTF32X8 $1, Z8, (SI)

// DOTSTART points SI and R15 at rows 0 and 3 of the tile's a (R14) and
// CX at the k steps (R13).
#define DOTSTART \
	MOVQ R14, SI; \
	LEAQ (R8)(R8*2), R15; \
	ADDQ SI, R15; \
	MOVQ R13, CX

#define DOTSUM2 \
	REDUCE16(Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23); \
	VMOVUPS       Y16, (SI)(R10*1); \
	VEXTRACTF32X8 $1, Z16, (SI)(R10*2)

// func dot6x8AVX512(n8 int, a *float32, lda int, b *float32, ldb int, groups int, c *float32, ldc int)
//
// For g < groups, the dot products of 6 rows of a (row stride lda
// elements) with rows 8g..8g+7 of b (stride ldb) over their first 8·n8
// elements (n8 > 0): c[r·ldc + 8g + s] = a_r·b_{8g+s}, each with the
// lane-wise FMAs of dot4x3AVX2 and HSUM's reduction. Accumulators: Z(4r+q)
// holds row r's products with b rows 2q, 2q+1 (q < 4); every step loads
// those eight 8-value chunks of b in pairs (Z24..Z27) and broadcasts each
// row's chunk of a to both halves (Z28, Z29).
TEXT ·dot6x8AVX512(SB), NOSPLIT, $0-64
	VMOVUPS dotperm<>(SB), Z31
	MOVQ    n8+0(FP), R13
	MOVQ    a+8(FP), R14
	MOVQ    lda+16(FP), R8
	SHLQ    $2, R8
	MOVQ    b+24(FP), DI
	MOVQ    ldb+32(FP), R9
	SHLQ    $2, R9
	MOVQ    groups+40(FP), BX
	MOVQ    c+48(FP), DX
	MOVQ    ldc+56(FP), R10
	SHLQ    $2, R10
	LEAQ    (R9)(R9*2), R12

d68group:
	TESTQ BX, BX
	JZ    d68end
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	ZERO4(Z16, Z17, Z18, Z19)
	ZERO4(Z20, Z21, Z22, Z23)
	DOTSTART
	MOVQ  DI, AX
	LEAQ  (DI)(R9*4), R11
	TESTQ CX, CX
	JZ    d68sum

d68loop:
	DOTPAIRS
	DOTROWS(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	DOTROWS2(Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23)
	ADDQ            $32, SI
	ADDQ            $32, R15
	ADDQ            $32, AX
	ADDQ            $32, R11
	DECQ            CX
	JNZ             d68loop

d68sum:
	DOTSUM4
	DOTSUM2

	ADDQ $32, DX
	LEAQ (DI)(R9*8), DI
	DECQ BX
	JMP  d68group

d68end:
	VZEROUPPER
	RET

// func dot1x16AVX512(n8 int, a *float32, b *float32, ldb int, groups int, c *float32)
//
// For g < groups, the dot products of one row a with rows 16g..16g+15 of
// b (stride ldb elements) over their first 8·n8 elements, into c[16g+s],
// with the arithmetic of dot6x8AVX512: accumulator Zq holds the products
// with b rows 2q, 2q+1 (q < 8), loaded in pairs into Z16..Z23, and Z24 the
// chunk of a in both halves.
TEXT ·dot1x16AVX512(SB), NOSPLIT, $0-48
	VMOVUPS dotperm<>(SB), Z31
	MOVQ    n8+0(FP), R13
	MOVQ    a+8(FP), R14
	MOVQ    b+16(FP), DI
	MOVQ    ldb+24(FP), R9
	SHLQ    $2, R9
	MOVQ    groups+32(FP), BX
	MOVQ    c+40(FP), DX
	LEAQ    (R9)(R9*2), R10

d116group:
	TESTQ BX, BX
	JZ    d116end
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)
	MOVQ  R14, SI
	MOVQ  DI, AX
	LEAQ  (DI)(R9*4), R11
	LEAQ  (R11)(R9*4), R12
	LEAQ  (R12)(R9*4), R15
	MOVQ  R13, CX
	TESTQ CX, CX
	JZ    d116sum

d116loop:
	VBROADCASTF32X8 (SI), Z24
	VMOVUPS         (AX), Y16
	VINSERTF32X8    $1, (AX)(R9*1), Z16, Z16
	VFMADD231PS     Z16, Z24, Z0
	VMOVUPS         (AX)(R9*2), Y17
	VINSERTF32X8    $1, (AX)(R10*1), Z17, Z17
	VFMADD231PS     Z17, Z24, Z1
	VMOVUPS         (R11), Y18
	VINSERTF32X8    $1, (R11)(R9*1), Z18, Z18
	VFMADD231PS     Z18, Z24, Z2
	VMOVUPS         (R11)(R9*2), Y19
	VINSERTF32X8    $1, (R11)(R10*1), Z19, Z19
	VFMADD231PS     Z19, Z24, Z3
	VMOVUPS         (R12), Y20
	VINSERTF32X8    $1, (R12)(R9*1), Z20, Z20
	VFMADD231PS     Z20, Z24, Z4
	VMOVUPS         (R12)(R9*2), Y21
	VINSERTF32X8    $1, (R12)(R10*1), Z21, Z21
	VFMADD231PS     Z21, Z24, Z5
	VMOVUPS         (R15), Y22
	VINSERTF32X8    $1, (R15)(R9*1), Z22, Z22
	VFMADD231PS     Z22, Z24, Z6
	VMOVUPS         (R15)(R9*2), Y23
	VINSERTF32X8    $1, (R15)(R10*1), Z23, Z23
	VFMADD231PS     Z23, Z24, Z7
	ADDQ            $32, SI
	ADDQ            $32, AX
	ADDQ            $32, R11
	ADDQ            $32, R12
	ADDQ            $32, R15
	DECQ            CX
	JNZ             d116loop

d116sum:
	REDUCE16(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	VMOVUPS Z0, (DX)

	ADDQ $64, DX
	LEAQ (DI)(R9*8), DI
	LEAQ (DI)(R9*8), DI
	DECQ BX
	JMP  d116group

d116end:
	VZEROUPPER
	RET

// func dot4x8AVX512(n8 int, a *float32, lda int, b *float32, ldb int, groups int, c *float32, ldc int)
//
// dot6x8AVX512 for 4 rows of a: the same loads, FMAs (accumulators
// Z0..Z15, Z(4r+q) for row r and b rows 2q, 2q+1) and reductions, for
// the tiles that the 6-row one leaves (see dotLaneSums).
TEXT ·dot4x8AVX512(SB), NOSPLIT, $0-64
	VMOVUPS dotperm<>(SB), Z31
	MOVQ    n8+0(FP), R13
	MOVQ    a+8(FP), R14
	MOVQ    lda+16(FP), R8
	SHLQ    $2, R8
	MOVQ    b+24(FP), DI
	MOVQ    ldb+32(FP), R9
	SHLQ    $2, R9
	MOVQ    groups+40(FP), BX
	MOVQ    c+48(FP), DX
	MOVQ    ldc+56(FP), R10
	SHLQ    $2, R10
	LEAQ    (R9)(R9*2), R12

d48group:
	TESTQ BX, BX
	JZ    d48end
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	DOTSTART
	MOVQ  DI, AX
	LEAQ  (DI)(R9*4), R11
	TESTQ CX, CX
	JZ    d48sum

d48loop:
	DOTPAIRS
	DOTROWS(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ            $32, SI
	ADDQ            $32, R15
	ADDQ            $32, AX
	ADDQ            $32, R11
	DECQ            CX
	JNZ             d48loop

d48sum:
	DOTSUM4

	ADDQ $32, DX
	LEAQ (DI)(R9*8), DI
	DECQ BX
	JMP  d48group

d48end:
	VZEROUPPER
	RET

// func dot6x8pAVX512(n8 int, a *float32, lda int, b *float32, groups int, c *float32, ldc int)
//
// dot6x8AVX512 with b's groups of 8 rows packed by dotPackB (n8 > 0): the
// pairs of each k step are one contiguous 256-byte row, loaded without the
// inserts that share a port with the FMAs on Intel cores, and the groups
// follow one another. The same FMAs in the same order and the same
// reductions, so the same bits.
TEXT ·dot6x8pAVX512(SB), NOSPLIT, $0-56
	DOTPARGS

d68pgroup:
	TESTQ BX, BX
	JZ    d68pend
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	ZERO4(Z16, Z17, Z18, Z19)
	ZERO4(Z20, Z21, Z22, Z23)
	DOTSTART

d68ploop:
	DOTPACKED
	DOTROWS(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	DOTROWS2(Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23)
	ADDQ $32, SI
	ADDQ $32, R15
	DECQ CX
	JNZ  d68ploop
	DOTSUM4
	DOTSUM2
	ADDQ $32, DX
	DECQ BX
	JMP  d68pgroup

d68pend:
	VZEROUPPER
	RET

// func dot4x8pAVX512(n8 int, a *float32, lda int, b *float32, groups int, c *float32, ldc int)
//
// dot6x8pAVX512 for 4 rows of a (as dot4x8AVX512).
TEXT ·dot4x8pAVX512(SB), NOSPLIT, $0-56
	DOTPARGS

d48pgroup:
	TESTQ BX, BX
	JZ    d48pend
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)
	ZERO4(Z8, Z9, Z10, Z11)
	ZERO4(Z12, Z13, Z14, Z15)
	DOTSTART

d48ploop:
	DOTPACKED
	DOTROWS(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ $32, SI
	ADDQ $32, R15
	DECQ CX
	JNZ  d48ploop
	DOTSUM4
	ADDQ $32, DX
	DECQ BX
	JMP  d48pgroup

d48pend:
	VZEROUPPER
	RET

// func dotPackAVX512(dst, b *float32, ldb, groups, k8 int)
//
// dotPackB: for g < groups and p < k8, the pairs of b rows 8g+2q, 8g+2q+1
// (row stride ldb) of k step p, as DOTPAIRS loads them, stored side by
// side at dst + 64·(g·k8 + p) values (k8 > 0).
TEXT ·dotPackAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ ldb+16(FP), R9
	SHLQ $2, R9
	MOVQ groups+24(FP), BX
	MOVQ k8+32(FP), R13
	LEAQ (R9)(R9*2), R12

dpgroup:
	TESTQ BX, BX
	JZ    dpend
	MOVQ  SI, AX
	LEAQ  (SI)(R9*4), R11
	MOVQ  R13, CX

dploop:
	DOTPAIRS
	VMOVUPS Z24, (DI)
	VMOVUPS Z25, 64(DI)
	VMOVUPS Z26, 128(DI)
	VMOVUPS Z27, 192(DI)
	ADDQ    $32, AX
	ADDQ    $32, R11
	ADDQ    $256, DI
	DECQ    CX
	JNZ     dploop
	LEAQ    (SI)(R9*8), SI
	DECQ    BX
	JMP     dpgroup

dpend:
	VZEROUPPER
	RET

// func wsum4x32AVX512(k int, w *float32, ldw int, v *float32, ldv, sv int, c *float32, ldc int)
//
// Four weighted sums of k rows at once, the m = 1 products w_r·V_r of
// CacheAttention: for r < 4, row r of c (at c + r·ldc) gets the first 32
// columns of Σ_p w_r[p]·V_r[p], where w_r starts at w + r·ldw and row p of
// V_r at v + r·sv + p·ldv (strides in elements, k > 0). Each element is the
// FMA chain over p in order from zero of kernel6x32AVX512 (and kernelAVX2),
// so the bits are those of the packed product; eight independent chains
// (Z0..Z7: item r's columns 0..15 and 16..31 in Z(2r), Z(2r+1)) hide the
// FMA latency that one item's two chains would wait on.
TEXT ·wsum4x32AVX512(SB), NOSPLIT, $0-64
	WSUMARGS
	LEAQ   (R8)(R8*2), R9
	ADDQ   SI, R9
	LEAQ   (R11)(AX*1), R12
	LEAQ   (R12)(AX*1), R13
	ZERO4(Z0, Z1, Z2, Z3)
	ZERO4(Z4, Z5, Z6, Z7)

ws4loop:
	WSUMROW((SI), DI, Z0, Z1, Z16)
	WSUMROW((SI)(R8*1), R11, Z2, Z3, Z17)
	WSUMROW((SI)(R8*2), R12, Z4, Z5, Z18)
	WSUMROW((R9), R13, Z6, Z7, Z19)
	ADDQ $4, SI
	ADDQ $4, R9
	ADDQ R10, DI
	ADDQ R10, R11
	ADDQ R10, R12
	ADDQ R10, R13
	DECQ CX
	JNZ  ws4loop

	WSUMSTORE(Z0, Z1)
	WSUMSTORE(Z2, Z3)
	WSUMSTORE(Z4, Z5)
	WSUMSTORE(Z6, Z7)
	VZEROUPPER
	RET

// func wsum2x32AVX512(k int, w *float32, ldw int, v *float32, ldv, sv int, c *float32, ldc int)
//
// wsum4x32AVX512 for two rows (r < 2): the same FMA chain per element, four
// independent chains (Z0..Z3) instead of eight.
TEXT ·wsum2x32AVX512(SB), NOSPLIT, $0-64
	WSUMARGS
	ZERO4(Z0, Z1, Z2, Z3)

ws2loop:
	WSUMROW((SI), DI, Z0, Z1, Z16)
	WSUMROW((SI)(R8*1), R11, Z2, Z3, Z17)
	ADDQ $4, SI
	ADDQ R10, DI
	ADDQ R10, R11
	DECQ CX
	JNZ  ws2loop

	WSUMSTORE(Z0, Z1)
	WSUMSTORE(Z2, Z3)
	VZEROUPPER
	RET
