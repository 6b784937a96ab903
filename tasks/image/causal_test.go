package image_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gopkg.in/yaml.v3"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
	"arbench/plugins/bernoulli"
	"arbench/plugins/lstm"
	"arbench/plugins/pixelcnn"
	"arbench/plugins/rnn"
	"arbench/plugins/transformer"
	"arbench/tasks/image"
)

// imageModels are the model families that run the image task, each small:
// the two PixelCNNs, the language models reading pixels as tokens, and the
// factorised baseline.
var imageModels = []struct {
	name   string
	new    func() harness.Model
	config string
	// factorised: no prediction depends on any pixel.
	factorised bool
}{
	{"bernoulli", bernoulli.New, "", true},
	{"pixelcnn", pixelcnn.NewPixelCNN, "{channels: 8, layers: 2, kernel: 3, block_kernel: 3}", false},
	{"gated-pixelcnn", pixelcnn.NewGated, "{channels: 4, layers: 2, kernel: 3, block_kernel: 3}", false},
	{"rnn", rnn.New, "{embed: 4, hidden: 8}", false},
	{"lstm", lstm.New, "{embed: 4, hidden: 8}", false},
	{"transformer", transformer.New, "{dim: 8, heads: 2, layers: 1, context: 30, dropout: 0}", false},
}

// TestEveryImageModelIsCausal flips every pixel q of two random 5×6 images
// in turn, through the task's framing (image.Frame: pixel q is input
// position q+1), and requires the predicted distribution of every pixel
// at or before q in raster order to stay bit-identical, in both images,
// for every image model; a later pixel's must change for every model but
// the factorised baseline, whose predictions change nowhere.
func TestEveryImageModelIsCausal(t *testing.T) {
	const h, w = 5, 6
	const N = h * w
	for _, f := range imageModels {
		t.Run(f.name, func(t *testing.T) {
			m := f.new()
			if f.config != "" {
				if err := yaml.Unmarshal([]byte(f.config), m.Config()); err != nil {
					t.Fatal(err)
				}
			}
			if c, ok := m.Config().(*pixelcnn.Config); ok {
				c.Height, c.Width = h, w
			}
			if err := m.Setup(context.Background(), harness.Env{Backend: nngorgonia.New(), Vocab: image.Vocab, SeqLen: N, Seed: 3}); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			imgs := make([][]uint8, 2)
			for i := range imgs {
				imgs[i] = make([]uint8, N)
				for k := range imgs[i] {
					imgs[i][k] = uint8(rng.IntN(2))
				}
			}
			base := distributions(t, m, image.Frame(imgs).Inputs)
			for q := range N - 1 { // the last pixel is no input
				pert := make([][]uint8, len(imgs))
				for i := range imgs {
					pert[i] = append([]uint8(nil), imgs[i]...)
					pert[i][q] ^= 1
				}
				got := distributions(t, m, image.Frame(pert).Inputs)
				later := false
				for i := range imgs {
					for pos := range N {
						same := sameBits(base[i][pos], got[i][pos])
						if pos <= q && !same {
							t.Fatalf("flipping pixel %d (row %d, column %d) changed the prediction of pixel %d of image %d: %v -> %v",
								q, q/w, q%w, pos, i, base[i][pos], got[i][pos])
						}
						later = later || !same
					}
				}
				if later == f.factorised {
					t.Fatalf("flipping pixel %d: some later prediction changed: %v (a factorised model's never does, any other model's does)", q, later)
				}
			}
		})
	}
}

func distributions(t *testing.T, m harness.Model, rows [][]int) [][][]float32 {
	t.Helper()
	d, ok := m.(harness.Distributioner)
	if !ok {
		t.Fatalf("%s is no harness.Distributioner", m.Info().Family)
	}
	lp, err := d.NextLogProbs(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	return lp
}

func sameBits(a, b []float32) bool {
	for v := range a {
		if math.Float32bits(a[v]) != math.Float32bits(b[v]) {
			return false
		}
	}
	return true
}
