package synthetic

import (
	"context"
	"slices"
	"testing"
)

// TestCopyMemoryAccuracyPerDelay: a copier that reaches back at most W
// tokens recalls every symbol while K+D ≤ W and none beyond, at every
// delay alike (the load K is fixed).
func TestCopyMemoryAccuracyPerDelay(t *testing.T) {
	const K, W = 3, 10
	tk := prepared(t, "copy-memory", func(c *Config) { c.Items, c.Delays, c.EvalRows = K, []int{20, 0, 5}, 16 })
	copyRule := perfectCopy(tk.vocab)
	rule := func(row []int, t int) []float32 {
		if s := sepIndex(row); s >= 0 && t >= s && t-(t-s+1) > W {
			return pointMass(tk.vocab, Pad)
		}
		return copyRule(row, t)
	}
	ev, err := tk.Evaluate(context.Background(), &steppedModel{rowModel: &rowModel{baseModel: baseModel{"w", tk.vocab}, next: rule}})
	if err != nil {
		t.Fatal(err)
	}
	s := series(t, ev, "accuracy_vs_delay", "")
	if s.XName != "delay" || !slices.Equal(s.X, []float64{0, 5, 20}) || !slices.Equal(s.Y, []float64{1, 1, 0}) || !slices.Equal(s.N, []int{48, 48, 48}) {
		t.Errorf("accuracy_vs_delay %s %v %v %v", s.XName, s.X, s.Y, s.N)
	}
	if v := metric(t, ev, "usable_delay"); v != 5 {
		t.Errorf("usable_delay = %v, want 5", v)
	}
	if v := metric(t, ev, "accuracy_at_max_delay"); v != 0 {
		t.Errorf("accuracy_at_max_delay = %v, want 0", v)
	}
	if v := metric(t, ev, "accuracy_free_running"); v != 0 {
		t.Errorf("accuracy_free_running at delay 20 = %v, want 0", v)
	}
	if tf := series(t, ev, "token_error_vs_position", "teacher_forced"); len(tf.X) != K {
		t.Errorf("token_error_vs_position has %d answer positions, want %d", len(tf.X), K)
	}
}

// TestNeedleDistractorsNeedTheKey: a model that looks the queried key up
// answers every row; one that copies the latest value is right only where
// the needle happens to be the last pair.
func TestNeedleDistractorsNeedTheKey(t *testing.T) {
	tk := prepared(t, "needle", func(c *Config) { c.Distractors, c.Distances, c.EvalRows = 3, []int{4, 40}, 60 })
	valueLo, keyLo := FirstSymbol+tk.cfg.Fillers, FirstSymbol+tk.cfg.Fillers+tk.cfg.Symbols
	if tk.vocab != keyLo+tk.cfg.Keys {
		t.Fatalf("vocab %d, want %d", tk.vocab, keyLo+tk.cfg.Keys)
	}
	lookup := func(row []int, t int) []float32 {
		if t == 0 || row[t-1] != Query {
			return uniformLogp(tk.vocab)
		}
		i := slices.Index(row, row[t])
		return pointMass(tk.vocab, row[i+1])
	}
	latest := func(row []int, t int) []float32 {
		if t == 0 || row[t-1] != Query {
			return uniformLogp(tk.vocab)
		}
		for k := t - 2; k >= 0; k-- {
			if row[k] >= valueLo && row[k] < keyLo {
				return pointMass(tk.vocab, row[k])
			}
		}
		return pointMass(tk.vocab, Pad)
	}
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"lookup", tk.vocab}, next: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if v := metric(t, ev, "accuracy"); v != 1 {
		t.Errorf("key lookup: accuracy %v, want 1", v)
	}
	ev, err = tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"latest", tk.vocab}, next: latest})
	if err != nil {
		t.Fatal(err)
	}
	s := series(t, ev, "accuracy_vs_distance", "")
	for gi, g := range tk.test {
		right := 0
		for _, e := range g.exs {
			q := slices.Index(e.seq, Query)
			last := -1
			for k := q - 1; k >= 0; k-- {
				if e.seq[k] >= valueLo && e.seq[k] < keyLo {
					last = e.seq[k]
					break
				}
			}
			if last == e.seq[q+2] {
				right++
			}
		}
		if want := float64(right) / float64(len(g.exs)); s.Y[gi] != want {
			t.Errorf("latest value at d=%d: accuracy %v, want %v", g.sweep, s.Y[gi], want)
		}
	}
	if !(s.Y[1] < 0.6) {
		t.Errorf("latest value at d=40: accuracy %v, want well below 1 (the needle is last in about a quarter of the rows)", s.Y[1])
	}
}
