package harness

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Capability is something a task needs of a model beyond the Model
// interface: one of the optional interfaces, or a combination of them.
type Capability string

// The capabilities a task can declare in TaskInfo.Needs.
const (
	// NeedTrainer: the task trains the model (Trainer or StepTrainer). A
	// model without it is still evaluated untrained, so no task needs to
	// declare it.
	NeedTrainer Capability = "Trainer"
	// NeedScorer: teacher-forced log-probabilities of targets (Scorer).
	NeedScorer Capability = "Scorer"
	// NeedDistributions: full next-token distributions (Distributioner).
	NeedDistributions Capability = "Distributioner"
	// NeedDecoding: free-running generation, by Stepper or by re-reading
	// the prefix with Distributioner (see Decoder).
	NeedDecoding Capability = "Stepper or Distributioner"
	// NeedStepper: generation with carried state (Stepper).
	NeedStepper Capability = "Stepper"
	// NeedTextScorer: raw text scored with the model's own tokenizer
	// (TextScorer).
	NeedTextScorer Capability = "TextScorer"
	// NeedTextScoring: text scored as byte tokens (Scorer) or with the
	// model's own tokenizer (TextScorer).
	NeedTextScoring Capability = "Scorer or TextScorer"
	// NeedSource: the model reads a source sequence, as a Conditioner
	// reporting true or as a SourceJoiner language model that can decode
	// (SourceMode, seq2seq.go).
	NeedSource Capability = "a source-aware mode (a Conditioner, or a SourceJoiner language model)"
	// NeedInputGradients: gradient norms with respect to earlier inputs
	// (InputGradienter).
	NeedInputGradients Capability = "InputGradienter"
)

// Has reports whether m provides c (as a CapabilityDeclarer declares it).
func (c Capability) Has(m Model) bool {
	switch c {
	case NeedTrainer:
		return Trainable(m)
	case NeedScorer:
		_, ok := ScorerOf(m)
		return ok
	case NeedDistributions:
		_, ok := DistributionerOf(m)
		return ok
	case NeedStepper:
		_, ok := StepperOf(m)
		return ok
	case NeedTextScorer:
		_, ok := TextScorerOf(m)
		return ok
	case NeedTextScoring:
		_, sc := ScorerOf(m)
		_, ts := TextScorerOf(m)
		return sc || ts
	case NeedDecoding:
		_, st := StepperOf(m)
		_, d := DistributionerOf(m)
		return st || d
	case NeedSource:
		return SourceMode(m) != ""
	case NeedInputGradients:
		_, ok := InputGradienterOf(m)
		return ok
	}
	return false
}

// MissingCapabilities describes what m lacks of needs ("" when nothing).
func MissingCapabilities(m Model, needs []Capability) string {
	var miss []string
	for _, c := range needs {
		if !c.Has(m) {
			miss = append(miss, string(c))
		}
	}
	return strings.Join(miss, ", ")
}

// capabilityError reports a task/model pairing that cannot work.
func capabilityError(model, task string, missing string) error {
	return fmt.Errorf("model %s cannot run task %s: it lacks %s", model, task, missing)
}

// ErrDiverged marks a training step whose loss or gradient is not finite.
// A plugin may return it (wrapped) from Trainer.Gradients instead of a
// non-finite loss; either way the runner records the run as diverged, with
// its curves, and goes on with the others.
var ErrDiverged = errors.New("diverged")

// DataTaskName is the name results use for a task that reads the local
// file path instead of its variant's corpus: the family, a slash and the
// file's base name without its extension ("text/notes" for -task text/jargon
// -data ~/notes.txt), so runs on different files never share a name.
func DataTaskName(family, path string) string {
	base := filepath.Base(path)
	if ext := filepath.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return family + "/" + base
}

// CheckModel is the check every consumer makes of a configured model
// before Setup allocates it: the plugin's own check of env (EnvChecker)
// and its memory estimate (CheckMemory). Problems are joined; nil when the
// model may be set up.
func CheckModel(m Model, env Env) error {
	var errs []error
	if ec, ok := m.(EnvChecker); ok {
		errs = append(errs, ec.CheckEnv(env)...)
	}
	if err := CheckMemory(m, env); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
