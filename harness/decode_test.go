package harness

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// stepperOnly hides the Distributioner of a markov model.
type stepperOnly struct{ *markov }

func (stepperOnly) NextLogProbs() {} // shadows markov.NextLogProbs with a non-Distributioner signature

// limitedStepper is a Stepper and ContextLimiter without a Distributioner.
type limitedStepper struct{ stepperOnly }

func (l limitedStepper) MaxContext() int { return l.limit }

// kvModel is a markov model whose Stepper is a switchable cache.
type kvModel struct {
	*markov
	on bool
}

func (k kvModel) KVCacheEnabled() bool { return k.on }

var (
	_ Stepper        = stepperOnly{}
	_ Distributioner = onlyDist{}
	_ ContextLimiter = limited{}
	_ KVCacher       = kvModel{}

	_ PositionDistributioner = (*atOnly)(nil)
)

func TestNewDecoderChoosesPath(t *testing.T) {
	m := newMarkov(1, 4)
	m.limit = 6
	for _, tc := range []struct {
		name   string
		m      Model
		maxLen int
		mode   DecodeMode
		want   DecodeMode // 0 (DecodeAuto): unsupported
		err    string
	}{
		{"stepper and distributioner", m, 10, DecodeAuto, DecodeCached, ""},
		{"distributioner only", onlyDist{m}, 10, DecodeAuto, DecodeRefeed, ""},
		{"context holds maxLen", limited{m}, 6, DecodeAuto, DecodeCached, ""},
		{"context too short: window", limited{m}, 7, DecodeAuto, DecodeRefeed, ""},
		{"context too short, no window", limitedStepper{stepperOnly{m}}, 7, DecodeAuto, 0, "7 tokens exceed its context of 6 and it cannot re-read a window"},
		{"stepper only", stepperOnly{m}, 10, DecodeAuto, DecodeCached, ""},
		{"cache on", kvModel{m, true}, 10, DecodeAuto, DecodeCached, ""},
		{"cache off", kvModel{m, false}, 10, DecodeAuto, DecodeRefeed, ""},
		{"cache off, cached asked", kvModel{m, false}, 10, DecodeCached, DecodeCached, ""},
		{"refeed asked", m, 10, DecodeRefeed, DecodeRefeed, ""},
		{"refeed without distributioner", stepperOnly{m}, 10, DecodeRefeed, 0, "model markov cannot re-feed (no Distributioner)"},
		{"cached without stepper", onlyDist{m}, 10, DecodeCached, 0, "model markov has no incremental decoding (no Stepper)"},
		{"cached beyond context", limited{m}, 7, DecodeCached, 0, "model markov: 7 tokens exceed its context of 6"},
		{"neither", &bare{}, 10, DecodeAuto, 0, "model bare supports neither Stepper nor Distributioner"},
	} {
		d, err := NewDecoder(tc.m, tc.maxLen, DecodeOptions{Mode: tc.mode})
		if tc.want == 0 {
			if err == nil || !errors.Is(err, ErrCannotDecode) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want ErrCannotDecode containing %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.Mode() != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.name, d.Mode(), tc.want)
		}
	}
	if _, err := NewDecoder(m, 0, DecodeOptions{}); err == nil || errors.Is(err, ErrCannotDecode) {
		t.Errorf("maxLen 0: err = %v, want a plain error", err)
	}
}

// widths records the inputs a Distributioner is given.
type widths struct {
	*markov
	inputs [][][]int
}

func (w *widths) NextLogProbs(ctx context.Context, in [][]int) ([][][]float32, error) {
	cp := make([][]int, len(in))
	for i, r := range in {
		cp[i] = append([]int(nil), r...)
	}
	w.inputs = append(w.inputs, cp)
	return w.markov.NextLogProbs(ctx, in)
}

type limitedWidths struct{ *widths }

func (l limitedWidths) MaxContext() int { return l.limit }

// TestRefeedWindowRule: rows are read whole, right-padded with RefeedPad to
// refeedWidth, never wider than maxLen; a ContextLimiter gets exactly its
// last MaxContext tokens.
func TestRefeedWindowRule(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		limit, maxLen int
	}{{0, 40}, {0, 5}, {20, 40}} {
		w := &widths{markov: newMarkov(2, 5)}
		w.limit = tc.limit
		var m Model = w
		if tc.limit > 0 {
			m = limitedWidths{w}
		}
		d, err := NewDecoder(m, tc.maxLen, DecodeOptions{Mode: DecodeRefeed})
		if err != nil {
			t.Fatal(err)
		}
		seq := []int{1, 2, 3}
		if _, err := d.Start(ctx, [][]int{seq}); err != nil {
			t.Fatal(err)
		}
		for len(seq) < tc.maxLen {
			tok := len(seq) % 5
			seq = append(seq, tok)
			if _, err := d.Step(ctx, []int{tok}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Step(ctx, []int{1}); err == nil {
			t.Errorf("limit %d: Step past maxLen %d succeeded", tc.limit, tc.maxLen)
		}
		for k, in := range w.inputs {
			n := 3 + k
			start, widest := 0, tc.maxLen
			if tc.limit > 0 {
				widest = min(widest, tc.limit)
				start = max(0, n-tc.limit)
			}
			want := make([]int, min(refeedWidth(n), widest))
			copy(want, seq[start:n])
			if !reflect.DeepEqual(in[0], want) {
				t.Fatalf("limit %d maxLen %d, %d tokens: fed %v, want %v", tc.limit, tc.maxLen, n, in[0], want)
			}
		}
	}
}

// atOnly is a PositionDistributioner whose NextLogProbs must not be called.
type atOnly struct {
	onlyDist
	calls int
}

func (a *atOnly) NextLogProbs(context.Context, [][]int) ([][][]float32, error) {
	panic("NextLogProbs called although NextLogProbsAt exists")
}

func (a *atOnly) NextLogProbsAt(_ context.Context, in [][]int, at int) ([][]float32, error) {
	a.calls++
	out := make([][]float32, len(in))
	for i, row := range in {
		out[i] = a.dist(row[at])
	}
	return out, nil
}

// TestRefeedUsesPositionDistributioner: the re-feeding path asks a
// PositionDistributioner for the one position it keeps, with the same
// result as the NextLogProbs fallback.
func TestRefeedUsesPositionDistributioner(t *testing.T) {
	m := newMarkov(6, 5)
	prompts := [][]int{{1, 2}, {3, 4}}
	opt := GenOptions{MaxNew: 30, Temperature: 1, StopToken: -1, Seed: 2}
	want, err := Generate(context.Background(), onlyDist{m}, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	a := &atOnly{onlyDist: onlyDist{m}}
	got, err := Generate(context.Background(), a, prompts, opt)
	if err != nil {
		t.Fatal(err)
	}
	if a.calls != 30 || !reflect.DeepEqual(got, want) {
		t.Errorf("%d NextLogProbsAt calls, tokens %v; want 30 calls and %v", a.calls, got, want)
	}
}

func TestRefeedWidth(t *testing.T) {
	for n, want := range map[int]int{1: 16, 16: 16, 17: 32, 100: 112, 256: 256, 257: 288, 300: 320, 1000: 1024} {
		if got := refeedWidth(n); got != want {
			t.Errorf("refeedWidth(%d) = %d, want %d", n, got, want)
		}
	}
	distinct := map[int]bool{}
	for n := 1; n <= 1024; n++ {
		w := refeedWidth(n)
		if w < n || float64(w-n) >= math.Max(16, float64(n)/8) {
			t.Errorf("refeedWidth(%d) = %d pads too much", n, w)
		}
		distinct[w] = true
	}
	if len(distinct) != 16+8*2 {
		t.Errorf("%d distinct widths up to 1024", len(distinct))
	}
}

// poisoned is a Stepper whose distribution of one row becomes bad at one
// step (0: the distribution after the prompt).
type poisoned struct {
	stepperOnly
	row, at int
	bad     func([]float32)
	step    int
}

func (p *poisoned) Start(ctx context.Context, prompts [][]int) (State, [][]float32, error) {
	p.step = 0
	st, out, err := p.markov.Start(ctx, prompts)
	return st, p.spoil(out), err
}

func (p *poisoned) Step(ctx context.Context, s State, tokens []int) ([][]float32, error) {
	p.step++
	out, err := p.markov.Step(ctx, s, tokens)
	return p.spoil(out), err
}

func (p *poisoned) spoil(out [][]float32) [][]float32 {
	if p.step == p.at && p.row < len(out) {
		p.bad(out[p.row])
	}
	return out
}

func TestDecoderRejectsNonDistributions(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		bad  func([]float32)
		want string
	}{
		{func(r []float32) { r[2] = nan }, "NaN at token 2"},
		{func(r []float32) {
			for v := range r {
				r[v] = nan
			}
		}, "NaN at token 0"},
		{func(r []float32) { r[3] = inf }, "+Inf at token 3"},
		{func(r []float32) {
			for v := range r {
				r[v] = -inf
			}
		}, "no finite entry among 5 tokens"},
	} {
		for _, at := range []int{0, 2} {
			m := &poisoned{stepperOnly: stepperOnly{newMarkov(3, 5)}, row: 1, at: at, bad: tc.bad}
			d, err := NewDecoder(m, 10, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = d.Start(context.Background(), [][]int{{1}, {2}})
			for s := 0; err == nil && s < 5; s++ {
				_, err = d.Step(context.Background(), []int{0, 0})
			}
			var de *DistributionError
			if !errors.As(err, &de) || de.Step != at || de.Row != 1 || de.Problem != tc.want {
				t.Errorf("at step %d: err = %v, want step %d, row 1: %s", at, err, at, tc.want)
			}
		}
	}
	// -Inf entries beside finite ones are impossible tokens, not errors.
	m := &poisoned{stepperOnly: stepperOnly{newMarkov(3, 5)}, row: 0, bad: func(r []float32) { r[0] = -inf }}
	d, _ := NewDecoder(m, 4, DecodeOptions{})
	if _, err := d.Start(context.Background(), [][]int{{1}}); err != nil {
		t.Errorf("-Inf entry: %v", err)
	}
}

// TestGenerateRejectsNonFiniteDistributions is issue 9 case 9 in the
// harness: greedy and sampled generation from NaN distributions fail,
// naming the prompt and the token, instead of emitting token 0.
func TestGenerateRejectsNonFiniteDistributions(t *testing.T) {
	allNaN := func(r []float32) {
		for v := range r {
			r[v] = float32(math.NaN())
		}
	}
	for _, temp := range []float64{0, 1} {
		// Prompts of lengths 1, 2, 1: prompt 2 is row 1 of the first group.
		m := &poisoned{stepperOnly: stepperOnly{newMarkov(4, 5)}, row: 1, at: 2, bad: allNaN}
		out, err := Generate(context.Background(), m, [][]int{{1}, {2, 3}, {4}}, GenOptions{MaxNew: 6, Temperature: temp, StopToken: -1})
		want := "generate: prompt 2, new token 3: next-token log-probabilities are not a distribution: NaN at token 0"
		if err == nil || err.Error() != want || out != nil {
			t.Errorf("temperature %v: out %v, err = %v, want %q", temp, out, err, want)
		}
	}
}

func TestDecoderMisuse(t *testing.T) {
	ctx := context.Background()
	d, err := NewDecoder(newMarkov(5, 4), 3, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Step(ctx, []int{1}); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("step before start: %v", err)
	}
	for _, prompts := range [][][]int{nil, {{1}, {}}, {{1}, {1, 2}}, {{1, 2, 3, 0}}} {
		if _, err := d.Start(ctx, prompts); err == nil {
			t.Errorf("Start(%v) succeeded", prompts)
		}
	}
	if _, err := d.Start(ctx, [][]int{{1, 2}, {3, 0}}); err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 {
		t.Errorf("Len = %d, want 2", d.Len())
	}
	if _, err := d.Step(ctx, []int{1}); err == nil || !strings.Contains(err.Error(), "1 tokens for 2 rows") {
		t.Errorf("short step: %v", err)
	}
	if _, err := d.Step(ctx, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Step(ctx, []int{1, 2}); err == nil || !strings.Contains(err.Error(), "maximum length 3") {
		t.Errorf("step past maxLen: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Start(cancelled, [][]int{{1}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled start: %v", err)
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		xs   []float32
		want int
	}{
		{[]float32{1, 3, 3, nan}, 1},
		{[]float32{nan, -1}, 1},
		{[]float32{nan, nan}, 0},
		{[]float32{float32(math.Inf(-1)), -5, -5}, 1},
	} {
		if got := Argmax(tc.xs); got != tc.want {
			t.Errorf("Argmax(%v) = %d, want %d", tc.xs, got, tc.want)
		}
	}
}
