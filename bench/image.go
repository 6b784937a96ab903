package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"arbench/harness"
	"arbench/tasks/image"
)

// The image sweep (harness.BenchImage, issue 11): generation time against
// image size. An image of side S is a row of N = S·S pixels in
// tasks/image's framing (vocabulary image.Vocab: pixel values 0 and 1 and
// the start token image.Start; image.Frame). A KindImageSample point
// samples Batch whole images from the start token, N sequential decoder
// steps; KindImageTrain and KindImageScore are the parallel passes that
// read all N pixels at once: one Gradients call (forward and backward, no
// optimiser step, as the image task's train_step_ms_per_image) and one
// LogProbs call over a framed batch of uniformly random binary images.
// All three report ms per image and pixels/s (TokensPerSec).

// isImage reports whether kind is one of the image sweep's.
func isImage(kind string) bool {
	return kind == KindImageSample || kind == KindImageTrain || kind == KindImageScore
}

// imagePoints lists the image sweep's points of a model: for every size,
// a sample point per sample batch, then the training and scoring passes.
// None when the sweep is disabled.
func imagePoints(base Point, im harness.BenchImage) []Point {
	if !im.Enabled() {
		return nil
	}
	var pts []Point
	for _, side := range im.Sizes {
		p := base
		p.Side, p.SeqLen = side, side*side
		for _, b := range im.SampleBatches {
			q := p
			q.Kind, q.Batch = KindImageSample, b
			pts = append(pts, q)
		}
		for _, kind := range []string{KindImageTrain, KindImageScore} {
			q := p
			q.Kind, q.Batch = kind, im.PassBatch
			pts = append(pts, q)
		}
	}
	return pts
}

// imageOperation returns an image point's operation on m, or why m cannot
// do it: sampling needs harness.Decoder's capabilities (a Stepper or a
// Distributioner), the passes a Trainer or a Scorer. The passes read a few
// framed batches of random images drawn from rng, in turn.
func (r *runner) imageOperation(m harness.Model, p Point, rng *rand.Rand) (opFunc, string, error) {
	switch p.Kind {
	case KindImageTrain:
		tr, ok := m.(harness.Trainer)
		if !ok {
			return nil, "not trainable (no harness.Trainer)", nil
		}
		return gradientsOp(m, tr, randomImageBatches(rng, p.Batch, p.SeqLen), nil), "", nil
	case KindImageScore:
		sc, ok := harness.ScorerOf(m)
		if !ok {
			return nil, "cannot score (no harness.Scorer)", nil
		}
		return logProbsOp(sc, randomImageBatches(rng, p.Batch, p.SeqLen)), "", nil
	case KindImageSample:
		dec, err := harness.NewDecoder(m, p.SeqLen, harness.DecodeOptions{})
		if errors.Is(err, harness.ErrCannotDecode) {
			return nil, err.Error(), nil
		}
		if err != nil {
			return nil, "", err
		}
		return func(ctx context.Context, t *timing) (int, error) {
			start := time.Now()
			if _, err := image.Sample(ctx, dec, p.SeqLen, nil, imageRNGs(r.opt.Seed, p.Batch)); err != nil {
				return 0, err
			}
			if t != nil {
				t.first, t.path = time.Since(start).Seconds(), dec.Mode().String()
			}
			return p.Batch * p.SeqLen, nil
		}, "", nil
	}
	return nil, "", fmt.Errorf("unknown image kind %q", p.Kind)
}

// imageStream is the PCG stream word of the sampled images' generators.
const imageStream = 0x62656e6368696d67 // "benchimg"

// imageRNGs returns one generator per image, image i's seeded (seed ^
// imageStream, i): every repeat samples the same images.
func imageRNGs(seed uint64, n int) []*rand.Rand {
	out := make([]*rand.Rand, n)
	for i := range out {
		out[i] = rand.New(rand.NewPCG(seed^imageStream, uint64(i)))
	}
	return out
}

// randomImageBatches returns a few batches of B uniformly random binary
// images of n pixels, framed as the image task frames them (image.Frame).
func randomImageBatches(rng *rand.Rand, B, n int) []harness.Batch {
	out := make([]harness.Batch, 4)
	for k := range out {
		imgs := make([][]uint8, B)
		for i := range imgs {
			imgs[i] = make([]uint8, n)
			for j := range imgs[i] {
				imgs[i][j] = uint8(rng.IntN(2))
			}
		}
		out[k] = image.Frame(imgs)
	}
	return out
}

// msPerImage summarises the seconds of each repeat over the batch's
// images, in milliseconds.
func msPerImage(seconds []float64, batch int) *Summary {
	ms := make([]float64, len(seconds))
	for i, s := range seconds {
		ms[i] = 1e3 * s / float64(batch)
	}
	sum := Summarize(ms)
	return &sum
}
