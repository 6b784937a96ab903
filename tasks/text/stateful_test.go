package text

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
	nngorgonia "arbench/nn/gorgonia"
	"arbench/plugins/lstm"
)

func TestStreamLayout(t *testing.T) {
	for _, c := range []struct{ N, B, L, streams int }{
		{10, 4, 3, 4}, {8, 4, 2, 4}, {9, 4, 3, 3}, {3, 8, 1, 3}, {16384, 32, 512, 32}, {1, 1, 1, 1},
	} {
		L, streams := streamLayout(c.N, c.B)
		if L != c.L || streams != c.streams {
			t.Errorf("streamLayout(%d, %d) = %d, %d; want %d, %d", c.N, c.B, L, streams, c.L, c.streams)
		}
		if (streams-1)*L >= c.N || streams*L < c.N {
			t.Errorf("streamLayout(%d, %d): %d streams of %d do not cover the targets once", c.N, c.B, streams, L)
		}
	}
}

// lagModel knows that the corpus repeats with period lag: it gives the
// byte lag positions back probability 0.9 once it has read that far, and
// is uniform before. Scorer and Stepper agree, and it has no context
// limit, so it is a recurrent model as far as the task can tell.
type lagModel struct {
	baseModel
	lag int
}

func (m lagModel) prob(history []int, target int) float64 {
	if len(history) < m.lag {
		return -math.Log(Vocab)
	}
	if history[len(history)-m.lag] == target {
		return math.Log(0.9)
	}
	return math.Log(0.1 / (Vocab - 1))
}

func (m lagModel) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	return logProbs(b, func(row []int, t, tg int) float64 { return m.prob(row[:t+1], tg) }), nil
}

type lagState struct{ rows [][]int }

func (s *lagState) Len() int { return len(s.rows[0]) }

func (m lagModel) dists(s *lagState) [][]float32 {
	out := make([][]float32, len(s.rows))
	for i, h := range s.rows {
		out[i] = make([]float32, Vocab)
		for v := range Vocab {
			out[i][v] = float32(m.prob(h, v))
		}
	}
	return out
}

func (m lagModel) Start(_ context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	s := &lagState{}
	for _, p := range prompts {
		s.rows = append(s.rows, append([]int(nil), p...))
	}
	return s, m.dists(s), nil
}

func (m lagModel) Step(_ context.Context, st harness.State, tokens []int) ([][]float32, error) {
	s := st.(*lagState)
	for i, tk := range tokens {
		s.rows[i] = append(s.rows[i], tk)
	}
	return m.dists(s), nil
}

// limitedLagModel is lagModel with a context limit (a Transformer's
// Stepper): it gets no stateful evaluation.
type limitedLagModel struct{ lagModel }

func (limitedLagModel) MaxContext() int { return 16 }

func periodic(n, period int) []byte {
	pattern := randomBytes(14, period)
	out := make([]byte, n)
	for i := range out {
		out[i] = pattern[i%period]
	}
	return out
}

// TestStatefulEvaluation: with a dependency 40 bytes back and a window of
// 16, windowed scoring cannot see it and stateful scoring can; every
// target is scored once, from its whole stream before it.
func TestStatefulEvaluation(t *testing.T) {
	const lag = 40
	task := prepared(t, periodic(40000, lag), Config{SeqLen: 16, ValidTokens: 100, EvalBatch: 8, Stateful: true, StatefulStreams: 6})
	m := lagModel{lag: lag}
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	got := metrics(ev)
	seq := ints(task.test)
	N := len(seq) - 1
	L, streams := streamLayout(N, 6)
	want := 0.0
	for j := 1; j <= N; j++ {
		start := (j - 1) / L * L
		want -= m.prob(seq[start:j], seq[j])
	}
	want /= float64(N)
	st := got["nats_per_token_stateful"]
	if !approx(st.Value, want, 1e-6) {
		t.Errorf("stateful %v nats/token, scoring each stream whole %v", st.Value, want)
	}
	if p := st.Params; p["streams"] != streams || p["stream_tokens"] != L || p["tokens"] != N || p["eval"] != "stateful" {
		t.Errorf("params %v, want %d streams of %d over %d tokens", p, streams, L, N)
	}
	if ci := st.CI; ci == nil || ci.N != len(disjointWindows(N, 16)) || ci.Of != "windows" || !(float64(ci.Lo) <= st.Value && st.Value <= float64(ci.Hi)) {
		t.Errorf("stateful interval %+v around %v", ci, st.Value)
	}
	for _, name := range []string{"bits_per_byte_stateful", "perplexity_stateful"} {
		if got[name].CI == nil {
			t.Errorf("%s missing or without interval: %+v", name, got[name])
		}
	}
	disjoint := got["nats_per_token"].Value
	if !approx(disjoint, math.Log(Vocab), 1e-12) || st.Value > disjoint/2 {
		t.Errorf("disjoint %v (want ln 256: the window never reaches the lag), stateful %v (want far below)", disjoint, st.Value)
	}
	for mode, windows := range map[string]int{"disjoint": len(disjointWindows(N, 16)), "sliding": len(slidingWindows(N, 16, 8))} {
		d := got["nats_per_token_stateful_minus_"+mode]
		want := st.Value - got["nats_per_token"+map[string]string{"disjoint": "", "sliding": "_sliding"}[mode]].Value
		if !approx(d.Value, want, 1e-9) || d.CI == nil || d.CI.Method != harness.CIPairedBootstrap || d.CI.N != windows || !(float64(d.CI.Hi) < 0) {
			t.Errorf("stateful − %s %+v (interval %+v), want %v, measurably below 0, over %d windows", mode, d, d.CI, want, windows)
		}
	}
	tokens := 0
	for _, s := range ev.Samples {
		if s["eval"] == "stateful" {
			tokens += s["tokens"].(int)
		}
	}
	if tokens != N {
		t.Errorf("stateful samples cover %d tokens, want %d", tokens, N)
	}
	if eb := task.Info().EvalBatch; eb != 8 {
		t.Errorf("Info().EvalBatch = %d, want eval_batch 8 (6 streams are fewer)", eb)
	}
}

// TestStatefulRows: Info's EvalBatch covers the streams stepped together
// when they outnumber eval_batch.
func TestStatefulRows(t *testing.T) {
	task := prepared(t, periodic(40000, 40), Config{SeqLen: 16, ValidTokens: 100, EvalBatch: 8, Stateful: true, StatefulStreams: 40})
	most := 0
	m := stepCounter{lagModel{lag: 40}, &most}
	if _, err := task.Evaluate(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := task.Info().EvalBatch; got != 40 || most != 40 {
		t.Errorf("Info().EvalBatch = %d, the Stepper got up to %d rows; want 40", got, most)
	}
}

// stepCounter records the most rows one Start or Step call gets.
type stepCounter struct {
	lagModel
	most *int
}

func (m stepCounter) Start(ctx context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	*m.most = max(*m.most, len(prompts))
	return m.lagModel.Start(ctx, prompts)
}

func (m stepCounter) Step(ctx context.Context, s harness.State, tokens []int) ([][]float32, error) {
	*m.most = max(*m.most, len(tokens))
	return m.lagModel.Step(ctx, s, tokens)
}

// TestStatefulOnlyForRecurrentModels: without stateful, for a model with
// a context limit, and for one without a Stepper, no stateful metric.
func TestStatefulOnlyForRecurrentModels(t *testing.T) {
	data := periodic(20000, 40)
	for _, c := range []struct {
		name     string
		stateful bool
		m        harness.Model
	}{
		{"stateful off", false, lagModel{lag: 40}},
		{"context limit", true, limitedLagModel{lagModel{lag: 40}}},
		{"no Stepper", true, prefixModel{}},
	} {
		task := prepared(t, data, Config{SeqLen: 16, ValidTokens: 100, EvalBatch: 8, Stateful: c.stateful})
		ev, err := task.Evaluate(context.Background(), c.m)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ev.Metrics {
			if strings.Contains(m.Name, "stateful") {
				t.Errorf("%s: metric %s", c.name, m.Name)
			}
		}
	}
}

// TestStatefulRealLSTM: an (untrained) LSTM's stateful evaluation, through
// its Stepper, equals scoring each stream as one row through its Scorer.
func TestStatefulRealLSTM(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.txt")
	if err := os.WriteFile(p, randomBytes(15, 6000), 0o644); err != nil {
		t.Fatal(err)
	}
	task := New().(*Task)
	*task.Config().(*Config) = Config{SeqLen: 16, ValidTokens: 100, EvalBatch: 4, MaxEvalTokens: 200, Stateful: true}
	if err := task.Prepare(context.Background(), harness.TaskEnv{DataFile: p, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	m := lstm.New()
	if err := m.Setup(context.Background(), harness.Env{Backend: nngorgonia.New(), Vocab: Vocab, SeqLen: 16, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	seq := ints(task.testSeq())
	N := len(seq) - 1
	L, streams := streamLayout(N, 4)
	b := harness.Batch{}
	for s := range streams {
		lo, hi := s*L, min((s+1)*L, N)
		in, tg := make([]int, L), make([]int, L)
		for k := range L {
			in[k], tg[k] = 0, -1
			if lo+k < hi {
				in[k], tg[k] = seq[lo+k], seq[lo+k+1]
			}
		}
		b.Inputs, b.Targets = append(b.Inputs, in), append(b.Targets, tg)
	}
	lp, err := m.(harness.Scorer).LogProbs(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for _, row := range lp {
		for _, x := range row {
			want -= x
		}
	}
	want /= float64(N)
	if got := metrics(ev)["nats_per_token_stateful"].Value; math.Abs(got-want) > 1e-4 || got < 1 {
		t.Errorf("stateful %v nats/token, the streams scored whole %v", got, want)
	}
}
