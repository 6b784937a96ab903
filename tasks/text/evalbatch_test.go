package text

import (
	"context"
	"testing"

	"arbench/harness"
)

// rowCounter scores uniformly and records the most rows one call gets.
type rowCounter struct {
	uniformModel
	most *int
}

func (m rowCounter) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	*m.most = max(*m.most, len(b.Inputs))
	return m.uniformModel.LogProbs(ctx, b)
}

// TestInfoEvalBatch is issue 9's review finding 3: memory estimates assumed
// 64 evaluation rows whatever eval_batch said. Info must report eval_batch,
// the most windows ValidLoss and Evaluate (context ablation included) give
// a Scorer at once.
func TestInfoEvalBatch(t *testing.T) {
	for _, evalBatch := range []int{3, 40, 1000000} {
		task := prepared(t, randomBytes(7, 20000), Config{SeqLen: 16, ValidTokens: 500, EvalBatch: evalBatch,
			AblationContexts: []int{2, 8}, AblationTargets: 100})
		want := evalBatch
		if evalBatch == 1000000 {
			// More than any pass has: capped at the windows that exist
			// (20000 bytes: 2000 test bytes at stride 8).
			want = -1
		}
		got := task.Info().EvalBatch
		if want > 0 && got != want {
			t.Errorf("eval_batch %d: Info().EvalBatch = %d", evalBatch, got)
		}
		most := 0
		m := rowCounter{most: &most}
		if _, err := task.ValidLoss(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if _, err := task.Evaluate(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if want < 0 {
			if got != most || got >= 10000 {
				t.Errorf("eval_batch %d: Info().EvalBatch = %d, most rows in one call %d", evalBatch, got, most)
			}
			continue
		}
		if most != evalBatch {
			t.Errorf("eval_batch %d: the model got up to %d windows at once", evalBatch, most)
		}
	}
}
