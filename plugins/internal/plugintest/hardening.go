package plugintest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

// noPanic runs f and turns a panic into an error.
func noPanic(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// CheckBeforeSetup calls every method of a fresh model that the harness
// may reach before Setup (or after a failed one): Close must return nil,
// Params nil, the lm.Base capabilities lm.ErrNotSetup and Start and Step
// an error; none may panic.
func CheckBeforeSetup(t *testing.T, m harness.Model) {
	t.Helper()
	ctx := context.Background()
	rows := [][]int{{1, 2}}
	if err := noPanic(func() error {
		if c, ok := m.(io.Closer); ok {
			return c.Close()
		}
		return nil
	}); err != nil {
		t.Errorf("Close before Setup: %v", err)
	}
	if err := noPanic(func() error {
		if ps := m.Params(); ps != nil {
			return fmt.Errorf("Params = %v, want nil", ps)
		}
		_ = m.Info()
		return nil
	}); err != nil {
		t.Errorf("Params/Info before Setup: %v", err)
	}
	calls := map[string]func() error{
		"Gradients": func() error {
			_, err := m.(harness.Trainer).Gradients(ctx, harness.Batch{Inputs: rows, Targets: rows}, 1)
			return err
		},
		"LogProbs": func() error {
			_, err := m.(harness.Scorer).LogProbs(ctx, harness.Batch{Inputs: rows, Targets: rows})
			return err
		},
		"NextLogProbs": func() error { _, err := m.(harness.Distributioner).NextLogProbs(ctx, rows); return err },
	}
	for name, call := range calls {
		if err := noPanic(call); !errors.Is(err, lm.ErrNotSetup) {
			t.Errorf("%s before Setup: %v, want %v", name, err, lm.ErrNotSetup)
		}
	}
	st := m.(harness.Stepper)
	for name, call := range map[string]func() error{
		"Start": func() error { _, _, err := st.Start(ctx, rows); return err },
		"Step":  func() error { _, err := st.Step(ctx, nil, []int{1}); return err },
	} {
		if err := noPanic(call); err == nil || strings.HasPrefix(err.Error(), "panic") {
			t.Errorf("%s before Setup: %v, want an error", name, err)
		}
	}
}

// CheckRefusesSource requires a set-up language model to refuse batches
// with a source sequence, naming the model, in training and scoring.
func CheckRefusesSource(t *testing.T, m harness.Model) {
	t.Helper()
	b := Pattern(2, 4, 5)
	b.Source = [][]int{{1, 2}, {3, 4}}
	ctx := context.Background()
	_, gerr := m.(harness.Trainer).Gradients(ctx, b, 1)
	_, serr := m.(harness.Scorer).LogProbs(ctx, b)
	for name, err := range map[string]error{"Gradients": gerr, "LogProbs": serr} {
		if err == nil || !strings.Contains(err.Error(), m.Info().Family) || !strings.Contains(err.Error(), "source") {
			t.Errorf("%s of a batch with a source: %v, want an error naming %s and the source", name, err, m.Info().Family)
		}
	}
}

// CheckDivergedLoss poisons a set-up model's parameters with NaN and
// requires Gradients to return the non-finite loss with a nil error, so
// that the runner records the run as diverged instead of aborting.
func CheckDivergedLoss(t *testing.T, m harness.Model) {
	t.Helper()
	for _, p := range m.Params().List() {
		for i := range p.Data {
			p.Data[i] = float32(math.NaN())
		}
	}
	loss, err := m.(harness.Trainer).Gradients(context.Background(), Pattern(2, 4, 5), 1)
	if err != nil || !math.IsNaN(loss) {
		t.Errorf("Gradients with NaN parameters = %v, %v; want NaN and no error", loss, err)
	}
}

// LiveHeap returns the bytes of live heap objects after collecting
// garbage: what memory tests compare estimates with.
func LiveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// Measured is the live heap a model held in MeasureWith's two runs, and
// its parameter count.
type Measured struct {
	Train, Infer int64
	Params       int
}

// MemoryRuns are what MeasureWith runs on a set-up model: Step one
// training step (AdamStep), Evaluate an evaluation; each returns what it
// keeps alive (outputs, the optimiser), which the measurement counts.
type MemoryRuns struct {
	Step, Evaluate func(m harness.Model) any
}

// MeasureWith sets up a fresh model for env and measures the live heap it
// holds (parameters included) after runs.Step followed by runs.Evaluate
// (what the runner holds during training), and, on another fresh model,
// after runs.Evaluate alone.
func MeasureWith(t *testing.T, newModel func() harness.Model, env harness.Env, runs MemoryRuns) Measured {
	t.Helper()
	var out Measured
	measure := func(run func(m harness.Model) any) int64 {
		base := LiveHeap()
		m := newModel()
		if err := m.Setup(context.Background(), env); err != nil {
			t.Fatal(err)
		}
		keep := run(m)
		n := LiveHeap() - base
		runtime.KeepAlive(keep)
		runtime.KeepAlive(m)
		out.Params = m.Params().Count()
		if c, ok := m.(io.Closer); ok {
			c.Close()
		}
		return n
	}
	out.Train = measure(func(m harness.Model) any { return []any{runs.Step(m), runs.Evaluate(m)} })
	out.Infer = measure(runs.Evaluate)
	return out
}

// AdamStep runs one training step of m on b with Adam and returns what it
// keeps (the optimiser's state and the batch).
func AdamStep(t *testing.T, m harness.Model, b harness.Batch) any {
	t.Helper()
	opt := nn.NewAdam(m.Params(), nn.DefaultAdamConfig())
	if _, err := m.(harness.Trainer).Gradients(context.Background(), b, 1); err != nil {
		t.Fatal(err)
	}
	opt.Step()
	return []any{opt, b}
}

// MeasureMemory is MeasureWith for a language model: one training step of
// env.Batch rows of env.SeqLen tokens, and a validation-like NextLogProbs
// of lm.EvalRows(env) rows.
func MeasureMemory(t *testing.T, newModel func() harness.Model, env harness.Env) Measured {
	t.Helper()
	return MeasureWith(t, newModel, env, MemoryRuns{
		Step: func(m harness.Model) any { return AdamStep(t, m, Pattern(env.Batch, env.SeqLen, env.Vocab)) },
		Evaluate: func(m harness.Model) any {
			lp, err := m.(harness.Distributioner).NextLogProbs(context.Background(), Pattern(lm.EvalRows(env), env.SeqLen, env.Vocab).Inputs)
			if err != nil {
				t.Fatal(err)
			}
			return lp
		},
	})
}

// CheckEstimate compares an estimate with what was measured: the
// parameters exactly (4 bytes each), parameters plus training and
// parameters plus inference within a factor of 2.
func CheckEstimate(t *testing.T, est harness.MemoryEstimate, got Measured) {
	t.Helper()
	if want := 4 * int64(got.Params); est.Params != want {
		t.Errorf("estimated parameters %d bytes, Setup allocated %d", est.Params, want)
	}
	for _, c := range []struct {
		what          string
		estimate, got int64
	}{{"training", est.Params + est.Training, got.Train}, {"inference", est.Params + est.Inference, got.Infer}} {
		ratio := float64(c.estimate) / float64(c.got)
		t.Logf("%s: estimated %d bytes, measured %d (ratio %.2f)", c.what, c.estimate, c.got, ratio)
		if !(ratio >= 0.5 && ratio <= 2) {
			t.Errorf("%s: estimated %d bytes, measured %d: ratio %.2f outside [0.5, 2]", c.what, c.estimate, c.got, ratio)
		}
	}
}

// CheckMemoryEstimate compares a model's EstimateMemory for env with the
// memory MeasureMemory measures (CheckEstimate). The configuration must be
// an ordinary one, which harness.CheckMemory lets through. It is skipped
// without pooled buffers (SkipUnpooled).
func CheckMemoryEstimate(t *testing.T, newModel func() harness.Model, env harness.Env) {
	t.Helper()
	SkipUnpooled(t)
	if err := harness.CheckMemory(newModel(), env); err != nil {
		t.Errorf("CheckMemory refused an ordinary configuration: %v", err)
	}
	CheckEstimate(t, newModel().(harness.MemoryEstimator).EstimateMemory(env), MeasureMemory(t, newModel, env))
}

// noPoolEnv is the gorgonia backend's switch that gives every value a
// buffer of its own (nn/gorgonia/pool.go).
const noPoolEnv = "ARBENCH_NO_POOL"

// SkipUnpooled skips a test that measures memory against an estimate when
// ARBENCH_NO_POOL=1 turns the backend's pooled buffers off: the estimates
// count pooled buffers (lm.Values) and are then several times too low.
func SkipUnpooled(t testing.TB) {
	t.Helper()
	if os.Getenv(noPoolEnv) == "1" {
		t.Skipf("%s=1: memory estimates assume the gorgonia backend's pooled buffers", noPoolEnv)
	}
}

// CheckRefusesHuge requires harness.CheckMemory to refuse a model
// configured far beyond any machine, allocating almost nothing to decide.
func CheckRefusesHuge(t *testing.T, huge harness.Model, env harness.Env) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := harness.CheckMemory(huge, env)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("CheckMemory of a huge configuration = %v, want a refusal", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("CheckMemory allocated %d bytes", n)
	}
	t.Log(err)
}

// CheckInputGradients checks that m, configured but not set up, provides
// the vanishing-gradient measurement (harness.NeedInputGradients) once set
// up on a vocabulary of 7 and windows of 5: one finite, positive norm per
// row and position s <= t. Finite differences, causality and the
// parameters left alone are tested in plugins/internal/lm.
func CheckInputGradients(t *testing.T, m harness.Model) {
	t.Helper()
	if !harness.NeedInputGradients.Has(m) {
		t.Fatalf("%T lacks harness.InputGradienter", m)
	}
	if err := m.Setup(context.Background(), harness.Env{Backend: Backend(t), Vocab: 7, SeqLen: 5, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	norms, err := m.(harness.InputGradienter).InputGradientNorms(context.Background(), Pattern(2, 5, 7), 3)
	if err != nil || len(norms) != 2 {
		t.Fatalf("InputGradientNorms = %v, %v; want 2 rows", norms, err)
	}
	for i, row := range norms {
		for s, v := range row {
			if len(row) != 4 || !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("row %d (%d norms) s=%d: norm %v", i, len(row), s, v)
			}
		}
	}
}
