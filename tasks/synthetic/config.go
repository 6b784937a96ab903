package synthetic

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"arbench/harness"
)

// Variants lists the task variants.
func Variants() []string {
	return []string{"copy", "selective-copy", "assoc-recall", "needle", "copy-memory", "dyck", "oracle"}
}

// Config is the synthetic task's typed configuration. One struct serves all
// variants; a field that does not apply to the task's variant must keep its
// default (Prepare reports it otherwise). Lists left empty take the
// variant's default sweep.
//
// Fields added after results were first recorded (distractors and those
// below it) default to their zero value and are omitted from the recorded
// configuration when zero, so a stored configuration written before they
// existed compares equal to its rerun (arbench reproduce, -resume).
type Config struct {
	// Symbols is the size of the main alphabet: the copied symbols (copy,
	// selective-copy, copy-memory), the values (assoc-recall, needle) or
	// the emitted symbols (oracle).
	Symbols int `yaml:"symbols"`
	// Lengths sweeps the sequence length: L copied symbols (copy), the
	// region length N (selective-copy), the word length (dyck, even), or
	// holds the single sequence length (oracle). Defaults: copy [8, 16, 32],
	// selective-copy [16, 32, 64], dyck [32], oracle [64].
	Lengths []int `yaml:"lengths"`
	// Distances sweeps needle's distance d between needle and query
	// (default [4, 16, 64, 128]).
	Distances []int `yaml:"distances"`
	// Pairs sweeps assoc-recall's number of key–value pairs (default
	// [2, 4, 8, 16]).
	Pairs []int `yaml:"pairs"`
	// Queries is assoc-recall's number of queries per row; 0 queries every key.
	Queries int `yaml:"queries"`
	// Keys is the key alphabet size of assoc-recall (at least the largest
	// pairs) and of needle with distractors (at least distractors + 1).
	Keys int `yaml:"keys"`
	// Fillers is needle's filler alphabet size.
	Fillers int `yaml:"fillers"`
	// MaxPrefix is needle's longest random prefix of fillers before the needle.
	MaxPrefix int `yaml:"max_prefix"`
	// Marked is selective-copy's number of symbols to copy, M.
	Marked int `yaml:"marked"`
	// Types is dyck's number of bracket types.
	Types int `yaml:"types"`
	// MaxDepth is dyck's maximum nesting depth.
	MaxDepth int `yaml:"max_depth"`
	// States is the oracle HMM's number of hidden states.
	States int `yaml:"states"`
	// Concentration is the oracle HMM's Dirichlet parameter.
	Concentration float64 `yaml:"concentration"`
	// FreeRunning enables the free-running measurements (greedy answers fed
	// back on copy, selective-copy, assoc-recall and copy-memory; sampled
	// sequences on oracle), which cost one model call per generated token.
	FreeRunning bool `yaml:"free_running"`
	// UsableAccuracy is the accuracy threshold of the usable_* metrics (the
	// largest swept value up to which accuracy stays at or above it).
	UsableAccuracy float64 `yaml:"usable_accuracy"`
	// EvalRows is the number of test rows per sweep value.
	EvalRows int `yaml:"eval_rows"`
	// ValidRows is the number of validation rows (spread over the sweep).
	ValidRows int `yaml:"valid_rows"`
	// EvalBatch is the number of rows per model call in evaluation.
	EvalBatch int `yaml:"eval_batch"`

	// Distractors is needle's number of distractor pairs. With 0 the
	// haystack holds one needle and the query names nothing (the original
	// task); with N > 0 it holds N+1 key–value pairs with distinct keys
	// and the query names one of them (see genNeedleKeyed).
	Distractors int `yaml:"distractors,omitempty"`
	// Items is copy-memory's number of symbols to remember, K; 0 means
	// defaultItems (10, as in Arjovsky et al. 2016).
	Items int `yaml:"items,omitempty"`
	// Delays sweeps copy-memory's blank delay D between the symbols and the
	// cue (default [4, 16, 64, 128]); 0 is allowed (cue right after them).
	Delays []int `yaml:"delays,omitempty"`
	// Stickiness p in [0, 1) slows the oracle HMM's mixing: every
	// transition row becomes p·(the row restricted to the current state's
	// block, renormalised) + (1−p)·(the drawn row). With blocks 0 each
	// state is its own block, so p is an extra probability of staying put.
	Stickiness float64 `yaml:"stickiness,omitempty"`
	// Blocks partitions the oracle's states into this many contiguous
	// blocks of near-equal size for stickiness (0: one block per state).
	// Within a block the state moves freely, between blocks rarely: a
	// slow latent "topic" under fast local dynamics.
	Blocks int `yaml:"blocks,omitempty"`
	// GradientNorms measures ‖∂ℓ_t/∂x_{t−k}‖ at each test row's long-range
	// readout before and after training (see gradients.go) for models that
	// are harness.InputGradienters; other models are evaluated without it.
	GradientNorms bool `yaml:"gradient_norms,omitempty"`
	// GradientRows is the number of test rows (of the largest sweep value)
	// the gradient measurement uses; 0 means all of them (eval_rows).
	GradientRows int `yaml:"gradient_rows,omitempty"`
}

// defaultItems is copy-memory's K when items is 0.
const defaultItems = 10

// DefaultConfig returns the defaults shared by every variant.
func DefaultConfig() Config {
	return Config{
		Symbols: 8, Keys: 32, Fillers: 8, MaxPrefix: 8, Marked: 4, Types: 2, MaxDepth: 8,
		States: 16, Concentration: 0.1, FreeRunning: true, UsableAccuracy: 0.9,
		EvalRows: 128, ValidRows: 128, EvalBatch: 64,
	}
}

// items returns copy-memory's K.
func (c *Config) items() int {
	if c.Items == 0 {
		return defaultItems
	}
	return c.Items
}

// maxSweep bounds sweep values so that a configuration cannot ask for
// absurdly long rows by accident.
const maxSweep = 1 << 16

// Validate reports every invalid field at once. Checks that depend on the
// variant are made by Prepare.
func (c *Config) Validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	positive := func(name string, v int) {
		if v <= 0 {
			add("%s: must be positive, got %d", name, v)
		}
	}
	nonNegative := func(name string, v int) {
		if v < 0 {
			add("%s: must be >= 0, got %d", name, v)
		}
	}
	sweep := func(name string, vs []int, min int) {
		seen := map[int]bool{}
		for _, v := range vs {
			switch {
			case v < min || v > maxSweep:
				add("%s: %d outside [%d, %d]", name, v, min, maxSweep)
			case seen[v]:
				add("%s: %d listed twice", name, v)
			}
			seen[v] = true
		}
	}
	positive("symbols", c.Symbols)
	sweep("lengths", c.Lengths, 1)
	sweep("distances", c.Distances, 1)
	sweep("pairs", c.Pairs, 1)
	if c.Queries < 0 {
		add("queries: must be 0 (every key) or positive, got %d", c.Queries)
	}
	positive("keys", c.Keys)
	positive("fillers", c.Fillers)
	nonNegative("max_prefix", c.MaxPrefix)
	positive("marked", c.Marked)
	positive("types", c.Types)
	positive("max_depth", c.MaxDepth)
	positive("states", c.States)
	// Comparisons are written so that NaN fails them.
	if !(c.Concentration > 0 && c.Concentration < math.Inf(1)) {
		add("concentration: must be a positive finite number, got %v", c.Concentration)
	}
	if !(c.UsableAccuracy > 0 && c.UsableAccuracy <= 1) {
		add("usable_accuracy: must be in (0, 1], got %v", c.UsableAccuracy)
	}
	positive("eval_rows", c.EvalRows)
	positive("valid_rows", c.ValidRows)
	positive("eval_batch", c.EvalBatch)
	nonNegative("distractors", c.Distractors)
	nonNegative("items", c.Items)
	sweep("delays", c.Delays, 0)
	errs = append(errs, c.validateOracleShape()...)
	nonNegative("gradient_rows", c.GradientRows)
	if c.GradientRows > 0 && c.EvalRows > 0 && c.GradientRows > c.EvalRows {
		add("gradient_rows: %d exceeds the %d test rows per sweep value (eval_rows)", c.GradientRows, c.EvalRows)
	}
	if c.GradientRows != 0 && !c.GradientNorms {
		add("gradient_rows: set without gradient_norms: true")
	}
	return errs
}

// validateOracleShape checks stickiness and blocks.
func (c *Config) validateOracleShape() []error {
	var errs []error
	if !(c.Stickiness >= 0 && c.Stickiness < 1) {
		errs = append(errs, fmt.Errorf("stickiness: must be in [0, 1), got %v", c.Stickiness))
	}
	switch {
	case c.Blocks < 0:
		errs = append(errs, fmt.Errorf("blocks: must be >= 0 (0: one block per state), got %d", c.Blocks))
	case c.Blocks == 1:
		errs = append(errs, errors.New("blocks: 1 block is the whole chain, which stickiness leaves unchanged; use 0 (one block per state) or at least 2"))
	case c.Blocks > 0 && c.States > 0 && c.Blocks > c.States:
		errs = append(errs, fmt.Errorf("blocks: %d blocks for %d states", c.Blocks, c.States))
	case c.Blocks > 0 && c.Stickiness == 0:
		errs = append(errs, errors.New("blocks: has no effect without stickiness > 0"))
	}
	return errs
}

// gradientFields are the fields of the gradient measurement, read by every
// variant with a long-range readout (all but oracle).
var gradientFields = []string{"gradient_norms", "gradient_rows"}

// variantFields lists the fields variant reads besides the common ones
// (eval_rows, valid_rows, eval_batch); ok is false for an unknown variant.
func variantFields(variant string) (fields []string, ok bool) {
	switch variant {
	case "copy":
		fields = []string{"symbols", "lengths", "free_running", "usable_accuracy"}
	case "selective-copy":
		fields = []string{"symbols", "lengths", "marked", "free_running", "usable_accuracy"}
	case "assoc-recall":
		fields = []string{"symbols", "pairs", "queries", "keys", "free_running", "usable_accuracy"}
	case "needle":
		fields = []string{"symbols", "distances", "fillers", "max_prefix", "distractors", "keys", "usable_accuracy"}
	case "copy-memory":
		fields = []string{"symbols", "items", "delays", "free_running", "usable_accuracy"}
	case "dyck":
		fields = []string{"lengths", "types", "max_depth"}
	case "oracle":
		return []string{"symbols", "lengths", "states", "concentration", "stickiness", "blocks", "free_running"}, true
	default:
		return nil, false
	}
	return append(fields, gradientFields...), true
}

// changed lists the variant-specific fields whose value differs from the
// default. An empty sweep list is the default (orDefault), so a stored
// configuration, which writes unset lists as [], reloads as it was.
func (c *Config) changed() []string {
	d := DefaultConfig()
	var out []string
	add := func(name string, differs bool) {
		if differs {
			out = append(out, name)
		}
	}
	add("symbols", c.Symbols != d.Symbols)
	add("lengths", len(c.Lengths) > 0)
	add("distances", len(c.Distances) > 0)
	add("pairs", len(c.Pairs) > 0)
	add("queries", c.Queries != d.Queries)
	add("keys", c.Keys != d.Keys)
	add("fillers", c.Fillers != d.Fillers)
	add("max_prefix", c.MaxPrefix != d.MaxPrefix)
	add("marked", c.Marked != d.Marked)
	add("types", c.Types != d.Types)
	add("max_depth", c.MaxDepth != d.MaxDepth)
	add("states", c.States != d.States)
	add("concentration", c.Concentration != d.Concentration)
	add("free_running", c.FreeRunning != d.FreeRunning)
	add("usable_accuracy", c.UsableAccuracy != d.UsableAccuracy)
	add("distractors", c.Distractors != d.Distractors)
	add("items", c.Items != d.Items)
	add("delays", len(c.Delays) > 0)
	add("stickiness", c.Stickiness != d.Stickiness)
	add("blocks", c.Blocks != d.Blocks)
	add("gradient_norms", c.GradientNorms != d.GradientNorms)
	add("gradient_rows", c.GradientRows != d.GradientRows)
	return out
}

// ValidateVariant reports the problems resolve would find for variant
// (unknown variant, fields that do not apply to it, sizes that do not fit).
func (c *Config) ValidateVariant(variant string) []error {
	if _, err := c.resolve(variant); err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
		return []error{err}
	}
	return nil
}

var (
	_ harness.Config           = (*Config)(nil)
	_ harness.VariantValidator = (*Config)(nil)
)

// resolve checks the configuration against the variant and returns the
// sweep values (sorted), filling the variant's defaults.
func (c *Config) resolve(variant string) ([]int, error) {
	fields, ok := variantFields(variant)
	if !ok {
		if variant == "" {
			return nil, fmt.Errorf("no variant: name one as synthetic/VARIANT (%s)", strings.Join(Variants(), ", "))
		}
		return nil, fmt.Errorf("unknown variant %q (available: %s)", variant, strings.Join(Variants(), ", "))
	}
	var errs []error
	if err := errors.Join(c.Validate()...); err != nil {
		errs = append(errs, err)
	}
	for _, f := range c.changed() {
		if !slices.Contains(fields, f) {
			errs = append(errs, fmt.Errorf("%s: does not apply to variant %s (it reads %s)", f, variant, strings.Join(fields, ", ")))
		}
	}
	sweep, more := c.resolveSweep(variant, len(errs) == 0)
	errs = append(errs, more...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sweep, nil
}

// resolveSweep returns the variant's sweep and the problems of sizes that
// do not fit it; the checks that compare fields run only when the fields
// are valid on their own (valid).
func (c *Config) resolveSweep(variant string, valid bool) ([]int, []error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	var sweep []int
	switch variant {
	case "copy":
		sweep = orDefault(c.Lengths, 8, 16, 32)
	case "selective-copy":
		sweep = orDefault(c.Lengths, 16, 32, 64)
		if valid && c.Marked > slices.Min(sweep) {
			add("marked: %d symbols do not fit in the shortest region of %d tokens", c.Marked, slices.Min(sweep))
		}
	case "assoc-recall":
		sweep = orDefault(c.Pairs, 2, 4, 8, 16)
		if valid && c.Keys < slices.Max(sweep) {
			add("keys: %d keys are fewer than the %d pairs asked for", c.Keys, slices.Max(sweep))
		}
		if valid && c.Queries > slices.Min(sweep) {
			add("queries: %d queries exceed the smallest number of pairs %d (keys are queried at most once)", c.Queries, slices.Min(sweep))
		}
	case "needle":
		sweep = orDefault(c.Distances, 4, 16, 64, 128)
		if valid && c.Distractors > 0 {
			if c.Keys < c.Distractors+1 {
				add("keys: %d keys are fewer than the %d pairs of %d distractors and the needle", c.Keys, c.Distractors+1, c.Distractors)
			}
			if slices.Min(sweep) < 2 {
				add("distances: with distractors the query repeats the key, so the shortest distance is 2, got %d", slices.Min(sweep))
			}
		}
		if valid && c.Distractors == 0 && c.Keys != DefaultConfig().Keys {
			add("keys: needle reads keys only with distractors > 0")
		}
	case "copy-memory":
		sweep = orDefault(c.Delays, 4, 16, 64, 128)
	case "dyck":
		sweep = orDefault(c.Lengths, 32)
		for _, n := range sweep {
			if n%2 != 0 {
				add("lengths: dyck words have even length, got %d", n)
			}
		}
	case "oracle":
		sweep = orDefault(c.Lengths, 64)
		if len(sweep) != 1 {
			add("lengths: oracle takes a single sequence length, got %d", len(sweep))
		}
	}
	return sweep, errs
}

func orDefault(vs []int, def ...int) []int {
	if len(vs) == 0 {
		vs = def
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return vs
}
