package harnesstest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"arbench/harness"
)

func init() {
	harness.RegisterModel("fake-fragile", "bigram test model with configurable failures (harnesstest)", func() harness.Model { return NewFragile() })
	harness.RegisterTask("fake-needy", "counting task declaring capabilities, with configurable failures (harnesstest)", func() harness.Task { return NewNeedy() })
}

// FragileConfig selects the failures of a Fragile model.
type FragileConfig struct {
	// Context, when positive, makes CheckEnv (and Setup) refuse tasks whose
	// rows are longer.
	Context int `yaml:"context"`
	// FailSetup makes Setup fail before allocating anything.
	FailSetup bool `yaml:"fail_setup"`
	// DivergeAt, when positive, makes Gradients return harness.ErrDiverged
	// from that call on.
	DivergeAt int `yaml:"diverge_at"`
	// CloseError makes Close fail after a successful Setup (releasing what
	// Setup allocated fails).
	CloseError bool `yaml:"close_error"`
	// MemoryBytes is the parameter memory EstimateMemory reports.
	MemoryBytes int64 `yaml:"memory_bytes"`
	// TrainingBytes is the training memory EstimateMemory reports when the
	// model trains (env.Batch > 0).
	TrainingBytes int64 `yaml:"training_bytes"`
	// PanicCheck makes CheckEnv panic (a plugin bug).
	PanicCheck bool `yaml:"panic_check"`
}

// Validate implements harness.Config.
func (c *FragileConfig) Validate() []error {
	if c.Context < 0 || c.DivergeAt < 0 || c.MemoryBytes < 0 || c.TrainingBytes < 0 {
		return []error{errors.New("context, diverge_at, memory_bytes and training_bytes must be >= 0")}
	}
	return nil
}

// FragileCloses counts Fragile.Close calls in this process.
var FragileCloses atomic.Int64

// Fragile is the LM with the failures its config selects; it exercises the
// runner's error paths with a real training loop.
type Fragile struct {
	*LM
	cfg   FragileConfig
	calls int
	setUp bool
}

var (
	_ harness.Model           = (*Fragile)(nil)
	_ harness.Trainer         = (*Fragile)(nil)
	_ harness.EnvChecker      = (*Fragile)(nil)
	_ harness.MemoryEstimator = (*Fragile)(nil)
)

// NewFragile returns an unconfigured Fragile model that fails nowhere.
func NewFragile() *Fragile { return &Fragile{LM: NewLM()} }

// Config implements harness.Model.
func (f *Fragile) Config() harness.Config { return &f.cfg }

// CheckEnv implements harness.EnvChecker.
func (f *Fragile) CheckEnv(env harness.Env) []error {
	if f.cfg.PanicCheck {
		panic("fake-fragile: CheckEnv panics as configured")
	}
	if f.cfg.Context > 0 && env.SeqLen > f.cfg.Context {
		return []error{fmt.Errorf("context: %d is shorter than the task's rows of %d; set context: >= %d", f.cfg.Context, env.SeqLen, env.SeqLen)}
	}
	return nil
}

// EstimateMemory implements harness.MemoryEstimator.
func (f *Fragile) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	est := harness.MemoryEstimate{Params: f.cfg.MemoryBytes}
	if env.Batch > 0 {
		est.Training = f.cfg.TrainingBytes
	}
	return est
}

// Setup implements harness.Model.
func (f *Fragile) Setup(ctx context.Context, env harness.Env) error {
	if f.cfg.FailSetup {
		return errors.New("fake-fragile: setup fails as configured")
	}
	if errs := f.CheckEnv(env); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := f.LM.Setup(ctx, env); err != nil {
		return err
	}
	f.setUp = true
	return nil
}

// Gradients implements harness.Trainer.
func (f *Fragile) Gradients(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	f.calls++
	if f.cfg.DivergeAt > 0 && f.calls >= f.cfg.DivergeAt {
		return 0, fmt.Errorf("fake-fragile: loss is NaN: %w", harness.ErrDiverged)
	}
	return f.LM.Gradients(ctx, b, seed)
}

// Close counts the call; it works on a model whose Setup failed.
func (f *Fragile) Close() error {
	FragileCloses.Add(1)
	if f.cfg.CloseError && f.setUp {
		return errors.New("fake-fragile: close fails as configured")
	}
	return nil
}

// NeedyConfig is TaskConfig plus what the task declares and how it fails.
type NeedyConfig struct {
	TaskConfig `yaml:",inline"`
	// Needs lists the capabilities Info declares (harness.Capability values).
	Needs []string `yaml:"needs"`
	// FailPrepare makes Prepare fail.
	FailPrepare bool `yaml:"fail_prepare"`
}

// Needy is the counting Task declaring TaskConfig.Needs.
type Needy struct {
	*Task
	ncfg NeedyConfig
}

var _ harness.Task = (*Needy)(nil)

// NewNeedy returns an unprepared Needy task with default config.
func NewNeedy() *Needy {
	t := NewTask()
	return &Needy{Task: t, ncfg: NeedyConfig{TaskConfig: t.cfg}}
}

// Config implements harness.Task.
func (n *Needy) Config() harness.Config { return &n.ncfg }

// Prepare implements harness.Task.
func (n *Needy) Prepare(ctx context.Context, env harness.TaskEnv) error {
	if n.ncfg.FailPrepare {
		return fmt.Errorf("fake-needy: variant %q has no data", env.Variant)
	}
	n.Task.cfg = n.ncfg.TaskConfig
	return n.Task.Prepare(ctx, env)
}

// Info implements harness.Task.
func (n *Needy) Info() harness.TaskInfo {
	info := n.Task.Info()
	for _, c := range n.ncfg.Needs {
		info.Needs = append(info.Needs, harness.Capability(c))
	}
	return info
}
