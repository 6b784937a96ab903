package text

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"arbench/harness"
	"arbench/internal/stats"
)

func TestBlockTotals(t *testing.T) {
	totals, counts := blockTotals([]float64{1, 2, 3, 4, 5, 6, 7}, 3)
	if !slices.Equal(totals, []float64{6, 15, 7}) || !slices.Equal(counts, []int{3, 3, 1}) {
		t.Errorf("blockTotals = %v, %v", totals, counts)
	}
}

func TestPerToken(t *testing.T) {
	// Equal groups: totals·G/n.
	if got := perToken([]float64{4, 8, 6}, []int{2, 2, 2}); !slices.Equal(got, []float64{2, 4, 3}) {
		t.Errorf("equal groups: %v", got)
	}
	// Unequal groups: the mean is the mean per token (21/7 = 3), and a
	// loss the same for every token gives the same value for every group.
	v := perToken([]float64{9, 9, 3}, []int{3, 3, 1})
	if m := (v[0] + v[1] + v[2]) / 3; math.Abs(m-3) > 1e-12 {
		t.Errorf("mean %v, want 3 per token", m)
	}
	for _, x := range v {
		if math.Abs(x-3) > 1e-12 {
			t.Errorf("constant loss per token: group values %v, want all 3", v)
		}
	}
	v = perToken([]float64{12, 6, 1}, []int{3, 3, 1}) // 19/7 per token
	if m := (v[0] + v[1] + v[2]) / 3; math.Abs(m-19.0/7) > 1e-12 {
		t.Errorf("mean %v, want 19/7", m)
	}
}

// runModel predicts "the same byte again" with probability 0.9: cheap on
// runs of one byte, dear on random bytes.
type runModel struct{ baseModel }

func (runModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	return logProbs(b, func(row []int, t, tg int) float64 {
		if tg == row[t] {
			return math.Log(0.9)
		}
		return math.Log(0.1 / 255)
	}), nil
}

// blocky is n bytes in blocks of 64, each either one byte repeated or
// random bytes, so that the losses of tokens within a window are
// correlated.
func blocky(seed uint64, n int) []byte {
	r := randomBytes(seed, n)
	for lo := 0; lo < n; lo += 64 {
		if r[lo]%2 == 0 {
			for i := lo; i < min(lo+64, n); i++ {
				r[i] = 'a'
			}
		}
	}
	return r
}

func preparedSeed(t *testing.T, data []byte, cfg Config, seed uint64) *Task {
	t.Helper()
	p := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	task := New().(*Task)
	*task.Config().(*Config) = cfg
	if err := task.Prepare(context.Background(), harness.TaskEnv{DataFile: p, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return task
}

// TestEvaluateIntervals: every loss metric has a bootstrap interval over
// its windows, seeded from the task's seed, in the metric's unit; for
// tokens correlated within windows it is wider than a bootstrap over
// single tokens would make it.
func TestEvaluateIntervals(t *testing.T) {
	cfg := Config{SeqLen: 64, ValidTokens: 100, EvalBatch: 64}
	data := blocky(12, 200000)
	task := preparedSeed(t, data, cfg, 1)
	ev, err := task.Evaluate(context.Background(), runModel{})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics(ev)
	N := len(task.test) - 1
	for suffix, windows := range map[string]int{"": len(disjointWindows(N, 64)), "_sliding": len(slidingWindows(N, 64, 32))} {
		nats := m["nats_per_token"+suffix]
		ci := nats.CI
		if ci == nil || ci.Method != harness.CIBootstrap || ci.N != windows || ci.Of != "windows" || ci.Level != stats.Level {
			t.Fatalf("nats_per_token%s interval %+v, want a bootstrap over %d windows", suffix, ci, windows)
		}
		if !(float64(ci.Lo) < nats.Value && nats.Value < float64(ci.Hi)) {
			t.Errorf("nats_per_token%s %v outside [%v, %v]", suffix, nats.Value, ci.Lo, ci.Hi)
		}
		bits, ppl := m["bits_per_byte"+suffix].CI, m["perplexity"+suffix].CI
		if !approx(float64(bits.Lo), float64(ci.Lo)/math.Ln2, 1e-12) || !approx(float64(bits.Hi), float64(ci.Hi)/math.Ln2, 1e-12) ||
			!approx(float64(ppl.Lo), math.Exp(float64(ci.Lo)), 1e-12) || !approx(float64(ppl.Hi), math.Exp(float64(ci.Hi)), 1e-12) {
			t.Errorf("%s: bits %+v and perplexity %+v are not the nats interval %+v converted", suffix, bits, ppl, ci)
		}
	}
	// Resampling single tokens would understate the spread.
	seq := ints(task.test)
	perTok := make([]float64, N)
	for j := 1; j <= N; j++ {
		if seq[j] == seq[j-1] {
			perTok[j-1] = -math.Log(0.9)
		} else {
			perTok[j-1] = -math.Log(0.1 / 255)
		}
	}
	tok := stats.BootstrapMean(perTok, stats.Level, stats.Resamples, 1)
	ci := m["nats_per_token"].CI
	if w, tw := float64(ci.Hi-ci.Lo), tok.Hi-tok.Lo; w < 2*tw {
		t.Errorf("window interval width %v, token interval width %v: windows of correlated tokens should be much wider", w, tw)
	}
	// The same seed gives the same interval, another seed another one.
	again, err := preparedSeed(t, data, cfg, 1).Evaluate(context.Background(), runModel{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := preparedSeed(t, data, cfg, 2).Evaluate(context.Background(), runModel{})
	if err != nil {
		t.Fatal(err)
	}
	if *metrics(again)["nats_per_token"].CI != *ci {
		t.Errorf("same seed: %+v, then %+v", ci, metrics(again)["nats_per_token"].CI)
	}
	if *metrics(other)["nats_per_token"].CI == *ci {
		t.Errorf("seeds 1 and 2 drew the same resamples: %+v", ci)
	}
}

func TestGroupTotals(t *testing.T) {
	if got := groupTotals([]float64{1, 2, 3, 4, 5}, []int{3, 1, 1}); !slices.Equal(got, []float64{6, 4, 5}) {
		t.Errorf("groupTotals = %v", got)
	}
}
