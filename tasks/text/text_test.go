package text

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/internal/fsum"
	"arbench/nn"
)

// ---- fake models ----

// baseModel implements harness.Model only (no Scorer).
type baseModel struct{ family string }

func (b baseModel) Config() harness.Config                   { return nil }
func (b baseModel) Setup(context.Context, harness.Env) error { return nil }
func (b baseModel) Params() *nn.ParamSet                     { return nil }
func (b baseModel) Info() harness.ModelInfo                  { return harness.ModelInfo{Family: b.family} }

// logProbs turns a per-row scoring rule into a harness.Scorer: f returns
// log p(target | row[:t+1]) for position t.
func logProbs(b harness.Batch, f func(row []int, t, target int) float64) [][]float64 {
	out := make([][]float64, len(b.Inputs))
	for i, row := range b.Inputs {
		out[i] = make([]float64, len(row))
		for t, tg := range b.Targets[i] {
			if tg >= 0 {
				out[i][t] = f(row, t, tg)
			}
		}
	}
	return out
}

// uniformModel gives every byte probability 1/256.
type uniformModel struct{ baseModel }

func (uniformModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	return logProbs(b, func([]int, int, int) float64 { return -math.Log(Vocab) }), nil
}

// limitedModel is uniform with a maximum context; it fails on longer rows.
type limitedModel struct {
	uniformModel
	maxCtx   int
	maxWidth *int
}

func (m limitedModel) MaxContext() int { return m.maxCtx }

func (m limitedModel) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	for _, row := range b.Inputs {
		*m.maxWidth = max(*m.maxWidth, len(row))
		if m.maxCtx > 0 && len(row) > m.maxCtx { // 0: unbounded
			return nil, fmt.Errorf("row of %d tokens exceeds MaxContext %d", len(row), m.maxCtx)
		}
	}
	return m.uniformModel.LogProbs(ctx, b)
}

// targetModel's log-probability depends on the target only, so a total over
// targets reveals any target scored twice or never.
type targetModel struct{ baseModel }

func targetLogProb(target int) float64 { return -float64(1+target) / 997 }

func (targetModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	return logProbs(b, func(_ []int, _ int, tg int) float64 { return targetLogProb(tg) }), nil
}

// prefixModel's next-byte distribution is a softmax over pseudo-random
// logits seeded by a hash of the entire prefix, so any change of context
// changes the score.
type prefixModel struct{ baseModel }

func mix(h uint64) uint64 { // splitmix64 finaliser
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

func prefixHash(prefix []int) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, x := range prefix {
		h = mix(h ^ uint64(x+1))
	}
	return h
}

// prefixLogProb returns log p(target | prefix) under prefixModel.
func prefixLogProb(prefix []int, target int) float64 {
	h := prefixHash(prefix)
	var logits [Vocab]float64
	m := math.Inf(-1)
	for v := range logits {
		logits[v] = 4 * float64(mix(h^uint64(v+1)*0x632be59bd9b4e019)>>11) / (1 << 53)
		m = max(m, logits[v])
	}
	z := 0.0
	for _, l := range logits {
		z += math.Exp(l - m)
	}
	return logits[target] - m - math.Log(z)
}

func (prefixModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	return logProbs(b, func(row []int, t, tg int) float64 { return prefixLogProb(row[:t+1], tg) }), nil
}

// countingModel counts the targets it is asked to score.
type countingModel struct {
	prefixModel
	tokens *int
}

func (m countingModel) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	*m.tokens += b.Tokens()
	return m.prefixModel.LogProbs(ctx, b)
}

// ---- helpers ----

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(Vocab))
	}
	return b
}

func ints(b []byte) []int {
	out := make([]int, len(b))
	for i, x := range b {
		out[i] = int(x)
	}
	return out
}

func prepared(t *testing.T, data []byte, cfg Config) *Task {
	t.Helper()
	p := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	task := New().(*Task)
	*task.Config().(*Config) = cfg
	if err := task.Prepare(context.Background(), harness.TaskEnv{DataFile: p}); err != nil {
		t.Fatal(err)
	}
	return task
}

func metrics(ev *harness.Evaluation) map[string]harness.Metric {
	m := map[string]harness.Metric{}
	for _, x := range ev.Metrics {
		m[x.Name] = x
	}
	return m
}

func approx(a, b, rel float64) bool { return math.Abs(a-b) <= rel*math.Max(1, math.Abs(b)) }

// ---- tests ----

func TestRegistered(t *testing.T) {
	task, variant, err := harness.NewTask("text/jargon")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := task.(*Task); !ok || variant != "jargon" {
		t.Errorf("NewTask = %T, %q", task, variant)
	}
	info := task.Info()
	if info.Vocab != 256 || info.HeadlineMetric != "bits_per_byte" || info.SeqLen != 64 || info.Kind != "text" {
		t.Errorf("Info() = %+v", info)
	}
	// Training, validation, evaluation and the context ablation only score
	// (byte tokens, or raw text with the model's own tokenizer).
	if !slices.Equal(info.Needs, []harness.Capability{harness.NeedTextScoring}) {
		t.Errorf("Needs = %v, want [Scorer or TextScorer]", info.Needs)
	}
	if miss := harness.MissingCapabilities(baseModel{"plain"}, info.Needs); miss == "" {
		t.Error("a model without Scorer or TextScorer passes the text task's needs")
	}
	if miss := harness.MissingCapabilities(pairModel{baseModel{"pairs"}}, info.Needs); miss != "" {
		t.Errorf("a TextScorer lacks %s", miss)
	}
}

// TestDataFileNamesTask: with -data the results carry the file's name, not
// the variant's corpus or plain "text" (issue 9, case 8).
func TestDataFileNamesTask(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(p, randomBytes(5, 3001), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{"", "jargon"} {
		task := New()
		*task.Config().(*Config) = Config{SeqLen: 16, ValidTokens: 100, EvalBatch: 4}
		if err := task.Prepare(context.Background(), harness.TaskEnv{Variant: variant, DataFile: p, DataDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		if got := task.Info().Name; got != "text/notes" {
			t.Errorf("variant %q with -data notes.txt: Name = %q, want text/notes", variant, got)
		}
		if ds := task.Datasets(); len(ds) != 1 || ds[0].Path != p {
			t.Errorf("Datasets() = %+v, want the file", ds)
		}
	}
}

// TestValidateVariant: unknown corpora are reported by the experiment
// check, before any work (issue 9, case 12).
func TestValidateVariant(t *testing.T) {
	c := DefaultConfig()
	var vv harness.VariantValidator = &c
	for _, ok := range []string{"", "jargon"} {
		if errs := vv.ValidateVariant(ok); len(errs) != 0 {
			t.Errorf("ValidateVariant(%q) = %v", ok, errs)
		}
	}
	errs := vv.ValidateVariant("nope")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `"nope"`) || !strings.Contains(errs[0].Error(), "jargon") {
		t.Errorf("ValidateVariant(nope) = %v, want one error naming it and the built-in corpora", errs)
	}
}

// TestPrepareLimitsCorpusSize: a file over max_bytes, or a stream without
// end, is refused at the limit (issue 9, case 3: -data /dev/zero ran out of
// memory).
func TestPrepareLimitsCorpusSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(p, randomBytes(6, 3001), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []string{p}
	if _, err := os.Stat("/dev/zero"); err == nil {
		files = append(files, "/dev/zero")
	}
	for _, f := range files {
		task := New()
		task.Config().(*Config).MaxBytes = 1 << 10
		err := task.Prepare(context.Background(), harness.TaskEnv{DataFile: f})
		if err == nil || !strings.Contains(err.Error(), f+": larger than the limit of 1024 bytes") || !strings.Contains(err.Error(), "max_bytes") {
			t.Errorf("%s with max_bytes 1024: %v", f, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if errs := def.Validate(); len(errs) != 0 {
		t.Errorf("default config invalid: %v", errs)
	}
	bad := Config{SeqLen: 0, EvalStride: -1, MaxEvalTokens: -1, ValidTokens: 0, EvalBatch: -3, MaxBytes: -1}
	errs := bad.Validate()
	fields := []string{"seq_len", "eval_stride", "max_eval_tokens", "valid_tokens", "eval_batch", "max_bytes"}
	if len(errs) != len(fields) {
		t.Fatalf("got %d errors %v, want %d", len(errs), errs, len(fields))
	}
	for i, f := range fields {
		if !strings.HasPrefix(errs[i].Error(), f+":") {
			t.Errorf("error %d = %q, want it to name %s", i, errs[i], f)
		}
	}
	over := Config{SeqLen: 8, EvalStride: 9, ValidTokens: 1, EvalBatch: 1}
	if errs := over.Validate(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "eval_stride") {
		t.Errorf("stride > seq_len: errors %v", errs)
	}
	// Prepare refuses an invalid config, reporting all problems.
	task := New().(*Task)
	*task.Config().(*Config) = bad
	err := task.Prepare(context.Background(), harness.TaskEnv{DataFile: "unused"})
	for _, f := range fields {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Prepare error %v does not name %s", err, f)
		}
	}
}

func TestSplit(t *testing.T) {
	for _, n := range []int{0, 1, 19, 20, 99, 100, 101, 1681817} {
		tr, va, te := Split(n)
		if tr+va+te != n || tr < 0 || va < 0 || te < 0 {
			t.Errorf("Split(%d) = %d/%d/%d", n, tr, va, te)
		}
		if tr != n*9/10 || va != n/20 {
			t.Errorf("Split(%d) = %d/%d/%d, want floor(0.9n)/floor(0.05n)/rest", n, tr, va, te)
		}
	}
	data := randomBytes(1, 3001)
	task := prepared(t, data, Config{SeqLen: 16, ValidTokens: 100, EvalBatch: 4})
	if got := append(append(append([]byte{}, task.train...), task.valid...), task.test...); !bytes.Equal(got, data) {
		t.Error("train+valid+test is not the corpus")
	}
	if len(task.train) != 2700 || len(task.valid) != 150 || len(task.test) != 151 {
		t.Errorf("splits %d/%d/%d, want 2700/150/151", len(task.train), len(task.valid), len(task.test))
	}
	if task.cfg.EvalStride != 8 {
		t.Errorf("eval_stride default resolved to %d, want seq_len/2 = 8", task.cfg.EvalStride)
	}
	if ds := task.Datasets(); len(ds) != 1 || ds[0].Name != "corpus.txt" || ds[0].Bytes != 3001 {
		t.Errorf("Datasets() = %+v", ds)
	}
}

func TestPrepareErrors(t *testing.T) {
	ctx := context.Background()
	err := New().Prepare(ctx, harness.TaskEnv{DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "jargon") || !strings.Contains(err.Error(), "-data") {
		t.Errorf("no variant: error %v, want one listing built-in corpora and -data", err)
	}
	err = New().Prepare(ctx, harness.TaskEnv{Variant: "jargon", DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make datasets") {
		t.Errorf("uncached jargon: error %v, want how to fetch it", err)
	}
	err = New().Prepare(ctx, harness.TaskEnv{Variant: "nosuch", DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown corpus: error %v", err)
	}
	// 1200 bytes: test split = 60 < seq_len+1.
	p := filepath.Join(t.TempDir(), "short.txt")
	if err := os.WriteFile(p, randomBytes(2, 1200), 0o644); err != nil {
		t.Fatal(err)
	}
	err = New().Prepare(ctx, harness.TaskEnv{DataFile: p})
	if err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short corpus: error %v", err)
	}
}

func TestUniformModel(t *testing.T) {
	data := randomBytes(3, 10007)
	task := prepared(t, data, Config{SeqLen: 64, ValidTokens: 300, EvalBatch: 7})
	ev, err := task.Evaluate(context.Background(), uniformModel{baseModel{"uniform"}})
	if err != nil {
		t.Fatal(err)
	}
	N := len(task.test) - 1
	m := metrics(ev)
	for _, suf := range []string{"", "_sliding"} {
		mode, stride := "disjoint", 64
		if suf != "" {
			mode, stride = "sliding", 32
		}
		for name, want := range map[string]struct {
			v    float64
			unit string
		}{
			"nats_per_token": {math.Log(256), "nats/token"},
			"bits_per_byte":  {8, "bits/byte"},
			"perplexity":     {256, ""},
		} {
			got, ok := m[name+suf]
			if !ok {
				t.Fatalf("metric %s missing", name+suf)
			}
			if !approx(got.Value, want.v, 1e-12) || got.Unit != want.unit || got.Split != "test" {
				t.Errorf("%s = %+v, want %v %q on test", name+suf, got, want.v, want.unit)
			}
			p := got.Params
			if p["eval"] != mode || p["window"] != 64 || p["stride"] != stride || p["tokens"] != N {
				t.Errorf("%s params = %v", name+suf, p)
			}
		}
	}
	if len(ev.Metrics) != 12 {
		t.Errorf("%d metrics, want 6 and 6 reference rows", len(ev.Metrics))
	}
	// Samples: per eval, the tokens add up to N and the nats to N·ln 256.
	tokens := map[string]int{}
	nats := map[string]float64{}
	for _, s := range ev.Samples {
		tokens[s["eval"].(string)] += s["tokens"].(int)
		nats[s["eval"].(string)] += s["nats"].(float64)
	}
	for _, mode := range []string{"disjoint", "sliding"} {
		if tokens[mode] != N || !approx(nats[mode], float64(N)*math.Log(256), 1e-9) {
			t.Errorf("%s samples: %d tokens, %v nats; want %d, %v", mode, tokens[mode], nats[mode], N, float64(N)*math.Log(256))
		}
	}
	vl, err := task.ValidLoss(context.Background(), uniformModel{})
	if err != nil || !approx(vl, math.Log(256), 1e-12) {
		t.Errorf("ValidLoss = %v, %v; want ln 256", vl, err)
	}
}

// A sliding window of stride 1 whose window covers the whole test split is
// the same as scoring the whole split in one row.
func TestSlidingWholeTextEqualsOneRow(t *testing.T) {
	data := randomBytes(4, 2000) // splits 1800/100/100
	task := prepared(t, data, Config{SeqLen: 99, EvalStride: 1, ValidTokens: 50, EvalBatch: 5})
	ev, err := task.Evaluate(context.Background(), prefixModel{})
	if err != nil {
		t.Fatal(err)
	}
	seq := ints(task.test)
	whole := harness.Batch{Inputs: [][]int{seq[:len(seq)-1]}, Targets: [][]int{seq[1:]}}
	lp, _ := prefixModel{}.LogProbs(context.Background(), whole)
	want := 0.0
	for _, x := range lp[0] {
		want -= x
	}
	want /= float64(len(seq) - 1)
	for _, name := range []string{"nats_per_token_sliding", "nats_per_token"} {
		if got := metrics(ev)[name].Value; !approx(got, want, 1e-12) {
			t.Errorf("%s = %.15g, whole text at once = %.15g", name, got, want)
		}
	}
	if math.Abs(want-math.Log(256)) < 1e-3 {
		t.Fatalf("prefixModel is (nearly) uniform: %v", want)
	}
}

// Every target 1..N is scored exactly once, by a window of at most W inputs,
// with the context the procedures promise.
func TestWindowsCoverEachTargetOnce(t *testing.T) {
	for N := 1; N <= 60; N++ {
		for W := 1; W <= 9; W++ {
			check := func(kind string, S int, ws []window) {
				t.Helper()
				count := make([]int, N+1)
				for k, w := range ws {
					if w.n < 1 || w.n > W || w.skip < 0 || w.skip >= w.n || w.start < 0 || w.start+w.n > N {
						t.Fatalf("%s N=%d W=%d S=%d: bad window %d %+v", kind, N, W, S, k, w)
					}
					if w.start != k*S {
						t.Fatalf("%s N=%d W=%d S=%d: window %d starts at %d, want %d", kind, N, W, S, k, w.start, k*S)
					}
					for j := w.start + w.skip + 1; j <= w.start+w.n; j++ {
						count[j]++
						if ctx := j - w.start; ctx < min(j, W-S+1) {
							t.Fatalf("%s N=%d W=%d S=%d: target %d has context %d", kind, N, W, S, j, ctx)
						}
					}
				}
				for j := 1; j <= N; j++ {
					if count[j] != 1 {
						t.Fatalf("%s N=%d W=%d S=%d: target %d scored %d times", kind, N, W, S, j, count[j])
					}
				}
			}
			check("disjoint", W, disjointWindows(N, W))
			for S := 1; S <= W; S++ {
				check("sliding", S, slidingWindows(N, W, S))
			}
		}
	}
}

// The scores of batched, padded windows equal a closed-form reference: in
// the sliding evaluation target j is scored by window k = max(0, ⌈(j−W)/S⌉)
// with context x[kS:j]; in the disjoint one by window k = ⌊(j−1)/W⌋ with
// context x[kW:j].
func TestScoresMatchReference(t *testing.T) {
	ctx := context.Background()
	for i, c := range []struct{ N, W, S, batch int }{
		{1, 4, 2, 3}, {5, 16, 4, 32}, {37, 8, 3, 1}, {37, 8, 8, 4}, {37, 8, 1, 5},
		{100, 16, 5, 7}, {64, 16, 16, 3}, {65, 16, 7, 2}, {200, 33, 10, 6},
	} {
		seq := randomBytes(uint64(10+i), c.N+1)
		x := ints(seq)
		var wantSliding, wantDisjoint float64
		for j := 1; j <= c.N; j++ {
			k := 0
			if j > c.W {
				k = (j - c.W + c.S - 1) / c.S
			}
			wantSliding -= prefixLogProb(x[k*c.S:j], x[j])
			kd := (j - 1) / c.W
			wantDisjoint -= prefixLogProb(x[kd*c.W:j], x[j])
		}
		for _, e := range []struct {
			kind string
			ws   []window
			want float64
		}{
			{"sliding", slidingWindows(c.N, c.W, c.S), wantSliding},
			{"disjoint", disjointWindows(c.N, c.W), wantDisjoint},
		} {
			asked := 0
			nll, err := scoreWindows(ctx, countingModel{tokens: &asked}, seq, e.ws, c.batch)
			if err != nil {
				t.Fatal(err)
			}
			if asked != c.N {
				t.Errorf("%+v %s: model asked to score %d targets, want %d (context and padding must be -1)", c, e.kind, asked, c.N)
			}
			if got := fsum.Sum(nll); !approx(got, e.want, 1e-12) {
				t.Errorf("%+v %s: total %.15g, reference %.15g", c, e.kind, got, e.want)
			}
		}
	}
}

// End to end through Evaluate, for text lengths that are not multiples of
// the window: a target-only model's total reveals double or missing scores.
func TestEvaluateScoresEveryTestTokenOnce(t *testing.T) {
	for _, c := range []struct{ n, T, S, maxEval int }{
		{2345, 16, 5, 0}, {2345, 16, 16, 0}, {4001, 24, 7, 0}, {4001, 24, 1, 99}, {1999, 10, 3, 0},
	} {
		data := randomBytes(uint64(c.n), c.n)
		task := prepared(t, data, Config{SeqLen: c.T, EvalStride: c.S, MaxEvalTokens: c.maxEval, ValidTokens: 10, EvalBatch: 4})
		seq := task.test
		if c.maxEval > 0 {
			seq = seq[:c.maxEval+1]
		}
		want := 0.0
		for _, b := range seq[1:] {
			want -= targetLogProb(int(b))
		}
		want /= float64(len(seq) - 1)
		ev, err := task.Evaluate(context.Background(), targetModel{})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"nats_per_token", "nats_per_token_sliding"} {
			got := metrics(ev)[name]
			if !approx(got.Value, want, 1e-12) || got.Params["tokens"] != len(seq)-1 {
				t.Errorf("%+v %s = %v (%v), want %v over %d tokens", c, name, got.Value, got.Params, want, len(seq)-1)
			}
		}
	}
}

func TestMaxContext(t *testing.T) {
	data := randomBytes(5, 5000)
	task := prepared(t, data, Config{SeqLen: 64, ValidTokens: 200, EvalBatch: 8})
	widest := 0
	m := limitedModel{maxCtx: 16, maxWidth: &widest}
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if widest == 0 || widest > 16 {
		t.Errorf("widest row %d, want ≤ 16", widest)
	}
	for _, x := range ev.Metrics {
		if _, _, ref := harness.SplitReference(x.Name); ref {
			continue // the same for every model (TestReferences)
		}
		if x.Params["window"] != 16 || x.Params["stride"] != 16 {
			t.Errorf("%s params %v, want window 16 and stride clamped to 16", x.Name, x.Params)
		}
		if strings.HasPrefix(x.Name, "bits_per_byte") && !approx(x.Value, 8, 1e-12) {
			t.Errorf("%s = %v", x.Name, x.Value)
		}
	}
	if _, err := task.ValidLoss(context.Background(), m); err != nil {
		t.Error(err)
	}
	// MaxContext 0 is unbounded (harness.ContextOf): the window is seq_len.
	ev, err = task.Evaluate(context.Background(), limitedModel{maxCtx: 0, maxWidth: &widest})
	if err != nil {
		t.Fatalf("MaxContext 0 (unbounded): %v", err)
	}
	if w := ev.Metrics[0].Params["window"]; w != task.cfg.SeqLen {
		t.Errorf("MaxContext 0: window %v, want seq_len %d", w, task.cfg.SeqLen)
	}
}

func TestModelWithoutScorer(t *testing.T) {
	task := prepared(t, randomBytes(6, 3000), Config{SeqLen: 16, ValidTokens: 10, EvalBatch: 4})
	_, err := task.Evaluate(context.Background(), baseModel{"nade"})
	if err == nil || !strings.Contains(err.Error(), `"nade"`) || !strings.Contains(err.Error(), "Scorer") {
		t.Errorf("Evaluate error %v, want one naming the family and Scorer", err)
	}
	if _, err := task.ValidLoss(context.Background(), baseModel{"nade"}); err == nil {
		t.Error("ValidLoss accepted a model without Scorer")
	}
}

func TestTrainBatch(t *testing.T) {
	task := prepared(t, randomBytes(7, 4000), Config{SeqLen: 32, ValidTokens: 10, EvalBatch: 4})
	b := task.TrainBatch(rand.New(rand.NewPCG(42, 0)), 5)
	again := task.TrainBatch(rand.New(rand.NewPCG(42, 0)), 5)
	if len(b.Inputs) != 5 || len(b.Targets) != 5 || b.Tokens() != 5*32 {
		t.Fatalf("batch shape %d×?, %d tokens", len(b.Inputs), b.Tokens())
	}
	train := ints(task.train)
	for r := range b.Inputs {
		in, tg := b.Inputs[r], b.Targets[r]
		if len(in) != 32 || len(tg) != 32 {
			t.Fatalf("row %d lengths %d/%d", r, len(in), len(tg))
		}
		found := false
		for i := 0; i+33 <= len(train) && !found; i++ {
			found = slices.Equal(train[i:i+32], in) && slices.Equal(train[i+1:i+33], tg)
		}
		if !found {
			t.Errorf("row %d is not a shifted window of the train split", r)
		}
		if !slices.Equal(in, again.Inputs[r]) {
			t.Errorf("row %d differs for the same seed", r)
		}
	}
}

// pairModel has its own tokenizer: byte pairs (a trailing odd byte is a
// token of its own), each uniform over its 65536 (or 256) values.
type pairModel struct{ baseModel }

func (pairModel) ScoreText(_ context.Context, texts [][]byte) ([]float64, error) {
	out := make([]float64, len(texts))
	for i, s := range texts {
		out[i] = float64(len(s)/2)*math.Log(65536) + float64(len(s)%2)*math.Log(256)
	}
	return out, nil
}

// TestTextScorerEvaluation: a model with a different tokenization,
// uniform over its tokens, scores exactly 8 bits per byte (total nats
// over bytes), on the same N bytes as the byte-level evaluation, in texts
// of seq_len bytes; it has no validation loss.
func TestTextScorerEvaluation(t *testing.T) {
	task := prepared(t, randomBytes(7, 3001), Config{SeqLen: 16, ValidTokens: 10, EvalBatch: 4})
	ev, err := task.Evaluate(context.Background(), pairModel{baseModel{"pairs"}})
	if err != nil {
		t.Fatal(err)
	}
	N := len(task.test) - 1
	got := map[string]harness.Metric{}
	for _, m := range ev.Metrics {
		got[m.Name] = m
	}
	if bpb := got["bits_per_byte"]; math.Abs(bpb.Value-8) > 1e-12 || bpb.Params["scoring"] != "text" || bpb.Params["bytes"] != N {
		t.Errorf("bits_per_byte %v, params %v; want exactly 8 over %d bytes", bpb.Value, bpb.Params, N)
	}
	if _, ok := got["perplexity"]; ok || len(ev.Metrics) != 6 {
		t.Errorf("metrics %v; want nats_per_byte and bits_per_byte and their 4 reference rows only", ev.Metrics)
	}
	for _, ref := range []string{refUnigram, refUniform} {
		if m, ok := got[harness.ReferenceName("nats_per_byte", ref)]; !ok || m.Unit != "nats/byte" || m.Params["tokens"] != N {
			t.Errorf("reference %s of nats_per_byte: %+v", ref, m)
		}
	}
	if ci := got["bits_per_byte"].CI; ci == nil || ci.Lo != 8 || ci.Hi != 8 || ci.N != (N+15)/16 || ci.Of != "windows" {
		t.Errorf("bits_per_byte interval %+v, want [8, 8] over the %d texts", ci, (N+15)/16)
	}
	bytes := 0
	for _, s := range ev.Samples {
		if s["bytes"].(int) > 16 {
			t.Errorf("a text of %v bytes, want at most seq_len 16", s["bytes"])
		}
		bytes += s["bytes"].(int)
	}
	if bytes != N || len(ev.Samples) != (N+15)/16 {
		t.Errorf("%d texts of %d bytes in all; want %d bytes in %d texts", len(ev.Samples), bytes, N, (N+15)/16)
	}
	if _, err := task.ValidLoss(context.Background(), pairModel{baseModel{"pairs"}}); !errors.Is(err, harness.ErrNoValidLoss) {
		t.Errorf("ValidLoss of a TextScorer: %v, want ErrNoValidLoss", err)
	}
}
