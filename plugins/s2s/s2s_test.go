package s2s_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/lm"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/s2s"
)

// TestConfigValidate: every bad field is reported at once.
func TestConfigValidate(t *testing.T) {
	c := s2s.Config{Dim: 10, Heads: 3, Layers: 0, EncLayers: -1, DecLayers: -2, FF: -1, Context: 0, Dropout: 1}
	errs := c.Validate()
	want := []string{"heads: 3 does not divide dim 10", "layers:", "ff:", "context:", "dropout:", "enc_layers:", "dec_layers:"}
	if len(errs) != len(want) {
		t.Fatalf("Validate = %v, want %d errors", errs, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want it to start with %q", i, errs[i], w)
		}
	}
	if errs := (&s2s.Config{Dim: 0, Heads: 0, Layers: 1, Context: 1}).Validate(); len(errs) != 2 {
		t.Errorf("dim 0, heads 0: Validate = %v, want 2 errors", errs)
	}
	for _, d := range []float64{math.NaN(), math.Inf(1), -0.1} {
		c := s2s.Config{Dim: 8, Heads: 2, Layers: 1, Context: 8, Dropout: d}
		if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "dropout") {
			t.Errorf("dropout %v: Validate = %v, want one dropout error", d, errs)
		}
	}
	if errs := s2s.New().Config().Validate(); len(errs) != 0 {
		t.Errorf("defaults invalid: %v", errs)
	}
}

// TestCheckEnv: sources or decoder rows longer than the context, and a task
// without sources, are reported before any work, and Setup refuses the
// same with the same messages.
func TestCheckEnv(t *testing.T) {
	m := s2s.New()
	m.Config().(*s2s.Config).Context = 16
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: 12, SourceLen: 20, TargetLen: 21}
	want := []string{
		"context: 16 is shorter than the task's sources of 20; set context: >= 21",
		"context: 16 is shorter than the task's decoder rows of 21; set context: >= 21",
	}
	errs := m.(harness.EnvChecker).CheckEnv(env)
	if len(errs) != len(want) {
		t.Fatalf("CheckEnv = %v, want %q", errs, want)
	}
	for i := range want {
		if errs[i].Error() != want[i] {
			t.Errorf("CheckEnv error %d = %q, want %q", i, errs[i], want[i])
		}
	}
	err := m.Setup(t.Context(), env)
	if err == nil || !strings.HasPrefix(err.Error(), "transformer-s2s: ") || !strings.Contains(err.Error(), want[0]) || !strings.Contains(err.Error(), want[1]) {
		t.Errorf("Setup = %v, want both messages", err)
	}
	env.SourceLen, env.TargetLen = 16, 16
	if errs := m.(harness.EnvChecker).CheckEnv(env); len(errs) != 0 {
		t.Errorf("CheckEnv of rows as long as the context = %v", errs)
	}
	env.SourceLen, env.TargetLen, env.SeqLen = 0, 0, 10
	if errs := m.(harness.EnvChecker).CheckEnv(env); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no sources") {
		t.Errorf("CheckEnv of a language-modelling task = %v, want one error about sources", errs)
	}
	env = harness.Env{Vocab: 1, SourceLen: 4, TargetLen: 4}
	if err := m.Setup(t.Context(), env); err == nil || !strings.Contains(err.Error(), "vocabulary") || !strings.Contains(err.Error(), "backend") {
		t.Errorf("Setup with a 1-token vocabulary and no backend = %v", err)
	}
}

// TestBeforeSetup: every method the harness may call before (or after a
// failed) Setup returns an error or nil and never panics.
func TestBeforeSetup(t *testing.T) {
	m := s2s.New().(*s2s.Model)
	if m.Params() != nil || m.Close() != nil || m.Info().Params != 0 {
		t.Fatal("Params, Close or Info before Setup")
	}
	b := harness.Batch{Source: [][]int{{3}}, Inputs: [][]int{{1}}, Targets: [][]int{{2}}}
	_, err1 := m.Gradients(t.Context(), b, 1)
	_, err2 := m.LogProbs(t.Context(), b)
	_, _, err3 := m.StartSource(t.Context(), [][]int{{3}}, [][]int{{1}})
	_, err4 := m.Step(t.Context(), nil, []int{1})
	for i, err := range []error{err1, err2, err3, err4, m.Rewind(nil, 1)} {
		if !errors.Is(err, lm.ErrNotSetup) {
			t.Errorf("call %d before Setup: %v, want %v", i, err, lm.ErrNotSetup)
		}
	}
}

// TestRefusesBadBatches: a batch without a source, or with mismatched
// rows, is an error; a NaN loss is returned as the loss.
func TestRefusesBadBatches(t *testing.T) {
	m := tiny(t, 1, 8)
	ok := harness.Batch{Source: [][]int{{3, 4}, {5, 0}}, Inputs: [][]int{{1, 3}, {1, 5}}, Targets: [][]int{{3, 2}, {5, -1}}}
	if _, err := m.Gradients(t.Context(), ok, 1); err != nil {
		t.Fatal(err)
	}
	lp, err := m.LogProbs(t.Context(), ok)
	if err != nil || lp[1][1] != 0 || !(lp[0][0] < 0) {
		t.Fatalf("LogProbs = %v, %v", lp, err)
	}
	bad := map[string]harness.Batch{
		"no source":        {Inputs: ok.Inputs, Targets: ok.Targets},
		"source rows":      {Source: ok.Source[:1], Inputs: ok.Inputs, Targets: ok.Targets},
		"empty source":     {Source: [][]int{{0}, {5}}, Inputs: ok.Inputs, Targets: ok.Targets},
		"long source":      {Source: [][]int{make9(), {5}}, Inputs: ok.Inputs, Targets: ok.Targets},
		"long rows":        {Source: ok.Source, Inputs: [][]int{make9(), make9()}, Targets: [][]int{make9(), make9()}},
		"target vocab":     {Source: ok.Source, Inputs: ok.Inputs, Targets: [][]int{{3, 99}, {5, -1}}},
		"targets mismatch": {Source: ok.Source, Inputs: ok.Inputs, Targets: [][]int{{3}, {5}}},
	}
	for name, b := range bad {
		if _, err := m.Gradients(t.Context(), b, 1); err == nil {
			t.Errorf("Gradients of a batch with %s: no error", name)
		}
		if _, err := m.LogProbs(t.Context(), b); err == nil {
			t.Errorf("LogProbs of a batch with %s: no error", name)
		}
	}
	if _, err := m.Gradients(t.Context(), bad["no source"], 1); err == nil || !strings.Contains(err.Error(), "no source") {
		t.Errorf("Gradients without a source = %v, want an error naming it", err)
	}
	for _, p := range m.Params().List() {
		for i := range p.Data {
			p.Data[i] = float32(math.NaN())
		}
	}
	if loss, err := m.Gradients(t.Context(), ok, 1); err != nil || !math.IsNaN(loss) {
		t.Errorf("Gradients with NaN parameters = %v, %v; want NaN and no error", loss, err)
	}
}

// TestRegistered: the plugin is in the registry under its name.
func TestRegistered(t *testing.T) {
	m, err := harness.NewModel("transformer-s2s")
	if err != nil {
		t.Fatal(err)
	}
	if m.Info().Family != "transformer-s2s" {
		t.Fatalf("Family = %q", m.Info().Family)
	}
}
