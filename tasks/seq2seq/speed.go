package seq2seq

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"arbench/harness"
)

// ratioUnit is the unit of a ratio of two times (a speed-up, a cost
// ratio): seconds per second, which harness.IsTimingUnit counts as a
// timing unit, so that reproduce does not compare it across reruns.
const ratioUnit = "s/s"

// speedMetrics returns one decoding's speed metrics: at batch 1 over the
// latency rows, latency_ms_b1 (mean wall time per sequence, after an
// untimed warm-up pass) with latency_ms_b1_p50 and _p90, and passes_b1
// (decoder passes per sequence); over every test row in calls of the
// large batch, latency_ms_large (wall time per sequence), and
// sequences_per_s_large, and passes_large (the passes of the call each
// sequence was in); then a speculative decoder's statistics of either
// pass (hybridMetrics).
func (t *Task) speedMetrics(nm namer, d *decoded) []harness.Metric {
	b1 := map[string]any{"rows": d.b1.rows, "batch": 1}
	lg := map[string]any{"rows": d.large.rows, "batch": t.largeBatch()}
	ms := make([]float64, len(d.b1.seconds))
	for i, s := range d.b1.seconds {
		ms[i] = 1000 * s
	}
	out := []harness.Metric{
		nm.metric("latency_ms_b1", mean(ms), "ms", b1),
		nm.metric("latency_ms_b1_p50", quantile(ms, 0.5), "ms", b1),
		nm.metric("latency_ms_b1_p90", quantile(ms, 0.9), "ms", b1),
		nm.metric("passes_b1", d.b1.passesPerSeq(), "passes", b1),
		nm.metric("latency_ms_large", d.large.msPerSeq(), "ms", lg),
		nm.metric("sequences_per_s_large", float64(d.large.rows)/sum(d.large.seconds), "sequences/s", lg),
		nm.metric("passes_large", d.large.passesPerSeq(), "passes", lg),
	}
	_, _, maxOut := t.lens()
	out = append(out, hybridMetrics(nm, d.large, "", maxOut, lg)...)
	return append(out, hybridMetrics(nm, d.b1, "_b1", maxOut, b1)...)
}

// hybridMetrics returns, for a pass whose Stats hold a speculative
// decoder's counts, acceptance_rate = accepted/drafted (draft tokens the
// outputs kept), acceptance_alpha = tested_accepted/tested (draft tokens
// that passed the acceptance test, the α of Leviathan et al. 2023, when
// counted), tokens_per_verify
// = output tokens (EOS included) per verify call, and draft_verify_cost =
// (draft_seconds per draft) / (verify_seconds per verify call), where the
// drafts are Stats["draft_calls"] when the model counts them, else one per
// verify call. Each needs its counts to be present and positive; the
// names get suffix before the setting.
func hybridMetrics(nm namer, p *pass, suffix string, maxOut int, params map[string]any) []harness.Metric {
	st := p.stats
	var out []harness.Metric
	with := func(extra map[string]any) map[string]any {
		m := maps.Clone(params)
		maps.Copy(m, extra)
		return m
	}
	if drafted, ok := st["drafted"]; ok && drafted > 0 {
		if acc, ok := st["accepted"]; ok {
			out = append(out, nm.metric("acceptance_rate"+suffix, acc/drafted, "fraction", with(map[string]any{"drafted": drafted})))
		}
	}
	if tested, ok := st["tested_accepted"]; ok && st["tested"] > 0 {
		out = append(out, nm.metric("acceptance_alpha"+suffix, tested/st["tested"], "fraction", with(map[string]any{"tested": st["tested"]})))
	}
	calls := st["verify_calls"]
	if calls <= 0 {
		return out
	}
	out = append(out, nm.metric("tokens_per_verify"+suffix, float64(outputTokens(p.outputs, maxOut))/calls, "tokens/call",
		with(map[string]any{"verify_calls": calls})))
	drafts := st["draft_calls"]
	if drafts <= 0 {
		drafts = calls
	}
	if ds, vs := st["draft_seconds"], st["verify_seconds"]; ds > 0 && vs > 0 {
		out = append(out, nm.metric("draft_verify_cost"+suffix, (ds/drafts)/(vs/calls), ratioUnit,
			with(map[string]any{"drafts": drafts, "verify_calls": calls})))
	}
	return out
}

// outputTokens counts the tokens the decoder produced: each output's
// tokens and its EOS, which an output cut at maxOut tokens did not reach.
func outputTokens(outputs [][]int, maxOut int) int {
	n := 0
	for _, o := range outputs {
		n += len(o)
		if len(o) < maxOut {
			n++
		}
	}
	return n
}

// speedups returns speedup_b1 and speedup_large of d: the baseline's wall
// time per sequence over d's, at batch 1 and at the large batch; and
// same_as_baseline, the fraction of test rows whose output equals the
// baseline's token for token (1 for an exact speculative decoder in
// greedy mode, whatever its speed), with its 95% interval.
func speedups(nm namer, base, d *decoded) []harness.Metric {
	params := map[string]any{"baseline": base.setting.Name}
	same := 0
	for i, out := range d.large.outputs {
		if slices.Equal(out, base.large.outputs[i]) {
			same++
		}
	}
	n := len(d.large.outputs)
	sameAs := nm.metric("same_as_baseline", float64(same)/float64(n), "fraction",
		map[string]any{"baseline": base.setting.Name, "rows": n})
	sameAs.CI = wilsonCI(same, n)
	return []harness.Metric{
		nm.metric("speedup_b1", speedup(base.b1, d.b1), ratioUnit, params),
		nm.metric("speedup_large", speedup(base.large, d.large), ratioUnit, params),
		sameAs,
	}
}

func speedup(base, p *pass) float64 { return base.msPerSeq() / p.msPerSeq() }

// baseline returns the swept decoding marked Baseline, or nil.
func baseline(swept []*decoded) *decoded {
	for _, d := range swept {
		if d.setting.Baseline {
			return d
		}
	}
	return nil
}

// latencyByLength returns the series latency_vs_target_length of the
// default decoding: ms per sequence against target length, label
// "batch 1" from the batch-1 pass's rows, label "large batch" from timing
// the test rows of each target length as their own calls of the large
// batch (each after a warm-up).
func (t *Task) latencyByLength(ctx context.Context, m harness.Model, def *decoded) ([]harness.Series, error) {
	mk := func(label string, batch int) harness.Series {
		return harness.Series{Name: "latency_vs_target_length", Label: label, XName: "target length", XUnit: "tokens",
			Unit: "ms", Split: "test", Params: map[string]any{"batch": batch}}
	}
	b1 := mk("batch 1", 1)
	byLen := groupByTargetLen(t.test[:def.b1.rows])
	for _, l := range slices.Sorted(maps.Keys(byLen)) {
		var ms []float64
		for _, i := range byLen[l] {
			ms = append(ms, 1000*def.b1.seconds[i])
		}
		b1.X, b1.Y, b1.N = append(b1.X, float64(l)), append(b1.Y, mean(ms)), append(b1.N, len(ms))
	}
	large := mk("large batch", t.largeBatch())
	tr := t.translator(m, harness.DecodeSetting{})
	byLen = groupByTargetLen(t.test)
	for _, l := range slices.Sorted(maps.Keys(byLen)) {
		rows := make([]Example, len(byLen[l]))
		for k, i := range byLen[l] {
			rows[k] = t.test[i]
		}
		p, err := tr.run(ctx, rows, t.largeBatch())
		if err != nil {
			return nil, fmt.Errorf("seq2seq: evaluate (targets of %d tokens, large batch): %w", l, err)
		}
		large.X, large.Y, large.N = append(large.X, float64(l)), append(large.Y, p.msPerSeq()), append(large.N, len(rows))
	}
	return []harness.Series{b1, large}, nil
}

// groupByTargetLen maps each target length to the indices of its rows.
func groupByTargetLen(exs []Example) map[int][]int {
	out := map[int][]int{}
	for i, e := range exs {
		out[len(e.Target)] = append(out[len(e.Target)], i)
	}
	return out
}
