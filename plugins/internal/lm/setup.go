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

// TransformerShape is the shape of a Transformer plugin's configuration
// (transformer, transformer-s2s, nar), checked by one rule set.
type TransformerShape struct {
	Dim, Heads, Layers, FF, Context int
	Dropout                         float64
}

// Errors reports every invalid field, named by its YAML key: dim, heads
// (positive, dividing dim), layers, ff (0 for 4·dim, or positive),
// context and dropout in [0,1). Comparisons are written so that NaN fails
// them.
func (s TransformerShape) Errors() []error {
	var errs []error
	if s.Dim <= 0 {
		errs = append(errs, fmt.Errorf("dim: must be positive, got %d", s.Dim))
	}
	if s.Heads <= 0 {
		errs = append(errs, fmt.Errorf("heads: must be positive, got %d", s.Heads))
	} else if s.Dim > 0 && s.Dim%s.Heads != 0 {
		errs = append(errs, fmt.Errorf("heads: %d does not divide dim %d", s.Heads, s.Dim))
	}
	if s.Layers <= 0 {
		errs = append(errs, fmt.Errorf("layers: must be positive, got %d", s.Layers))
	}
	if s.FF < 0 {
		errs = append(errs, fmt.Errorf("ff: must be 0 (4·dim) or positive, got %d", s.FF))
	}
	if s.Context <= 0 {
		errs = append(errs, fmt.Errorf("context: must be positive, got %d", s.Context))
	}
	if !(s.Dropout >= 0 && s.Dropout < 1) {
		errs = append(errs, fmt.Errorf("dropout: must be in [0,1), got %v", s.Dropout))
	}
	return errs
}

// MinCacheCapacity is the smallest key/value cache capacity (positions per
// row) of the Transformer plugins' incremental decoding.
const MinCacheCapacity = 16

// CacheCapacity is the cache capacity that holds n positions: the
// smallest power of two of at least MinCacheCapacity and n, at most
// context, so one set of executables per capacity serves many positions.
func CacheCapacity(n, context int) int {
	c := MinCacheCapacity
	for c < n {
		c *= 2
	}
	return min(c, context)
}
