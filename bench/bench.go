// Package bench measures how fast arbench's models train, score and
// generate on a backend: `arbench bench` and the `bench:` section of an
// experiment (harness.BenchConfig).
//
// Every point of a sweep is measured on a freshly set-up model after
// untimed warm-up runs (which compile the backend's executables and fill
// caches), over several timed repeats reported as median and interquartile
// range. Generation is timed token by token: time to first token (the
// prompt's forward pass), per-token latency percentiles and tokens/s.
// Each point also reports its peak memory (process RSS and Go heap), the
// matrix-product FLOPs per token the model executes (counted by running
// the same operation on CountBackend; formulas in flops.go), the achieved
// GFLOP/s and their fraction of the matrix-multiply ceiling measured on
// the same backend at startup.
//
// Models are fed uniformly random token ids: the speed of these models
// does not depend on the data. Everything goes through nn.Backend, so the
// same sweep runs on any backend (`-backend gotch`); memory is the host
// process's (a GPU backend's device memory is not measured).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"time"

	"arbench/harness"
	"arbench/nn"
)

// Kinds of measurement.
const (
	KindTrain    = "train"
	KindScore    = "score"
	KindGenerate = "generate"
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
	// model (the sweep of Config.Generate.Batches × Lengths).
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
	// Mode is ModeCached or ModeRefeed for generation.
	Mode  string `json:"mode,omitempty"`
	Batch int    `json:"batch"`
	// SeqLen is the tokens per row of a training or scoring batch.
	SeqLen int `json:"seq_len,omitempty"`
	// Prompt and Length are the prompt and generated tokens per row.
	Prompt int `json:"prompt,omitempty"`
	Length int `json:"length,omitempty"`
	// Skipped says why the point was not measured (e.g. beyond the
	// model's context); the measurements are then empty.
	Skipped string `json:"skipped,omitempty"`

	// TokensPerSec has one value per repeat: tokens trained, scored or
	// generated (all rows) per second.
	TokensPerSec Summary `json:"tokens_per_sec"`
	// StepSeconds is the time of one training or scoring step.
	StepSeconds *Summary `json:"step_seconds,omitempty"`
	// TTFT is the time to the first generated token (the prompt's pass).
	TTFT *Summary `json:"ttft_seconds,omitempty"`
	// Latency pools the per-token latencies of every repeat's steps after
	// the first token; LatencyRepeats has them per repeat.
	Latency        *Latency  `json:"token_latency_seconds,omitempty"`
	LatencyRepeats []Latency `json:"token_latency_per_repeat,omitempty"`

	// FLOPsPerToken is the matrix-product FLOPs executed per token (see
	// CountBackend); GFLOPS is FLOPsPerToken × median tokens/s and
	// CeilingFraction its ratio to Report.Ceiling.Best.
	FLOPsPerToken   float64 `json:"flops_per_token"`
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
	Ceiling    Ceiling              `json:"ceiling"`
	Points     []Point              `json:"points"`
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
	rep := &Report{
		Name: opt.Name, Backend: opt.Backend.Name(), Device: opt.Backend.Device(),
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPU: cpuName(),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), NoCache: opt.NoCache,
		Start: time.Now().UTC(), Config: opt.Config, Models: opt.Models,
	}
	defer func() { rep.End = time.Now().UTC() }()
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
	for i := range opt.Models {
		for _, pt := range r.plan(&opt.Models[i]) {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			p, err := r.measure(ctx, &opt.Models[i], pt)
			if err != nil {
				return rep, fmt.Errorf("bench: %s %s: %w", opt.Models[i].Label, describe(pt), err)
			}
			rep.Points = append(rep.Points, p)
			logf(opt.Log, "%s", summaryLine(p))
		}
	}
	return rep, nil
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
// shared points once).
func (r *runner) plan(spec *harness.ModelSpec) []Point {
	c := r.opt.Config
	base := Point{Model: spec.Label, Family: spec.Name}
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
		return pts
	}
	gen(ModeCached, c.Generate.Batches, c.Generate.Lengths)
	if m, err := harness.NewModel(spec.Name); err == nil {
		if _, ok := m.(harness.KVCacher); ok {
			gen(ModeRefeed, c.Generate.RefeedBatches, c.Generate.RefeedLengths)
		}
	}
	return pts
}

func describe(p Point) string {
	if p.Kind == KindGenerate {
		return fmt.Sprintf("generate/%s b=%d len=%d", p.Mode, p.Batch, p.Length)
	}
	return fmt.Sprintf("%s b=%d T=%d", p.Kind, p.Batch, p.SeqLen)
}

// newModel makes a set-up instance of spec for env. It first makes the
// experiment check's checks (harness.CheckModel: the plugin's check of env
// and its memory estimate), so that a configuration the machine cannot
// hold is refused before Setup allocates it; a model whose Setup fails is
// closed.
func (r *runner) newModel(ctx context.Context, spec *harness.ModelSpec, env harness.Env) (harness.Model, error) {
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
	if err := harness.CheckModel(m, env); err != nil {
		return nil, err
	}
	if err := m.Setup(ctx, env); err != nil {
		return nil, errors.Join(fmt.Errorf("set up on backend %s: %w", env.Backend.Name(), err), closeModel(m))
	}
	return m, nil
}

// pointEnv is the environment of p's model on backend: rows of seqLen
// tokens (a generation's prompt), given Batch rows at once in training and
// EvalBatch rows when scoring or generating, for the memory estimate.
func (r *runner) pointEnv(p Point, backend nn.Backend, seqLen int) harness.Env {
	env := harness.Env{Backend: backend, Vocab: r.opt.Config.Vocab, SeqLen: seqLen, Seed: r.opt.Seed}
	if p.Kind == KindTrain {
		env.Batch = p.Batch
	} else {
		env.EvalBatch = p.Batch
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

// contextLimit returns the model's maximum context (0 for none), read
// from an unconfigured instance's capability and the spec's config.
func contextLimit(spec *harness.ModelSpec) int {
	m, err := harness.NewModel(spec.Name)
	if err != nil {
		return 0
	}
	cl, ok := m.(harness.ContextLimiter)
	if !ok {
		return 0
	}
	if spec.Config != nil {
		dst, src := reflect.ValueOf(m.Config()), reflect.ValueOf(spec.Config)
		if dst.Type() == src.Type() && dst.Kind() == reflect.Pointer {
			dst.Elem().Set(src.Elem())
		}
	}
	return cl.MaxContext()
}

// measure runs one point: the dry run on CountBackend for FLOPs, then
// warm-up and the timed repeats on the real backend.
func (r *runner) measure(ctx context.Context, spec *harness.ModelSpec, p Point) (_ Point, err error) {
	limit := contextLimit(spec)
	need := p.SeqLen
	if p.Kind == KindGenerate {
		need = p.Prompt + p.Length - 1
	}
	if limit > 0 && need > limit {
		p.Skipped = fmt.Sprintf("needs %d positions, context is %d", need, limit)
		return p, nil
	}
	seqLen := p.SeqLen
	if p.Kind == KindGenerate {
		seqLen = p.Prompt
	}
	// FLOPs: the same operation on CountBackend.
	cb := &CountBackend{}
	dry, err := r.newModel(ctx, spec, r.pointEnv(p, cb, seqLen))
	if err != nil {
		return p, err
	}
	op, why, err := r.operation(dry, p)
	if err != nil || why != "" {
		p.Skipped = why
		return p, errors.Join(err, closeModel(dry))
	}
	tokens, err := op(ctx, nil)
	if err != nil {
		return p, errors.Join(fmt.Errorf("counting FLOPs: %w", err), closeModel(dry))
	}
	p.FLOPsPerToken = cb.FLOPs() / float64(tokens)
	if err := closeModel(dry); err != nil {
		return p, err
	}
	dry, op = nil, nil // let startMemory's collection free them

	mon := startMemory()
	m, err := r.newModel(ctx, spec, r.pointEnv(p, r.opt.Backend, seqLen))
	if err != nil {
		mon.finish()
		return p, err
	}
	defer func() { err = errors.Join(err, closeModel(m)) }()
	if op, _, err = r.operation(m, p); err != nil {
		mon.finish()
		return p, err
	}
	for range r.opt.Config.Warmup {
		if _, err := op(ctx, nil); err != nil {
			mon.finish()
			return p, err
		}
	}
	var rates, steps, ttft, lat []float64
	for range r.opt.Config.Repeats {
		if p.Kind == KindGenerate {
			var t timing
			if _, err := op(ctx, &t); err != nil {
				mon.finish()
				return p, err
			}
			total := t.first
			for _, s := range t.steps {
				total += s
			}
			rates = append(rates, float64(p.Batch*p.Length)/total)
			ttft = append(ttft, t.first)
			lat = append(lat, t.steps...)
			p.LatencyRepeats = append(p.LatencyRepeats, Latencies(t.steps))
			continue
		}
		n := 0
		var tok int
		start := time.Now()
		for n == 0 || time.Since(start).Seconds() < r.opt.Config.MinSeconds {
			if tok, err = op(ctx, nil); err != nil {
				mon.finish()
				return p, err
			}
			n++
		}
		el := time.Since(start).Seconds()
		rates = append(rates, float64(n*tok)/el)
		steps = append(steps, el/float64(n))
	}
	p.Memory = mon.finish()
	p.TokensPerSec = Summarize(rates)
	if p.Kind == KindGenerate {
		s, l := Summarize(ttft), Latencies(lat)
		p.TTFT, p.Latency = &s, &l
	} else {
		s := Summarize(steps)
		p.StepSeconds = &s
	}
	p.GFLOPS = p.FLOPsPerToken * p.TokensPerSec.Median / 1e9
	if r.ceiling > 0 {
		p.CeilingFraction = p.GFLOPS / r.ceiling
	}
	return p, nil
}

// timing receives the time to the first token and of every later step of
// a generation, in seconds.
type timing struct {
	first float64
	steps []float64
}

// opFunc performs a point's operation once and returns the tokens it
// processed; generation records its timing when t is not nil.
type opFunc func(ctx context.Context, t *timing) (int, error)

// operation returns the point's operation on m, or why m cannot do it.
func (r *runner) operation(m harness.Model, p Point) (opFunc, string, error) {
	rng := rand.New(rand.NewPCG(r.opt.Seed, uint64(p.Batch)<<32|uint64(p.SeqLen+p.Length)))
	vocab := r.opt.Config.Vocab
	switch p.Kind {
	case KindTrain:
		tr, ok := m.(harness.Trainer)
		if !ok {
			return nil, "not trainable (no harness.Trainer)", nil
		}
		batches := randomBatches(rng, vocab, p.Batch, p.SeqLen)
		opt := nn.NewAdam(m.Params(), nn.DefaultAdamConfig())
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
			nn.ClipGradNorm(m.Params(), 1)
			opt.Step()
			return b.Tokens(), nil
		}, "", nil
	case KindScore:
		sc, ok := m.(harness.Scorer)
		if !ok {
			return nil, "cannot score (no harness.Scorer)", nil
		}
		batches := randomBatches(rng, vocab, p.Batch, p.SeqLen)
		step := 0
		return func(ctx context.Context, _ *timing) (int, error) {
			b := batches[step%len(batches)]
			step++
			if _, err := sc.LogProbs(ctx, b); err != nil {
				return 0, err
			}
			return b.Tokens(), nil
		}, "", nil
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
	}
	return nil, "", fmt.Errorf("unknown kind %q", p.Kind)
}

func randomRow(rng *rand.Rand, vocab, n int) []int {
	row := make([]int, n)
	for i := range row {
		row[i] = rng.IntN(vocab)
	}
	return row
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
