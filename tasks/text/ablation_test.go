package text

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"arbench/harness"
)

func TestAblatedContextsKeepTheLastK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := make([]int, 40)
	for i := range ctx {
		ctx[i] = i // distinct, so a permutation is easy to recognise
	}
	orig := slices.Clone(ctx)
	for _, k := range []int{0, 1, 5, 39, 40, 50} {
		tr := truncateContext(ctx, k)
		keep := min(k, len(ctx))
		if !slices.Equal(tr, ctx[len(ctx)-keep:]) {
			t.Errorf("truncate to %d: %v", k, tr)
		}
		sh := shuffleContext(ctx, k, rng)
		if len(sh) != len(ctx) || !slices.Equal(sh[len(sh)-keep:], ctx[len(ctx)-keep:]) {
			t.Errorf("shuffle beyond %d changed the last %d tokens: %v", k, keep, sh)
		}
		far := slices.Clone(sh[:len(sh)-keep])
		slices.Sort(far)
		if !slices.Equal(far, ctx[:len(ctx)-keep]) {
			t.Errorf("shuffle beyond %d is not a permutation of the far tokens: %v", k, sh)
		}
		if k == 5 && slices.Equal(sh[:35], ctx[:35]) {
			t.Errorf("shuffle beyond 5 left 35 tokens in order")
		}
		if !slices.Equal(ctx, orig) {
			t.Fatalf("ablation modified its input")
		}
	}
}

// shortMemoryModel pays an extra nat for a target predicted from fewer than
// 8 tokens and ignores what the tokens are.
type shortMemoryModel struct{ baseModel }

func (m *shortMemoryModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	return logProbs(b, func(row []int, t, tg int) float64 {
		lp := -1.0
		if t+1 < 8 {
			lp -= 1
		}
		return lp
	}), nil
}

func TestContextAblation(t *testing.T) {
	data := randomBytes(7, 20000)
	task := prepared(t, data, Config{SeqLen: 32, ValidTokens: 100, EvalBatch: 16,
		AblationContexts: []int{16, 2, 8, 4, 32, 1}, AblationTargets: 100})
	m := &shortMemoryModel{}
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	mt := metrics(ev)
	if got := mt["effective_context"].Value; got != 8 {
		t.Errorf("effective_context = %v, want 8", got)
	}
	if got := mt["effective_context_shuffled"].Value; got != 1 {
		t.Errorf("effective_context_shuffled = %v, want 1 (this model ignores order)", got)
	}
	if got := mt["nats_per_token_ablation_full"].Value; got != 1 {
		t.Errorf("full-context loss = %v, want 1", got)
	}
	var tr, sh harness.Series
	for _, s := range ev.Series {
		if s.Name == "loss_vs_context" {
			if s.Label == "truncated" {
				tr = s
			} else if s.Label == "shuffled" {
				sh = s
			}
		}
	}
	wantX := []float64{1, 2, 4, 8, 16, 32}
	if !slices.Equal(tr.X, wantX) || !slices.Equal(sh.X, wantX) {
		t.Fatalf("x = %v / %v, want %v", tr.X, sh.X, wantX)
	}
	if want := []float64{2, 2, 2, 1, 1, 1}; !slices.Equal(tr.Y, want) {
		t.Errorf("truncated losses %v, want %v", tr.Y, want)
	}
	for k, y := range sh.Y {
		if y != 1 || sh.N[k] != 100 {
			t.Errorf("shuffled loss at %v = %v over %d targets, want 1 over 100", sh.X[k], y, sh.N[k])
		}
	}
}

// TestContextAblationScoresTheSameTargets checks, with a model whose score
// depends on the whole context, that every context size scores the same
// targets and that both curves end at the full-context loss.
func TestContextAblationScoresTheSameTargets(t *testing.T) {
	data := randomBytes(8, 20000)
	task := prepared(t, data, Config{SeqLen: 16, ValidTokens: 100, EvalBatch: 8, AblationContexts: []int{3, 9}, AblationTargets: 50})
	var per []map[int]int
	rec := &recordingModel{record: func(targets map[int]int) { per = append(per, targets) }}
	ev, err := task.Evaluate(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	// Calls: disjoint and sliding windows first, then the ablation: full,
	// then per k truncated and shuffled (one Scorer call each: 50 targets
	// in batches of 8 → 7 calls per context).
	ablation := per[len(per)-5*7:]
	merged := make([]map[int]int, 5)
	for c := range merged {
		merged[c] = map[int]int{}
		for _, m := range ablation[c*7 : (c+1)*7] {
			for k, v := range m {
				merged[c][k] += v
			}
		}
	}
	for c := 1; c < 5; c++ {
		if !mapsEqual(merged[c], merged[0]) {
			t.Errorf("context %d scored different targets than the full context", c)
		}
	}
	mt := metrics(ev)
	for _, s := range ev.Series {
		if s.Name == "loss_vs_context" && s.Y[len(s.Y)-1] != mt["nats_per_token_ablation_full"].Value {
			t.Errorf("%s curve ends at %v, full-context loss %v", s.Label, s.Y[len(s.Y)-1], mt["nats_per_token_ablation_full"].Value)
		}
	}
}

type recordingModel struct {
	prefixModel
	record func(map[int]int)
}

func (m *recordingModel) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	seen := map[int]int{}
	for _, row := range b.Targets {
		for _, tg := range row {
			if tg >= 0 {
				seen[tg]++
			}
		}
	}
	m.record(seen)
	return m.prefixModel.LogProbs(ctx, b)
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
