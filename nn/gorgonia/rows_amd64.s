//go:build amd64 && !purego

#include "textflag.h"

// Row kernels of the softmax family (kernels.go), sixteen lanes of
// AVX-512 F with the last n mod 16 elements under a mask. Each output
// element is computed with the rounded operations of the Go loop it
// replaces, in the same order, so the bits are the same.

// func rowMaxAVX512(n int, x *float32) (m float32, nan bool)
//
// The largest of x[0..n-1] (n ≥ 1) by VMAXPS, which is exact when no
// element is NaN (nan reports whether one is) and the maximum is not zero
// (both signs compare equal); see rowMax.
TEXT ·rowMaxAVX512(SB), NOSPLIT, $0-21
	MOVQ         n+0(FP), CX
	MOVQ         x+8(FP), SI
	VBROADCASTSS (SI), Z0
	VMOVAPS      Z0, Z1
	KXORW        K3, K3, K3
	SUBQ         $32, CX
	JL           max16one

max16loop:
	VMOVUPS (SI), Z2
	VMOVUPS 64(SI), Z3
	VCMPPS  $3, Z2, Z2, K1
	VCMPPS  $3, Z3, Z3, K2
	KORW    K1, K3, K3
	KORW    K2, K3, K3
	VMAXPS  Z2, Z0, Z0
	VMAXPS  Z3, Z1, Z1
	ADDQ    $128, SI
	SUBQ    $32, CX
	JGE     max16loop

max16one:
	ADDQ    $16, CX
	JL      max16tail
	VMOVUPS (SI), Z2
	VCMPPS  $3, Z2, Z2, K1
	KORW    K1, K3, K3
	VMAXPS  Z2, Z0, Z0
	ADDQ    $64, SI
	SUBQ    $16, CX

max16tail:
	ADDQ    $16, CX
	JZ      max16reduce
	MOVL    $1, AX
	SHLL    CX, AX
	DECL    AX
	KMOVW   AX, K1
	VMOVAPS Z0, Z2        // the lanes past n keep elements already seen
	VMOVUPS (SI), K1, Z2
	VCMPPS  $3, Z2, Z2, K2
	KORW    K2, K3, K3
	VMAXPS  Z2, Z0, Z0

max16reduce:
	VMAXPS        Z1, Z0, Z0
	VEXTRACTF32X8 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0x4e, X0, X1
	VMAXPS        X1, X0, X0
	VPERMILPS     $0xb1, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSS        X0, m+16(FP)
	KORTESTW      K3, K3
	SETNE         nan+20(FP)
	VZEROUPPER
	RET

// func subSubAVX512(n int, x *float32, a, b float32, out *float32)
//
// out[j] = (x[j] - a) - b, each difference rounded.
TEXT ·subSubAVX512(SB), NOSPLIT, $0-32
	MOVQ         n+0(FP), CX
	MOVQ         x+8(FP), SI
	VBROADCASTSS a+16(FP), Z4
	VBROADCASTSS b+20(FP), Z5
	MOVQ         out+24(FP), DI
	SUBQ         $16, CX
	JL           ss16tail

ss16loop:
	VMOVUPS (SI), Z0
	VSUBPS  Z4, Z0, Z0
	VSUBPS  Z5, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JGE     ss16loop

ss16tail:
	ADDQ      $16, CX
	JZ        ss16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS    Z4, Z0, Z0
	VSUBPS    Z5, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

ss16done:
	VZEROUPPER
	RET

// func subMulAVX512(n int, dy, e *float32, s float32, out *float32)
//
// out[j] = dy[j] - e[j]·s, the product rounded before the difference.
TEXT ·subMulAVX512(SB), NOSPLIT, $0-40
	MOVQ         n+0(FP), CX
	MOVQ         dy+8(FP), SI
	MOVQ         e+16(FP), R8
	VBROADCASTSS s+24(FP), Z4
	MOVQ         out+32(FP), DI
	SUBQ         $16, CX
	JL           sm16tail

sm16loop:
	VMOVUPS (R8), Z1
	VMULPS  Z4, Z1, Z1
	VMOVUPS (SI), Z0
	VSUBPS  Z1, Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, DI
	SUBQ    $16, CX
	JGE     sm16loop

sm16tail:
	ADDQ      $16, CX
	JZ        sm16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K1
	VMOVUPS.Z (R8), K1, Z1
	VMULPS    Z4, Z1, Z1
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS    Z1, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

sm16done:
	VZEROUPPER
	RET
