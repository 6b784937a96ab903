package bench

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

// TestQuantileKnownSamples checks values computed by hand with numpy's
// default (linear) method, e.g. numpy.percentile([1,2,3,4], 25) = 1.75.
func TestQuantileKnownSamples(t *testing.T) {
	cases := []struct {
		xs   []float64
		q    float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, 0.25, 1.75},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{1, 2, 3, 4}, 0.75, 3.25},
		{[]float64{4, 1, 3, 2}, 0.9, 3.7}, // unsorted input
		{[]float64{7}, 0.99, 7},
		{[]float64{10, 20}, 0, 10},
		{[]float64{10, 20}, 1, 20},
		{[]float64{10, 20}, 0.3, 13},
		// 1..100: h = 0.99·99 = 98.01 → 99 + 0.01·(100-99) = 99.01.
		{seq(1, 100), 0.99, 99.01},
		{seq(1, 100), 0.9, 90.1},
		{seq(1, 100), 0.5, 50.5},
	}
	for _, c := range cases {
		if got := Quantile(c.xs, c.q); !near(got, c.want) {
			t.Errorf("Quantile(%v, %v) = %v, want %v", c.xs, c.q, got, c.want)
		}
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("quantile of an empty sample is not NaN")
	}
	xs := []float64{3, 1, 2}
	Quantile(xs, 0.5)
	if xs[0] != 3 || xs[1] != 1 {
		t.Error("Quantile reordered its input")
	}
}

func seq(lo, hi int) []float64 {
	var s []float64
	for i := lo; i <= hi; i++ {
		s = append(s, float64(i))
	}
	return s
}

func TestSummarizeAndLatencies(t *testing.T) {
	s := Summarize([]float64{5, 1, 4, 2, 3})
	if s.N != 5 || s.Median != 3 || s.Q1 != 2 || s.Q3 != 4 || s.IQR != 2 || s.Min != 1 || s.Max != 5 {
		t.Errorf("Summarize = %+v", s)
	}
	if s.Values[0] != 5 {
		t.Errorf("Values not in measurement order: %v", s.Values)
	}
	l := Latencies(seq(1, 100))
	if l.N != 100 || !near(l.Mean, 50.5) || !near(l.P50, 50.5) || !near(l.P90, 90.1) || !near(l.P99, 99.01) || l.Max != 100 {
		t.Errorf("Latencies(1..100) = %+v", l)
	}
	if e := Summarize(nil); e.N != 0 || e.Median != 0 || e.Values != nil {
		t.Errorf("Summarize(nil) = %+v", e)
	}
	if e := Latencies(nil); e != (Latency{}) {
		t.Errorf("Latencies(nil) = %+v", e)
	}
}

func TestQuantilePanicsOutsideUnitInterval(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Quantile(xs, 1.5) did not panic")
		}
	}()
	Quantile([]float64{1}, 1.5)
}
