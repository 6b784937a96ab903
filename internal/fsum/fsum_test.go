package fsum

import (
	"math"
	"testing"
)

func TestSum(t *testing.T) {
	// Naive summation loses the small terms entirely.
	xs := []float64{1e16, 1, -1e16, 1}
	if got := Sum(xs); got != 2 {
		t.Errorf("Sum(%v) = %v, want 2", xs, got)
	}
	if got := Sum([]float64{1, math.Inf(1)}); !math.IsInf(got, 1) {
		t.Errorf("Sum with +Inf = %v", got)
	}
	if got := Sum(nil); got != 0 {
		t.Errorf("Sum(nil) = %v", got)
	}
	many := make([]float64, 1_000_000)
	for i := range many {
		many[i] = 0.1
	}
	if got := Sum(many); math.Abs(got-100000) > 1e-9 {
		t.Errorf("Sum of a million 0.1 = %.12f", got)
	}
}
