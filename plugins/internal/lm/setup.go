package lm

import (
	"errors"
	"fmt"

	"arbench/harness"
)

// CheckEnv reports what every language model needs of a task's Env: a
// vocabulary and a window length that is not negative. Plugins' CheckEnv
// (harness.EnvChecker) start from it and add their own limits.
func CheckEnv(env harness.Env) []error {
	var errs []error
	if env.Vocab <= 0 {
		errs = append(errs, fmt.Errorf("the task's vocabulary has %d tokens; a language model needs at least one", env.Vocab))
	}
	if env.SeqLen < 0 {
		errs = append(errs, fmt.Errorf("the task's window length is %d; it must not be negative", env.SeqLen))
	}
	if env.Batch < 0 {
		errs = append(errs, fmt.Errorf("the training batch is %d; it must not be negative", env.Batch))
	}
	return errs
}

// CheckSetup is the common start of a plugin's Setup: the problems of its
// configuration (Config.Validate), those its CheckEnv finds in env, and a
// missing backend, all in one error prefixed with family; nil when there
// are none. Setup thereby rejects everything the experiment check rejects.
func CheckSetup(family string, config, env []error, backend bool) error {
	var errs []error
	for _, err := range config {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	errs = append(errs, env...)
	if !backend {
		errs = append(errs, errors.New("setup needs a backend"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", family, errors.Join(errs...))
}
