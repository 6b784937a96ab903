package text

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"arbench/harness"
	"arbench/internal/fsum"
)

// ablationStream is the PCG stream of the context-shuffling generator.
const ablationStream = 0x61626c617465 // "ablate"

// defaultAblationTargets is the number of targets when ablation_targets is 0.
const defaultAblationTargets = 512

// effectiveTolerance is the relative loss increase over the full context
// that still counts as "the same loss" for the effective context.
const effectiveTolerance = 0.01

// truncateContext returns the last k tokens of context (all of it when
// shorter): the context ablated by dropping everything beyond k.
func truncateContext(context []int, k int) []int {
	if k >= len(context) {
		return slices.Clone(context)
	}
	return slices.Clone(context[len(context)-k:])
}

// shuffleContext returns a copy of context whose tokens beyond the last k
// (the first len−k) are randomly permuted, keeping the last k in place.
func shuffleContext(context []int, k int, rng *rand.Rand) []int {
	out := slices.Clone(context)
	far := out[:max(0, len(out)-k)]
	rng.Shuffle(len(far), func(i, j int) { far[i], far[j] = far[j], far[i] })
	return out
}

// contextAblation measures how much of its context the model uses, after
// Khandelwal et al. 2018 ("Sharp nearby, fuzzy far away: how neural
// language models use context"). For ablation_targets test targets x_i
// (evenly spread over positions i ≥ W of the test split seq, W the
// evaluation window) it
// scores −log p(x_i | context) with three contexts:
//
//   - full: the W tokens before x_i;
//   - truncated to k: only the last k of them (the rest dropped);
//   - shuffled beyond k: all W, with the first W−k randomly permuted and the
//     last k in order;
//
// for every k of ablation_contexts up to W. The series loss_vs_context
// (labels "truncated" and "shuffled", x = k, the last point k = W being the
// full context) gives the mean loss of the same targets; effective_context
// (and effective_context_shuffled) is the smallest k whose loss is within
// 1% of the full-context loss.
func (t *Task) contextAblation(ctx context.Context, sc harness.Scorer, seq []byte, W int, ev *harness.Evaluation) error {
	var ks, skipped []int
	for _, k := range t.cfg.AblationContexts {
		if k < W {
			ks = append(ks, k)
		} else if k > W {
			skipped = append(skipped, k)
		}
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	avail := len(seq) - W // targets seq[W:]
	n := t.cfg.AblationTargets
	if n == 0 {
		n = defaultAblationTargets
	}
	n = min(n, avail)
	stride := avail / n
	positions := make([]int, n)
	for j := range positions {
		positions[j] = W + j*stride
	}
	contexts := make([][]int, n)
	targets := make([]int, n)
	for j, i := range positions {
		contexts[j] = make([]int, W)
		for k := range W {
			contexts[j][k] = int(seq[i-W+k])
		}
		targets[j] = int(seq[i])
	}

	full, err := scoreLast(ctx, sc, contexts, targets, t.cfg.EvalBatch)
	if err != nil {
		return fmt.Errorf("text: context ablation (full): %w", err)
	}
	rng := rand.New(rand.NewPCG(t.seed, ablationStream))
	losses := map[string][]float64{}
	rows := make([][]int, n)
	for _, k := range ks {
		for j, c := range contexts {
			rows[j] = truncateContext(c, k)
		}
		tr, err := scoreLast(ctx, sc, rows, targets, t.cfg.EvalBatch)
		if err != nil {
			return fmt.Errorf("text: context ablation (truncated to %d): %w", k, err)
		}
		for j, c := range contexts {
			rows[j] = shuffleContext(c, k, rng)
		}
		sh, err := scoreLast(ctx, sc, rows, targets, t.cfg.EvalBatch)
		if err != nil {
			return fmt.Errorf("text: context ablation (shuffled beyond %d): %w", k, err)
		}
		losses["truncated"] = append(losses["truncated"], tr)
		losses["shuffled"] = append(losses["shuffled"], sh)
	}
	params := map[string]any{"window": W, "targets": n, "target_stride": stride, "tolerance": effectiveTolerance}
	if len(skipped) > 0 {
		params["skipped_contexts"] = skipped // beyond the model's window
	}
	for _, label := range []string{"truncated", "shuffled"} {
		s := harness.Series{Name: "loss_vs_context", Label: label, XName: "context", XUnit: "tokens",
			Unit: "nats/token", Split: "test", Params: params}
		for k, loss := range append(losses[label], full) {
			x := W
			if k < len(ks) {
				x = ks[k]
			}
			s.X = append(s.X, float64(x))
			s.Y = append(s.Y, loss)
			s.N = append(s.N, n)
		}
		name := "effective_context"
		if label == "shuffled" {
			name += "_shuffled"
		}
		ev.Series = append(ev.Series, s)
		ev.Metrics = append(ev.Metrics, harness.Metric{Name: name, Value: float64(effectiveContext(s.X, s.Y, full)),
			Unit: "tokens", Split: "test", Params: params})
	}
	ev.Metrics = append(ev.Metrics, harness.Metric{Name: "nats_per_token_ablation_full", Value: full,
		Unit: "nats/token", Split: "test", Params: params})
	return nil
}

// effectiveContext returns the smallest x (xs ascending) whose loss is
// within effectiveTolerance of full (relative); the last x when none is.
func effectiveContext(xs, losses []float64, full float64) int {
	for k, l := range losses {
		if l <= full*(1+effectiveTolerance) {
			return int(xs[k])
		}
	}
	return int(xs[len(xs)-1])
}

// scoreLast returns the mean of −log p(targets[j] | rows[j]) over rows of
// equal width, scoring only each row's last position, in batches.
func scoreLast(ctx context.Context, sc harness.Scorer, rows [][]int, targets []int, batch int) (float64, error) {
	terms := make([]float64, 0, len(rows))
	for lo := 0; lo < len(rows); lo += batch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hi := min(lo+batch, len(rows))
		b := harness.Batch{Inputs: rows[lo:hi], Targets: make([][]int, hi-lo)}
		for r := range b.Targets {
			w := len(rows[lo+r])
			tg := make([]int, w)
			for k := range tg {
				tg[k] = -1
			}
			tg[w-1] = targets[lo+r]
			b.Targets[r] = tg
		}
		lp, err := sc.LogProbs(ctx, b)
		if err != nil {
			return 0, err
		}
		if len(lp) != hi-lo {
			return 0, fmt.Errorf("scorer returned %d rows for %d", len(lp), hi-lo)
		}
		for r := range lp {
			w := len(rows[lo+r])
			if len(lp[r]) != w {
				return 0, fmt.Errorf("scorer returned %d positions for %d", len(lp[r]), w)
			}
			terms = append(terms, -lp[r][w-1])
		}
	}
	return fsum.Sum(terms) / float64(len(rows)), nil
}
