// Package text is arbench's byte-level language-modelling task: models read
// a text corpus as a sequence of bytes (vocabulary 256) and are measured by
// their cross-entropy on a held-out test split, reported in nats/token,
// bits/byte and perplexity.
//
// The corpus is a built-in dataset named by the task variant ("text/jargon",
// see package datasets) or any local file given with -data. It is split
// contiguously, without shuffling, into train, valid and test parts (see
// Split). Training batches are random windows of the train split.
//
// Evaluation scores the test split twice (see Evaluate): with disjoint
// windows, and with a sliding window as in Hugging Face's "Perplexity of
// fixed-length models" guide, which gives every target more context. Every
// loss comes with a bootstrap interval over whole windows (intervals.go),
// and every run with computed reference rows: a unigram byte model fitted
// on the train split and the uniform distribution (reference.go).
// Options add a stateful evaluation of recurrent models, whose state is
// carried across windows (stateful.go), and the context ablation of
// Khandelwal et al. 2018 with its effective context (ablation.go).
package text

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"arbench/datasets"
	"arbench/harness"
	"arbench/internal/fsum"
)

func init() {
	harness.RegisterTask("text", "byte-level language modelling on a text corpus (text/jargon or -data FILE)", New)
}

// Vocab is the vocabulary size: one token per byte value.
const Vocab = 256

// Config is the text task's typed configuration.
type Config struct {
	// SeqLen is the training window length T and the longest evaluation
	// window (shortened to the model's MaxContext when it has one).
	SeqLen int `yaml:"seq_len"`
	// EvalStride is the sliding-window stride S; 0 means SeqLen/2 (at least
	// 1), filled in by Prepare. It must not exceed SeqLen.
	EvalStride int `yaml:"eval_stride"`
	// MaxEvalTokens bounds the number of test targets scored (the first
	// MaxEvalTokens targets of the test split); 0 scores the whole split.
	MaxEvalTokens int `yaml:"max_eval_tokens"`
	// ValidTokens is the number of targets at the start of the valid split
	// used by ValidLoss for the validation curve.
	ValidTokens int `yaml:"valid_tokens"`
	// EvalBatch is the number of windows per Scorer call.
	EvalBatch int `yaml:"eval_batch"`
	// AblationContexts lists the context sizes k of the context-ablation
	// curve (see contextAblation); empty, the default, skips it.
	AblationContexts []int `yaml:"ablation_contexts"`
	// AblationTargets is the number of test targets the ablation scores
	// with every context; 0 means 2048 (defaultAblationTargets).
	AblationTargets int `yaml:"ablation_targets"`
	// Stateful adds the stateful evaluation of a recurrent model (a
	// harness.Stepper without a context limit): the scored test split cut
	// into contiguous streams whose state is carried from the first token
	// to the last (see evaluateStateful). Other models get nothing extra.
	// Omitted from the recorded configuration when false, as are the
	// fields below it when 0, so results written before they existed
	// still resume.
	Stateful bool `yaml:"stateful,omitempty"`
	// StatefulStreams is the number B of streams stepped in parallel (rows
	// per Step call); 0 means eval_batch.
	StatefulStreams int `yaml:"stateful_streams,omitempty"`
	// MaxBytes is the largest corpus file read with -data; 0 means 256 MiB
	// (datasets.DefaultMaxBytes). The corpus is held in memory, one byte per
	// token, so a larger file (or a stream such as /dev/zero) is refused at
	// the limit rather than read until memory runs out. Omitted from the
	// recorded configuration when 0, so results written before it existed
	// still resume.
	MaxBytes int64 `yaml:"max_bytes,omitempty"`
}

// DefaultConfig returns the defaults: seq_len 64, eval_stride seq_len/2,
// the whole test split, 16384 validation tokens, 32 windows per batch, no
// context ablation, no stateful evaluation, corpus files up to 256 MiB.
func DefaultConfig() Config {
	return Config{SeqLen: 64, EvalStride: 0, MaxEvalTokens: 0, ValidTokens: 16384, EvalBatch: 32}
}

// Validate reports every invalid field at once.
func (c *Config) Validate() []error {
	var errs []error
	if c.SeqLen <= 0 {
		errs = append(errs, fmt.Errorf("seq_len: must be positive, got %d", c.SeqLen))
	}
	if c.EvalStride < 0 {
		errs = append(errs, fmt.Errorf("eval_stride: must be positive (or 0 for seq_len/2), got %d", c.EvalStride))
	} else if c.SeqLen > 0 && c.EvalStride > c.SeqLen {
		errs = append(errs, fmt.Errorf("eval_stride: %d exceeds seq_len %d (targets between windows would never be scored)", c.EvalStride, c.SeqLen))
	}
	if c.MaxEvalTokens < 0 {
		errs = append(errs, fmt.Errorf("max_eval_tokens: must be 0 (whole test split) or positive, got %d", c.MaxEvalTokens))
	}
	if c.ValidTokens <= 0 {
		errs = append(errs, fmt.Errorf("valid_tokens: must be positive, got %d", c.ValidTokens))
	}
	if c.EvalBatch <= 0 {
		errs = append(errs, fmt.Errorf("eval_batch: must be positive, got %d", c.EvalBatch))
	}
	for _, k := range c.AblationContexts {
		if k <= 0 || (c.SeqLen > 0 && k > c.SeqLen) {
			errs = append(errs, fmt.Errorf("ablation_contexts: %d outside [1, seq_len %d]", k, c.SeqLen))
		}
	}
	if c.AblationTargets < 0 {
		errs = append(errs, fmt.Errorf("ablation_targets: must be positive (or 0 for %d), got %d", defaultAblationTargets, c.AblationTargets))
	}
	if c.StatefulStreams < 0 {
		errs = append(errs, fmt.Errorf("stateful_streams: must be positive (or 0 for eval_batch), got %d", c.StatefulStreams))
	} else if c.StatefulStreams > 0 && !c.Stateful {
		errs = append(errs, fmt.Errorf("stateful_streams: %d set without stateful: true (it would never be used)", c.StatefulStreams))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max_bytes: must be positive (or 0 for 256 MiB), got %d", c.MaxBytes))
	}
	return errs
}

// ValidateVariant reports an unknown corpus name: the variant must be a
// built-in corpus or empty (plain "text", whose corpus comes from -data).
// The experiment check calls it before any work starts.
func (c *Config) ValidateVariant(variant string) []error {
	if variant == "" || slices.Contains(datasets.NamesOf(datasets.KindText), variant) {
		return nil
	}
	return []error{fmt.Errorf("unknown corpus %q (built-in: %s; a local file is read with -data FILE)",
		variant, strings.Join(datasets.NamesOf(datasets.KindText), ", "))}
}

var _ harness.VariantValidator = (*Config)(nil)

// ablationTargets is the number of context-ablation targets asked for.
func (c *Config) ablationTargets() int {
	if c.AblationTargets > 0 {
		return c.AblationTargets
	}
	return defaultAblationTargets
}

// streams is the number of stateful evaluation streams asked for.
func (c *Config) streams() int {
	if c.StatefulStreams > 0 {
		return c.StatefulStreams
	}
	return c.EvalBatch
}

// stride returns the effective sliding-window stride for SeqLen.
func (c *Config) stride() int {
	if c.EvalStride > 0 {
		return c.EvalStride
	}
	return max(1, c.SeqLen/2)
}

// Task is the byte-level language-modelling task.
type Task struct {
	cfg  Config
	name string
	refs []harness.DatasetRef
	// corpus names the data in errors: the corpus or the -data file.
	corpus string

	train, valid, test []byte
	// seed drives the context ablation's shuffles.
	seed uint64
}

var _ harness.Task = (*Task)(nil)

// New returns an unprepared task with the default configuration.
func New() harness.Task { return &Task{cfg: DefaultConfig(), name: "text"} }

// Config returns the task's configuration, for strict decoding.
func (t *Task) Config() harness.Config { return &t.cfg }

// Split returns the sizes of the contiguous train, valid and test splits of
// an n-byte corpus: train = floor(90·n/100), valid = floor(5·n/100) and test
// the remaining n − train − valid bytes (so test gets the rounding
// remainder). The splits are corpus[0:train], corpus[train:train+valid] and
// corpus[train+valid:n].
func Split(n int) (train, valid, test int) {
	train = n * 90 / 100
	valid = n * 5 / 100
	return train, valid, n - train - valid
}

// Prepare validates the configuration and loads the corpus: env.DataFile if
// set (at most max_bytes of it), else the built-in corpus env.Variant from
// env.DataDir (Dir() when empty), split by loadSplits.
func (t *Task) Prepare(ctx context.Context, env harness.TaskEnv) error {
	if errs := t.cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("text: invalid config: %w", errors.Join(errs...))
	}
	t.cfg.EvalStride = t.cfg.stride()
	t.seed = env.Seed

	train, valid, test, err := t.loadSplits(ctx, env)
	if err != nil {
		return err
	}
	T := t.cfg.SeqLen
	if len(test) < T+1 || len(train) < T+1 || len(valid) < 2 {
		return fmt.Errorf("text: corpus %s is too short (%d bytes): splits train/valid/test = %d/%d/%d bytes, but train and test need at least seq_len+1 = %d and valid at least 2",
			t.corpus, len(train)+len(valid)+len(test), len(train), len(valid), len(test), T+1)
	}
	t.train, t.valid, t.test = train, valid, test
	return nil
}

// loadSplits reads the corpus Prepare names (setting t.name, t.corpus and
// t.refs) and returns its train, valid and test splits: a -data file cut by
// contiguousSplits, a built-in corpus split as results on it are published
// (datasets.LoadSplits: WikiText-103's own files, enwik8's and text8's
// 90M/5M/5M bytes, the same 90/5/5 cut as Split for the others).
// Everything after Prepare reads only the three.
func (t *Task) loadSplits(ctx context.Context, env harness.TaskEnv) (train, valid, test []byte, err error) {
	switch {
	case env.DataFile != "":
		var data []byte
		var ref harness.DatasetRef
		data, ref, err = datasets.LoadFile(ctx, env.DataFile, t.cfg.MaxBytes)
		t.name, t.corpus = harness.DataTaskName("text", env.DataFile), env.DataFile
		if err == nil {
			t.refs = []harness.DatasetRef{ref}
			train, valid, test = contiguousSplits(data)
		}
	case env.Variant != "":
		dir := env.DataDir
		if dir == "" {
			dir = datasets.Dir()
		}
		var sp datasets.Splits
		sp, err = datasets.LoadSplits(env.Variant, dir)
		t.name, t.corpus = "text/"+env.Variant, env.Variant
		train, valid, test, t.refs = sp.Train, sp.Valid, sp.Test, sp.Refs
	default:
		return nil, nil, nil, fmt.Errorf("text: no corpus: name a built-in one as text/NAME (built-in: %s) or give a file with -data FILE",
			strings.Join(datasets.NamesOf(datasets.KindText), ", "))
	}
	var tooLarge *datasets.TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, nil, nil, fmt.Errorf("text: %w (the corpus is held in memory; raise max_bytes in the task's config to read more)", err)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("text: %w", err)
	}
	return train, valid, test, nil
}

// contiguousSplits cuts data into the train, valid and test splits whose
// sizes Split gives, in that order and without shuffling.
func contiguousSplits(data []byte) (train, valid, test []byte) {
	nTrain, nValid, _ := Split(len(data))
	return data[:nTrain], data[nTrain : nTrain+nValid], data[nTrain+nValid:]
}

// Info describes the task. Name is "text/VARIANT" for a built-in corpus and
// harness.DataTaskName("text", FILE) ("text/notes" for notes.txt) for a
// file given with -data, whatever the variant (Datasets has the path and
// checksum). Training, ValidLoss and Evaluate, context ablation included,
// score targets only: the task needs a harness.Scorer (the stateful
// evaluation also uses a Stepper where there is one, and is skipped where
// there is none). Each Scorer call of ValidLoss and Evaluate gets at most
// eval_batch windows, and with stateful each Stepper call one row per
// stream; EvalBatch is the larger (evalRows).
func (t *Task) Info() harness.TaskInfo {
	return harness.TaskInfo{
		Name:           t.name,
		Kind:           "text",
		Vocab:          Vocab,
		SeqLen:         t.cfg.SeqLen,
		HeadlineMetric: "bits_per_byte",
		Needs:          []harness.Capability{harness.NeedTextScoring},
		EvalBatch:      t.evalRows(),
	}
}

// evalRows is the most rows one call of the model gets in validation and
// evaluation: eval_batch windows (no more than exist), or with stateful
// the streams stepped together when they are more.
func (t *Task) evalRows() int {
	rows := min(t.cfg.EvalBatch, t.maxRows())
	if t.cfg.Stateful {
		streams := t.cfg.streams()
		if len(t.test) > 0 {
			_, streams = streamLayout(len(t.testSeq())-1, streams)
		}
		rows = max(rows, streams)
	}
	return rows
}

// maxRows is the most windows one scoring pass has (validation, the test
// split in either window scheme, the context ablation), so that a large
// eval_batch is not taken for the memory of rows that never exist. Before
// Prepare it is eval_batch.
func (t *Task) maxRows() int {
	if len(t.test) == 0 {
		return t.cfg.EvalBatch
	}
	W, S := t.cfg.SeqLen, min(t.cfg.stride(), t.cfg.SeqLen)
	valid := min(len(t.valid)-1, t.cfg.ValidTokens)
	test := len(t.test) - 1
	if t.cfg.MaxEvalTokens > 0 {
		test = min(test, t.cfg.MaxEvalTokens)
	}
	rows := max(len(disjointWindows(valid, W)), len(slidingWindows(test, W, S)), len(disjointWindows(test, W)))
	if len(t.cfg.AblationContexts) > 0 {
		rows = max(rows, t.cfg.ablationTargets())
	}
	return max(rows, 1)
}

// Datasets returns the corpus read by Prepare.
func (t *Task) Datasets() []harness.DatasetRef {
	var out []harness.DatasetRef
	for _, r := range t.refs {
		if r.SHA256 != "" {
			out = append(out, r)
		}
	}
	return out
}

// TrainBatch samples batch windows uniformly from the train split: for a
// start i, Inputs = x[i:i+T] and Targets = x[i+1:i+T+1] with T = seq_len.
func (t *Task) TrainBatch(rng *rand.Rand, batch int) harness.Batch {
	T := t.cfg.SeqLen
	if len(t.train) < T+1 {
		panic("text: TrainBatch before a successful Prepare")
	}
	b := harness.Batch{Inputs: make([][]int, batch), Targets: make([][]int, batch)}
	for r := range batch {
		i := rng.IntN(len(t.train) - T)
		in, tg := make([]int, T), make([]int, T)
		for k := range T {
			in[k] = int(t.train[i+k])
			tg[k] = int(t.train[i+k+1])
		}
		b.Inputs[r], b.Targets[r] = in, tg
	}
	return b
}

// ValidLoss returns the mean nats/token over disjoint windows of the first
// valid_tokens targets of the valid split.
func (t *Task) ValidLoss(ctx context.Context, m harness.Model) (float64, error) {
	if _, ok := harness.ScorerOf(m); !ok {
		if _, ok := harness.TextScorerOf(m); ok {
			return 0, fmt.Errorf("text: a model that scores text with its own tokenizer has no loss per byte token: %w", harness.ErrNoValidLoss)
		}
	}
	sc, W, err := t.scorer(m)
	if err != nil {
		return 0, err
	}
	seq := t.valid[:min(len(t.valid), t.cfg.ValidTokens+1)]
	nll, err := scoreWindows(ctx, sc, seq, disjointWindows(len(seq)-1, W), t.cfg.EvalBatch)
	if err != nil {
		return 0, fmt.Errorf("text: valid loss: %w", err)
	}
	return fsum.Sum(nll) / float64(len(seq)-1), nil
}

// Evaluate scores the test split (its first max_eval_tokens targets when
// that is set) with a window W = min(seq_len, MaxContext()) two ways:
//
//   - disjoint: consecutive non-overlapping windows of W inputs, each scoring
//     all its targets, so the first target of a window is predicted from one
//     token of context, the last from W;
//   - sliding: windows of up to W inputs starting at 0, S, 2S, ... (stride S =
//     min(eval_stride, W)); the first window scores all its targets, each
//     later one only the targets not scored before (its last S when not cut
//     off by the end of the text), so every target is scored exactly once
//     with at least min(position, W−S+1) tokens of context.
//
// It reports nats_per_token, bits_per_byte (= nats_per_token / ln 2, since a
// token is a byte) and perplexity (= exp(nats_per_token)), with suffix
// "_sliding" for the sliding evaluation, and one sample per window. Each
// has a percentile bootstrap interval over its windows (N windows, Of
// "windows"; see intervals.go for why windows and not tokens are
// resampled), seeded from the task's seed. With every run come the
// reference rows (references: the unigram and uniform baselines); with
// stateful, for a recurrent model, the stateful evaluation
// (evaluateStateful); with ablation_contexts, the context-ablation curves
// (contextAblation).
func (t *Task) Evaluate(ctx context.Context, m harness.Model) (*harness.Evaluation, error) {
	if _, ok := harness.ScorerOf(m); !ok {
		if ts, ok := harness.TextScorerOf(m); ok {
			return t.evaluateText(ctx, ts)
		}
	}
	sc, W, err := t.scorer(m)
	if err != nil {
		return nil, err
	}
	S := min(t.cfg.stride(), W)
	seq := t.testSeq()
	N := len(seq) - 1

	ev := &harness.Evaluation{}
	var windowed []windowScores
	for _, e := range []struct {
		mode, suffix string
		stride       int
		wins         []window
	}{
		{"disjoint", "", W, disjointWindows(N, W)},
		{"sliding", "_sliding", S, slidingWindows(N, W, S)},
	} {
		nll, err := scoreWindows(ctx, sc, seq, e.wins, t.cfg.EvalBatch)
		if err != nil {
			return nil, fmt.Errorf("text: evaluate (%s): %w", e.mode, err)
		}
		windowed = append(windowed, windowScores{e.mode, e.wins, nll})
		npt := fsum.Sum(nll) / float64(N)
		ci := meanCI(perToken(nll, windowCounts(e.wins)), ciSeed(t.seed, "test/"+e.mode), "windows")
		params := map[string]any{"eval": e.mode, "window": W, "stride": e.stride, "tokens": N}
		ev.Metrics = append(ev.Metrics, lossMetrics(tokenUnits, e.suffix, npt, ci, params)...)
		for k, w := range e.wins {
			ev.Samples = append(ev.Samples, harness.Sample{
				"eval": e.mode, "window": k, "start": w.start, "tokens": w.n - w.skip, "nats": nll[k],
			})
		}
	}
	ev.Metrics = append(ev.Metrics, t.references(tokenUnits, seq)...)
	if st, ok := harness.StepperOf(m); ok && t.cfg.Stateful && harness.ContextOf(m) == 0 {
		if err := t.evaluateStateful(ctx, st, seq, W, windowed, ev); err != nil {
			return nil, err
		}
	}
	if len(t.cfg.AblationContexts) > 0 {
		if err := t.contextAblation(ctx, sc, t.test, W, ev); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// scorer returns m's Scorer and the evaluation window min(seq_len, MaxContext()).
func (t *Task) scorer(m harness.Model) (harness.Scorer, int, error) {
	if len(t.test) == 0 {
		panic("text: evaluation before a successful Prepare")
	}
	sc, ok := harness.ScorerOf(m)
	if !ok {
		return nil, 0, fmt.Errorf("text: model %q cannot score text (it does not implement harness.Scorer or harness.TextScorer)", m.Info().Family)
	}
	W := t.cfg.SeqLen
	if mc := harness.ContextOf(m); mc > 0 {
		W = min(W, mc)
	}
	return sc, W, nil
}

// testSeq is the test split Evaluate scores: its first max_eval_tokens
// targets when that is set.
func (t *Task) testSeq() []byte {
	if t.cfg.MaxEvalTokens > 0 && t.cfg.MaxEvalTokens+1 < len(t.test) {
		return t.test[:t.cfg.MaxEvalTokens+1]
	}
	return t.test
}

// evaluateText scores a TextScorer (a model with its own tokenizer): the
// bytes the disjoint byte-level evaluation scores (targets 1…N of the
// test split), cut into texts of seq_len bytes, each scored from an empty
// context; bits_per_byte and nats_per_byte are total nats over N bytes,
// with Params scoring "text", each with its bootstrap interval over the
// texts, and the reference rows in the same units. There is no sliding or
// stateful evaluation, perplexity or context ablation: tokens are the
// model's own. One sample per text.
func (t *Task) evaluateText(ctx context.Context, ts harness.TextScorer) (*harness.Evaluation, error) {
	seq := t.testSeq()
	N, W := len(seq)-1, t.cfg.SeqLen
	wins := disjointWindows(N, W)
	texts := make([][]byte, len(wins))
	for k, w := range wins {
		texts[k] = seq[w.start+1 : w.start+1+w.n]
	}
	nats := make([]float64, 0, len(texts))
	for lo := 0; lo < len(texts); lo += t.cfg.EvalBatch {
		got, err := ts.ScoreText(ctx, texts[lo:min(lo+t.cfg.EvalBatch, len(texts))])
		if err != nil {
			return nil, fmt.Errorf("text: evaluate (text): %w", err)
		}
		if want := min(t.cfg.EvalBatch, len(texts)-lo); len(got) != want {
			return nil, fmt.Errorf("text: evaluate (text): %d totals for %d texts", len(got), want)
		}
		nats = append(nats, got...)
	}
	npb := fsum.Sum(nats) / float64(N)
	params := map[string]any{"eval": "text", "scoring": "text", "window": W, "bytes": N}
	ci := meanCI(perToken(nats, windowCounts(wins)), ciSeed(t.seed, "test/text"), "windows")
	ev := &harness.Evaluation{Metrics: lossMetrics(byteUnits, "", npb, ci, params)}
	ev.Metrics = append(ev.Metrics, t.references(byteUnits, seq)...)
	for k, w := range wins {
		ev.Samples = append(ev.Samples, harness.Sample{"eval": "text", "window": k, "start": w.start, "bytes": w.n, "nats": nats[k]})
	}
	return ev, nil
}

// windowScores are the negative log-likelihoods (nats) of the windows of
// one windowed evaluation ("disjoint", "sliding").
type windowScores struct {
	mode string
	wins []window
	nll  []float64
}

// window is one evaluation window over a sequence x: inputs x[start:start+n]
// predicting targets x[start+1:start+n+1], of which the first skip are
// context only and the last n−skip are scored.
type window struct{ start, n, skip int }

// disjointWindows covers targets 1..N of a sequence (N+1 tokens) with
// consecutive non-overlapping windows of at most W inputs.
func disjointWindows(N, W int) []window {
	var ws []window
	for b := 0; b < N; b += W {
		ws = append(ws, window{start: b, n: min(W, N-b)})
	}
	return ws
}

// slidingWindows covers targets 1..N with windows of at most W inputs
// starting every S tokens; each scores only the targets past the end of the
// previous window (Hugging Face's perplexity-with-stride procedure). 1 ≤ S ≤ W.
func slidingWindows(N, W, S int) []window {
	if S < 1 || S > W {
		panic(fmt.Sprintf("text: sliding window stride %d outside [1, %d]", S, W))
	}
	var ws []window
	prevEnd := 0
	for b := 0; prevEnd < N; b += S {
		end := min(b+W, N)
		ws = append(ws, window{start: b, n: end - b, skip: prevEnd - b})
		prevEnd = end
	}
	return ws
}

// scoreWindows scores the windows over seq in batches of up to batch rows
// (rows padded to the longest window of the batch, padding targets −1) and
// returns each window's negative log-likelihood in nats.
func scoreWindows(ctx context.Context, sc harness.Scorer, seq []byte, wins []window, batch int) ([]float64, error) {
	nll := make([]float64, len(wins))
	for lo := 0; lo < len(wins); lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		group := wins[lo:min(lo+batch, len(wins))]
		width := 0
		for _, w := range group {
			width = max(width, w.n)
		}
		b := harness.Batch{Inputs: make([][]int, len(group)), Targets: make([][]int, len(group))}
		for r, w := range group {
			in, tg := make([]int, width), make([]int, width)
			for k := range width {
				tg[k] = -1
				if k < w.n {
					in[k] = int(seq[w.start+k])
					if k >= w.skip {
						tg[k] = int(seq[w.start+k+1])
					}
				}
			}
			b.Inputs[r], b.Targets[r] = in, tg
		}
		lp, err := sc.LogProbs(ctx, b)
		if err != nil {
			return nil, err
		}
		if len(lp) != len(group) {
			return nil, fmt.Errorf("scorer returned %d rows for %d", len(lp), len(group))
		}
		for r, w := range group {
			if len(lp[r]) != width {
				return nil, fmt.Errorf("scorer returned %d positions for %d in row %d", len(lp[r]), width, r)
			}
			terms := make([]float64, 0, w.n-w.skip)
			for k := w.skip; k < w.n; k++ {
				if math.IsNaN(lp[r][k]) {
					return nil, fmt.Errorf("scorer returned NaN at window offset %d, position %d", w.start, k)
				}
				terms = append(terms, -lp[r][k])
			}
			nll[lo+r] = fsum.Sum(terms)
		}
	}
	return nll, nil
}
