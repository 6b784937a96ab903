package synthetic

import (
	"context"
	"math"
	"testing"

	"arbench/harness"
	"arbench/internal/stats"
)

func metricOf(t *testing.T, ev *harness.Evaluation, name string) harness.Metric {
	t.Helper()
	for _, m := range ev.Metrics {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no metric %s", name)
	return harness.Metric{}
}

func checkCI(t *testing.T, m harness.Metric, method string, n int, lo, hi float64) {
	t.Helper()
	ci := m.CI
	if ci == nil {
		t.Fatalf("%s: no interval", m.Name)
	}
	if ci.Method != method || ci.N != n || ci.Of != "rows" || ci.Level != 0.95 {
		t.Errorf("%s: interval %+v, want %s over %d rows at 0.95", m.Name, *ci, method, n)
	}
	if math.Abs(float64(ci.Lo)-lo) > 1e-12 || math.Abs(float64(ci.Hi)-hi) > 1e-12 {
		t.Errorf("%s: interval [%v, %v], want [%v, %v]", m.Name, ci.Lo, ci.Hi, lo, hi)
	}
}

// TestWilsonIntervalsOnNeedle: needle rows hold one answer each, so
// accuracy, sequence accuracy and every accuracy_vs_distance point get the
// Wilson interval of k correct of n rows. The model knows the needle only
// for even values, so k is known from the rows themselves.
func TestWilsonIntervalsOnNeedle(t *testing.T) {
	tk := prepared(t, "needle", func(c *Config) { c.Distances = []int{3, 9}; c.EvalRows = 50 })
	valueLo := FirstSymbol + tk.cfg.Fillers
	rule := func(row []int, t int) []float32 {
		if row[t] != Query {
			return uniformLogp(tk.vocab)
		}
		for k := t - 1; k >= 0; k-- {
			if row[k] >= valueLo && (row[k]-valueLo)%2 == 0 {
				return pointMass(tk.vocab, row[k])
			}
		}
		return pointMass(tk.vocab, Pad)
	}
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"even", tk.vocab}, next: rule})
	if err != nil {
		t.Fatal(err)
	}
	var perGroup []int
	total := 0
	for _, g := range tk.test {
		k := 0
		for _, e := range g.exs {
			q := len(e.seq) - 1
			for e.seq[q] == Pad {
				q--
			}
			if (e.seq[q]-valueLo)%2 == 0 {
				k++
			}
		}
		perGroup = append(perGroup, k)
		total += k
	}
	if total == 0 || total == 100 {
		t.Fatalf("degenerate test rows: %d of 100 even needles", total)
	}
	w := stats.Wilson(total, 100, 0.95)
	checkCI(t, metricOf(t, ev, "accuracy"), harness.CIWilson, 100, w.Lo, w.Hi)
	checkCI(t, metricOf(t, ev, "sequence_accuracy"), harness.CIWilson, 100, w.Lo, w.Hi)
	last := stats.Wilson(perGroup[1], 50, 0.95)
	checkCI(t, metricOf(t, ev, "accuracy_at_max_distance"), harness.CIWilson, 50, last.Lo, last.Hi)
	s := series(t, ev, "accuracy_vs_distance", "")
	if s.CIMethod != harness.CIWilson || len(s.Lo) != 2 || len(s.Hi) != 2 {
		t.Fatalf("accuracy_vs_distance bands %v %v %q", s.Lo, s.Hi, s.CIMethod)
	}
	for i, k := range perGroup {
		iv := stats.Wilson(k, 50, 0.95)
		if s.Y[i] != float64(k)/50 || s.Lo[i] != iv.Lo || s.Hi[i] != iv.Hi {
			t.Errorf("point %d: %v [%v, %v], want %v [%v, %v]", i, s.Y[i], s.Lo[i], s.Hi[i], float64(k)/50, iv.Lo, iv.Hi)
		}
	}
	// The loss: a bootstrap over rows that contains the value.
	nats := metricOf(t, ev, "nats_per_token")
	if nats.CI == nil || nats.CI.Method != harness.CIBootstrap || !(float64(nats.CI.Lo) <= nats.Value && nats.Value <= float64(nats.CI.Hi)) {
		t.Errorf("nats_per_token %v with interval %+v", nats.Value, nats.CI)
	}
}

// TestAccuracyIntervalOverRowsWhenAnswersCluster: a copy model that gets
// whole rows right or wrong (by the parity of the row's first symbol) has
// answers that are no independent trials: the accuracy's interval is a
// bootstrap over rows, as wide as a Wilson interval over the rows and far
// wider than one over the answers would be.
func TestAccuracyIntervalOverRowsWhenAnswersCluster(t *testing.T) {
	const L = 8
	tk := prepared(t, "copy", func(c *Config) { c.Lengths = []int{L}; c.EvalRows = 200; c.FreeRunning = false })
	copyRule := perfectCopy(tk.vocab)
	rule := func(row []int, t int) []float32 {
		if len(row) > 1 && (row[1]-FirstSymbol)%2 == 1 {
			return pointMass(tk.vocab, Pad) // the whole row wrong
		}
		return copyRule(row, t)
	}
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"rows", tk.vocab}, next: rule})
	if err != nil {
		t.Fatal(err)
	}
	acc := metricOf(t, ev, "accuracy")
	k := int(math.Round(acc.Value * 200))
	if acc.CI == nil || acc.CI.Method != harness.CIBootstrap || acc.CI.N != 200 || acc.CI.Of != "rows" {
		t.Fatalf("accuracy interval %+v, want a bootstrap over 200 rows", acc.CI)
	}
	width := float64(acc.CI.Hi - acc.CI.Lo)
	rows := stats.Wilson(k, 200, 0.95)
	answers := stats.Wilson(k*L, 200*L, 0.95)
	if math.Abs(width-(rows.Hi-rows.Lo)) > 0.25*(rows.Hi-rows.Lo) {
		t.Errorf("bootstrap width %v, want about the Wilson width over rows %v", width, rows.Hi-rows.Lo)
	}
	if width < 2*(answers.Hi-answers.Lo) {
		t.Errorf("bootstrap width %v, not clearly above the Wilson width over answers %v", width, answers.Hi-answers.Lo)
	}
	if s := series(t, ev, "accuracy_vs_distance", ""); s.CIMethod != harness.CIBootstrap || !(s.Lo[0] < s.Y[0] && s.Y[0] < s.Hi[0]) {
		t.Errorf("accuracy_vs_distance band [%v, %v] around %v by %q, want a bootstrap around the value", s.Lo[0], s.Hi[0], s.Y[0], s.CIMethod)
	}
}

// TestRatioRows: the linearised values average to the ratio, and with
// equal denominators they are the rows' own ratios.
func TestRatioRows(t *testing.T) {
	num, den := []float64{1, 5, 0, 2}, []float64{2, 6, 1, 3}
	z := ratioRows(num, den)
	if got, want := mean(z), 8.0/12; math.Abs(got-want) > 1e-15 {
		t.Errorf("mean %v, want %v", got, want)
	}
	z = ratioRows([]float64{1, 3, 4}, []float64{4, 4, 4})
	for i, want := range []float64{0.25, 0.75, 1} {
		if math.Abs(z[i]-want) > 1e-15 {
			t.Errorf("z[%d] = %v, want %v", i, z[i], want)
		}
	}
}

// TestFreeRunningIntervals: per-position errors and first-error fractions
// are proportions of rows (Wilson), the mean first-error position a
// bootstrap over the rows that erred.
func TestFreeRunningIntervals(t *testing.T) {
	tk := prepared(t, "copy", func(c *Config) { c.Lengths = []int{6}; c.EvalRows = 30 })
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"c", tk.vocab}, next: confusedCopy(tk.vocab, tk.cfg.Symbols)})
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"teacher_forced", "free_running"} {
		s := series(t, ev, "token_error_vs_position", label)
		if s.CIMethod != harness.CIWilson {
			t.Errorf("%s: method %q", label, s.CIMethod)
		}
		for i := range s.Y {
			k := int(math.Round(s.Y[i] * float64(s.N[i])))
			iv := stats.Wilson(k, s.N[i], 0.95)
			if s.Lo[i] != iv.Lo || s.Hi[i] != iv.Hi {
				t.Errorf("%s at %v: [%v, %v], want [%v, %v]", label, s.X[i], s.Lo[i], s.Hi[i], iv.Lo, iv.Hi)
			}
		}
	}
	// confusedCopy is always first wrong at answer 3.
	first := series(t, ev, "first_error_position", "free_running")
	if iv := stats.Wilson(30, 30, 0.95); first.Lo[2] != iv.Lo || first.Hi[2] != 1 {
		t.Errorf("first-error band at 3: [%v, %v], want [%v, 1]", first.Lo[2], first.Hi[2], iv.Lo)
	}
	m := metricOf(t, ev, "mean_first_error_position_free_running")
	if m.Value != 3 || float64(m.CI.Lo) != 3 || float64(m.CI.Hi) != 3 || m.CI.N != 30 {
		t.Errorf("mean first error %v %+v, want exactly 3 over 30 rows", m.Value, m.CI)
	}
	checkCI(t, metricOf(t, ev, "error_at_first_position_teacher_forced"), harness.CIWilson, 30, 0, stats.Wilson(0, 30, 0.95).Hi)
}
