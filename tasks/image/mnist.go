package image

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"arbench/datasets"
	"arbench/harness"
)

// MNIST is the data the mnist variant reads: grey images (one byte per
// pixel, 0 = background, 255 = ink, raster order) of Height × Width pixels.
type MNIST struct {
	Train, Test   [][]uint8
	Height, Width int
	// Refs are the files read, with checksums, for the manifest.
	Refs []harness.DatasetRef
}

// MNISTLoader loads MNIST from a dataset cache directory (TaskEnv.DataDir;
// empty means the datasets package's default, datasets.Dir()).
type MNISTLoader func(ctx context.Context, dir string) (*MNIST, error)

// defaultMNIST is the loader New gives a task: the datasets package's
// LoadMNIST (60000 training and 10000 test images of 28×28, checksums
// verified; an error saying how to fetch when not cached).
func defaultMNIST(_ context.Context, dir string) (*MNIST, error) {
	train, test, refs, err := datasets.LoadMNIST(dir)
	if err != nil {
		return nil, err
	}
	split := func(im datasets.Images) [][]uint8 {
		out := make([][]uint8, im.N)
		for i := range out {
			out[i] = im.Image(i)
		}
		return out
	}
	return &MNIST{Train: split(train), Test: split(test), Height: train.H, Width: train.W, Refs: refs}, nil
}

// prepareMNIST loads MNIST and builds the fixed sets and training source:
// train = the first five sixths of the training images, the validation
// pool the last sixth (its first valid_images), test MNIST's test images
// (the first test_images, all by default); each resized to the task's
// side when that is not the images' own.
func (t *Task) prepareMNIST(ctx context.Context, dir string) (valid, test [][]uint8, err error) {
	if t.loadMNIST == nil {
		t.loadMNIST = defaultMNIST
	}
	d, err := t.loadMNIST(ctx, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("image/mnist: %w", err)
	}
	if err := checkMNIST(d); err != nil {
		return nil, nil, fmt.Errorf("image/mnist: %w", err)
	}
	pool := len(d.Train) / 6
	train, validPool := d.Train[:len(d.Train)-pool], d.Train[len(d.Train)-pool:]
	if t.cfg.ValidImages > len(validPool) {
		return nil, nil, fmt.Errorf("image/mnist: valid_images: %d exceed the validation pool of %d images (the last sixth of the training set)", t.cfg.ValidImages, len(validPool))
	}
	nTest := len(d.Test)
	if t.cfg.TestImages != 0 {
		nTest = t.cfg.TestImages
	}
	if nTest > len(d.Test) {
		return nil, nil, fmt.Errorf("image/mnist: test_images: %d exceed the %d test images", nTest, len(d.Test))
	}
	if t.cfg.CompletionImages > nTest {
		return nil, nil, fmt.Errorf("image/mnist: completion_images: %d exceed the %d test images", t.cfg.CompletionImages, nTest)
	}
	resize := func(imgs [][]uint8) [][]uint8 {
		out := make([][]uint8, len(imgs))
		for i, g := range imgs {
			out[i] = Resize(g, d.Height, d.Width, t.side, t.side)
		}
		return out
	}
	trainImgs := resize(train)
	t.train = func(rng *rand.Rand) []uint8 { return trainImgs[rng.IntN(len(trainImgs))] }
	t.refs = d.Refs
	return resize(validPool[:t.cfg.ValidImages]), resize(d.Test[:nTest]), nil
}

// checkMNIST refuses data the variant cannot use.
func checkMNIST(d *MNIST) error {
	switch {
	case d == nil:
		return errors.New("the loader returned no data")
	case d.Height <= 0 || d.Width <= 0:
		return fmt.Errorf("images of %d×%d pixels", d.Height, d.Width)
	case len(d.Train) < 12:
		return fmt.Errorf("%d training images are too few to hold out a validation sixth", len(d.Train))
	case len(d.Test) == 0:
		return errors.New("no test images")
	}
	for name, set := range map[string][][]uint8{"training": d.Train, "test": d.Test} {
		for i, g := range set {
			if len(g) != d.Height*d.Width {
				return fmt.Errorf("%s image %d has %d pixels, want %d×%d", name, i, len(g), d.Height, d.Width)
			}
		}
	}
	return nil
}

// Resize returns a grey image of h × w pixels resized to hh × ww by area
// averaging: each output pixel is the mean of the input over its
// footprint, input pixels weighted by the fraction they cover (a box
// filter, exact for integer factors). The input is returned as is when the
// sizes agree.
func Resize(grey []uint8, h, w, hh, ww int) []uint8 {
	if h == hh && w == ww {
		return grey
	}
	out := make([]uint8, hh*ww)
	// overlap of [a, a+1) scaled input cells with the output cell [o, o+1).
	weights := func(in, outN int) [][]float64 {
		ws := make([][]float64, outN)
		scale := float64(in) / float64(outN)
		for o := range outN {
			lo, hi := float64(o)*scale, float64(o+1)*scale
			ws[o] = make([]float64, in)
			for a := range in {
				ws[o][a] = max(0, min(hi, float64(a+1))-max(lo, float64(a))) / scale
			}
		}
		return ws
	}
	wy, wx := weights(h, hh), weights(w, ww)
	for i := range hh {
		for j := range ww {
			var v float64
			for a := range h {
				if wy[i][a] == 0 {
					continue
				}
				for b := range w {
					v += wy[i][a] * wx[j][b] * float64(grey[a*w+b])
				}
			}
			out[i*ww+j] = uint8(min(255, max(0, v+0.5)))
		}
	}
	return out
}
