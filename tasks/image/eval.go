package image

import (
	"arbench/tasks/image/binimage"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"time"

	"arbench/harness"
	"arbench/internal/decoding"
	"arbench/internal/fsum"
	"arbench/internal/stats"
)

// ratioUnit is the unit of a ratio of two times: seconds per second, a
// timing unit (harness.IsTimingUnit), so reproduce does not compare it.
const ratioUnit = "s/s"

// pixelSampling is how every image is sampled: the model's distribution
// at temperature 1 (greedy decoding of an image is one fixed image).
var pixelSampling = decoding.Sampling{Temperature: 1}

// checkContext refuses a model whose context cannot hold a row.
func (t *Task) checkContext(m harness.Model) error {
	if mc := harness.ContextOf(m); mc > 0 && mc < t.N() {
		return fmt.Errorf("image: model %s reads at most %d tokens, but an image is a row of %d pixels (%d×%d)",
			m.Info().Family, mc, t.N(), t.side, t.side)
	}
	return nil
}

// ValidLoss returns the mean nats per pixel over the validation images,
// teacher-forced. A model without harness.Scorer has none
// (harness.ErrNoValidLoss).
func (t *Task) ValidLoss(ctx context.Context, m harness.Model) (float64, error) {
	if t.train == nil {
		panic("image: ValidLoss before a successful Prepare")
	}
	sc, ok := harness.ScorerOf(m)
	if !ok {
		return 0, fmt.Errorf("image: model %s is no harness.Scorer: %w", m.Info().Family, harness.ErrNoValidLoss)
	}
	if err := t.checkContext(m); err != nil {
		return 0, err
	}
	sums := make([]float64, len(t.valid))
	if err := t.score(ctx, sc, t.valid, func(i int, nll []float64) { sums[i] = fsum.Sum(nll) }); err != nil {
		return 0, fmt.Errorf("image: valid loss: %w", err)
	}
	return fsum.Sum(sums) / float64(len(t.valid)*t.N()), nil
}

// score scores images teacher-forced (Frame) in calls of eval_batch rows
// and calls f with each image's index and per-pixel NLL in nats.
func (t *Task) score(ctx context.Context, sc harness.Scorer, imgs [][]uint8, f func(i int, nll []float64)) error {
	N := t.N()
	for lo := 0; lo < len(imgs); lo += t.cfg.EvalBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := imgs[lo:min(lo+t.cfg.EvalBatch, len(imgs))]
		lp, err := sc.LogProbs(ctx, Frame(chunk))
		if err != nil {
			return fmt.Errorf("images %d..%d: %w", lo, lo+len(chunk)-1, err)
		}
		if len(lp) != len(chunk) {
			return fmt.Errorf("scorer returned %d rows for %d images", len(lp), len(chunk))
		}
		for r, row := range lp {
			if len(row) != N {
				return fmt.Errorf("scorer returned %d positions for an image of %d pixels", len(row), N)
			}
			nll := make([]float64, N)
			for k, v := range row {
				if math.IsNaN(v) {
					return fmt.Errorf("scorer returned NaN at image %d, pixel %d", lo+r, k)
				}
				nll[k] = -v
			}
			f(lo+r, nll)
		}
	}
	return nil
}

// Evaluate measures the model on the test images. Every metric's Params
// hold binarize, height and width; the intervals (Metric.CI)
// are normal 95% intervals of a mean over images.
//
//   - Likelihood (teacher-forced, through harness.Scorer): nats_per_image
//     (−log p(x), summed over the N pixels) and bits_per_dim (=
//     nats_per_image / (N·ln 2)), and the series bits_per_dim_vs_row (x =
//     image row from 1 at the top).
//   - Sampling speed (through harness.Decoder; each pixel drawn at
//     temperature 1 from the model's distribution over the pixel values
//     {0, 1}, renormalised, with one generator per image seeded from the
//     run's seed): at batch 1 over latency_images images, after one
//     untimed image, sample_ms_per_image_b1, images_per_s_b1 and
//     pixels_per_s_b1; over sample_images images in one batch, after an
//     untimed pass of the same batch, the same with suffix _large.
//     Params decode_path says the Decoder's path ("cached": the model's
//     Stepper; "refeed": its Distributioner re-reading the prefix).
//   - Parallel passes, on the first sample_images test images in one call
//     (after an untimed call): score_ms_per_image (one teacher-forced
//     Scorer pass, all N pixels at once) and, for a harness.Trainer,
//     train_step_ms_per_image (one Gradients call: forward and backward;
//     it overwrites Params().Grad, which holds nothing after training);
//     generation_over_score and generation_over_train_step are
//     sample_ms_per_image_large over each (s/s): how many parallel
//     passes one sequentially generated image costs.
//   - Samples: sample_bits_per_dim, the model's own NLL of its
//     unconditional samples (scored like the test images); the first 64
//     samples are written to Samples (binimage.SampleKind).
//   - Completion (completion_images > 0): the first completion_images test
//     images keep their top H/2 rows and the model samples the rest
//     (through the same Decoder loop); completion_bits_per_dim_teacher_forced
//     is the bits/dim of the true bottom half given the true top half,
//     completion_bits_per_dim_free_running that of the model's sampled
//     bottom half given the same top half, both scored by the task's
//     scoring; the series completion_bits_per_dim_vs_row (labels
//     teacher_forced and free_running) gives them per bottom row. The
//     first 64 completions are written to Samples
//     (binimage.CompletionKind, with the true image).
func (t *Task) Evaluate(ctx context.Context, m harness.Model) (*harness.Evaluation, error) {
	if t.train == nil {
		panic("image: Evaluate before a successful Prepare")
	}
	sc, ok := harness.ScorerOf(m)
	if !ok {
		return nil, fmt.Errorf("image: model %s cannot score images (it does not implement harness.Scorer)", m.Info().Family)
	}
	if err := t.checkContext(m); err != nil {
		return nil, err
	}
	ev := &harness.Evaluation{}
	H, W := t.Side()
	nComp := t.cfg.CompletionImages
	perImage := make([]float64, len(t.test))
	rows := make([][]float64, H) // per row, per image: nats
	for r := range rows {
		rows[r] = make([]float64, len(t.test))
	}
	truthNLL := make([][]float64, nComp)
	err := t.score(ctx, sc, t.test, func(i int, nll []float64) {
		perImage[i] = fsum.Sum(nll)
		for r := range H {
			rows[r][i] = fsum.Sum(nll[r*W : (r+1)*W])
		}
		if i < nComp {
			truthNLL[i] = nll
		}
	})
	if err != nil {
		return nil, fmt.Errorf("image: evaluate: %w", err)
	}
	params := t.params(map[string]any{"images": len(t.test)})
	ev.Metrics = append(ev.Metrics, meanMetric("nats_per_image", perImage, 1, "nats/image", params),
		meanMetric("bits_per_dim", perImage, bitsPerNat/float64(t.N()), "bits/dim", params))
	ev.Series = append(ev.Series, rowSeries("bits_per_dim_vs_row", "", rows, 0, float64(W), params))

	if err := t.speed(ctx, m, sc, ev); err != nil {
		return nil, fmt.Errorf("image: evaluate: %w", err)
	}
	if nComp > 0 {
		if err := t.complete(ctx, m, sc, truthNLL, ev); err != nil {
			return nil, fmt.Errorf("image: evaluate: completion: %w", err)
		}
	}
	return ev, nil
}

// bitsPerNat converts nats to bits.
const bitsPerNat = 1 / math.Ln2

// params returns the Params every metric carries, with extra added.
func (t *Task) params(extra map[string]any) map[string]any {
	p := map[string]any{"binarize": t.cfg.Binarize, "height": t.side, "width": t.side}
	maps.Copy(p, extra)
	return p
}

// rngs returns the generators of images from .. from+n−1 of a purpose:
// image i draws from its own PCG seeded (run seed ^ stream, i), so an
// image does not depend on the batch it is drawn in.
func (t *Task) rngs(stream uint64, from, n int) []*rand.Rand {
	out := make([]*rand.Rand, n)
	for i := range out {
		out[i] = rand.New(rand.NewPCG(t.seed^stream, uint64(from+i)))
	}
	return out
}

// draw samples, for each prefix (equal lengths k < N, possibly 0), the
// pixels k … N−1 through a fresh harness.Decoder (Sample), and returns the
// whole images and the Decoder's path.
func (t *Task) draw(ctx context.Context, m harness.Model, prefixes [][]uint8, rngs []*rand.Rand) ([][]uint8, harness.DecodeMode, error) {
	dec, err := harness.NewDecoder(m, t.N(), harness.DecodeOptions{})
	if err != nil {
		return nil, 0, err
	}
	out, err := Sample(ctx, dec, t.N(), prefixes, rngs)
	return out, dec.Mode(), err
}

// Sample draws images of N pixels through dec (a harness.Decoder for rows
// of N tokens), as the task samples and completes them (and the bench
// times them): for each prefix (equal lengths k < N, possibly 0; nil or
// empty prefixes mean one unconditional image per generator) the row is
// Start and the prefix, and each next pixel k … N−1 is drawn from the
// model's distribution over the pixel values {0, 1} at temperature 1
// (renormalised: what the model puts on the start token is dropped), row
// i with generator rngs[i]. It returns the whole images, prefix included.
// It panics when prefixes and rngs differ in number, on prefixes of
// unequal lengths or of N pixels or more (programmer errors).
func Sample(ctx context.Context, dec *harness.Decoder, N int, prefixes [][]uint8, rngs []*rand.Rand) ([][]uint8, error) {
	if prefixes == nil {
		prefixes = make([][]uint8, len(rngs))
	}
	if len(prefixes) != len(rngs) || len(prefixes) == 0 {
		panic(fmt.Sprintf("image: Sample: %d prefixes and %d generators", len(prefixes), len(rngs)))
	}
	k := len(prefixes[0])
	prompts := make([][]int, len(prefixes))
	out := make([][]uint8, len(prefixes))
	for i, p := range prefixes {
		if len(p) != k || k >= N {
			panic(fmt.Sprintf("image: Sample: prefix %d has %d pixels, want %d < %d", i, len(p), k, N))
		}
		prompts[i] = make([]int, 1, k+1)
		prompts[i][0] = Start
		for _, v := range p {
			prompts[i] = append(prompts[i], int(v))
		}
		out[i] = append(make([]uint8, 0, N), p...)
	}
	logp, err := dec.Start(ctx, prompts)
	tokens := make([]int, len(prefixes))
	for pos := k; err == nil; pos++ {
		for i := range out {
			if len(logp[i]) < 2 {
				return nil, fmt.Errorf("pixel %d: the model returned %d log-probabilities, want the vocabulary of %d", pos, len(logp[i]), Vocab)
			}
			v, err := decoding.Sample(logp[i][:2], pixelSampling, rngs[i])
			if err != nil {
				return nil, fmt.Errorf("row %d, pixel %d: cannot sample a pixel value: %w", i, pos, err)
			}
			out[i] = append(out[i], uint8(v))
			tokens[i] = v
		}
		if pos == N-1 {
			return out, nil
		}
		logp, err = dec.Step(ctx, tokens)
	}
	return nil, fmt.Errorf("sample: %w", err)
}

// speed measures sampling at batch 1 and at the large batch, the parallel
// passes, and the samples' own NLL, and writes the samples.
func (t *Task) speed(ctx context.Context, m harness.Model, sc harness.Scorer, ev *harness.Evaluation) error {
	N := t.N()
	L, S := t.cfg.LatencyImages, t.cfg.SampleImages
	one := [][]uint8{{}}
	// Batch 1: one untimed image (its own generator, after the timed ones'),
	// then L images one at a time.
	if _, _, err := t.draw(ctx, m, one, t.rngs(latencyStream, L, 1)); err != nil {
		return fmt.Errorf("sampling at batch 1: %w", err)
	}
	var b1 float64
	var mode harness.DecodeMode
	for i := range L {
		t0 := time.Now()
		_, md, err := t.draw(ctx, m, one, t.rngs(latencyStream, i, 1))
		b1 += time.Since(t0).Seconds()
		if err != nil {
			return fmt.Errorf("sampling at batch 1: %w", err)
		}
		mode = md
	}
	// Large batch: an untimed pass, then the same pass timed (same
	// generators, so the same images from a deterministic model).
	empty := make([][]uint8, S)
	for i := range empty {
		empty[i] = []uint8{}
	}
	if _, _, err := t.draw(ctx, m, empty, t.rngs(sampleStream, 0, S)); err != nil {
		return fmt.Errorf("sampling %d images: %w", S, err)
	}
	t0 := time.Now()
	samples, largeMode, err := t.draw(ctx, m, empty, t.rngs(sampleStream, 0, S))
	large := time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("sampling %d images: %w", S, err)
	}
	dec := "sampled, temperature 1, pixel values {0, 1}"
	p1 := t.params(map[string]any{"batch": 1, "images": L, "decoding": dec, "decode_path": mode.String()})
	pl := t.params(map[string]any{"batch": S, "images": S, "decoding": dec, "decode_path": largeMode.String()})
	msLarge := 1000 * large / float64(S)
	ev.Metrics = append(ev.Metrics,
		metric("sample_ms_per_image_b1", 1000*b1/float64(L), "ms", p1),
		metric("images_per_s_b1", float64(L)/b1, "images/s", p1),
		metric("pixels_per_s_b1", float64(L*N)/b1, "pixels/s", p1),
		metric("sample_ms_per_image_large", msLarge, "ms", pl),
		metric("images_per_s_large", float64(S)/large, "images/s", pl),
		metric("pixels_per_s_large", float64(S*N)/large, "pixels/s", pl),
	)
	if err := t.passes(ctx, m, sc, msLarge, ev); err != nil {
		return err
	}

	// The samples' own NLL.
	nll := make([]float64, S)
	if err := t.score(ctx, sc, samples, func(i int, x []float64) { nll[i] = fsum.Sum(x) }); err != nil {
		return fmt.Errorf("scoring the samples: %w", err)
	}
	ev.Metrics = append(ev.Metrics, meanMetric("sample_bits_per_dim", nll, bitsPerNat/float64(N), "bits/dim",
		t.params(map[string]any{"images": S, "decoding": dec})))
	for i, img := range samples[:min(S, maxStored)] {
		ev.Samples = append(ev.Samples, harness.Sample{
			binimage.SampleKindKey: binimage.SampleKind, "index": i, "height": t.side, "width": t.side,
			binimage.PixelsKey: binimage.Pixels(img), "bits_per_dim": nll[i] * bitsPerNat / float64(N),
		})
	}
	return nil
}

// passes times one teacher-forced scoring pass and, for a Trainer, one
// training step over the first sample_images test images, each after an
// untimed call, and relates them to the large-batch generation time per
// image msLarge.
func (t *Task) passes(ctx context.Context, m harness.Model, sc harness.Scorer, msLarge float64, ev *harness.Evaluation) error {
	n := min(t.cfg.SampleImages, len(t.test))
	b := Frame(t.test[:n])
	p := t.params(map[string]any{"batch": n, "images": n})
	timed := func(what string, f func() error) (float64, error) {
		if err := f(); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		t0 := time.Now()
		if err := f(); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return 1000 * time.Since(t0).Seconds() / float64(n), nil
	}
	score, err := timed("timing a scoring pass", func() error { _, err := sc.LogProbs(ctx, b); return err })
	if err != nil {
		return err
	}
	ev.Metrics = append(ev.Metrics,
		metric("score_ms_per_image", score, "ms", p),
		metric("generation_over_score", msLarge/score, ratioUnit, p))
	tr, ok := m.(harness.Trainer)
	if !ok {
		return nil
	}
	step, err := timed("timing a training step", func() error { _, err := tr.Gradients(ctx, b, 0); return err })
	if err != nil {
		return err
	}
	ev.Metrics = append(ev.Metrics,
		metric("train_step_ms_per_image", step, "ms", p),
		metric("generation_over_train_step", msLarge/step, ratioUnit, p))
	return nil
}

// complete samples the bottom half of the first completion_images test
// images given their top half and compares its NLL with the true bottom
// half's (truthNLL: the true images' per-pixel NLL).
func (t *Task) complete(ctx context.Context, m harness.Model, sc harness.Scorer, truthNLL [][]float64, ev *harness.Evaluation) error {
	H, W := t.Side()
	top := H / 2
	k := top * W
	n := len(truthNLL)
	completed := make([][]uint8, 0, n)
	for lo := 0; lo < n; lo += t.cfg.EvalBatch {
		hi := min(lo+t.cfg.EvalBatch, n)
		prefixes := make([][]uint8, hi-lo)
		for i := range prefixes {
			prefixes[i] = t.test[lo+i][:k]
		}
		imgs, _, err := t.draw(ctx, m, prefixes, t.rngs(completeStream, lo, hi-lo))
		if err != nil {
			return err
		}
		completed = append(completed, imgs...)
	}
	freeNLL := make([][]float64, n)
	if err := t.score(ctx, sc, completed, func(i int, nll []float64) { freeNLL[i] = nll }); err != nil {
		return err
	}
	params := t.params(map[string]any{"images": n, "prompt_rows": top, "decoding": "sampled, temperature 1, pixel values {0, 1}"})
	scale := bitsPerNat / float64(t.N()-k)
	for _, mode := range []struct {
		label string
		nll   [][]float64
	}{{"teacher_forced", truthNLL}, {"free_running", freeNLL}} {
		bottom := make([]float64, n)
		rows := make([][]float64, H-top)
		for r := range rows {
			rows[r] = make([]float64, n)
		}
		for i, nll := range mode.nll {
			bottom[i] = fsum.Sum(nll[k:])
			for r := range rows {
				rows[r][i] = fsum.Sum(nll[(top+r)*W : (top+r+1)*W])
			}
		}
		ev.Metrics = append(ev.Metrics, meanMetric("completion_bits_per_dim_"+mode.label, bottom, scale, "bits/dim", params))
		ev.Series = append(ev.Series, rowSeries("completion_bits_per_dim_vs_row", mode.label, rows, top, float64(W), params))
	}
	for i := range min(n, maxStored) {
		ev.Samples = append(ev.Samples, harness.Sample{
			binimage.SampleKindKey: binimage.CompletionKind, "index": i, "test_index": i, "height": H, "width": W, binimage.PromptRowsKey: top,
			binimage.PixelsKey: binimage.Pixels(completed[i]), binimage.TruthKey: binimage.Pixels(t.test[i]),
		})
	}
	return nil
}

// metric is a test-split metric.
func metric(name string, v float64, unit string, params map[string]any) harness.Metric {
	return harness.Metric{Name: name, Value: v, Unit: unit, Split: "test", Params: params}
}

// meanMetric is the mean of xs·scale with its 95% normal interval over the
// images (Metric.CI, absent for fewer than two).
func meanMetric(name string, xs []float64, scale float64, unit string, params map[string]any) harness.Metric {
	mean, lo, hi := meanCI(xs)
	m := metric(name, mean*scale, unit, maps.Clone(params))
	m.CI = harness.IntervalOf(lo*scale, hi*scale, harness.CINormal, len(xs), "images")
	return m
}

// meanCI returns the mean of xs and its normal 95% interval, mean ±
// z·s/√n with s the sample standard deviation; the bounds are NaN for
// fewer than two values, and the interval is the mean itself when the
// mean is not finite.
func meanCI(xs []float64) (mean, lo, hi float64) {
	n := float64(len(xs))
	if len(xs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	mean = fsum.Sum(xs) / n
	if len(xs) < 2 {
		return mean, math.NaN(), math.NaN()
	}
	if math.IsInf(mean, 0) {
		return mean, mean, mean
	}
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = (x - mean) * (x - mean)
	}
	half := stats.Z(stats.Level) * math.Sqrt(fsum.Sum(dev)/(n-1)/n)
	return mean, mean - half, mean + half
}

// rowSeries is a per-row curve of bits/dim: rows[r][i] are image i's nats
// in row first+r (of pixels pixels); x counts rows from 1 at the top.
func rowSeries(name, label string, rows [][]float64, first int, pixels float64, params map[string]any) harness.Series {
	s := harness.Series{Name: name, Label: label, XName: "row", XUnit: "from the top", Unit: "bits/dim", Split: "test", Params: params}
	for r, xs := range rows {
		s.X = append(s.X, float64(first+r+1))
		s.Y = append(s.Y, fsum.Sum(xs)/float64(len(xs))*bitsPerNat/pixels)
		s.N = append(s.N, len(xs))
	}
	return s
}
