package text_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
	"arbench/plugins/transformer"
	"arbench/tasks/text"
)

// TestSlidingStride1EqualsWholeTextRealTransformer checks, with a real
// (untrained, randomly initialised) transformer, that sliding-window
// evaluation with stride 1 and a window covering the test split equals
// scoring the whole test split at once.
func TestSlidingStride1EqualsWholeTextRealTransformer(t *testing.T) {
	corpus := strings.Repeat("autoregressive models read their own outputs. ", 14)[:600]
	path := filepath.Join(t.TempDir(), "c.txt")
	if err := os.WriteFile(path, []byte(corpus), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, test := text.Split(len(corpus))
	task := text.New()
	cfg := task.Config().(*text.Config)
	cfg.SeqLen = test - 1 // the test split has test-1 targets
	cfg.EvalStride = 1
	if err := task.Prepare(context.Background(), harness.TaskEnv{DataFile: path, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	m := transformer.New()
	mc := m.Config().(*transformer.Config)
	mc.Dim, mc.Heads, mc.Layers, mc.Context = 16, 2, 2, 32
	if err := m.Setup(context.Background(), harness.Env{Backend: nngorgonia.New(), Vocab: text.Vocab, SeqLen: cfg.SeqLen, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]harness.Metric{}
	for _, mt := range ev.Metrics {
		got[mt.Name] = mt
	}
	whole, sliding := got["nats_per_token"], got["nats_per_token_sliding"]
	if whole.Params["window"] != cfg.SeqLen || sliding.Params["stride"] != 1 {
		t.Fatalf("evaluations not configured as intended: %v / %v", whole.Params, sliding.Params)
	}
	if d := math.Abs(whole.Value - sliding.Value); d > 1e-6 || whole.Value < 1 {
		t.Fatalf("whole text %.9f nats/token, sliding stride 1 %.9f (diff %g)", whole.Value, sliding.Value, d)
	}
}
