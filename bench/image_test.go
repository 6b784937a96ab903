package bench

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
	"arbench/plugins/bernoulli"
	"arbench/reports"
	"arbench/tasks/image"
	"arbench/tasks/image/binimage"
)

// TestImageBoundsMatchTask: harness states the image task's size bounds
// (it cannot import tasks/image); they must be the task's.
func TestImageBoundsMatchTask(t *testing.T) {
	if harness.BenchImageMinSize != image.MinSize || harness.BenchImageMaxSize != image.MaxSize {
		t.Errorf("harness bounds [%d, %d], tasks/image [%d, %d]",
			harness.BenchImageMinSize, harness.BenchImageMaxSize, image.MinSize, image.MaxSize)
	}
	if image.Vocab != 3 || image.Start != 2 {
		t.Errorf("tasks/image framing: vocab %d, start %d; harness.BenchImage documents 3 and 2", image.Vocab, image.Start)
	}
}

// imageConfig is a bench configuration with only a tiny image sweep.
func imageConfig() *harness.BenchConfig {
	c := tinyConfig()
	c.Train.SeqLens, c.Train.Batches, c.Score.SeqLens = nil, nil, nil
	c.Generate.Batches, c.Generate.RefeedBatches, c.Translate.Batches = nil, nil, nil
	c.Image = harness.BenchImage{Sizes: []int{8, 10}, SampleBatches: []int{1, 2}, PassBatch: 3, Repeats: 2}
	c.Repeats = 4 // not the image points'
	return c
}

// TestRunImageSweep runs the image sweep end to end on tiny models: every
// model gets every size's points, measured with positive, finite values
// through the decoding path its capabilities give, the transformer whose
// context is shorter than a 10×10 image is skipped with the reason, and the
// chart and output files hold the points.
func TestRunImageSweep(t *testing.T) {
	rep, err := Run(context.Background(), Options{
		Name: "images", Backend: nngorgonia.New(), Config: imageConfig(), Seed: 3,
		Models: []harness.ModelSpec{
			spec(t, "pixelcnn", "{channels: 4, layers: 1, kernel: 3, block_kernel: 3}"),
			spec(t, "bernoulli", "{}"),
			spec(t, "lstm", "{embed: 4, hidden: 8}"),
			spec(t, "transformer", "{dim: 8, heads: 2, layers: 1, context: 80}"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Per model and size: sample at batches 1 and 2, a training and a
	// scoring pass.
	if len(rep.Points) != 4*2*4 {
		t.Fatalf("%d points, want 32", len(rep.Points))
	}
	path := map[string]string{"pixelcnn": ModeRefeed, "bernoulli": ModeCached, "lstm": ModeCached, "transformer": ModeCached}
	flops := map[[2]any]float64{} // sample FLOPs per pixel by model and side
	for _, p := range rep.Points {
		if p.Side*p.Side != p.SeqLen || !isImage(p.Kind) {
			t.Fatalf("point %+v", p)
		}
		if p.Model == "transformer" && p.Side == 10 {
			if want := "a 10×10 image is a row of 100 pixels, context is 80"; p.Skipped != want {
				t.Errorf("transformer %s: skipped %q, want %q", describe(p), p.Skipped, want)
			}
			continue
		}
		if p.Skipped != "" {
			t.Errorf("%s %s skipped: %s", p.Model, describe(p), p.Skipped)
			continue
		}
		checkImagePoint(t, p)
		switch {
		case p.Kind == KindImageSample:
			if p.Mode != path[p.Model] {
				t.Errorf("%s %s: decode path %q, want %q", p.Model, describe(p), p.Mode, path[p.Model])
			}
			flops[[2]any{p.Model, p.Side}] = p.FLOPsPerToken
		case p.Mode != "":
			t.Errorf("%s %s: mode %q on a pass", p.Model, describe(p), p.Mode)
		}
		if want := p.Batch; p.Kind != KindImageSample && want != 3 {
			t.Errorf("%s %s: batch %d, want the pass batch 3", p.Model, describe(p), want)
		}
	}
	// Sampling by re-feeding reruns the network on the rows so far for
	// every pixel: its FLOPs per pixel grow with the image; carried state
	// costs the same per pixel at any size.
	if a, b := flops[[2]any{"pixelcnn", 8}], flops[[2]any{"pixelcnn", 10}]; !(a > 0 && b > 1.1*a) {
		t.Errorf("pixelcnn sampling: %v FLOPs/pixel at 8×8, %v at 10×10: want growth", a, b)
	}
	if a, b := flops[[2]any{"lstm", 8}], flops[[2]any{"lstm", 10}]; !(a > 0 && math.Abs(b-a) <= 1e-9*a) {
		t.Errorf("lstm sampling: %v FLOPs/pixel at 8×8, %v at 10×10: want equal", a, b)
	}
	checkImageChart(t, rep)
	checkImageOutputs(t, rep)
}

// checkImagePoint checks a measured image point's values.
func checkImagePoint(t *testing.T, p Point) {
	t.Helper()
	good := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	if p.MsPerImage == nil || p.StepSeconds == nil || p.MsPerImage.N != 2 || p.TokensPerSec.N != 2 || p.StepSeconds.N != 2 {
		t.Fatalf("%s %s: summaries %+v", p.Model, describe(p), p)
	}
	for i, v := range p.MsPerImage.Values {
		rate, step := p.TokensPerSec.Values[i], p.StepSeconds.Values[i]
		if !good(v) || !good(rate) || !good(step) {
			t.Errorf("%s %s repeat %d: %v ms/image, %v pixels/s, %v s", p.Model, describe(p), i, v, rate, step)
		}
		// ms/image and pixels/s describe the same time.
		if want := 1e3 * step / float64(p.Batch); math.Abs(v-want) > 1e-9*want {
			t.Errorf("%s %s: %v ms/image, step %v s over %d images", p.Model, describe(p), v, step, p.Batch)
		}
		if p.Kind == KindImageSample {
			if want := float64(p.Batch*p.SeqLen) / step; math.Abs(rate-want) > 1e-9*want {
				t.Errorf("%s %s: %v pixels/s, want %v", p.Model, describe(p), rate, want)
			}
		}
	}
	if p.Memory.PeakRSS <= 0 || math.IsNaN(p.GFLOPS) || p.FLOPsPerToken < 0 {
		t.Errorf("%s %s: memory %+v, %v FLOPs/pixel, %v GFLOP/s", p.Model, describe(p), p.Memory, p.FLOPsPerToken, p.GFLOPS)
	}
	if p.Family != "bernoulli" && !(p.FLOPsPerToken > 0) {
		t.Errorf("%s %s: no FLOPs counted", p.Model, describe(p))
	}
}

// checkImageChart: the chart has per model a line per sample batch and
// one for the training pass, each over the sizes it measured, drawn on a
// logarithmic y axis at the medians.
func checkImageChart(t *testing.T, rep *Report) {
	t.Helper()
	ch := charts(rep)["generation_time_vs_image_size"]
	if ch == nil || !ch.logY {
		t.Fatalf("no log-scale image chart among %v", slices.Collect(func(yield func(string) bool) {
			for k := range charts(rep) {
				yield(k)
			}
		}))
	}
	if want := "pixels per image, H·W (sides 8–10)"; ch.xlabel != want {
		t.Errorf("x label %q, want %q", ch.xlabel, want)
	}
	styles := map[string]int{"sample, batch 1": 0, "sample, batch 2": 2, "train, batch 3": 1}
	got := map[string][]float64{}
	for _, l := range ch.lines {
		got[l.model+"/"+l.variant] = l.x
		if l.style != styles[l.variant] {
			t.Errorf("line %s/%s: style %d, want %d", l.model, l.variant, l.style, styles[l.variant])
		}
		for i, y := range l.y {
			if !(y > 0) {
				t.Errorf("line %s/%s: y[%d] = %v", l.model, l.variant, i, y)
			}
		}
	}
	both, one := []float64{64, 100}, []float64{64}
	for _, m := range []string{"pixelcnn", "bernoulli", "lstm", "transformer"} {
		xs := both
		if m == "transformer" {
			xs = one
		}
		for _, v := range []string{"sample, batch 1", "sample, batch 2", "train, batch 3"} {
			if !slices.Equal(got[m+"/"+v], xs) {
				t.Errorf("line %s/%s: x = %v, want %v", m, v, got[m+"/"+v], xs)
			}
		}
	}
	if len(got) != 12 {
		t.Errorf("%d lines, want 12: %v", len(got), got)
	}
	lc := Charts(rep)["generation_time_vs_image_size"]
	if lc.YScale != reports.ScaleLog {
		t.Errorf("y scale %v, want logarithmic", lc.YScale)
	}
	for i, l := range lc.Lines {
		if want := ch.lines[i].y[0]; l.Y[0] != want {
			t.Errorf("rendered line %d: y %v, want %v", i, l.Y[0], want)
		}
	}
}

// checkImageOutputs: bench.md tabulates the points and the comparison,
// bench.txt has a benchmark line per repeat, the chart files exist.
func checkImageOutputs(t *testing.T, rep *Report) {
	t.Helper()
	dir := t.TempDir()
	if _, err := Write(dir, rep); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"Warm-up 1, 2 repeats per point:", "## Images", "| pixelcnn | image_sample | refeed | 8 | 64 | 1 |", "| lstm | image_train | — | 10 | 100 | 3 |",
		"| bernoulli | image_score | — | 10 | 100 | 3 |", "### Sequential generation vs one parallel pass",
		"| model | side | pixels | sample b=1 | sample b=2 | train step | score | sample b=2 / train step | sample b=2 / score |",
		"- transformer image_sample b=1 10×10: a 10×10 image is a row of 100 pixels, context is 80",
	} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("bench.md lacks %q", s)
		}
	}
	if bytes.Contains(md, []byte("## Training and scoring")) || bytes.Contains(md, []byte("| transformer | 10 |")) {
		t.Error("bench.md tabulates image points as training points, or the skipped transformer size")
	}
	checkBenchstat(t, filepath.Join(dir, BenchstatFileName), rep)
	txt, _ := os.ReadFile(filepath.Join(dir, BenchstatFileName))
	for _, s := range []string{"BenchmarkImageSample/model=pixelcnn/path=refeed/batch=2/side=10-", "BenchmarkImageTrain/model=lstm/batch=3/side=8-", "BenchmarkImageScore/model=bernoulli/batch=3/side=10-", " ns/image\t"} {
		if !bytes.Contains(txt, []byte(s)) {
			t.Errorf("bench.txt lacks %q", s)
		}
	}
	for _, ext := range []string{".png", ".svg"} {
		if _, err := os.Stat(filepath.Join(dir, ChartsDir, "generation_time_vs_image_size"+ext)); err != nil {
			t.Error(err)
		}
	}
}

// TestSampleImagesFollowsModel: the bench samples the model's pixel
// distribution in raster order from the start token: a bernoulli whose
// θ_t is large for pixels on the diagonal and very negative elsewhere
// draws the diagonal, whole images of N pixels.
func TestSampleImagesFollowsModel(t *testing.T) {
	ctx := context.Background()
	r := &runner{opt: Options{Config: imageConfig(), Seed: 1}}
	s := spec(t, "bernoulli", "{}")
	p := Point{Kind: KindImageSample, Batch: 3, Side: 8, SeqLen: 64}
	m, err := r.newModel(ctx, &s, r.pointEnv(p, nngorgonia.New(), 64))
	if err != nil {
		t.Fatal(err)
	}
	theta := m.Params().Get(bernoulli.ParamName)
	want := make([]uint8, 64)
	for i := range theta.Data {
		theta.Data[i] = -30
		if i%9 == 0 {
			theta.Data[i], want[i] = 30, 1
		}
	}
	dec, err := harness.NewDecoder(m, 64, harness.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := image.Sample(ctx, dec, 64, nil, imageRNGs(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		if !slices.Equal(img, want) {
			t.Errorf("image %d: %s, want %s", i, binimage.Pixels(img), binimage.Pixels(want))
		}
	}
	if len(imgs) != 3 {
		t.Errorf("%d images, want 3", len(imgs))
	}
}

// TestImagePointEnvAndSkips: image points use the image framing's
// vocabulary whatever the configuration's, the training pass's batch is
// the training batch; a conditional model's image points and a pixelcnn
// configured for another image shape are skipped with the reason.
func TestImagePointEnvAndSkips(t *testing.T) {
	r := &runner{opt: Options{Config: imageConfig(), Backend: nngorgonia.New(), Seed: 4}}
	b := r.opt.Backend
	for _, c := range []struct {
		p    Point
		want harness.Env
	}{
		{Point{Kind: KindImageSample, Batch: 5, Side: 8, SeqLen: 64}, harness.Env{Backend: b, Vocab: 3, SeqLen: 64, Seed: 4, EvalBatch: 5}},
		{Point{Kind: KindImageTrain, Batch: 7, Side: 8, SeqLen: 64}, harness.Env{Backend: b, Vocab: 3, SeqLen: 64, Seed: 4, Batch: 7}},
		{Point{Kind: KindImageScore, Batch: 7, Side: 8, SeqLen: 64}, harness.Env{Backend: b, Vocab: 3, SeqLen: 64, Seed: 4, EvalBatch: 7}},
	} {
		if got := r.pointEnv(c.p, b, 64); got != c.want {
			t.Errorf("%s: env %+v, want %+v", describe(c.p), got, c.want)
		}
	}
	ctx := context.Background()
	p := Point{Model: "m", Kind: KindImageSample, Batch: 1, Side: 8, SeqLen: 64}
	for name, c := range map[string]struct{ family, cfg, want string }{
		"conditional": {"bench-fake-s2s", "{}", "conditional model: image points need a language model"},
		"shape":       {"pixelcnn", "{channels: 4, layers: 0, kernel: 3, height: 10, width: 10}", "refused by the model's check: height and width: a 10×10 image has 100 pixels"},
	} {
		s := spec(t, c.family, c.cfg)
		got, err := r.measure(ctx, &s, p)
		if err != nil || !strings.Contains(got.Skipped, c.want) {
			t.Errorf("%s: skipped %q (err %v), want %q", name, got.Skipped, err, c.want)
		}
	}
}
