package seq2seq

import "arbench/harness"

// quality is how well one pass's outputs match the test rows.
type quality struct {
	rows, exact int
	// tokMatch and tokLen are per row the positions matching the closest
	// valid target and the positions compared, max(len(out), len(target)).
	tokMatch, tokLen []float64
	// lengthOK counts predicted lengths equal to the target's plus EOS;
	// hasLengths says whether the model predicted lengths at all.
	lengthOK   int
	hasLengths bool
	// modes counts outputs equal to each valid target (multimodal: the
	// source itself, its reverse).
	modes [2]int
	// pairs and repeats count adjacent output token pairs and the equal
	// ones among them.
	pairs, repeats int
}

// score measures outputs (and predicted lengths, when not nil) against exs.
func score(exs []Example, outputs [][]int, lengths []int) quality {
	q := quality{rows: len(exs), hasLengths: lengths != nil}
	for i, e := range exs {
		out := outputs[i]
		if k := e.Match(out); k >= 0 {
			q.exact++
			if k < len(q.modes) {
				q.modes[k]++
			}
		}
		match, n := closest(e, out)
		q.tokMatch, q.tokLen = append(q.tokMatch, float64(match)), append(q.tokLen, float64(n))
		if lengths != nil && lengths[i] == len(e.Target)+1 {
			q.lengthOK++
		}
		p, r := repeats(out)
		q.pairs, q.repeats = q.pairs+p, q.repeats+r
	}
	return q
}

// closest returns the position-wise matches of out with the valid target
// it matches best and the number of positions compared,
// max(len(out), len(target)) (the first such target on ties).
func closest(e Example, out []int) (match, n int) {
	best, bestN := -1, 0
	for _, tgt := range e.ValidTargets() {
		m, w := 0, max(len(out), len(tgt))
		for j := range min(len(out), len(tgt)) {
			if out[j] == tgt[j] {
				m++
			}
		}
		if best < 0 || float64(m)*float64(bestN) > float64(best)*float64(w) {
			best, bestN = m, w
		}
	}
	return best, bestN
}

// repeats counts the adjacent token pairs of seq and the equal ones.
func repeats(seq []int) (pairs, equal int) {
	for j := 1; j < len(seq); j++ {
		pairs++
		if seq[j] == seq[j-1] {
			equal++
		}
	}
	return pairs, equal
}

// targetRepetition is the repetition rate of the test targets themselves,
// the level a correct model's outputs have.
func targetRepetition(exs []Example) (rate float64, pairs int) {
	equal := 0
	for _, e := range exs {
		p, r := repeats(e.Target)
		pairs, equal = pairs+p, equal+r
	}
	return float64(equal) / float64(pairs), pairs
}

// metrics returns the quality metrics named by nm: exact_match and
// token_accuracy with 95% intervals, length_accuracy when lengths were
// predicted, repetition_rate, and for multimodal mixed_modes, mode_0 and
// mode_1.
func (q quality) metrics(nm namer, multimodal bool) []harness.Metric {
	rows := map[string]any{"rows": q.rows}
	out := []harness.Metric{q.fraction(nm, "exact_match", q.exact, rows)}
	acc, lo, hi := ratioCI(q.tokMatch, q.tokLen)
	tok := nm.metric("token_accuracy", acc, "fraction", map[string]any{"rows": q.rows, "positions": int(sum(q.tokLen))})
	tok.CI = harness.IntervalOf(lo, hi, harness.CIDelta, q.rows, "rows")
	out = append(out, tok)
	if q.hasLengths {
		out = append(out, q.fraction(nm, "length_accuracy", q.lengthOK, rows))
	}
	if multimodal {
		out = append(out, q.fraction(nm, "mixed_modes", q.rows-q.exact, rows),
			q.fraction(nm, "mode_0", q.modes[0], map[string]any{"rows": q.rows, "mode": "source"}),
			q.fraction(nm, "mode_1", q.modes[1], map[string]any{"rows": q.rows, "mode": "reversed source"}))
	}
	rate := float64(q.repeats) / float64(q.pairs)
	if q.pairs == 0 {
		rate = 0
	}
	return append(out, nm.metric("repetition_rate", rate, "fraction", map[string]any{"pairs": q.pairs}))
}

// fraction is a metric of k rows in q.rows with its Wilson interval.
func (q quality) fraction(nm namer, name string, k int, params map[string]any) harness.Metric {
	m := nm.metric(name, float64(k)/float64(q.rows), "fraction", params)
	m.CI = wilsonCI(k, q.rows)
	return m
}
