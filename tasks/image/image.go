// Package image is arbench's family of binary-image tasks ("image/VARIANT"):
// density estimation of binarized images read as a sequence of pixels in
// raster order, the setting of PixelRNN/PixelCNN (van den Oord et al.
// 2016) and of the binarized-MNIST likelihood tables (Larochelle & Murray
// 2011, "The Neural Autoregressive Distribution Estimator").
//
// Variants:
//
//   - shapes: a generated set of square images of `size` × `size` pixels
//     (default 12, 8..28) with 1 to `max_shapes` simple figures each —
//     filled or outlined rectangles, strokes, filled discs and rings — at
//     random positions and sizes, drawn anti-aliased (coverage of 4×4
//     sub-pixel samples) so that binarization matters at their edges.
//     Training images are drawn afresh for every batch from the batch's
//     random stream (the run's seed); the valid and test sets are fixed:
//     drawn from constant streams, the same for every seed. The three are
//     disjoint by a hash of the grey image (SplitOf, FNV-1a as
//     tasks/seq2seq's SplitOf): bucket 0 of 10 is test, 1 valid, the rest
//     train.
//   - mnist: binarized MNIST, 28 × 28 (or resized to `size` by area
//     averaging): the first five sixths of the training images train, the
//     last sixth (10000 of 60000) is the validation pool, and the test set
//     is MNIST's (its first test_images). The images are read by
//     datasets.LoadMNIST from the dataset cache directory (fetched with
//     `arbench fetch mnist` or `make datasets`; checksums recorded in the
//     manifest).
//
// Binarization (`binarize`, recorded in every metric's Params) is
// "threshold" (a pixel is 1 when its grey value is at least 0.5, i.e. 128
// of 255: deterministic) or "dynamic" (a pixel is 1 with probability equal
// to its grey value: resampled for every training batch from the batch's
// random stream, and the valid and test sets binarized once from a fixed
// seed, the same for every run).
//
// # Framing
//
// An image of N = H·W pixels p_0 … p_{N−1} (raster order, row by row) is
// one language-modelling row over a vocabulary of Vocab = 3 tokens: 0 and 1
// are pixel values and Start = 2 starts the row. Inputs are
// [Start, p_0 … p_{N−2}] and Targets [p_0 … p_{N−1}] (Frame), so Targets[t]
// is pixel t given the pixels before it, and any causal language model
// (rnn, lstm, a transformer with context ≥ N) runs the task unchanged.
// TaskInfo.SeqLen is N; images are square, so a model that needs the 2-D
// layout reads H = W = √SeqLen (the task's `size`; harness.Env carries no
// image shape yet).
//
// Evaluation (Evaluate) reports test NLL in nats per image and bits/dim,
// sampling speed through harness.Decoder, and image completion; samples
// and completions are stored in the evaluation's Samples as strings of
// 0/1 pixels (package binimage: SampleImages reads them back, Grid
// renders them).
package image

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"arbench/harness"
)

func init() {
	harness.RegisterTask("image",
		"binary images as raster-order pixel sequences (bits/dim, sampling speed, completion): image/{"+strings.Join(Variants(), ",")+"}", New)
}

// The vocabulary: pixel values 0 and 1, and the start token.
const (
	// Vocab is the task's vocabulary size.
	Vocab = 3
	// Start begins every row; it is never a target.
	Start = 2
)

// Binarization modes (Config.Binarize).
const (
	BinarizeThreshold = "threshold"
	BinarizeDynamic   = "dynamic"
)

// Variants lists the task variants.
func Variants() []string { return []string{"shapes", "mnist"} }

// Size bounds and defaults.
const (
	MinSize = 8
	MaxSize = 28
	// ShapesSize is the shapes variant's default size, MNISTSize MNIST's
	// own.
	ShapesSize = 12
	MNISTSize  = 28
)

// Bounds on the configuration's counts, so that a typo cannot ask for
// absurd work.
const (
	maxImages     = 1 << 16
	maxBatch      = 4096
	maxShapesCap  = 8
	maxLatency    = 1024
	maxStored     = 64 // images per kind written to Samples
	shapesTest    = 512
	mnistTestSize = 10000
)

// Config is the image task's typed configuration. One struct serves both
// variants; a field that does not apply to the variant (max_shapes on
// mnist) must keep its default.
type Config struct {
	// Size is the image side in pixels, 8..28; 0 (the default) is the
	// variant's own: 12 for shapes, 28 for mnist (other sizes resize MNIST
	// by area averaging before binarization).
	Size int `yaml:"size"`
	// Binarize is "threshold" (default) or "dynamic" (see the package
	// documentation). It is recorded in every metric's Params.
	Binarize string `yaml:"binarize"`
	// MaxShapes is the shapes variant's largest number of figures per
	// image (1..8; each image has 1..max_shapes).
	MaxShapes int `yaml:"max_shapes"`
	// ValidImages is the number of validation images (ValidLoss).
	ValidImages int `yaml:"valid_images"`
	// TestImages is the number of test images; 0 (the default) is the
	// variant's own: 512 for shapes, MNIST's whole test set (10000).
	TestImages int `yaml:"test_images"`
	// EvalBatch is the number of images per Scorer call and per Decoder
	// batch of the completions.
	EvalBatch int `yaml:"eval_batch"`
	// SampleImages is the number of unconditional samples drawn in one
	// Decoder batch (the large-batch speed, after an untimed warm-up pass
	// of the same batch); the first 64 are written to Samples.
	SampleImages int `yaml:"sample_images"`
	// LatencyImages is the number of images sampled one at a time (the
	// batch-1 speed, after one untimed image).
	LatencyImages int `yaml:"latency_images"`
	// CompletionImages is the number of test images (the first ones)
	// whose bottom half is sampled given their top half; 0 skips the
	// completion measurements. The first 64 are written to Samples.
	CompletionImages int `yaml:"completion_images"`
}

// DefaultConfig returns the defaults shared by both variants.
func DefaultConfig() Config {
	return Config{
		Binarize: BinarizeThreshold, MaxShapes: 3, ValidImages: 256, EvalBatch: 64,
		SampleImages: 64, LatencyImages: 4, CompletionImages: 32,
	}
}

var (
	_ harness.Config           = (*Config)(nil)
	_ harness.VariantValidator = (*Config)(nil)
)

// Validate reports every invalid field at once. Checks that depend on the
// variant are made by ValidateVariant.
func (c *Config) Validate() []error {
	var errs []error
	inRange := func(name string, v, lo, hi int) {
		if !(v >= lo && v <= hi) {
			errs = append(errs, fmt.Errorf("%s: must be in [%d, %d], got %d", name, lo, hi, v))
		}
	}
	if c.Size != 0 && !(c.Size >= MinSize && c.Size <= MaxSize) {
		errs = append(errs, fmt.Errorf("size: must be 0 (the variant's own) or in [%d, %d], got %d", MinSize, MaxSize, c.Size))
	}
	if c.Binarize != BinarizeThreshold && c.Binarize != BinarizeDynamic {
		errs = append(errs, fmt.Errorf("binarize: must be %q or %q, got %q", BinarizeThreshold, BinarizeDynamic, c.Binarize))
	}
	inRange("max_shapes", c.MaxShapes, 1, maxShapesCap)
	inRange("valid_images", c.ValidImages, 1, maxImages)
	inRange("test_images", c.TestImages, 0, maxImages)
	inRange("eval_batch", c.EvalBatch, 1, maxBatch)
	inRange("sample_images", c.SampleImages, 1, maxBatch)
	inRange("latency_images", c.LatencyImages, 1, maxLatency)
	inRange("completion_images", c.CompletionImages, 0, maxImages)
	return errs
}

// ValidateVariant reports an unknown variant, fields that do not apply to
// it and counts it cannot hold (completion_images above the test images,
// more MNIST test images than MNIST has).
func (c *Config) ValidateVariant(variant string) []error {
	var errs []error
	switch variant {
	case "shapes":
	case "mnist":
		if c.MaxShapes != DefaultConfig().MaxShapes {
			errs = append(errs, fmt.Errorf("max_shapes: does not apply to variant mnist"))
		}
		if c.TestImages > mnistTestSize {
			errs = append(errs, fmt.Errorf("test_images: MNIST has %d test images, asked for %d", mnistTestSize, c.TestImages))
		}
	case "":
		return []error{fmt.Errorf("no variant: name one as image/VARIANT (%s)", strings.Join(Variants(), ", "))}
	default:
		return []error{fmt.Errorf("unknown variant %q (available: %s)", variant, strings.Join(Variants(), ", "))}
	}
	if test := c.testImages(variant); c.CompletionImages > test {
		errs = append(errs, fmt.Errorf("completion_images: %d exceed the %d test images", c.CompletionImages, test))
	}
	return errs
}

// side returns the image side for variant.
func (c *Config) side(variant string) int {
	switch {
	case c.Size != 0:
		return c.Size
	case variant == "mnist":
		return MNISTSize
	}
	return ShapesSize
}

// testImages returns the number of test images for variant (MNIST's
// whole test set for mnist's default; the loader may hold fewer).
func (c *Config) testImages(variant string) int {
	switch {
	case c.TestImages != 0:
		return c.TestImages
	case variant == "mnist":
		return mnistTestSize
	}
	return shapesTest
}

// Task is an image task: a training source and fixed valid and test sets
// of binarized images.
type Task struct {
	cfg     Config
	variant string
	seed    uint64
	side    int
	// loadMNIST is the mnist variant's loader (defaultMNIST; tests
	// replace it).
	loadMNIST MNISTLoader

	// train draws one grey training image (shapes: a fresh one; mnist: a
	// random training image).
	train       func(rng *rand.Rand) []uint8
	valid, test [][]uint8 // binarized, 0/1
	refs        []harness.DatasetRef
}

var _ harness.Task = (*Task)(nil)

// New returns an unprepared task with the default configuration.
func New() harness.Task { return &Task{cfg: DefaultConfig(), loadMNIST: defaultMNIST} }

// Config returns the task's configuration, for strict decoding.
func (t *Task) Config() harness.Config { return &t.cfg }

// Prepare checks the configuration for env.Variant and builds the fixed
// valid and test sets (shapes: generated; mnist: loaded from env.DataDir).
func (t *Task) Prepare(ctx context.Context, env harness.TaskEnv) error {
	if env.DataFile != "" {
		return fmt.Errorf("image: image tasks read no -data file (got %s)", env.DataFile)
	}
	if errs := harness.ConfigProblems(&t.cfg, env.Variant); len(errs) > 0 {
		return fmt.Errorf("image/%s: invalid config: %w", env.Variant, errors.Join(errs...))
	}
	t.variant, t.seed, t.side = env.Variant, env.Seed, t.cfg.side(env.Variant)
	var validGrey, testGrey [][]uint8
	var err error
	switch t.variant {
	case "shapes":
		validGrey, testGrey, err = t.prepareShapes(ctx)
	case "mnist":
		validGrey, testGrey, err = t.prepareMNIST(ctx, env.DataDir)
	}
	if err != nil {
		return err
	}
	t.valid = binarizeFixed(validGrey, t.cfg.Binarize, validStream)
	t.test = binarizeFixed(testGrey, t.cfg.Binarize, testStream)
	return nil
}

// Random streams (the PCG's second word). The fixed sets are drawn and
// binarized from fixedSeed, never from the run's seed.
const (
	fixedSeed      = 0x696d616765 // "image"
	validStream    = 0x76616c6964 // "valid"
	testStream     = 0x74657374   // "test"
	binarizeStream = 0x62696e     // "bin", added to a split's stream
	sampleStream   = 0x73616d706c65
	latencyStream  = 0x6c6174656e6379
	completeStream = 0x636f6d706c657465
)

// N returns the number of pixels per image (0 before Prepare).
func (t *Task) N() int { return t.side * t.side }

// Side returns the image height and width (0 before Prepare).
func (t *Task) Side() (height, width int) { return t.side, t.side }

// Images returns the binarized images (0/1 pixels, raster order) of split
// "valid" or "test", for tests and for models that want them whole; nil
// before Prepare or for another split. The slices are the task's own:
// callers must not modify them.
func (t *Task) Images(split string) [][]uint8 {
	switch split {
	case "valid":
		return t.valid
	case "test":
		return t.test
	}
	return nil
}

// Info describes the prepared task: Kind "image", Vocab 3, SeqLen N = H·W
// (images are square, H = W = √SeqLen), headline bits_per_dim. It needs a
// Scorer (likelihoods) and decoding (sampling). EvalBatch is the most rows
// one model call gets: eval_batch (at most the largest split), or
// sample_images when that is larger (the large-batch sampling and the
// timed scoring and training passes).
func (t *Task) Info() harness.TaskInfo {
	info := harness.TaskInfo{Kind: "image", Vocab: Vocab, HeadlineMetric: "bits_per_dim",
		Needs: []harness.Capability{harness.NeedScorer, harness.NeedDecoding}}
	if t.variant == "" {
		return info
	}
	info.Name = "image/" + t.variant
	info.SeqLen = t.N()
	info.EvalBatch = max(min(t.cfg.EvalBatch, max(len(t.valid), len(t.test))), t.cfg.SampleImages)
	return info
}

// Datasets lists MNIST's files for mnist; shapes reads none.
func (t *Task) Datasets() []harness.DatasetRef { return slices.Clone(t.refs) }

// TrainBatch draws batch training images (shapes: fresh images of the
// train split; mnist: uniformly from the training images), binarizes them
// (dynamic: from rng, so every batch resamples) and frames them (Frame).
func (t *Task) TrainBatch(rng *rand.Rand, batch int) harness.Batch {
	if t.train == nil {
		panic("image: TrainBatch before a successful Prepare")
	}
	imgs := make([][]uint8, batch)
	for i := range imgs {
		imgs[i] = binarize(t.train(rng), t.cfg.Binarize, rng)
	}
	return Frame(imgs)
}

// Frame frames images of N pixels as language-modelling rows: Inputs
// [Start, p_0 … p_{N−2}], Targets [p_0 … p_{N−1}].
func Frame(images [][]uint8) harness.Batch {
	b := harness.Batch{Inputs: make([][]int, len(images)), Targets: make([][]int, len(images))}
	for i, img := range images {
		in, tg := make([]int, len(img)), make([]int, len(img))
		for k, p := range img {
			tg[k] = int(p)
			if k == 0 {
				in[k] = Start
			} else {
				in[k] = int(img[k-1])
			}
		}
		b.Inputs[i], b.Targets[i] = in, tg
	}
	return b
}

// binarize returns grey (0..255) as 0/1 pixels: threshold sets a pixel
// when its value is at least 128 (grey/255 ≥ 0.5); dynamic sets it with
// probability grey/255, one rng.Float64() per pixel.
func binarize(grey []uint8, mode string, rng *rand.Rand) []uint8 {
	out := make([]uint8, len(grey))
	for k, v := range grey {
		switch mode {
		case BinarizeThreshold:
			if v >= 128 {
				out[k] = 1
			}
		case BinarizeDynamic:
			if rng.Float64()*255 < float64(v) {
				out[k] = 1
			}
		default:
			panic("image: unknown binarization " + mode)
		}
	}
	return out
}

// binarizeFixed binarizes a fixed set once, dynamic from fixedSeed and the
// split's stream, so every run sees the same images.
func binarizeFixed(grey [][]uint8, mode string, stream uint64) [][]uint8 {
	rng := rand.New(rand.NewPCG(fixedSeed, stream+binarizeStream))
	out := make([][]uint8, len(grey))
	for i, g := range grey {
		out[i] = binarize(g, mode, rng)
	}
	return out
}
