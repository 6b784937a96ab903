//go:build amd64 && !purego

#include "textflag.h"

// Element-wise kernels of binary (kernels.go): out[i] = a[i] op b[i],
// one IEEE single-precision operation per element with a as the first
// operand, as the Go loop computes it, so every width gives the same
// bits. The sixteen-lane kernels (AVX-512 F) take any n, the last n mod 16
// elements under a mask; the eight-lane ones (AVX) take n8 blocks of 8.

// func addAVX512(n int, a, b, out *float32): out = a + b.
TEXT ·addAVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), R8
	MOVQ out+24(FP), DI
	SUBQ $32, CX
	JL   add16one

add16loop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS (R8), Z2
	VMOVUPS 64(R8), Z3
	VADDPS  Z2, Z0, Z0
	VADDPS  Z3, Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ    $128, SI
	ADDQ    $128, R8
	ADDQ    $128, DI
	SUBQ    $32, CX
	JGE     add16loop

add16one:
	ADDQ $16, CX
	JL   add16tail
	VMOVUPS (SI), Z0
	VMOVUPS (R8), Z2
	VADDPS  Z2, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, DI
	SUBQ    $16, CX

add16tail:
	ADDQ      $16, CX
	JZ        add16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R8), K1, Z2
	VADDPS     Z2, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

add16done:
	VZEROUPPER
	RET

// func addAVX2(n8 int, a, b, out *float32): out = a + b for 8·n8 elements.
TEXT ·addAVX2(SB), NOSPLIT, $0-32
	MOVQ n8+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), R8
	MOVQ out+24(FP), DI
	TESTQ CX, CX
	JZ    add8done

add8loop:
	VMOVUPS (SI), Y0
	VMOVUPS (R8), Y2
	VADDPS  Y2, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, R8
	ADDQ    $32, DI
	DECQ    CX
	JNZ     add8loop

add8done:
	VZEROUPPER
	RET

// func subAVX512(n int, a, b, out *float32): out = a - b.
TEXT ·subAVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), R8
	MOVQ out+24(FP), DI
	SUBQ $32, CX
	JL   sub16one

sub16loop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS (R8), Z2
	VMOVUPS 64(R8), Z3
	VSUBPS  Z2, Z0, Z0
	VSUBPS  Z3, Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ    $128, SI
	ADDQ    $128, R8
	ADDQ    $128, DI
	SUBQ    $32, CX
	JGE     sub16loop

sub16one:
	ADDQ $16, CX
	JL   sub16tail
	VMOVUPS (SI), Z0
	VMOVUPS (R8), Z2
	VSUBPS  Z2, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, DI
	SUBQ    $16, CX

sub16tail:
	ADDQ      $16, CX
	JZ        sub16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R8), K1, Z2
	VSUBPS     Z2, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

sub16done:
	VZEROUPPER
	RET

// func subAVX2(n8 int, a, b, out *float32): out = a - b for 8·n8 elements.
TEXT ·subAVX2(SB), NOSPLIT, $0-32
	MOVQ n8+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), R8
	MOVQ out+24(FP), DI
	TESTQ CX, CX
	JZ    sub8done

sub8loop:
	VMOVUPS (SI), Y0
	VMOVUPS (R8), Y2
	VSUBPS  Y2, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, R8
	ADDQ    $32, DI
	DECQ    CX
	JNZ     sub8loop

sub8done:
	VZEROUPPER
	RET

// func mulAVX512(n int, a, b, out *float32): out = a · b.
TEXT ·mulAVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), R8
	MOVQ out+24(FP), DI
	SUBQ $32, CX
	JL   mul16one

mul16loop:
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z1
	VMOVUPS (R8), Z2
	VMOVUPS 64(R8), Z3
	VMULPS  Z2, Z0, Z0
	VMULPS  Z3, Z1, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ    $128, SI
	ADDQ    $128, R8
	ADDQ    $128, DI
	SUBQ    $32, CX
	JGE     mul16loop

mul16one:
	ADDQ $16, CX
	JL   mul16tail
	VMOVUPS (SI), Z0
	VMOVUPS (R8), Z2
	VMULPS  Z2, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, DI
	SUBQ    $16, CX

mul16tail:
	ADDQ      $16, CX
	JZ        mul16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (R8), K1, Z2
	VMULPS     Z2, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

mul16done:
	VZEROUPPER
	RET

// func mulAVX2(n8 int, a, b, out *float32): out = a · b for 8·n8 elements.
TEXT ·mulAVX2(SB), NOSPLIT, $0-32
	MOVQ n8+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), R8
	MOVQ out+24(FP), DI
	TESTQ CX, CX
	JZ    mul8done

mul8loop:
	VMOVUPS (SI), Y0
	VMOVUPS (R8), Y2
	VMULPS  Y2, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, R8
	ADDQ    $32, DI
	DECQ    CX
	JNZ     mul8loop

mul8done:
	VZEROUPPER
	RET

// func positiveSelectAVX512(n int, y, u, out *float32): out[i] = u[i]
// where y[i] > 0, else +0, on the bits as positiveBits: y > 0 exactly when
// bits(y) − 1 < 0x7f800000 unsigned (NaN, ±0 and negatives select 0).
TEXT ·positiveSelectAVX512(SB), NOSPLIT, $0-32
	MOVQ         n+0(FP), CX
	MOVQ         y+8(FP), SI
	MOVQ         u+16(FP), R8
	MOVQ         out+24(FP), DI
	MOVL         $1, AX
	VPBROADCASTD AX, Z30
	MOVL         $0x7f800000, AX
	VPBROADCASTD AX, Z31
	SUBQ         $16, CX
	JL           pos16tail

pos16loop:
	VMOVDQU32   (SI), Z0
	VPSUBD      Z30, Z0, Z0
	VPCMPUD     $1, Z31, Z0, K1
	VMOVDQU32.Z (R8), K1, Z1
	VMOVDQU32   Z1, (DI)
	ADDQ        $64, SI
	ADDQ        $64, R8
	ADDQ        $64, DI
	SUBQ        $16, CX
	JGE         pos16loop

pos16tail:
	ADDQ        $16, CX
	JZ          pos16done
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K2
	VMOVDQU32.Z (SI), K2, Z0
	VPSUBD      Z30, Z0, Z0
	VPCMPUD     $1, Z31, Z0, K2, K1
	VMOVDQU32.Z (R8), K1, Z1
	VMOVDQU32   Z1, K2, (DI)

pos16done:
	VZEROUPPER
	RET
