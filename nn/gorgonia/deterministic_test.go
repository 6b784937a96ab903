package gorgonia

import (
	"testing"

	"arbench/harness"
)

func TestDeterministicToleranceIsExact(t *testing.T) {
	if tol := harness.DefaultTolerance(New()); tol != (harness.Tolerance{}) {
		t.Fatalf("gorgonia backend tolerance = %+v, want exact", tol)
	}
}
