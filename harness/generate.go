package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
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

func (o GenOptions) validate() error {
	var errs []error
	if o.MaxNew < 0 {
		errs = append(errs, fmt.Errorf("max new tokens %d < 0", o.MaxNew))
	}
	if !(o.Temperature >= 0) || math.IsInf(o.Temperature, 0) {
		errs = append(errs, fmt.Errorf("temperature %v must be a finite number >= 0", o.Temperature))
	}
	if o.TopK < 0 {
		errs = append(errs, fmt.Errorf("top-k %d < 0", o.TopK))
	}
	if !(o.TopP >= 0 && o.TopP <= 1) {
		errs = append(errs, fmt.Errorf("top-p %v outside [0, 1]", o.TopP))
	}
	return errors.Join(errs...)
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
	if err := opt.validate(); err != nil {
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
// and top-p filtering, in that order (as Hugging Face's generate applies
// them).
//
// The weights are exp((x − max)/T), never exp(x/T − max/T): with a tiny T
// both terms of the latter overflow to −Inf and their difference is NaN.
// The most probable token weighs exp(0) = 1 whatever T and every other
// token a weight in [0, 1], so the total is at least 1 for any
// log-probabilities a Decoder accepts; it is checked all the same.
func (s *sampler) distribution(logp []float32, opt GenOptions) ([]int, []float64, error) {
	ids := s.ids[:0]
	mx := math.Inf(-1)
	for v, lp := range logp {
		x := float64(lp)
		if math.IsInf(x, -1) {
			continue // an impossible token
		}
		ids = append(ids, v)
		mx = math.Max(mx, x)
	}
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("no finite log-probability among %d tokens", len(logp))
	}
	probs := s.probs[:0]
	for _, v := range ids {
		probs = append(probs, math.Exp((float64(logp[v])-mx)/opt.Temperature))
	}
	sort.Sort(byProb{ids, probs})
	n := len(ids)
	if opt.TopK > 0 && opt.TopK < n {
		n = opt.TopK
	}
	var total float64
	for _, p := range probs[:n] {
		total += p
	}
	if opt.TopP > 0 && opt.TopP < 1 {
		// The inputs are float32, so a mass within float32 rounding of p
		// (relative 1e-6) counts as reaching it.
		var cum float64
		for k, p := range probs[:n] {
			cum += p
			if cum >= opt.TopP*total*(1-1e-6) {
				n = k + 1
				break
			}
		}
		total = 0
		for _, p := range probs[:n] {
			total += p
		}
	}
	if !(total > 0) || math.IsInf(total, 1) {
		return nil, nil, fmt.Errorf("sampling weights at temperature %v sum to %v (log-probabilities with NaN or +Inf?)", opt.Temperature, total)
	}
	ids, probs = ids[:n], probs[:n]
	for k := range probs {
		probs[k] /= total
	}
	s.ids, s.probs = ids, probs
	return ids, probs, nil
}

type byProb struct {
	ids   []int
	probs []float64
}

func (b byProb) Len() int { return len(b.ids) }
func (b byProb) Less(i, j int) bool {
	if b.probs[i] != b.probs[j] {
		return b.probs[i] > b.probs[j]
	}
	return b.ids[i] < b.ids[j]
}
func (b byProb) Swap(i, j int) {
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
	b.probs[i], b.probs[j] = b.probs[j], b.probs[i]
}
