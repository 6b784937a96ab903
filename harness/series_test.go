package harness

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestSeriesRecordJSON checks that a series with non-finite values survives a
// JSON round trip next to its model, task and seed.
func TestSeriesRecordJSON(t *testing.T) {
	in := []SeriesRecord{{Model: "rnn", Task: "synthetic/copy", Seed: 3, Series: Series{
		Name: "kl_vs_position", Label: "free_running", XName: "position", Unit: "nats",
		X: []float64{1, 2, 3}, Y: []float64{0.5, math.Inf(1), math.NaN()}, N: []int{4, 4, 4},
		Lo: []float64{0.25, 1, math.NaN()}, Hi: []float64{0.75, math.Inf(1), math.NaN()}, CIMethod: CIWilson,
	}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"model":"rnn"`, `"task":"synthetic/copy"`, `"seed":3`, `"name":"kl_vs_position"`, `"+Inf"`, `"NaN"`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("%s lacks %s", b, s)
		}
	}
	var out []SeriesRecord
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	got := out[0]
	if got.Model != "rnn" || got.Task != "synthetic/copy" || got.Seed != 3 || got.Label != "free_running" ||
		got.Y[0] != 0.5 || !math.IsInf(got.Y[1], 1) || !math.IsNaN(got.Y[2]) || got.N[2] != 4 ||
		got.Lo[0] != 0.25 || !math.IsInf(got.Hi[1], 1) || !math.IsNaN(got.Lo[2]) || got.CIMethod != CIWilson {
		t.Fatalf("round trip: %+v", got)
	}
	// Without intervals none are written.
	in[0].Lo, in[0].Hi, in[0].CIMethod = nil, nil, ""
	if b, _ := json.Marshal(in); strings.Contains(string(b), `"lo"`) || strings.Contains(string(b), "ci_method") {
		t.Errorf("series without intervals wrote some: %s", b)
	}
}

func TestReferenceName(t *testing.T) {
	n := ReferenceName("bits_per_byte", "unigram")
	if m, r, ok := SplitReference(n); n != "bits_per_byte~unigram" || !ok || m != "bits_per_byte" || r != "unigram" {
		t.Errorf("ReferenceName = %q, SplitReference = %q %q %v", n, m, r, ok)
	}
	if m, r, ok := SplitReference(ReferenceName("exact_match@it4", "chance")); !ok || m != "exact_match@it4" || r != "chance" {
		t.Errorf("a decoding setting's reference: %q %q %v", m, r, ok)
	}
	for _, bad := range []string{"bits_per_byte", "exact_match@it4", "~x", "x~"} {
		if _, _, ok := SplitReference(bad); ok {
			t.Errorf("SplitReference(%q) ok", bad)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("ReferenceName with '~' did not panic")
		}
	}()
	ReferenceName("a", "b~c")
}
