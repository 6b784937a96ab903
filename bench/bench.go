// Package bench measures how fast arbench's models train, score and
// generate on a backend: `arbench bench` and the `bench:` section of an
// experiment (harness.BenchConfig).
//
// Every point of a sweep is measured on a freshly set-up model after
// untimed warm-up runs (which compile the backend's executables and fill
// caches), over several timed repeats reported as median and interquartile
// range. Generation is timed token by token: time to first token (the
// prompt's forward pass), per-token latency percentiles and tokens/s.
// Models that read a source (harness.SourceMode: encoder–decoders,
// non-autoregressive and hybrid models, and language models in their
// joined mode) are also timed translating random sources into outputs of
// a forced length (harness.Translate with TranslateOptions.Length), once
// per decoding setting (harness.DecodeSweeper): sequences/s, latency per
// sequence, decoder passes and, for speculative decoding, the acceptance
// rate. A conditional model (a Conditioner) trains and scores on random
// conditional batches and has no language-model generation points.
// With an image section (harness.BenchImage), every language model is
// also run on tasks/image's framing at each image size: whole images
// sampled pixel by pixel through harness.Decoder as the image task samples
// them (N = H·W sequential steps) against one parallel training step and
// scoring pass over framed random images, in ms per image (image.go).
// Each point also reports its peak memory (process RSS and Go heap), the
// matrix-product FLOPs per token the model executes (counted by running
// the same operation on CountBackend; formulas in flops.go), the achieved
// GFLOP/s and their fraction of the matrix-multiply ceiling measured on
// the same backend at startup.
//
// A model and its peer (harness.BenchConfig.Peers) are measured
// together, their timed repeats alternating (pairs.go).
//
// Models are fed uniformly random token ids: the speed of these models
// does not depend on the data. Everything goes through nn.Backend, so the
// same sweep runs on any backend (`-backend gotch`); memory is the host
// process's (a GPU backend's device memory is not measured).
package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	"arbench/harness"
	"arbench/nn"
	"arbench/tasks/image"
)

// Kinds of measurement.
const (
	KindTrain    = "train"
	KindScore    = "score"
	KindGenerate = "generate"
	// KindTranslate decodes a batch of random sources with
	// harness.Translate.
	KindTranslate = "translate"
	// KindImageSample samples whole binary images pixel by pixel from the
	// start token (tasks/image's framing); KindImageTrain and
	// KindImageScore are one training step (Gradients) and one scoring
	// pass (LogProbs) over a framed batch of random images of the same
	// size. See image.go.
	KindImageSample = "image_sample"
	KindImageTrain  = "image_train"
	KindImageScore  = "image_score"
)

// Generation modes, the paths of harness.Decoder (named as its
// DecodeMode.String).
const (
	// ModeCached carries the model's state (recurrent state, key/value
	// cache) from token to token: harness.DecodeCached.
	ModeCached = "cached"
	// ModeRefeed reruns the model over the whole sequence for every token,
	// the survey's re-feeding loop: harness.DecodeRefeed.
	ModeRefeed = "refeed"
	// ModeGreedy is the mode of a translate point of a model without
	// decoding settings (no harness.DecodeSweeper): its configured
	// decoding, greedy for an autoregressive model. A DecodeSweeper's
	// translate points are named by its settings ("T=4", "gamma=4").
	ModeGreedy = "greedy"
)

// Tokens of the random conditional data: 0 pads sources
// (harness.SourcePad), 1 starts and 2 ends an output (the BOS and EOS of
// tasks/seq2seq). Content tokens are drawn from [firstContent, vocab).
const (
	startToken   = 1
	endToken     = 2
	firstContent = 3
)

// Options configure Run.
type Options struct {
	// Name labels the report (the experiment's name).
	Name    string
	Backend nn.Backend
	Config  *harness.BenchConfig
	Models  []harness.ModelSpec
	// Seed initialises the models and draws the token ids.
	Seed uint64
	// NoCache times generation with the re-feeding loop only, for every
	// model (the sweep of Config.Generate.Batches × Lengths). It does not
	// change the translate points (harness.Translate picks the decoding).
	NoCache bool
	// Log receives a line per point; nil is silent.
	Log io.Writer
}

// Point is one measured configuration.
type Point struct {
	// Model is the model's label, Family its registry name.
	Model  string `json:"model"`
	Family string `json:"family"`
	Kind   string `json:"kind"`
	// Mode is ModeCached or ModeRefeed for generation and for a measured
	// image sample point (the path harness.Decoder took); for translation
	// the decoding setting's name (harness.DecodeSetting.Name) or
	// ModeGreedy.
	Mode  string `json:"mode,omitempty"`
	Batch int    `json:"batch"`
	// SeqLen is the tokens per row of a training or scoring batch (for a
	// conditional model, the decoder rows: start token and target); for an
	// image point the pixels per image, N = Side·Side.
	SeqLen int `json:"seq_len,omitempty"`
	// Side is an image point's image height and width.
	Side int `json:"side,omitempty"`
	// Source is the source tokens per row of a translate point and of a
	// conditional model's training or scoring batch (SeqLen then).
	Source int `json:"source,omitempty"`
	// Prompt and Length are the prompt and generated tokens per row (for
	// translation, the forced output length).
	Prompt int `json:"prompt,omitempty"`
	Length int `json:"length,omitempty"`
	// DecodeParams and DecodeBaseline are the translate point's
	// harness.DecodeSetting Params and Baseline (nil and false for
	// ModeGreedy).
	DecodeParams   map[string]any `json:"decode_params,omitempty"`
	DecodeBaseline bool           `json:"decode_baseline,omitempty"`
	// Skipped says why the point was not measured (e.g. beyond the
	// model's context); the measurements are then empty.
	Skipped string `json:"skipped,omitempty"`
	// Note qualifies a measured point (a translation whose outputs are not
	// of the forced length).
	Note string `json:"note,omitempty"`
	// InterleavedWith is the label of the model whose same point was
	// measured with this one's repeats alternating (a pair of
	// Config.Peers; see pairs.go).
	InterleavedWith string `json:"interleaved_with,omitempty"`

	// TokensPerSec has one value per repeat: tokens trained, scored or
	// generated (all rows) per second; for translation batch·Length over
	// the decode's time. A conditional model's training and scoring count
	// its target tokens; an image point counts pixels (pixels/s).
	TokensPerSec Summary `json:"tokens_per_sec"`
	// StepSeconds is the time of one training or scoring step, of one
	// translation of the whole batch, or of sampling the whole batch of
	// images.
	StepSeconds *Summary `json:"step_seconds,omitempty"`
	// MsPerImage has one value per repeat of an image point: StepSeconds
	// over the images of the batch, in milliseconds.
	MsPerImage *Summary `json:"ms_per_image,omitempty"`
	// SeqPerSec has one value per translation repeat: rows decoded per
	// second.
	SeqPerSec *Summary `json:"seq_per_sec,omitempty"`
	// SeqLatency are percentiles over the translation repeats of the
	// seconds per sequence: a batch's decode time over its rows (at
	// batch 1, the latency of one sequence).
	SeqLatency *Latency `json:"seq_latency_seconds,omitempty"`
	// Passes is the decoder passes of one translation of the batch
	// (harness.Translation.Passes), the mean over repeats.
	Passes float64 `json:"passes,omitempty"`
	// Stats are the model's harness.Translation.Stats, the mean per
	// translation of the batch.
	Stats map[string]float64 `json:"stats,omitempty"`
	// Acceptance is the fraction of drafted tokens accepted,
	// Stats["accepted"] / Stats["drafted"], and TokensPerVerify the
	// output tokens per row and verifier pass, Length /
	// Stats["verify_calls"] (the verifier's passes over the batch, so the
	// batch's slowest row decides it); nil for a model that reports no
	// such stats.
	Acceptance      *float64 `json:"acceptance,omitempty"`
	TokensPerVerify *float64 `json:"tokens_per_verify,omitempty"`
	// TTFT is the time to the first generated token (the prompt's pass).
	TTFT *Summary `json:"ttft_seconds,omitempty"`
	// Latency pools the per-token latencies of every repeat's steps after
	// the first token; LatencyRepeats has them per repeat.
	Latency        *Latency  `json:"token_latency_seconds,omitempty"`
	LatencyRepeats []Latency `json:"token_latency_per_repeat,omitempty"`

	// FLOPsPerToken is the matrix-product FLOPs executed per token (see
	// CountBackend); GFLOPS is FLOPsPerToken × median tokens/s and
	// CeilingFraction its ratio to Report.Ceiling.Best. FLOPsNote says
	// why FLOPsPerToken is 0 when a translation could not be counted
	// (CountBackend's zero outputs are no valid distributions, which a
	// decoder may refuse).
	FLOPsPerToken   float64 `json:"flops_per_token"`
	FLOPsNote       string  `json:"flops_note,omitempty"`
	GFLOPS          float64 `json:"gflops"`
	CeilingFraction float64 `json:"ceiling_fraction"`
	Memory          Memory  `json:"memory"`
}

// Report is everything Run measured.
type Report struct {
	Name       string               `json:"name"`
	Backend    string               `json:"backend"`
	Device     string               `json:"device"`
	GoVersion  string               `json:"go_version"`
	GOOS       string               `json:"goos"`
	GOARCH     string               `json:"goarch"`
	CPU        string               `json:"cpu"`
	NumCPU     int                  `json:"num_cpu"`
	GOMAXPROCS int                  `json:"gomaxprocs"`
	NoCache    bool                 `json:"no_cache,omitempty"`
	Start      time.Time            `json:"start"`
	End        time.Time            `json:"end"`
	Config     *harness.BenchConfig `json:"config"`
	Models     []harness.ModelSpec  `json:"models"`
	// BackendInfo is the backend's own description (nn.Describer): its
	// kernels or library.
	BackendInfo string  `json:"backend_info,omitempty"`
	Ceiling     Ceiling `json:"ceiling"`
	Points      []Point `json:"points"`
	// Runtimes maps the label of each model that does not run on
	// arbench's backend to what computes it (harness.ModelInfo.Runtime).
	Runtimes map[string]string `json:"runtimes,omitempty"`
}

// checkLabels reports a baseline or peer that names no model.
func checkLabels(opt Options) error {
	has := func(l string) bool {
		return slices.ContainsFunc(opt.Models, func(m harness.ModelSpec) bool { return m.Label == l })
	}
	if b := opt.Config.Baseline; b != "" && !has(b) {
		return fmt.Errorf("bench: baseline: no model labelled %q", b)
	}
	var errs []error
	for _, pr := range opt.Config.Peers {
		for _, l := range []string{pr.Model, pr.Peer} {
			if !has(l) {
				errs = append(errs, fmt.Errorf("bench: peers: no model labelled %q", l))
			}
		}
	}
	return errors.Join(errs...)
}

// Run measures every model of opt on every point of opt.Config. It returns
// the points measured so far together with an error (e.g. ctx cancelled).
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Backend == nil || opt.Config == nil {
		return nil, errors.New("bench: options need a backend and a configuration")
	}
	if errs := opt.Config.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("bench: configuration: %w", errors.Join(errs...))
	}
	if len(opt.Models) == 0 {
		return nil, errors.New("bench: no models")
	}
	if err := checkLabels(opt); err != nil {
		return nil, err
	}
	rep := &Report{
		Name: opt.Name, Backend: opt.Backend.Name(), Device: opt.Backend.Device(),
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPU: cpuName(),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), NoCache: opt.NoCache,
		Start: time.Now().UTC(), Config: opt.Config, Models: opt.Models,
	}
	defer func() { rep.End = time.Now().UTC() }()
	if d, ok := opt.Backend.(nn.Describer); ok {
		rep.BackendInfo = d.Describe()
	}
	c := opt.Config
	logf(opt.Log, "matmul ceiling: %d×%d·%d×%d on %s/%s", c.CeilingSize, c.CeilingSize, c.CeilingSize, c.CeilingSize, rep.Backend, rep.Device)
	// The ceiling is the reference of every point: at least 3 repeats of
	// at least 0.1 s each, whatever the points use.
	ceil, err := MeasureCeiling(ctx, opt.Backend, c.CeilingSize, max(c.Warmup, 1), max(c.Repeats, 3), max(c.MinSeconds, 0.1))
	if err != nil {
		return rep, err
	}
	rep.Ceiling = ceil
	logf(opt.Log, "  best %.1f GFLOP/s (median %.1f)", ceil.Best, ceil.GFLOPS.Median)
	r := &runner{opt: opt, ceiling: ceil.Best}
	defer sortPoints(rep)
	pg := newPairing(r)
	for i := range opt.Models {
		spec := &opt.Models[i]
		if m, err := configured(spec); err == nil && m.Info().Runtime != "" {
			if rep.Runtimes == nil {
				rep.Runtimes = map[string]string{}
			}
			rep.Runtimes[spec.Label] = m.Info().Runtime
		}
		for _, pt := range r.plan(spec) {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if pg.measured(spec.Label, pt) {
				continue
			}
			ps, err := r.measureOne(ctx, pg, spec, pt)
			for _, p := range ps {
				rep.Points = append(rep.Points, p)
				logf(opt.Log, "%s", summaryLine(p))
			}
			if err != nil {
				return rep, fmt.Errorf("bench: %s %s: %w", spec.Label, describe(pt), err)
			}
		}
	}
	return rep, nil
}

// measureOne measures spec's point p, interleaved with its partner's same
// point when it has one (pairs.go), and returns the points measured.
func (r *runner) measureOne(ctx context.Context, pg *pairing, spec *harness.ModelSpec, p Point) ([]Point, error) {
	other, q := pg.partner(spec.Label, p)
	if other == nil {
		p, err := r.measure(ctx, spec, p)
		if err != nil {
			return nil, err
		}
		return []Point{p}, nil
	}
	p, qq, err := pg.measurePair(ctx, spec, p, other, *q)
	if err != nil {
		return nil, err
	}
	return []Point{p, qq}, nil
}

// sortPoints puts the points in the order of the models (each model's in
// measurement order), as a pair's points are measured together.
func sortPoints(rep *Report) {
	order := map[string]int{}
	for i, m := range rep.Models {
		order[m.Label] = i
	}
	slices.SortStableFunc(rep.Points, func(a, b Point) int { return cmp.Compare(order[a.Model], order[b.Model]) })
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

type runner struct {
	opt     Options
	ceiling float64
}

// plan lists a model's points in measurement order (with the sweeps'
// shared points once): training and scoring, generation, then, for a
// model that reads a source, translation in each of its decoding modes,
// and the image sweep.
// A conditional model's training and scoring rows get sources of their
// sequence length.
func (r *runner) plan(spec *harness.ModelSpec) []Point {
	c := r.opt.Config
	base := Point{Model: spec.Label, Family: spec.Name}
	inst, _ := configured(spec) // an error is reported by the points' newModel
	type key struct {
		kind, mode            string
		batch, seqLen, length int
	}
	var pts []Point
	seen := map[key]bool{}
	add := func(p Point) {
		k := key{p.Kind, p.Mode, p.Batch, p.SeqLen, p.Length}
		if !seen[k] {
			seen[k] = true
			pts = append(pts, p)
		}
	}
	for _, s := range []struct {
		kind string
		sw   harness.BenchSweep
	}{{KindTrain, c.Train}, {KindScore, c.Score}} {
		for _, t := range s.sw.SeqLens {
			p := base
			p.Kind, p.Batch, p.SeqLen = s.kind, s.sw.Batch, t
			add(p)
		}
		for _, b := range s.sw.Batches {
			p := base
			p.Kind, p.Batch, p.SeqLen = s.kind, b, s.sw.SeqLen
			add(p)
		}
	}
	if conditional(inst) {
		for i := range pts {
			pts[i].Source = pts[i].SeqLen
		}
	}
	gen := func(mode string, batches, lengths []int) {
		for _, b := range batches {
			for _, l := range lengths {
				p := base
				p.Kind, p.Mode, p.Batch, p.Prompt, p.Length = KindGenerate, mode, b, c.Generate.Prompt, l
				add(p)
			}
		}
	}
	if r.opt.NoCache {
		gen(ModeRefeed, c.Generate.Batches, c.Generate.Lengths)
	} else {
		gen(ModeCached, c.Generate.Batches, c.Generate.Lengths)
		if _, ok := inst.(harness.KVCacher); ok {
			gen(ModeRefeed, c.Generate.RefeedBatches, c.Generate.RefeedLengths)
		}
	}
	for _, p := range translatePoints(inst, base, c.Translate) {
		add(p)
	}
	for _, p := range imagePoints(base, c.Image) {
		add(p)
	}
	return pts
}

// translatePoints lists the translate points of a model that reads a
// source (harness.SourceMode), for each of its decoding settings (or
// greedy); none for other models.
func translatePoints(inst harness.Model, base Point, t harness.BenchTranslate) []Point {
	if inst == nil || harness.SourceMode(inst) == "" {
		return nil
	}
	type mode struct {
		name     string
		params   map[string]any
		baseline bool
	}
	modes := []mode{{name: ModeGreedy}}
	if ds, ok := inst.(harness.DecodeSweeper); ok {
		if settings := ds.DecodeSettings(); len(settings) > 0 {
			modes = modes[:0]
			for _, s := range settings {
				modes = append(modes, mode{s.Name, s.Params, s.Baseline})
			}
		}
	}
	var pts []Point
	for _, m := range modes {
		for _, b := range t.Batches {
			for _, l := range t.Lengths {
				p := base
				p.Kind, p.Mode, p.Batch, p.Source, p.Length = KindTranslate, m.name, b, t.Source, l
				p.DecodeParams, p.DecodeBaseline = m.params, m.baseline
				pts = append(pts, p)
			}
		}
	}
	return pts
}

func describe(p Point) string {
	switch p.Kind {
	case KindImageSample, KindImageTrain, KindImageScore:
		kind := p.Kind
		if p.Mode != "" {
			kind += "/" + p.Mode
		}
		return fmt.Sprintf("%s b=%d %d×%d", kind, p.Batch, p.Side, p.Side)
	case KindGenerate:
		return fmt.Sprintf("generate/%s b=%d len=%d", p.Mode, p.Batch, p.Length)
	case KindTranslate:
		return fmt.Sprintf("translate/%s b=%d src=%d len=%d", p.Mode, p.Batch, p.Source, p.Length)
	}
	return fmt.Sprintf("%s b=%d T=%d", p.Kind, p.Batch, p.SeqLen)
}

// configured returns a fresh instance of spec's model with the spec's
// configuration, not set up: what its capabilities (SourceMode,
// MaxContext, DecodeSettings) and the experiment check read.
func configured(spec *harness.ModelSpec) (harness.Model, error) {
	m, err := harness.NewModel(spec.Name)
	if err != nil {
		return nil, err
	}
	if spec.Config != nil {
		dst, src := reflect.ValueOf(m.Config()), reflect.ValueOf(spec.Config)
		if dst.Type() != src.Type() || dst.Kind() != reflect.Pointer {
			return nil, fmt.Errorf("config type %T does not match the model's %T", spec.Config, m.Config())
		}
		dst.Elem().Set(src.Elem())
	}
	return m, nil
}

// conditional reports whether m reads Batch.Source (a Conditioner
// reporting true): its training and scoring batches need a source, and it
// generates only by translating.
func conditional(m harness.Model) bool {
	c, ok := m.(harness.Conditioner)
	return ok && c.Conditional()
}

// errSetup marks newModel's failures of Setup itself (after the checks).
var errSetup = errors.New("set up")

// newModel makes a set-up instance of spec for env. It first makes the
// experiment check's checks (harness.CheckModel: the plugin's check of env
// and its memory estimate), so that a configuration the machine cannot
// hold is refused before Setup allocates it; a model whose Setup fails is
// closed.
func (r *runner) newModel(ctx context.Context, spec *harness.ModelSpec, env harness.Env) (harness.Model, error) {
	m, err := configured(spec)
	if err != nil {
		return nil, err
	}
	if err := harness.CheckModel(m, env); err != nil {
		return nil, err
	}
	if err := m.Setup(ctx, env); err != nil {
		return nil, errors.Join(fmt.Errorf("%w on backend %s: %w", errSetup, env.Backend.Name(), err), closeModel(m))
	}
	return m, nil
}

// pointEnv is the environment of p's model on backend: rows of seqLen
// tokens (a generation's prompt, a joined translation's source and
// output), given Batch rows at once in training and EvalBatch rows when
// scoring, generating or translating, for the memory estimate. A point
// with a source also sets SourceLen and TargetLen: Source and the decoder
// rows (the training or scoring SeqLen, the translation's Length). An
// image point has the image framing's vocabulary (image.Vocab), whatever
// the configuration's.
func (r *runner) pointEnv(p Point, backend nn.Backend, seqLen int) harness.Env {
	env := harness.Env{Backend: backend, Vocab: r.opt.Config.Vocab, SeqLen: seqLen, Seed: r.opt.Seed}
	if isImage(p.Kind) {
		env.Vocab = image.Vocab
	}
	if p.Kind == KindTrain || p.Kind == KindImageTrain {
		env.Batch = p.Batch
	} else {
		env.EvalBatch = p.Batch
	}
	if p.Source > 0 {
		env.SourceLen, env.TargetLen = p.Source, p.SeqLen
		if p.Kind == KindTranslate {
			env.TargetLen = p.Length
		}
	}
	return env
}

// closeModel closes m if it is an io.Closer.
func closeModel(m harness.Model) error {
	if c, ok := m.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("close %s: %w", m.Info().Family, err)
		}
	}
	return nil
}

// contextLimit returns the maximum context of a configured instance (0
// for none).
func contextLimit(m harness.Model) int { return harness.ContextOf(m) }

// positions returns the positions p needs of a model's context and the
// env's SeqLen for it, given the model's harness.SourceMode: a joined
// translation reads the source, the start token and the output but its
// last token; a conditional model's longest row is its source or its
// decoder row; an image point reads the image's row of pixels.
func positions(p Point, sourceMode string) (need, seqLen int) {
	switch {
	case isImage(p.Kind):
		return p.SeqLen, p.SeqLen
	case p.Kind == KindGenerate:
		return p.Prompt + p.Length - 1, p.Prompt
	case p.Kind == KindTranslate && sourceMode == "joined":
		return p.Source + p.Length, p.Source + p.Length
	case p.Kind == KindTranslate:
		return max(p.Source, p.Length), p.Length
	}
	return max(p.SeqLen, p.Source), p.SeqLen
}

// measure runs one point: the dry run on CountBackend for FLOPs, then
// warm-up and the timed repeats on the real backend (Config.Repeats, or
// Config.Translate.Repeats decodes for a translate point). A point beyond
// the model's context, or with a source its own check (EnvChecker)
// refuses, is skipped with the reason; so is a conditional model's
// generation point, which translate points replace, and its image points.
// An image point is also skipped when the model's own check refuses the
// image's rows.
func (r *runner) measure(ctx context.Context, spec *harness.ModelSpec, p Point) (Point, error) {
	run, p, err := r.start(ctx, spec, p)
	if err != nil || run == nil {
		return p, err
	}
	return run.complete(ctx)
}

// start prepares p's measurement: the checks that may skip it (run nil,
// p.Skipped set), its FLOPs, the model set up on the real backend and
// its warm-up runs, with memory sampled from before the set-up.
func (r *runner) start(ctx context.Context, spec *harness.ModelSpec, p Point) (_ *pointRun, _ Point, err error) {
	inst, err := configured(spec)
	if err != nil {
		return nil, p, err
	}
	sourceMode := harness.SourceMode(inst)
	if p.Kind == KindGenerate && conditional(inst) {
		p.Skipped = "conditional model: see the translate points"
		return nil, p, nil
	}
	if isImage(p.Kind) && conditional(inst) {
		p.Skipped = "conditional model: image points need a language model over the pixel rows"
		return nil, p, nil
	}
	need, seqLen := positions(p, sourceMode)
	if limit := contextLimit(inst); limit > 0 && need > limit {
		p.Skipped = fmt.Sprintf("needs %d positions, context is %d", need, limit)
		if isImage(p.Kind) {
			p.Skipped = fmt.Sprintf("a %d×%d image is a row of %d pixels, context is %d", p.Side, p.Side, need, limit)
		}
		return nil, p, nil
	}
	// Conditional models bound their sources and decoder rows in their
	// own check (no ContextLimiter): a point beyond them is skipped with
	// the plugin's reasons, as one beyond a context is.
	if ec, ok := inst.(harness.EnvChecker); ok && (p.Source > 0 || isImage(p.Kind)) {
		if errs := ec.CheckEnv(r.pointEnv(p, r.opt.Backend, seqLen)); len(errs) > 0 {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			p.Skipped = "refused by the model's check: " + strings.Join(msgs, "; ")
			return nil, p, nil
		}
	}
	if fd, ok := inst.(harness.FLOPsDeclarer); ok {
		declaredFLOPs(&p, fd)
	} else if err := r.countFLOPs(ctx, spec, &p, seqLen); err != nil || p.Skipped != "" {
		return nil, p, err
	}

	run := &pointRun{r: r, p: p, repeats: r.repeats(p), mon: startMemory(), stats: map[string]float64{}}
	if run.m, err = r.newModel(ctx, spec, r.pointEnv(p, r.opt.Backend, seqLen)); err != nil {
		run.mon.finish()
		return nil, p, err
	}
	op, why, err := r.operation(run.m, p)
	if err != nil || why != "" {
		p.Skipped = why
		return nil, p, run.close(err)
	}
	run.op = op
	for range r.opt.Config.Warmup {
		if _, err := op(ctx, nil); err != nil {
			return nil, p, run.close(err)
		}
	}
	return run, p, nil
}

// countFLOPs sets p's FLOPs per token from the same operation run on
// CountBackend (the model set up afresh there, then closed). A
// translation that fails there (its decoder refuses the zero
// distributions) is timed all the same, its FLOPs unknown (FLOPsNote).
func (r *runner) countFLOPs(ctx context.Context, spec *harness.ModelSpec, p *Point, seqLen int) error {
	countErr := func(err error) error {
		if p.Kind != KindTranslate {
			return fmt.Errorf("counting FLOPs: %w", err)
		}
		p.FLOPsNote = fmt.Sprintf("FLOPs not counted: the dry run on the count backend failed: %v", err)
		return nil
	}
	cb := &CountBackend{}
	dry, err := r.newModel(ctx, spec, r.pointEnv(*p, cb, seqLen))
	switch {
	case errors.Is(err, errSetup):
		if err := countErr(err); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		op, why, err := r.operation(dry, *p)
		if err != nil || why != "" {
			p.Skipped = why
			return errors.Join(err, closeModel(dry))
		}
		tokens, err := op(ctx, nil)
		if err != nil {
			if err := countErr(err); err != nil {
				return errors.Join(err, closeModel(dry))
			}
		} else {
			p.FLOPsPerToken = cb.FLOPs() / float64(tokens)
		}
		if err := closeModel(dry); err != nil {
			return err
		}
	}
	return nil
}

// declaredFLOPs sets p's FLOPs from a model that cannot be counted (it
// does not run on the backend): its own figure, or unknown with a note,
// never a counted 0.
func declaredFLOPs(p *Point, fd harness.FLOPsDeclarer) {
	if f, known := fd.FLOPsPerToken(); known {
		p.FLOPsPerToken = f
		return
	}
	p.FLOPsNote = "FLOPs unknown: the model does not run on arbench's backend and declares none"
}

// translationStats sets p's Passes, Stats, Acceptance and TokensPerVerify
// from the totals of repeats translations.
func translationStats(p *Point, repeats, passes int, stats map[string]float64) {
	p.Passes = float64(passes) / float64(repeats)
	if len(stats) == 0 {
		return
	}
	p.Stats = map[string]float64{}
	for k, v := range stats {
		p.Stats[k] = v / float64(repeats)
	}
	if d, ok := p.Stats["drafted"]; ok && d > 0 {
		if a, ok := p.Stats["accepted"]; ok {
			rate := a / d
			p.Acceptance = &rate
		}
	}
	if v, ok := p.Stats["verify_calls"]; ok && v > 0 {
		tpv := float64(p.Length) / v
		p.TokensPerVerify = &tpv
	}
}

// repeats returns the number of timed repeats of p: Config.Repeats, or
// the translate or image section's.
func (r *runner) repeats(p Point) int {
	switch {
	case p.Kind == KindTranslate:
		return r.opt.Config.Translate.Repeats
	case isImage(p.Kind):
		return r.opt.Config.Image.Repeats
	}
	return r.opt.Config.Repeats
}

// timing receives the time to the first token and of every later step of
// a generation, in seconds; for a translation, first is the time of the
// whole decode and translation what it returned; for sampling images,
// first is the time of the whole batch and path the Decoder's path.
type timing struct {
	first       float64
	steps       []float64
	translation *harness.Translation
	path        string
}

// opFunc performs a point's operation once and returns the tokens it
// processed; generation and translation record their timing when t is
// not nil.
type opFunc func(ctx context.Context, t *timing) (int, error)

// operation returns the point's operation on m, or why m cannot do it.
func (r *runner) operation(m harness.Model, p Point) (opFunc, string, error) {
	rng := rand.New(rand.NewPCG(r.opt.Seed, uint64(p.Batch)<<32|uint64(p.SeqLen+p.Length)))
	vocab := r.opt.Config.Vocab
	// A conditional model's Gradients and LogProbs refuse batches without
	// a source.
	batches := func() []harness.Batch {
		if conditional(m) {
			return randomConditional(rng, vocab, p.Batch, cmp.Or(p.Source, p.SeqLen), p.SeqLen)
		}
		return randomBatches(rng, vocab, p.Batch, p.SeqLen)
	}
	switch p.Kind {
	case KindTrain:
		if !harness.Trainable(m) {
			return nil, "not trainable (no harness.Trainer or StepTrainer)", nil
		}
		if st, ok := m.(harness.StepTrainer); ok {
			return ownStepOp(st, batches()), "", nil
		}
		tr := m.(harness.Trainer)
		return gradientsOp(m, tr, batches(), nn.NewAdam(m.Params(), nn.DefaultAdamConfig())), "", nil
	case KindScore:
		sc, ok := harness.ScorerOf(m)
		if !ok {
			return nil, "cannot score (no harness.Scorer)", nil
		}
		return logProbsOp(sc, batches()), "", nil
	case KindImageSample, KindImageTrain, KindImageScore:
		return r.imageOperation(m, p, rng)
	case KindGenerate:
		prompts := make([][]int, p.Batch)
		for i := range prompts {
			prompts[i] = randomRow(rng, vocab, p.Prompt)
		}
		dec, why, err := decoder(m, p)
		if dec == nil {
			return nil, why, err
		}
		return func(ctx context.Context, t *timing) (int, error) {
			_, err := generate(ctx, dec, prompts, p.Length, t)
			return len(prompts) * p.Length, err
		}, "", nil
	case KindTranslate:
		if harness.SourceMode(m) == "" {
			return nil, "reads no source (no harness.Conditioner or SourceJoiner)", nil
		}
		sources := make([][]int, p.Batch)
		for i := range sources {
			sources[i] = randomContent(rng, vocab, p.Source)
		}
		opt := harness.TranslateOptions{Start: startToken, End: endToken, Length: p.Length}
		if ds, ok := m.(harness.DecodeSweeper); ok {
			for _, s := range ds.DecodeSettings() {
				if s.Name == p.Mode {
					opt.Setting = s.Name
				}
			}
			if opt.Setting == "" && p.Mode != ModeGreedy {
				return nil, "", fmt.Errorf("no decoding setting %q", p.Mode)
			}
		}
		return func(ctx context.Context, t *timing) (int, error) {
			start := time.Now()
			tr, err := harness.Translate(ctx, m, sources, opt)
			if err != nil {
				return 0, err
			}
			if t != nil {
				t.first, t.translation = time.Since(start).Seconds(), tr
			}
			return p.Batch * p.Length, nil
		}, "", nil
	}
	return nil, "", fmt.Errorf("unknown kind %q", p.Kind)
}

// gradientsOp returns an operation that computes the gradients of the
// batches in turn (harness.Trainer's Gradients, refusing a NaN loss) and,
// with an optimiser, clips them to norm 1 and takes its step.
func gradientsOp(m harness.Model, tr harness.Trainer, batches []harness.Batch, opt *nn.Adam) opFunc {
	step := 0
	return func(ctx context.Context, _ *timing) (int, error) {
		b := batches[step%len(batches)]
		step++
		loss, err := tr.Gradients(ctx, b, uint64(step))
		if err != nil {
			return 0, err
		}
		if math.IsNaN(loss) {
			return 0, errors.New("training loss is NaN")
		}
		if opt != nil {
			nn.ClipGradNorm(m.Params(), 1)
			opt.Step()
		}
		return b.Tokens(), nil
	}
}

// ownStepOp returns an operation that runs a StepTrainer's own training
// step on the batches in turn, at Adam's default learning rate and clip 1
// (what gradientsOp applies), its update included.
func ownStepOp(st harness.StepTrainer, batches []harness.Batch) opFunc {
	step := 0
	lr := nn.DefaultAdamConfig().LR
	return func(ctx context.Context, _ *timing) (int, error) {
		b := batches[step%len(batches)]
		step++
		loss, err := st.TrainStep(ctx, b, harness.StepInfo{Step: step, LR: lr, Clip: 1, Seed: uint64(step)})
		if err != nil {
			return 0, err
		}
		if math.IsNaN(loss) {
			return 0, errors.New("training loss is NaN")
		}
		return b.Tokens(), nil
	}
}

// logProbsOp returns an operation that scores the batches in turn
// (harness.Scorer's LogProbs).
func logProbsOp(sc harness.Scorer, batches []harness.Batch) opFunc {
	step := 0
	return func(ctx context.Context, _ *timing) (int, error) {
		b := batches[step%len(batches)]
		step++
		if _, err := sc.LogProbs(ctx, b); err != nil {
			return 0, err
		}
		return b.Tokens(), nil
	}
}

func randomRow(rng *rand.Rand, vocab, n int) []int {
	row := make([]int, n)
	for i := range row {
		row[i] = rng.IntN(vocab)
	}
	return row
}

// randomContent returns n content tokens, uniform in [firstContent,
// vocab) (in [1, vocab) for a vocabulary without content ids): never the
// source padding, nor, when the vocabulary allows, the start or end token.
func randomContent(rng *rand.Rand, vocab, n int) []int {
	lo := firstContent
	if vocab <= lo {
		lo = 1
	}
	row := make([]int, n)
	for i := range row {
		row[i] = lo + rng.IntN(vocab-lo)
	}
	return row
}

// randomConditional returns a few conditional batches as tasks/seq2seq
// frames them, without padding: sources of S content tokens, decoder
// inputs the start token then T−1 target tokens, targets those tokens
// then the end token.
func randomConditional(rng *rand.Rand, vocab, B, S, T int) []harness.Batch {
	out := make([]harness.Batch, 4)
	for k := range out {
		b := harness.Batch{Source: make([][]int, B), Inputs: make([][]int, B), Targets: make([][]int, B)}
		for i := range B {
			b.Source[i] = randomContent(rng, vocab, S)
			tgt := randomContent(rng, vocab, T-1)
			b.Inputs[i] = append([]int{startToken}, tgt...)
			b.Targets[i] = append(tgt, endToken)
		}
		out[k] = b
	}
	return out
}

// randomBatches returns a few language-modelling batches of random tokens
// (targets are the inputs shifted by one).
func randomBatches(rng *rand.Rand, vocab, B, T int) []harness.Batch {
	out := make([]harness.Batch, 4)
	for k := range out {
		b := harness.Batch{Inputs: make([][]int, B), Targets: make([][]int, B)}
		for i := range B {
			row := randomRow(rng, vocab, T+1)
			b.Inputs[i], b.Targets[i] = row[:T], row[1:]
		}
		out[k] = b
	}
	return out
}

// decoder returns the harness.Decoder of a generation point, or why m
// cannot decode in its mode.
func decoder(m harness.Model, p Point) (*harness.Decoder, string, error) {
	var mode harness.DecodeMode
	switch p.Mode {
	case ModeCached:
		mode = harness.DecodeCached
	case ModeRefeed:
		mode = harness.DecodeRefeed
	default:
		return nil, "", fmt.Errorf("unknown generation mode %q", p.Mode)
	}
	dec, err := harness.NewDecoder(m, p.Prompt+p.Length-1, harness.DecodeOptions{Mode: mode})
	if errors.Is(err, harness.ErrCannotDecode) {
		return nil, err.Error(), nil
	}
	return dec, "", err
}

// generate runs greedy decoding (harness.Argmax) of length tokens per row
// and returns the generated tokens of every row.
func generate(ctx context.Context, dec *harness.Decoder, prompts [][]int, length int, t *timing) ([][]int, error) {
	out := make([][]int, len(prompts))
	tokens := make([]int, len(prompts))
	pick := func(logp [][]float32) {
		for i, row := range logp {
			tokens[i] = harness.Argmax(row)
			out[i] = append(out[i], tokens[i])
		}
	}
	start := time.Now()
	logp, err := dec.Start(ctx, prompts)
	if err != nil {
		return nil, err
	}
	pick(logp)
	if t != nil {
		t.first = time.Since(start).Seconds()
		t.steps = make([]float64, 0, length-1)
	}
	for range length - 1 {
		s := time.Now()
		if logp, err = dec.Step(ctx, tokens); err != nil {
			return nil, err
		}
		pick(logp)
		if t != nil {
			t.steps = append(t.steps, time.Since(s).Seconds())
		}
	}
	return out, nil
}
