package decoding

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestRemaskCount pins ⌊N·(T−t)/T⌋ for t = 1..T−1, computed by hand (e.g.
// N = 13, T = 7: 78/7, 65/7, 52/7, 39/7, 26/7, 13/7 → 11 9 7 5 3 1), and
// 0 at t = T.
func TestRemaskCount(t *testing.T) {
	want := map[int][][]int{ // N → T → counts for t = 1..T−1
		1: {
			1: {}, 2: {0}, 3: {0, 0}, 4: {0, 0, 0}, 5: {0, 0, 0, 0}, 6: {0, 0, 0, 0, 0},
			7: {0, 0, 0, 0, 0, 0}, 8: {0, 0, 0, 0, 0, 0, 0}, 9: {0, 0, 0, 0, 0, 0, 0, 0},
			10: {0, 0, 0, 0, 0, 0, 0, 0, 0},
		},
		5: {
			1: {}, 2: {2}, 3: {3, 1}, 4: {3, 2, 1}, 5: {4, 3, 2, 1}, 6: {4, 3, 2, 1, 0},
			7: {4, 3, 2, 2, 1, 0}, 8: {4, 3, 3, 2, 1, 1, 0}, 9: {4, 3, 3, 2, 2, 1, 1, 0},
			10: {4, 4, 3, 3, 2, 2, 1, 1, 0},
		},
		8: {
			1: {}, 2: {4}, 3: {5, 2}, 4: {6, 4, 2}, 5: {6, 4, 3, 1}, 6: {6, 5, 4, 2, 1},
			7: {6, 5, 4, 3, 2, 1}, 8: {7, 6, 5, 4, 3, 2, 1}, 9: {7, 6, 5, 4, 3, 2, 1, 0},
			10: {7, 6, 5, 4, 4, 3, 2, 1, 0},
		},
		13: {
			1: {}, 2: {6}, 3: {8, 4}, 4: {9, 6, 3}, 5: {10, 7, 5, 2}, 6: {10, 8, 6, 4, 2},
			7: {11, 9, 7, 5, 3, 1}, 8: {11, 9, 8, 6, 4, 3, 1}, 9: {11, 10, 8, 7, 5, 4, 2, 1},
			10: {11, 10, 9, 7, 6, 5, 3, 2, 1},
		},
	}
	for N, byT := range want {
		for T := 1; T <= 10; T++ {
			if len(byT[T]) != T-1 {
				t.Fatalf("table N = %d, T = %d has %d entries", N, T, len(byT[T]))
			}
			got := make([]int, 0, T-1)
			for it := 1; it < T; it++ {
				got = append(got, RemaskCount(N, T, it))
			}
			if !slices.Equal(got, byT[T]) {
				t.Errorf("N = %d, T = %d: counts %v, want %v", N, T, got, byT[T])
			}
			if n := RemaskCount(N, T, T); n != 0 {
				t.Errorf("N = %d, T = %d: %d re-masked after the last pass", N, T, n)
			}
		}
	}
	// Exact integer arithmetic where float64 (1 − t/T) would truncate down.
	if n := RemaskCount(5, 5, 4); n != 1 {
		t.Errorf("RemaskCount(5, 5, 4) = %d, want 1", n)
	}
	if n := RemaskCount(10, 10, 9); n != 1 {
		t.Errorf("RemaskCount(10, 10, 9) = %d, want 1", n)
	}
	for _, bad := range [][3]int{{-1, 2, 1}, {3, 0, 1}, {3, 2, 0}, {3, 2, 3}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RemaskCount%v did not panic", bad)
				}
			}()
			RemaskCount(bad[0], bad[1], bad[2])
		}()
	}
}

// call records one Predictor call.
type call struct {
	tokens [][]int
	masked [][]bool
}

// recorder wraps a predictor and keeps every call's inputs.
type recorder struct {
	calls   []call
	predict Predictor
}

func (r *recorder) fn(ctx context.Context, tokens [][]int, masked [][]bool) ([][]int, [][]float32, error) {
	r.calls = append(r.calls, call{tokens, masked})
	return r.predict(ctx, tokens, masked)
}

func countMasked(m []bool) int {
	n := 0
	for _, b := range m {
		if b {
			n++
		}
	}
	return n
}

// constant predicts token 10+pass at every position, with log-probability
// −(pass + position/100): every pass is different, and later positions are
// less confident.
func constant() Predictor {
	pass := 0
	return func(_ context.Context, tokens [][]int, _ [][]bool) ([][]int, [][]float32, error) {
		pass++
		pred, logp := make([][]int, len(tokens)), make([][]float32, len(tokens))
		for i, row := range tokens {
			pred[i], logp[i] = make([]int, len(row)), make([]float32, len(row))
			for j := range row {
				pred[i][j] = 10 + pass
				logp[i][j] = -float32(pass) - float32(j)/100
			}
		}
		return pred, logp, nil
	}
}

// TestMaskPredictOnePass: T = 1 is plain NAR, exactly one call predicting
// every position from all-MASK inputs.
func TestMaskPredictOnePass(t *testing.T) {
	r := &recorder{predict: constant()}
	res, err := MaskPredict(context.Background(), []int{1, 5, 8, 13}, MaskOptions{Iterations: 1, Mask: 99}, r.fn)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 || res.Calls != 1 {
		t.Fatalf("%d predictor calls (Calls = %d), want 1", len(r.calls), res.Calls)
	}
	for i, N := range []int{1, 5, 8, 13} {
		if res.Passes[i] != 1 || res.Stopped[i] {
			t.Errorf("row %d: %d passes, stopped %v", i, res.Passes[i], res.Stopped[i])
		}
		if countMasked(r.calls[0].masked[i]) != N || slices.ContainsFunc(r.calls[0].tokens[i], func(v int) bool { return v != 99 }) {
			t.Errorf("row %d: first pass input %v, masked %v: want all MASK", i, r.calls[0].tokens[i], r.calls[0].masked[i])
		}
		if !slices.Equal(res.Tokens[i], slices.Repeat([]int{11}, N)) {
			t.Errorf("row %d: tokens %v", i, res.Tokens[i])
		}
	}
}

// TestMaskPredictSchedule follows the masks pass by pass: pass t+1 masks
// RemaskCount(N, T, t) positions of each row (and no other: the mask and
// the MASK tokens in the input agree), rows done early are handed over
// with nothing masked, and each row's pass count is 1 + max(0, T − ⌈T/N⌉);
// then which positions, by hand for one row.
func TestMaskPredictSchedule(t *testing.T) {
	lengths := []int{1, 5, 8, 13}
	for T := 1; T <= 10; T++ {
		r := &recorder{predict: constant()}
		res, err := MaskPredict(context.Background(), lengths, MaskOptions{Iterations: T, Mask: 99}, r.fn)
		if err != nil {
			t.Fatal(err)
		}
		if res.Calls != len(r.calls) || res.Calls != slices.Max(res.Passes) {
			t.Fatalf("T = %d: Calls %d, %d calls made, passes %v", T, res.Calls, len(r.calls), res.Passes)
		}
		for i, N := range lengths {
			wantPasses := 1 + max(0, T-(T+N-1)/N)
			if res.Passes[i] != wantPasses {
				t.Errorf("T = %d, N = %d: %d passes, want %d", T, N, res.Passes[i], wantPasses)
			}
			for c := 1; c < len(r.calls); c++ {
				want := 0
				if c < T {
					want = RemaskCount(N, T, c)
				}
				m := r.calls[c].masked[i]
				if got := countMasked(m); got != want {
					t.Errorf("T = %d, N = %d, pass %d: %d masked, want %d", T, N, c+1, got, want)
				}
				for j := range m {
					if m[j] != (r.calls[c].tokens[i][j] == 99) {
						t.Fatalf("pass %d row %d: mask %v does not match input %v", c+1, i, m, r.calls[c].tokens[i])
					}
				}
			}
		}
	}
	// N = 5, T = 3 by hand: pass 1 gives position j log-probability
	// −1 − j/100, so the 3 re-masked after it are the least confident 2, 3
	// and 4; pass 2 gives them −2.02, −2.03, −2.04, and the one re-masked
	// after it is position 4 (−2.04 is the lowest).
	r := &recorder{predict: constant()}
	res, err := MaskPredict(context.Background(), []int{5}, MaskOptions{Iterations: 3, Mask: 99}, r.fn)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.calls[1].masked[0]; !slices.Equal(got, []bool{false, false, true, true, true}) {
		t.Errorf("pass 2 masks %v", got)
	}
	if got := r.calls[2].masked[0]; !slices.Equal(got, []bool{false, false, false, false, true}) {
		t.Errorf("pass 3 masks %v", got)
	}
	if !slices.Equal(res.Tokens[0], []int{11, 11, 12, 12, 13}) {
		t.Errorf("tokens %v, want [11 11 12 12 13]", res.Tokens[0])
	}
	wantLP := []float32{-1, -1.01, -2.02, -2.03, -3.04}
	for j, lp := range res.LogProbs[0] {
		if math.Abs(float64(lp-wantLP[j])) > 1e-6 {
			t.Fatalf("log-probabilities %v, want %v", res.LogProbs[0], wantLP)
		}
	}
}

// TestMaskPredictTies: with equal confidences the lower positions are
// re-masked first.
func TestMaskPredictTies(t *testing.T) {
	r := &recorder{predict: func(_ context.Context, tokens [][]int, _ [][]bool) ([][]int, [][]float32, error) {
		return [][]int{make([]int, 6)}, [][]float32{{-1, -1, -1, -1, -1, -1}}, nil
	}}
	if _, err := MaskPredict(context.Background(), []int{6}, MaskOptions{Iterations: 2}, r.fn); err != nil {
		t.Fatal(err)
	}
	if got := r.calls[1].masked[0]; !slices.Equal(got, []bool{true, true, true, false, false, false}) {
		t.Fatalf("tied confidences: pass 2 masks %v, want the 3 lowest positions", got)
	}
}

// TestMaskPredictKeepsUnmasked: a predictor that returns fresh tokens and
// probabilities everywhere at every pass does not touch the positions that
// were not re-masked: each position's final token and log-probability are
// those of the last pass that had it masked.
func TestMaskPredictKeepsUnmasked(t *testing.T) {
	const N, T = 13, 6
	r := &recorder{predict: constant()}
	res, err := MaskPredict(context.Background(), []int{N}, MaskOptions{Iterations: T, Mask: 99}, r.fn)
	if err != nil {
		t.Fatal(err)
	}
	for j := range N {
		last := 0
		for c, cl := range r.calls {
			if cl.masked[0][j] {
				last = c + 1
			}
		}
		if res.Tokens[0][j] != 10+last || math.Abs(float64(res.LogProbs[0][j]+float32(last)+float32(j)/100)) > 1e-6 {
			t.Errorf("position %d: token %d, log-probability %v; last predicted by pass %d", j, res.Tokens[0][j], res.LogProbs[0][j], last)
		}
		if c := r.calls[len(r.calls)-1]; !c.masked[0][j] && c.tokens[0][j] != res.Tokens[0][j] {
			t.Errorf("position %d: kept token %d fed as %d", j, res.Tokens[0][j], c.tokens[0][j])
		}
	}
	var sum float64
	for _, lp := range res.LogProbs[0] {
		sum += float64(lp)
	}
	if math.Abs(res.Confidence[0]-sum/N) > 1e-9 {
		t.Errorf("confidence %v, mean log-probability %v", res.Confidence[0], sum/N)
	}
}

// oracle is a fake CMLM that knows each row's target: with at least one
// token of the row visible (not masked) it predicts a masked position
// right with probability 0.9, with nothing visible (the first pass) it
// predicts target+1 with probability 0.4, so plain NAR gets everything
// wrong and refinement repairs the positions it re-masks.
func oracle(targets [][]int) Predictor {
	return func(_ context.Context, tokens [][]int, masked [][]bool) ([][]int, [][]float32, error) {
		pred, logp := make([][]int, len(tokens)), make([][]float32, len(tokens))
		for i, row := range tokens {
			visible := countMasked(masked[i]) < len(row)
			pred[i], logp[i] = make([]int, len(row)), make([]float32, len(row))
			for j := range row {
				if visible {
					pred[i][j], logp[i][j] = targets[i][j], float32(math.Log(0.9))
				} else {
					pred[i][j], logp[i][j] = targets[i][j]+1, float32(math.Log(0.4))
				}
			}
		}
		return pred, logp, nil
	}
}

func correct(got, want []int) int {
	n := 0
	for j := range got {
		if got[j] == want[j] {
			n++
		}
	}
	return n
}

// TestMaskPredictConverges drives the oracle, computing by hand how many
// positions come out right for N = 8: T = 1 none; T = 2 re-masks 4 after
// pass 1 (positions 0–3, ties by lower position) and repairs them, 4 right;
// T = 3 re-masks 5 (0–4, repaired) then 2 (the wrong 5 and 6), 7 right
// (position 7 stays wrong); T = 4 re-masks 6 (0–5), then 4 (the wrong 6, 7
// and then 0, 1), all 8 right.
func TestMaskPredictConverges(t *testing.T) {
	target := []int{3, 1, 4, 1, 5, 9, 2, 6}
	for T, want := range map[int]int{1: 0, 2: 4, 3: 7, 4: 8, 10: 8} {
		res, err := MaskPredict(context.Background(), []int{8}, MaskOptions{Iterations: T, Mask: -1}, oracle([][]int{target}))
		if err != nil {
			t.Fatal(err)
		}
		if got := correct(res.Tokens[0], target); got != want {
			t.Errorf("T = %d: %d of 8 right (%v), want %d", T, got, res.Tokens[0], want)
		}
		if want == 8 && math.Abs(res.Confidence[0]-math.Log(0.9)) > 1e-6 {
			t.Errorf("T = %d: confidence %v, want log 0.9", T, res.Confidence[0])
		}
	}
}

// TestMaskPredictEarlyStop: for N = 8, T = 10 the oracle's output is right
// after pass 3 (pass 1 wrong, pass 2 repairs 0–6, pass 3 re-masks 7 and
// 0–4 and repairs 7) and pass 4 changes nothing, so early stopping makes 4
// passes where the schedule makes 9 (the tenth would re-mask none), with
// the same output; a row whose output keeps changing does not stop.
func TestMaskPredictEarlyStop(t *testing.T) {
	target := []int{3, 1, 4, 1, 5, 9, 2, 6}
	full, err := MaskPredict(context.Background(), []int{8}, MaskOptions{Iterations: 10}, oracle([][]int{target}))
	if err != nil {
		t.Fatal(err)
	}
	early, err := MaskPredict(context.Background(), []int{8}, MaskOptions{Iterations: 10, EarlyStop: true}, oracle([][]int{target}))
	if err != nil {
		t.Fatal(err)
	}
	if full.Passes[0] != 9 || full.Stopped[0] {
		t.Errorf("without early stop: %d passes, stopped %v; want 9, false", full.Passes[0], full.Stopped[0])
	}
	if early.Passes[0] != 4 || early.Calls != 4 || !early.Stopped[0] {
		t.Errorf("early stop: %d passes (%d calls), stopped %v; want 4, true", early.Passes[0], early.Calls, early.Stopped[0])
	}
	if !slices.Equal(early.Tokens[0], target) || !slices.Equal(full.Tokens[0], target) {
		t.Errorf("outputs %v and %v, want %v", early.Tokens[0], full.Tokens[0], target)
	}
	// constant() changes every token at every pass: never stops.
	res, err := MaskPredict(context.Background(), []int{8}, MaskOptions{Iterations: 10, EarlyStop: true}, constant())
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes[0] != 9 || res.Stopped[0] {
		t.Errorf("changing output: %d passes, stopped %v; want 9, false", res.Passes[0], res.Stopped[0])
	}
	// A pass that changes nothing but is the row's last scheduled one is
	// not an early stop: N = 8, T = 4 makes its 4 passes either way (pass 3
	// repairs 6 and 7, pass 4 re-predicts 0 and 1 unchanged).
	res, err = MaskPredict(context.Background(), []int{8}, MaskOptions{Iterations: 4, EarlyStop: true}, oracle([][]int{target}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes[0] != 4 || res.Stopped[0] || !slices.Equal(res.Tokens[0], target) {
		t.Errorf("T = 4: %d passes, stopped %v, %v; want 4, false, the target", res.Passes[0], res.Stopped[0], res.Tokens[0])
	}
}

// TestMaskPredictRowsIndependent: a row's output, probabilities and pass
// count are the same decoded alone and in a batch with rows of other
// lengths (including an empty one), with and without early stopping.
func TestMaskPredictRowsIndependent(t *testing.T) {
	targets := [][]int{{3, 1, 4, 1, 5, 9, 2, 6}, {2, 7}, {}, {1, 6, 1, 8, 0, 3, 3, 9, 8, 8, 7, 4, 9}, {5}}
	lengths := []int{8, 2, 0, 13, 1}
	for _, early := range []bool{false, true} {
		opt := MaskOptions{Iterations: 7, EarlyStop: early}
		batch, err := MaskPredict(context.Background(), lengths, opt, oracle(targets))
		if err != nil {
			t.Fatal(err)
		}
		for i := range lengths {
			alone, err := MaskPredict(context.Background(), lengths[i:i+1], opt, oracle(targets[i:i+1]))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(alone.Tokens[0], batch.Tokens[i]) || !slices.Equal(alone.LogProbs[0], batch.LogProbs[i]) ||
				alone.Passes[0] != batch.Passes[i] || alone.Stopped[0] != batch.Stopped[i] || alone.Confidence[0] != batch.Confidence[i] {
				t.Errorf("early stop %v, row %d: alone %v %v passes %d, in the batch %v %v passes %d", early, i,
					alone.Tokens[0], alone.LogProbs[0], alone.Passes[0], batch.Tokens[i], batch.LogProbs[i], batch.Passes[i])
			}
		}
	}
	// Every row empty: nothing to predict, no call.
	res, err := MaskPredict(context.Background(), []int{0, 0}, MaskOptions{Iterations: 3}, func(context.Context, [][]int, [][]bool) ([][]int, [][]float32, error) {
		t.Fatal("predictor called for empty rows")
		return nil, nil, nil
	})
	if err != nil || res.Calls != 0 || res.Confidence[0] != 0 {
		t.Fatalf("empty rows: %+v, %v", res, err)
	}
}

func TestMaskPredictErrors(t *testing.T) {
	ok := constant()
	boom := errors.New("boom")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		lengths []int
		opt     MaskOptions
		predict Predictor
		want    string
	}{
		{"no iterations", context.Background(), []int{3}, MaskOptions{}, ok, "iterations 0 < 1"},
		{"no predictor", context.Background(), []int{3}, MaskOptions{Iterations: 1}, nil, "no predictor"},
		{"negative length", context.Background(), []int{3, -2}, MaskOptions{Iterations: 1}, ok, "row 1 has length -2"},
		{"canceled", canceled, []int{3}, MaskOptions{Iterations: 1}, ok, "context canceled"},
		{"predictor fails", context.Background(), []int{3}, MaskOptions{Iterations: 1},
			func(context.Context, [][]int, [][]bool) ([][]int, [][]float32, error) { return nil, nil, boom }, "pass 1: boom"},
		{"too few rows", context.Background(), []int{3, 2}, MaskOptions{Iterations: 1},
			func(context.Context, [][]int, [][]bool) ([][]int, [][]float32, error) {
				return [][]int{{0, 0, 0}}, [][]float32{{0, 0, 0}}, nil
			}, "1 token rows and 1 log-probability rows for 2 rows"},
		{"short row", context.Background(), []int{3}, MaskOptions{Iterations: 1},
			func(context.Context, [][]int, [][]bool) ([][]int, [][]float32, error) {
				return [][]int{{0, 0, 0}}, [][]float32{{0, 0}}, nil
			}, "row 0: predictor returned 3 tokens and 2 log-probabilities for 3 positions"},
		{"NaN", context.Background(), []int{2}, MaskOptions{Iterations: 1},
			func(context.Context, [][]int, [][]bool) ([][]int, [][]float32, error) {
				return [][]int{{0, 0}}, [][]float32{{0, float32(math.NaN())}}, nil
			}, "row 0, position 1: log-probability NaN"},
		{"+Inf", context.Background(), []int{2}, MaskOptions{Iterations: 1},
			func(context.Context, [][]int, [][]bool) ([][]int, [][]float32, error) {
				return [][]int{{0, 0}}, [][]float32{{float32(math.Inf(1)), 0}}, nil
			}, "position 0: log-probability +Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MaskPredict(tc.ctx, tc.lengths, tc.opt, tc.predict)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func ExampleMaskPredict() {
	// A fake one-pass model: it predicts position j as token j with a
	// confidence that grows with the number of visible tokens.
	predict := func(_ context.Context, tokens [][]int, masked [][]bool) ([][]int, [][]float32, error) {
		pred, logp := make([][]int, len(tokens)), make([][]float32, len(tokens))
		for i, row := range tokens {
			visible := len(row) - countMasked(masked[i])
			pred[i], logp[i] = make([]int, len(row)), make([]float32, len(row))
			for j := range row {
				pred[i][j], logp[i][j] = j, -1/float32(1+visible)
			}
		}
		return pred, logp, nil
	}
	res, _ := MaskPredict(context.Background(), []int{4}, MaskOptions{Iterations: 3, Mask: -1}, predict)
	fmt.Println(res.Tokens[0], res.LogProbs[0], res.Passes[0])
	// Output: [0 1 2 3] [-0.33333334 -0.33333334 -0.25 -1] 3
}
