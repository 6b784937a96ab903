package recurrent

import (
	"context"
	"math"
	"strings"
	"testing"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
)

func TestConfigValidateRejectsNonFinite(t *testing.T) {
	for _, d := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.1, 1} {
		c := Config{Embed: 4, Hidden: 4, Layers: 1, Dropout: d}
		if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "dropout") {
			t.Errorf("dropout %v: Validate = %v, want one dropout error", d, errs)
		}
	}
	if errs := (&Config{Embed: 4, Hidden: 4, Layers: 1, Dropout: 0.5}).Validate(); len(errs) != 0 {
		t.Errorf("dropout 0.5: %v", errs)
	}
}

func TestSetupChecksConfigAndEnv(t *testing.T) {
	m := New("lstm", Config{Embed: 4, Hidden: 4, Layers: 1, Dropout: math.NaN()})
	err := m.Setup(context.Background(), harness.Env{Backend: nngorgonia.New(), Vocab: 0, SeqLen: 8})
	if err == nil || !strings.Contains(err.Error(), "lstm: config: dropout") || !strings.Contains(err.Error(), "vocabulary has 0 tokens") {
		t.Errorf("Setup with NaN dropout and no vocabulary = %v, want both reported", err)
	}
	if m.Params() != nil {
		t.Error("a failed Setup allocated parameters")
	}
	if errs := m.CheckEnv(harness.Env{Vocab: 256, SeqLen: 1 << 20}); len(errs) != 0 {
		t.Errorf("CheckEnv of a long window: %v (a recurrent model has no context limit)", errs)
	}
	if errs := m.CheckEnv(harness.Env{Vocab: 256, SeqLen: -1, Batch: -1}); len(errs) != 2 {
		t.Errorf("CheckEnv of negative window and batch = %v, want 2 errors", errs)
	}
}

// TestEstimateParams: the estimated parameter bytes are exactly what Setup
// allocates, for both cells with several layers and dropout.
func TestEstimateParams(t *testing.T) {
	for _, family := range []string{"rnn", "lstm"} {
		m := New(family, Config{Embed: 5, Hidden: 7, Layers: 3, Dropout: 0.1})
		env := harness.Env{Backend: nngorgonia.New(), Vocab: 11, SeqLen: 6, Batch: 2}
		est := m.EstimateMemory(env)
		if err := m.Setup(context.Background(), env); err != nil {
			t.Fatal(err)
		}
		if want := 4 * int64(m.Params().Count()); est.Params != want {
			t.Errorf("%s: estimated %d parameter bytes, Setup allocated %d", family, est.Params, want)
		}
		if est.Training <= est.Params || est.Inference <= 0 {
			t.Errorf("%s: estimate %+v", family, est)
		}
	}
}

// TestEstimateSaturates: sizes whose products overflow int64 give a huge
// estimate, not a wrapped-around small or negative one.
func TestEstimateSaturates(t *testing.T) {
	m := New("lstm", Config{Embed: 1 << 40, Hidden: 1 << 40, Layers: 1 << 30})
	est := m.EstimateMemory(harness.Env{Vocab: 256, SeqLen: 1 << 30, Batch: 1 << 30})
	const exa = 1 << 60
	if est.Params < exa || est.Training < exa || est.Inference < exa || est.Total() < exa {
		t.Errorf("estimate %+v (total %d), want every part saturated", est, est.Total())
	}
	if est := m.EstimateMemory(harness.Env{Vocab: 256}); est.Training != 0 {
		t.Errorf("training estimate without a batch = %d, want 0", est.Training)
	}
}
