package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"arbench/nn"
)

// Ceiling is the matrix-multiply throughput `arbench bench` measures on
// the backend under test at startup: the reference that achieved
// GFLOP/s are compared with (never a datasheet peak).
type Ceiling struct {
	// N is the size of the square product C = A·B (2·N³ FLOPs).
	N int `json:"n"`
	// GFLOPS summarises the repeats; Best is the highest, the ceiling.
	GFLOPS Summary `json:"gflops"`
	Best   float64 `json:"best_gflops"`
}

// MeasureCeiling times an n×n by n×n float32 product compiled on backend:
// warmup untimed runs, then repeats runs of at least minSeconds each.
func MeasureCeiling(ctx context.Context, backend nn.Backend, n, warmup, repeats int, minSeconds float64) (Ceiling, error) {
	exe, err := backend.Compile(nn.Spec{Key: fmt.Sprintf("ceiling/n%d", n)}, func(g nn.Graph) error {
		g.Output("c", g.MatMul(g.Floats("a", n, n), g.Floats("b", n, n), false, false))
		return nil
	})
	if err != nil {
		return Ceiling{}, fmt.Errorf("matmul ceiling: %w", err)
	}
	defer exe.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i], b[i] = rng.Float32()-0.5, rng.Float32()-0.5
	}
	feeds := nn.Feeds{Floats: map[string][]float32{"a": a, "b": b}}
	run := func() error {
		_, err := exe.Run(ctx, feeds)
		return err
	}
	for range warmup {
		if err := run(); err != nil {
			return Ceiling{}, fmt.Errorf("matmul ceiling: %w", err)
		}
	}
	flops := 2 * float64(n) * float64(n) * float64(n)
	var rates []float64
	for range repeats {
		runs := 0
		start := time.Now()
		for runs == 0 || time.Since(start).Seconds() < minSeconds {
			if err := run(); err != nil {
				return Ceiling{}, fmt.Errorf("matmul ceiling: %w", err)
			}
			runs++
		}
		rates = append(rates, flops*float64(runs)/time.Since(start).Seconds()/1e9)
	}
	s := Summarize(rates)
	return Ceiling{N: n, GFLOPS: s, Best: s.Max}, nil
}
