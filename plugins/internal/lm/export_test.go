package lm

import (
	"context"

	"arbench/harness"
)

// AllEmbeddingGradientNorms is EmbeddingGradientNorms over every position
// s in [0, T), beyond t too, so tests can see that the graph gives the
// positions after t no gradient.
func (m *Base) AllEmbeddingGradientNorms(ctx context.Context, b harness.Batch, t int) ([][]float64, error) {
	g, T, err := m.embeddingGradients(ctx, b, t)
	if err != nil {
		return nil, err
	}
	return rowNorms(g, len(b.Inputs), T, T), nil
}
