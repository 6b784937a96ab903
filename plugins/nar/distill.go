package nar

import (
	"context"
	"errors"
	"fmt"
	"math"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/s2s"
)

// Sequence-level knowledge distillation (Kim & Rush 2016, "Sequence-Level
// Knowledge Distillation", §3.2), the standard cure for the
// multi-modality of non-autoregressive models (Gu et al. 2018, §3.2; Zhou
// et al. 2020, "Understanding Knowledge Distillation in Non-autoregressive
// Machine Translation"): the student trains on an autoregressive
// teacher's greedy outputs for the training sources instead of the
// references, so each source has one target, the teacher's mode.
//
// With distill.teacher_steps = K > 0 the model holds a transformer-s2s
// teacher (distill.teacher, its configuration) and splits the run's
// training steps: the first K train the teacher on the batches' references
// with the teacher's own Adam (distill.lr, gradient clipping at
// distill.clip; the run's optimiser sees a zero gradient for the student,
// which Adam turns into no update), every later step decodes the batch's
// sources greedily with the frozen teacher (harness.Translate) and trains
// the student on those outputs. The teacher is part of the model but not
// of its parameters: saved weights are the student's, and a run that loads
// them skips nothing (the teacher is trained again when the run trains).
// Give a distilled model K more steps than the plain one (a per-model
// `train: {steps: ...}`) for the student to get the same budget.
//
// With distill.teacher_weights instead, the teacher is a transformer-s2s
// trained elsewhere (a safetensors file of distill.teacher's
// configuration, such as `arbench run -save-weights` writes): it is
// loaded in Setup, every training step trains the student on its outputs,
// and teacher_steps must be 0.

// DistillConfig configures distillation; TeacherSteps 0 turns it off.
type DistillConfig struct {
	// TeacherSteps is K, the number of the run's first training steps that
	// train the teacher.
	TeacherSteps int `yaml:"teacher_steps"`
	// LR and Clip are the teacher's Adam learning rate and global
	// gradient-norm clip (0: none).
	LR   float64 `yaml:"lr"`
	Clip float64 `yaml:"clip"`
	// Teacher is the transformer-s2s teacher's configuration.
	Teacher s2s.Config `yaml:"teacher"`
	// TeacherWeights, when set, is a safetensors file of a trained
	// teacher of that configuration (a path relative to the working
	// directory); the teacher is then loaded, not trained.
	TeacherWeights string `yaml:"teacher_weights"`
}

// on reports whether distillation is configured.
func (c *DistillConfig) on() bool { return c.TeacherSteps != 0 || c.TeacherWeights != "" }

// defaultDistill is distillation off, with a small teacher ready.
func defaultDistill() DistillConfig {
	return DistillConfig{LR: 3e-3, Clip: 1, Teacher: s2s.Config{Dim: 64, Heads: 4, Layers: 2, Context: 128}}
}

// validate reports the distillation fields' problems (none when off).
func (c *DistillConfig) validate() []error {
	if !c.on() {
		return nil
	}
	var errs []error
	if c.TeacherSteps < 0 {
		errs = append(errs, fmt.Errorf("distill.teacher_steps: must be >= 0, got %d", c.TeacherSteps))
	}
	if c.TeacherSteps > 0 && c.TeacherWeights != "" {
		errs = append(errs, fmt.Errorf("distill.teacher_weights: a loaded teacher is not trained; set teacher_steps: 0 (got %d)", c.TeacherSteps))
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 1) {
		errs = append(errs, fmt.Errorf("distill.lr: must be a finite number > 0, got %v", c.LR))
	}
	if !(c.Clip >= 0) || math.IsInf(c.Clip, 1) {
		errs = append(errs, fmt.Errorf("distill.clip: must be a finite number >= 0, got %v", c.Clip))
	}
	for _, err := range c.Teacher.Validate() {
		errs = append(errs, fmt.Errorf("distill.teacher.%w", err))
	}
	return errs
}

// teacher is the distillation state of a set-up model.
type teacher struct {
	m     *s2s.Model
	opt   *nn.Adam
	clip  float64
	steps int // teacher training steps still to take
}

// setupTeacher makes the teacher when distillation is on (nil otherwise).
func (m *Model) setupTeacher(ctx context.Context, env harness.Env) (*teacher, error) {
	c := m.cfg.Distill
	if !c.on() {
		return nil, nil
	}
	tm, ok := s2s.New().(*s2s.Model)
	if !ok {
		return nil, errors.New("nar: distill: transformer-s2s is not an *s2s.Model")
	}
	*tm.Config().(*s2s.Config) = c.Teacher
	te := env
	te.Seed = env.Seed ^ 0x7465616368657273 // "teachers"
	if err := tm.Setup(ctx, te); err != nil {
		return nil, fmt.Errorf("nar: distill.teacher: %w", err)
	}
	if c.TeacherWeights != "" {
		if err := nn.LoadSafetensors(c.TeacherWeights, tm.Params()); err != nil {
			return nil, errors.Join(fmt.Errorf("nar: distill.teacher_weights: %w", err), tm.Close())
		}
	}
	cfg := nn.DefaultAdamConfig()
	cfg.LR = c.LR
	return &teacher{m: tm, opt: nn.NewAdam(tm.Params(), cfg), clip: c.Clip, steps: c.TeacherSteps}, nil
}

// teacherStep trains the teacher on b and zeroes the student's gradient.
func (m *Model) teacherStep(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	t := m.teacher
	loss, err := t.m.Gradients(ctx, b, seed)
	if err != nil {
		return 0, fmt.Errorf("nar: distill: teacher step: %w", err)
	}
	t.steps--
	m.ps.ZeroGrad()
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, nil
	}
	if t.clip > 0 {
		nn.ClipGradNorm(t.m.Params(), t.clip)
	}
	t.opt.Step()
	return loss, nil
}

// distilled returns b with its targets replaced by the teacher's greedy
// outputs for its sources, each followed by the rows' end token (the last
// scored target of every row; all rows must share it) and padded with −1.
func (m *Model) distilled(ctx context.Context, b harness.Batch) (harness.Batch, error) {
	tgts, err := m.targetRows(b.Targets)
	if err != nil {
		return harness.Batch{}, err
	}
	end := tgts[0][len(tgts[0])-1]
	start := 0
	if len(b.Inputs) > 0 && len(b.Inputs[0]) > 0 {
		start = b.Inputs[0][0]
	}
	out, err := harness.Translate(ctx, m.teacher.m, encdec.FromBatch(b.Source), harness.TranslateOptions{
		Start: start, End: end, MaxLen: max(min(m.cfg.Context, m.cfg.Distill.Teacher.Context)-1, 1),
	})
	if err != nil {
		return harness.Batch{}, fmt.Errorf("nar: distill: teacher decoding: %w", err)
	}
	width := 0
	for i, r := range tgts {
		if r[len(r)-1] != end {
			return harness.Batch{}, fmt.Errorf("nar: distill: row %d ends with %d, row 0 with %d; rows must share their end token", i, r[len(r)-1], end)
		}
		width = max(width, len(out.Outputs[i])+1)
	}
	d := harness.Batch{Source: b.Source, Inputs: b.Inputs, Targets: make([][]int, len(tgts))}
	for i, o := range out.Outputs {
		row := make([]int, width)
		for j := range row {
			row[j] = -1
		}
		copy(row, o)
		row[len(o)] = end
		d.Targets[i] = row
	}
	return d, nil
}
