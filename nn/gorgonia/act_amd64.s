//go:build amd64 && !purego

#include "textflag.h"

// Activation kernels of eight lanes (AVX2 and FMA) and sixteen (AVX-512
// F): tanhInto, sigmoidInto and, sixteen lanes only, expInto. Every lane
// runs exp32, tanh32 or sigmoid32 of kernels.go (which give the method,
// sources and error bounds) instruction for instruction, without
// branches: tanh computes both of its forms and selects one. Eight and
// sixteen lanes give the same bits as those functions for every input.

// VEC8 stores the 32-bit pattern v in eight lanes at byte offset off of
// actc.
#define VEC8(off, v) \
	DATA actc<>+(off)(SB)/8, $(v<<32|v); \
	DATA actc<>+(off+8)(SB)/8, $(v<<32|v); \
	DATA actc<>+(off+16)(SB)/8, $(v<<32|v); \
	DATA actc<>+(off+24)(SB)/8, $(v<<32|v)

// Constants of the activation kernels (names of kernels.go), eight lanes
// each; the sixteen-lane kernels broadcast their first lane.
#define ABSMASK actc<>+0x000(SB)
#define EXPHI actc<>+0x020(SB)
#define EXPLO actc<>+0x040(SB)
#define LOG2E actc<>+0x060(SB)
#define HALF actc<>+0x080(SB)
#define ONE actc<>+0x0a0(SB)
#define EXPC1 actc<>+0x0c0(SB)
#define EXPC2 actc<>+0x0e0(SB)
#define EXPP0 actc<>+0x100(SB)
#define EXPP1 actc<>+0x120(SB)
#define EXPP2 actc<>+0x140(SB)
#define EXPP3 actc<>+0x160(SB)
#define EXPP4 actc<>+0x180(SB)
#define BIAS actc<>+0x1a0(SB)
#define INF actc<>+0x1c0(SB)
#define TWO actc<>+0x1e0(SB)
#define TANHCUT actc<>+0x200(SB)
#define TANHP0 actc<>+0x220(SB)
#define TANHP1 actc<>+0x240(SB)
#define TANHP2 actc<>+0x260(SB)
#define TANHP3 actc<>+0x280(SB)
#define TANHP4 actc<>+0x2a0(SB)
#define SIGN actc<>+0x2c0(SB)

VEC8(0x000, 0x7fffffff)
VEC8(0x020, 0x42b0c0a5)
VEC8(0x040, 0xc2b0c0a5)
VEC8(0x060, 0x3fb8aa3b)
VEC8(0x080, 0x3f000000)
VEC8(0x0a0, 0x3f800000)
VEC8(0x0c0, 0x3f318000)
VEC8(0x0e0, 0xb95e8083)
VEC8(0x100, 0x39506967)
VEC8(0x120, 0x3ab743ce)
VEC8(0x140, 0x3c088908)
VEC8(0x160, 0x3d2aa9c1)
VEC8(0x180, 0x3e2aaaaa)
VEC8(0x1a0, 0x42fe0000)
VEC8(0x1c0, 0x7f800000)
VEC8(0x1e0, 0x40000000)
VEC8(0x200, 0x3f200000)
VEC8(0x220, 0xbbbaf0ea)
VEC8(0x240, 0x3ca9134e)
VEC8(0x260, 0xbd5c1e2d)
VEC8(0x280, 0x3e088393)
VEC8(0x2a0, 0xbeaaaa99)
VEC8(0x2c0, 0x80000000)
GLOBL actc<>(SB), RODATA|NOPTR, $0x2e0

// Eight all-ones lanes, then eight zeros: the 32 bytes at 32-4r select the
// first r lanes (VMASKMOVPS) for a tail of r < 8 elements.
DATA tailmask<>+0x00(SB)/8, $-1
DATA tailmask<>+0x08(SB)/8, $-1
DATA tailmask<>+0x10(SB)/8, $-1
DATA tailmask<>+0x18(SB)/8, $-1
DATA tailmask<>+0x20(SB)/8, $0
DATA tailmask<>+0x28(SB)/8, $0
DATA tailmask<>+0x30(SB)/8, $0
DATA tailmask<>+0x38(SB)/8, $0
GLOBL tailmask<>(SB), RODATA|NOPTR, $64

// EXPCORE8 sets Y3 = e^Y0 for Y0 in [expLo, expHi] (expCore, the
// instructions of expAVX2): Y1 = n = ⌊x·log2 e + 1/2⌋, Y0 = r, Y2 = r²,
// Y3 = 1 + r + r²·P(r), times 2^n built in Y1's exponent fields.
#define EXPCORE8 \
	VMOVUPS      HALF, Y1 \
	VFMADD231PS  LOG2E, Y0, Y1 \
	VROUNDPS     $1, Y1, Y1 \
	VFNMADD231PS EXPC1, Y1, Y0 \
	VFNMADD231PS EXPC2, Y1, Y0 \
	VMULPS       Y0, Y0, Y2 \
	VMOVUPS      EXPP0, Y3 \
	VFMADD213PS  EXPP1, Y0, Y3 \
	VFMADD213PS  EXPP2, Y0, Y3 \
	VFMADD213PS  EXPP3, Y0, Y3 \
	VFMADD213PS  EXPP4, Y0, Y3 \
	VFMADD213PS  HALF, Y0, Y3 \
	VFMADD213PS  Y0, Y2, Y3 \
	VADDPS       ONE, Y3, Y3 \
	VADDPS       BIAS, Y1, Y1 \
	VCVTTPS2DQ   Y1, Y1 \
	VPSLLD       $23, Y1, Y1 \
	VMULPS       Y1, Y3, Y3

// TANH8 sets Y3 = tanh(Y0) (tanh32): Y4 = a = |x|, Y5 = x's sign bit;
// Y3 = 1 - 2/(e^{min(2a, expHi)}+1) and Y0 = a + a³·P(a²) (Y2 = a²), Y0
// taken where a < 0.625 (mask Y1), then the sign. Clobbers Y0-Y5. In
// every clamp the constant is VMINPS's or VMAXPS's first source (Intel
// order; the middle operand here), so a NaN x is returned unchanged.
#define TANH8 \
	VANDPS      ABSMASK, Y0, Y4 \
	VXORPS      Y4, Y0, Y5 \
	VADDPS      Y4, Y4, Y0 \
	VMOVUPS     EXPHI, Y1 \
	VMINPS      Y0, Y1, Y0 \
	EXPCORE8 \
	VADDPS      ONE, Y3, Y3 \
	VMOVUPS     TWO, Y1 \
	VDIVPS      Y3, Y1, Y1 \
	VMOVUPS     ONE, Y3 \
	VSUBPS      Y1, Y3, Y3 \
	VMULPS      Y4, Y4, Y2 \
	VMOVUPS     TANHP0, Y0 \
	VFMADD213PS TANHP1, Y2, Y0 \
	VFMADD213PS TANHP2, Y2, Y0 \
	VFMADD213PS TANHP3, Y2, Y0 \
	VFMADD213PS TANHP4, Y2, Y0 \
	VMULPS      Y2, Y0, Y0 \
	VFMADD213PS Y4, Y4, Y0 \
	VCMPPS      $0x11, TANHCUT, Y4, Y1 \
	VBLENDVPS   Y1, Y0, Y3, Y3 \
	VXORPS      Y5, Y3, Y3

// SIGMOID8 sets Y3 = 1/(1+e^-Y0) (sigmoid32): Y0 = -x clamped to [expLo,
// expHi] (Y4 keeps -x), EXPCORE8, +Inf where -x > expHi (mask Y5).
// Clobbers Y0-Y5.
#define SIGMOID8 \
	VXORPS    SIGN, Y0, Y0 \
	VMOVUPS   Y0, Y4 \
	VMOVUPS   EXPHI, Y1 \
	VMINPS    Y0, Y1, Y0 \
	VMOVUPS   EXPLO, Y1 \
	VMAXPS    Y0, Y1, Y0 \
	EXPCORE8 \
	VCMPPS    $0x1e, EXPHI, Y4, Y5 \
	VBLENDVPS Y5, INF, Y3, Y3 \
	VADDPS    ONE, Y3, Y3 \
	VMOVUPS   ONE, Y1 \
	VDIVPS    Y3, Y1, Y3

// EXPCORE16, TANH16 and SIGMOID16 are EXPCORE8, TANH8 and SIGMOID8 on
// sixteen lanes (Z registers, constants broadcast, masks in K1): the same
// operations in the same order.
#define EXPCORE16 \
	VBROADCASTSS      HALF, Z1 \
	VFMADD231PS.BCST  LOG2E, Z0, Z1 \
	VRNDSCALEPS       $1, Z1, Z1 \
	VFNMADD231PS.BCST EXPC1, Z1, Z0 \
	VFNMADD231PS.BCST EXPC2, Z1, Z0 \
	VMULPS            Z0, Z0, Z2 \
	VBROADCASTSS      EXPP0, Z3 \
	VFMADD213PS.BCST  EXPP1, Z0, Z3 \
	VFMADD213PS.BCST  EXPP2, Z0, Z3 \
	VFMADD213PS.BCST  EXPP3, Z0, Z3 \
	VFMADD213PS.BCST  EXPP4, Z0, Z3 \
	VFMADD213PS.BCST  HALF, Z0, Z3 \
	VFMADD213PS       Z0, Z2, Z3 \
	VADDPS.BCST       ONE, Z3, Z3 \
	VADDPS.BCST       BIAS, Z1, Z1 \
	VCVTTPS2DQ        Z1, Z1 \
	VPSLLD            $23, Z1, Z1 \
	VMULPS            Z1, Z3, Z3

#define TANH16 \
	VPANDD.BCST      ABSMASK, Z0, Z4 \
	VPXORD           Z4, Z0, Z5 \
	VADDPS           Z4, Z4, Z0 \
	VBROADCASTSS     EXPHI, Z1 \
	VMINPS           Z0, Z1, Z0 \
	EXPCORE16 \
	VADDPS.BCST      ONE, Z3, Z3 \
	VBROADCASTSS     TWO, Z1 \
	VDIVPS           Z3, Z1, Z1 \
	VBROADCASTSS     ONE, Z3 \
	VSUBPS           Z1, Z3, Z3 \
	VMULPS           Z4, Z4, Z2 \
	VBROADCASTSS     TANHP0, Z0 \
	VFMADD213PS.BCST TANHP1, Z2, Z0 \
	VFMADD213PS.BCST TANHP2, Z2, Z0 \
	VFMADD213PS.BCST TANHP3, Z2, Z0 \
	VFMADD213PS.BCST TANHP4, Z2, Z0 \
	VMULPS           Z2, Z0, Z0 \
	VFMADD213PS      Z4, Z4, Z0 \
	VCMPPS.BCST      $0x11, TANHCUT, Z4, K1 \
	VMOVAPS          Z0, K1, Z3 \
	VPXORD           Z5, Z3, Z3

#define SIGMOID16 \
	VPXORD.BCST  SIGN, Z0, Z0 \
	VMOVAPS      Z0, Z4 \
	VBROADCASTSS EXPHI, Z1 \
	VMINPS       Z0, Z1, Z0 \
	VBROADCASTSS EXPLO, Z1 \
	VMAXPS       Z0, Z1, Z0 \
	EXPCORE16 \
	VCMPPS.BCST  $0x1e, EXPHI, Z4, K1 \
	VBROADCASTSS INF, K1, Z3 \
	VADDPS.BCST  ONE, Z3, Z3 \
	VBROADCASTSS ONE, Z1 \
	VDIVPS       Z3, Z1, Z3

// EXP16 sets Z3 = e^Z0 on sixteen lanes (exp32, the instructions of
// expAVX2): Z0 clamped to [expLo, expHi] (Z4 keeps x), EXPCORE16, +Inf
// where x > expHi (mask K1). Clobbers Z0-Z4.
#define EXP16 \
	VMOVAPS      Z0, Z4 \
	VBROADCASTSS EXPHI, Z1 \
	VMINPS       Z0, Z1, Z0 \
	VBROADCASTSS EXPLO, Z1 \
	VMAXPS       Z0, Z1, Z0 \
	EXPCORE16 \
	VCMPPS.BCST  $0x1e, EXPHI, Z4, K1 \
	VBROADCASTSS INF, K1, Z3

// The kernels below apply their macro to n elements from x to out
// (which may be the same array): blocks of eight (sixteen), then the last
// n mod 8 (16) through masked loads and stores (mask in Y7, K2), so every
// element takes the same instructions. CX counts the elements left, SI and
// DI walk x and out. (The eight-lane exponential, expAVX2, is in
// sgemm_amd64.s.)

// func tanhAVX2(n int, x, out *float32)
TEXT ·tanhAVX2(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ out+16(FP), DI
	SUBQ $8, CX
	JL   tanh8tail

tanh8loop:
	VMOVUPS (SI), Y0
	TANH8
	VMOVUPS Y3, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JGE     tanh8loop

tanh8tail:
	ADDQ       $8, CX
	JZ         tanh8done
	NEGQ       CX
	LEAQ       tailmask<>+32(SB), AX
	VMOVUPS    (AX)(CX*4), Y7
	VMASKMOVPS (SI), Y7, Y0
	TANH8
	VMASKMOVPS Y3, Y7, (DI)

tanh8done:
	VZEROUPPER
	RET

// func sigmoidAVX2(n int, x, out *float32)
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ out+16(FP), DI
	SUBQ $8, CX
	JL   sig8tail

sig8loop:
	VMOVUPS (SI), Y0
	SIGMOID8
	VMOVUPS Y3, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JGE     sig8loop

sig8tail:
	ADDQ       $8, CX
	JZ         sig8done
	NEGQ       CX
	LEAQ       tailmask<>+32(SB), AX
	VMOVUPS    (AX)(CX*4), Y7
	VMASKMOVPS (SI), Y7, Y0
	SIGMOID8
	VMASKMOVPS Y3, Y7, (DI)

sig8done:
	VZEROUPPER
	RET

// func tanhAVX512(n int, x, out *float32)
TEXT ·tanhAVX512(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ out+16(FP), DI
	SUBQ $16, CX
	JL   tanh16tail

tanh16loop:
	VMOVUPS (SI), Z0
	TANH16
	VMOVUPS Z3, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JGE     tanh16loop

tanh16tail:
	ADDQ      $16, CX
	JZ        tanh16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K2
	VMOVUPS.Z (SI), K2, Z0
	TANH16
	VMOVUPS   Z3, K2, (DI)

tanh16done:
	VZEROUPPER
	RET

// func sigmoidAVX512(n int, x, out *float32)
TEXT ·sigmoidAVX512(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ out+16(FP), DI
	SUBQ $16, CX
	JL   sig16tail

sig16loop:
	VMOVUPS (SI), Z0
	SIGMOID16
	VMOVUPS Z3, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JGE     sig16loop

sig16tail:
	ADDQ      $16, CX
	JZ        sig16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K2
	VMOVUPS.Z (SI), K2, Z0
	SIGMOID16
	VMOVUPS   Z3, K2, (DI)

sig16done:
	VZEROUPPER
	RET

// func expAVX512(n int, x, out *float32)
TEXT ·expAVX512(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ out+16(FP), DI
	SUBQ $16, CX
	JL   exp16tail

exp16loop:
	VMOVUPS (SI), Z0
	EXP16
	VMOVUPS Z3, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JGE     exp16loop

exp16tail:
	ADDQ      $16, CX
	JZ        exp16done
	MOVL      $1, AX
	SHLL      CX, AX
	DECL      AX
	KMOVW     AX, K2
	VMOVUPS.Z (SI), K2, Z0
	EXP16
	VMOVUPS   Z3, K2, (DI)

exp16done:
	VZEROUPPER
	RET
