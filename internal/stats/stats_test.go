package stats

import (
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// Known values: the roots of the score equation (p̂ − p)² = z²p(1−p)/n,
// found by bisection independently of the closed form (statsmodels'
// proportion_confint(81, 263, method="wilson") documents (0.2553, 0.3662)).
func TestWilsonKnownValues(t *testing.T) {
	for _, c := range []struct {
		k, n   int
		lo, hi float64
	}{
		{81, 263, 0.2552885, 0.3662096},
		{0, 10, 0, 0.2775328},
		{10, 10, 0.7224672, 1},
		{119, 128, 0.8717652, 0.9625702},
		{1, 2, 0.0945312, 0.9054688},
	} {
		iv := Wilson(c.k, c.n, 0.95)
		if !near(iv.Lo, c.lo, 1e-6) || !near(iv.Hi, c.hi, 1e-6) {
			t.Errorf("Wilson(%d, %d) = [%.7f, %.7f], want [%.7f, %.7f]", c.k, c.n, iv.Lo, iv.Hi, c.lo, c.hi)
		}
		if want := float64(c.k) / float64(c.n); iv.Estimate != want {
			t.Errorf("Wilson(%d, %d).Estimate = %v, want %v", c.k, c.n, iv.Estimate, want)
		}
	}
	if iv := Wilson(0, 0, 0.95); !math.IsNaN(iv.Lo) || !math.IsNaN(iv.Hi) {
		t.Errorf("Wilson(0, 0) = %+v, want NaN bounds", iv)
	}
}

func TestZ(t *testing.T) {
	if z := Z(0.95); !near(z, 1.959963984540054, 1e-12) {
		t.Errorf("Z(0.95) = %v", z)
	}
	if z := Z(0.9); !near(z, 1.6448536269514722, 1e-12) {
		t.Errorf("Z(0.9) = %v", z)
	}
}

func TestWilsonPanicsOnBadCounts(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Wilson(3, 2) did not panic")
		}
	}()
	Wilson(3, 2, 0.95)
}

// A bootstrap interval of a normal sample's mean approaches the normal
// interval mean ± z·s/√n; it is deterministic given the seed and changes
// with it.
func TestBootstrapMean(t *testing.T) {
	xs := make([]float64, 400)
	for i := range xs {
		// A fixed, roughly normal sample: the normal quantiles of (i+0.5)/n.
		xs[i] = 3 + 2*invNorm((float64(i)+0.5)/float64(len(xs)))
	}
	iv := BootstrapMean(xs, 0.95, 4000, 1)
	m, s := 3.0, 2*math.Sqrt(float64(len(xs))/float64(len(xs)-1))
	half := 1.96 * s / math.Sqrt(float64(len(xs)))
	if !near(iv.Estimate, m, 1e-9) {
		t.Errorf("estimate %v, want %v", iv.Estimate, m)
	}
	if !near(iv.Lo, m-half, 0.1*half) || !near(iv.Hi, m+half, 0.1*half) {
		t.Errorf("interval [%v, %v], want about [%v, %v]", iv.Lo, iv.Hi, m-half, m+half)
	}
	if again := BootstrapMean(xs, 0.95, 4000, 1); again != iv {
		t.Errorf("rerun gave %+v, first %+v", again, iv)
	}
	if other := BootstrapMean(xs, 0.95, 4000, 2); other == iv {
		t.Error("another seed gave the identical interval")
	}
	if one := BootstrapMean([]float64{5}, 0.95, 100, 1); one.Lo != 5 || one.Hi != 5 {
		t.Errorf("one value: %+v", one)
	}
	if none := BootstrapMean(nil, 0.95, 100, 1); !math.IsNaN(none.Estimate) || !math.IsNaN(none.Lo) {
		t.Errorf("no values: %+v", none)
	}
}

// Pairing cancels what both conditions share: two samples with a large
// common row effect and a constant difference of 0.1 have a paired
// interval of width ~0 around 0.1.
func TestPairedBootstrapCancelsSharedVariation(t *testing.T) {
	a := make([]float64, 200)
	b := make([]float64, 200)
	for i := range a {
		a[i] = float64(i%17) * 3
		b[i] = a[i] + 0.1
	}
	iv := PairedBootstrap(a, b, 0.95, 1000, 7)
	if !near(iv.Estimate, 0.1, 1e-12) || !near(iv.Lo, 0.1, 1e-9) || !near(iv.Hi, 0.1, 1e-9) {
		t.Errorf("paired interval %+v, want 0.1 exactly", iv)
	}
	// A difference of ±1 alternating has mean 0 and an interval around it.
	for i := range b {
		b[i] = a[i] + float64(2*(i%2)-1)
	}
	iv = PairedBootstrap(a, b, 0.95, 2000, 7)
	if !iv.Contains(0) || iv.Hi-iv.Lo < 0.1 || iv.Hi-iv.Lo > 0.4 {
		t.Errorf("alternating differences: %+v, want an interval of width ~0.28 around 0", iv)
	}
}

// invNorm is the standard normal quantile (for the test sample).
func invNorm(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// Known value: for 1, 2, 3, 4 the mean is 2.5, s = 1.2910, t_{0.975,3} =
// 3.182446, half-width 2.054260.
func TestTInterval(t *testing.T) {
	iv := TInterval([]float64{1, 2, 3, 4}, 0.95)
	if !near(iv.Estimate, 2.5, 1e-12) || !near(iv.Lo, 2.5-2.0542603, 1e-6) || !near(iv.Hi, 2.5+2.0542603, 1e-6) {
		t.Errorf("TInterval = %+v", iv)
	}
	if one := TInterval([]float64{3}, 0.95); one.Estimate != 3 || !math.IsNaN(one.Lo) {
		t.Errorf("one value: %+v", one)
	}
}
