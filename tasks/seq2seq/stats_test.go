package seq2seq

import (
	"math"
	"testing"

	"arbench/harness"
	"arbench/internal/stats"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestWilsonCI: a fraction's interval is internal/stats' Wilson interval
// (pinned there), recorded with its method and row count.
func TestWilsonCI(t *testing.T) {
	ci := wilsonCI(5, 10)
	if ci == nil || !near(float64(ci.Lo), 0.2366, 5e-5) || !near(float64(ci.Hi), 0.7634, 5e-5) ||
		ci.Method != harness.CIWilson || ci.N != 10 || ci.Of != "rows" {
		t.Errorf("wilsonCI(5, 10) = %+v", ci)
	}
	if ci := wilsonCI(0, 0); ci != nil {
		t.Errorf("wilsonCI(0, 0) = %+v, want none", ci)
	}
}

// TestRatioCI: the pooled ratio, a zero-width interval when every row has
// the same ratio, the delta-method width otherwise, and no interval for
// one row.
func TestRatioCI(t *testing.T) {
	r, lo, hi := ratioCI([]float64{1, 2, 3}, []float64{2, 4, 6})
	if r != 0.5 || lo != 0.5 || hi != 0.5 {
		t.Errorf("equal ratios: %v [%v, %v]", r, lo, hi)
	}
	// Rows 0/2 and 2/2: R = 1/2, residuals −1 and 1, se = √(2/(2·1)) / 2.
	r, lo, hi = ratioCI([]float64{0, 2}, []float64{2, 2})
	half := stats.Z(stats.Level) * math.Sqrt(2.0/(2*1)) / 2
	if r != 0.5 || !near(lo, max(0, 0.5-half), 1e-12) || !near(hi, min(1, 0.5+half), 1e-12) {
		t.Errorf("two rows: %v [%v, %v], half-width %v", r, lo, hi, half)
	}
	if _, lo, hi := ratioCI([]float64{1}, []float64{2}); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("one row: [%v, %v]", lo, hi)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{4, 1, 3, 2}
	for q, want := range map[float64]float64{0: 1, 0.5: 2.5, 0.9: 3.7, 1: 4} {
		if got := quantile(xs, q); !near(got, want, 1e-12) {
			t.Errorf("quantile(%v, %v) = %v, want %v", xs, q, got, want)
		}
	}
	if xs[0] != 4 || !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile sorted its input or answered for no data")
	}
}
