package decoding

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"arbench/internal/fsum"
)

// RemaskCount returns the number of tokens mask-predict re-masks after
// decoder pass t of T in a row of N target tokens: the linear decay of
// Ghazvininejad et al. 2019 (Sec. 3),
//
//	n = ⌊N · (T − t) / T⌋,
//
// computed exactly in integers. Pass 1 reads every position masked (the
// paper's iteration 0, n = N); after pass t, 1 ≤ t < T, the n
// lowest-confidence tokens are masked again and predicted by pass t+1;
// after the last pass (t = T) nothing is (n = 0). T = 1 is plain
// non-autoregressive decoding: one pass, nothing re-masked.
//
// The reference implementation (facebookresearch/Mask-Predict) computes
// (N.float() * (1 − t/T)).long() in float32, which agrees with this for
// N ≤ 200 and T ≤ 10 (checked); the same expression in float64 truncates
// some exact integers down (N = 5, T = 5, t = 4 gives 0, not 1).
//
// RemaskCount panics unless N ≥ 0, T ≥ 1 and 1 ≤ t ≤ T.
func RemaskCount(N, T, t int) int {
	if N < 0 || T < 1 || t < 1 || t > T {
		panic(fmt.Sprintf("decoding: RemaskCount(N=%d, T=%d, t=%d) outside N >= 0, T >= 1, 1 <= t <= T", N, T, t))
	}
	return N * (T - t) / T
}

// Predictor is one decoder pass of a conditional masked language model
// over a batch of target rows (the source, the encoder output and the MASK
// embedding are the model's business, closed over by the function).
// tokens[i] is row i's current target, the MaskOptions.Mask token at every
// masked position; masked[i][j] says whether position j of row i is masked.
// It returns, for every position of every row, the predicted token pred[i][j]
// and its log-probability logp[i][j] (the paper's argmax_w and max_w of
// P(y_j = w | X, Y_obs); a model may choose otherwise, e.g. sample, as long
// as logp is the chosen token's log-probability).
//
// Only masked positions are read from the result; a row with no masked
// position (done, or stopped early) is not read at all and may be nil. The
// function must not retain or modify tokens and masked.
type Predictor func(ctx context.Context, tokens [][]int, masked [][]bool) (pred [][]int, logp [][]float32, err error)

// MaskOptions configure MaskPredict.
type MaskOptions struct {
	// Iterations is T ≥ 1, the number of decoder passes scheduled; 1 is
	// plain non-autoregressive decoding.
	Iterations int
	// Mask is the token id fed at masked positions.
	Mask int
	// EarlyStop freezes a row after a pass (the second or later) that
	// changed none of its tokens, its remaining passes skipped. Off by
	// default: the tokens being unchanged does not mean their
	// probabilities are, so a later pass could still have changed the
	// output. MaskResult.Stopped records which rows stopped.
	EarlyStop bool
}

// MaskResult is the output of MaskPredict.
type MaskResult struct {
	// Tokens[i] is row i's output, LogProbs[i][j] the log-probability of
	// Tokens[i][j] as last predicted (a token never re-masked keeps the
	// probability of the pass that produced it).
	Tokens   [][]int
	LogProbs [][]float32
	// Confidence[i] is the mean of LogProbs[i], the score by which the
	// paper chooses among length-beam candidates (Sec. 3: the candidate of
	// highest average log-probability). It is 0 for an empty row, which
	// would beat every other candidate: a length beam should not offer
	// length 0 unless that is meant.
	Confidence []float64
	// Passes[i] is the number of decoder passes that predicted at least
	// one position of row i.
	Passes []int
	// Calls is the number of Predictor calls, the largest Passes[i].
	Calls int
	// Stopped[i] says whether EarlyStop froze row i before its scheduled
	// last pass.
	Stopped []bool
}

// MaskPredict decodes rows of the given target lengths with mask-predict
// (Ghazvininejad et al. 2019, "Mask-Predict: Parallel Decoding of
// Conditional Masked Language Models", Sec. 3) in opt.Iterations = T
// decoder passes, each a call of predict:
//
//   - pass 1 predicts every position of every row (all masked);
//   - after pass t < T, the n = RemaskCount(N, T, t) positions of lowest
//     log-probability in a row of N are masked (ties: the lower position
//     is masked first), and pass t+1 predicts them; the other positions
//     keep their tokens and probabilities.
//
// In the paper's notation, with p_j the probability of token y_j:
//
//	Y_mask = argmin_n(p),  Y_obs = Y \ Y_mask,
//	y_j, p_j ← argmax_w, max_w P(y_j = w | X, Y_obs)  for j ∈ Y_mask.
//
// A row takes part in a pass only when it has a position to predict: a
// pass for which n = 0 could change nothing and is skipped (RemaskCount is
// 0 once N·(T−t) < T, so a row of N ≥ 1 tokens takes 1 + max(0, T − ⌈T/N⌉)
// passes: T when N ≥ T, fewer for shorter rows), as are the remaining
// passes of a row stopped by opt.EarlyStop. The batch stops calling
// predict when no row takes part; a row that does not is handed to predict
// with nothing masked and its result is not read. A row's output therefore
// depends only on its own predictions, not on the other rows of the batch.
//
// Empty rows (length 0) are allowed; every row being empty makes no call.
// A predicted log-probability that is NaN or +Inf is an error, as is a
// result of the wrong shape.
func MaskPredict(ctx context.Context, lengths []int, opt MaskOptions, predict Predictor) (*MaskResult, error) {
	if opt.Iterations < 1 {
		return nil, fmt.Errorf("mask-predict: iterations %d < 1", opt.Iterations)
	}
	if predict == nil {
		return nil, errors.New("mask-predict: no predictor")
	}
	rows := len(lengths)
	res := &MaskResult{
		Tokens:     make([][]int, rows),
		LogProbs:   make([][]float32, rows),
		Confidence: make([]float64, rows),
		Passes:     make([]int, rows),
		Stopped:    make([]bool, rows),
	}
	masked := make([][]bool, rows)
	active := make([]bool, rows) // has a masked position for the next pass
	for i, n := range lengths {
		if n < 0 {
			return nil, fmt.Errorf("mask-predict: row %d has length %d < 0", i, n)
		}
		res.Tokens[i] = make([]int, n)
		res.LogProbs[i] = make([]float32, n)
		masked[i] = make([]bool, n)
		for j := range n {
			res.Tokens[i][j] = opt.Mask
			masked[i][j] = true
		}
		active[i] = n > 0
	}
	T := opt.Iterations
	order := make([]int, 0, slices.Max(append([]int{0}, lengths...)))
	for pass := 1; pass <= T && slices.Contains(active, true); pass++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in, inMask := make([][]int, rows), make([][]bool, rows)
		for i := range rows {
			in[i] = slices.Clone(res.Tokens[i])
			inMask[i] = slices.Clone(masked[i])
			for j, m := range masked[i] {
				if m {
					in[i][j] = opt.Mask
				}
			}
		}
		pred, logp, err := predict(ctx, in, inMask)
		res.Calls++
		if err != nil {
			return nil, fmt.Errorf("mask-predict: pass %d: %w", pass, err)
		}
		if len(pred) != rows || len(logp) != rows {
			return nil, fmt.Errorf("mask-predict: pass %d: predictor returned %d token rows and %d log-probability rows for %d rows",
				pass, len(pred), len(logp), rows)
		}
		for i := range rows {
			if !active[i] {
				continue
			}
			N := lengths[i]
			if len(pred[i]) != N || len(logp[i]) != N {
				return nil, fmt.Errorf("mask-predict: pass %d: row %d: predictor returned %d tokens and %d log-probabilities for %d positions",
					pass, i, len(pred[i]), len(logp[i]), N)
			}
			changed := false
			for j, m := range masked[i] {
				if !m {
					continue
				}
				if lp := logp[i][j]; lp != lp || math.IsInf(float64(lp), 1) {
					return nil, fmt.Errorf("mask-predict: pass %d: row %d, position %d: log-probability %v", pass, i, j, lp)
				}
				changed = changed || pred[i][j] != res.Tokens[i][j]
				res.Tokens[i][j], res.LogProbs[i][j] = pred[i][j], logp[i][j]
				masked[i][j] = false
			}
			res.Passes[i]++
			n := 0
			if pass < T {
				n = RemaskCount(N, T, pass)
			}
			if n > 0 && opt.EarlyStop && pass > 1 && !changed {
				res.Stopped[i] = true
				n = 0
			}
			active[i] = n > 0
			if n == 0 {
				continue
			}
			order = order[:0]
			for j := range N {
				order = append(order, j)
			}
			lp := res.LogProbs[i]
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(lp[a], lp[b]) })
			for _, j := range order[:n] {
				masked[i][j] = true
			}
		}
	}
	for i, lp := range res.LogProbs {
		if len(lp) == 0 {
			continue
		}
		xs := make([]float64, len(lp))
		for j, x := range lp {
			xs[j] = float64(x)
		}
		res.Confidence[i] = fsum.Sum(xs) / float64(len(xs))
	}
	return res, nil
}
