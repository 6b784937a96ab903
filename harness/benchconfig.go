package harness

import "fmt"

// BenchConfig is the optional `bench:` section of an experiment: what
// `arbench bench` measures for each of the experiment's models (package
// bench). The models are fed uniformly random token ids, so the section
// needs no data; the experiment's tasks are not used by `arbench bench`.
//
//	bench:
//	  vocab: 256               # token ids are drawn from [0, vocab)
//	  warmup: 1                # untimed runs before each point (compilation, caches)
//	  repeats: 5               # timed repeats per point: median and IQR
//	  min_seconds: 0.2         # each training/scoring repeat runs steps for at least this long
//	  ceiling_size: 512        # n of the n×n·n×n product timed as the matmul ceiling
//	  train: {batch: 32, seq_len: 64, seq_lens: [32, 64, 128], batches: [8, 32, 64]}
//	  score: {batch: 32, seq_len: 64, seq_lens: [64, 256]}
//	  generate:
//	    prompt: 16
//	    batches: [1, 32]
//	    lengths: [64, 256, 1024]
//	    refeed_batches: [1]        # also time the re-feeding loop (models
//	    refeed_lengths: [64, 256]  # with a key/value cache) at these points
//	  translate:                   # conditional decoding (harness.Translate)
//	    source: 16                 # source tokens per row
//	    batches: [1, 64]
//	    lengths: [16, 32]          # output tokens per row, forced
//	    repeats: 10                # timed decodes per point: latency percentiles
//	  image:                       # images in tasks/image's framing (vocabulary 3)
//	    sizes: [8, 12, 16, 20, 28] # image sides S: rows of N = S·S pixels
//	    sample_batches: [1, 16]    # images sampled at once
//	    pass_batch: 16             # images per timed training step and scoring pass
//	    repeats: 3                 # timed repeats per point
type BenchConfig struct {
	Vocab       int     `yaml:"vocab" json:"vocab"`
	Warmup      int     `yaml:"warmup" json:"warmup"`
	Repeats     int     `yaml:"repeats" json:"repeats"`
	MinSeconds  float64 `yaml:"min_seconds" json:"min_seconds"`
	CeilingSize int     `yaml:"ceiling_size" json:"ceiling_size"`
	// Train and Score are swept over SeqLens at batch Batch and over
	// Batches at sequence length SeqLen; empty lists skip that sweep.
	Train    BenchSweep    `yaml:"train" json:"train"`
	Score    BenchSweep    `yaml:"score" json:"score"`
	Generate BenchGenerate `yaml:"generate" json:"generate"`
	// Translate times the models that read a source (harness.SourceMode:
	// encoder–decoders, non-autoregressive and hybrid models, and language
	// models in their joined mode).
	Translate BenchTranslate `yaml:"translate" json:"translate"`
	// Image times sampling whole images against one parallel training
	// step and scoring pass at the same image size (issue 11). Its points
	// always use the image framing's vocabulary of 3 tokens, whatever
	// Vocab says.
	Image BenchImage `yaml:"image" json:"image"`
	// Baseline, when set, is the label of the model whose speed the
	// others are related to, point by point (bench.md's "Speed relative
	// to" table): a Go model and its PyTorch twin, say.
	Baseline string `yaml:"baseline" json:"baseline,omitempty"`
	// Peers pairs models with the same model in another framework
	// (arbench's lstm and its PyTorch twin through the plugin protocol):
	// bench.md's "Against peers" table gives each pair's ratio of tokens/s
	// and their peak memory, point by point. A pair's points are measured
	// with their timed repeats alternating (a model is interleaved with
	// the first peer that is not already another's), so that the ratio
	// compares the same minutes of a noisy machine.
	Peers []BenchPeer `yaml:"peers" json:"peers,omitempty"`
}

// BenchPeer is one pair of model labels: Model (arbench's) and Peer.
type BenchPeer struct {
	Model string `yaml:"model" json:"model"`
	Peer  string `yaml:"peer" json:"peer"`
}

// BenchSweep is a pair of one-dimensional sweeps through (Batch, SeqLen).
type BenchSweep struct {
	Batch   int   `yaml:"batch" json:"batch"`
	SeqLen  int   `yaml:"seq_len" json:"seq_len"`
	SeqLens []int `yaml:"seq_lens" json:"seq_lens"`
	Batches []int `yaml:"batches" json:"batches"`
}

// BenchGenerate is the generation sweep: every batch size with every
// output length, greedy, after a random prompt of Prompt tokens. Models
// with a switchable key/value cache are also timed with the re-feeding
// loop at RefeedBatches × RefeedLengths.
type BenchGenerate struct {
	Prompt        int   `yaml:"prompt" json:"prompt"`
	Batches       []int `yaml:"batches" json:"batches"`
	Lengths       []int `yaml:"lengths" json:"lengths"`
	RefeedBatches []int `yaml:"refeed_batches" json:"refeed_batches"`
	RefeedLengths []int `yaml:"refeed_lengths" json:"refeed_lengths"`
}

// BenchTranslate is the conditional decoding sweep: every batch size with
// every output length, each row a random source of Source tokens decoded
// by harness.Translate into exactly Length tokens
// (TranslateOptions.Length), once per decoding setting of the model (its
// DecodeSettings, else greedy). A point is Repeats timed decodes of one
// batch, so that the latency percentiles have a sample; empty Batches or
// Lengths skip the sweep. Token ids 0, 1 and 2 are the source padding,
// the start and the end token, so Vocab must be at least 3 for it.
type BenchTranslate struct {
	Source  int   `yaml:"source" json:"source"`
	Batches []int `yaml:"batches" json:"batches"`
	Lengths []int `yaml:"lengths" json:"lengths"`
	Repeats int   `yaml:"repeats" json:"repeats"`
}

// Enabled reports whether the sweep has any point.
func (t BenchTranslate) Enabled() bool { return len(t.Batches) > 0 && len(t.Lengths) > 0 }

// BenchImageMinSize and BenchImageMaxSize bound the image sweep's sides:
// tasks/image's MinSize and MaxSize (harness cannot import tasks/image;
// package bench's tests check that they agree).
const (
	BenchImageMinSize = 8
	BenchImageMaxSize = 28
)

// BenchImage is the image sweep: binary square images of side S in
// tasks/image's framing (a row of N = S·S pixels, vocabulary 3: pixel
// values 0 and 1 and the start token 2), for every model and every size
// in Sizes. At each size, each batch of SampleBatches images is sampled
// pixel by pixel from the start token as the image task samples (N
// sequential decoder steps), and a framed batch of PassBatch random images
// is given to one training step (harness.Trainer's Gradients: forward and
// backward) and one scoring pass (harness.Scorer's LogProbs), the
// parallel passes that read all N pixels at once. Every point is Repeats
// timed repeats after the experiment's warm-up; a training or scoring
// repeat runs passes for at least min_seconds. Empty Sizes or
// SampleBatches skip the sweep.
type BenchImage struct {
	Sizes         []int `yaml:"sizes" json:"sizes"`
	SampleBatches []int `yaml:"sample_batches" json:"sample_batches"`
	PassBatch     int   `yaml:"pass_batch" json:"pass_batch"`
	Repeats       int   `yaml:"repeats" json:"repeats"`
}

// Enabled reports whether the sweep has any point.
func (im BenchImage) Enabled() bool { return len(im.Sizes) > 0 && len(im.SampleBatches) > 0 }

// DefaultBench returns the defaults a `bench:` section starts from (and
// `arbench bench` uses without one).
func DefaultBench() *BenchConfig {
	return &BenchConfig{
		Vocab: 256, Warmup: 1, Repeats: 5, MinSeconds: 0.2, CeilingSize: 512,
		Train: BenchSweep{Batch: 32, SeqLen: 64, SeqLens: []int{32, 64, 128}, Batches: []int{8, 32, 64}},
		Score: BenchSweep{Batch: 32, SeqLen: 64, SeqLens: []int{64, 256}},
		Generate: BenchGenerate{
			Prompt: 16, Batches: []int{1, 32}, Lengths: []int{64, 256},
			RefeedBatches: []int{1}, RefeedLengths: []int{64},
		},
		Translate: BenchTranslate{Source: 16, Batches: []int{1, 64}, Lengths: []int{16, 32}, Repeats: 10},
		// Off (no sizes): sampling images costs N decoder steps each.
		Image: BenchImage{SampleBatches: []int{1, 16}, PassBatch: 16, Repeats: 3},
	}
}

// Validate reports every invalid field.
func (c *BenchConfig) Validate() []error {
	var errs []error
	add := func(bad bool, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	add(c.Vocab < 2, "vocab: must be >= 2, got %d", c.Vocab)
	add(c.Warmup < 0, "warmup: must be >= 0, got %d", c.Warmup)
	add(c.Repeats < 1, "repeats: must be >= 1, got %d", c.Repeats)
	add(!(c.MinSeconds >= 0) || c.MinSeconds > 600, "min_seconds: must be in [0, 600], got %v", c.MinSeconds)
	add(c.CeilingSize < 16, "ceiling_size: must be >= 16, got %d", c.CeilingSize)
	positive := func(field string, xs []int) {
		for i, x := range xs {
			add(x < 1, "%s[%d]: must be >= 1, got %d", field, i, x)
		}
	}
	for _, s := range []struct {
		name string
		sw   BenchSweep
	}{{"train", c.Train}, {"score", c.Score}} {
		add(s.sw.Batch < 1, "%s.batch: must be >= 1, got %d", s.name, s.sw.Batch)
		add(s.sw.SeqLen < 1, "%s.seq_len: must be >= 1, got %d", s.name, s.sw.SeqLen)
		positive(s.name+".seq_lens", s.sw.SeqLens)
		positive(s.name+".batches", s.sw.Batches)
	}
	g := c.Generate
	add(g.Prompt < 1, "generate.prompt: must be >= 1, got %d", g.Prompt)
	positive("generate.batches", g.Batches)
	positive("generate.lengths", g.Lengths)
	positive("generate.refeed_batches", g.RefeedBatches)
	positive("generate.refeed_lengths", g.RefeedLengths)
	t := c.Translate
	add(t.Source < 1, "translate.source: must be >= 1, got %d", t.Source)
	add(t.Repeats < 1, "translate.repeats: must be >= 1, got %d", t.Repeats)
	positive("translate.batches", t.Batches)
	positive("translate.lengths", t.Lengths)
	add(t.Enabled() && c.Vocab == 2, "vocab: must be >= 3 for the translate sweep (tokens 1 and 2 start and end an output), got %d", c.Vocab)
	im := c.Image
	for i, s := range im.Sizes {
		add(s < BenchImageMinSize || s > BenchImageMaxSize, "image.sizes[%d]: must be in [%d, %d] (the image task's sides), got %d",
			i, BenchImageMinSize, BenchImageMaxSize, s)
	}
	positive("image.sample_batches", im.SampleBatches)
	add(im.PassBatch < 1, "image.pass_batch: must be >= 1, got %d", im.PassBatch)
	add(im.Repeats < 1, "image.repeats: must be >= 1, got %d", im.Repeats)
	seen := map[BenchPeer]bool{}
	for i, pr := range c.Peers {
		add(pr.Model == "" || pr.Peer == "", "peers[%d]: needs model and peer labels, got %q and %q", i, pr.Model, pr.Peer)
		add(pr.Model != "" && pr.Model == pr.Peer, "peers[%d]: model and peer are both %q", i, pr.Model)
		add(seen[pr], "peers[%d]: the pair %s/%s is listed twice", i, pr.Model, pr.Peer)
		seen[pr] = true
	}
	return errs
}
