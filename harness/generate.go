package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"arbench/internal/decoding"
)

// GenOptions controls Generate.
type GenOptions struct {
	// MaxNew is the maximum number of tokens generated per row.
	MaxNew int
	// Temperature divides the log-probabilities before sampling; 0 selects
	// greedy decoding (argmax, lowest token id on ties). As it tends to 0
	// the sampled distribution tends to uniform over the most probable
	// tokens, and a temperature so small that the scaled differences
	// underflow (1e-310) samples exactly that: the argmax when it is
	// unique, one of the tied tokens drawn at random otherwise.
	Temperature float64
	// TopK keeps only the K most probable tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most probable tokens whose probability
	// mass is at least TopP (nucleus sampling, Holtzman et al. 2020, "The
	// Curious Case of Neural Text Degeneration"); 0 or 1 keeps all.
	TopP float64
	// StopToken ends a row when generated (it is included in the row's
	// output); -1 for none.
	StopToken int
	// Seed drives sampling. Row i uses its own generator seeded from
	// (Seed, i), so a row's output does not depend on the other rows.
	Seed uint64
}

// DefaultGenOptions returns greedy decoding of 200 tokens with no stop token.
func DefaultGenOptions() GenOptions {
	return GenOptions{MaxNew: 200, StopToken: -1}
}

// Validate reports every unusable option at once: a negative MaxNew, and
// the sampling options decoding.Sampling.Validate refuses.
func (o GenOptions) Validate() error {
	var errs []error
	if o.MaxNew < 0 {
		errs = append(errs, fmt.Errorf("max new tokens %d < 0", o.MaxNew))
	}
	return errors.Join(append(errs, o.sampling().Validate())...)
}

// sampling is the part of o that chooses each token.
func (o GenOptions) sampling() decoding.Sampling {
	return decoding.Sampling{Temperature: o.Temperature, TopK: o.TopK, TopP: o.TopP}
}

// Generate continues each prompt by up to opt.MaxNew tokens and returns the
// generated tokens only (not the prompts). MaxNew may be as large as
// math.MaxInt (generate until the stop token): nothing is allocated for
// tokens not generated.
//
// Prompts of different lengths are generated in groups of equal length,
// each through a Decoder (DecodeAuto: the model's Stepper when prompt plus
// continuation fit its context, else re-reading a sliding window through
// its Distributioner). Each row samples with its own generator (see
// GenOptions.Seed), so results do not depend on batching or on the path.
// A distribution that is not one (NaN, +Inf, nothing finite: non-finite
// weights) is an error naming the prompt and the token.
func Generate(ctx context.Context, m Model, prompts [][]int, opt GenOptions) ([][]int, error) {
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
	}
	out := make([][]int, len(prompts))
	rngs := make([]*rand.Rand, len(prompts))
	for i := range prompts {
		out[i] = []int{}
		rngs[i] = rand.New(rand.NewPCG(opt.Seed, uint64(i)))
	}
	if opt.MaxNew == 0 || len(prompts) == 0 {
		return out, nil
	}
	// Group rows by prompt length, in order of first appearance.
	var order []int
	groups := map[int][]int{}
	for i, p := range prompts {
		if _, ok := groups[len(p)]; !ok {
			order = append(order, len(p))
		}
		groups[len(p)] = append(groups[len(p)], i)
	}
	for _, n := range order {
		if err := generateGroup(ctx, m, prompts, groups[n], opt, rngs, out); err != nil {
			return nil, groupError(err, groups[n])
		}
	}
	return out, nil
}

// groupError names the prompt and the generated token of a group's
// DistributionError (whose row is an index into rows).
func groupError(err error, rows []int) error {
	var de *DistributionError
	if errors.As(err, &de) {
		return fmt.Errorf("generate: prompt %d, new token %d: next-token log-probabilities are not a distribution: %s",
			rows[de.Row], de.Step+1, de.Problem)
	}
	var se *samplingError
	if errors.As(err, &se) {
		return fmt.Errorf("generate: prompt %d, new token %d: %w", rows[se.row], se.token, se.err)
	}
	return fmt.Errorf("generate: %w", err)
}

// generateGroup generates for the given rows, whose prompts have equal
// length. Rows that are done keep being fed their last token (the batch
// of a Decoder is fixed); their outputs are ignored.
func generateGroup(ctx context.Context, m Model, prompts [][]int, rows []int, opt GenOptions, rngs []*rand.Rand, out [][]int) error {
	dec, err := NewDecoder(m, decodeLength(len(prompts[rows[0]]), opt.MaxNew), DecodeOptions{})
	if err != nil {
		return err
	}
	batch := make([][]int, len(rows))
	for j, i := range rows {
		batch[j] = prompts[i]
	}
	logp, err := dec.Start(ctx, batch)
	done := make([]bool, len(rows))
	tokens := make([]int, len(rows))
	var sc sampler
	for err == nil {
		active := 0
		for j, i := range rows {
			if done[j] {
				continue
			}
			tok, err := sc.pick(logp[j], opt, rngs[i])
			if err != nil {
				return &samplingError{row: j, token: len(out[i]) + 1, err: err}
			}
			out[i] = append(out[i], tok)
			tokens[j] = tok
			if tok == opt.StopToken || len(out[i]) == opt.MaxNew {
				done[j] = true
			} else {
				active++
			}
		}
		if active == 0 {
			return nil
		}
		logp, err = dec.Step(ctx, tokens)
	}
	return err
}

// decodeLength is the longest row a Decoder reads to continue a prompt of
// p >= 1 tokens by up to maxNew: p + maxNew − 1 (the last token is chosen,
// never fed), math.MaxInt when that does not fit in an int.
func decodeLength(p, maxNew int) int {
	if maxNew > math.MaxInt-p+1 {
		return math.MaxInt
	}
	return p + maxNew - 1
}

// samplingError is a distribution the sampler could not draw from; row
// indexes the group's rows, token counts the row's new tokens from 1.
type samplingError struct {
	row, token int
	err        error
}

func (e *samplingError) Error() string { return e.err.Error() }
func (e *samplingError) Unwrap() error { return e.err }

// sampler picks tokens; it reuses its buffers between calls.
type sampler struct {
	ids   []int
	probs []float64
}

// pick chooses the next token from log-probabilities that a Decoder has
// checked (no NaN or +Inf, some entry finite): Argmax when
// opt.Temperature is 0, else a draw from the filtered distribution. It
// fails, rather than pick an arbitrary token, on log-probabilities that do
// not give a distribution (unchecked ones).
func (s *sampler) pick(logp []float32, opt GenOptions, rng *rand.Rand) (int, error) {
	if opt.Temperature == 0 {
		return Argmax(logp), nil
	}
	ids, probs, err := s.distribution(logp, opt)
	if err != nil {
		return 0, err
	}
	u := rng.Float64()
	var acc float64
	for k, p := range probs {
		acc += p
		if u < acc {
			return ids[k], nil
		}
	}
	return ids[len(ids)-1], nil // rounding: acc fell just short of 1
}

// distribution returns the candidate tokens, most probable first (lower id
// on ties), and their renormalised probabilities after temperature, top-k
// and top-p filtering: decoding.Filter, reusing the sampler's buffers.
func (s *sampler) distribution(logp []float32, opt GenOptions) ([]int, []float64, error) {
	ids, probs, err := decoding.Filter(logp, opt.sampling(), s.ids, s.probs)
	if err != nil {
		return nil, nil, err
	}
	s.ids, s.probs = ids, probs
	return ids, probs, nil
}
