package synthetic

import (
	"context"
	"math"
	"testing"

	"arbench/harness"
)

// TestChanceLevels: per variant the accuracy and loss of a model that
// knows only the answer alphabet, as metrics METRIC~chance and series
// labelled "chance"; a model spreading its mass uniformly over that
// alphabet scores the chance loss exactly.
func TestChanceLevels(t *testing.T) {
	for _, c := range []struct {
		variant  string
		edit     func(*Config)
		alphabet int // answers
		loss     int // loss targets
		x        string
	}{
		{"copy", func(c *Config) { c.Symbols, c.Lengths = 6, []int{2, 3} }, 6, 6, "length"},
		{"selective-copy", func(c *Config) { c.Symbols, c.Lengths, c.Marked = 5, []int{8}, 3 }, 5, 5, "length"},
		{"assoc-recall", func(c *Config) { c.Symbols, c.Pairs = 7, []int{2, 4} }, 7, 7, "pairs"},
		{"needle", func(c *Config) { c.Symbols, c.Distances = 9, []int{3} }, 9, 9, "distance"},
		{"needle", func(c *Config) { c.Symbols, c.Distances, c.Distractors = 9, []int{6}, 2 }, 9, 9, "distance"},
		{"copy-memory", func(c *Config) { c.Symbols, c.Items, c.Delays = 4, 3, []int{0, 5} }, 4, 4, "delay"},
		{"dyck", func(c *Config) { c.Types, c.Lengths = 3, []int{12} }, 3, 6, ""},
	} {
		tk := prepared(t, c.variant, func(cfg *Config) { c.edit(cfg); cfg.EvalRows = 20 })
		lossLo := FirstSymbol
		if c.variant == "assoc-recall" {
			lossLo += tk.cfg.Keys
		}
		if c.variant == "needle" {
			lossLo += tk.cfg.Fillers
		}
		uniform := func([]int, int) []float32 {
			out := make([]float32, tk.vocab)
			for v := range out {
				out[v] = float32(math.Inf(-1))
				if v >= lossLo && v < lossLo+c.loss {
					out[v] = float32(-math.Log(float64(c.loss)))
				}
			}
			return out
		}
		ev, err := tk.Evaluate(context.Background(), &steppedModel{rowModel: &rowModel{baseModel: baseModel{"u", tk.vocab}, next: uniform}})
		if err != nil {
			t.Fatalf("%s: %v", c.variant, err)
		}
		chance := func(name string) float64 { return metric(t, ev, harness.ReferenceName(name, "chance")) }
		if got, want := chance("accuracy"), 1/float64(c.alphabet); got != want {
			t.Errorf("%s: accuracy~chance %v, want 1/%d", c.variant, got, c.alphabet)
		}
		if got, want := chance("nats_per_token"), math.Log(float64(c.loss)); got != want {
			t.Errorf("%s: nats_per_token~chance %v, want log %d", c.variant, got, c.loss)
		}
		if got, want := metric(t, ev, "nats_per_token"), chance("nats_per_token"); math.Abs(got-want) > 1e-6 {
			t.Errorf("%s: the uniform model's loss %v, chance %v", c.variant, got, want)
		}
		var seq float64
		rows := 0
		for _, g := range tk.test {
			for _, e := range g.exs {
				n := 0
				for _, a := range e.answer {
					if a {
						n++
					}
				}
				seq += math.Pow(float64(c.alphabet), -float64(n))
				rows++
			}
		}
		if got := chance("sequence_accuracy"); math.Abs(got-seq/float64(rows)) > 1e-15 {
			t.Errorf("%s: sequence_accuracy~chance %v, want %v", c.variant, got, seq/float64(rows))
		}
		curve := tk.curveName()
		s, cs := series(t, ev, curve, ""), series(t, ev, curve, "chance")
		if len(cs.X) != len(s.X) {
			t.Fatalf("%s: chance series has %d points, accuracy %d", c.variant, len(cs.X), len(s.X))
		}
		for i := range cs.X {
			if cs.X[i] != s.X[i] || cs.Y[i] != 1/float64(c.alphabet) {
				t.Errorf("%s: chance point (%v, %v)", c.variant, cs.X[i], cs.Y[i])
			}
		}
		if c.x != "" && chance("accuracy_at_max_"+c.x) != 1/float64(c.alphabet) {
			t.Errorf("%s: accuracy_at_max_%s~chance missing or wrong", c.variant, c.x)
		}
		if tk.runsFreeRunning() {
			errs := series(t, ev, "token_error_vs_position", "chance")
			first := series(t, ev, "first_error_position", "chance")
			p := 1 / float64(c.alphabet)
			for i := range errs.Y {
				if math.Abs(errs.Y[i]-(1-p)) > 1e-15 || math.Abs(first.Y[i]-math.Pow(p, float64(i))*(1-p)) > 1e-15 {
					t.Errorf("%s: chance error %v / first error %v at %v", c.variant, errs.Y[i], first.Y[i], errs.X[i])
				}
			}
			if chance("accuracy_free_running") != p {
				t.Errorf("%s: accuracy_free_running~chance wrong", c.variant)
			}
		}
	}
}
