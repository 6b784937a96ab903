package synthetic

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	"arbench/harness"
)

// The vanishing-gradient measurement (gradient_norms): for test rows of the
// largest sweep value, the loss ℓ_t at the row's long-range readout t and
// the norms ‖∂ℓ_t/∂x_{t−k}‖ of its gradient with respect to every earlier
// input vector x_{t−k}, k = 0..t (harness.InputGradienter), averaged over
// rows. A recurrent model whose backpropagated gradient shrinks
// geometrically with k (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov
// & Bengio 2013, eqs. 3–5) cannot learn the dependency at large k; the
// measurement shows whether it does, at initialisation and after
// training.
//
// The readout t of a row is its answer with the longest dependency (span),
// the first among equals: needle's answer, copy's and copy-memory's first
// copied symbol, the longest-range value of assoc-recall and
// selective-copy, the outermost closer of dyck. Its dependency distance
// k_dep = span − 1 is how far back the input it depends on lies.
//
// The measurement is not in TaskInfo.Needs: a model that is no
// InputGradienter is evaluated without it (no series, no metric), so an
// experiment can compare every model and measure the gradients of those
// that can report them.

// Gradient labels: before training (EvaluateInitial) and after (Evaluate).
const (
	gradInit    = "init"
	gradTrained = "trained"
)

var _ harness.InitialEvaluator = (*Task)(nil)

// EvaluateInitial implements harness.InitialEvaluator: with gradient_norms,
// the gradient measurement of the model before training (series label and
// metric suffix "init"); otherwise, and for a model that is no
// InputGradienter, an empty evaluation, so experiments without the option
// are unchanged.
func (t *Task) EvaluateInitial(ctx context.Context, m harness.Model) (*harness.Evaluation, error) {
	if len(t.test) == 0 {
		panic("synthetic: EvaluateInitial before a successful Prepare")
	}
	ev := &harness.Evaluation{}
	if err := t.gradientNorms(ctx, m, gradInit, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// readout returns a row's readout target t and its dependency distance.
func readout(e *example) (t, k int) {
	t = -1
	for i, a := range e.answer {
		if a && (t < 0 || e.span[i] > e.span[t]) {
			t = i
		}
	}
	return t, e.span[t] - 1
}

// gradientNorms adds the measurement labelled label to ev when the option
// is on and m can report input gradients.
func (t *Task) gradientNorms(ctx context.Context, m harness.Model, label string, ev *harness.Evaluation) error {
	if !t.cfg.GradientNorms {
		return nil
	}
	ig, ok := harness.InputGradienterOf(m)
	if !ok {
		return nil
	}
	g := t.test[len(t.test)-1]
	n := len(g.exs)
	if t.cfg.GradientRows > 0 {
		n = min(n, t.cfg.GradientRows)
	}
	norms, deps, err := t.measureGradients(ctx, ig, g.exs[:n])
	if err != nil {
		return fmt.Errorf("synthetic: gradient norms (%s): %w", label, err)
	}
	params := map[string]any{t.xName(): g.sweep, "rows": n, "readout": "the row's answer with the longest dependency"}
	if lo, hi := slices.Min(deps), slices.Max(deps); lo == hi {
		params["dependency_distance"] = lo
	} else {
		params["dependency_distance_range"] = []int{lo, hi}
	}
	ev.Series = append(ev.Series, t.gradientSeries(label, params, norms), t.gradientLogSeries(label, params, norms))
	ev.Metrics = append(ev.Metrics, t.gradientRatio(label, params, norms, deps))
	return nil
}

// measureGradients returns, per row, norms[i][k] = ‖∂ℓ_t/∂x_{t−k}‖ for
// k = 0..t at the row's readout t, and its dependency distance. Rows are
// cut after their readout's input and sent in batches of at most
// eval_batch rows sharing t (one t per call, as the interface takes it).
func (t *Task) measureGradients(ctx context.Context, ig harness.InputGradienter, exs []example) ([][]float64, []int, error) {
	norms := make([][]float64, len(exs))
	deps := make([]int, len(exs))
	byT := map[int][]int{}
	for i := range exs {
		r, k := readout(&exs[i])
		byT[r] = append(byT[r], i)
		deps[i] = k
	}
	ts := make([]int, 0, len(byT))
	for r := range byT {
		ts = append(ts, r)
	}
	slices.Sort(ts)
	for _, r := range ts {
		rows := byT[r]
		for lo := 0; lo < len(rows); lo += t.cfg.EvalBatch {
			chunk := rows[lo:min(lo+t.cfg.EvalBatch, len(rows))]
			b := harness.Batch{}
			for _, i := range chunk {
				in := batchOf(exs[i:i+1], r+1, false)
				b.Inputs, b.Targets = append(b.Inputs, in.Inputs[0]), append(b.Targets, in.Targets[0])
			}
			out, err := ig.InputGradientNorms(ctx, b, r)
			if err != nil {
				return nil, nil, err
			}
			if err := checkGradients(out, len(chunk), r); err != nil {
				return nil, nil, err
			}
			for j, i := range chunk {
				norms[i] = make([]float64, r+1)
				for k := range norms[i] {
					norms[i][k] = out[j][r-k]
				}
			}
		}
	}
	return norms, deps, nil
}

// checkGradients checks the shape and sign of InputGradientNorms' answer.
func checkGradients(out [][]float64, rows, t int) error {
	if len(out) != rows {
		return fmt.Errorf("model returned %d rows of gradient norms for %d", len(out), rows)
	}
	for i, row := range out {
		if len(row) != t+1 {
			return fmt.Errorf("model returned %d gradient norms for row %d, want %d (positions 0..%d)", len(row), i, t+1, t)
		}
		for s, v := range row {
			if v < 0 {
				return fmt.Errorf("model returned a negative gradient norm %v (row %d, position %d)", v, i, s)
			}
		}
	}
	return nil
}

// gradientSeries is gradient_norm_vs_distance: per k the mean norm over
// the rows whose readout is at least k tokens in, with a bootstrap
// interval over those rows.
func (t *Task) gradientSeries(label string, params map[string]any, norms [][]float64) harness.Series {
	s := harness.Series{Name: "gradient_norm_vs_distance", Label: label, XName: "distance", XUnit: "tokens", Unit: "norm",
		Split: "test", Params: params}
	t.distanceMeans(&s, norms, func(v float64) float64 { return v })
	return s
}

// gradientLogSeries is gradient_norm_log10_vs_distance: per k the mean over
// rows of log10 of the norm (floored at minNorm, as in gradientRatio), the
// orders of magnitude a norm falling with distance spans, which the mean
// norm's linear chart cannot show; with a bootstrap interval over rows.
func (t *Task) gradientLogSeries(label string, params map[string]any, norms [][]float64) harness.Series {
	s := harness.Series{Name: "gradient_norm_log10_vs_distance", Label: label, XName: "distance", XUnit: "tokens", Unit: "log10",
		Split: "test", Params: params}
	t.distanceMeans(&s, norms, func(v float64) float64 { return math.Log10(max(v, minNorm)) })
	return s
}

// distanceMeans fills s with, per distance k, the mean of f(norm) over the
// rows whose readout is at least k tokens in, and its bootstrap bands.
func (t *Task) distanceMeans(s *harness.Series, norms [][]float64, f func(float64) float64) {
	var perRow [][]float64
	for k := 0; ; k++ {
		var xs []float64
		for _, row := range norms {
			if k < len(row) {
				xs = append(xs, f(row[k]))
			}
		}
		if len(xs) == 0 {
			break
		}
		s.X = append(s.X, float64(k))
		s.Y = append(s.Y, mean(xs))
		s.N = append(s.N, len(xs))
		perRow = append(perRow, xs)
	}
	t.setMeanBands(s, perRow)
}

// minNorm is the smallest positive float32 (a denormal), the floor of a
// gradient norm in gradientRatio.
const minNorm = 0x1p-149

// gradientRatio is gradient_norm_log10_ratio_LABEL, the mean over rows of
// log10(‖∂ℓ_t/∂x_{t−k_dep}‖ / ‖∂ℓ_t/∂x_t‖): how many orders of magnitude
// the gradient loses between the current input and the one the answer
// depends on (a geometric mean of the rows' ratios, so one row cannot
// dominate), with a bootstrap interval over rows. A norm that underflows
// to 0 (float32 gradients below 1.4e-45, as a simple RNN's do over a
// hundred steps) is floored at minNorm, so the mean is a bound on how much
// is lost rather than −Inf; the rows floored are counted in the params as
// underflow_rows.
func (t *Task) gradientRatio(label string, params map[string]any, norms [][]float64, deps []int) harness.Metric {
	xs := make([]float64, len(norms))
	floored := 0
	for i, row := range norms {
		dep, cur := row[deps[i]], row[0]
		if dep < minNorm || cur < minNorm {
			floored++
		}
		xs[i] = math.Log10(max(dep, minNorm) / max(cur, minNorm))
	}
	params = maps.Clone(params)
	if params == nil {
		params = map[string]any{}
	}
	params["underflow_rows"] = floored
	name := "gradient_norm_log10_ratio_" + label
	iv := t.bootstrap(name, xs)
	return harness.Metric{Name: name, Value: iv.Estimate, Unit: "log10", Split: "test", Params: params,
		CI: toInterval(iv, harness.CIBootstrap, len(xs))}
}
