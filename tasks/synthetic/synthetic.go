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
//     the needle, is the only target. Swept: `distances` d. With
//     `distractors` N > 0 the haystack holds N+1 key–value pairs (distinct
//     keys of a `keys`-token alphabet after the values, values over
//     `symbols`), the needle pair among them, and the query [Query, k]
//     names the needle's key k; its value, d tokens after the needle's
//     value, is the target (see genNeedleKeyed). Accuracy then needs the
//     key matched, not the most recent value copied.
//   - copy-memory: [BOS, x1..xK, Noise×D, Sep, x1..xK], the copy-memory
//     problem of Hochreiter & Schmidhuber 1997 (§5, experiment 2) as posed
//     by Arjovsky, Shah & Bengio 2016 ("Unitary evolution recurrent neural
//     networks", §4.1): K = `items` symbols over `symbols`, a blank delay of
//     D Noise tokens, the cue Sep, then the K symbols as the answer. K is
//     fixed while D is swept (`delays`), so every answer is K+D+1 tokens
//     from its source and distance is not confounded with memory load.
//   - dyck: [BOS, w], w a random balanced word of n brackets of `types`
//     types with depth at most `max_depth` (openers first, then closers of
//     the same order); every token is in the loss and the closers are
//     evaluated: a closer counts as correct when the model ranks the right
//     closer above the other closers. Swept: `lengths` n (even).
//   - oracle: [BOS, x1..xT] sampled from a random hidden Markov model (HMM,
//     `states` states emitting `symbols` symbols, Dirichlet(`concentration`)
//     rows, drawn from the run's seed) whose exact next-token distribution
//     is known for any prefix; every token is in the loss. `lengths` holds
//     the single length T. `stickiness` (and `blocks`) slow the chain's
//     mixing (HMM.Sticky), so that errors in the model's belief about the
//     hidden state persist and exposure bias becomes possible; the
//     evaluation reports the oracle's entropy rate, unigram entropy and
//     mixing time next to the model's measurements.
//
// Training rows are generated afresh for every batch, each for a sweep
// value drawn uniformly (so every batch mixes the sweep; shorter rows are
// right-padded). Evaluation generates eval_rows
// test rows per sweep value and reports per-value accuracy as the series
// accuracy_vs_distance (copy-memory: accuracy_vs_delay), teacher-forced and
// free-running error per answer position on copy, selective-copy,
// assoc-recall and copy-memory (see Evaluate), and the exposure-bias
// measurements of Arora et al. 2022 on oracle. Every per-row quantity has a
// 95% interval over the test rows (intervals.go), and every variant reports
// what a model that knows only the answer alphabet scores (chance.go). With
// `gradient_norms` the task also measures the norm of the gradient of the
// long-range answer's loss with respect to each earlier input, before and
// after training (gradients.go).
package synthetic

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"arbench/harness"
)

func init() {
	harness.RegisterTask("synthetic",
		"generated tasks for error accumulation and long-range dependency: synthetic/{"+strings.Join(Variants(), ",")+"}", New)
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
	hmm     *HMM        // oracle only
	props   oracleProps // oracle only: entropy rate, unigram entropy, mixing

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
	case "copy", "selective-copy", "copy-memory":
		t.vocab = FirstSymbol + c.Symbols
	case "assoc-recall":
		t.vocab = FirstSymbol + c.Keys + c.Symbols
	case "needle":
		t.vocab = FirstSymbol + c.Fillers + c.Symbols
		if c.Distractors > 0 {
			t.vocab += c.Keys // keys follow the values
		}
	case "dyck":
		t.vocab = FirstSymbol + 2*c.Types
	case "oracle":
		t.vocab = FirstSymbol + c.Symbols
		t.hmm = NewHMM(rand.New(rand.NewPCG(env.Seed, oracleStream)), c.States, c.Symbols, c.Concentration)
		if c.Stickiness > 0 {
			t.hmm = t.hmm.Sticky(c.Stickiness, c.Blocks)
		}
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
	if t.variant == "oracle" {
		if t.props, err = t.oracleProperties(t.test[0]); err != nil {
			return fmt.Errorf("synthetic/oracle: %w", err)
		}
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
		if c.Distractors > 0 {
			return c.MaxPrefix + 2*c.Distractors + s + 3
		}
		return c.MaxPrefix + s + 2
	case "copy-memory":
		return 2*c.items() + s + 1
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
		if c.Distractors > 0 {
			return genNeedleKeyed(rng, needleAlphabets{c.Fillers, c.Symbols, c.Keys}, c.Distractors, s, c.MaxPrefix)
		}
		return genNeedle(rng, c.Fillers, c.Symbols, s, c.MaxPrefix)
	case "copy-memory":
		return genCopyMemory(rng, c.Symbols, c.items(), s)
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
// oracle's KL) and decoding for the free-running rollouts. The gradient
// measurement (gradient_norms) is deliberately not among them: it runs for
// models that are harness.InputGradienters and is skipped for the others,
// so one experiment can compare every model while measuring gradients of
// those that can report them.
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
	case "copy", "selective-copy", "assoc-recall", "copy-memory", "oracle":
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
