package harness

import "testing"

// TestConfigDiffNumbers: configurations are compared by value, not by
// spelling, the way other JSON tools rewrite them (Python writes 1e-08
// where Go writes 1e-8, sorts keys, indents), and integers exactly, so
// neighbouring uint64 seeds, equal in float64, still differ.
func TestConfigDiffNumbers(t *testing.T) {
	for _, c := range []struct {
		stored, current, diff string
	}{
		{`{"eps": 1e-08}`, `{"eps":1e-8}`, ""},
		{`{"lr": 0.0010}`, `{"lr": 0.001}`, ""},
		{`{"clip": 1.0}`, `{"clip": 1}`, ""},
		{`{"n": 1E3}`, `{"n": 1000}`, ""},
		{`{"x": -0.0}`, `{"x": 0}`, ""},
		{`{"x": 0.1}`, `{"x": 0.10000000000000001}`, ""}, // the same float64
		{`{"seed": 1.8446744073709551615e19}`, `{"seed": 18446744073709551615}`, ""},
		{`{"b": [1, {"c": 2.50}], "a": "s"}`, `{"a": "s", "b": [1.0, {"c": 2.5}]}`, ""},
		{`{"seed": 18446744073709551614}`, `{"seed": 18446744073709551615}`, "seed: stored 18446744073709551614, now 18446744073709551615"},
		{`{"seed": 9007199254740993}`, `{"seed": 9007199254740992}`, "seed: stored 9007199254740993, now 9007199254740992"},
		{`{"lr": 0.001}`, `{"lr": 0.0011}`, "lr: stored 0.001, now 0.0011"},
		{`{"x": 1.5}`, `{"x": 1}`, "x: stored 1.5, now 1"},
		{`{"x": 1}`, `{"x": "1"}`, `x: stored 1, now "1"`},
		{`{"x": 1e400}`, `{"x": 1e401}`, "x: stored 1e400, now 1e401"},
		{`{"x": 1e400}`, `{"x": 1e400}`, ""},
		{`{"x": 1e999999999999}`, `{"x": 1}`, "x: stored 1e999999999999, now 1"},
		{`{"m": {"a": 1}}`, `{"m": {"a": 1, "b": 2}}`, "m.b: stored absent, now 2"},
	} {
		diff, err := configDiff([]byte(c.stored), []byte(c.current))
		if err != nil {
			t.Errorf("%s vs %s: %v", c.stored, c.current, err)
			continue
		}
		if diff != c.diff {
			t.Errorf("%s vs %s: diff %q, want %q", c.stored, c.current, diff, c.diff)
		}
	}
}
