package text

import (
	"context"
	"fmt"
	"math"

	"arbench/harness"
	"arbench/internal/fsum"
)

// streamLayout cuts targets 1…N of a sequence into contiguous streams of L
// = ⌈N/B⌉ targets, the last one shorter when B does not divide N; with N
// < B there are N streams of one target. Stream b scores targets b·L+1 to
// min((b+1)·L, N), reading inputs from x[b·L]. It returns L and the number
// of streams, ⌈N/L⌉ ≤ B. N and B must be positive.
func streamLayout(N, B int) (L, streams int) {
	if N <= 0 || B <= 0 {
		panic(fmt.Sprintf("text: streamLayout(%d, %d)", N, B))
	}
	L = (N + B - 1) / B
	return L, (N + L - 1) / L
}

// streamPad is the input a finished stream is fed while the longer ones
// still step; what it predicts is never scored.
const streamPad = 0

// scoreStreams scores every target of seq (N = len(seq)−1 of them) once,
// stepping the streams of streamLayout(N, B) in parallel through st: Start
// reads each stream's first input, then every Step one more, so target j
// is predicted from all of its stream's inputs up to x[j−1]. It returns
// the negative log-likelihood in nats of each target, index j−1 for
// target j.
func scoreStreams(ctx context.Context, st harness.Stepper, seq []byte, B int) ([]float64, error) {
	N := len(seq) - 1
	L, streams := streamLayout(N, B)
	prompts := make([][]int, streams)
	for b := range prompts {
		prompts[b] = []int{int(seq[b*L])}
	}
	state, lp, err := st.Start(ctx, prompts)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	nll := make([]float64, N)
	tokens := make([]int, streams)
	for s := range L {
		if s > 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for b := range tokens {
				tokens[b] = streamPad
				if j := b*L + s; j < N {
					tokens[b] = int(seq[j])
				}
			}
			if lp, err = st.Step(ctx, state, tokens); err != nil {
				return nil, fmt.Errorf("step %d: %w", s, err)
			}
		}
		if len(lp) != streams {
			return nil, fmt.Errorf("step %d: %d rows of log-probabilities for %d streams", s, len(lp), streams)
		}
		for b, row := range lp {
			j := b*L + s // input index; the target is seq[j+1]
			if j >= N {
				continue
			}
			if len(row) != Vocab {
				return nil, fmt.Errorf("step %d: %d log-probabilities for a vocabulary of %d", s, len(row), Vocab)
			}
			v := float64(row[seq[j+1]])
			if math.IsNaN(v) {
				return nil, fmt.Errorf("step %d: NaN log-probability in stream %d", s, b)
			}
			nll[j] = -v
		}
	}
	return nll, nil
}

// evaluateStateful scores the test split seq with carried state: a
// recurrent model's state is not reset every window, so its context is not
// capped by the harness (the windowed evaluations reset it at every
// window). The scored targets 1…N are cut into B = stateful_streams
// contiguous streams (streamLayout; B = eval_batch by default), stepped in
// parallel through the model's Stepper from a fresh state at each
// stream's start; every target is scored once, from all of its stream
// before it. Evaluate calls it only for a model with a Stepper and no
// context limit (harness.ContextOf 0, the recurrent models); a model with
// a context limit would only re-read a sliding window, which the sliding
// evaluation already measures, and it gets nothing extra.
//
// Each stream starts cold, with no context, as the windowed evaluations'
// windows do: B cold starts instead of one per window. A model that uses
// only a few bytes of context can therefore score slightly worse stateful
// than sliding, whose every later window starts with W−S tokens of
// context (the 300-step lstm of experiments/long-range.yaml on the Jargon
// File: stateful − disjoint −0.011 [−0.013, −0.009] nats/token, stateful −
// sliding +0.002 [+0.001, +0.003]).
//
// It reports nats_per_token_stateful, bits_per_byte_stateful and
// perplexity_stateful, with the bootstrap interval over blocks of W
// consecutive targets, the disjoint evaluation's windows (N windows, Of
// "windows"), and for each windowed evaluation (disjoint, sliding) the
// mean paired difference nats_per_token_stateful_minus_<mode> over that
// evaluation's windows (the stateful losses summed over the targets each
// window scores), with its paired bootstrap interval: negative where
// carrying the state helps. One sample per stream.
func (t *Task) evaluateStateful(ctx context.Context, st harness.Stepper, seq []byte, W int, windowed []windowScores, ev *harness.Evaluation) error {
	N := len(seq) - 1
	nll, err := scoreStreams(ctx, st, seq, t.cfg.streams())
	if err != nil {
		return fmt.Errorf("text: evaluate (stateful): %w", err)
	}
	L, streams := streamLayout(N, t.cfg.streams())
	npt := fsum.Sum(nll) / float64(N)
	params := map[string]any{"eval": "stateful", "streams": streams, "stream_tokens": L, "window": W, "tokens": N}
	ci := meanCI(perToken(blockTotals(nll, W)), ciSeed(t.seed, "test/stateful"), "windows")
	ev.Metrics = append(ev.Metrics, lossMetrics(tokenUnits, "_stateful", npt, ci, params)...)
	for _, w := range windowed {
		counts := windowCounts(w.wins)
		diff := pairedCI(perToken(w.nll, counts), perToken(groupTotals(nll, counts), counts),
			ciSeed(t.seed, "test/stateful-"+w.mode), "windows")
		ev.Metrics = append(ev.Metrics, harness.Metric{Name: "nats_per_token_stateful_minus_" + w.mode,
			Value: npt - fsum.Sum(w.nll)/float64(N), Unit: "nats/token", Split: "test", Params: params, CI: diff})
	}
	for b := range streams {
		lo, hi := b*L, min((b+1)*L, N)
		ev.Samples = append(ev.Samples, harness.Sample{
			"eval": "stateful", "stream": b, "start": lo, "tokens": hi - lo, "nats": fsum.Sum(nll[lo:hi]),
		})
	}
	return nil
}

// groupTotals sums xs over consecutive groups of counts[g] values; the
// counts must add up to len(xs).
func groupTotals(xs []float64, counts []int) []float64 {
	out := make([]float64, len(counts))
	lo := 0
	for g, c := range counts {
		out[g] = fsum.Sum(xs[lo : lo+c])
		lo += c
	}
	if lo != len(xs) {
		panic(fmt.Sprintf("text: groupTotals of %d values in groups of %d", len(xs), lo))
	}
	return out
}
