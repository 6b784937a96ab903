package nar

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/s2s"
	"arbench/tasks/seq2seq"
)

// distilledTiny is newTiny with a teacher trained for steps steps.
func distilledTiny(t *testing.T, vocab, steps int) *Model {
	t.Helper()
	return newTiny(t, vocab, func(c *Config) {
		c.Distill.TeacherSteps = steps
		c.Distill.Teacher = s2s.Config{Dim: 32, Heads: 2, Layers: 1, FF: 64, Context: 12}
	})
}

// The first teacher_steps steps train the teacher and leave the student
// untouched (zero gradient); later steps train the student on the
// teacher's greedy outputs, which are what harness.Translate decodes with
// the teacher, each followed by the end token.
func TestDistillation(t *testing.T) {
	gen := reverseGen(t)
	const K = 150
	m := distilledTiny(t, gen.Vocab(), K)
	before := slices.Clone(m.ps.List()[0].Data)
	if _, _, err := train(m, gen, K); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.ps.List() {
		for _, g := range p.Grad {
			if g != 0 {
				t.Fatalf("student gradient %s is non-zero in the teacher phase", p.Name)
			}
		}
	}
	if !slices.Equal(before, m.ps.List()[0].Data) {
		t.Error("the student's parameters moved while the teacher trained")
	}
	if m.teacher.steps != 0 {
		t.Fatalf("%d teacher steps left after %d", m.teacher.steps, K)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	exs := make([]seq2seq.Example, 16)
	for i := range exs {
		exs[i] = gen.Train(rng)
	}
	b := seq2seq.PadBatch(exs)
	d, err := m.distilled(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	want, err := harness.Translate(context.Background(), m.teacher.m, encdec.FromBatch(b.Source),
		harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, MaxLen: 11})
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for i, row := range d.Targets {
		got := row[:slices.Index(row, seq2seq.EOS)]
		if !reflect.DeepEqual(got, want.Outputs[i]) {
			t.Errorf("row %d: distilled target %v, teacher output %v", i, row, want.Outputs[i])
		}
		if exs[i].Match(got) >= 0 {
			correct++
		}
	}
	t.Logf("teacher after %d steps: %d of %d training targets exact", K, correct, len(exs))
	if correct < len(exs)/2 {
		t.Errorf("the teacher learned little: %d of %d exact", correct, len(exs))
	}
	if _, err := m.Gradients(context.Background(), b, 1); err != nil {
		t.Fatal(err)
	}
	moved := false
	for _, p := range m.ps.List() {
		for _, g := range p.Grad {
			moved = moved || g != 0
		}
	}
	if !moved {
		t.Error("the student got no gradient after the teacher phase")
	}
}

func TestDistillConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	c.Distill.TeacherSteps, c.Distill.LR, c.Distill.Teacher.Dim = 10, 0, 0
	var got []string
	for _, err := range c.Validate() {
		got = append(got, err.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"distill.lr", "distill.teacher.dim"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors lack %s:\n%s", want, all)
		}
	}
}

// A teacher trained elsewhere is loaded from its weights file: the
// student's targets are that model's greedy outputs from the first step,
// and a missing file is reported by CheckEnv, before any work.
func TestDistillFromWeights(t *testing.T) {
	gen := reverseGen(t)
	cfg := s2s.Config{Dim: 32, Heads: 2, Layers: 1, FF: 64, Context: 12}
	teacher := s2s.New()
	*teacher.Config().(*s2s.Config) = cfg
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: gen.Vocab(), SourceLen: reverseLen, TargetLen: reverseLen + 1, Seed: 9}
	if err := teacher.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	opt := nn.NewAdam(teacher.Params(), nn.AdamConfig{LR: 3e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 100 {
		exs := make([]seq2seq.Example, 32)
		for i := range exs {
			exs[i] = gen.Train(rng)
		}
		if _, err := teacher.(harness.Trainer).Gradients(context.Background(), seq2seq.PadBatch(exs), uint64(step)); err != nil {
			t.Fatal(err)
		}
		opt.Step()
	}
	path := filepath.Join(t.TempDir(), "teacher.safetensors")
	if err := nn.SaveSafetensors(path, teacher.Params(), nil); err != nil {
		t.Fatal(err)
	}
	m := newTiny(t, gen.Vocab(), func(c *Config) {
		c.Distill.TeacherWeights, c.Distill.Teacher = path, cfg
	})
	exs := make([]seq2seq.Example, 8)
	for i := range exs {
		exs[i] = gen.Train(rng)
	}
	b := seq2seq.PadBatch(exs)
	d, err := m.distilled(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	want, err := harness.Translate(context.Background(), teacher, encdec.FromBatch(b.Source),
		harness.TranslateOptions{Start: seq2seq.BOS, End: seq2seq.EOS, MaxLen: 11})
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range d.Targets {
		if got := row[:slices.Index(row, seq2seq.EOS)]; !reflect.DeepEqual(got, want.Outputs[i]) {
			t.Errorf("row %d: distilled %v, loaded teacher's output %v", i, got, want.Outputs[i])
		}
	}
	if m.teacher.steps != 0 {
		t.Errorf("a loaded teacher has %d training steps", m.teacher.steps)
	}
	missing := New().(*Model)
	missing.cfg.Distill.TeacherWeights = filepath.Join(t.TempDir(), "none.safetensors")
	errs := missing.CheckEnv(env)
	if len(errs) == 0 || !strings.Contains(errs[len(errs)-1].Error(), "distill.teacher_weights") {
		t.Errorf("missing teacher weights: %v", errs)
	}
	c := DefaultConfig()
	c.Distill.TeacherWeights, c.Distill.TeacherSteps = path, 5
	if errs := c.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "teacher_steps: 0") {
		t.Errorf("weights and teacher steps: %v", errs)
	}
}
