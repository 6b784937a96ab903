package seq2seq_test

import (
	"context"
	"errors"
	"testing"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
	"arbench/plugins/transformer"
	"arbench/tasks/seq2seq"
)

// noRefeed is a transformer that fails if a Decoder re-reads a window
// (which it does only for rows longer than the context).
type noRefeed struct{ *transformer.Model }

var errRefed = errors.New("re-fed: a decoded row outgrew the context")

func (noRefeed) NextLogProbs(context.Context, [][]int) ([][][]float32, error) { return nil, errRefed }

func (noRefeed) NextLogProbsAt(context.Context, [][]int, int) ([][]float32, error) {
	return nil, errRefed
}

// TestRealTransformerJoined evaluates a real (untrained) transformer
// whose context is exactly the task's SeqLen: joined scoring and greedy
// decoding of max_out tokens after the longest source fit in it, so
// decoding never falls back to re-reading a window.
func TestRealTransformerJoined(t *testing.T) {
	task := seq2seq.New()
	cfg := task.Config().(*seq2seq.TaskConfig)
	cfg.MinLen, cfg.MaxLen, cfg.ValidRows, cfg.TestRows, cfg.LatencyRows, cfg.LargeBatch = 6, 8, 8, 12, 2, 6
	if err := task.Prepare(context.Background(), harness.TaskEnv{Variant: "reverse", Seed: 2}); err != nil {
		t.Fatal(err)
	}
	info := task.Info()
	m := transformer.New()
	mc := m.Config().(*transformer.Config)
	mc.Dim, mc.Heads, mc.Layers, mc.Context = 16, 2, 1, info.SeqLen
	env := harness.Env{Backend: nngorgonia.New(), Vocab: info.Vocab, SeqLen: info.SeqLen, Seed: 3,
		EvalBatch: info.EvalBatch, SourceLen: info.SourceLen, TargetLen: info.TargetLen}
	if err := m.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if _, err := task.ValidLoss(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	ev, err := task.Evaluate(context.Background(), noRefeed{m.(*transformer.Model)})
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range ev.Metrics {
		if mt.Name == "exact_match" && !(mt.Value >= 0 && mt.Value <= 1) {
			t.Errorf("exact_match %v", mt.Value)
		}
	}
}
