//go:build gotch

package gotch_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/nn"
)

// rssBytes returns the process's resident set size from /proc/self/status.
func rssBytes() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}

// TestTrainingDoesNotLeak runs 1000 training steps (gradients with dropout
// and an Adam update) of a small transformer on gotch, with an evaluation
// run every 10 steps, and requires the resident set after the last step to
// be within 10% of its value after step 100. Every libtorch tensor of a
// Run is freed when it returns, so the C++ heap must not grow; the Go heap
// is returned to the OS before each measurement so that only real growth
// counts.
func TestTrainingDoesNotLeak(t *testing.T) {
	if _, err := rssBytes(); err != nil {
		t.Skipf("no RSS measurement here: %v", err)
	}
	ctx := context.Background()
	m := newModel(t, "transformer", "dim: 16\nheads: 2\nlayers: 1\ncontext: 16\ndropout: 0.1\n", openGotch(t), 1)
	opt := nn.NewAdam(m.Params(), nn.DefaultAdamConfig())
	rows := tokens(8, 2, 13)
	batch := harness.Batch{Inputs: make([][]int, 2), Targets: make([][]int, 2)}
	for i, r := range rows {
		batch.Inputs[i], batch.Targets[i] = r[:12], r[1:]
	}
	const steps, baseline = 1000, 100
	var base, first float64
	for step := 1; step <= steps; step++ {
		loss, err := m.(harness.Trainer).Gradients(ctx, batch, uint64(step))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if step == 1 {
			first = loss
		}
		opt.Step()
		if step%10 == 0 {
			if _, err := m.(harness.Distributioner).NextLogProbs(ctx, batch.Inputs); err != nil {
				t.Fatalf("step %d: eval: %v", step, err)
			}
		}
		if step == baseline {
			debug.FreeOSMemory()
			rss, err := rssBytes()
			if err != nil {
				t.Fatal(err)
			}
			base = float64(rss)
		}
		if step == steps {
			debug.FreeOSMemory()
			rss, err := rssBytes()
			if err != nil {
				t.Fatal(err)
			}
			growth := float64(rss)/base - 1
			t.Logf("RSS after step %d: %.1f MiB, after step %d: %.1f MiB (%+.1f%%); loss %.3f -> %.3f",
				baseline, base/(1<<20), steps, float64(rss)/(1<<20), 100*growth, first, loss)
			if growth > 0.10 {
				t.Errorf("RSS grew by %.1f%% between step %d and step %d (limit 10%%)", 100*growth, baseline, steps)
			}
			if !(loss < first) {
				t.Errorf("loss did not decrease over %d steps: %.4f -> %.4f", steps, first, loss)
			}
		}
	}
}
