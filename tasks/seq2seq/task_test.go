package seq2seq

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"arbench/harness"
	"arbench/harness/harnesstest"
	"arbench/nn"
)

// smallTask returns a prepared task of variant with small sets.
func smallTask(t *testing.T, variant string, edit func(*TaskConfig)) *Task {
	t.Helper()
	tk := New().(*Task)
	tk.cfg.Config = defaultFor(variant)
	tk.cfg.ValidRows, tk.cfg.TestRows, tk.cfg.LatencyRows, tk.cfg.EvalBatch = 24, 40, 8, 16
	if edit != nil {
		edit(&tk.cfg)
	}
	if err := tk.Prepare(context.Background(), harness.TaskEnv{Variant: variant, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	return tk
}

// fakeBase is the Model part of the fake conditional models.
type fakeBase struct{ family string }

func (fakeBase) Config() harness.Config                   { return nil }
func (fakeBase) Setup(context.Context, harness.Env) error { return nil }
func (fakeBase) Params() *nn.ParamSet                     { return nil }
func (f fakeBase) Info() harness.ModelInfo                { return harness.ModelInfo{Family: f.family} }
func (fakeBase) Conditional() bool                        { return true }

// oracle is a Conditioner and Translator that answers each source with
// answer(source) and predicts its length; it records every call.
type oracle struct {
	fakeBase
	answer func(src []int) []int
	calls  []harness.TranslateOptions
	rows   []int
}

var (
	_ harness.Conditioner = (*oracle)(nil)
	_ harness.Translator  = (*oracle)(nil)
)

func (o *oracle) Translate(_ context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	o.calls, o.rows = append(o.calls, opt), append(o.rows, len(sources))
	out := &harness.Translation{Passes: 1}
	for _, s := range sources {
		y := o.answer(s)
		out.Outputs, out.Lengths = append(out.Outputs, y), append(out.Lengths, len(y)+1)
	}
	return out, nil
}

// lookup answers every source of the task's sets with its drawn target.
func lookup(tk *Task) func([]int) []int {
	m := map[string][]int{}
	for _, e := range append(slices.Clone(tk.valid), tk.test...) {
		m[key(e.Source)] = e.Target
	}
	return func(src []int) []int { return slices.Clone(m[key(src)]) }
}

// mixModes answers a multimodal source with the first half of the source
// and the second half of its reverse, which matches neither mode.
func mixModes(src []int) []int {
	rev := slices.Clone(src)
	slices.Reverse(rev)
	mix := slices.Clone(src)
	copy(mix[len(mix)/2:], rev[len(mix)/2:])
	return mix
}

// metricsByName indexes an evaluation's metrics, failing on a duplicate.
func metricsByName(t *testing.T, ev *harness.Evaluation) map[string]harness.Metric {
	t.Helper()
	out := map[string]harness.Metric{}
	for _, m := range ev.Metrics {
		if _, dup := out[m.Name]; dup {
			t.Fatalf("metric %s twice", m.Name)
		}
		if m.Split != "test" {
			t.Errorf("%s: split %q", m.Name, m.Split)
		}
		out[m.Name] = m
	}
	return out
}

// seriesByName indexes series by name and label, checking that X
// increases and the lengths agree.
func seriesByName(t *testing.T, ev *harness.Evaluation) map[string]harness.Series {
	t.Helper()
	out := map[string]harness.Series{}
	for _, s := range ev.Series {
		k := s.Name + "/" + s.Label
		if _, dup := out[k]; dup {
			t.Fatalf("series %s twice", k)
		}
		if len(s.X) != len(s.Y) || (s.N != nil && len(s.N) != len(s.X)) || len(s.X) == 0 {
			t.Errorf("%s: %d x, %d y, %d n", k, len(s.X), len(s.Y), len(s.N))
		}
		for i := 1; i < len(s.X); i++ {
			if !(s.X[i] >= s.X[i-1]) {
				t.Errorf("%s: x not increasing: %v", k, s.X)
			}
		}
		out[k] = s
	}
	return out
}

func evaluate(t *testing.T, tk *Task, m harness.Model) *harness.Evaluation {
	t.Helper()
	ev, err := tk.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// checkFraction checks a fraction metric's value and its interval.
func checkFraction(t *testing.T, ms map[string]harness.Metric, name string, want float64) {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if math.Abs(m.Value-want) > 1e-12 || m.Unit != "fraction" {
		t.Errorf("%s = %v %s, want %v", name, m.Value, m.Unit, want)
	}
	if m.CI == nil {
		t.Fatalf("%s = %v: no interval", name, m.Value)
	}
	lo, hi := float64(m.CI.Lo), float64(m.CI.Hi)
	if !(lo <= m.Value && m.Value <= hi && lo >= 0 && hi <= 1 && hi-lo < 0.5) || m.CI.N == 0 || m.CI.Of != "rows" {
		t.Errorf("%s = %v: interval %+v", name, m.Value, m.CI)
	}
}

func TestRegistered(t *testing.T) {
	found := false
	for _, r := range harness.Tasks() {
		found = found || r.Name == "seq2seq"
	}
	if !found {
		t.Fatal("seq2seq is not registered")
	}
	for _, v := range Variants() {
		tk, variant, err := harness.NewTask("seq2seq/" + v)
		if err != nil || variant != v {
			t.Fatalf("NewTask(seq2seq/%s) = %v, %q, %v", v, tk, variant, err)
		}
		if _, ok := tk.(*Task); !ok {
			t.Fatalf("seq2seq/%s is a %T", v, tk)
		}
		if errs := tk.Config().(harness.VariantValidator).ValidateVariant(v); len(errs) > 0 {
			t.Errorf("%s: default config refused: %v", v, errs)
		}
	}
}

func TestInfo(t *testing.T) {
	for _, v := range Variants() {
		tk := smallTask(t, v, nil)
		info := tk.Info()
		src, tgt := tk.gen.MaxLens()
		if info.Name != "seq2seq/"+v || info.Kind != "seq2seq" || info.HeadlineMetric != "exact_match" || info.Vocab != tk.gen.Vocab() {
			t.Errorf("%s: info %+v", v, info)
		}
		if info.SourceLen != src || info.TargetLen != tgt+1 || info.SeqLen != src+1+tgt+1 {
			t.Errorf("%s: lengths source %d target %d seq %d, want %d, %d, %d", v, info.SourceLen, info.TargetLen, info.SeqLen, src, tgt+1, src+tgt+2)
		}
		if !slices.Equal(info.Needs, []harness.Capability{harness.NeedSource}) || info.EvalBatch != 40 {
			t.Errorf("%s: needs %v, eval batch %d (want the 40 test rows of the large batch)", v, info.Needs, info.EvalBatch)
		}
	}
	tk := smallTask(t, "reverse", func(c *TaskConfig) { c.MaxOut, c.LargeBatch = 30, 8 })
	if info := tk.Info(); info.SeqLen != 9+30 || info.EvalBatch != 16 {
		t.Errorf("max_out 30: seq len %d, eval batch %d; want 39 and eval_batch 16", info.SeqLen, info.EvalBatch)
	}
}

func TestTaskConfig(t *testing.T) {
	tk := New().(*Task)
	src := []byte("symbols: 4\nmin_len: 2\nmax_len: 5\neval_batch: 8\nlatency_rows: 4\nlarge_batch: 16\nmax_out: 9\nsample_rows: 3\n")
	if err := harness.DecodeConfig("t.yaml", src, tk.Config()); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	want := DefaultTaskConfig()
	want.Symbols, want.MinLen, want.MaxLen, want.EvalBatch, want.LatencyRows, want.LargeBatch, want.MaxOut, want.SampleRows = 4, 2, 5, 8, 4, 16, 9, 3
	if tk.cfg != want {
		t.Errorf("decoded %+v, want %+v", tk.cfg, want)
	}
	if err := harness.DecodeConfig("t.yaml", []byte("evalbatch: 3\n"), New().Config()); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Errorf("misspelt field: %v", err)
	}
	bad := DefaultTaskConfig()
	bad.EvalBatch, bad.LatencyRows, bad.LargeBatch, bad.MaxOut, bad.SampleRows, bad.Symbols = 0, 0, -1, -1, -1, 0
	all := errString(bad.Validate())
	for _, w := range []string{"eval_batch", "latency_rows", "large_batch", "max_out", "sample_rows", "symbols"} {
		if !strings.Contains(all, w+":") {
			t.Errorf("errors lack %s:\n%s", w, all)
		}
	}
	short := DefaultTaskConfig()
	short.MaxOut = 12 // reverse's longest target is 12 tokens, 13 with EOS
	if all := errString(short.ValidateVariant("reverse")); !strings.Contains(all, "max_out: 12 tokens cannot hold the longest target") {
		t.Errorf("short max_out: %s", all)
	}
	if err := New().Prepare(context.Background(), harness.TaskEnv{Variant: "reverse", DataFile: "x.txt"}); err == nil {
		t.Error("a data file was accepted")
	}
	if err := New().Prepare(context.Background(), harness.TaskEnv{Variant: "nosuch"}); err == nil || !strings.Contains(err.Error(), `unknown variant "nosuch"`) {
		t.Errorf("unknown variant: %v", err)
	}
}

// The experiment check reports a seq2seq task's variant problems with the
// file's other errors, before any work.
func TestVariantErrorsAtParseTime(t *testing.T) {
	yaml := "name: bad\ntasks:\n  - name: seq2seq/nosuch\n  - name: seq2seq/add\n    config: {symbols: 4}\n  - name: seq2seq/reverse\n    config: {max_out: 3}\nmodels:\n  - name: fake-lm\n"
	_, err := harness.ParseExperiment("bad.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`bad.yaml:3: tasks[0].config: unknown variant "nosuch"`, "bad.yaml:5: tasks[1].config: symbols: does not apply to variant add",
		"bad.yaml:7: tasks[2].config: max_out: 3 tokens"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestTrainBatch(t *testing.T) {
	for _, v := range Variants() {
		tk := smallTask(t, v, nil)
		info := tk.Info()
		b := tk.TrainBatch(rng(1), 32)
		if len(b.Source) != 32 || len(b.Inputs) != 32 || len(b.Targets) != 32 {
			t.Fatalf("%s: %d/%d/%d rows", v, len(b.Source), len(b.Inputs), len(b.Targets))
		}
		if w := len(b.Source[0]); w > info.SourceLen {
			t.Errorf("%s: sources %d wide, longest %d", v, w, info.SourceLen)
		}
		if w := len(b.Inputs[0]); w > info.TargetLen || w != len(b.Targets[0]) {
			t.Errorf("%s: decoder rows %d wide, longest %d", v, w, info.TargetLen)
		}
		for i, row := range b.Source {
			if SplitOf(row[:harness.SourceLen(row)], tk.cfg.SplitBuckets) != Train {
				t.Fatalf("%s: row %d is not a training source", v, i)
			}
		}
		j, _ := harness.JoinSource(b)
		if w := len(j.Inputs[0]); w > info.SeqLen {
			t.Errorf("%s: joined rows %d wide, seq len %d", v, w, info.SeqLen)
		}
	}
}

// scorer is an oracle that also scores every target at log 1/2 and
// records the rows of each LogProbs call.
type scorer struct {
	oracle
	scored []int
}

func (s *scorer) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	if b.Source == nil {
		return nil, fmt.Errorf("no source")
	}
	s.scored = append(s.scored, len(b.Targets))
	out := make([][]float64, len(b.Targets))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
		for k, tg := range row {
			if tg >= 0 {
				out[i][k] = math.Log(0.5)
			}
		}
	}
	return out, nil
}

func TestValidLoss(t *testing.T) {
	tk := smallTask(t, "sort", nil)
	s := &scorer{oracle: oracle{fakeBase: fakeBase{"scorer"}, answer: lookup(tk)}}
	got, err := tk.ValidLoss(context.Background(), s)
	if err != nil || math.Abs(got-math.Ln2) > 1e-12 {
		t.Errorf("valid loss %v, %v; want ln 2", got, err)
	}
	if !slices.Equal(s.scored, []int{16, 8}) {
		t.Errorf("scored rows per call %v, want eval_batch 16 then the 8 left of 24", s.scored)
	}
	_, err = tk.ValidLoss(context.Background(), &oracle{fakeBase: fakeBase{"translator"}, answer: lookup(tk)})
	if !errors.Is(err, harness.ErrNoValidLoss) || !strings.Contains(err.Error(), "harness.Scorer") {
		t.Errorf("a model without a Scorer: %v, want ErrNoValidLoss", err)
	}
}

// A model that returns the right targets scores 1 everywhere, with sane
// intervals, through options the task sets; the speed metrics and series
// are there; a Scorer gets target_nll.
func TestEvaluatePerfect(t *testing.T) {
	tk := smallTask(t, "reverse", func(c *TaskConfig) { c.LargeBatch, c.SampleRows = 16, 5 })
	m := &scorer{oracle: oracle{fakeBase: fakeBase{"perfect"}, answer: lookup(tk)}}
	ev := evaluate(t, tk, m)
	ms := metricsByName(t, ev)
	for _, name := range []string{"exact_match", "token_accuracy", "length_accuracy"} {
		checkFraction(t, ms, name, 1)
	}
	if lo := float64(ms["exact_match"].CI.Lo); !(lo > 0.9 && lo < 1) {
		t.Errorf("exact_match over 40 rows: ci_low %v, want Wilson's 0.912", lo)
	}
	if nll := ms["target_nll"]; math.Abs(nll.Value-math.Ln2) > 1e-12 || nll.Unit != "nats/token" {
		t.Errorf("target_nll %+v", nll)
	}
	for _, name := range []string{"latency_ms_b1", "latency_ms_b1_p50", "latency_ms_b1_p90", "latency_ms_large", "sequences_per_s_large"} {
		if v := ms[name].Value; !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v", name, v)
		}
	}
	if ms["passes_b1"].Value != 1 || ms["passes_large"].Value != 1 {
		t.Errorf("passes %v, %v; want 1", ms["passes_b1"].Value, ms["passes_large"].Value)
	}
	if _, ok := ms["mixed_modes"]; ok {
		t.Error("mixed_modes for reverse")
	}
	for _, o := range m.calls {
		if o != (harness.TranslateOptions{Start: BOS, End: EOS, MaxLen: 9 + 2}) {
			t.Fatalf("translate options %+v", o)
		}
	}
	// large pass: every call warmed up (16, 16, 8), then timed (16, 16,
	// 8); batch 1: the 8 rows warmed up, then timed; then the length
	// groups, each warmed up then timed.
	if want := []int{16, 16, 8, 16, 16, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4}; !slices.Equal(m.rows[:len(want)], want) {
		t.Errorf("rows per call %v", m.rows)
	}
	ss := seriesByName(t, ev)
	for _, k := range []string{"latency_vs_target_length/batch 1", "latency_vs_target_length/large batch"} {
		if _, ok := ss[k]; !ok {
			t.Errorf("no series %s (have %v)", k, keys(ss))
		}
	}
	if n := ss["latency_vs_target_length/large batch"].N; sumInts(n) != 40 {
		t.Errorf("large-batch latency series covers %d rows, want 40", sumInts(n))
	}
	if len(ev.Samples) != 5 || ev.Samples[0]["match"] != 0 || !slices.Equal(ev.Samples[0]["output"].([]int), tk.test[0].Target) {
		t.Errorf("samples %v", ev.Samples)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sumInts(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestEvaluateMultimodal(t *testing.T) {
	tk := smallTask(t, "multimodal", nil)
	ms := metricsByName(t, evaluate(t, tk, &oracle{fakeBase: fakeBase{"mixer"}, answer: mixModes}))
	checkFraction(t, ms, "mixed_modes", 1)
	checkFraction(t, ms, "exact_match", 0)
	checkFraction(t, ms, "mode_0", 0)
	checkFraction(t, ms, "length_accuracy", 1)
	if _, ok := ms["target_nll"]; ok {
		t.Error("target_nll for a model without a Scorer")
	}
	ms = metricsByName(t, evaluate(t, tk, &oracle{fakeBase: fakeBase{"drawn"}, answer: lookup(tk)}))
	checkFraction(t, ms, "mixed_modes", 0)
	m0, m1 := ms["mode_0"].Value, ms["mode_1"].Value
	if m0+m1 != 1 || m0 == 0 || m1 == 0 {
		t.Errorf("modes %v + %v, want both drawn and summing to 1", m0, m1)
	}
}

// sweeper decodes correctly at T=2 and the default, and outputs Mask
// tokens at T=1; Passes is T.
type sweeper struct{ oracle }

func (s *sweeper) DecodeSettings() []harness.DecodeSetting {
	return []harness.DecodeSetting{{Name: "T=2", Params: map[string]any{"iterations": 2}}, {Name: "T=1", Params: map[string]any{"iterations": 1}}}
}

func (s *sweeper) Translate(ctx context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	out, _ := s.oracle.Translate(ctx, sources, opt)
	switch opt.Setting {
	case "T=1":
		for i, o := range out.Outputs {
			for j := range o {
				out.Outputs[i][j] = Mask
			}
		}
		out.Passes = 1
	case "T=2", "":
		out.Passes = 2
	default:
		return nil, fmt.Errorf("no setting %q", opt.Setting)
	}
	return out, nil
}

func TestEvaluateSweep(t *testing.T) {
	tk := smallTask(t, "copy-noisy", nil)
	ev := evaluate(t, tk, &sweeper{oracle{fakeBase: fakeBase{"nar"}, answer: lookup(tk)}})
	ms := metricsByName(t, ev)
	checkFraction(t, ms, "exact_match", 1)
	checkFraction(t, ms, "exact_match@T=2", 1)
	checkFraction(t, ms, "exact_match@T=1", 0)
	checkFraction(t, ms, "token_accuracy@T=1", 0)
	if p := ms["exact_match@T=1"].Params; p["iterations"] != 1 || p["setting"] != "T=1" {
		t.Errorf("exact_match@T=1 params %v", p)
	}
	if ms["passes_b1@T=1"].Value != 1 || ms["passes_large@T=2"].Value != 2 {
		t.Errorf("passes %v, %v", ms["passes_b1@T=1"].Value, ms["passes_large@T=2"].Value)
	}
	if r := ms["repetition_rate@T=1"].Value; r != 1 {
		t.Errorf("repetition_rate@T=1 = %v, want 1 (all Mask)", r)
	}
	for _, name := range []string{"latency_ms_b1@T=1", "sequences_per_s_large@T=2"} {
		if _, ok := ms[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	for name := range ms {
		if strings.HasPrefix(name, "speedup") {
			t.Errorf("%s without a baseline setting", name)
		}
	}
	ss := seriesByName(t, ev)
	em := ss["exact_match_vs_iterations/"]
	if !slices.Equal(em.X, []float64{1, 2}) || !slices.Equal(em.Y, []float64{0, 1}) || !slices.Equal(em.N, []int{40, 40}) {
		t.Errorf("exact_match_vs_iterations %+v", em)
	}
	for _, k := range []string{"latency_vs_iterations/batch 1", "latency_vs_iterations/large batch"} {
		if len(ss[k].X) != 2 {
			t.Errorf("series %s: %+v", k, ss[k])
		}
	}
	if _, ok := ss["speed_quality_large/"]; ok {
		t.Error("a per-seed speed-quality series (the report draws it from the metrics)")
	}
}

// hybrid is a speculative decoder: its baseline "verifier" (no
// parameters) sleeps 2 ms per call; gamma=k drafts k tokens per row and
// accepts half, two verify calls per row.
type hybrid struct{ oracle }

func (h *hybrid) DecodeSettings() []harness.DecodeSetting {
	return []harness.DecodeSetting{{Name: "verifier", Baseline: true},
		{Name: "gamma=2", Params: map[string]any{"gamma": 2}}, {Name: "gamma=4", Params: map[string]any{"gamma": 4}}}
}

func (h *hybrid) Translate(ctx context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	out, _ := h.oracle.Translate(ctx, sources, opt)
	out.Lengths = nil
	r := float64(len(sources))
	switch opt.Setting {
	case "verifier", "":
		time.Sleep(2 * time.Millisecond)
	case "gamma=2", "gamma=4":
		g := float64(opt.Setting[len(opt.Setting)-1] - '0')
		out.Stats = map[string]float64{"drafted": g * r, "accepted": g * r / 2, "verify_calls": 2 * r, "draft_seconds": 0.001 * r, "verify_seconds": 0.004 * r,
			"tested": g * r, "tested_accepted": g * r / 4}
	}
	return out, nil
}

func TestEvaluateHybrid(t *testing.T) {
	tk := smallTask(t, "add", nil)
	ev := evaluate(t, tk, &hybrid{oracle{fakeBase: fakeBase{"hybrid"}, answer: lookup(tk)}})
	ms := metricsByName(t, ev)
	if _, ok := ms["length_accuracy"]; ok {
		t.Error("length_accuracy without predicted lengths")
	}
	for _, suffix := range []string{"", "_b1"} {
		if v := ms["acceptance_rate"+suffix+"@gamma=4"].Value; v != 0.5 {
			t.Errorf("acceptance_rate%s@gamma=4 = %v, want 0.5", suffix, v)
		}
		if v := ms["acceptance_alpha"+suffix+"@gamma=2"].Value; v != 0.25 {
			t.Errorf("acceptance_alpha%s@gamma=2 = %v, want 0.25", suffix, v)
		}
		if v := ms["draft_verify_cost"+suffix+"@gamma=2"].Value; math.Abs(v-0.25) > 1e-12 {
			t.Errorf("draft_verify_cost%s@gamma=2 = %v, want 0.25", suffix, v)
		}
	}
	tokens := 0
	for _, e := range tk.test {
		tokens += len(e.Target) + 1
	}
	if v := ms["tokens_per_verify@gamma=2"].Value; math.Abs(v-float64(tokens)/80) > 1e-12 {
		t.Errorf("tokens_per_verify@gamma=2 = %v, want %v", v, float64(tokens)/80)
	}
	for _, name := range []string{"speedup_b1@gamma=2", "speedup_large@gamma=4"} {
		if m := ms[name]; !(m.Value > 1) || m.Params["baseline"] != "verifier" || !harness.IsTimingUnit(m.Unit) {
			t.Errorf("%s = %+v, want > 1 against the sleeping verifier, in a timing unit", name, m)
		}
	}
	if m := ms["same_as_baseline@gamma=4"]; m.Value != 1 || m.Params["rows"] != len(tk.test) || m.CI == nil || !(m.CI.Lo < 1) {
		t.Errorf("same_as_baseline@gamma=4 = %+v, want 1 over %d rows with an interval", m, len(tk.test))
	}
	for _, name := range []string{"speedup_b1@verifier", "acceptance_rate@verifier", "speedup_b1", "same_as_baseline@verifier"} {
		if _, ok := ms[name]; ok {
			t.Errorf("%s reported", name)
		}
	}
	ss := seriesByName(t, ev)
	for _, k := range []string{"acceptance_vs_gamma/batch 1", "speedup_vs_gamma/large batch", "exact_match_vs_gamma/"} {
		if s := ss[k]; !slices.Equal(s.X, []float64{2, 4}) {
			t.Errorf("series %s: %+v", k, s)
		}
	}
	if s := ss["acceptance_vs_gamma/large batch"]; !slices.Equal(s.Y, []float64{0.5, 0.5}) {
		t.Errorf("acceptance_vs_gamma %+v", s)
	}
	if m := ms["latency_ms_b1@verifier"]; !(m.Value > ms["latency_ms_b1@gamma=2"].Value) {
		t.Errorf("latency_ms_b1@verifier %v, want the sleeping verifier slowest (gamma=2: %v)", m.Value, ms["latency_ms_b1@gamma=2"].Value)
	}
}

func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		settings []harness.DecodeSetting
		want     string
	}{
		{[]harness.DecodeSetting{{Name: "a"}, {Name: "a"}}, "listed twice"},
		{[]harness.DecodeSetting{{}}, "no name"},
		{[]harness.DecodeSetting{{Name: "a", Baseline: true}, {Name: "b", Baseline: true}}, "at most one"},
	} {
		if err := checkSettings(tc.settings); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.settings, err, tc.want)
		}
	}
}

// joiner is the harnesstest bigram language model in its joined mode.
type joiner struct{ *harnesstest.LM }

func (joiner) JoinsSource() bool { return true }

// A decoder-only language model runs through the harness's joined mode:
// greedy continuation for the outputs, joined scoring for target_nll.
func TestEvaluateJoinedLM(t *testing.T) {
	tk := smallTask(t, "reverse", nil)
	m := joiner{harnesstest.NewLM()}
	b, err := nn.OpenBackend("fake", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(context.Background(), harness.Env{Backend: b, Vocab: tk.Info().Vocab, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	ms := metricsByName(t, evaluate(t, tk, m))
	if v := ms["target_nll"].Value; !(v > 0) || math.IsInf(v, 0) {
		t.Errorf("target_nll %v", v)
	}
	if v := ms["exact_match"].Value; !(v >= 0 && v <= 1) {
		t.Errorf("exact_match %v", v)
	}
	if _, err := tk.ValidLoss(context.Background(), m); err != nil {
		t.Error(err)
	}
}

// twoSweeps sweeps two parameters, as nar's iterations and semi-autoregressive
// tokens per pass.
type twoSweeps struct{ sweeper }

func (s *twoSweeps) DecodeSettings() []harness.DecodeSetting {
	return append(s.sweeper.DecodeSettings(),
		harness.DecodeSetting{Name: "k=1", Params: map[string]any{"tokens_per_pass": 1}},
		harness.DecodeSetting{Name: "k=4", Params: map[string]any{"tokens_per_pass": 4}})
}

func (s *twoSweeps) Translate(ctx context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	if opt.Setting == "k=1" || opt.Setting == "k=4" {
		return s.oracle.Translate(ctx, sources, opt)
	}
	return s.sweeper.Translate(ctx, sources, opt)
}

// Each swept parameter gets its own series.
func TestEvaluateTwoSweeps(t *testing.T) {
	tk := smallTask(t, "copy-noisy", nil)
	ev := evaluate(t, tk, &twoSweeps{sweeper{oracle{fakeBase: fakeBase{"nar"}, answer: lookup(tk)}}})
	ss := seriesByName(t, ev)
	if s := ss["exact_match_vs_iterations/"]; !slices.Equal(s.X, []float64{1, 2}) || !slices.Equal(s.Y, []float64{0, 1}) {
		t.Errorf("exact_match_vs_iterations %+v", s)
	}
	if s := ss["exact_match_vs_tokens_per_pass/"]; !slices.Equal(s.X, []float64{1, 4}) || !slices.Equal(s.Y, []float64{1, 1}) {
		t.Errorf("exact_match_vs_tokens_per_pass %+v", s)
	}
}
