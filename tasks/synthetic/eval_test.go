package synthetic

import (
	"context"
	"math"
	"testing"

	"arbench/harness"
)

func prepared(t *testing.T, variant string, edit func(c *Config)) *Task {
	t.Helper()
	tk := New().(*Task)
	if edit != nil {
		edit(&tk.cfg)
	}
	if err := tk.Prepare(context.Background(), harness.TaskEnv{Variant: variant, Seed: 42}); err != nil {
		t.Fatalf("prepare %s: %v", variant, err)
	}
	return tk
}

func metric(t *testing.T, ev *harness.Evaluation, name string) float64 {
	t.Helper()
	for _, m := range ev.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func series(t *testing.T, ev *harness.Evaluation, name, label string) harness.Series {
	t.Helper()
	for _, s := range ev.Series {
		if s.Name == name && s.Label == label {
			return s
		}
	}
	t.Fatalf("no series %s/%s", name, label)
	return harness.Series{}
}

// copyModels returns a rule wrapped as a plain Distributioner, as a
// Stepper, and as a ContextLimiter whose context is shorter than the
// free-running sequence (sliding-window re-feeding) — all three paths of
// rollout.
func copyModels(vocab int, rule func([]int, int) []float32, limit int) map[string]harness.Model {
	return map[string]harness.Model{
		"distributioner": &rowModel{baseModel: baseModel{"rows", vocab}, next: rule},
		"stepper":        &steppedModel{rowModel: &rowModel{baseModel: baseModel{"stepped", vocab}, next: rule}},
		"limited":        limitedRowModel{&rowModel{baseModel: baseModel{"limited", vocab}, next: rule, limit: limit}},
	}
}

func TestPerfectCopyHasZeroErrorEverywhere(t *testing.T) {
	tk := prepared(t, "copy", func(c *Config) { c.Lengths = []int{5, 12}; c.EvalRows = 40; c.EvalBatch = 16 })
	for name, m := range copyModels(tk.vocab, perfectCopy(tk.vocab), 0) {
		if name == "limited" {
			continue // see TestRolloutPathsAgree
		}
		ev, err := tk.Evaluate(context.Background(), m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range []string{"accuracy", "sequence_accuracy", "accuracy_free_running", "accuracy_at_max_length"} {
			if v := metric(t, ev, n); v != 1 {
				t.Errorf("%s: %s = %v, want 1", name, n, v)
			}
		}
		if v := metric(t, ev, "usable_length"); v != 12 {
			t.Errorf("%s: usable_length = %v, want 12", name, v)
		}
		for _, label := range []string{"teacher_forced", "free_running"} {
			s := series(t, ev, "token_error_vs_position", label)
			if len(s.X) != 12 {
				t.Errorf("%s %s: %d positions, want 12", name, label, len(s.X))
			}
			for k, y := range s.Y {
				if y != 0 || s.N[k] != 40 {
					t.Errorf("%s %s: position %v error %v over %d rows, want 0 over 40", name, label, s.X[k], y, s.N[k])
				}
			}
		}
		for _, y := range series(t, ev, "first_error_position", "free_running").Y {
			if y != 0 {
				t.Errorf("%s: first-error histogram %v, want all 0", name, y)
			}
		}
	}
}

func TestFreeRunningFeedsBackOwnMistakes(t *testing.T) {
	const L = 10
	tk := prepared(t, "copy", func(c *Config) { c.Lengths = []int{L}; c.EvalRows = 30; c.EvalBatch = 7 })
	rule := confusedCopy(tk.vocab, tk.cfg.Symbols)
	results := map[string]*harness.Evaluation{}
	for name, m := range copyModels(tk.vocab, rule, 0) {
		if name == "limited" {
			continue // see TestRolloutPathsAgree
		}
		ev, err := tk.Evaluate(context.Background(), m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		results[name] = ev
		tf := series(t, ev, "token_error_vs_position", "teacher_forced")
		fr := series(t, ev, "token_error_vs_position", "free_running")
		for k := range tf.Y {
			j := int(tf.X[k])
			wantTF := 0.0
			if j == 3 {
				wantTF = 1
			}
			if tf.Y[k] != wantTF {
				t.Errorf("%s: teacher-forced error at %d = %v, want %v", name, j, tf.Y[k], wantTF)
			}
			if j <= 3 && fr.Y[k] != wantTF {
				t.Errorf("%s: free-running error at %d = %v, want %v (same prefix as teacher-forced)", name, j, fr.Y[k], wantTF)
			}
		}
		// After its mistake the model answers FirstSymbol, right only where
		// the true symbol happens to be FirstSymbol.
		if fr.Y[3] < 0.6 {
			t.Errorf("%s: free-running error at answer 4 = %v, want most rows wrong", name, fr.Y[3])
		}
		first := series(t, ev, "first_error_position", "free_running")
		if first.Y[2] != 1 {
			t.Errorf("%s: fraction of rows first wrong at answer 3 = %v, want 1", name, first.Y[2])
		}
		if a, b := metric(t, ev, "error_at_last_position_free_running"), metric(t, ev, "error_at_last_position_teacher_forced"); a <= b {
			t.Errorf("%s: free-running error at the last answer %v not above teacher-forced %v", name, a, b)
		}
	}
	// Both generation paths agree exactly.
	ref := series(t, results["distributioner"], "token_error_vs_position", "free_running")
	for _, name := range []string{"stepper"} {
		got := series(t, results[name], "token_error_vs_position", "free_running")
		for k := range ref.Y {
			if got.Y[k] != ref.Y[k] {
				t.Errorf("%s path: free-running error at %v = %v, distributioner path %v", name, ref.X[k], got.Y[k], ref.Y[k])
			}
		}
	}
}

func oracleTask(t *testing.T) *Task {
	return prepared(t, "oracle", func(c *Config) {
		c.Lengths = []int{20}
		c.States, c.Symbols, c.Concentration = 4, 5, 0.3
		c.EvalRows, c.EvalBatch = 50, 16
	})
}

func TestOracleModelHasZeroKLAndNoExposureGap(t *testing.T) {
	tk := oracleTask(t)
	rule := oracleRule(tk.hmm, tk.vocab)
	models := map[string]harness.Model{
		"distributioner": &rowModel{baseModel: baseModel{"oracle", tk.vocab}, next: rule},
		"stepper":        &steppedModel{rowModel: &rowModel{baseModel: baseModel{"oracle-stepped", tk.vocab}, next: rule}},
	}
	for name, m := range models {
		ev, err := tk.Evaluate(context.Background(), m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range []string{"kl_per_token", "kl_per_token_free_running", "accumulated_kl_teacher_forced",
			"accumulated_kl_free_running", "exposure_excess_kl", "special_token_mass_free_running"} {
			if v := metric(t, ev, n); math.Abs(v) > 1e-5 {
				t.Errorf("%s: %s = %v, want 0", name, n, v)
			}
		}
		if a, b := metric(t, ev, "nats_per_token"), metric(t, ev, "oracle_nats_per_token"); math.Abs(a-b) > 1e-5 {
			t.Errorf("%s: model nats %v differ from the oracle's %v", name, a, b)
		}
		// Same uniforms, same distributions: free-running samples the test
		// sequences themselves, so both curves coincide.
		for _, sn := range []string{"kl_vs_position", "accumulated_kl_vs_length", "oracle_nll_vs_position"} {
			tf, fr := series(t, ev, sn, "teacher_forced"), series(t, ev, sn, "free_running")
			if len(tf.Y) != 20 || len(fr.Y) != 20 {
				t.Fatalf("%s: %s has %d/%d points, want 20", name, sn, len(tf.Y), len(fr.Y))
			}
			for k := range tf.Y {
				if math.Abs(tf.Y[k]-fr.Y[k]) > 1e-5 {
					t.Errorf("%s: %s at %v: teacher-forced %v, free-running %v", name, sn, tf.X[k], tf.Y[k], fr.Y[k])
				}
			}
		}
		// The model's oracle NLL equals the oracle's entropy.
		h := series(t, ev, "oracle_nll_vs_position", "oracle_entropy")
		tf := series(t, ev, "oracle_nll_vs_position", "teacher_forced")
		for k := range h.Y {
			if math.Abs(h.Y[k]-tf.Y[k]) > 1e-5 {
				t.Errorf("%s: oracle NLL at %v = %v, oracle entropy %v", name, h.X[k], tf.Y[k], h.Y[k])
			}
		}
	}
}

func TestOracleKLOfUniformModel(t *testing.T) {
	tk := oracleTask(t)
	K := tk.cfg.Symbols
	m := &rowModel{baseModel: baseModel{"uniform", tk.vocab}, next: uniformSymbols(tk.vocab, K)}
	ev, err := tk.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	// KL(p ‖ uniform over K) = log K − H(p) at every prefix.
	kl := series(t, ev, "kl_vs_position", "teacher_forced")
	h := series(t, ev, "oracle_nll_vs_position", "oracle_entropy")
	for k := range kl.Y {
		if want := math.Log(float64(K)) - h.Y[k]; math.Abs(kl.Y[k]-want) > 1e-5 {
			t.Errorf("KL at %v = %v, want log K − H = %v", kl.X[k], kl.Y[k], want)
		}
	}
	acc := series(t, ev, "accumulated_kl_vs_length", "teacher_forced")
	var s float64
	for k, y := range kl.Y {
		s += y
		if math.Abs(acc.Y[k]-s) > 1e-9 {
			t.Errorf("accumulated KL at %v = %v, want running sum %v", acc.X[k], acc.Y[k], s)
		}
	}
	if v := metric(t, ev, "kl_per_token"); !(v > 0.05) {
		t.Errorf("kl_per_token = %v, want clearly positive", v)
	}
	excess := metric(t, ev, "exposure_excess_kl")
	if got, want := excess, metric(t, ev, "accumulated_kl_free_running")-metric(t, ev, "accumulated_kl_teacher_forced"); math.Abs(got-want) > 1e-9 {
		t.Errorf("exposure_excess_kl = %v, want free-running − teacher-forced = %v", got, want)
	}
	if got, want := metric(t, ev, "exposure_excess_fraction"), excess/metric(t, ev, "accumulated_kl_teacher_forced"); math.Abs(got-want) > 1e-9 {
		t.Errorf("exposure_excess_fraction = %v, want %v", got, want)
	}
}

func TestNeedleAndAssocRecallAccuracyPerSweep(t *testing.T) {
	// A model that answers needle queries correctly only when the needle is
	// at most 8 tokens back: accuracy is 1 up to 8 and chance beyond.
	tk := prepared(t, "needle", func(c *Config) { c.Distances = []int{2, 8, 32}; c.EvalRows = 60 })
	valueLo := FirstSymbol + tk.cfg.Fillers
	rule := func(row []int, t int) []float32 {
		if row[t] != Query {
			return uniformLogp(tk.vocab)
		}
		for k := t - 1; k >= max(0, t-8); k-- {
			if row[k] >= valueLo {
				return pointMass(tk.vocab, row[k])
			}
		}
		return pointMass(tk.vocab, Pad) // never right
	}
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"short", tk.vocab}, next: rule})
	if err != nil {
		t.Fatal(err)
	}
	s := series(t, ev, "accuracy_vs_distance", "")
	want := []float64{1, 1, 0}
	for k := range want {
		if s.X[k] != float64(tk.sweep[k]) || s.Y[k] != want[k] || s.N[k] != 60 {
			t.Errorf("point %d: (%v, %v, n=%d), want (%d, %v, n=60)", k, s.X[k], s.Y[k], s.N[k], tk.sweep[k], want[k])
		}
	}
	if v := metric(t, ev, "usable_distance"); v != 8 {
		t.Errorf("usable_distance = %v, want 8", v)
	}
	if v := metric(t, ev, "accuracy_at_max_distance"); v != 0 {
		t.Errorf("accuracy_at_max_distance = %v, want 0", v)
	}
}

func TestDyckCloserAccuracy(t *testing.T) {
	tk := prepared(t, "dyck", func(c *Config) { c.Lengths = []int{24}; c.Types = 3; c.EvalRows = 20 })
	k := tk.cfg.Types
	// A stack machine ranks the correct closer first; a model that always
	// prefers closer 0 is right only when closer 0 is due.
	stack := func(row []int, t int) []float32 {
		var st []int
		for _, x := range row[1 : t+1] {
			if x < FirstSymbol+k {
				st = append(st, x)
			} else {
				st = st[:len(st)-1]
			}
		}
		if len(st) == 0 {
			return pointMass(tk.vocab, FirstSymbol)
		}
		return pointMass(tk.vocab, st[len(st)-1]+k)
	}
	ev, err := tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"stack", tk.vocab}, next: stack})
	if err != nil {
		t.Fatal(err)
	}
	if v := metric(t, ev, "accuracy"); v != 1 {
		t.Errorf("stack machine accuracy = %v, want 1", v)
	}
	for _, y := range series(t, ev, "accuracy_vs_distance", "").Y {
		if y != 1 {
			t.Errorf("stack machine accuracy per distance %v, want 1", y)
		}
	}
	closer0 := func([]int, int) []float32 { return pointMass(tk.vocab, FirstSymbol+k) }
	ev, err = tk.Evaluate(context.Background(), &rowModel{baseModel: baseModel{"closer0", tk.vocab}, next: closer0})
	if err != nil {
		t.Fatal(err)
	}
	var due0, closers int
	for _, e := range tk.test[0].exs {
		for i, a := range e.answer {
			if a {
				closers++
				if e.seq[i+1] == FirstSymbol+k {
					due0++
				}
			}
		}
	}
	if got, want := metric(t, ev, "accuracy"), float64(due0)/float64(closers); got != want {
		t.Errorf("closer-0 model accuracy = %v, want %v", got, want)
	}
}

func TestEvaluateRejectsShortContext(t *testing.T) {
	tk := prepared(t, "copy", func(c *Config) { c.Lengths = []int{8} })
	m := limitedRowModel{&rowModel{baseModel: baseModel{"short", tk.vocab}, next: perfectCopy(tk.vocab), limit: 10}}
	if _, err := tk.Evaluate(context.Background(), m); err == nil {
		t.Error("evaluating rows of 17 tokens with a 10-token model succeeded")
	}
}

// TestRolloutPathsAgree runs one rule through every generation path: a
// Stepper, a Distributioner re-reading padded rows, and a ContextLimiter
// whose window the sequence outgrows. The rule looks 3 tokens back, so a
// window of 5 loses nothing and all paths must produce the same tokens.
func TestRolloutPathsAgree(t *testing.T) {
	const vocab, limit = 11, 5
	rule := func(row []int, t int) []float32 {
		v := (row[t] + 2*row[max(0, t-2)] + 1) % vocab
		return pointMass(vocab, v)
	}
	prompts := [][]int{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}
	steps := 40
	var ref [][]int
	for name, m := range copyModels(vocab, rule, limit) {
		calls := 0
		seqs, err := rollout(context.Background(), m, prompts, steps, func(i, s int, logp []float32) int {
			calls++
			return harness.Argmax(logp)
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if calls != steps*len(prompts) {
			t.Errorf("%s: chooser called %d times, want %d", name, calls, steps*len(prompts))
		}
		for i, s := range seqs {
			if len(s) != 3+steps {
				t.Fatalf("%s: row %d has %d tokens, want %d", name, i, len(s), 3+steps)
			}
			// Check the rule directly on the row.
			for k := 3; k < len(s); k++ {
				if want := harness.Argmax(rule(s[:k], k-1)); s[k] != want {
					t.Fatalf("%s: row %d token %d = %d, want %d", name, i, k, s[k], want)
				}
			}
		}
		switch mm := m.(type) {
		case limitedRowModel:
			if mm.maxWidth > limit {
				t.Errorf("limited model was fed %d tokens, more than its context %d", mm.maxWidth, limit)
			}
		case *rowModel:
			if mm.maxWidth != 3+steps-1 {
				t.Errorf("re-fed rows grew to %d tokens, want %d", mm.maxWidth, 3+steps-1)
			}
		case *steppedModel:
			if mm.steps != steps-1 {
				t.Errorf("stepper took %d steps, want %d", mm.steps, steps-1)
			}
		}
		if ref == nil {
			ref = seqs
		}
		for i := range seqs {
			for k := range seqs[i] {
				if seqs[i][k] != ref[i][k] {
					t.Fatalf("%s: row %d differs from another path at %d", name, i, k)
				}
			}
		}
	}
}
