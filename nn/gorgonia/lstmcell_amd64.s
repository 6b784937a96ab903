//go:build amd64 && !purego

#include "textflag.h"

// The fused LSTM cell's element-wise loops (lstmCellState, lstmCellOut
// and lstmCellBackward in lstm.go) on eight lanes (AVX) and on sixteen
// (AVX-512 F). Each lane performs the Go loop's operations: every product,
// sum and difference is its own VMULPS, VADDPS or VSUBPS (no FMA, as the
// Go code's float32 conversions forbid fusing), in the Go source's order
// and with its left operand as the first source, so every result has the
// Go code's bits (a NaN result is NaN; its payload, which depends on
// which operand the hardware propagates, is unspecified as for the
// activation kernels: the Go compiler itself orders a product's operands
// freely). The last n mod 8 (16) elements go through masked loads and
// stores (mask Y14, K2), the masked-off lanes computing on zeros.

// The constant 1, broadcast into Y15 or Z15.
DATA lstmone<>+0(SB)/4, $0x3f800000
GLOBL lstmone<>(SB), RODATA|NOPTR, $4

// Eight all-ones lanes, then eight zeros: the 32 bytes at 32-4r select the
// first r lanes (VMASKMOVPS) for a tail of r < 8 elements.
DATA lstmmask<>+0x00(SB)/8, $-1
DATA lstmmask<>+0x08(SB)/8, $-1
DATA lstmmask<>+0x10(SB)/8, $-1
DATA lstmmask<>+0x18(SB)/8, $-1
DATA lstmmask<>+0x20(SB)/8, $0
DATA lstmmask<>+0x28(SB)/8, $0
DATA lstmmask<>+0x30(SB)/8, $0
DATA lstmmask<>+0x38(SB)/8, $0
GLOBL lstmmask<>(SB), RODATA|NOPTR, $64

// TAILMASK8 sets Y14 to the VMASKMOVPS mask of the first CX < 8 lanes
// (clobbers CX and AX).
#define TAILMASK8 \
	NEGQ    CX \
	LEAQ    lstmmask<>+32(SB), AX \
	VMOVUPS (AX)(CX*4), Y14

// TAILMASK16 sets K2 to the first CX < 16 lanes (clobbers AX).
#define TAILMASK16 \
	MOVL  $1, AX \
	SHLL  CX, AX \
	DECL  AX \
	KMOVW AX, K2

// The backward kernels walk rows of hd elements: AX points at σ(i) of
// the current element in acts, whose blocks σ(f), tanh(g), σ(o), tanh(c')
// follow at R8, 2·R8, R9 = 3·R8 and 4·R8 bytes (R8 = 4·bh); BX, CX, DX
// and DI at the element of c, dh, dc2 and dc; SI at its di in dgates, whose
// df, dg and do follow at R10, 2·R10 and R11 = 3·R10 bytes (R10 = 4·hd).
// R12 counts the rows left, R13 the elements of the row.

// BACK8 is one block of eight lanes of lstmCellBackward from Y0 = σ(i),
// Y1 = σ(f), Y2 = tanh(g), Y3 = σ(o), Y4 = tanh(c'), Y5 = c, Y6 = dh,
// Y7 = dc2 (Y15 = 1): Y7 = d, and the results di, df, dg, do, dc in
// Y8 … Y12. Each line is one rounded operation of the Go code.
#define BACK8 \
	VMULPS Y3, Y6, Y8 /* dtc = dh·o */ \
	VMULPS Y4, Y4, Y9 /* t·t */ \
	VSUBPS Y9, Y15, Y9 /* 1 - t·t */ \
	VMULPS Y9, Y8, Y8 /* dtc·(1-t·t) */ \
	VADDPS Y8, Y7, Y7 /* d = dc2 + dtc·(1-t·t) */ \
	VMULPS Y2, Y7, Y8 /* d·g */ \
	VMULPS Y0, Y8, Y8 /* (d·g)·i */ \
	VSUBPS Y0, Y15, Y9 /* 1 - i */ \
	VMULPS Y9, Y8, Y8 /* di = (d·g)·i·(1-i) */ \
	VMULPS Y5, Y7, Y9 /* d·c */ \
	VMULPS Y1, Y9, Y9 /* (d·c)·f */ \
	VSUBPS Y1, Y15, Y10 /* 1 - f */ \
	VMULPS Y10, Y9, Y9 /* df = (d·c)·f·(1-f) */ \
	VMULPS Y0, Y7, Y10 /* d·i */ \
	VMULPS Y2, Y2, Y11 /* g·g */ \
	VSUBPS Y11, Y15, Y11 /* 1 - g·g */ \
	VMULPS Y11, Y10, Y10 /* dg = (d·i)·(1-g·g) */ \
	VMULPS Y4, Y6, Y11 /* dh·t */ \
	VMULPS Y3, Y11, Y11 /* (dh·t)·o */ \
	VSUBPS Y3, Y15, Y12 /* 1 - o */ \
	VMULPS Y12, Y11, Y11 /* do = (dh·t)·o·(1-o) */ \
	VMULPS Y1, Y7, Y12 /* dc = d·f */

// BACK16 is BACK8 on sixteen lanes (Z registers).
#define BACK16 \
	VMULPS Z3, Z6, Z8 \
	VMULPS Z4, Z4, Z9 \
	VSUBPS Z9, Z15, Z9 \
	VMULPS Z9, Z8, Z8 \
	VADDPS Z8, Z7, Z7 \
	VMULPS Z2, Z7, Z8 \
	VMULPS Z0, Z8, Z8 \
	VSUBPS Z0, Z15, Z9 \
	VMULPS Z9, Z8, Z8 \
	VMULPS Z5, Z7, Z9 \
	VMULPS Z1, Z9, Z9 \
	VSUBPS Z1, Z15, Z10 \
	VMULPS Z10, Z9, Z9 \
	VMULPS Z0, Z7, Z10 \
	VMULPS Z2, Z2, Z11 \
	VSUBPS Z11, Z15, Z11 \
	VMULPS Z11, Z10, Z10 \
	VMULPS Z4, Z6, Z11 \
	VMULPS Z3, Z11, Z11 \
	VSUBPS Z3, Z15, Z12 \
	VMULPS Z12, Z11, Z11 \
	VMULPS Z1, Z7, Z12

// LOADBACK8 (LOADBACK16) loads BACK8's (BACK16's) inputs, STOREBACK8
// (STOREBACK16) stores its results; the …M variants load and store only
// the tail's lanes (mask Y14, K2), loading zeros into the others.
#define LOADBACK8 \
	VMOVUPS (AX), Y0 \
	VMOVUPS (AX)(R8*1), Y1 \
	VMOVUPS (AX)(R8*2), Y2 \
	VMOVUPS (AX)(R9*1), Y3 \
	VMOVUPS (AX)(R8*4), Y4 \
	VMOVUPS (BX), Y5 \
	VMOVUPS (CX), Y6 \
	VMOVUPS (DX), Y7

#define STOREBACK8 \
	VMOVUPS Y8, (SI) \
	VMOVUPS Y9, (SI)(R10*1) \
	VMOVUPS Y10, (SI)(R10*2) \
	VMOVUPS Y11, (SI)(R11*1) \
	VMOVUPS Y12, (DI)

#define LOADBACK8M \
	VMASKMOVPS (AX), Y14, Y0 \
	VMASKMOVPS (AX)(R8*1), Y14, Y1 \
	VMASKMOVPS (AX)(R8*2), Y14, Y2 \
	VMASKMOVPS (AX)(R9*1), Y14, Y3 \
	VMASKMOVPS (AX)(R8*4), Y14, Y4 \
	VMASKMOVPS (BX), Y14, Y5 \
	VMASKMOVPS (CX), Y14, Y6 \
	VMASKMOVPS (DX), Y14, Y7

#define STOREBACK8M \
	VMASKMOVPS Y8, Y14, (SI) \
	VMASKMOVPS Y9, Y14, (SI)(R10*1) \
	VMASKMOVPS Y10, Y14, (SI)(R10*2) \
	VMASKMOVPS Y11, Y14, (SI)(R11*1) \
	VMASKMOVPS Y12, Y14, (DI)

#define LOADBACK16 \
	VMOVUPS (AX), Z0 \
	VMOVUPS (AX)(R8*1), Z1 \
	VMOVUPS (AX)(R8*2), Z2 \
	VMOVUPS (AX)(R9*1), Z3 \
	VMOVUPS (AX)(R8*4), Z4 \
	VMOVUPS (BX), Z5 \
	VMOVUPS (CX), Z6 \
	VMOVUPS (DX), Z7

#define STOREBACK16 \
	VMOVUPS Z8, (SI) \
	VMOVUPS Z9, (SI)(R10*1) \
	VMOVUPS Z10, (SI)(R10*2) \
	VMOVUPS Z11, (SI)(R11*1) \
	VMOVUPS Z12, (DI)

#define LOADBACK16M \
	VMOVUPS.Z (AX), K2, Z0 \
	VMOVUPS.Z (AX)(R8*1), K2, Z1 \
	VMOVUPS.Z (AX)(R8*2), K2, Z2 \
	VMOVUPS.Z (AX)(R9*1), K2, Z3 \
	VMOVUPS.Z (AX)(R8*4), K2, Z4 \
	VMOVUPS.Z (BX), K2, Z5 \
	VMOVUPS.Z (CX), K2, Z6 \
	VMOVUPS.Z (DX), K2, Z7

#define STOREBACK16M \
	VMOVUPS Z8, K2, (SI) \
	VMOVUPS Z9, K2, (SI)(R10*1) \
	VMOVUPS Z10, K2, (SI)(R10*2) \
	VMOVUPS Z11, K2, (SI)(R11*1) \
	VMOVUPS Z12, K2, (DI)

// BACKARGS loads the backward kernels' arguments into the registers
// described above.
#define BACKARGS \
	MOVQ rows+0(FP), R12 \
	MOVQ bh+16(FP), R8 \
	SHLQ $2, R8 \
	LEAQ (R8)(R8*2), R9 \
	MOVQ hd+8(FP), R10 \
	SHLQ $2, R10 \
	LEAQ (R10)(R10*2), R11 \
	MOVQ acts+24(FP), AX \
	MOVQ c+32(FP), BX \
	MOVQ dh+40(FP), CX \
	MOVQ dc2+48(FP), DX \
	MOVQ dgates+56(FP), SI \
	MOVQ dc+64(FP), DI

// ADVANCE(n) steps the element pointers n bytes on.
#define ADVANCE(n) \
	ADDQ n, AX \
	ADDQ n, BX \
	ADDQ n, CX \
	ADDQ n, DX \
	ADDQ n, SI \
	ADDQ n, DI

// func lstmStateAVX2(n int, f, c, i, tg, out *float32)
//
// out = f·c + i·tg, as lstmCellState: Y0 = f·c, Y1 = i·tg, Y0 + Y1. CX
// counts the elements left; SI, DI, R8, R9 and R10 walk f, c, i, tg, out.
TEXT ·lstmStateAVX2(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ f+8(FP), SI
	MOVQ c+16(FP), DI
	MOVQ i+24(FP), R8
	MOVQ tg+32(FP), R9
	MOVQ out+40(FP), R10
	SUBQ $8, CX
	JL   state8tail

state8loop:
	VMOVUPS (SI), Y0
	VMULPS  (DI), Y0, Y0
	VMOVUPS (R8), Y1
	VMULPS  (R9), Y1, Y1
	VADDPS  Y1, Y0, Y0
	VMOVUPS Y0, (R10)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	ADDQ    $32, R9
	ADDQ    $32, R10
	SUBQ    $8, CX
	JGE     state8loop

state8tail:
	ADDQ       $8, CX
	JZ         state8done
	TAILMASK8
	VMASKMOVPS (SI), Y14, Y0
	VMASKMOVPS (DI), Y14, Y2
	VMASKMOVPS (R8), Y14, Y1
	VMASKMOVPS (R9), Y14, Y3
	VMULPS     Y2, Y0, Y0
	VMULPS     Y3, Y1, Y1
	VADDPS     Y1, Y0, Y0
	VMASKMOVPS Y0, Y14, (R10)

state8done:
	VZEROUPPER
	RET

// func lstmStateAVX512(n int, f, c, i, tg, out *float32)
//
// lstmStateAVX2 on sixteen lanes.
TEXT ·lstmStateAVX512(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ f+8(FP), SI
	MOVQ c+16(FP), DI
	MOVQ i+24(FP), R8
	MOVQ tg+32(FP), R9
	MOVQ out+40(FP), R10
	SUBQ $16, CX
	JL   state16tail

state16loop:
	VMOVUPS (SI), Z0
	VMULPS  (DI), Z0, Z0
	VMOVUPS (R8), Z1
	VMULPS  (R9), Z1, Z1
	VADDPS  Z1, Z0, Z0
	VMOVUPS Z0, (R10)
	ADDQ    $64, SI
	ADDQ    $64, DI
	ADDQ    $64, R8
	ADDQ    $64, R9
	ADDQ    $64, R10
	SUBQ    $16, CX
	JGE     state16loop

state16tail:
	ADDQ      $16, CX
	JZ        state16done
	TAILMASK16
	VMOVUPS.Z (SI), K2, Z0
	VMOVUPS.Z (DI), K2, Z2
	VMOVUPS.Z (R8), K2, Z1
	VMOVUPS.Z (R9), K2, Z3
	VMULPS    Z2, Z0, Z0
	VMULPS    Z3, Z1, Z1
	VADDPS    Z1, Z0, Z0
	VMOVUPS   Z0, K2, (R10)

state16done:
	VZEROUPPER
	RET

// func lstmOutAVX2(n int, o, t, out *float32)
//
// out = o·t, as lstmCellOut. CX counts the elements left; SI, DI and R8
// walk o, t and out.
TEXT ·lstmOutAVX2(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ o+8(FP), SI
	MOVQ t+16(FP), DI
	MOVQ out+24(FP), R8
	SUBQ $8, CX
	JL   out8tail

out8loop:
	VMOVUPS (SI), Y0
	VMULPS  (DI), Y0, Y0
	VMOVUPS Y0, (R8)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	SUBQ    $8, CX
	JGE     out8loop

out8tail:
	ADDQ       $8, CX
	JZ         out8done
	TAILMASK8
	VMASKMOVPS (SI), Y14, Y0
	VMASKMOVPS (DI), Y14, Y1
	VMULPS     Y1, Y0, Y0
	VMASKMOVPS Y0, Y14, (R8)

out8done:
	VZEROUPPER
	RET

// func lstmOutAVX512(n int, o, t, out *float32)
//
// lstmOutAVX2 on sixteen lanes.
TEXT ·lstmOutAVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ o+8(FP), SI
	MOVQ t+16(FP), DI
	MOVQ out+24(FP), R8
	SUBQ $16, CX
	JL   out16tail

out16loop:
	VMOVUPS (SI), Z0
	VMULPS  (DI), Z0, Z0
	VMOVUPS Z0, (R8)
	ADDQ    $64, SI
	ADDQ    $64, DI
	ADDQ    $64, R8
	SUBQ    $16, CX
	JGE     out16loop

out16tail:
	ADDQ      $16, CX
	JZ        out16done
	TAILMASK16
	VMOVUPS.Z (SI), K2, Z0
	VMOVUPS.Z (DI), K2, Z1
	VMULPS    Z1, Z0, Z0
	VMOVUPS   Z0, K2, (R8)

out16done:
	VZEROUPPER
	RET

// func lstmBackAVX2(rows, hd, bh int, acts, c, dh, dc2, dgates, dc *float32)
//
// lstmCellBackward's rows rows from the element at acts, c, dh, dc2 and
// dc and its row at dgates, on eight lanes; registers as above. The row
// tail's mask is set once, in Y14.
TEXT ·lstmBackAVX2(SB), NOSPLIT, $0-72
	MOVQ hd+8(FP), CX
	ANDQ $7, CX
	TAILMASK8
	VBROADCASTSS lstmone<>(SB), Y15
	BACKARGS

back8row:
	MOVQ hd+8(FP), R13
	SUBQ $8, R13
	JL   back8tail

back8loop:
	LOADBACK8
	BACK8
	STOREBACK8
	ADVANCE($32)
	SUBQ $8, R13
	JGE  back8loop

back8tail:
	ADDQ $8, R13
	JZ   back8next
	LOADBACK8M
	BACK8
	STOREBACK8M
	SHLQ $2, R13
	ADVANCE(R13)

back8next:
	ADDQ R11, SI // past the row's df, dg and do
	DECQ R12
	JNZ  back8row
	VZEROUPPER
	RET

// func lstmBackAVX512(rows, hd, bh int, acts, c, dh, dc2, dgates, dc *float32)
//
// lstmBackAVX2 on sixteen lanes, the row tail's mask in K2.
TEXT ·lstmBackAVX512(SB), NOSPLIT, $0-72
	MOVQ hd+8(FP), CX
	ANDQ $15, CX
	TAILMASK16
	VBROADCASTSS lstmone<>(SB), Z15
	BACKARGS

back16row:
	MOVQ hd+8(FP), R13
	SUBQ $16, R13
	JL   back16tail

back16loop:
	LOADBACK16
	BACK16
	STOREBACK16
	ADVANCE($64)
	SUBQ $16, R13
	JGE  back16loop

back16tail:
	ADDQ $16, R13
	JZ   back16next
	LOADBACK16M
	BACK16
	STOREBACK16M
	SHLQ $2, R13
	ADVANCE(R13)

back16next:
	ADDQ R11, SI // past the row's df, dg and do
	DECQ R12
	JNZ  back16row
	VZEROUPPER
	RET
