//go:build amd64 && !purego

#include "textflag.h"

// func adamAVX512(n8 int, p, grad, m, v *float32, u *adamUpdate)
//
// adamElems on eight elements at a time: each float32 widened to float64,
// then the multiplies, adds, square root and divisions of adamElems in its
// order, each rounded to float64, and the moments and parameter narrowed
// to float32 (round to nearest even, as Go's conversion). adamUpdate's
// fields, broadcast: b1 Z24, omb1 Z25, b2 Z26, omb2 Z27, stepSize Z28,
// bc2Sqrt Z29, eps Z30, wd Z31 (used only when wd ≠ 0, as adamElems).
TEXT ·adamAVX512(SB), NOSPLIT, $0-48
	MOVQ         n8+0(FP), CX
	MOVQ         p+8(FP), DI
	MOVQ         grad+16(FP), SI
	MOVQ         m+24(FP), R8
	MOVQ         v+32(FP), R9
	MOVQ         u+40(FP), AX
	VBROADCASTSD 0(AX), Z24
	VBROADCASTSD 8(AX), Z25
	VBROADCASTSD 16(AX), Z26
	VBROADCASTSD 24(AX), Z27
	VBROADCASTSD 32(AX), Z28
	VBROADCASTSD 40(AX), Z29
	VBROADCASTSD 48(AX), Z30
	VBROADCASTSD 56(AX), Z31
	MOVQ         56(AX), DX
	SHLQ         $1, DX          // drop the sign: -0 is no decay either
	TESTQ        CX, CX
	JZ           adamdone

adamloop:
	VCVTPS2PD (DI), Z0 // θ
	VCVTPS2PD (SI), Z1 // g
	TESTQ     DX, DX
	JZ        adamnodecay
	VMULPD    Z0, Z31, Z2
	VADDPD    Z2, Z1, Z1 // g + λθ

adamnodecay:
	VCVTPS2PD (R8), Z3
	VMULPD    Z3, Z24, Z3 // β1·m
	VMULPD    Z1, Z25, Z4 // (1−β1)·g
	VADDPD    Z4, Z3, Z3
	VCVTPS2PD (R9), Z5
	VMULPD    Z5, Z26, Z5 // β2·v
	VMULPD    Z1, Z27, Z6 // (1−β2)·g
	VMULPD    Z1, Z6, Z6  // ·g
	VADDPD    Z6, Z5, Z5
	VCVTPD2PS Z3, Y3
	VCVTPD2PS Z5, Y5
	VMOVUPS   Y3, (R8)
	VMOVUPS   Y5, (R9)
	VCVTPS2PD Y3, Z3
	VCVTPS2PD Y5, Z5
	VSQRTPD   Z5, Z5
	VDIVPD    Z29, Z5, Z5 // √v / √(1−β2ᵗ)
	VADDPD    Z30, Z5, Z5 // + ε
	VMULPD    Z3, Z28, Z3 // stepSize·m
	VDIVPD    Z5, Z3, Z3  // / denom
	VSUBPD    Z3, Z0, Z0  // θ − …
	VCVTPD2PS Z0, Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $32, DI
	ADDQ      $32, SI
	ADDQ      $32, R8
	ADDQ      $32, R9
	DECQ      CX
	JNZ       adamloop

adamdone:
	VZEROUPPER
	RET
