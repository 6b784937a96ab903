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
//   - each model fits in the machine's memory (MemoryEstimator).
//
// The tasks it prepared are returned for the runner to reuse (each for the
// first seed it runs with); the caller closes those it does not use.
func preflight(ctx context.Context, e *Experiment, pending []combo, opt RunOptions) (map[preparedKey]Task, error) {
	var errs ConfigErrors
	add := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if opt.SaveWeights != "" {
		if err := checkWritableDir(opt.SaveWeights); err != nil {
			add("-save-weights", "%v", err)
		}
	}
	checked := map[string]bool{}
	for _, c := range pending {
		if c.weightsIn != "" && !checked[c.weightsIn] {
			checked[c.weightsIn] = true
			if err := nn.CheckSafetensors(c.weightsIn); err != nil {
				add("-load-weights", "%s: %v", c.key, err)
			}
		}
	}
	prepared := map[preparedKey]Task{}
	failed := map[*TaskSpec]bool{}
	pairs := map[[2]any]bool{}
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
		if pairs[[2]any{c.task, c.model}] {
			continue
		}
		pairs[[2]any{c.task, c.model}] = true
		for _, msg := range checkPairing(c, task.Info()) {
			errs = append(errs, located(c.model.origin, fmt.Sprintf("models[%d]", modelIndex(e, c.model)), msg))
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
// allocating the model: capabilities, configuration and memory.
func checkPairing(c combo, info TaskInfo) []string {
	m, err := NewModel(c.model.Name)
	if err != nil {
		return []string{err.Error()}
	}
	if err := copyConfig(m.Config(), c.model.Config); err != nil {
		return []string{err.Error()}
	}
	var msgs []string
	if miss := MissingCapabilities(m, info.Needs); miss != "" {
		msgs = append(msgs, capabilityError(c.model.Label, c.task.Label(), miss).Error())
	}
	env := Env{Vocab: info.Vocab, SeqLen: info.SeqLen, Seed: c.seed, Batch: c.model.Train.Batch}
	if ec, ok := m.(EnvChecker); ok {
		for _, err := range ec.CheckEnv(env) {
			msgs = append(msgs, fmt.Sprintf("config on task %s: %v", c.task.Label(), err))
		}
	}
	if err := CheckMemory(m, env); err != nil {
		msgs = append(msgs, fmt.Sprintf("on task %s: %v", c.task.Label(), err))
	}
	return msgs
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
// run resumes or overwrites them.
func checkOutput(e *Experiment, opt RunOptions) error {
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
