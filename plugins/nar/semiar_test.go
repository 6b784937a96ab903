package nar

import (
	"context"
	"reflect"
	"testing"

	"arbench/harness"
)

// Semi-autoregressive decoding: k tokens per pass, ⌈N/k⌉ passes (counted
// at the decoder); k ≥ N is the one-pass output of T = 1.
func TestSemiAutoregressive(t *testing.T) {
	m := trainedModel(t)
	m.cfg.SemiAR = []int{1, 3, 8}
	defer func() { m.cfg.SemiAR = nil }()
	srcs := sources(trained.test[:16])
	one, err := m.Translate(context.Background(), srcs, opts("T=1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		setting string
		passes  int
	}{{"k=1", 7}, {"k=3", 3}, {"k=8", 1}} {
		before := m.decoderPasses
		got, err := harness.Translate(context.Background(), m, srcs, opts(tc.setting))
		if err != nil {
			t.Fatal(err)
		}
		if got.Passes != tc.passes || m.decoderPasses-before != tc.passes {
			t.Errorf("%s: %d passes reported, %d run; want %d (N = 7)", tc.setting, got.Passes, m.decoderPasses-before, tc.passes)
		}
		if tc.setting == "k=8" && !reflect.DeepEqual(got.Outputs, one.Outputs) {
			t.Errorf("k=8 ≥ N: %v, want T=1's %v", got.Outputs[:2], one.Outputs[:2])
		}
		exact := 0
		for i, e := range trained.test[:16] {
			if e.Match(got.Outputs[i]) >= 0 {
				exact++
			}
		}
		t.Logf("%s: %d of 16 exact", tc.setting, exact)
	}
	names := []string{}
	for _, s := range m.DecodeSettings() {
		names = append(names, s.Name)
	}
	if want := []string{"T=1", "T=2", "T=4", "T=10", "k=1", "k=3", "k=8"}; !reflect.DeepEqual(names, want) {
		t.Errorf("settings %v, want %v", names, want)
	}
	fixed, err := m.Translate(context.Background(), srcs[:2], harness.TranslateOptions{End: 2, Length: 5, Setting: "k=3"})
	if err != nil || len(fixed.Outputs[0]) != 5 || fixed.Passes != 2 {
		t.Errorf("Length 5 at k=3: %v, %v; want 5 tokens in 2 passes", fixed, err)
	}
	c := DefaultConfig()
	c.SemiAR = []int{2, 0, 2}
	if errs := c.Validate(); len(errs) != 2 {
		t.Errorf("semi_ar [2 0 2]: %v, want 2 errors", errs)
	}
}
