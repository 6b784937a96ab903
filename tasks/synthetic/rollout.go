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
// the steps chosen tokens). The model is run through a harness.Decoder:
// its Stepper when the sequence fits its context, else re-reading a
// sliding window through its Distributioner (see harness.Decoder).
func rollout(ctx context.Context, m harness.Model, prompts [][]int, steps int, choose chooser) ([][]int, error) {
	if len(prompts) == 0 || steps <= 0 {
		return prompts, nil
	}
	p := len(prompts[0])
	dec, err := harness.NewDecoder(m, p+steps-1, harness.DecodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	logp, err := dec.Start(ctx, prompts)
	seqs := make([][]int, len(prompts))
	for i, row := range prompts {
		seqs[i] = append(make([]int, 0, p+steps), row...)
	}
	tokens := make([]int, len(prompts))
	for s := 0; err == nil; s++ {
		for i := range seqs {
			tokens[i] = choose(i, s, logp[i])
			seqs[i] = append(seqs[i], tokens[i])
		}
		if s == steps-1 {
			return seqs, nil
		}
		logp, err = dec.Step(ctx, tokens)
	}
	return nil, fmt.Errorf("rollout: %w", err)
}
