package synthetic

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/internal/stats"
)

// gradModel is a rowModel that reports input-gradient norms
// ‖∂ℓ_t/∂x_s‖ = decay^(t−s)·(1 + x_s mod 3): geometric vanishing with a
// per-token factor, so the expected series is known. It checks the
// contract (a scored target at t, at most eval_batch rows) and records
// its calls.
type gradModel struct {
	*rowModel
	decay   float64
	maxRows int
	calls   []int // t of each call
}

func (m *gradModel) norm(row []int, t, s int) float64 {
	return math.Pow(m.decay, float64(t-s)) * float64(1+row[s]%3)
}

func (m *gradModel) InputGradientNorms(_ context.Context, b harness.Batch, t int) ([][]float64, error) {
	if len(b.Inputs) > m.maxRows {
		return nil, fmt.Errorf("%d rows, more than eval_batch %d", len(b.Inputs), m.maxRows)
	}
	m.calls = append(m.calls, t)
	out := make([][]float64, len(b.Inputs))
	for i, row := range b.Inputs {
		if t >= len(row) || b.Targets[i][t] < 0 {
			return nil, fmt.Errorf("row %d: no scored target at %d", i, t)
		}
		for s := 0; s <= t; s++ {
			out[i] = append(out[i], m.norm(row, t, s))
		}
	}
	return out, nil
}

// gradDeclaring has the method but declares it lacks the capability (as
// an external plugin whose backend cannot compute it does).
type gradDeclaring struct{ *gradModel }

func (m gradDeclaring) Declares(c harness.Capability) bool { return c != harness.NeedInputGradients }

// TestGradientNormsSeries: on needle (rows' readouts at different
// positions) the series is the mean over rows of the fake's norms at each
// distance k, with bootstrap bands; the labels tell the measurement before
// training (EvaluateInitial) from the one after (Evaluate); the summary is
// the mean over rows of log10(norm at the dependency / norm at k = 0).
func TestGradientNormsSeries(t *testing.T) {
	const d = 6
	tk := prepared(t, "needle", func(c *Config) {
		c.Distances, c.MaxPrefix, c.EvalRows, c.EvalBatch = []int{2, d}, 5, 30, 4
		c.GradientNorms, c.GradientRows = true, 20
	})
	m := &gradModel{rowModel: &rowModel{baseModel: baseModel{"g", tk.vocab}, next: func([]int, int) []float32 { return uniformLogp(tk.vocab) }},
		decay: 0.5, maxRows: 4}
	initial, err := tk.EvaluateInitial(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(initial.Metrics) != 1 || len(initial.Series) != 2 || len(initial.Samples) != 0 {
		t.Fatalf("EvaluateInitial returned %d metrics, %d series, %d samples; want the two gradient series and their summary",
			len(initial.Metrics), len(initial.Series), len(initial.Samples))
	}
	if !slices.IsSorted(m.calls) {
		t.Errorf("calls at t = %v, want rows grouped by readout", m.calls)
	}
	m.decay = 0.9 // "trained"
	ev, err := tk.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	rows := tk.test[len(tk.test)-1].exs[:20]
	for _, c := range []struct {
		ev    *harness.Evaluation
		label string
		decay float64
	}{{initial, "init", 0.5}, {ev, "trained", 0.9}} {
		m.decay = c.decay
		s := series(t, c.ev, "gradient_norm_vs_distance", c.label)
		if s.XName != "distance" || s.Unit != "norm" || s.CIMethod != harness.CIBootstrap || s.Params["dependency_distance"] != d {
			t.Errorf("%s: series axes %q %q, method %q, params %v", c.label, s.XName, s.Unit, s.CIMethod, s.Params)
		}
		var logs []float64
		for k := range s.X {
			var xs []float64
			for _, e := range rows {
				r, _ := readout(&e)
				if k <= r {
					xs = append(xs, m.norm(e.seq, r, r-k))
				}
			}
			if s.X[k] != float64(k) || s.N[k] != len(xs) || math.Abs(s.Y[k]-mean(xs)) > 1e-12 {
				t.Errorf("%s: point %d = (%v, %v, n=%d), want (%d, %v, n=%d)", c.label, k, s.X[k], s.Y[k], s.N[k], k, mean(xs), len(xs))
			}
			if !(s.Lo[k] <= s.Y[k] && s.Y[k] <= s.Hi[k]) {
				t.Errorf("%s: point %d band [%v, %v] misses %v", c.label, k, s.Lo[k], s.Hi[k], s.Y[k])
			}
		}
		if s.N[0] != 20 || s.N[len(s.N)-1] >= 20 {
			t.Errorf("%s: rows per point %v, want 20 at k = 0 and fewer at the largest k (rows start at different positions)", c.label, s.N)
		}
		// The log series is the mean of log10 norms at the same points.
		ls := series(t, c.ev, "gradient_norm_log10_vs_distance", c.label)
		for k := range ls.X {
			var xs []float64
			for _, e := range rows {
				if r, _ := readout(&e); k <= r {
					xs = append(xs, math.Log10(m.norm(e.seq, r, r-k)))
				}
			}
			if ls.Unit != "log10" || ls.X[k] != s.X[k] || ls.N[k] != s.N[k] || math.Abs(ls.Y[k]-mean(xs)) > 1e-12 || !(ls.Lo[k] <= ls.Y[k] && ls.Y[k] <= ls.Hi[k]) {
				t.Errorf("%s: log point %d = (%v, %v [%v, %v]), want mean log10 %v", c.label, k, ls.X[k], ls.Y[k], ls.Lo[k], ls.Hi[k], mean(xs))
			}
		}
		for _, e := range rows {
			r, k := readout(&e)
			if k != d || e.seq[r-k] < FirstSymbol+tk.cfg.Fillers {
				t.Fatalf("readout at %d with dependency %d does not point at the needle", r, k)
			}
			logs = append(logs, math.Log10(m.norm(e.seq, r, r-k)/m.norm(e.seq, r, r)))
		}
		want := stats.BootstrapMean(logs, 0.95, stats.Resamples, tk.bootSeed("gradient_norm_log10_ratio_"+c.label))
		got := metricOf(t, c.ev, "gradient_norm_log10_ratio_"+c.label)
		if math.Abs(got.Value-want.Estimate) > 1e-12 || float64(got.CI.Lo) != want.Lo || float64(got.CI.Hi) != want.Hi || got.CI.N != 20 {
			t.Errorf("%s: ratio %v %+v, want %v [%v, %v] over 20 rows", c.label, got.Value, got.CI, want.Estimate, want.Lo, want.Hi)
		}
	}
	if a, b := metric(t, initial, "gradient_norm_log10_ratio_init"), metric(t, ev, "gradient_norm_log10_ratio_trained"); !(a < b) {
		t.Errorf("faster decay before training (%v) should lose more orders of magnitude than after (%v)", a, b)
	}
}

// TestGradientNormsSkipped: with the option off EvaluateInitial is empty
// and Evaluate unchanged; a model that is no InputGradienter (or declares
// it lacks one) is measured without gradients; the option adds nothing to
// Needs.
func TestGradientNormsSkipped(t *testing.T) {
	for _, on := range []bool{false, true} {
		tk := prepared(t, "copy", func(c *Config) { c.Lengths, c.EvalRows, c.GradientNorms = []int{4}, 8, on })
		if got := tk.Info().Needs; slices.Contains(got, harness.NeedInputGradients) {
			t.Errorf("gradient_norms %v: needs %v", on, got)
		}
		plain := &rowModel{baseModel: baseModel{"p", tk.vocab}, next: perfectCopy(tk.vocab)}
		grad := &gradModel{rowModel: plain, decay: 0.5, maxRows: 64}
		for name, m := range map[string]harness.Model{"plain": plain, "declines": gradDeclaring{grad}, "grad": grad} {
			initial, err := tk.EvaluateInitial(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := tk.Evaluate(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			measured := on && name == "grad"
			has := slices.ContainsFunc(ev.Series, func(s harness.Series) bool { return s.Name == "gradient_norm_vs_distance" })
			if has != measured || (len(initial.Series) > 0) != measured || (len(initial.Metrics) > 0) != measured {
				t.Errorf("gradient_norms %v, %s model: trained series %v, initial %d series %d metrics", on, name, has, len(initial.Series), len(initial.Metrics))
			}
		}
	}
}

// TestGradientNormsRejectsBadAnswers: a model answering the wrong shape or
// a negative norm is an error naming the label.
func TestGradientNormsRejectsBadAnswers(t *testing.T) {
	if err := checkGradients([][]float64{{1, 2}}, 2, 1); err == nil {
		t.Error("one row for two accepted")
	}
	if err := checkGradients([][]float64{{1}}, 1, 1); err == nil {
		t.Error("one norm for positions 0..1 accepted")
	}
	if err := checkGradients([][]float64{{1, -1}}, 1, 1); err == nil {
		t.Error("a negative norm accepted")
	}
	tk := prepared(t, "copy", func(c *Config) { c.Lengths, c.EvalRows, c.GradientNorms = []int{4}, 8, true })
	m := &gradModel{rowModel: &rowModel{baseModel: baseModel{"g", tk.vocab}, next: perfectCopy(tk.vocab)}, decay: 0.5, maxRows: 2}
	if _, err := tk.EvaluateInitial(context.Background(), m); err == nil || !strings.Contains(err.Error(), "gradient norms (init)") {
		t.Errorf("a model failing the measurement: %v", err)
	}
}

// A norm that underflows to 0 is floored at the smallest float32, so the
// summary stays finite, and the floored rows are counted.
func TestGradientRatioFloorsUnderflow(t *testing.T) {
	var tk Task
	norms := [][]float64{{1, 0.1, 0}, {2, 0.2, 0.002}}
	m := tk.gradientRatio("trained", nil, norms, []int{2, 2})
	want := (math.Log10(0x1p-149) + math.Log10(0.001)) / 2
	if math.Abs(m.Value-want) > 1e-9 || m.Params["underflow_rows"] != 1 || m.CI == nil {
		t.Errorf("ratio %v (want %v), params %v, ci %+v", m.Value, want, m.Params, m.CI)
	}
}
