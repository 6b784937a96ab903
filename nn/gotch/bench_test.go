//go:build gotch

package gotch_test

import (
	"context"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/nn/gorgonia"
)

// BenchmarkTrainStep measures one training step (forward, backward, Adam)
// of every plugin at its default size on a byte-level batch of 8×64, on
// gorgonia and on gotch, reporting tokens/s: `make bench-gotch`.
func BenchmarkTrainStep(b *testing.B) {
	const batch, seqLen, vocab = 8, 64, 256
	backends := []struct {
		name string
		open func(testing.TB) nn.Backend
	}{
		{"gorgonia", func(testing.TB) nn.Backend { return gorgonia.New() }},
		{"gotch-" + testDevice(), openGotch},
	}
	for _, family := range []string{"rnn", "lstm", "transformer"} {
		for _, be := range backends {
			b.Run(family+"/"+be.name, func(b *testing.B) {
				ctx := context.Background()
				m, err := harness.NewModel(family)
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Setup(ctx, harness.Env{Backend: be.open(b), Vocab: vocab, SeqLen: seqLen, Seed: 1}); err != nil {
					b.Fatal(err)
				}
				rng := nn.NewRNG(2)
				bt := harness.Batch{Inputs: make([][]int, batch), Targets: make([][]int, batch)}
				for i := range batch {
					row := make([]int, seqLen+1)
					for j := range row {
						row[j] = rng.IntN(vocab)
					}
					bt.Inputs[i], bt.Targets[i] = row[:seqLen], row[1:]
				}
				opt := nn.NewAdam(m.Params(), nn.DefaultAdamConfig())
				tr := m.(harness.Trainer)
				if _, err := tr.Gradients(ctx, bt, 0); err != nil { // compile outside the timing
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := range b.N {
					if _, err := tr.Gradients(ctx, bt, uint64(i)); err != nil {
						b.Fatal(err)
					}
					opt.Step()
				}
				b.ReportMetric(float64(b.N*batch*seqLen)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
