package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"arbench/nn"
)

// preparedKey identifies a task prepared for one seed.
type preparedKey struct {
	task *TaskSpec
	seed uint64
}

// preflight checks everything about the pending combinations that can be
// known without training, and reports every problem at once:
//
//   - the weights files to load are complete safetensors files;
//   - the -save-weights directory can be created and written (the runner
//     checks the output directory when it takes its lock);
//   - each task prepares (its variant exists, its data can be read);
//   - each model has what its task needs (TaskInfo.Needs);
//   - each model's configuration suits its task (EnvChecker);
//   - each model fits in the machine's memory (MemoryEstimator);
//   - each weights file to load holds exactly the model's parameters (the
//     model is set up once for this, after its memory was checked).
//
// The tasks it prepared are returned for the runner to reuse (each for the
// first seed it runs with); the caller closes those it does not use.
func preflight(ctx context.Context, e *Experiment, pending []combo, opt RunOptions, backend nn.Backend) (map[preparedKey]Task, error) {
	var errs ConfigErrors
	add := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if opt.SaveWeights != "" {
		if err := checkWritableDir(opt.SaveWeights); err != nil {
			add("-save-weights", "%v", err)
		}
	}
	checked, badFile := map[string]bool{}, map[string]bool{}
	for _, c := range pending {
		// By file and family: a plugin that reads its own files may load a
		// file a built-in model checks as safetensors.
		if key := c.weightsIn + "\x00" + c.model.Name; c.weightsIn != "" && !checked[key] {
			checked[key] = true
			if err := checkWeightsFile(c); err != nil {
				add("-load-weights", "%s: %v", c.key, err)
				badFile[c.weightsIn] = true
			}
		}
	}
	prepared := map[preparedKey]Task{}
	failed := map[*TaskSpec]bool{}
	pairs, weights := map[[2]any]bool{}, map[[3]any]bool{}
	bad := map[*ModelSpec]bool{}
	for _, c := range pending {
		ti := taskIndex(e, c.task)
		if failed[c.task] {
			continue // reported once
		}
		task, ok := firstPrepared(prepared, c.task)
		if !ok {
			if err := ctx.Err(); err != nil {
				closeTasks(prepared)
				return nil, err
			}
			if opt.Log != nil {
				fmt.Fprintf(opt.Log, "checking %s: preparing %s (seed %d)\n", e.Name, c.task.Label(), c.seed)
			}
			t, err := prepareTask(ctx, c.task, c.seed, opt.DataDir)
			if err != nil {
				if ctx.Err() != nil {
					closeTasks(prepared)
					return nil, ctx.Err()
				}
				errs = append(errs, located(c.task.origin, fmt.Sprintf("tasks[%d]", ti), err.Error()))
				failed[c.task] = true
				continue
			}
			prepared[preparedKey{c.task, c.seed}] = t
			task = t
		}
		mpath := fmt.Sprintf("models[%d]", modelIndex(e, c.model))
		if !pairs[[2]any{c.task, c.model}] {
			pairs[[2]any{c.task, c.model}] = true
			msgs := checkPairing(c, task.Info())
			for _, msg := range msgs {
				errs = append(errs, located(c.model.origin, mpath, msg))
			}
			bad[c.model] = bad[c.model] || len(msgs) > 0
		}
		// The shapes depend on the task (vocabulary, window): check each
		// (task, model, file) once.
		if c.weightsIn != "" && !bad[c.model] && !badFile[c.weightsIn] && !weights[[3]any{c.task, c.model, c.weightsIn}] {
			weights[[3]any{c.task, c.model, c.weightsIn}] = true
			if msg := checkWeights(ctx, c, task.Info(), backend); msg != "" {
				errs = append(errs, located(c.model.origin, mpath, msg))
			}
		}
	}
	if len(errs) > 0 {
		closeTasks(prepared)
		return nil, errs
	}
	return prepared, nil
}

// located is a problem of an entry, at its origin when it has one.
func located(o origin, path, msg string) *ConfigError {
	ce := o.locate(path)
	ce.Msg = msg
	return ce
}

// firstPrepared returns the task spec's prepared instance, if any.
func firstPrepared(prepared map[preparedKey]Task, spec *TaskSpec) (Task, bool) {
	for k, t := range prepared {
		if k.task == spec {
			return t, true
		}
	}
	return nil, false
}

// checkPairing checks one model against one prepared task without
// allocating the model: capabilities, then the plugin's own check of the
// task and its memory estimate (CheckModel).
func checkPairing(c combo, info TaskInfo) (msgs []string) {
	m, err := newConfigured(c.model)
	if err != nil {
		return []string{err.Error()}
	}
	defer func() {
		if err := closeModel(m); err != nil {
			msgs = append(msgs, err.Error())
		}
	}()
	if miss := MissingCapabilities(m, info.Needs); miss != "" {
		msgs = append(msgs, capabilityError(c.model.Label, c.task.Label(), miss).Error())
	}
	for _, err := range unjoin(CheckModel(m, runEnv(c, info, nil, m))) {
		msgs = append(msgs, fmt.Sprintf("on task %s: %v", c.task.Label(), err))
	}
	return msgs
}

// checkWeightsFile checks the file a run loads its weights from: a
// complete safetensors file, or for a model that reads its own files
// (WeightsIO) a readable regular file, whose content only the model can
// check.
func checkWeightsFile(c combo) error {
	if m, err := NewModel(c.model.Name); err == nil {
		if _, own := m.(WeightsIO); own {
			f, _, err := openRegular(c.weightsIn)
			if err != nil {
				return err
			}
			return f.Close()
		}
	}
	return nn.CheckSafetensors(c.weightsIn)
}

// checkWeights sets a model up (its memory was checked) and checks that
// the weights file to load holds exactly its parameters, reading only the
// file's header.
func checkWeights(ctx context.Context, c combo, info TaskInfo, b nn.Backend) (msg string) {
	m, err := newConfigured(c.model)
	if err != nil {
		return err.Error()
	}
	defer func() {
		if err := closeModel(m); err != nil && msg == "" {
			msg = err.Error()
		}
	}()
	if err := m.Setup(ctx, runEnv(c, info, b, m)); err != nil {
		return fmt.Sprintf("on task %s: setup: %v", c.task.Label(), err)
	}
	if _, own := m.(WeightsIO); own {
		return "" // the model reads its own files; only it can check them
	}
	if m.Params() == nil {
		return fmt.Sprintf("-load-weights %s: model %s has no parameters", c.weightsIn, c.model.Label)
	}
	if err := nn.CheckSafetensorsParams(c.weightsIn, m.Params()); err != nil {
		return fmt.Sprintf("-load-weights: %v", err)
	}
	return ""
}

// newConfigured makes a model instance holding spec's configuration.
func newConfigured(spec *ModelSpec) (Model, error) {
	m, err := NewModel(spec.Name)
	if err != nil {
		return nil, err
	}
	if err := copyConfig(m.Config(), spec.Config); err != nil {
		return nil, fmt.Errorf("model %s: %w", spec.Name, err)
	}
	return m, nil
}

// runEnv is the Env a combination's model gets: the task's vocabulary,
// window and evaluation batch, and the training batch when it trains.
func runEnv(c combo, info TaskInfo, b nn.Backend, m Model) Env {
	env := Env{Backend: b, Vocab: info.Vocab, SeqLen: info.SeqLen, Seed: c.seed, EvalBatch: info.EvalBatch,
		SourceLen: info.SourceLen, TargetLen: info.TargetLen}
	if Trainable(m) && c.model.Train.Steps > 0 {
		env.Batch = c.model.Train.Batch
	}
	return env
}

// closeModel closes a model that is an io.Closer.
func closeModel(m Model) error {
	if c, ok := m.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("close model %s: %w", m.Info().Family, err)
		}
	}
	return nil
}

// unjoin splits an errors.Join result into its errors.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// prepareTask makes and prepares a task instance for one seed.
func prepareTask(ctx context.Context, spec *TaskSpec, seed uint64, dataDir string) (Task, error) {
	task, variant, err := NewTask(spec.Name)
	if err != nil {
		return nil, err
	}
	if err := copyConfig(task.Config(), spec.Config); err != nil {
		return nil, fmt.Errorf("task %s: %w", spec.Name, err)
	}
	env := TaskEnv{Variant: variant, DataFile: spec.Data, DataDir: dataDir, Seed: seed}
	if err := task.Prepare(ctx, env); err != nil {
		err = fmt.Errorf("task %s seed %d: prepare: %w", spec.Name, seed, err)
		return nil, errors.Join(err, closeTask(task))
	}
	return task, nil
}

// closeTask closes a task that is an io.Closer.
func closeTask(t Task) error {
	if c, ok := t.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("close task %s: %w", t.Info().Name, err)
		}
	}
	return nil
}

func closeTasks(m map[preparedKey]Task) error {
	var errs []error
	for k, t := range m {
		errs = append(errs, closeTask(t))
		delete(m, k)
	}
	return errors.Join(errs...)
}

func taskIndex(e *Experiment, spec *TaskSpec) int {
	for i := range e.Tasks {
		if &e.Tasks[i] == spec {
			return i
		}
	}
	return -1
}

func modelIndex(e *Experiment, spec *ModelSpec) int {
	for i := range e.Models {
		if &e.Models[i] == spec {
			return i
		}
	}
	return -1
}

// checkOutput refuses to replace the results of an earlier run unless the
// run resumes or overwrites them, and result files that are not regular
// files (a FIFO would block the first write).
func checkOutput(e *Experiment, opt RunOptions) error {
	for _, name := range []string{ResultsFileName, SamplesFileName} {
		if st, err := os.Lstat(filepath.Join(e.Out, name)); err == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s); remove it or choose another -out", filepath.Join(e.Out, name), st.Mode().Type())
		}
	}
	path := filepath.Join(e.Out, ResultsFileName)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	if opt.Resume || opt.Overwrite {
		return nil
	}
	return fmt.Errorf("%s already holds results (%s); run with -resume to finish them or -overwrite to replace them, or choose another -out",
		e.Out, path)
}
