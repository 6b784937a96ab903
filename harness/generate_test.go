package harness

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"arbench/nn"
)

// markov is a fake model whose next-token distribution depends only on the
// previous token: probs[prev][v]. It supports both generation paths.
type markov struct {
	probs   [][]float64
	feeds   int // tokens read through NextLogProbs
	limit   int // MaxContext when > 0
	started bool
}

func (m *markov) Config() Config                   { return nil }
func (m *markov) Setup(context.Context, Env) error { return nil }
func (m *markov) Params() *nn.ParamSet             { return nil }
func (m *markov) Info() ModelInfo                  { return ModelInfo{Family: "markov"} }

func (m *markov) dist(prev int) []float32 {
	out := make([]float32, len(m.probs[prev]))
	for v, p := range m.probs[prev] {
		out[v] = float32(math.Log(p))
	}
	return out
}

func (m *markov) NextLogProbs(_ context.Context, inputs [][]int) ([][][]float32, error) {
	out := make([][][]float32, len(inputs))
	for i, row := range inputs {
		if m.limit > 0 && len(row) > m.limit {
			panic("input longer than MaxContext")
		}
		m.feeds += len(row)
		for _, tok := range row {
			out[i] = append(out[i], m.dist(tok))
		}
	}
	return out, nil
}

type markovState struct{ n int }

func (s *markovState) Len() int { return s.n }

func (m *markov) Start(_ context.Context, prompts [][]int) (State, [][]float32, error) {
	m.started = true
	out := make([][]float32, len(prompts))
	for i, p := range prompts {
		out[i] = m.dist(p[len(p)-1])
	}
	return &markovState{len(prompts[0])}, out, nil
}

func (m *markov) Step(_ context.Context, s State, tokens []int) ([][]float32, error) {
	st := s.(*markovState)
	st.n++
	if m.limit > 0 && st.n > m.limit {
		panic("stepped past MaxContext")
	}
	out := make([][]float32, len(tokens))
	for i, t := range tokens {
		out[i] = m.dist(t)
	}
	return out, nil
}

// onlyDist hides the Stepper of a markov model.
type onlyDist struct{ *markov }

func (o onlyDist) Start() {} // shadows markov.Start with a non-Stepper signature

type limited struct{ *markov }

func (l limited) MaxContext() int { return l.limit }

func newMarkov(seed uint64, V int) *markov {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := &markov{}
	for range V {
		row := make([]float64, V)
		var s float64
		for v := range row {
			row[v] = rng.Float64() + 0.05
			s += row[v]
		}
		for v := range row {
			row[v] /= s
		}
		m.probs = append(m.probs, row)
	}
	return m
}

func mustDistribution(t *testing.T, s *sampler, logp []float32, opt GenOptions) ([]int, []float64) {
	t.Helper()
	ids, ps, err := s.distribution(logp, opt)
	if err != nil {
		t.Fatal(err)
	}
	return ids, ps
}

func mustPick(t *testing.T, s *sampler, logp []float32, opt GenOptions, rng *rand.Rand) int {
	t.Helper()
	tok, err := s.pick(logp, opt, rng)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestGenerateGreedyIsArgmax(t *testing.T) {
	m := newMarkov(1, 6)
	out, err := Generate(context.Background(), m, [][]int{{0}, {3, 4}}, GenOptions{MaxNew: 5, StopToken: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i, start := range []int{0, 4} {
		prev := start
		for k, tok := range out[i] {
			want := 0
			for v, p := range m.probs[prev] {
				if p > m.probs[prev][want] {
					want = v
				}
			}
			if tok != want {
				t.Errorf("row %d token %d = %d, want argmax %d", i, k, tok, want)
			}
			prev = tok
		}
		if len(out[i]) != 5 {
			t.Errorf("row %d has %d tokens, want 5", i, len(out[i]))
		}
	}
}

func TestTopK1EqualsGreedy(t *testing.T) {
	m := newMarkov(2, 7)
	prompts := [][]int{{1}, {2}, {5}}
	greedy, err := Generate(context.Background(), m, prompts, GenOptions{MaxNew: 20, StopToken: -1})
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(3) {
		top1, err := Generate(context.Background(), m, prompts, GenOptions{MaxNew: 20, Temperature: 1.3, TopK: 1, StopToken: -1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(top1, greedy) {
			t.Errorf("seed %d: top-k 1 %v != greedy %v", seed, top1, greedy)
		}
	}
}

func TestTopPKeepsSmallestSet(t *testing.T) {
	probs := []float64{0.1, 0.4, 0.05, 0.25, 0.2}
	logp := make([]float32, len(probs))
	for i, p := range probs {
		logp[i] = float32(math.Log(p))
	}
	for _, tc := range []struct {
		p    float64
		want []int
	}{
		{0.3, []int{1}},
		{0.4, []int{1}},
		{0.41, []int{1, 3}},
		{0.65, []int{1, 3}},
		{0.66, []int{1, 3, 4}},
		{0.9, []int{1, 3, 4, 0}},
		{0.96, []int{1, 3, 4, 0, 2}},
		{1, []int{1, 3, 4, 0, 2}},
	} {
		var s sampler
		ids, ps := mustDistribution(t, &s, logp, GenOptions{Temperature: 1, TopP: tc.p})
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("top-p %v kept %v, want %v", tc.p, ids, tc.want)
		}
		var mass, sum float64
		for _, id := range tc.want {
			mass += probs[id]
		}
		for k, id := range ids {
			sum += ps[k]
			if math.Abs(ps[k]-probs[id]/mass) > 1e-6 {
				t.Errorf("top-p %v: p(%d) = %v, want renormalised %v", tc.p, id, ps[k], probs[id]/mass)
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("top-p %v: probabilities sum to %v", tc.p, sum)
		}
	}
	// top-k applies before top-p: with k=2 the nucleus is taken within {1, 3}.
	var s sampler
	ids, _ := mustDistribution(t, &s, logp, GenOptions{Temperature: 1, TopK: 2, TopP: 0.5})
	if !reflect.DeepEqual(ids, []int{1}) {
		t.Errorf("top-k 2 + top-p 0.5 kept %v, want [1] (0.4/0.65 < 0.5 <= 1)", ids)
	}
}

func TestTemperature(t *testing.T) {
	logp := []float32{float32(math.Log(0.2)), float32(math.Log(0.8))}
	var s sampler
	_, ps := mustDistribution(t, &s, logp, GenOptions{Temperature: 0.5})
	// p^(1/T) normalised: 0.04/(0.04+0.64), 0.64/0.68, sorted descending.
	if math.Abs(ps[0]-0.64/0.68) > 1e-6 || math.Abs(ps[1]-0.04/0.68) > 1e-6 {
		t.Errorf("T=0.5 probabilities %v", ps)
	}
}

func TestSamplingFrequencies(t *testing.T) {
	probs := []float64{0.5, 0.3, 0.15, 0.05}
	logp := make([]float32, len(probs))
	for i, p := range probs {
		logp[i] = float32(math.Log(p))
	}
	const n = 40000
	counts := make([]int, len(probs))
	rng := rand.New(rand.NewPCG(42, 0))
	var s sampler
	for range n {
		counts[mustPick(t, &s, logp, GenOptions{Temperature: 1}, rng)]++
	}
	for v, p := range probs {
		f := float64(counts[v]) / n
		// 4 standard deviations of a binomial proportion.
		if tol := 4 * math.Sqrt(p*(1-p)/n); math.Abs(f-p) > tol {
			t.Errorf("token %d drawn with frequency %.4f, want %.4f ± %.4f", v, f, p, tol)
		}
	}
	// With top-k 2 only tokens 0 and 1 appear, in ratio 5:3.
	clear(counts)
	for range n {
		counts[mustPick(t, &s, logp, GenOptions{Temperature: 1, TopK: 2}, rng)]++
	}
	if counts[2]+counts[3] != 0 {
		t.Errorf("top-k 2 drew filtered tokens: %v", counts)
	}
	if f := float64(counts[0]) / n; math.Abs(f-0.625) > 4*math.Sqrt(0.625*0.375/n) {
		t.Errorf("top-k 2: p(0) = %.4f, want 0.625", f)
	}
}

func TestStepperAndRefeedAgree(t *testing.T) {
	m := newMarkov(3, 5)
	prompts := [][]int{{1, 2, 3}, {4}, {0, 0, 1}, {2}}
	for _, opt := range []GenOptions{
		{MaxNew: 12, StopToken: -1},
		{MaxNew: 12, Temperature: 1, StopToken: -1, Seed: 7},
		{MaxNew: 12, Temperature: 0.8, TopK: 3, TopP: 0.9, StopToken: 2, Seed: 9},
	} {
		viaStep, err := Generate(context.Background(), m, prompts, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !m.started {
			t.Fatal("the Stepper path was not used")
		}
		m.feeds = 0
		viaRefeed, err := Generate(context.Background(), onlyDist{m}, prompts, opt)
		if err != nil {
			t.Fatal(err)
		}
		if m.feeds == 0 {
			t.Fatal("the re-feed path was not used")
		}
		if !reflect.DeepEqual(viaStep, viaRefeed) {
			t.Errorf("%+v: stepper %v != re-feed %v", opt, viaStep, viaRefeed)
		}
		// Row 0 alone (same generator, seeded from (Seed, 0)) gives the
		// same tokens as in the batch: rows do not interact.
		alone, err := Generate(context.Background(), m, prompts[:1], opt)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(alone[0], viaStep[0]) {
			t.Errorf("%+v: row 0 alone %v != in batch %v", opt, alone[0], viaStep[0])
		}
	}
}

func TestGenerateStopToken(t *testing.T) {
	// Deterministic chain 0 -> 1 -> 2 -> 3 -> 0.
	m := &markov{}
	for prev := range 4 {
		row := make([]float64, 4)
		for v := range row {
			row[v] = 0.01
		}
		row[(prev+1)%4] = 0.97
		m.probs = append(m.probs, row)
	}
	out, err := Generate(context.Background(), m, [][]int{{0}, {2}}, GenOptions{MaxNew: 10, StopToken: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, [][]int{{1, 2, 3}, {3}}) {
		t.Errorf("got %v, want [[1 2 3] [3]]", out)
	}
	out, err = Generate(context.Background(), onlyDist{m}, [][]int{{0}, {2}}, GenOptions{MaxNew: 10, StopToken: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, [][]int{{1, 2, 3}, {3}}) {
		t.Errorf("re-feed: got %v, want [[1 2 3] [3]]", out)
	}
}

func TestGenerateContextLimit(t *testing.T) {
	m := newMarkov(4, 5)
	m.limit = 4
	// Prompt 3 + 5 new > 4: the limited model re-reads a sliding window.
	out, err := Generate(context.Background(), limited{m}, [][]int{{1, 2, 3}}, GenOptions{MaxNew: 5, StopToken: -1})
	if err != nil {
		t.Fatal(err)
	}
	m.limit = 0
	want, _ := Generate(context.Background(), m, [][]int{{1, 2, 3}}, GenOptions{MaxNew: 5, StopToken: -1})
	if !reflect.DeepEqual(out, want) {
		t.Errorf("windowed %v != unlimited %v (a Markov model ignores old context)", out, want)
	}
}

func TestGenerateErrors(t *testing.T) {
	m := newMarkov(5, 3)
	for _, tc := range []struct {
		m       Model
		prompts [][]int
		opt     GenOptions
		want    string
	}{
		{&bare{}, [][]int{{1}}, GenOptions{MaxNew: 1}, "model bare supports neither Stepper nor Distributioner"},
		{m, [][]int{{}}, GenOptions{MaxNew: 1}, "prompt 0 is empty"},
		{m, [][]int{{1}}, GenOptions{MaxNew: 1, Temperature: -1}, "temperature -1"},
		{m, [][]int{{1}}, GenOptions{MaxNew: 1, TopP: 1.5}, "top-p 1.5 outside [0, 1]"},
		{m, [][]int{{1}}, GenOptions{MaxNew: 1, TopK: -2}, "top-k -2 < 0"},
	} {
		_, err := Generate(context.Background(), tc.m, tc.prompts, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want it to contain %q", err, tc.want)
		}
	}
}

type bare struct{}

func (*bare) Config() Config                   { return nil }
func (*bare) Setup(context.Context, Env) error { return nil }
func (*bare) Params() *nn.ParamSet             { return nil }
func (*bare) Info() ModelInfo                  { return ModelInfo{Family: "bare"} }

// TestGenerateTinyTemperature is issue 9's review finding 4: the weights were
// exp(x/T − max/T), NaN for a subnormal T (−Inf − −Inf), and the sampler
// then fell through to the last token id: generate -temperature 1e-310
// printed "\377\377...". The weights must stay a distribution, concentrated
// on the most probable tokens.
func TestGenerateTinyTemperature(t *testing.T) {
	logp := []float32{-2, -0.5, -1, -3}
	ties := []float32{-1, -0.7, -5, -0.7}
	for _, temp := range []float64{1e-300, 1e-310, 5e-324} {
		var s sampler
		ids, ps := mustDistribution(t, &s, logp, GenOptions{Temperature: temp})
		if ids[0] != 1 || ps[0] != 1 || ps[1] != 0 || ps[2] != 0 || ps[3] != 0 {
			t.Errorf("T=%v: ids %v, probabilities %v, want all mass on token 1", temp, ids, ps)
		}
		ids, ps = mustDistribution(t, &s, ties, GenOptions{Temperature: temp, TopP: 0.9})
		if !reflect.DeepEqual(ids, []int{1, 3}) || !reflect.DeepEqual(ps, []float64{0.5, 0.5}) {
			t.Errorf("T=%v with a tie: ids %v, probabilities %v, want tokens 1 and 3 at 0.5", temp, ids, ps)
		}
	}
	m := newMarkov(5, 9)
	prompts := [][]int{{1}, {4, 2}}
	greedy, err := Generate(context.Background(), m, prompts, GenOptions{MaxNew: 30, StopToken: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, temp := range []float64{1e-310, 5e-324} {
		got, err := Generate(context.Background(), m, prompts, GenOptions{MaxNew: 30, Temperature: temp, StopToken: -1, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, greedy) {
			t.Errorf("T=%v: %v, want the greedy %v", temp, got, greedy)
		}
	}
}

// TestSamplerRefusesNonDistribution: log-probabilities a Decoder would
// refuse are an error of the sampler, never a token picked by default.
func TestSamplerRefusesNonDistribution(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	rng := rand.New(rand.NewPCG(1, 0))
	for _, logp := range [][]float32{{-1, nan, -2}, {-1, inf}, {-inf, -inf}} {
		var s sampler
		for _, opt := range []GenOptions{{Temperature: 1}, {Temperature: 1e-310, TopK: 1}, {Temperature: 0.7, TopP: 0.5}} {
			if tok, err := s.pick(logp, opt, rng); err == nil {
				t.Errorf("%v at %+v: picked %d, want an error", logp, opt, tok)
			}
		}
	}
}

// chain is a markov model whose likeliest successor of v is v+1 (mod V).
func chain(V int) *markov {
	m := &markov{}
	for prev := range V {
		row := make([]float64, V)
		for v := range row {
			row[v] = 0.1 / float64(V-1)
		}
		row[(prev+1)%V] = 0.9
		m.probs = append(m.probs, row)
	}
	return m
}

// TestGenerateUnboundedMax is issue 9's review finding 5: generate -max
// 9223372036854775807 failed with "decode: maximum length
// -9223372036854775805 < 1" (prompt + MaxNew − 1 overflowed). MaxNew up to
// math.MaxInt must generate until the stop token, on every path.
func TestGenerateUnboundedMax(t *testing.T) {
	for _, c := range []struct{ p, maxNew, want int }{
		{1, 10, 10}, {3, 10, 12}, {1, math.MaxInt, math.MaxInt}, {5, math.MaxInt - 3, math.MaxInt},
		{5, math.MaxInt - 4, math.MaxInt}, {5, math.MaxInt - 5, math.MaxInt - 1},
	} {
		if got := decodeLength(c.p, c.maxNew); got != c.want {
			t.Errorf("decodeLength(%d, %d) = %d, want %d", c.p, c.maxNew, got, c.want)
		}
	}
	short := chain(6)
	short.limit = 2
	for name, model := range map[string]Model{"stepper": chain(6), "re-feed": onlyDist{chain(6)}, "sliding window": limited{short}} {
		for _, maxNew := range []int{math.MaxInt, math.MaxInt - 1} {
			out, err := Generate(context.Background(), model, [][]int{{0}, {4, 5}}, GenOptions{MaxNew: maxNew, StopToken: 3})
			if err != nil {
				t.Fatalf("%s, MaxNew %d: %v", name, maxNew, err)
			}
			if want := [][]int{{1, 2, 3}, {0, 1, 2, 3}}; !reflect.DeepEqual(out, want) {
				t.Errorf("%s, MaxNew %d: %v, want %v", name, maxNew, out, want)
			}
		}
	}
}
