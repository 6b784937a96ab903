package s2s_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/s2s"
)

// TestRewindRows: after a ragged RewindRows, StepN gives row by row what
// a state of that row alone, fed the same prefix, gives; again on the
// next pass (each row's keys and values went to its own slots), across
// cache growth (capacity 16, then the context 24).
func TestRewindRows(t *testing.T) {
	m := tiny(t, 2, 24)
	ctx := t.Context()
	sources, inputs := fixture(6)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct {
		prompt, first int   // tokens fed before the rewind
		keep          []int // RewindRows
		k1, k2        int   // the passes after it
	}{
		{6, 3, []int{2, 9, 5, 9}, 8, 2},    // 9+8 grows the cache past 16
		{6, 10, []int{16, 3, 1, 12}, 3, 4}, // 16+3 after a cache of 16
		{4, 2, []int{6, 6, 6, 6}, 1, 1},    // equal lengths
	} {
		fed := make([][]int, len(sources))
		for i := range fed {
			fed[i] = append([]int(nil), inputs[i][:c.prompt]...)
		}
		st, _, err := m.StartSource(ctx, sources, fed)
		if err != nil {
			t.Fatal(err)
		}
		more := randomRows(rng, len(sources), c.first)
		if _, err := m.StepN(ctx, st, more); err != nil {
			t.Fatal(err)
		}
		for i := range fed {
			fed[i] = append(fed[i], more[i]...)
		}
		if err := m.RewindRows(st, c.keep); err != nil {
			t.Fatal(err)
		}
		want := 0
		for i, n := range c.keep {
			fed[i] = fed[i][:n]
			want = max(want, n)
		}
		if st.Len() != want {
			t.Fatalf("Len after RewindRows(%v) = %d, want the longest row's %d", c.keep, st.Len(), want)
		}
		// alone[i] is row i's own state, fed the same tokens.
		alone := make([]harness.State, len(sources))
		for i := range sources {
			s, _, err := m.StartSource(ctx, sources[i:i+1], fed[i:i+1])
			if err != nil {
				t.Fatal(err)
			}
			alone[i] = s
		}
		for pass, k := range []int{c.k1, c.k2} {
			next := randomRows(rng, len(sources), k)
			got, err := m.StepN(ctx, st, next)
			if err != nil {
				t.Fatal(err)
			}
			for i := range sources {
				if n := alone[i].Len(); n != len(fed[i]) {
					t.Fatalf("row %d alone holds %d tokens, want %d", i, n, len(fed[i]))
				}
				w, err := m.StepN(ctx, alone[i], next[i:i+1])
				if err != nil {
					t.Fatal(err)
				}
				for j := range k {
					wd := make([]float64, tinyVocab)
					for v := range wd {
						wd[v] = float64(w[0][j][v])
					}
					assertDist(t, fmt.Sprintf("keep %v pass %d row %d new token %d", c.keep, pass, i, j), got[i][j], wd)
				}
				fed[i] = append(fed[i], next[i]...)
			}
		}
	}
}

// TestRewindRowsErrors: bad lengths are errors and leave the state as it
// was; Rewind is bounded by the shortest row.
func TestRewindRowsErrors(t *testing.T) {
	m := tiny(t, 1, 8)
	ctx := t.Context()
	sources := [][]int{{3, 4}, {5}}
	st, _, err := m.StartSource(ctx, sources, [][]int{{1, 2, 3}, {1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RewindRows(st, []int{3, 1}); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string][]int{"count": {1}, "zero": {0, 1}, "longer than the row": {3, 2}, "negative": {1, -1}} {
		if err := m.RewindRows(st, n); err == nil {
			t.Errorf("RewindRows %s %v: no error", name, n)
		}
	}
	if err := m.Rewind(st, 2); err == nil {
		t.Error("Rewind(2) with a row of 1 token succeeded")
	}
	if err := m.RewindRows(nil, []int{1, 1}); err == nil {
		t.Error("RewindRows of a nil state succeeded")
	}
	if st.Len() != 3 {
		t.Errorf("Len = %d, want 3", st.Len())
	}
	// Row 0 holds 3 tokens: 6 more pass the context of 8, although row 1's
	// would fit.
	if _, err := m.StepN(ctx, st, [][]int{{1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1}}); err == nil {
		t.Error("StepN past the context of the longer row succeeded")
	}
	if _, err := m.StepN(ctx, st, [][]int{{1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	if st.Len() != 8 {
		t.Errorf("Len = %d, want 8", st.Len())
	}
	if err := m.Rewind(st, 6); err != nil {
		t.Fatal(err)
	}
	if st.Len() != 6 {
		t.Errorf("Len after Rewind(6) = %d", st.Len())
	}
}

var _ encdec.RowVerifier = (*s2s.Model)(nil)
