// Package synthetic is arbench's family of generated sequence tasks
// ("synthetic/VARIANT"), built to measure two weaknesses of autoregressive
// models: error accumulation and long-range dependency. Every sequence is
// generated from the run's seed; nothing is downloaded.
//
// Token layout, shared by all variants: 0 Pad (padding, never a target),
// 1 BOS (starts every sequence), 2 Sep, 3 Noise, 4 Query, then the
// variant's alphabets from FirstSymbol = 5 on. The model reads a sequence
// and predicts its next token at every position; each variant says which
// targets are in the training loss and which are evaluated (its answers).
//
//   - copy: [BOS, x1..xL, Sep, x1..xL], xi uniform over `symbols`; the copy
//     is the answer (and the only part in the loss). Swept: `lengths` L.
//   - selective-copy: [BOS, region, Sep, m1..mM]: a region of N tokens with
//     M = `marked` symbols at random positions among Noise tokens, then the
//     M symbols in order (Gu & Dao 2023, "Mamba", §3.1). Swept: `lengths` N.
//   - assoc-recall: [BOS, k1 v1 .. kP vP, Sep, q1 a1 .. qQ aQ]: P distinct
//     keys (alphabet of `keys` tokens) with values (alphabet of `symbols`
//     tokens after the keys), then Q = `queries` (0: all P) of the keys in
//     random order each followed by its value; only the values after the
//     queries are scored (multi-query associative recall, Arora et al. 2023,
//     "Zoology"). Swept: `pairs` P.
//   - needle: [BOS, p fillers, v, d−1 fillers, Query, v], p uniform in
//     [0, `max_prefix`], fillers uniform over `fillers` tokens, the needle v
//     over `symbols` tokens after them; the v after Query, at distance d from
//     the needle, is the only target. Swept: `distances` d.
//   - dyck: [BOS, w], w a random balanced word of n brackets of `types`
//     types with depth at most `max_depth` (openers first, then closers of
//     the same order); every token is in the loss and the closers are
//     evaluated: a closer counts as correct when the model ranks the right
//     closer above the other closers. Swept: `lengths` n (even).
//   - oracle: [BOS, x1..xT] sampled from a random hidden Markov model (HMM,
//     `states` states emitting `symbols` symbols, Dirichlet(`concentration`)
//     rows, drawn from the run's seed) whose exact next-token distribution
//     is known for any prefix; every token is in the loss. `lengths` holds
//     the single length T.
//
// Training rows are generated afresh for every batch, each for a sweep
// value drawn uniformly (so every batch mixes the sweep; shorter rows are
// right-padded). Evaluation generates eval_rows
// test rows per sweep value and reports per-value accuracy as the series
// accuracy_vs_distance, teacher-forced and free-running error per answer
// position on copy, selective-copy and assoc-recall (see Evaluate), and the
// exposure-bias measurements of Arora et al. 2022 on oracle.
package synthetic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"arbench/harness"
)

func init() {
	harness.RegisterTask("synthetic",
		"generated tasks for error accumulation and long-range dependency: synthetic/{"+strings.Join(Variants(), ",")+"}", New)
}

// Variants lists the task variants.
func Variants() []string {
	return []string{"copy", "selective-copy", "assoc-recall", "needle", "dyck", "oracle"}
}

// Config is the synthetic task's typed configuration. One struct serves all
// variants; a field that does not apply to the task's variant must keep its
// default (Prepare reports it otherwise). Lists left empty take the
// variant's default sweep.
type Config struct {
	// Symbols is the size of the main alphabet: the copied symbols (copy,
	// selective-copy), the values (assoc-recall, needle) or the emitted
	// symbols (oracle).
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
	// Keys is assoc-recall's key alphabet size (at least the largest pairs).
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
	// back on copy, selective-copy and assoc-recall; sampled sequences on
	// oracle), which cost one model call per generated token.
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
}

// DefaultConfig returns the defaults shared by every variant.
func DefaultConfig() Config {
	return Config{
		Symbols: 8, Keys: 32, Fillers: 8, MaxPrefix: 8, Marked: 4, Types: 2, MaxDepth: 8,
		States: 16, Concentration: 0.1, FreeRunning: true, UsableAccuracy: 0.9,
		EvalRows: 128, ValidRows: 128, EvalBatch: 64,
	}
}

// maxSweep bounds sweep values so that a configuration cannot ask for
// absurdly long rows by accident.
const maxSweep = 1 << 16

// Validate reports every invalid field at once. Checks that depend on the
// variant are made by Prepare.
func (c *Config) Validate() []error {
	var errs []error
	positive := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", name, v))
		}
	}
	sweep := func(name string, vs []int, min int) {
		seen := map[int]bool{}
		for _, v := range vs {
			switch {
			case v < min || v > maxSweep:
				errs = append(errs, fmt.Errorf("%s: %d outside [%d, %d]", name, v, min, maxSweep))
			case seen[v]:
				errs = append(errs, fmt.Errorf("%s: %d listed twice", name, v))
			}
			seen[v] = true
		}
	}
	positive("symbols", c.Symbols)
	sweep("lengths", c.Lengths, 1)
	sweep("distances", c.Distances, 1)
	sweep("pairs", c.Pairs, 1)
	if c.Queries < 0 {
		errs = append(errs, fmt.Errorf("queries: must be 0 (every key) or positive, got %d", c.Queries))
	}
	positive("keys", c.Keys)
	positive("fillers", c.Fillers)
	if c.MaxPrefix < 0 {
		errs = append(errs, fmt.Errorf("max_prefix: must be >= 0, got %d", c.MaxPrefix))
	}
	positive("marked", c.Marked)
	positive("types", c.Types)
	positive("max_depth", c.MaxDepth)
	positive("states", c.States)
	// Comparisons are written so that NaN fails them.
	if !(c.Concentration > 0 && c.Concentration < math.Inf(1)) {
		errs = append(errs, fmt.Errorf("concentration: must be a positive finite number, got %v", c.Concentration))
	}
	if !(c.UsableAccuracy > 0 && c.UsableAccuracy <= 1) {
		errs = append(errs, fmt.Errorf("usable_accuracy: must be in (0, 1], got %v", c.UsableAccuracy))
	}
	positive("eval_rows", c.EvalRows)
	positive("valid_rows", c.ValidRows)
	positive("eval_batch", c.EvalBatch)
	return errs
}

// variantFields lists the fields variant reads besides the common ones
// (eval_rows, valid_rows, eval_batch); ok is false for an unknown variant.
func variantFields(variant string) (fields []string, ok bool) {
	switch variant {
	case "copy":
		return []string{"symbols", "lengths", "free_running", "usable_accuracy"}, true
	case "selective-copy":
		return []string{"symbols", "lengths", "marked", "free_running", "usable_accuracy"}, true
	case "assoc-recall":
		return []string{"symbols", "pairs", "queries", "keys", "free_running", "usable_accuracy"}, true
	case "needle":
		return []string{"symbols", "distances", "fillers", "max_prefix", "usable_accuracy"}, true
	case "dyck":
		return []string{"lengths", "types", "max_depth"}, true
	case "oracle":
		return []string{"symbols", "lengths", "states", "concentration", "free_running"}, true
	}
	return nil, false
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
	var sweep []int
	switch variant {
	case "copy":
		sweep = orDefault(c.Lengths, 8, 16, 32)
	case "selective-copy":
		sweep = orDefault(c.Lengths, 16, 32, 64)
		if len(errs) == 0 && c.Marked > slices.Min(sweep) {
			errs = append(errs, fmt.Errorf("marked: %d symbols do not fit in the shortest region of %d tokens", c.Marked, slices.Min(sweep)))
		}
	case "assoc-recall":
		sweep = orDefault(c.Pairs, 2, 4, 8, 16)
		if len(errs) == 0 && c.Keys < slices.Max(sweep) {
			errs = append(errs, fmt.Errorf("keys: %d keys are fewer than the %d pairs asked for", c.Keys, slices.Max(sweep)))
		}
		if len(errs) == 0 && c.Queries > slices.Min(sweep) {
			errs = append(errs, fmt.Errorf("queries: %d queries exceed the smallest number of pairs %d (keys are queried at most once)", c.Queries, slices.Min(sweep)))
		}
	case "needle":
		sweep = orDefault(c.Distances, 4, 16, 64, 128)
	case "dyck":
		sweep = orDefault(c.Lengths, 32)
		for _, n := range sweep {
			if n%2 != 0 {
				errs = append(errs, fmt.Errorf("lengths: dyck words have even length, got %d", n))
			}
		}
	case "oracle":
		sweep = orDefault(c.Lengths, 64)
		if len(sweep) != 1 {
			errs = append(errs, fmt.Errorf("lengths: oracle takes a single sequence length, got %d", len(sweep)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sweep, nil
}

func orDefault(vs []int, def ...int) []int {
	if len(vs) == 0 {
		vs = def
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return vs
}

// Random streams derived from the run's seed (the PCG's second word).
const (
	oracleStream = 0x6f7261636c65 // "oracle"
	validStream  = 0x76616c6964   // "valid"
	testStream   = 0x74657374     // "test"
)

// Task is a synthetic task.
type Task struct {
	cfg     Config
	variant string
	seed    uint64
	sweep   []int
	vocab   int
	hmm     *HMM // oracle only

	valid, test []group
}

var _ harness.Task = (*Task)(nil)

// New returns an unprepared task with the default configuration.
func New() harness.Task { return &Task{cfg: DefaultConfig()} }

// Config returns the task's configuration, for strict decoding.
func (t *Task) Config() harness.Config { return &t.cfg }

// Prepare resolves the configuration for env.Variant and generates the
// validation and test rows (and, for oracle, the HMM) from env.Seed.
func (t *Task) Prepare(ctx context.Context, env harness.TaskEnv) error {
	if env.DataFile != "" {
		return fmt.Errorf("synthetic: generated tasks read no data file (got -data %s)", env.DataFile)
	}
	sweep, err := t.cfg.resolve(env.Variant)
	if err != nil {
		return fmt.Errorf("synthetic/%s: invalid config: %w", env.Variant, err)
	}
	t.variant, t.seed, t.sweep = env.Variant, env.Seed, sweep
	c := &t.cfg
	switch t.variant {
	case "copy", "selective-copy":
		t.vocab = FirstSymbol + c.Symbols
	case "assoc-recall":
		t.vocab = FirstSymbol + c.Keys + c.Symbols
	case "needle":
		t.vocab = FirstSymbol + c.Fillers + c.Symbols
	case "dyck":
		t.vocab = FirstSymbol + 2*c.Types
	case "oracle":
		t.vocab = FirstSymbol + c.Symbols
		t.hmm = NewHMM(rand.New(rand.NewPCG(env.Seed, oracleStream)), c.States, c.Symbols, c.Concentration)
	}
	vrng := rand.New(rand.NewPCG(env.Seed, validStream))
	t.valid = nil
	per := max(1, c.ValidRows/len(sweep))
	for _, s := range sweep {
		t.valid = append(t.valid, t.makeGroup(vrng, s, per))
	}
	trng := rand.New(rand.NewPCG(env.Seed, testStream))
	t.test = nil
	for _, s := range sweep {
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.variant == "oracle" {
			t.test = append(t.test, t.oracleTest(s, c.EvalRows))
			continue
		}
		t.test = append(t.test, t.makeGroup(trng, s, c.EvalRows))
	}
	return nil
}

// width returns the inputs per row for sweep value s.
func (t *Task) width(s int) int {
	c := &t.cfg
	switch t.variant {
	case "copy":
		return 2*s + 1
	case "selective-copy":
		return s + c.Marked + 1
	case "assoc-recall":
		return 2*s + 2*t.queries(s) + 1
	case "needle":
		return c.MaxPrefix + s + 2
	default: // dyck, oracle
		return s
	}
}

// queries returns assoc-recall's number of queries for s pairs.
func (t *Task) queries(pairs int) int {
	if t.cfg.Queries == 0 {
		return pairs
	}
	return t.cfg.Queries
}

// generate draws one example for sweep value s.
func (t *Task) generate(rng *rand.Rand, s int) example {
	c := &t.cfg
	switch t.variant {
	case "copy":
		return genCopy(rng, c.Symbols, s)
	case "selective-copy":
		return genSelectiveCopy(rng, c.Symbols, s, c.Marked)
	case "assoc-recall":
		return genAssocRecall(rng, c.Keys, c.Symbols, s, t.queries(s))
	case "needle":
		return genNeedle(rng, c.Fillers, c.Symbols, s, c.MaxPrefix)
	case "dyck":
		return genDyck(rng, c.Types, s, c.MaxDepth)
	case "oracle":
		e := newExample(s + 1)
		e.seq = append(e.seq, BOS)
		for _, v := range t.hmm.Sample(rng, s) {
			e.seq = append(e.seq, FirstSymbol+v)
		}
		for i := range e.loss {
			e.loss[i], e.answer[i] = true, true
		}
		return e
	}
	panic("synthetic: generate before Prepare")
}

func (t *Task) makeGroup(rng *rand.Rand, s, n int) group {
	g := group{sweep: s, width: t.width(s)}
	for range n {
		g.exs = append(g.exs, t.generate(rng, s))
	}
	return g
}

// Info describes the prepared task; SeqLen is the longest row. EvalBatch
// is the most rows one model call of ValidLoss or Evaluate (teacher-forced,
// free-running and oracle-sampled alike) gets: eval_batch, or the largest
// group of rows of one sweep value when that is smaller.
func (t *Task) Info() harness.TaskInfo {
	seqLen := 0
	for _, s := range t.sweep {
		seqLen = max(seqLen, t.width(s))
	}
	headline := "accuracy"
	if t.variant == "oracle" {
		headline = "kl_per_token"
	}
	largest := 0
	for _, groups := range [][]group{t.valid, t.test} {
		for _, g := range groups {
			largest = max(largest, len(g.exs))
		}
	}
	evalBatch := t.cfg.EvalBatch
	if largest > 0 {
		evalBatch = min(evalBatch, largest)
	}
	return harness.TaskInfo{Name: "synthetic/" + t.variant, Kind: "synthetic", Vocab: t.vocab, SeqLen: seqLen,
		HeadlineMetric: headline, Needs: t.needs(), EvalBatch: evalBatch}
}

// needs lists what the task calls: Scorer for the validation loss,
// Distributioner for the teacher-forced evaluation (answers' argmax, the
// oracle's KL) and decoding for the free-running rollouts.
func (t *Task) needs() []harness.Capability {
	needs := []harness.Capability{harness.NeedScorer, harness.NeedDistributions}
	if t.runsFreeRunning() {
		needs = append(needs, harness.NeedDecoding)
	}
	return needs
}

// runsFreeRunning reports whether Evaluate runs free-running rollouts.
func (t *Task) runsFreeRunning() bool {
	switch t.variant {
	case "copy", "selective-copy", "assoc-recall", "oracle":
		return t.cfg.FreeRunning
	}
	return false
}

// Datasets is empty: the data is generated.
func (t *Task) Datasets() []harness.DatasetRef { return nil }

// TrainBatch generates batch fresh rows, each for a sweep value drawn
// uniformly, right-padded to the longest row (padding targets −1).
func (t *Task) TrainBatch(rng *rand.Rand, batch int) harness.Batch {
	if len(t.sweep) == 0 {
		panic("synthetic: TrainBatch before a successful Prepare")
	}
	exs := make([]example, batch)
	w := 0
	for i := range exs {
		s := t.sweep[rng.IntN(len(t.sweep))]
		exs[i] = t.generate(rng, s)
		w = max(w, t.width(s))
	}
	return batchOf(exs, w, true)
}

// ValidLoss returns the mean nats per loss target over the validation rows.
func (t *Task) ValidLoss(ctx context.Context, m harness.Model) (float64, error) {
	sc, ok := harness.ScorerOf(m)
	if !ok {
		return 0, fmt.Errorf("synthetic: model %q cannot score (it does not implement harness.Scorer)", m.Info().Family)
	}
	var nll float64
	var n int
	for _, g := range t.valid {
		for lo := 0; lo < len(g.exs); lo += t.cfg.EvalBatch {
			b := batchOf(g.exs[lo:min(lo+t.cfg.EvalBatch, len(g.exs))], g.width, true)
			lp, err := sc.LogProbs(ctx, b)
			if err != nil {
				return 0, fmt.Errorf("synthetic: valid loss: %w", err)
			}
			for r, row := range b.Targets {
				for k, tg := range row {
					if tg >= 0 {
						nll -= lp[r][k]
						n++
					}
				}
			}
		}
	}
	return nll / float64(n), nil
}
