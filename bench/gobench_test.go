package bench

import (
	"context"
	"testing"
	"time"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
)

// Go benchmarks of the models at the reference size (vocabulary
// 256, width 128, 2 layers, 4 heads, sequence 64, batch 32) on the gorgonia
// backend, reporting tokens/s for benchstat:
//
//	go test ./bench -run '^$' -bench . -benchtime 3x
var refModels = []struct{ name, cfg string }{
	{"rnn", "{embed: 128, hidden: 128, layers: 2}"},
	{"lstm", "{embed: 128, hidden: 128, layers: 2}"},
	{"transformer", "{dim: 128, heads: 4, layers: 2, context: 272}"},
}

func refConfig() *harness.BenchConfig {
	c := harness.DefaultBench()
	c.Vocab = 256
	return c
}

// benchOp times op (after one untimed call) and reports tokens/s.
func benchOp(b *testing.B, r *runner, name, cfg string, p Point) {
	s := spec(b, name, cfg)
	seqLen := p.SeqLen
	if p.Kind == KindGenerate {
		seqLen = p.Prompt
	}
	m, err := r.newModel(context.Background(), &s, r.pointEnv(p, nngorgonia.New(), seqLen))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := closeModel(m); err != nil {
			b.Error(err)
		}
	}()
	op, why, err := r.operation(m, p)
	if err != nil || why != "" {
		b.Fatal(err, why)
	}
	ctx := context.Background()
	if _, err := op(ctx, nil); err != nil {
		b.Fatal(err)
	}
	tokens := 0
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		n, err := op(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		tokens += n
	}
	b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tokens/s")
}

// BenchmarkTrainStep: one training step (gradients, clipping, Adam) on 32
// rows of 64 tokens.
func BenchmarkTrainStep(b *testing.B) {
	r := &runner{opt: Options{Config: refConfig(), Seed: 1}}
	for _, m := range refModels {
		b.Run(m.name, func(b *testing.B) {
			benchOp(b, r, m.name, m.cfg, Point{Kind: KindTrain, Batch: 32, SeqLen: 64})
		})
	}
}

// BenchmarkScore: teacher-forced log-probabilities of 32 rows of 64 tokens.
func BenchmarkScore(b *testing.B) {
	r := &runner{opt: Options{Config: refConfig(), Seed: 1}}
	for _, m := range refModels {
		b.Run(m.name, func(b *testing.B) {
			benchOp(b, r, m.name, m.cfg, Point{Kind: KindScore, Batch: 32, SeqLen: 64})
		})
	}
}

// BenchmarkGenerate: greedy generation of 256 tokens after a 16-token
// prompt at batch 1, with carried state (recurrent state, key/value cache)
// and, for the transformer, with the re-feeding loop.
func BenchmarkGenerate(b *testing.B) {
	r := &runner{opt: Options{Config: refConfig(), Seed: 1}}
	for _, m := range refModels {
		modes := []string{ModeCached}
		if m.name == "transformer" {
			modes = append(modes, ModeRefeed)
		}
		for _, mode := range modes {
			b.Run(m.name+"/"+mode, func(b *testing.B) {
				benchOp(b, r, m.name, m.cfg, Point{Kind: KindGenerate, Mode: mode, Batch: 1, Prompt: 16, Length: 256})
			})
		}
	}
}
