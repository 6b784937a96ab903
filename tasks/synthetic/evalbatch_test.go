package synthetic

import (
	"context"
	"math"
	"testing"

	"arbench/harness"
)

// rowCounter is a Scorer, Distributioner and Stepper with uniform
// distributions that records the most rows any one call is given.
type rowCounter struct {
	*steppedModel
	most int
}

func (m *rowCounter) see(rows int) { m.most = max(m.most, rows) }

func (m *rowCounter) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	m.see(len(b.Inputs))
	out := make([][]float64, len(b.Inputs))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
		for k, tg := range row {
			if tg >= 0 {
				out[i][k] = -math.Log(float64(m.vocab))
			}
		}
	}
	return out, nil
}

func (m *rowCounter) NextLogProbs(ctx context.Context, inputs [][]int) ([][][]float32, error) {
	m.see(len(inputs))
	return m.steppedModel.NextLogProbs(ctx, inputs)
}

func (m *rowCounter) Start(ctx context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	m.see(len(prompts))
	return m.steppedModel.Start(ctx, prompts)
}

// TestInfoEvalBatch is issue 9's review finding 3: memory estimates assumed
// 64 evaluation rows whatever eval_batch said. Info must report the most
// rows ValidLoss and Evaluate (free-running and oracle sampling included)
// give the model at once: eval_batch, or the largest group when smaller.
func TestInfoEvalBatch(t *testing.T) {
	for _, c := range []struct {
		evalBatch, want int
	}{{5, 5}, {1000, 12}} {
		for _, variant := range Variants() {
			tk := prepared(t, variant, func(cfg *Config) { cfg.EvalRows, cfg.ValidRows, cfg.EvalBatch = 12, 12, c.evalBatch })
			if got := tk.Info().EvalBatch; got != c.want {
				t.Errorf("%s, eval_batch %d: Info().EvalBatch = %d, want %d", variant, c.evalBatch, got, c.want)
			}
			vocab := tk.vocab
			m := &rowCounter{steppedModel: &steppedModel{rowModel: &rowModel{
				baseModel: baseModel{"counter", vocab},
				next:      func([]int, int) []float32 { return uniformLogp(vocab) },
			}}}
			if _, err := tk.ValidLoss(context.Background(), m); err != nil {
				t.Fatalf("%s: %v", variant, err)
			}
			if _, err := tk.Evaluate(context.Background(), m); err != nil {
				t.Fatalf("%s: %v", variant, err)
			}
			if m.most != c.want {
				t.Errorf("%s, eval_batch %d: the model got up to %d rows at once, Info says %d", variant, c.evalBatch, m.most, c.want)
			}
		}
	}
}
