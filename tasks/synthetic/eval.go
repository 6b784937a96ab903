package synthetic

import (
	"context"
	"fmt"
	"math/bits"

	"arbench/harness"
)

// Evaluate measures the model on the test rows.
//
// For every variant but oracle, answers are predicted by argmax (dyck:
// among the closers), reading the true prefix (teacher forcing). It
// reports accuracy (over all answers), sequence_accuracy (rows with every
// answer right), nats_per_token (over the loss targets) and the series
// accuracy_vs_distance (copy-memory: accuracy_vs_delay): accuracy per sweep
// value (x = length, pairs, distance or delay), or for dyck per distance
// from closer to opener in bins [x, 2x). For swept variants,
// accuracy_at_max_X is the accuracy at the largest value and usable_X the
// largest value up to which accuracy stays at or above usable_accuracy (0
// when the smallest one misses it).
//
// With free_running, copy, selective-copy, assoc-recall and copy-memory are
// also answered free-running on the rows of the largest sweep value: from
// the first answer on, each answer is the model's greedy prediction and is
// fed back as the next input (assoc-recall's queries still come from the
// data). The series token_error_vs_position (labels teacher_forced and
// free_running; x = answer index from 1) compares the error per answer
// index with the teacher-forced one on the same rows, and
// first_error_position is the distribution of the index of a row's first
// wrong answer (the fraction of rows per index; rows without error count
// nowhere; mean_first_error_position_free_running is its mean over the
// rows with an error). Under greedy decoding both modes share each row's
// first error, so the series differ only after it: the gap is the error
// caused by reading one's own mistakes. Metrics
// error_at_{first,last}_position_MODE and accuracy_free_running summarise
// them.
//
// Every metric measured over rows has its interval (Metric.CI) and every
// series point its band (Series.Lo/Hi), as intervals.go describes; chance
// levels come as metrics named harness.ReferenceName(METRIC, "chance") and
// series labelled "chance" (chance.go). With gradient_norms, the gradient measurement of the trained
// model follows (gradients.go; label "trained").
//
// Oracle is measured against the HMM's exact distributions (see
// evaluateOracle).
func (t *Task) Evaluate(ctx context.Context, m harness.Model) (*harness.Evaluation, error) {
	if len(t.test) == 0 {
		panic("synthetic: Evaluate before a successful Prepare")
	}
	d, ok := harness.DistributionerOf(m)
	if !ok {
		return nil, fmt.Errorf("synthetic: model %q does not expose next-token distributions (harness.Distributioner)", m.Info().Family)
	}
	if mc, w := harness.ContextOf(m), t.Info().SeqLen; mc > 0 && mc < w {
		return nil, fmt.Errorf("synthetic: model %q reads at most %d tokens, rows have %d", m.Info().Family, mc, w)
	}
	if t.variant == "oracle" {
		return t.evaluateOracle(ctx, m, d)
	}
	ev, err := t.evaluateAnswers(ctx, m, d)
	if err != nil {
		return nil, err
	}
	if err := t.gradientNorms(ctx, m, gradTrained, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// predict returns the model's answer: the argmax, among the closers for dyck.
func (t *Task) predict(logp []float32) int {
	if t.variant == "dyck" {
		lo := FirstSymbol + t.cfg.Types
		return lo + harness.Argmax(logp[lo:lo+t.cfg.Types])
	}
	return harness.Argmax(logp)
}

// xName is the name of the sweep axis.
func (t *Task) xName() string {
	switch t.variant {
	case "assoc-recall":
		return "pairs"
	case "needle":
		return "distance"
	case "copy-memory":
		return "delay"
	}
	return "length"
}

// positionStats counts errors per answer index (0-based) and first errors.
type positionStats struct {
	errs, n, first []int
	rows, perfect  int
	// firstAt is, per row with an error, the index (from 1) of its first
	// wrong answer.
	firstAt []float64
}

func (p *positionStats) grow(j int) {
	for len(p.n) <= j {
		p.errs, p.n, p.first = append(p.errs, 0), append(p.n, 0), append(p.first, 0)
	}
}

func (p *positionStats) add(j int, wrong bool) {
	p.grow(j)
	p.n[j]++
	if wrong {
		p.errs[j]++
	}
}

// endRow records a row whose first wrong answer index is first (−1: none).
func (p *positionStats) endRow(first int) {
	p.rows++
	if first < 0 {
		p.perfect++
		return
	}
	p.grow(first)
	p.first[first]++
	p.firstAt = append(p.firstAt, float64(first+1))
}

// errorSeries is the error rate per answer index, each point a proportion
// of rows (one answer per row at each index) with its Wilson interval.
func (p *positionStats) errorSeries(label string, params map[string]any) harness.Series {
	s := harness.Series{Name: "token_error_vs_position", Label: label, XName: "position", XUnit: "answer token",
		Unit: "error rate", Split: "test", Params: params}
	var errs []int
	for j, n := range p.n {
		if n == 0 {
			continue
		}
		s.X = append(s.X, float64(j+1))
		s.Y = append(s.Y, float64(p.errs[j])/float64(n))
		s.N = append(s.N, n)
		errs = append(errs, p.errs[j])
	}
	setWilsonBands(&s, errs, s.N)
	return s
}

// firstErrorSeries is the fraction of rows whose first wrong answer is
// each index, with Wilson intervals over the rows.
func (p *positionStats) firstErrorSeries(params map[string]any) harness.Series {
	s := harness.Series{Name: "first_error_position", Label: "free_running", XName: "position", XUnit: "answer token",
		Unit: "fraction of rows", Split: "test", Params: params}
	for j := range p.n {
		s.X = append(s.X, float64(j+1))
		s.Y = append(s.Y, float64(p.first[j])/float64(p.rows))
		s.N = append(s.N, p.rows)
	}
	setWilsonBands(&s, p.first[:len(p.n)], s.N)
	return s
}

func (p *positionStats) errorAt(j int) float64 { return float64(p.errs[j]) / float64(p.n[j]) }

// errorMetric is the error rate at answer index j as a metric with its
// Wilson interval over the rows.
func (p *positionStats) errorMetric(name string, j int, params map[string]any) harness.Metric {
	return harness.Metric{Name: name, Value: p.errorAt(j), Unit: "error rate", Split: "test", Params: params,
		CI: wilson(p.errs[j], p.n[j])}
}

// answerScores accumulates the teacher-forced measurements of
// evaluateAnswers: totals as before intervals existed (the running sums
// keep their order, so the values are unchanged) and, per row, what the
// intervals resample.
type answerScores struct {
	nll           float64
	nLoss         int
	rows, perfect int
	all           rowCounts // per row, over every sweep value
	rowNLL        []float64 // per row: nats summed over its loss targets
	rowLoss       []float64 // per row: its loss targets
	groups        []rowCounts
	spans         map[int][2]int // dyck: bin → (correct, n)
	rowBins       []map[int][2]int
	tfLast        positionStats // teacher-forced, largest group
}

// scoreRow adds one teacher-forced row, returning its correct answers and
// answers.
func (t *Task) scoreRow(sc *answerScores, e *example, logp [][]float32, last bool) (correct, answers int) {
	first := -1
	var nll float64
	losses := 0
	bins := map[int][2]int{}
	for k := range e.targets() {
		tg := e.seq[k+1]
		if e.loss[k] {
			sc.nll -= float64(logp[k][tg])
			nll -= float64(logp[k][tg])
			sc.nLoss++
			losses++
		}
		if !e.answer[k] {
			continue
		}
		ok := t.predict(logp[k]) == tg
		if ok {
			correct++
		} else if first < 0 {
			first = answers
		}
		if t.variant == "dyck" {
			bin := 1 << (bits.Len(uint(e.span[k])) - 1)
			for _, m := range []map[int][2]int{sc.spans, bins} {
				c := m[bin]
				c[1]++
				if ok {
					c[0]++
				}
				m[bin] = c
			}
		}
		if last {
			sc.tfLast.add(answers, !ok)
		}
		answers++
	}
	sc.rows++
	if first < 0 {
		sc.perfect++
	}
	if last {
		sc.tfLast.endRow(first)
	}
	sc.all.add(correct, answers)
	sc.rowNLL = append(sc.rowNLL, nll)
	sc.rowLoss = append(sc.rowLoss, float64(losses))
	sc.rowBins = append(sc.rowBins, bins)
	return correct, answers
}

// curveName is the name of the accuracy-per-sweep-value series.
func (t *Task) curveName() string {
	if t.variant == "copy-memory" {
		return "accuracy_vs_delay"
	}
	return "accuracy_vs_distance"
}

// evaluateAnswers evaluates the deterministic variants.
func (t *Task) evaluateAnswers(ctx context.Context, m harness.Model, d harness.Distributioner) (*harness.Evaluation, error) {
	ev := &harness.Evaluation{}
	sc := &answerScores{spans: map[int][2]int{}}
	x := t.xName()
	curve := harness.Series{Name: t.curveName(), XName: x, XUnit: "tokens", Unit: "accuracy", Split: "test"}
	if x == "pairs" {
		curve.XUnit = "pairs"
	}
	for gi, g := range t.test {
		last := gi == len(t.test)-1
		var gc rowCounts
		err := t.forEachBatch(ctx, d, g, func(e *example, logp [][]float32) {
			gc.add(t.scoreRow(sc, e, logp, last))
		})
		if err != nil {
			return nil, err
		}
		sc.groups = append(sc.groups, gc)
		gCorrect, gAnswers := gc.totals()
		acc := float64(gCorrect) / float64(gAnswers)
		if t.variant != "dyck" {
			curve.X = append(curve.X, float64(g.sweep))
			curve.Y = append(curve.Y, acc)
			curve.N = append(curve.N, gAnswers)
		}
		ev.Samples = append(ev.Samples, harness.Sample{"mode": "teacher_forced", x: g.sweep, "rows": len(g.exs), "answers": gAnswers, "accuracy": acc})
	}
	points := sc.groups
	if t.variant == "dyck" {
		points = t.dyckCurve(&curve, sc)
	}
	t.setAccuracyBands(&curve, points)
	ev.Series = append(ev.Series, curve, chanceSeries(curve, func(float64) float64 { return 1 / float64(t.answerAlphabet()) }))
	ev.Metrics = append(ev.Metrics, t.answerMetrics(sc, curve)...)
	ev.Metrics = append(ev.Metrics, t.chanceAnswerMetrics(x)...)
	if t.runsFreeRunning() {
		if err := t.freeRunning(ctx, m, &sc.tfLast, ev); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// dyckCurve fills the accuracy per dependency-distance bin [x, 2x) and
// returns each bin's per-row counts.
func (t *Task) dyckCurve(curve *harness.Series, sc *answerScores) []rowCounts {
	curve.XName, curve.Params = "distance", map[string]any{"bins": "[x, 2x) tokens from closer back to its opener"}
	var points []rowCounts
	for bin := 1; bin <= 2*t.sweep[len(t.sweep)-1]; bin *= 2 {
		c, ok := sc.spans[bin]
		if !ok {
			continue
		}
		curve.X = append(curve.X, float64(bin))
		curve.Y = append(curve.Y, float64(c[0])/float64(c[1]))
		curve.N = append(curve.N, c[1])
		var rc rowCounts
		for _, row := range sc.rowBins {
			rc.add(row[bin][0], row[bin][1])
		}
		points = append(points, rc)
	}
	return points
}

// answerMetrics returns the teacher-forced metrics with their intervals.
func (t *Task) answerMetrics(sc *answerScores, curve harness.Series) []harness.Metric {
	correct, answers := sc.all.totals()
	x := t.xName()
	out := []harness.Metric{
		{Name: "accuracy", Value: float64(correct) / float64(answers), Unit: "fraction", Split: "test",
			Params: map[string]any{"answers": answers, "decoding": "argmax, teacher-forced"}, CI: sc.all.interval(t, "accuracy")},
		{Name: "sequence_accuracy", Value: float64(sc.perfect) / float64(sc.rows), Unit: "fraction", Split: "test",
			Params: map[string]any{"rows": sc.rows}, CI: wilson(sc.perfect, sc.rows)},
		{Name: "nats_per_token", Value: sc.nll / float64(sc.nLoss), Unit: "nats/token", Split: "test",
			Params: map[string]any{"tokens": sc.nLoss}, CI: t.meanCI("nats_per_token", ratioRows(sc.rowNLL, sc.rowLoss))},
	}
	if t.variant == "dyck" {
		return out
	}
	usable := 0.0
	for k, acc := range curve.Y {
		if acc < t.cfg.UsableAccuracy {
			break
		}
		usable = curve.X[k]
	}
	lastGroup := &sc.groups[len(sc.groups)-1]
	return append(out,
		harness.Metric{Name: "accuracy_at_max_" + x, Value: curve.Y[len(curve.Y)-1], Unit: "fraction", Split: "test",
			Params: map[string]any{x: t.sweep[len(t.sweep)-1]}, CI: lastGroup.interval(t, "accuracy_at_max_"+x)},
		harness.Metric{Name: "usable_" + x, Value: usable, Unit: curve.XUnit, Split: "test",
			Params: map[string]any{"threshold": t.cfg.UsableAccuracy, "swept": t.sweep}},
	)
}

// forEachBatch runs the model teacher-forced over a group, in batches, and
// calls f for every example with its next-token log-probabilities.
func (t *Task) forEachBatch(ctx context.Context, d harness.Distributioner, g group, f func(e *example, logp [][]float32)) error {
	for lo := 0; lo < len(g.exs); lo += t.cfg.EvalBatch {
		exs := g.exs[lo:min(lo+t.cfg.EvalBatch, len(g.exs))]
		b := batchOf(exs, g.width, true)
		out, err := d.NextLogProbs(ctx, b.Inputs)
		if err != nil {
			return fmt.Errorf("synthetic: evaluate %s=%d: %w", t.xName(), g.sweep, err)
		}
		if len(out) != len(exs) {
			return fmt.Errorf("synthetic: model returned %d rows for %d", len(out), len(exs))
		}
		for r := range exs {
			if len(out[r]) != g.width {
				return fmt.Errorf("synthetic: model returned %d positions for %d inputs", len(out[r]), g.width)
			}
			f(&exs[r], out[r])
		}
	}
	return nil
}

// freeRunning answers the largest group's rows from the model's own greedy
// answers and adds the error-accumulation series and metrics.
func (t *Task) freeRunning(ctx context.Context, m harness.Model, tf *positionStats, ev *harness.Evaluation) error {
	g := t.test[len(t.test)-1]
	ex0 := &g.exs[0]
	firstAns, lastAns := -1, -1
	for k, a := range ex0.answer {
		if a {
			if firstAns < 0 {
				firstAns = k
			}
			lastAns = k
		}
	}
	var fr positionStats
	firstErr := make([]int, len(g.exs))
	rowCorrect := make([]int, len(g.exs))
	rowAnswers := make([]int, len(g.exs))
	for lo := 0; lo < len(g.exs); lo += t.cfg.EvalBatch {
		exs := g.exs[lo:min(lo+t.cfg.EvalBatch, len(g.exs))]
		prompts := make([][]int, len(exs))
		for r := range exs {
			e := &exs[r]
			if len(e.seq) != len(ex0.seq) || !e.answer[firstAns] || !e.answer[lastAns] {
				panic("synthetic: free-running rows of one group differ in layout")
			}
			prompts[r] = e.seq[:firstAns+1]
			firstErr[lo+r] = -1
		}
		seqs, err := rollout(ctx, m, prompts, lastAns-firstAns+1, func(i, s int, logp []float32) int {
			k := firstAns + s
			e := &exs[i]
			if !e.answer[k] {
				return e.seq[k+1] // a query: from the data
			}
			tok := t.predict(logp)
			wrong := tok != e.seq[k+1]
			j := rowAnswers[lo+i]
			fr.add(j, wrong)
			if wrong && firstErr[lo+i] < 0 {
				firstErr[lo+i] = j
			}
			if !wrong {
				rowCorrect[lo+i]++
			}
			rowAnswers[lo+i]++
			return tok
		})
		if err != nil {
			return fmt.Errorf("synthetic: free-running: %w", err)
		}
		if lo == 0 {
			for r := range min(3, len(seqs)) {
				ev.Samples = append(ev.Samples, harness.Sample{"mode": "free_running", t.xName(): g.sweep, "row": r,
					"truth": exs[r].seq[firstAns+1 : lastAns+2], "generated": seqs[r][firstAns+1:]})
			}
		}
	}
	var rows rowCounts
	for i, f := range firstErr {
		fr.endRow(f)
		rows.add(rowCorrect[i], rowAnswers[i])
	}
	t.freeRunningResults(ev, g, tf, &fr, &rows)
	return nil
}

// freeRunningResults adds the error-accumulation series and metrics of
// the free-running rows fr (per row: rows) against the teacher-forced tf.
func (t *Task) freeRunningResults(ev *harness.Evaluation, g group, tf, fr *positionStats, rows *rowCounts) {
	params := map[string]any{t.xName(): g.sweep, "rows": len(g.exs), "decoding": "greedy"}
	tfErr, frErr := tf.errorSeries("teacher_forced", params), fr.errorSeries("free_running", params)
	pWrong := 1 - 1/float64(t.answerAlphabet())
	first := fr.firstErrorSeries(params)
	ev.Series = append(ev.Series, tfErr, frErr, first,
		chanceSeries(tfErr, func(float64) float64 { return pWrong }),
		chanceSeries(first, t.chanceFirstError))
	var errs, n int
	for j := range fr.n {
		errs += fr.errs[j]
		n += fr.n[j]
	}
	lastJ := len(fr.n) - 1
	ev.Metrics = append(ev.Metrics,
		harness.Metric{Name: "accuracy_free_running", Value: 1 - float64(errs)/float64(n), Unit: "fraction", Split: "test",
			Params: params, CI: rows.interval(t, "accuracy_free_running")},
		tf.errorMetric("error_at_first_position_teacher_forced", 0, params),
		tf.errorMetric("error_at_last_position_teacher_forced", lastJ, params),
		fr.errorMetric("error_at_first_position_free_running", 0, params),
		fr.errorMetric("error_at_last_position_free_running", lastJ, params),
		t.chanceMetric("accuracy_free_running", 1/float64(t.answerAlphabet()), "fraction"),
	)
	if len(fr.firstAt) > 0 {
		iv := t.bootstrap("mean_first_error_position_free_running", fr.firstAt)
		ev.Metrics = append(ev.Metrics, harness.Metric{Name: "mean_first_error_position_free_running", Value: iv.Estimate,
			Unit: "answer token", Split: "test",
			Params: map[string]any{t.xName(): g.sweep, "rows": len(g.exs), "rows_with_error": len(fr.firstAt), "decoding": "greedy"},
			CI:     toInterval(iv, harness.CIBootstrap, len(fr.firstAt))})
	}
}
