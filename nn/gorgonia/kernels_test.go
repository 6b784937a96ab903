package gorgonia

import (
	"math"
	"math/rand/v2"
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
