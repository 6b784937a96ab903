// Package harnesstest provides tiny, fast stand-ins for tests of the
// harness, the reports and the command line: a trainable bigram model, an
// untrainable uniform model, a synthetic task and a backend that compiles
// nothing. Importing it registers them as the model families "fake-lm" and
// "fake-uniform", the task family "fake" and the backend "fake". It must
// only be imported by tests.
package harnesstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"arbench/harness"
	"arbench/nn"
)

// Vocab is the fake task's vocabulary size.
const Vocab = 8

func init() {
	nn.RegisterBackend("fake", func(device string) (nn.Backend, error) {
		if device != "cpu" {
			return nil, fmt.Errorf("fake backend: unsupported device %q", device)
		}
		return backend{device}, nil
	})
	harness.RegisterModel("fake-lm", "bigram test model (harnesstest)", func() harness.Model { return NewLM() })
	harness.RegisterModel("fake-uniform", "uniform test model without a Trainer (harnesstest)", func() harness.Model { return &Uniform{} })
	harness.RegisterModel("fake-ownstep", "uniform test model with its own training step and weights files (harnesstest)", func() harness.Model {
		LastOwnStep = &OwnStep{}
		return LastOwnStep
	})
	harness.RegisterTask("fake", "synthetic counting task (harnesstest)", func() harness.Task { return NewTask() })
}

type backend struct{ device string }

func (backend) Name() string     { return "fake" }
func (b backend) Device() string { return b.device }
func (backend) Compile(nn.Spec, nn.BuildFunc) (nn.Executable, error) {
	return nil, errors.New("fake backend: nothing to compile")
}

// LMConfig configures the fake bigram model. Only Init and Dropout change
// its behaviour; Hidden sizes an unused parameter; the rest exist to test
// strict decoding of nested values.
type LMConfig struct {
	Hidden  int      `yaml:"hidden"`
	Embed   int      `yaml:"embed"`
	Dropout float64  `yaml:"dropout"`
	Init    float64  `yaml:"init"`
	Tags    []string `yaml:"tags"`
	Opts    struct {
		Scale float64 `yaml:"scale"`
	} `yaml:"opts"`
}

// Validate implements harness.Config.
func (c *LMConfig) Validate() []error {
	var errs []error
	if c.Hidden < 1 {
		errs = append(errs, fmt.Errorf("hidden must be >= 1, got %d", c.Hidden))
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		errs = append(errs, fmt.Errorf("dropout must be in [0, 1), got %v", c.Dropout))
	}
	if !(c.Init >= 0) {
		errs = append(errs, fmt.Errorf("init must be >= 0, got %v", c.Init))
	}
	return errs
}

// StepHook is a context key: a func() stored under it is called at the
// start of every LM.Gradients call (tests use it to cancel mid-training).
type StepHook struct{}

// LM is a bigram model: logits W[prev] (parameter "w" [Vocab, Vocab]).
// It implements Trainer, Scorer, Distributioner and Stepper.
type LM struct {
	cfg   LMConfig
	ps    *nn.ParamSet
	w     *nn.Param
	vocab int
}

// NewLM returns an unconfigured LM with default config.
func NewLM() *LM { return &LM{cfg: LMConfig{Hidden: 4, Embed: 2, Init: 0.1}} }

// Config implements harness.Model.
func (m *LM) Config() harness.Config { return &m.cfg }

// Setup implements harness.Model.
func (m *LM) Setup(_ context.Context, env harness.Env) error {
	if env.Backend == nil {
		return errors.New("fake-lm: no backend")
	}
	m.vocab = env.Vocab
	m.ps = nn.NewParamSet()
	m.w = m.ps.Add("w", env.Vocab, env.Vocab)
	m.ps.Add("extra", m.cfg.Hidden)
	nn.InitUniform(m.w, nn.NewRNG(env.Seed), m.cfg.Init)
	return nil
}

// Params implements harness.Model.
func (m *LM) Params() *nn.ParamSet { return m.ps }

// Info implements harness.Model.
func (m *LM) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: "fake-lm", Params: m.ps.Count()}
}

func (m *LM) logSoftmax(prev int) []float64 {
	row := m.w.Data[prev*m.vocab : (prev+1)*m.vocab]
	mx := math.Inf(-1)
	for _, x := range row {
		mx = math.Max(mx, float64(x))
	}
	var s float64
	for _, x := range row {
		s += math.Exp(float64(x) - mx)
	}
	out := make([]float64, m.vocab)
	for v, x := range row {
		out[v] = float64(x) - mx - math.Log(s)
	}
	return out
}

// Gradients implements harness.Trainer: mean cross-entropy over the targets
// kept by a dropout mask drawn from seed (nn.DropoutMask).
func (m *LM) Gradients(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	if hook, ok := ctx.Value(StepHook{}).(func()); ok {
		hook()
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.ps.ZeroGrad()
	n := 0
	for _, row := range b.Targets {
		n += len(row)
	}
	mask := nn.DropoutMask(seed, 0, n, float32(m.cfg.Dropout))
	var loss float64
	k := 0
	type pos struct{ prev, tgt int }
	var kept []pos
	for i, row := range b.Targets {
		for t, tgt := range row {
			keep := mask[k] != 0
			k++
			if tgt < 0 || !keep {
				continue
			}
			kept = append(kept, pos{b.Inputs[i][t], tgt})
		}
	}
	count := len(kept)
	if count == 0 {
		return 0, nil
	}
	for _, p := range kept {
		lp := m.logSoftmax(p.prev)
		loss -= lp[p.tgt]
		for v := range lp {
			g := math.Exp(lp[v])
			if v == p.tgt {
				g--
			}
			m.w.Grad[p.prev*m.vocab+v] += float32(g / float64(count))
		}
	}
	return loss / float64(count), nil
}

// LogProbs implements harness.Scorer.
func (m *LM) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	out := make([][]float64, len(b.Inputs))
	for i, row := range b.Inputs {
		out[i] = make([]float64, len(row))
		for t, prev := range row {
			if tgt := b.Targets[i][t]; tgt >= 0 {
				out[i][t] = m.logSoftmax(prev)[tgt]
			}
		}
	}
	return out, ctx.Err()
}

// NextLogProbs implements harness.Distributioner.
func (m *LM) NextLogProbs(ctx context.Context, inputs [][]int) ([][][]float32, error) {
	out := make([][][]float32, len(inputs))
	for i, row := range inputs {
		for _, prev := range row {
			out[i] = append(out[i], m.dist(prev))
		}
	}
	return out, ctx.Err()
}

func (m *LM) dist(prev int) []float32 {
	lp := m.logSoftmax(prev)
	out := make([]float32, len(lp))
	for v, x := range lp {
		out[v] = float32(x)
	}
	return out
}

type lmState struct{ n int }

func (s *lmState) Len() int { return s.n }

// Start implements harness.Stepper.
func (m *LM) Start(ctx context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	out := make([][]float32, len(prompts))
	for i, p := range prompts {
		out[i] = m.dist(p[len(p)-1])
	}
	return &lmState{n: len(prompts[0])}, out, ctx.Err()
}

// Step implements harness.Stepper.
func (m *LM) Step(ctx context.Context, s harness.State, tokens []int) ([][]float32, error) {
	s.(*lmState).n++
	out := make([][]float32, len(tokens))
	for i, t := range tokens {
		out[i] = m.dist(t)
	}
	return out, ctx.Err()
}

// UniformConfig configures Uniform (nothing to set).
type UniformConfig struct{}

// Validate implements harness.Config.
func (*UniformConfig) Validate() []error { return nil }

// Uniform assigns probability 1/Vocab to every token. It has no parameters
// and no Trainer.
type Uniform struct {
	cfg   UniformConfig
	vocab int
}

// Config implements harness.Model.
func (u *Uniform) Config() harness.Config { return &u.cfg }

// Setup implements harness.Model.
func (u *Uniform) Setup(_ context.Context, env harness.Env) error { u.vocab = env.Vocab; return nil }

// Params implements harness.Model.
func (u *Uniform) Params() *nn.ParamSet { return nil }

// Info implements harness.Model.
func (u *Uniform) Info() harness.ModelInfo { return harness.ModelInfo{Family: "fake-uniform"} }

// LogProbs implements harness.Scorer.
func (u *Uniform) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	out := make([][]float64, len(b.Inputs))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
		for t, tgt := range row {
			if tgt >= 0 {
				out[i][t] = -math.Log(float64(u.vocab))
			}
		}
	}
	return out, nil
}

// TaskConfig configures the fake task.
type TaskConfig struct {
	SeqLen int     `yaml:"seq_len"`
	Length int     `yaml:"length"`
	Noise  float64 `yaml:"noise"`
	// Initial makes EvaluateInitial measure nll_init, the test loss before
	// training.
	Initial bool `yaml:"initial,omitempty"`
}

// Validate implements harness.Config.
func (c *TaskConfig) Validate() []error {
	var errs []error
	if c.SeqLen < 1 {
		errs = append(errs, fmt.Errorf("seq_len must be >= 1, got %d", c.SeqLen))
	}
	if c.Length < 10*(c.SeqLen+1) {
		errs = append(errs, fmt.Errorf("length must be >= 10*(seq_len+1) = %d, got %d", 10*(c.SeqLen+1), c.Length))
	}
	if !(c.Noise >= 0 && c.Noise <= 1) {
		errs = append(errs, fmt.Errorf("noise must be in [0, 1], got %v", c.Noise))
	}
	return errs
}

// Task is a synthetic counting sequence x[t+1] = x[t]+1 mod Vocab, replaced
// by a uniform token with probability Noise; with a data file, the file's
// bytes mod Vocab. It is split 80/10/10 into train, valid and test.
type Task struct {
	cfg               TaskConfig
	name              string
	train, valid, tst []int
	refs              []harness.DatasetRef
}

// NewTask returns an unprepared task with default config.
func NewTask() *Task { return &Task{cfg: TaskConfig{SeqLen: 8, Length: 400, Noise: 0.1}} }

// Config implements harness.Task.
func (t *Task) Config() harness.Config { return &t.cfg }

// Prepare implements harness.Task.
func (t *Task) Prepare(ctx context.Context, env harness.TaskEnv) error {
	t.name = "fake"
	if env.Variant != "" {
		t.name += "/" + env.Variant
	}
	var seq []int
	if env.DataFile != "" {
		b, err := os.ReadFile(env.DataFile)
		if err != nil {
			return fmt.Errorf("fake task: %w", err)
		}
		sum := sha256.Sum256(b)
		t.refs = []harness.DatasetRef{{Name: filepath.Base(env.DataFile), Path: env.DataFile, SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(b))}}
		for _, c := range b {
			seq = append(seq, int(c)%Vocab)
		}
		if len(seq) < 10*(t.cfg.SeqLen+1) {
			return fmt.Errorf("fake task: %s has %d bytes, need %d", env.DataFile, len(seq), 10*(t.cfg.SeqLen+1))
		}
	} else {
		rng := rand.New(rand.NewPCG(env.Seed, 7))
		x := 0
		for range t.cfg.Length {
			seq = append(seq, x)
			if rng.Float64() < t.cfg.Noise {
				x = rng.IntN(Vocab)
			} else {
				x = (x + 1) % Vocab
			}
		}
	}
	n := len(seq)
	a, b := n*8/10, n*9/10
	t.train, t.valid, t.tst = seq[:a], seq[a:b], seq[b:]
	return ctx.Err()
}

// Info implements harness.Task.
func (t *Task) Info() harness.TaskInfo {
	return harness.TaskInfo{Name: t.name, Kind: "synthetic", Vocab: Vocab, SeqLen: t.cfg.SeqLen, HeadlineMetric: "bits_per_token"}
}

// Datasets implements harness.Task.
func (t *Task) Datasets() []harness.DatasetRef { return t.refs }

// TrainBatch implements harness.Task: random windows of the train split.
func (t *Task) TrainBatch(rng *rand.Rand, batch int) harness.Batch {
	var b harness.Batch
	T := t.cfg.SeqLen
	for range batch {
		s := rng.IntN(len(t.train) - T)
		b.Inputs = append(b.Inputs, append([]int(nil), t.train[s:s+T]...))
		b.Targets = append(b.Targets, append([]int(nil), t.train[s+1:s+T+1]...))
	}
	return b
}

// windows cuts seq into disjoint windows.
func (t *Task) windows(seq []int) harness.Batch {
	var b harness.Batch
	T := t.cfg.SeqLen
	for s := 0; s+T+1 <= len(seq); s += T {
		b.Inputs = append(b.Inputs, seq[s:s+T])
		b.Targets = append(b.Targets, seq[s+1:s+T+1])
	}
	return b
}

func meanNLL(ctx context.Context, m harness.Model, b harness.Batch) (float64, []float64, error) {
	sc, ok := m.(harness.Scorer)
	if !ok {
		return 0, nil, fmt.Errorf("fake task: model %s is not a Scorer", m.Info().Family)
	}
	lp, err := sc.LogProbs(ctx, b)
	if err != nil {
		return 0, nil, err
	}
	var total float64
	per := make([]float64, len(lp))
	for i, row := range lp {
		for _, x := range row {
			per[i] -= x
		}
		total += per[i]
		per[i] /= float64(len(row))
	}
	return total / float64(b.Tokens()), per, nil
}

// ValidLoss implements harness.Task.
func (t *Task) ValidLoss(ctx context.Context, m harness.Model) (float64, error) {
	l, _, err := meanNLL(ctx, m, t.windows(t.valid))
	return l, err
}

// Evaluate implements harness.Task: nll (nats/token), bits_per_token and
// perplexity on the test split, one sample per window.
func (t *Task) Evaluate(ctx context.Context, m harness.Model) (*harness.Evaluation, error) {
	b := t.windows(t.tst)
	l, per, err := meanNLL(ctx, m, b)
	if err != nil {
		return nil, err
	}
	ev := &harness.Evaluation{Metrics: []harness.Metric{
		{Name: "bits_per_token", Value: l / math.Ln2, Unit: "bits/token", Split: "test", Params: map[string]any{"windows": len(b.Inputs)}},
		{Name: "nll", Value: l, Unit: "nats/token", Split: "test"},
		{Name: "perplexity", Value: math.Exp(l), Unit: "", Split: "test"},
	}}
	for i, x := range per {
		ev.Samples = append(ev.Samples, harness.Sample{"window": i, "nll": x})
	}
	return ev, nil
}

var _ harness.InitialEvaluator = (*Task)(nil)

// EvaluateInitial implements harness.InitialEvaluator: with the initial
// option, the test loss before training as nll_init, and a one-point series
// labelled "init".
func (t *Task) EvaluateInitial(ctx context.Context, m harness.Model) (*harness.Evaluation, error) {
	if !t.cfg.Initial {
		return &harness.Evaluation{}, nil
	}
	l, _, err := meanNLL(ctx, m, t.windows(t.tst))
	if err != nil {
		return nil, err
	}
	return &harness.Evaluation{
		Metrics: []harness.Metric{{Name: "nll_init", Value: l, Unit: "nats/token", Split: "test"}},
		Series: []harness.Series{{Name: "nll_vs_training", Label: "init", XName: "steps", Unit: "nats/token",
			Split: "test", X: []float64{0}, Y: []float64{l}}},
	}, nil
}

// OwnStep is Uniform with a training step of its own (harness.StepTrainer,
// recording what each step is told in Steps), its own weights files
// (harness.WeightsIO: the text "ownstep N" for N steps taken) and no
// determinism (harness.DeterminismReporter false): the contract of an
// external plugin, in process.
type OwnStep struct {
	Uniform
	// Steps are the StepInfos of every TrainStep call, in order.
	Steps []harness.StepInfo
	// Loaded is the path LoadWeights read, and Taken the steps it read.
	Loaded string
	Taken  int
}

var (
	_ harness.StepTrainer         = (*OwnStep)(nil)
	_ harness.WeightsIO           = (*OwnStep)(nil)
	_ harness.DeterminismReporter = (*OwnStep)(nil)
)

// LastOwnStep is the most recently created OwnStep, for tests to inspect.
var LastOwnStep *OwnStep

// Info implements harness.Model.
func (m *OwnStep) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: "fake-ownstep", Params: 7}
}

// TrainStep records s and returns a loss that falls with the step.
func (m *OwnStep) TrainStep(_ context.Context, b harness.Batch, s harness.StepInfo) (float64, error) {
	m.Steps = append(m.Steps, s)
	return 1 / float64(s.Step), nil
}

// SaveWeights writes "ownstep N".
func (m *OwnStep) SaveWeights(_ context.Context, path string, _ map[string]string) error {
	return os.WriteFile(path, []byte(fmt.Sprintf("ownstep %d", len(m.Steps)+m.Taken)), 0o644)
}

// LoadWeights reads what SaveWeights wrote.
func (m *OwnStep) LoadWeights(_ context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := fmt.Sscanf(string(b), "ownstep %d", &m.Taken); err != nil {
		return fmt.Errorf("not an ownstep file: %w", err)
	}
	m.Loaded = path
	return nil
}

// Deterministic is false.
func (m *OwnStep) Deterministic() bool { return false }
