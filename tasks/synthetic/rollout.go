package synthetic

import (
	"context"
	"fmt"

	"arbench/harness"
)

// chooser picks the token to append to row i after step s (s = 0 is the
// distribution right after the prompt), given the model's next-token
// log-probabilities there.
type chooser func(i, s int, logp []float32) int

// rollout continues equal-length prompts for steps steps, choosing each
// appended token with choose and returning the full sequences (prompt and
// the steps chosen tokens).
//
// A model that implements harness.Stepper carries its state from token to
// token, unless it is a harness.ContextLimiter whose context the sequence
// would exceed. Otherwise its harness.Distributioner reads the sequence at
// every step: rows are right-padded to a width that grows in multiples of
// refeedBucket (a causal model's distribution at a position does not depend
// on later inputs, so padding only bounds the number of compiled shapes),
// and beyond a ContextLimiter's MaxContext only the last MaxContext tokens
// are read (a sliding window).
func rollout(ctx context.Context, m harness.Model, prompts [][]int, steps int, choose chooser) ([][]int, error) {
	if len(prompts) == 0 || steps <= 0 {
		return prompts, nil
	}
	p := len(prompts[0])
	for i, row := range prompts {
		if len(row) != p || p == 0 {
			return nil, fmt.Errorf("rollout: prompt %d has %d tokens, want %d (non-zero, all equal)", i, len(row), p)
		}
	}
	seqs := make([][]int, len(prompts))
	for i, row := range prompts {
		seqs[i] = append(make([]int, 0, p+steps), row...)
	}
	limit := 0
	if cl, ok := m.(harness.ContextLimiter); ok {
		limit = cl.MaxContext()
	}
	total := p + steps - 1 // tokens the model reads
	st, isStepper := m.(harness.Stepper)
	d, isDist := m.(harness.Distributioner)
	switch {
	case isStepper && (limit == 0 || total <= limit):
		return seqs, rolloutStepper(ctx, st, seqs, steps, choose)
	case isDist:
		return seqs, rolloutRefeed(ctx, d, limit, total, seqs, steps, choose)
	case isStepper:
		return nil, fmt.Errorf("rollout: model %s: %d tokens exceed its context of %d and it has no Distributioner to re-read a window", m.Info().Family, total, limit)
	}
	return nil, fmt.Errorf("model %s supports neither harness.Stepper nor harness.Distributioner", m.Info().Family)
}

func rolloutStepper(ctx context.Context, st harness.Stepper, seqs [][]int, steps int, choose chooser) error {
	state, logp, err := st.Start(ctx, seqs)
	if err != nil {
		return fmt.Errorf("rollout: start: %w", err)
	}
	tokens := make([]int, len(seqs))
	for s := range steps {
		if len(logp) != len(seqs) {
			return fmt.Errorf("rollout: model returned %d distributions for %d rows", len(logp), len(seqs))
		}
		for i := range seqs {
			tokens[i] = choose(i, s, logp[i])
			seqs[i] = append(seqs[i], tokens[i])
		}
		if s == steps-1 {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if logp, err = st.Step(ctx, state, tokens); err != nil {
			return fmt.Errorf("rollout: step %d: %w", s+1, err)
		}
	}
	return nil
}

// refeedBucket is the granularity of re-fed row widths.
const refeedBucket = 16

func rolloutRefeed(ctx context.Context, d harness.Distributioner, limit, total int, seqs [][]int, steps int, choose chooser) error {
	full := total
	if limit > 0 {
		full = min(full, limit)
	}
	inputs := make([][]int, len(seqs))
	for s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := len(seqs[0])
		start, width := 0, min(full, (n+refeedBucket-1)/refeedBucket*refeedBucket)
		if n > full {
			start, width = n-full, full
		}
		for i, seq := range seqs {
			row := make([]int, width)
			copy(row, seq[start:])
			inputs[i] = row // beyond n: Pad (0)
		}
		dists, err := d.NextLogProbs(ctx, inputs)
		if err != nil {
			return fmt.Errorf("rollout: step %d: %w", s, err)
		}
		if len(dists) != len(seqs) {
			return fmt.Errorf("rollout: model returned %d rows for %d", len(dists), len(seqs))
		}
		at := n - 1 - start
		for i := range seqs {
			if len(dists[i]) != width {
				return fmt.Errorf("rollout: model returned %d positions for %d inputs", len(dists[i]), width)
			}
			seqs[i] = append(seqs[i], choose(i, s, dists[i][at]))
		}
	}
	return nil
}
