package image

import (
	"arbench/tasks/image/binimage"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
)

// prepared returns a prepared task with a small configuration: size 8
// shapes (or a fake MNIST), 16 valid and 32 test images.
func prepared(t *testing.T, variant string, seed uint64, edit func(*Config)) *Task {
	t.Helper()
	task := New().(*Task)
	c := &task.cfg
	c.Size, c.ValidImages, c.TestImages, c.EvalBatch = 8, 16, 32, 16
	c.SampleImages, c.LatencyImages, c.CompletionImages = 8, 2, 8
	if variant == "mnist" {
		task.loadMNIST = fakeMNIST(120, 40)
	}
	if edit != nil {
		edit(c)
	}
	if err := task.Prepare(context.Background(), harness.TaskEnv{Variant: variant, Seed: seed}); err != nil {
		t.Fatal(err)
	}
	return task
}

// fakeMNIST returns a loader of train 28×28 training and test test images
// whose pixels are grey levels spread over 0..255 (so that binarization
// matters everywhere).
func fakeMNIST(train, test int) MNISTLoader {
	return func(context.Context, string) (*MNIST, error) {
		rng := rand.New(rand.NewPCG(5, 6))
		mk := func(n int) [][]uint8 {
			out := make([][]uint8, n)
			for i := range out {
				out[i] = make([]uint8, MNISTSize*MNISTSize)
				for k := range out[i] {
					out[i][k] = uint8(rng.IntN(256))
				}
			}
			return out
		}
		return &MNIST{Train: mk(train), Test: mk(test), Height: MNISTSize, Width: MNISTSize,
			Refs: []harness.DatasetRef{{Name: "mnist", Path: "fake", SHA256: "00", Bytes: 1}}}, nil
	}
}

func TestRegistersFamilyAndVariants(t *testing.T) {
	task, variant, err := harness.NewTask("image/shapes")
	if err != nil || variant != "shapes" {
		t.Fatalf("NewTask = %v, %q, %v", task, variant, err)
	}
	if _, ok := task.(*Task); !ok {
		t.Fatalf("image/shapes is a %T", task)
	}
	found := false
	for _, r := range harness.Tasks() {
		if r.Name == "image" {
			found = true
			if !strings.Contains(r.Description, "shapes") || !strings.Contains(r.Description, "mnist") {
				t.Errorf("description %q does not name the variants", r.Description)
			}
		}
	}
	if !found {
		t.Fatal("task family image is not registered")
	}
	c := DefaultConfig()
	for _, v := range Variants() {
		if errs := c.ValidateVariant(v); len(errs) != 0 {
			t.Errorf("variant %s: %v", v, errs)
		}
	}
	for v, want := range map[string]string{"": "no variant", "cifar": `unknown variant "cifar"`} {
		errs := c.ValidateVariant(v)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), want) {
			t.Errorf("variant %q: %v, want %q", v, errs, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	if c.Binarize != BinarizeThreshold {
		t.Errorf("default binarize %q", c.Binarize)
	}
	c = Config{Size: 7, Binarize: "", MaxShapes: 0, ValidImages: 0, TestImages: -1, EvalBatch: 0, SampleImages: 0, LatencyImages: 0, CompletionImages: -1}
	errs := c.Validate()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"size:", `binarize: must be "threshold" or "dynamic", got ""`, "max_shapes:", "valid_images:", "test_images:",
		"eval_batch:", "sample_images:", "latency_images:", "completion_images:"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors lack %q:\n%s", want, all)
		}
	}
	if len(errs) != 9 {
		t.Errorf("%d errors, want 9:\n%s", len(errs), all)
	}
	c = DefaultConfig()
	c.MaxShapes, c.TestImages, c.CompletionImages = 2, 20000, 20001
	got := c.ValidateVariant("mnist")
	if len(got) != 3 {
		t.Errorf("mnist errors %v, want max_shapes, test_images and completion_images", got)
	}
	c = DefaultConfig()
	c.CompletionImages = 513
	if got := c.ValidateVariant("shapes"); len(got) != 1 || !strings.Contains(got[0].Error(), "512 test images") {
		t.Errorf("shapes errors %v", got)
	}
}

// TestConfigAcceptedByExperiment decodes a task section strictly, as an
// experiment file is, and checks that variant problems are reported before
// any work with their line.
func TestConfigAcceptedByExperiment(t *testing.T) {
	yaml := "name: img\ntasks:\n  - name: image/shapes\n    config: {size: 10, binarize: dynamic}\n  - name: image/mnist\n    config: {max_shapes: 2}\nmodels:\n  - name: fake-lm\n"
	_, err := harness.ParseExperiment("img.yaml", []byte(yaml))
	if err == nil || !strings.Contains(err.Error(), "img.yaml:6: tasks[1].config: max_shapes: does not apply to variant mnist") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "tasks[0]") {
		t.Errorf("the shapes section was refused: %v", err)
	}
}

func TestInfo(t *testing.T) {
	task := prepared(t, "shapes", 1, func(c *Config) { c.Size = 10 })
	info := task.Info()
	want := harness.TaskInfo{Name: "image/shapes", Kind: "image", Vocab: 3, SeqLen: 100, HeadlineMetric: "bits_per_dim",
		Needs: []harness.Capability{harness.NeedScorer, harness.NeedDecoding}, EvalBatch: 16}
	if info.Name != want.Name || info.Kind != want.Kind || info.Vocab != want.Vocab || info.SeqLen != want.SeqLen ||
		info.HeadlineMetric != want.HeadlineMetric || !slices.Equal(info.Needs, want.Needs) || info.EvalBatch != want.EvalBatch {
		t.Errorf("Info = %+v\nwant %+v", info, want)
	}
	if h, w := task.Side(); h != 10 || w != 10 {
		t.Errorf("Side = %d, %d", h, w)
	}
	if d := prepared(t, "shapes", 1, func(c *Config) { c.Size = 0 }); d.Info().SeqLen != ShapesSize*ShapesSize {
		t.Errorf("default size: SeqLen %d", d.Info().SeqLen)
	}
	if d := prepared(t, "mnist", 1, func(c *Config) { c.Size = 0 }); d.Info().SeqLen != 784 || d.Info().Name != "image/mnist" {
		t.Errorf("mnist: %+v", d.Info())
	}
	if New().Info().Kind != "image" {
		t.Error("Info before Prepare lacks the kind")
	}
}

func TestTrainBatchFraming(t *testing.T) {
	for _, variant := range Variants() {
		task := prepared(t, variant, 1, nil)
		N := task.N()
		b := task.TrainBatch(rand.New(rand.NewPCG(1, 2)), 5)
		if len(b.Inputs) != 5 || len(b.Targets) != 5 || b.Source != nil {
			t.Fatalf("%s: batch of %d/%d rows", variant, len(b.Inputs), len(b.Targets))
		}
		for i := range b.Inputs {
			in, tg := b.Inputs[i], b.Targets[i]
			if len(in) != N || len(tg) != N {
				t.Fatalf("%s: row %d has %d inputs and %d targets, want %d", variant, i, len(in), len(tg), N)
			}
			if in[0] != Start {
				t.Errorf("%s: row %d starts with %d", variant, i, in[0])
			}
			for k := range N {
				if tg[k] != 0 && tg[k] != 1 {
					t.Fatalf("%s: target %d at %d", variant, tg[k], k)
				}
				if k > 0 && in[k] != tg[k-1] {
					t.Fatalf("%s: row %d: input %d = %d, previous target %d", variant, i, k, in[k], tg[k-1])
				}
			}
		}
		if b.Tokens() != 5*N {
			t.Errorf("%s: %d scored targets, want %d", variant, b.Tokens(), 5*N)
		}
	}
	f := Frame([][]uint8{{1, 0, 1}})
	if !slices.Equal(f.Inputs[0], []int{Start, 1, 0}) || !slices.Equal(f.Targets[0], []int{1, 0, 1}) {
		t.Errorf("Frame = %v", f)
	}
}

// TestSplitOfIsFNV pins the split rule to hash/fnv's FNV-1a 64 over the
// grey bytes.
func TestSplitOfIsFNV(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	counts := map[Split]int{}
	for range 2000 {
		g := RenderShapes(rng, 8, 3)
		h := fnv.New64a()
		h.Write(g)
		want := Train
		switch h.Sum64() % SplitBuckets {
		case 0:
			want = Test
		case 1:
			want = Valid
		}
		if got := SplitOf(g); got != want {
			t.Fatalf("SplitOf = %v, want %v", got, want)
		}
		counts[want]++
	}
	if counts[Test] < 120 || counts[Valid] < 120 || counts[Train] < 1400 {
		t.Errorf("split counts %v of 2000 draws", counts)
	}
}

// TestShapesSplitsDisjoint checks that the fixed sets hold distinct images
// of their own split, that training draws are all of the train split and
// never equal a valid or test image, and that the fixed sets do not depend
// on the run's seed while the training stream does.
func TestShapesSplitsDisjoint(t *testing.T) {
	ctx := context.Background()
	valid, err := fixedShapes(ctx, 8, 3, Valid, 200)
	if err != nil {
		t.Fatal(err)
	}
	test, err := fixedShapes(ctx, 8, 3, Test, 200)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]Split{}
	for split, set := range map[Split][][]uint8{Valid: valid, Test: test} {
		for _, g := range set {
			if SplitOf(g) != split {
				t.Fatalf("a %v image hashes to %v", split, SplitOf(g))
			}
			if _, dup := held[string(g)]; dup {
				t.Fatalf("image held twice in the fixed sets")
			}
			held[string(g)] = split
		}
	}
	task := prepared(t, "shapes", 1, func(c *Config) { c.ValidImages, c.TestImages = 200, 200 })
	for i, g := range test {
		if !slices.Equal(task.test[i], binarize(g, BinarizeThreshold, nil)) {
			t.Fatalf("test image %d is not the fixed set's", i)
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 3000 {
		g := task.train(rng)
		if SplitOf(g) != Train {
			t.Fatalf("training draw of split %v", SplitOf(g))
		}
		if s, ok := held[string(g)]; ok {
			t.Fatalf("training draw equals a %v image", s)
		}
	}
	other := prepared(t, "shapes", 2, func(c *Config) { c.ValidImages, c.TestImages = 200, 200 })
	for i := range task.test {
		if !slices.Equal(task.test[i], other.test[i]) || (i < len(task.valid) && !slices.Equal(task.valid[i], other.valid[i])) {
			t.Fatalf("image %d of the fixed sets differs between seeds", i)
		}
	}
	b1 := task.TrainBatch(rand.New(rand.NewPCG(1, 0)), 4)
	b2 := task.TrainBatch(rand.New(rand.NewPCG(2, 0)), 4)
	if slices.EqualFunc(b1.Targets, b2.Targets, slices.Equal) {
		t.Error("training batches of different streams are equal")
	}
}

func TestRenderShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, size := range []int{MinSize, 12, MaxSize} {
		inked, grey := 0, 0
		for range 50 {
			g := RenderShapes(rng, size, 3)
			if len(g) != size*size {
				t.Fatalf("size %d: %d pixels", size, len(g))
			}
			for _, v := range g {
				if v >= 128 {
					inked++
				}
				if v > 0 && v < 255 {
					grey++
				}
			}
		}
		frac := float64(inked) / float64(50*size*size)
		if frac < 0.05 || frac > 0.6 {
			t.Errorf("size %d: %.2f of the pixels inked", size, frac)
		}
		if grey == 0 {
			t.Errorf("size %d: no anti-aliased edge pixel", size)
		}
	}
}

func TestBinarize(t *testing.T) {
	g := []uint8{0, 127, 128, 255}
	if got := binarize(g, BinarizeThreshold, nil); !slices.Equal(got, []uint8{0, 0, 1, 1}) {
		t.Errorf("threshold: %v", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ones := make([]int, len(g))
	const n = 20000
	for range n {
		for k, v := range binarize(g, BinarizeDynamic, rng) {
			ones[k] += int(v)
		}
	}
	for k, v := range g {
		p := float64(v) / 255
		if got := float64(ones[k]) / n; math.Abs(got-p) > 4*math.Sqrt(p*(1-p)/n)+1e-9 {
			t.Errorf("grey %d: fraction of ones %.4f, want %.4f", v, got, p)
		}
	}
}

// TestDynamicBinarization checks, on a fake MNIST of grey pixels, that
// dynamic binarization resamples every training batch from the batch's
// stream (the same stream gives the same batch), while the test set is
// binarized once, the same for every run seed, and threshold is
// deterministic.
func TestDynamicBinarization(t *testing.T) {
	dyn := func(c *Config) { c.Binarize = BinarizeDynamic }
	task := prepared(t, "mnist", 1, dyn)
	one := func(seed uint64) [][]int {
		return task.TrainBatch(rand.New(rand.NewPCG(seed, 0)), 3).Targets
	}
	if !slices.EqualFunc(one(4), one(4), slices.Equal) {
		t.Error("dynamic: the same stream gave different batches")
	}
	rng := rand.New(rand.NewPCG(4, 0))
	img := task.train(rand.New(rand.NewPCG(1, 1)))
	a, b := binarize(img, BinarizeDynamic, rng), binarize(img, BinarizeDynamic, rng)
	if slices.Equal(a, b) {
		t.Error("dynamic: one image binarized twice gave the same pixels")
	}
	if !slices.Equal(task.train(rand.New(rand.NewPCG(1, 1))), img) {
		t.Error("the grey training image changed")
	}
	other := prepared(t, "mnist", 2, dyn)
	for i := range task.test {
		if !slices.Equal(task.test[i], other.test[i]) {
			t.Fatalf("dynamic: test image %d differs between run seeds", i)
		}
	}
	thr := prepared(t, "mnist", 1, nil)
	differ := 0
	for i := range thr.test {
		if !slices.Equal(thr.test[i], task.test[i]) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("threshold and dynamic test sets are equal")
	}
	// Threshold training batches depend only on which images are drawn.
	tb := thr.TrainBatch(rand.New(rand.NewPCG(4, 0)), 3)
	pick := rand.New(rand.NewPCG(4, 0))
	for i := range 3 {
		want := binarize(thr.train(pick), BinarizeThreshold, nil)
		for k, v := range want {
			if tb.Targets[i][k] != int(v) {
				t.Fatalf("threshold batch row %d pixel %d", i, k)
			}
		}
	}
}

func TestMNISTVariant(t *testing.T) {
	task := New().(*Task)
	err := task.Prepare(context.Background(), harness.TaskEnv{Variant: "mnist", DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "image/mnist: ") || !strings.Contains(err.Error(), "arbench fetch mnist") {
		t.Errorf("Prepare without MNIST cached: %v, want the datasets loader's error saying how to fetch", err)
	}
	task = prepared(t, "mnist", 1, func(c *Config) { c.Size, c.TestImages, c.ValidImages = 14, 0, 10 })
	if len(task.test) != 40 || len(task.valid) != 10 || task.N() != 196 {
		t.Errorf("test %d, valid %d, N %d", len(task.test), len(task.valid), task.N())
	}
	if refs := task.Datasets(); len(refs) != 1 || refs[0].Name != "mnist" {
		t.Errorf("Datasets = %v", refs)
	}
	for _, edit := range []func(*Config){
		func(c *Config) { c.ValidImages = 21 }, // the pool is 120/6 = 20
		func(c *Config) { c.TestImages = 41 },
	} {
		bad := New().(*Task)
		bad.loadMNIST = fakeMNIST(120, 40)
		bad.cfg.CompletionImages = 1
		edit(&bad.cfg)
		if err := bad.Prepare(context.Background(), harness.TaskEnv{Variant: "mnist"}); err == nil {
			t.Errorf("config %+v accepted", bad.cfg)
		}
	}
}

// TestMNISTReal prepares image/mnist from the real MNIST when it is cached
// (make datasets), and is skipped otherwise.
func TestMNISTReal(t *testing.T) {
	task := New().(*Task)
	task.cfg.TestImages, task.cfg.ValidImages = 0, 10000
	err := task.Prepare(context.Background(), harness.TaskEnv{Variant: "mnist"})
	if err != nil && strings.Contains(err.Error(), "not cached") {
		t.Skip("MNIST is not cached:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(task.test) != 10000 || len(task.valid) != 10000 || task.N() != 784 || len(task.Datasets()) != 4 {
		t.Errorf("test %d, valid %d, N %d, datasets %v", len(task.test), len(task.valid), task.N(), task.Datasets())
	}
	ones := 0
	for _, img := range task.test {
		for _, v := range img {
			ones += int(v)
		}
	}
	// About 13% of binarized MNIST pixels are ink.
	if f := float64(ones) / (10000 * 784); f < 0.08 || f > 0.2 {
		t.Errorf("%.3f of the test pixels are 1", f)
	}
}

func TestResize(t *testing.T) {
	g := make([]uint8, 16)
	for k := range g {
		g[k] = uint8(16 * k)
	}
	got := Resize(g, 4, 4, 2, 2)
	// Means of the 2×2 blocks: (0+16+64+80)/4 = 40, …
	if want := []uint8{40, 72, 168, 200}; !slices.Equal(got, want) {
		t.Errorf("Resize = %v, want %v", got, want)
	}
	if r := Resize(g, 4, 4, 4, 4); &r[0] != &g[0] {
		t.Error("Resize to the same size copied")
	}
	up := Resize([]uint8{0, 255, 255, 0}, 2, 2, 3, 3)
	if up[0] != 0 || up[2] != 255 || up[4] != 128 {
		t.Errorf("Resize 2×2 → 3×3 = %v", up)
	}
}

func metricsByName(ev *harness.Evaluation) map[string]harness.Metric {
	out := map[string]harness.Metric{}
	for _, m := range ev.Metrics {
		out[m.Name] = m
	}
	return out
}

// TestUniformModelScoresOneBitPerDim evaluates a model that gives every
// pixel probability 1/2: exactly 1 bit/dim (and N·ln 2 nats per image) on
// the test set, the completions and its samples, with a degenerate
// interval.
func TestUniformModelScoresOneBitPerDim(t *testing.T) {
	task := prepared(t, "shapes", 1, nil)
	m := &constModel{baseModel: baseModel{"uniform"}, p1: 0.5}
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	got := metricsByName(ev)
	for _, name := range []string{"bits_per_dim", "sample_bits_per_dim", "completion_bits_per_dim_teacher_forced", "completion_bits_per_dim_free_running"} {
		mt := got[name]
		if math.Abs(mt.Value-1) > 1e-12 || mt.CI == nil || math.Abs(float64(mt.CI.Lo)-1) > 1e-9 || math.Abs(float64(mt.CI.Hi)-1) > 1e-9 {
			t.Errorf("%s = %v (%v), want exactly 1", name, mt.Value, mt.Params)
		}
	}
	if v := got["nats_per_image"].Value; math.Abs(v-64*math.Ln2) > 1e-9 {
		t.Errorf("nats_per_image = %v, want 64 ln 2", v)
	}
	loss, err := task.ValidLoss(context.Background(), m)
	if err != nil || math.Abs(loss-math.Ln2) > 1e-12 {
		t.Errorf("ValidLoss = %v, %v; want ln 2", loss, err)
	}
	for _, s := range ev.Series {
		for k, y := range s.Y {
			if math.Abs(y-1) > 1e-12 {
				t.Errorf("series %s/%s at row %v: %v, want 1", s.Name, s.Label, s.X[k], y)
			}
		}
	}
}

// TestEvaluateMetricsAndSamples checks the evaluation's metrics, series
// and samples on a fake model whose pixels copy the previous one: names,
// units, intervals, binarize in every Params, the completion's prompt
// kept, and the samples' round trip through JSON and binimage.SampleImages.
func TestEvaluateMetricsAndSamples(t *testing.T) {
	task := prepared(t, "shapes", 3, func(c *Config) { c.Binarize = BinarizeDynamic })
	m := &copyModel{baseModel: baseModel{"copy"}, q: 0.9}
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	got := metricsByName(ev)
	units := map[string]string{
		"nats_per_image": "nats/image", "bits_per_dim": "bits/dim",
		"sample_ms_per_image_b1": "ms", "images_per_s_b1": "images/s", "pixels_per_s_b1": "pixels/s",
		"sample_ms_per_image_large": "ms", "images_per_s_large": "images/s", "pixels_per_s_large": "pixels/s",
		"score_ms_per_image": "ms", "generation_over_score": "s/s", "sample_bits_per_dim": "bits/dim",
		"completion_bits_per_dim_teacher_forced": "bits/dim", "completion_bits_per_dim_free_running": "bits/dim",
	}
	for name, unit := range units {
		mt, ok := got[name]
		if !ok {
			t.Errorf("no metric %s", name)
			continue
		}
		if mt.Unit != unit || mt.Split != "test" || !(mt.Value > 0) || math.IsInf(mt.Value, 0) {
			t.Errorf("%s = %v %q split %q", name, mt.Value, mt.Unit, mt.Split)
		}
	}
	if _, ok := got["train_step_ms_per_image"]; ok {
		t.Error("train step timed for a model without Trainer")
	}
	for _, mt := range ev.Metrics {
		if mt.Params["binarize"] != BinarizeDynamic || mt.Params["height"] != 8 || mt.Params["width"] != 8 {
			t.Errorf("%s: params %v lack binarize/height/width", mt.Name, mt.Params)
		}
	}
	bpd := got["bits_per_dim"]
	lo, hi := float64(bpd.CI.Lo), float64(bpd.CI.Hi)
	if !(lo < bpd.Value && bpd.Value < hi) || math.Abs(got["nats_per_image"].Value-bpd.Value*64*math.Ln2) > 1e-9 {
		t.Errorf("bits_per_dim %v [%v, %v], nats_per_image %v", bpd.Value, lo, hi, got["nats_per_image"].Value)
	}
	if got["sample_ms_per_image_b1"].Params["decode_path"] != "refeed" {
		t.Errorf("decode path %v, want refeed for a Distributioner", got["sample_ms_per_image_b1"].Params)
	}
	// Along its own samples the copy model's NLL per pixel is the entropy
	// of its copy rule, H(0.9) = 0.469 bits (256 sampled pixels: a
	// standard error of 0.06).
	h := -(0.9*math.Log2(0.9) + 0.1*math.Log2(0.1))
	if fr := got["completion_bits_per_dim_free_running"].Value; math.Abs(fr-h) > 0.25 {
		t.Errorf("completion free-running %v bits/dim, want about H(0.9) = %.3f", fr, h)
	}
	series := map[string]harness.Series{}
	for _, s := range ev.Series {
		series[s.Name+"/"+s.Label] = s
	}
	if s := series["bits_per_dim_vs_row/"]; len(s.X) != 8 || s.X[0] != 1 || s.N[0] != 32 {
		t.Errorf("bits_per_dim_vs_row = %+v", s)
	}
	for _, label := range []string{"teacher_forced", "free_running"} {
		s := series["completion_bits_per_dim_vs_row/"+label]
		if !slices.Equal(s.X, []float64{5, 6, 7, 8}) || s.N[0] != 8 {
			t.Errorf("completion series %s = %+v", label, s)
		}
	}

	// Samples survive samples.jsonl: JSON and back.
	raw, err := json.Marshal(ev.Samples)
	if err != nil {
		t.Fatal(err)
	}
	var back []harness.Sample
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	imgs, H, W, err := binimage.SampleImages(back, binimage.SampleKind, binimage.PixelsKey)
	if err != nil || len(imgs) != 8 || H != 8 || W != 8 {
		t.Fatalf("binimage.SampleImages = %d images %d×%d, %v", len(imgs), H, W, err)
	}
	done, _, _, err := binimage.SampleImages(back, binimage.CompletionKind, binimage.PixelsKey)
	if err != nil {
		t.Fatal(err)
	}
	truth, _, _, err := binimage.SampleImages(back, binimage.CompletionKind, binimage.TruthKey)
	if err != nil || len(done) != 8 || len(truth) != 8 {
		t.Fatalf("completions %d, truths %d, %v", len(done), len(truth), err)
	}
	for i := range done {
		if !slices.Equal(truth[i], task.test[i]) || !slices.Equal(done[i][:32], task.test[i][:32]) {
			t.Fatalf("completion %d does not keep the test image's top half", i)
		}
	}

	// The same seed gives the same samples.
	ev2, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ev.Samples {
		if ev.Samples[i][binimage.PixelsKey] != ev2.Samples[i][binimage.PixelsKey] {
			t.Fatalf("sample %d differs between two evaluations", i)
		}
	}
}

// TestSamplesIndependentOfBatching checks that an image's pixels come from
// its own generator: drawing images one by one gives the batch's images.
func TestSamplesIndependentOfBatching(t *testing.T) {
	task := prepared(t, "shapes", 1, nil)
	m := &copyModel{baseModel: baseModel{"copy"}, q: 0.7}
	ctx := context.Background()
	batch, _, err := task.draw(ctx, m, [][]uint8{{}, {}, {}}, task.rngs(sampleStream, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		one, _, err := task.draw(ctx, m, [][]uint8{{}}, task.rngs(sampleStream, i, 1))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one[0], batch[i]) {
			t.Fatalf("image %d differs drawn alone", i)
		}
	}
	if slices.Equal(batch[0], batch[1]) {
		t.Error("two samples are equal")
	}
}

// TestSamplingFollowsTheModel checks the sampled pixels' frequency against
// the model's probability.
func TestSamplingFollowsTheModel(t *testing.T) {
	task := prepared(t, "shapes", 1, nil)
	m := &constModel{baseModel: baseModel{"p"}, p1: 0.2}
	imgs, mode, err := task.draw(context.Background(), m, make([][]uint8, 64), task.rngs(sampleStream, 0, 64))
	if err != nil {
		t.Fatal(err)
	}
	if mode != harness.DecodeCached {
		t.Errorf("decode path %v, want cached for a Stepper", mode)
	}
	ones, n := 0, 0
	for _, img := range imgs {
		for _, v := range img {
			ones += int(v)
			n++
		}
	}
	if p := float64(ones) / float64(n); math.Abs(p-0.2) > 4*math.Sqrt(0.2*0.8/float64(n)) {
		t.Errorf("fraction of ones %.4f, want 0.2", p)
	}
}

func TestRefusesShortContextAndNonScorer(t *testing.T) {
	task := prepared(t, "shapes", 1, nil)
	short := &limitedModel{constModel: constModel{baseModel: baseModel{"short"}, p1: 0.5}, limit: 63}
	if _, err := task.Evaluate(context.Background(), short); err == nil || !strings.Contains(err.Error(), "at most 63 tokens") {
		t.Errorf("Evaluate with a short context: %v", err)
	}
	if _, err := task.ValidLoss(context.Background(), short); err == nil {
		t.Error("ValidLoss with a short context accepted")
	}
	type notScorer struct{ baseModel }
	if _, err := task.ValidLoss(context.Background(), notScorer{baseModel{"ns"}}); !errors.Is(err, harness.ErrNoValidLoss) {
		t.Errorf("ValidLoss of a non-Scorer: %v", err)
	}
}
