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
// accuracy_vs_distance: accuracy per sweep value (x = length, pairs or
// distance), or for dyck per distance from closer to opener in bins
// [x, 2x). For swept variants, accuracy_at_max_X is the accuracy at the
// largest value and usable_X the largest value up to which accuracy stays
// at or above usable_accuracy (0 when the smallest one misses it).
//
// With free_running, copy, selective-copy and assoc-recall are also
// answered free-running on the rows of the largest sweep value: from the
// first answer on, each answer is the model's greedy prediction and is fed
// back as the next input (assoc-recall's queries still come from the data).
// The series token_error_vs_position (labels teacher_forced and
// free_running; x = answer index from 1) compares the error per answer
// index with the teacher-forced one on the same rows, and
// first_error_position is the distribution of the index of a row's first
// wrong answer (the fraction of rows per index; rows without error count
// nowhere). Under greedy decoding both modes share each row's first error,
// so the series differ only after it: the gap is the error caused by
// reading one's own mistakes. Metrics error_at_{first,last}_position_MODE
// and accuracy_free_running summarise them.
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
	return t.evaluateAnswers(ctx, m, d)
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
	}
	return "length"
}

// positionStats counts errors per answer index (0-based) and first errors.
type positionStats struct {
	errs, n, first []int
	rows, perfect  int
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
}

func (p *positionStats) errorSeries(label string, params map[string]any) harness.Series {
	s := harness.Series{Name: "token_error_vs_position", Label: label, XName: "position", XUnit: "answer token",
		Unit: "error rate", Split: "test", Params: params}
	for j, n := range p.n {
		if n == 0 {
			continue
		}
		s.X = append(s.X, float64(j+1))
		s.Y = append(s.Y, float64(p.errs[j])/float64(n))
		s.N = append(s.N, n)
	}
	return s
}

func (p *positionStats) firstErrorSeries(params map[string]any) harness.Series {
	s := harness.Series{Name: "first_error_position", Label: "free_running", XName: "position", XUnit: "answer token",
		Unit: "fraction of rows", Split: "test", Params: params}
	for j := range p.n {
		s.X = append(s.X, float64(j+1))
		s.Y = append(s.Y, float64(p.first[j])/float64(p.rows))
		s.N = append(s.N, p.rows)
	}
	return s
}

func (p *positionStats) errorAt(j int) float64 { return float64(p.errs[j]) / float64(p.n[j]) }

// evaluateAnswers evaluates the deterministic variants.
func (t *Task) evaluateAnswers(ctx context.Context, m harness.Model, d harness.Distributioner) (*harness.Evaluation, error) {
	ev := &harness.Evaluation{}
	var (
		nll                     float64
		nLoss, correct, answers int
		rows, perfect           int
		curve                   harness.Series
		spans                   = map[int][2]int{} // dyck: bin → (correct, n)
		tfLast                  positionStats      // teacher-forced, largest group
	)
	x := t.xName()
	curve = harness.Series{Name: "accuracy_vs_distance", XName: x, XUnit: "tokens", Unit: "accuracy", Split: "test"}
	if x == "pairs" {
		curve.XUnit = "pairs"
	}
	for gi, g := range t.test {
		last := gi == len(t.test)-1
		var gCorrect, gAnswers int
		err := t.forEachBatch(ctx, d, g, func(e *example, logp [][]float32) {
			first := -1
			j := 0
			for k := range e.targets() {
				tg := e.seq[k+1]
				if e.loss[k] {
					nll -= float64(logp[k][tg])
					nLoss++
				}
				if !e.answer[k] {
					continue
				}
				ok := t.predict(logp[k]) == tg
				if ok {
					gCorrect++
				} else if first < 0 {
					first = j
				}
				gAnswers++
				if t.variant == "dyck" {
					bin := 1 << (bits.Len(uint(e.span[k])) - 1)
					c := spans[bin]
					c[1]++
					if ok {
						c[0]++
					}
					spans[bin] = c
				}
				if last {
					tfLast.add(j, !ok)
				}
				j++
			}
			rows++
			if first < 0 {
				perfect++
			}
			if last {
				tfLast.endRow(first)
			}
		})
		if err != nil {
			return nil, err
		}
		correct += gCorrect
		answers += gAnswers
		acc := float64(gCorrect) / float64(gAnswers)
		if t.variant != "dyck" {
			curve.X = append(curve.X, float64(g.sweep))
			curve.Y = append(curve.Y, acc)
			curve.N = append(curve.N, gAnswers)
		}
		ev.Samples = append(ev.Samples, harness.Sample{"mode": "teacher_forced", x: g.sweep, "rows": len(g.exs), "answers": gAnswers, "accuracy": acc})
	}
	if t.variant == "dyck" {
		curve.XName, curve.Params = "distance", map[string]any{"bins": "[x, 2x) tokens from closer back to its opener"}
		for bin := 1; bin <= 2*t.sweep[len(t.sweep)-1]; bin *= 2 {
			if c, ok := spans[bin]; ok {
				curve.X = append(curve.X, float64(bin))
				curve.Y = append(curve.Y, float64(c[0])/float64(c[1]))
				curve.N = append(curve.N, c[1])
			}
		}
	}
	ev.Series = append(ev.Series, curve)
	ev.Metrics = append(ev.Metrics,
		harness.Metric{Name: "accuracy", Value: float64(correct) / float64(answers), Unit: "fraction", Split: "test",
			Params: map[string]any{"answers": answers, "decoding": "argmax, teacher-forced"}},
		harness.Metric{Name: "sequence_accuracy", Value: float64(perfect) / float64(rows), Unit: "fraction", Split: "test",
			Params: map[string]any{"rows": rows}},
		harness.Metric{Name: "nats_per_token", Value: nll / float64(nLoss), Unit: "nats/token", Split: "test",
			Params: map[string]any{"tokens": nLoss}},
	)
	if t.variant != "dyck" {
		usable := 0.0
		for k, acc := range curve.Y {
			if acc < t.cfg.UsableAccuracy {
				break
			}
			usable = curve.X[k]
		}
		ev.Metrics = append(ev.Metrics,
			harness.Metric{Name: "accuracy_at_max_" + x, Value: curve.Y[len(curve.Y)-1], Unit: "fraction", Split: "test",
				Params: map[string]any{x: t.sweep[len(t.sweep)-1]}},
			harness.Metric{Name: "usable_" + x, Value: usable, Unit: curve.XUnit, Split: "test",
				Params: map[string]any{"threshold": t.cfg.UsableAccuracy, "swept": t.sweep}},
		)
	}
	if t.runsFreeRunning() {
		if err := t.freeRunning(ctx, m, &tfLast, ev); err != nil {
			return nil, err
		}
	}
	return ev, nil
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
		answerIdx := make([]int, len(exs))
		seqs, err := rollout(ctx, m, prompts, lastAns-firstAns+1, func(i, s int, logp []float32) int {
			k := firstAns + s
			e := &exs[i]
			if !e.answer[k] {
				return e.seq[k+1] // a query: from the data
			}
			tok := t.predict(logp)
			wrong := tok != e.seq[k+1]
			fr.add(answerIdx[i], wrong)
			if wrong && firstErr[lo+i] < 0 {
				firstErr[lo+i] = answerIdx[i]
			}
			answerIdx[i]++
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
	for _, f := range firstErr {
		fr.endRow(f)
	}
	params := map[string]any{t.xName(): g.sweep, "rows": len(g.exs), "decoding": "greedy"}
	ev.Series = append(ev.Series, tf.errorSeries("teacher_forced", params), fr.errorSeries("free_running", params), fr.firstErrorSeries(params))
	var errs, n int
	for j := range fr.n {
		errs += fr.errs[j]
		n += fr.n[j]
	}
	lastJ := len(fr.n) - 1
	ev.Metrics = append(ev.Metrics,
		harness.Metric{Name: "accuracy_free_running", Value: 1 - float64(errs)/float64(n), Unit: "fraction", Split: "test", Params: params},
		harness.Metric{Name: "error_at_first_position_teacher_forced", Value: tf.errorAt(0), Unit: "error rate", Split: "test", Params: params},
		harness.Metric{Name: "error_at_last_position_teacher_forced", Value: tf.errorAt(lastJ), Unit: "error rate", Split: "test", Params: params},
		harness.Metric{Name: "error_at_first_position_free_running", Value: fr.errorAt(0), Unit: "error rate", Split: "test", Params: params},
		harness.Metric{Name: "error_at_last_position_free_running", Value: fr.errorAt(lastJ), Unit: "error rate", Split: "test", Params: params},
	)
	return nil
}
