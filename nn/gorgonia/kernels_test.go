package gorgonia

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"testing"
)

func relErr(got float32, want float64) float64 {
	return math.Abs(float64(got)-want) / math.Max(math.Abs(want), 1e-30)
}

// TestExpIntoAccuracy: within 2e-7 relative of math.Exp over the normal
// range, the documented limits, NaN, and the same value gives the same
// result at every index and slice length.
func TestExpIntoAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x := make([]float32, 10007)
	for i := range x {
		x[i] = float32(rng.Float64()*174 - 87)
	}
	x[0], x[1], x[2] = 0, 1, -1
	out := make([]float32, len(x))
	expInto(x, out)
	for i, v := range x {
		if e := relErr(out[i], math.Exp(float64(v))); e > 2e-7 {
			t.Fatalf("exp(%v) = %v, math.Exp %v (relative error %.2g)", v, out[i], math.Exp(float64(v)), e)
		}
	}
	special := []float32{-1e9, -100, float32(math.Inf(-1)), float32(math.NaN()), 89, float32(math.Inf(1))}
	got := make([]float32, len(special))
	expInto(special, got)
	for i := range 3 {
		if !(got[i] >= 0 && got[i] < 0x1p-126) {
			t.Errorf("exp(%v) = %v, want 0 (or subnormal)", special[i], got[i])
		}
	}
	if !math.IsNaN(float64(got[3])) {
		t.Errorf("exp(NaN) = %v", got[3])
	}
	if !(got[4] > 1e38) || !math.IsInf(float64(got[5]), 1) {
		t.Errorf("exp(89), exp(+Inf) = %v, %v", got[4], got[5])
	}
	// Position independence: every element of a 13-element slice (8 in
	// the vector body, 5 in the padded tail) equals the full array's.
	for start := range 8 {
		part := make([]float32, 13)
		expInto(x[start:start+13], part)
		for j := range part {
			if part[j] != out[start+j] {
				t.Fatalf("exp(%v) is %v at offset %d of a short slice, %v in the long one", x[start+j], part[j], j, out[start+j])
			}
		}
	}
}

func TestTanhSigmoidAccuracy(t *testing.T) {
	var x []float32
	for v := -20.0; v <= 20; v += 0.0137 {
		x = append(x, float32(v))
	}
	x = append(x, 0, 1e-6, -1e-6, 0.6249, 0.625, -0.625)
	th, sg := make([]float32, len(x)), make([]float32, len(x))
	tanhInto(x, th)
	sigmoidInto(x, sg)
	for i, v := range x {
		want := math.Tanh(float64(v))
		if e := math.Abs(float64(th[i]) - want); e > 2e-7*math.Max(1e-3, math.Abs(want)) && e > 1.2e-7 {
			t.Errorf("tanh(%v) = %v, want %v", v, th[i], want)
		}
		ws := 1 / (1 + math.Exp(-float64(v)))
		if e := relErr(sg[i], ws); e > 3e-7 {
			t.Errorf("sigmoid(%v) = %v, want %v", v, sg[i], ws)
		}
	}
	big := []float32{-200, 200, float32(math.NaN())}
	out := make([]float32, 3)
	sigmoidInto(big, out)
	if out[0] > 0x1p-126 || out[1] != 1 || !math.IsNaN(float64(out[2])) {
		t.Errorf("sigmoid(-200, 200, NaN) = %v", out)
	}
	tanhInto(big, out)
	if out[0] != -1 || out[1] != 1 || !math.IsNaN(float64(out[2])) {
		t.Errorf("tanh(-200, 200, NaN) = %v", out)
	}
}

// actWidths lists the widths of expInto, tanhInto and sigmoidInto
// (actLanes).
var actWidths = []int{1, 8, 16}

// useActLanes makes expInto, tanhInto and sigmoidInto run at width w for
// the rest of test t, skipping t when this CPU or build lacks it.
func useActLanes(t testing.TB, w int) {
	t.Helper()
	if w == 16 && !actAVX512 || w == 8 && !haveAVX2FMA {
		t.Skipf("this CPU or build has no %d-lane activation kernels", w)
	}
	prev := actLanes
	actLanes = w
	t.Cleanup(func() { actLanes = prev })
}

// ulps is |got-want| in units of the float32 spacing at want (2^-149 in
// the subnormal range).
func ulps(got float32, want float64) float64 {
	_, e := math.Frexp(want)
	return math.Abs(float64(got)-want) / math.Ldexp(1, max(e-24, -149))
}

func sigmoid64(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// actInputs returns a dense sweep of [-20, 20], every 65521st float32 bit
// pattern (all magnitudes, ±Inf and NaNs among them), random normal values
// and special values.
func actInputs() []float32 {
	var x []float32
	for v := -20.0; v <= 20; v += 0.00137 {
		x = append(x, float32(v))
	}
	for b := uint64(0); b < 1<<32; b += 65521 {
		x = append(x, math.Float32frombits(uint32(b)))
	}
	rng := rand.New(rand.NewPCG(21, 22))
	for range 20000 {
		x = append(x, float32(rng.NormFloat64()*3))
	}
	inf := float32(math.Inf(1))
	return append(x, 0, float32(math.Copysign(0, -1)), 0x1p-149, -0x1p-149, 0x1p-126, 1e-30, -1e-30,
		0.625, -0.625, 0.62499994, expHi, expLo, 44.188, 87.5, -87.5, 88.4, -88.4, 200, -200, inf, -inf,
		float32(math.NaN()))
}

// TestActivationULPs: on every width, tanh within 1.34 ulp of math.Tanh
// and sigmoid within 2.5 ulp of the float64 sigmoid wherever that is at
// least 2^-126 (x > -87.3; below, the result is between 0 and 2^-126);
// |tanh| ≤ 1 and 0 ≤ σ ≤ 1; NaN gives NaN.
func TestActivationULPs(t *testing.T) {
	x := actInputs()
	for _, w := range actWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			useActLanes(t, w)
			th, sg := make([]float32, len(x)), make([]float32, len(x))
			tanhInto(x, th)
			sigmoidInto(x, sg)
			var worstT, worstS float64
			for i, v := range x {
				if v != v {
					if th[i] == th[i] || sg[i] == sg[i] {
						t.Errorf("tanh, sigmoid(NaN) = %v, %v", th[i], sg[i])
					}
					continue
				}
				wt, ws := math.Tanh(float64(v)), sigmoid64(float64(v))
				if u := ulps(th[i], wt); u > 1.34 || !(math.Abs(float64(th[i])) <= 1) {
					t.Errorf("tanh(%v) = %v, want %v (%.2f ulp)", v, th[i], wt, u)
				} else {
					worstT = max(worstT, u)
				}
				if !(sg[i] >= 0 && sg[i] <= 1) || ws >= 0x1p-126 && ulps(sg[i], ws) > 2.5 || ws < 0x1p-126 && sg[i] >= 0x1p-126 {
					t.Errorf("sigmoid(%v) = %v, want %v (%.2f ulp)", v, sg[i], ws, ulps(sg[i], ws))
				} else if ws >= 0x1p-126 {
					worstS = max(worstS, ulps(sg[i], ws))
				}
			}
			t.Logf("%d inputs: tanh within %.3f ulp, sigmoid within %.3f ulp", len(x), worstT, worstS)
		})
	}
}

// TestActivationSpecial: exact values at zero, tiny and huge inputs.
func TestActivationSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	cases := []struct{ x, tanh, sigmoid float32 }{
		{0, 0, 0.5}, {negZero, negZero, 0.5},
		{0x1p-149, 0x1p-149, 0.5}, {-1e-30, -1e-30, 0.5}, {1e-5, 1e-5, 0.5000025},
		{9.1, 1, 0.9998883}, {50, 1, 1}, {-50, -1, 1.9287499e-22}, {1e30, 1, 1}, {-1e30, -1, 0},
		{inf, 1, 1}, {-inf, -1, 0}, {-89, -1, 0},
	}
	for _, w := range actWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			useActLanes(t, w)
			for _, c := range cases {
				th, sg := make([]float32, 1), make([]float32, 1)
				tanhInto([]float32{c.x}, th)
				sigmoidInto([]float32{c.x}, sg)
				if math.Float32bits(th[0]) != math.Float32bits(c.tanh) || sg[0] != c.sigmoid {
					t.Errorf("tanh, sigmoid(%v) = %v, %v, want %v, %v", c.x, th[0], sg[0], c.tanh, c.sigmoid)
				}
			}
		})
	}
}

// TestActivationLanesAgree: at every width expInto, tanhInto and
// sigmoidInto give exp32's, tanh32's and sigmoid32's bits for every input,
// in slices of every length up to 40 (vector bodies and masked or padded
// tails), in place.
func TestActivationLanesAgree(t *testing.T) {
	x := actInputs()
	wantT, wantS, wantE := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
	for i, v := range x {
		wantT[i], wantS[i], wantE[i] = tanh32(v), sigmoid32(v), exp32(v)
	}
	same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b }
	check := func(t *testing.T, name string, got, want, in []float32) {
		t.Helper()
		for i := range got {
			if !same(got[i], want[i]) {
				t.Fatalf("%s(%v) = %v, want %v (%#08x, %#08x)", name, in[i], got[i], want[i], math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
	}
	kernels := []struct {
		name string
		f    func(x, out []float32)
		want []float32
	}{{"exp", expInto, wantE}, {"tanh", tanhInto, wantT}, {"sigmoid", sigmoidInto, wantS}}
	for _, w := range actWidths {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			useActLanes(t, w)
			out := make([]float32, len(x))
			for _, k := range kernels {
				k.f(x, out)
				check(t, k.name, out, k.want, x)
				for n := range 41 {
					for off := 0; off+n <= len(x); off += 997 + n {
						buf := append(out[:0], x[off:off+n]...)
						k.f(buf, buf)
						check(t, k.name, buf, k.want[off:off+n], x[off:off+n])
					}
				}
			}
		})
	}
}

// TestFMA32: fma32 rounds x·y+z once, like big.Float at 400 bits, also
// where rounding through float64 would round twice.
func TestFMA32(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	unit := func() float32 { return math.Float32frombits(0x3f800000 | rng.Uint32()&0x7fffff) }
	twice := 0
	for i := range 400000 {
		var x, y, z float32
		switch i % 4 {
		case 0: // any finite bit patterns
			x, y, z = unit()*float32(math.Ldexp(1, rng.IntN(80)-40)), unit(), unit()*float32(math.Ldexp(1, rng.IntN(100)-50))
		case 1: // x·y = 2^-24·(1 - a²·2^-46), just off half an ulp of z
			a := float32(1 + rng.IntN(300))
			x, y, z = (1+a*0x1p-23)*0x1p-24, 1-a*0x1p-23, unit()
		case 2: // a product about cancelling z
			x, y = unit(), -unit()
			z = math.Float32frombits(math.Float32bits(-x*y) + uint32(rng.IntN(5)) - 2)
		case 3: // subnormal results
			x, y, z = unit()*0x1p-70, unit()*0x1p-60, unit()*0x1p-130
		}
		if rng.IntN(2) == 0 {
			y = -y
		}
		a := new(big.Float).SetPrec(400).SetFloat64(float64(x))
		a.Mul(a, new(big.Float).SetPrec(400).SetFloat64(float64(y)))
		a.Add(a, new(big.Float).SetPrec(400).SetFloat64(float64(z)))
		want, _ := a.Float32()
		if got := fma32(x, y, z); got != want {
			t.Fatalf("fma32(%v, %v, %v) = %v, want %v", x, y, z, got, want)
		}
		if float32(float64(x)*float64(y)+float64(z)) != want {
			twice++
		}
	}
	if twice == 0 {
		t.Error("no input where rounding through float64 differs")
	}
}

// tanhIntoScalar and sigmoidIntoScalar are the kernels tanhInto and
// sigmoidInto replaced (scalar, the branch on |x| per element), kept as the
// baseline of the benchmarks.
func tanhIntoScalar(x, out []float32) {
	for i, v := range x {
		out[i] = 2 * float32(math.Abs(float64(v)))
	}
	expInto(out[:len(x)], out)
	for i, v := range x {
		a := float32(math.Abs(float64(v)))
		if a < 0.625 {
			z := v * v
			out[i] = ((((-5.70498872745e-3*z+2.06390887954e-2)*z-5.37397155531e-2)*z+1.33314422036e-1)*z-3.33332819422e-1)*z*v + v
			continue
		}
		t := 1 - 2/(out[i]+1)
		if v < 0 {
			t = -t
		}
		out[i] = t
	}
}

func sigmoidIntoScalar(x, out []float32) {
	for i, v := range x {
		out[i] = -v
	}
	expInto(out[:len(x)], out)
	for i := range x {
		out[i] = 1 / (1 + out[i])
	}
}

// benchAct times f on 4096 pre-activations like an LSTM's (normal, σ 2),
// in rows of n, per element.
func benchAct(b *testing.B, f func(x, out []float32), n int) {
	rng := rand.New(rand.NewPCG(41, 42))
	x, out := make([]float32, 4096), make([]float32, 4096)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 2)
	}
	b.ResetTimer()
	for range b.N {
		for off := 0; off < len(x); off += n {
			f(x[off:off+n], out[off:off+n])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
}

// benchActWidths runs benchAct for the old scalar kernel (if any) and for f
// at every width, on rows of 4096 and of 128 (an LSTM cell's gate rows).
func benchActWidths(b *testing.B, old, f func(x, out []float32)) {
	for _, n := range []int{4096, 128} {
		if old != nil {
			b.Run(fmt.Sprintf("n=%d/scalar", n), func(b *testing.B) { benchAct(b, old, n) })
		}
		for _, w := range actWidths {
			b.Run(fmt.Sprintf("n=%d/lanes=%d", n, w), func(b *testing.B) {
				useActLanes(b, w)
				benchAct(b, f, n)
			})
		}
	}
}

func BenchmarkExpInto(b *testing.B) { benchActWidths(b, nil, expInto) }

func BenchmarkTanhInto(b *testing.B) { benchActWidths(b, tanhIntoScalar, tanhInto) }

func BenchmarkSigmoidInto(b *testing.B) { benchActWidths(b, sigmoidIntoScalar, sigmoidInto) }

// BenchmarkLogSoftmax: the forward and backward row kernels on a language
// model head's logits (2048 rows of 256).
func BenchmarkLogSoftmax(b *testing.B) {
	const rows, d = 2048, 256
	rng := rand.New(rand.NewPCG(51, 52))
	x, y, g, dx := make([]float32, rows*d), make([]float32, rows*d), make([]float32, rows*d), make([]float32, rows*d)
	for i := range x {
		x[i], g[i] = float32(rng.NormFloat64()*3), float32(rng.NormFloat64())
	}
	b.Run("forward", func(b *testing.B) {
		for range b.N {
			logSoftmaxInto(x, y, d)
		}
	})
	b.Run("backward", func(b *testing.B) {
		for range b.N {
			logSoftmaxGrad(y, g, dx, d)
		}
	})
}

// TestRowMax: rowMax gives rowMaxSerial's bits on rows of every length up
// to 40 with NaNs, infinities and zeros of both signs anywhere.
func TestRowMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	pool := []float32{nan, inf, -inf, 0, float32(math.Copysign(0, -1)), -1, 1, -2, 3}
	for n := 1; n <= 40; n++ {
		for range 2000 {
			x := make([]float32, n)
			for i := range x {
				if rng.IntN(4) == 0 {
					x[i] = pool[rng.IntN(len(pool))]
				} else {
					x[i] = -float32(rng.ExpFloat64())
				}
			}
			got, want := rowMax(x), rowMaxSerial(x)
			if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
				t.Fatalf("rowMax(%v) = %v, want %v", x, got, want)
			}
		}
	}
}

// TestActivationExhaustive (ARBENCH_EXHAUSTIVE=1, about 10 minutes): on
// every float32, every width agrees with exp32, tanh32 and sigmoid32, tanh
// is within 1.33 ulp and sigmoid within 2.49 ulp (where at least 2^-126).
func TestActivationExhaustive(t *testing.T) {
	if os.Getenv("ARBENCH_EXHAUSTIVE") != "1" {
		t.Skip("set ARBENCH_EXHAUSTIVE=1 to check every float32")
	}
	const block = 1 << 14
	x, out := make([]float32, block), make([]float32, block)
	kernels := []struct {
		name string
		f    func(x, out []float32)
		lane func(float32) float32
	}{{"exp", expInto, exp32}, {"tanh", tanhInto, tanh32}, {"sigmoid", sigmoidInto, sigmoid32}}
	var worstT, worstS float64
	for base := uint64(0); base < 1<<32; base += block {
		for i := range x {
			x[i] = math.Float32frombits(uint32(base + uint64(i)))
		}
		for _, k := range kernels {
			want := make([]float32, block)
			for i, v := range x {
				want[i] = k.lane(v)
			}
			for _, w := range actWidths[1:] {
				if w == 16 && !actAVX512 || w == 8 && !haveAVX2FMA {
					continue
				}
				prev := actLanes
				actLanes = w
				k.f(x, out)
				actLanes = prev
				for i := range out {
					if math.Float32bits(out[i]) != math.Float32bits(want[i]) && !(out[i] != out[i] && want[i] != want[i]) {
						t.Fatalf("%s(%v) = %v at width %d, %v in Go", k.name, x[i], out[i], w, want[i])
					}
				}
			}
			for i, v := range x {
				switch {
				case v != v:
				case k.name == "tanh":
					worstT = max(worstT, ulps(want[i], math.Tanh(float64(v))))
				case k.name == "sigmoid" && sigmoid64(float64(v)) >= 0x1p-126:
					worstS = max(worstS, ulps(want[i], sigmoid64(float64(v))))
				}
			}
		}
	}
	t.Logf("tanh within %.3f ulp, sigmoid within %.3f ulp", worstT, worstS)
	if worstT > 1.33 || worstS > 2.49 {
		t.Errorf("tanh within %.3f ulp, sigmoid within %.3f ulp", worstT, worstS)
	}
}

// TestReLUBranchFree: reluInto and reluGrad give, bit for bit, what
// v > 0 ? v : 0 (and v > 0 ? g : 0) give, on every kernel path, for
// special values (±0, ±Inf, NaNs of both signs and the ones next to the
// infinities, the smallest subnormals, the largest finite values) and
// random ones, at lengths that end inside and outside the sixteen-element
// blocks.
func TestReLUBranchFree(t *testing.T) {
	x := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), -float32(math.NaN()), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32,
		math.MaxFloat32, -math.MaxFloat32, 1, -1, math.Float32frombits(0x7f800001), math.Float32frombits(0xff800001)}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		x = append(x, math.Float32frombits(rng.Uint32()))
	}
	g := make([]float32, len(x))
	for i := range g {
		g[i] = float32(rng.NormFloat64())
	}
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) { checkReLU(t, p, x, g) })
	}
}

// checkReLU is TestReLUBranchFree on path p.
func checkReLU(t *testing.T, p gemmPath, x, g []float32) {
	useGemmPath(t, p)
	for _, n := range []int{len(x), 1, 12, 16, 33} {
		out, grad := make([]float32, n+1), make([]float32, n+1)
		out[n], grad[n] = 7, 7
		reluInto(x[:n], out)
		reluGrad(x[:n], g, grad)
		if out[n] != 7 || grad[n] != 7 {
			t.Fatalf("%v n=%d: wrote past the end", p, n)
		}
		for i, v := range x[:n] {
			want, wantGrad := float32(0), float32(0)
			if v > 0 {
				want, wantGrad = v, g[i]
			}
			if math.Float32bits(out[i]) != math.Float32bits(want) || math.Float32bits(grad[i]) != math.Float32bits(wantGrad) {
				t.Errorf("%v n=%d: x %v (%#08x): relu %v, grad %v; want %v, %v", p, n, v, math.Float32bits(v), out[i], grad[i], want, wantGrad)
			}
		}
	}
}

// specialFloats are values the element-wise kernels must treat as the Go
// operators do: zeros of both signs, infinities, NaNs, subnormals and
// the extremes.
var specialFloats = []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.NaN()), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32, 1, -1}

// mixedVec returns n normal values with some special ones among them.
func mixedVec(rng *rand.Rand, n int) []float32 {
	v := randVec(rng, n)
	for i := range v {
		if rng.IntN(8) == 0 {
			v[i] = specialFloats[rng.IntN(len(specialFloats))]
		}
	}
	return v
}

// sameFloat reports whether a and b hold the same bits, any NaN matching
// any NaN (the Go operators and the vector instructions may propagate
// different payloads).
func sameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b
}

// TestBinaryVecBitwise checks that binaryVec gives, on every path, the
// bits of the Go operators for every length up to 70 (the sixteen-lane
// loop, its mask and the eight-lane tail) with special values, also when
// out is a.
func TestBinaryVecBitwise(t *testing.T) {
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			rng := rand.New(rand.NewPCG(31, 32))
			for n := range 71 {
				a, b := mixedVec(rng, n), mixedVec(rng, n)
				for _, kind := range []byte{'+', '-', '*'} {
					want, got := make([]float32, n+1), make([]float32, n+1)
					got[n], want[n] = 7, 7
					binaryGo(kind, a, b, want)
					binaryVec(kind, a, b, got)
					inPlace := append([]float32(nil), a...)
					binaryVec(kind, inPlace, b, inPlace)
					for i := range n + 1 {
						if !sameFloat(got[i], want[i]) || i < n && !sameFloat(inPlace[i], want[i]) {
							t.Fatalf("n=%d: %v %c %v: got %v (in place %v), want %v", n, a[i], kind, b[i], got[i], inPlace[min(i, n-1)], want[i])
						}
					}
				}
			}
		})
	}
}

// TestRowKernelsBitwise checks subSub, subMul and rowMax on every path
// against their Go loops (rowMax: rowMaxSerial) bit for bit, for every
// length up to 70 with special values.
func TestRowKernelsBitwise(t *testing.T) {
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			rng := rand.New(rand.NewPCG(33, 34))
			for n := 1; n <= 70; n++ {
				for range 50 {
					x, e := mixedVec(rng, n), mixedVec(rng, n)
					s1, s2 := specialFloats[rng.IntN(len(specialFloats))], float32(rng.NormFloat64())
					got := make([]float32, n+1)
					got[n] = 7
					subSub(x, s1, s2, got)
					for i, v := range x {
						if want := (v - s1) - s2; !sameFloat(got[i], want) {
							t.Fatalf("n=%d: (%v - %v) - %v = %v, want %v", n, v, s1, s2, got[i], want)
						}
					}
					subMul(x, e, s2, got)
					for i, v := range x {
						if want := v - float32(e[i]*s2); !sameFloat(got[i], want) {
							t.Fatalf("n=%d: %v - %v·%v = %v, want %v", n, v, e[i], s2, got[i], want)
						}
					}
					if got[n] != 7 {
						t.Fatalf("n=%d: wrote past the end", n)
					}
					if m, want := rowMax(x), rowMaxSerial(x); !sameFloat(m, want) {
						t.Fatalf("rowMax(%v) = %v, want %v", x, m, want)
					}
				}
			}
		})
	}
}

// The softmax kernels one row at a time, as they were before rowGroup:
// the references of TestSoftmaxRowGroupsBitwise.

// shiftedExpRow sets or[j] = e^(xr[j] - m) for the row maximum m and
// returns m and Σ_j float64(or[j]) added in order.
func shiftedExpRow(xr, or []float32) (m float32, s float64) {
	m = rowMaxSerial(xr)
	for j, v := range xr {
		or[j] = v - m
	}
	expInto(or, or)
	for _, e := range or {
		s += float64(e)
	}
	return m, s
}
func logSoftmaxRow(x, out []float32, d int) {
	for off := 0; off < len(x); off += d {
		xr, or := x[off:off+d], out[off:off+d]
		m, s := shiftedExpRow(xr, or)
		ls := float32(math.Log(s))
		for j, v := range xr {
			or[j] = (v - m) - ls
		}
	}
}

func logSoftmaxGradRow(y, g, out []float32, d int) {
	for off := 0; off < len(y); off += d {
		gr, or := g[off:off+d], out[off:off+d]
		expInto(y[off:off+d], or)
		var s float64
		for _, v := range gr {
			s += float64(v)
		}
		st := float32(s)
		for j, e := range or {
			or[j] = gr[j] - float32(e*st)
		}
	}
}

func softmaxRow(x, out []float32, d int) {
	for off := 0; off < len(x); off += d {
		xr, or := x[off:off+d], out[off:off+d]
		_, s := shiftedExpRow(xr, or)
		inv := float32(1 / s)
		for j := range or {
			or[j] *= inv
		}
	}
}

// TestSoftmaxRowGroupsBitwise checks that the softmax kernels, which work
// rowGroup rows at a time with vector kernels, give on every path the bits
// of the one-row-at-a-time loops, for 1 to 9 rows of several lengths with
// special values.
func TestSoftmaxRowGroupsBitwise(t *testing.T) {
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			rng := rand.New(rand.NewPCG(35, 36))
			for _, d := range []int{1, 7, 16, 33, 256} {
				for rows := 1; rows <= 9; rows++ {
					x, g := mixedVec(rng, rows*d), randVec(rng, rows*d)
					for i := range x {
						x[i] *= 4
					}
					check := func(name string, f, ref func(out []float32)) {
						got, want := make([]float32, len(x)), make([]float32, len(x))
						f(got)
						ref(want)
						for i := range got {
							if !sameFloat(got[i], want[i]) {
								t.Fatalf("%s d=%d rows=%d: element %d is %v, one row at a time %v", name, d, rows, i, got[i], want[i])
							}
						}
					}
					y := make([]float32, len(x))
					logSoftmaxRow(x, y, d)
					check("logSoftmax", func(o []float32) { logSoftmaxInto(x, o, d) }, func(o []float32) { logSoftmaxRow(x, o, d) })
					check("logSoftmaxGrad", func(o []float32) { logSoftmaxGrad(y, g, o, d) }, func(o []float32) { logSoftmaxGradRow(y, g, o, d) })
					check("softmax", func(o []float32) { softmaxInto(x, o, d) }, func(o []float32) { softmaxRow(x, o, d) })
				}
			}
		})
	}
}

// TestTransposeMatchesNaive compares transposeInto (whole rows, planes in
// strips of 8, element by element) with index arithmetic on every
// permutation of shapes of rank 1 to 4 with odd sizes.
func TestTransposeMatchesNaive(t *testing.T) {
	shapes := [][]int{{7}, {13, 9}, {2, 17}, {16, 8}, {3, 9, 5}, {2, 11, 10}, {4, 3, 2, 5}}
	for _, shape := range shapes {
		n := 1
		for _, s := range shape {
			n *= s
		}
		src := make([]int, n)
		for i := range src {
			src[i] = i
		}
		for _, perm := range permutations(len(shape)) {
			got := make([]int, n)
			transposeInto(src, got, shape, perm)
			out := make([]int, len(shape))
			for d, p := range perm {
				out[d] = shape[p]
			}
			idx := make([]int, len(shape))
			for o := range n {
				// idx is the output index of o; the input index permutes it.
				rem := o
				for d := len(out) - 1; d >= 0; d-- {
					idx[d], rem = rem%out[d], rem/out[d]
				}
				in := 0
				for a := range shape {
					for d, p := range perm {
						if p == a {
							in = in*shape[a] + idx[d]
						}
					}
				}
				if got[o] != src[in] {
					t.Fatalf("shape %v perm %v: output %d is %d, want %d", shape, perm, o, got[o], src[in])
				}
			}
		}
	}
}

// permutations returns every permutation of 0..r-1.
func permutations(r int) [][]int {
	if r == 0 {
		return [][]int{{}}
	}
	var all [][]int
	for _, p := range permutations(r - 1) {
		for at := 0; at <= len(p); at++ {
			q := append(append(append([]int{}, p[:at]...), r-1), p[at:]...)
			all = append(all, q)
		}
	}
	return all
}

// rowStatsRef is the layer norm's statistics of one row as they were
// before groupStats: two float64 sums in order.
func rowStatsRef(x []float32, eps float32) (mean, rstd float32) {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	mu := s / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mu
		ss += d * d
	}
	return float32(mu), float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
}

// TestGroupStatsBitwise: the statistics of rows taken rowGroup at a time
// are bit for bit those of one row at a time, for 1 to 9 rows of several
// lengths with special values.
func TestGroupStatsBitwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, d := range []int{1, 7, 33, 128} {
		for rows := 1; rows <= 9; rows++ {
			x := mixedVec(rng, rows*d)
			var got []float32
			forRows(x, d, 1e-5, func(_ int, mu, rs float32) { got = append(got, mu, rs) })
			if len(got) != 2*rows {
				t.Fatalf("d=%d rows=%d: %d statistics, want %d", d, rows, len(got), 2*rows)
			}
			for r := range rows {
				mu, rs := rowStatsRef(x[r*d:(r+1)*d], 1e-5)
				if !sameFloat(got[2*r], mu) || !sameFloat(got[2*r+1], rs) {
					t.Fatalf("d=%d rows=%d row %d: mean %v rstd %v, one row at a time %v %v", d, rows, r, got[2*r], got[2*r+1], mu, rs)
				}
			}
		}
	}
}
