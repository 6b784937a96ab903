package reports

import (
	"math"
	"testing"
)

func TestTQuantile(t *testing.T) {
	// Reference values to 15 significant digits, computed independently
	// with mpmath (30 digits) by solving I-beta based CDF(x) = p; they agree
	// with printed tables (NIST/SEMATECH e-Handbook, section 1.3.6.7.2).
	for _, c := range []struct{ p, df, want float64 }{
		{0.975, 1, 12.7062047361747},
		{0.975, 2, 4.30265272974946},
		{0.975, 3, 3.18244630528371},
		{0.975, 4, 2.77644510519779},
		{0.975, 5, 2.57058183563631},
		{0.975, 9, 2.26215716279820},
		{0.975, 29, 2.04522964213270},
		{0.975, 100, 1.98397151852355},
		{0.995, 3, 5.84090930973336},
		{0.95, 10, 1.81246112281168},
		{0.5, 7, 0},
		{0.025, 4, -2.77644510519779},
		{0.975, 2.5, 3.57465484200368}, // non-integer degrees of freedom
	} {
		got := TQuantile(c.p, c.df)
		if math.Abs(got-c.want) > 1e-9*math.Max(1, math.Abs(c.want)) {
			t.Errorf("TQuantile(%v, %v) = %.15g, want %.15g", c.p, c.df, got, c.want)
		}
	}
	// Closed forms: df=1 is the Cauchy distribution, tan(π(p-½)); df=2 is
	// (2p-1)/sqrt(2p(1-p)).
	for _, p := range []float64{0.6, 0.9, 0.975, 0.999} {
		if got, want := TQuantile(p, 1), math.Tan(math.Pi*(p-0.5)); math.Abs(got-want) > 1e-9*math.Abs(want) {
			t.Errorf("TQuantile(%v, 1) = %v, want %v", p, got, want)
		}
		if got, want := TQuantile(p, 2), (2*p-1)/math.Sqrt(2*p*(1-p)); math.Abs(got-want) > 1e-9*math.Abs(want) {
			t.Errorf("TQuantile(%v, 2) = %v, want %v", p, got, want)
		}
	}
	// Large df approaches the normal quantile 1.95996398454005.
	if got := TQuantile(0.975, 1e7); math.Abs(got-1.95996398454005) > 1e-6 {
		t.Errorf("TQuantile(0.975, 1e7) = %v", got)
	}
}

func TestTQuantilePanicsOutsideDomain(t *testing.T) {
	for _, c := range [][2]float64{{0, 3}, {1, 3}, {0.5, 0}, {math.NaN(), 3}, {0.5, math.Inf(1)}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("TQuantile(%v, %v) did not panic", c[0], c[1])
				}
			}()
			TQuantile(c[0], c[1])
		}()
	}
}

func TestSummarize(t *testing.T) {
	// xs = 1,2,3,4: mean 2.5, s = sqrt(5/3) = 1.29099444873581,
	// h = t_{0.975,3}·s/2 = 3.18244630528371·0.645497224367903 = 2.05427098...
	s := Summarize([]float64{1, 2, 3, 4})
	if s.N != 4 || s.Mean != 2.5 || math.Abs(s.Std-1.29099444873581) > 1e-12 {
		t.Errorf("Summarize = %+v", s)
	}
	if want := 3.18244630528371 * 1.29099444873581 / 2; math.Abs(s.HalfWidth-want) > 1e-12 {
		t.Errorf("half-width %.15g, want %.15g", s.HalfWidth, want)
	}
	if !s.HasCI() || math.Abs(s.Lo()-(2.5-s.HalfWidth)) > 0 || math.Abs(s.Hi()-(2.5+s.HalfWidth)) > 0 {
		t.Errorf("interval [%v, %v]", s.Lo(), s.Hi())
	}
	// Two values 1.5, 1.6: h = 12.7062047361747·0.0707106781186548/√2 = 0.635310236808735.
	if s := Summarize([]float64{1.5, 1.6}); math.Abs(s.HalfWidth-0.635310236808735) > 1e-12 {
		t.Errorf("n=2 half-width %.15g", s.HalfWidth)
	}
	one := Summarize([]float64{3})
	if one.N != 1 || one.Mean != 3 || one.Std != 0 || one.HasCI() || !math.IsNaN(one.HalfWidth) || one.Lo() != 3 || one.Hi() != 3 {
		t.Errorf("single value: %+v", one)
	}
	none := Summarize(nil)
	if none.N != 0 || !math.IsNaN(none.Mean) || none.HasCI() {
		t.Errorf("empty: %+v", none)
	}
	// Identical values: zero-width interval, not NaN.
	if s := Summarize([]float64{2, 2, 2}); s.HalfWidth != 0 || !s.HasCI() {
		t.Errorf("constant: %+v", s)
	}
}
