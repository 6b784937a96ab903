//go:build gotch

package gotch_test

import (
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// TestConv2dMatchesGorgonia runs Conv2d (padding 1 and 0) and a PixelCNN
// mask-A, mask-B stack on both backends, outputs and gradients.
func TestConv2dMatchesGorgonia(t *testing.T) {
	ps := nn.NewParamSet()
	plain := nn.NewConv2d(ps, "plain", 2, 3, 3)
	valid := nn.NewConv2d(ps, "valid", 2, 3, 3)
	valid.Padding = 0
	a := nn.NewMaskedConv2d(ps, "a", nn.MaskA, 1, 4, 7)
	b := nn.NewMaskedConv2d(ps, "b", nn.MaskB, 4, 2, 3)
	for i, p := range ps.List() {
		copy(p.Data, nntest.RandomData(len(p.Data), uint64(i+1), 0.5))
	}
	feeds := nn.Feeds{Floats: map[string][]float32{
		"x": nntest.RandomData(2*2*5*4, 10, 1), "xa": nntest.RandomData(2*1*6*5, 11, 1),
	}}
	runBoth(t, ps, feeds, true, 1e-5, func(g nn.Graph) error {
		x, xa := g.Floats("x", 2, 2, 5, 4), g.Floats("xa", 2, 1, 6, 5)
		y1, y2 := plain.Forward(g, x), valid.Forward(g, x)
		y3 := b.Forward(g, g.ReLU(a.Forward(g, xa)))
		g.Output("plain", y1)
		g.Output("valid", y2)
		g.Output("pixelcnn", y3)
		loss := g.Add(nntest.Projection(g, y1, 1), nntest.Projection(g, y2, 2))
		g.Loss(g.Add(loss, nntest.Projection(g, y3, 3)))
		return nil
	})
}
