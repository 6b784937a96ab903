package synthetic

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
)

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	c.Symbols, c.Lengths, c.Distances, c.Concentration, c.UsableAccuracy, c.EvalRows = 0, []int{4, 4}, []int{0}, -1, 1.5, 0
	errs := c.Validate()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"symbols", "lengths: 4 listed twice", "distances: 0 outside", "concentration", "usable_accuracy", "eval_rows"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors do not mention %q:\n%s", want, all)
		}
	}
	if len(errs) != 6 {
		t.Errorf("got %d errors, want 6:\n%s", len(errs), all)
	}
}

// TestConfigRejectsNonFinite sets every float field of Config in turn to
// NaN, +Inf and -Inf: each must be exactly one error naming the field.
func TestConfigRejectsNonFinite(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	floats := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() != reflect.Float64 {
			continue
		}
		floats++
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			c := DefaultConfig()
			reflect.ValueOf(&c).Elem().Field(i).SetFloat(x)
			errs := c.Validate()
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), name+":") {
				t.Errorf("%s = %v: errors %v, want one about %s", name, x, errs, name)
			}
		}
	}
	if floats < 3 {
		t.Errorf("found %d float fields, want at least concentration, usable_accuracy and stickiness", floats)
	}
}

// TestInfoNeeds: every variant declares what its evaluation calls, and
// free-running rollouts add decoding.
func TestInfoNeeds(t *testing.T) {
	base := []harness.Capability{harness.NeedScorer, harness.NeedDistributions}
	decoding := append(slices.Clone(base), harness.NeedDecoding)
	for _, v := range Variants() {
		fields, _ := variantFields(v)
		for _, fr := range []bool{true, false} {
			if !fr && !slices.Contains(fields, "free_running") {
				continue // the default (true) does not apply to it
			}
			tk := New().(*Task)
			tk.cfg.FreeRunning = fr
			if err := tk.Prepare(context.Background(), harness.TaskEnv{Variant: v, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			want := base
			if fr && v != "needle" && v != "dyck" {
				want = decoding
			}
			if got := tk.Info().Needs; !slices.Equal(got, want) {
				t.Errorf("%s free_running=%v: needs %v, want %v", v, fr, got, want)
			}
		}
	}
}

func TestPrepareChecksVariant(t *testing.T) {
	for _, c := range []struct {
		variant string
		edit    func(*Config)
		want    string
	}{
		{"", nil, "no variant"},
		{"kopy", nil, `unknown variant "kopy"`},
		{"copy", func(c *Config) { c.Distances = []int{4} }, "distances: does not apply to variant copy"},
		{"needle", func(c *Config) { c.Lengths = []int{4} }, "lengths: does not apply to variant needle"},
		{"dyck", func(c *Config) { c.Symbols = 3 }, "symbols: does not apply"},
		{"dyck", func(c *Config) { c.Lengths = []int{8, 9} }, "even length"},
		{"oracle", func(c *Config) { c.Lengths = []int{8, 16} }, "single sequence length"},
		{"assoc-recall", func(c *Config) { c.Pairs = []int{4, 40} }, "keys: 32 keys are fewer than the 40 pairs"},
		{"assoc-recall", func(c *Config) { c.Pairs = []int{4, 8}; c.Queries = 5 }, "queries: 5 queries exceed"},
		{"selective-copy", func(c *Config) { c.Lengths = []int{3} }, "marked: 4 symbols do not fit"},
	} {
		tk := New().(*Task)
		if c.edit != nil {
			c.edit(&tk.cfg)
		}
		err := tk.Prepare(context.Background(), harness.TaskEnv{Variant: c.variant, Seed: 1})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.variant, err, c.want)
		}
	}
	tk := New().(*Task)
	if err := tk.Prepare(context.Background(), harness.TaskEnv{Variant: "copy", DataFile: "x.txt"}); err == nil {
		t.Error("a data file was accepted")
	}
}

func TestDecodeConfigIsStrict(t *testing.T) {
	tk := New().(*Task)
	if err := harness.DecodeConfig("t.yaml", []byte("distances: [4, 16]\neval_rows: 10\n"), tk.Config()); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	if !slices.Equal(tk.cfg.Distances, []int{4, 16}) || tk.cfg.EvalRows != 10 || tk.cfg.Symbols != 8 {
		t.Errorf("decoded %+v", tk.cfg)
	}
	if err := harness.DecodeConfig("t.yaml", []byte("distance: [4]\n"), New().Config()); err == nil {
		t.Error("misspelt field accepted")
	}
}

func TestGenerators(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 50 {
		e := genCopy(rng, 6, 7)
		if len(e.seq) != 16 || e.seq[0] != BOS || e.seq[8] != Sep || !slices.Equal(e.seq[1:8], e.seq[9:]) {
			t.Fatalf("copy: %v", e.seq)
		}
		for k := range e.targets() {
			if e.answer[k] != (k >= 8) || e.loss[k] != e.answer[k] {
				t.Fatalf("copy: target %d answer %v loss %v", k, e.answer[k], e.loss[k])
			}
		}

		e = genSelectiveCopy(rng, 6, 12, 4)
		var data []int
		for _, x := range e.seq[1:13] {
			if x != Noise {
				data = append(data, x)
			}
		}
		if len(e.seq) != 18 || e.seq[13] != Sep || !slices.Equal(data, e.seq[14:]) {
			t.Fatalf("selective-copy: %v", e.seq)
		}
		for k := range e.targets() {
			if e.answer[k] != (k >= 13) {
				t.Fatalf("selective-copy: target %d answer %v", k, e.answer[k])
			}
			if e.answer[k] && e.seq[k+1-e.span[k]] != e.seq[k+1] {
				t.Fatalf("selective-copy: span %d of target %d does not point at its source", e.span[k], k)
			}
		}

		const K, S, P = 10, 5, 6
		e = genAssocRecall(rng, K, S, P, 4)
		if len(e.seq) != 2*P+2*4+2 || e.seq[2*P+1] != Sep {
			t.Fatalf("assoc-recall: %v", e.seq)
		}
		pairs := map[int]int{}
		for i := 1; i < 2*P; i += 2 {
			k, v := e.seq[i], e.seq[i+1]
			if k < FirstSymbol || k >= FirstSymbol+K || v < FirstSymbol+K || v >= FirstSymbol+K+S {
				t.Fatalf("assoc-recall: pair (%d, %d) outside its alphabets", k, v)
			}
			if _, dup := pairs[k]; dup {
				t.Fatalf("assoc-recall: key %d twice", k)
			}
			pairs[k] = v
		}
		answers := 0
		for k := range e.targets() {
			if e.answer[k] {
				answers++
				if e.seq[k+1] != pairs[e.seq[k]] || e.seq[k+1-e.span[k]] != e.seq[k+1] {
					t.Fatalf("assoc-recall: query %d answered %d, want %d", e.seq[k], e.seq[k+1], pairs[e.seq[k]])
				}
			}
		}
		if answers != 4 {
			t.Fatalf("assoc-recall: %d answers, want 4", answers)
		}

		const F = 4
		d := 1 + rng.IntN(20)
		e = genNeedle(rng, F, S, d, 5)
		if len(e.seq) != 5+d+3 {
			t.Fatalf("needle: %d tokens, want %d", len(e.seq), 5+d+3)
		}
		q := slices.Index(e.seq, Query)
		var values []int
		for i, x := range e.seq {
			if x >= FirstSymbol+F {
				values = append(values, i)
			}
		}
		if q < 0 || len(values) != 2 || q-values[0] != d || values[1] != q+1 || e.seq[values[0]] != e.seq[q+1] {
			t.Fatalf("needle (d=%d): %v", d, e.seq)
		}
		for k := range e.targets() {
			if e.answer[k] != (k == q) || e.loss[k] != (k == q) {
				t.Fatalf("needle: target %d answer %v loss %v", k, e.answer[k], e.loss[k])
			}
		}

		const types, depth = 3, 4
		e = genDyck(rng, types, 20, depth)
		var stack []int
		for k, x := range e.seq[1:] {
			if !e.loss[k] {
				t.Fatalf("dyck: target %d not in the loss", k)
			}
			if x < FirstSymbol+types {
				stack = append(stack, x)
				if len(stack) > depth {
					t.Fatalf("dyck: depth %d > %d in %v", len(stack), depth, e.seq)
				}
				if e.answer[k] {
					t.Fatalf("dyck: opener %d marked as an answer", k)
				}
				continue
			}
			if len(stack) == 0 || stack[len(stack)-1]+types != x || !e.answer[k] || e.seq[k+1-e.span[k]]+types != x {
				t.Fatalf("dyck: closer %d at %d does not match in %v", x, k, e.seq)
			}
			stack = stack[:len(stack)-1]
		}
		if len(stack) != 0 {
			t.Fatalf("dyck: unbalanced %v", e.seq)
		}
	}
}

func TestTrainBatch(t *testing.T) {
	type setup struct {
		variant string
		edit    func(*Config)
	}
	var setups []setup
	for _, v := range Variants() {
		setups = append(setups, setup{v, nil})
	}
	setups = append(setups,
		setup{"needle", func(c *Config) { c.Distractors, c.Distances = 3, []int{2, 9, 30} }},
		setup{"copy-memory", func(c *Config) { c.Items, c.Delays = 4, []int{0, 3, 17} }},
		setup{"oracle", func(c *Config) { c.Stickiness, c.Blocks = 0.9, 4 }},
	)
	for _, su := range setups {
		variant := su.variant
		tk := prepared(t, variant, su.edit)
		info := tk.Info()
		if info.Name != "synthetic/"+variant || info.Kind != "synthetic" || info.Vocab != tk.vocab {
			t.Errorf("%s: info %+v", variant, info)
		}
		widths := map[int]bool{}
		for i := range 30 {
			b := tk.TrainBatch(rand.New(rand.NewPCG(uint64(i), 3)), 5)
			if len(b.Inputs) != 5 {
				t.Fatalf("%s: %d rows", variant, len(b.Inputs))
			}
			w := len(b.Inputs[0])
			widths[w] = true
			if w > info.SeqLen {
				t.Fatalf("%s: width %d > SeqLen %d", variant, w, info.SeqLen)
			}
			for r := range b.Inputs {
				if len(b.Inputs[r]) != w || len(b.Targets[r]) != w {
					t.Fatalf("%s: ragged batch", variant)
				}
				for k := range w {
					if x := b.Inputs[r][k]; x < 0 || x >= tk.vocab {
						t.Fatalf("%s: input %d outside the vocabulary", variant, x)
					}
					if y := b.Targets[r][k]; y >= tk.vocab || y == Pad || y == BOS {
						t.Fatalf("%s: target %d", variant, y)
					}
					if k+1 < w && b.Targets[r][k] >= 0 && b.Inputs[r][k+1] != Pad && b.Inputs[r][k+1] != b.Targets[r][k] {
						t.Fatalf("%s: target %d is not the next input", variant, k)
					}
				}
			}
			if b.Tokens() == 0 {
				t.Fatalf("%s: a batch without targets", variant)
			}
		}
		for w := range widths {
			if !slices.ContainsFunc(tk.sweep, func(s int) bool { return tk.width(s) == w }) {
				t.Errorf("%s: batch width %d is no sweep value's width (sweep %v)", variant, w, tk.sweep)
			}
		}
		a := tk.TrainBatch(rand.New(rand.NewPCG(9, 9)), 4)
		b := tk.TrainBatch(rand.New(rand.NewPCG(9, 9)), 4)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: TrainBatch is not deterministic", variant)
		}
	}
}

func TestTrainBatchMixesTheSweep(t *testing.T) {
	tk := prepared(t, "copy", func(c *Config) { c.Lengths = []int{3, 5, 9} })
	b := tk.TrainBatch(rand.New(rand.NewPCG(1, 2)), 60)
	if w := len(b.Inputs[0]); w != tk.width(9) {
		t.Errorf("batch width %d, want the longest row's %d", w, tk.width(9))
	}
	answers := map[int]int{}
	for _, row := range b.Targets {
		n := 0
		for _, tg := range row {
			if tg >= 0 {
				n++
			}
		}
		answers[n]++
	}
	if len(answers) != 3 || answers[3] == 0 || answers[5] == 0 || answers[9] == 0 {
		t.Errorf("answers per row %v, want rows of every length 3, 5 and 9", answers)
	}
}

func TestPrepareIsDeterministic(t *testing.T) {
	a, b := prepared(t, "oracle", nil), prepared(t, "oracle", nil)
	if !reflect.DeepEqual(a.hmm, b.hmm) || !reflect.DeepEqual(a.test, b.test) || !reflect.DeepEqual(a.valid, b.valid) {
		t.Error("two Prepares with one seed differ")
	}
	c := New().(*Task)
	if err := c.Prepare(context.Background(), harness.TaskEnv{Variant: "oracle", Seed: 43}); err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a.hmm, c.hmm) {
		t.Error("seeds 42 and 43 drew the same HMM")
	}
}

func TestValidLossOfUniformModel(t *testing.T) {
	tk := prepared(t, "copy", nil)
	m := &scorer{baseModel{"uniform", tk.vocab}}
	got, err := tk.ValidLoss(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Log(float64(tk.vocab)); math.Abs(got-want) > 1e-12 {
		t.Errorf("valid loss %v, want log V = %v", got, want)
	}
}

type scorer struct{ baseModel }

func (s *scorer) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	out := make([][]float64, len(b.Inputs))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
		for k, tg := range row {
			if tg >= 0 {
				out[i][k] = -math.Log(float64(s.vocab))
			}
		}
	}
	return out, nil
}

// TestEmptySweepsAreDefaults: a stored configuration writes unset sweep
// lists as [] (results.json's manifest), and reloading it for reproduce
// must not count them as set for a variant that does not read them.
func TestEmptySweepsAreDefaults(t *testing.T) {
	for _, v := range Variants() {
		c := DefaultConfig()
		c.Lengths, c.Distances, c.Pairs = []int{}, []int{}, []int{}
		if _, err := c.resolve(v); err != nil {
			t.Errorf("%s with empty sweep lists: %v", v, err)
		}
	}
}
