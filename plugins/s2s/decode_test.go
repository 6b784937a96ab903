package s2s_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"arbench/harness"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/internal/plugintest"
	"arbench/plugins/s2s"
)

const tinyVocab = 12

// tiny returns a set-up, randomly initialised model of width 16 and 2
// heads with the given layers and context over tinyVocab tokens.
func tiny(t *testing.T, layers, context int) *s2s.Model {
	t.Helper()
	m := s2s.New().(*s2s.Model)
	cfg := m.Config().(*s2s.Config)
	cfg.Dim, cfg.Heads, cfg.Layers, cfg.FF, cfg.Context = 16, 2, layers, 32, context
	env := harness.Env{Backend: plugintest.Backend(t), Vocab: tinyVocab, SourceLen: context, TargetLen: context, Seed: 3}
	if err := m.Setup(t.Context(), env); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// randomRows returns rows of T tokens drawn from [0, tinyVocab).
func randomRows(rng *rand.Rand, B, T int) [][]int {
	rows := make([][]int, B)
	for i := range rows {
		rows[i] = make([]int, T)
		for j := range rows[i] {
			rows[i][j] = rng.IntN(tinyVocab)
		}
	}
	return rows
}

// padSources right-pads ragged sources with harness.SourcePad.
func padSources(sources [][]int) [][]int {
	w := 0
	for _, s := range sources {
		w = max(w, len(s))
	}
	out := make([][]int, len(sources))
	for i, s := range sources {
		out[i] = make([]int, w)
		copy(out[i], s)
	}
	return out
}

// teacherForced returns every next-token distribution out[i][t][v] of the
// decoder inputs under teacher forcing, from one LogProbs call per token v
// (every target set to v).
func teacherForced(t *testing.T, m *s2s.Model, sources, inputs [][]int) [][][]float64 {
	t.Helper()
	out := make([][][]float64, len(inputs))
	for i := range out {
		out[i] = make([][]float64, len(inputs[i]))
		for j := range out[i] {
			out[i][j] = make([]float64, tinyVocab)
		}
	}
	for v := range tinyVocab {
		targets := make([][]int, len(inputs))
		for i := range targets {
			targets[i] = make([]int, len(inputs[i]))
			for j := range targets[i] {
				targets[i][j] = v
			}
		}
		lp, err := m.LogProbs(t.Context(), harness.Batch{Source: padSources(sources), Inputs: inputs, Targets: targets})
		if err != nil {
			t.Fatal(err)
		}
		for i := range lp {
			for j := range lp[i] {
				out[i][j][v] = lp[i][j]
			}
		}
	}
	return out
}

// assertDist fails when got differs from want by more than 1e-5.
func assertDist(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	for v := range want {
		if d := math.Abs(float64(got[v]) - want[v]); !(d <= 1e-5) {
			t.Fatalf("%s token %d: log p = %.7f, teacher-forced %.7f", what, v, got[v], want[v])
		}
	}
}

// fixture is a batch of four sources of different lengths with random
// decoder inputs of T tokens.
func fixture(T int) (sources, inputs [][]int) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{3, 7, 1, 5} {
		src := make([]int, n)
		for j := range src {
			src[j] = 1 + rng.IntN(tinyVocab-1)
		}
		sources = append(sources, src)
	}
	return sources, randomRows(rng, len(sources), T)
}

// TestPaddingChangesNothing: a row scored alone equals the same row in a
// batch whose other sources are longer or shorter.
func TestPaddingChangesNothing(t *testing.T) {
	m := tiny(t, 2, 24)
	sources, inputs := fixture(6)
	full := teacherForced(t, m, sources, inputs)
	for i := range sources {
		alone := teacherForced(t, m, sources[i:i+1], inputs[i:i+1])
		for j := range inputs[i] {
			got := make([]float32, tinyVocab)
			for v := range got {
				got[v] = float32(alone[0][j][v])
			}
			assertDist(t, fmt.Sprintf("row %d position %d alone", i, j), got, full[i][j])
		}
	}
}

// TestIncrementalMatchesTeacherForcing: StartSource then Step token by
// token, and StartSource then StepN chunks, give the teacher-forced
// distributions of a padded batch, across cache growth (capacity 16, then
// the context 24) and for one and two layers.
func TestIncrementalMatchesTeacherForcing(t *testing.T) {
	const T = 20
	for _, layers := range []int{1, 2} {
		t.Run(fmt.Sprintf("layers=%d", layers), func(t *testing.T) {
			m := tiny(t, layers, 24)
			sources, inputs := fixture(T)
			full := teacherForced(t, m, sources, inputs)
			check := func(what string, p int, logp [][]float32) {
				t.Helper()
				for i := range logp {
					assertDist(t, fmt.Sprintf("%s: row %d position %d", what, i, p), logp[i], full[i][p])
				}
			}

			st, logp, err := m.StartSource(t.Context(), sources, column(inputs, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			check("Step", 0, logp)
			for p := 1; p < T; p++ {
				tokens := make([]int, len(inputs))
				for i := range tokens {
					tokens[i] = inputs[i][p]
				}
				if logp, err = m.Step(t.Context(), st, tokens); err != nil {
					t.Fatal(err)
				}
				check("Step", p, logp)
			}
			if st.Len() != T {
				t.Fatalf("Len after %d tokens = %d", T, st.Len())
			}

			st, logp, err = m.StartSource(t.Context(), sources, column(inputs, 0, 2))
			if err != nil {
				t.Fatal(err)
			}
			check("StepN prompt", 1, logp)
			for p, k := 2, 3; p < T; p, k = p+k, k+2 {
				k = min(k, T-p)
				out, err := m.StepN(t.Context(), st, column(inputs, p, p+k))
				if err != nil {
					t.Fatal(err)
				}
				for j := range k {
					rows := make([][]float32, len(out))
					for i := range out {
						rows[i] = out[i][j]
					}
					check(fmt.Sprintf("StepN(%d)", k), p+j, rows)
				}
			}
		})
	}
}

// TestRewind: after StepN of three tokens and Rewind, stepping other
// tokens gives what a fresh state gives, also after the cache grew.
func TestRewind(t *testing.T) {
	m := tiny(t, 2, 24)
	ctx := t.Context()
	sources, inputs := fixture(20)
	rng := rand.New(rand.NewPCG(7, 8))
	prompts := func(n int) [][]int { return column(inputs, 0, n) }
	for _, n := range []int{2, 15} { // 15 + 3 crosses the capacity of 16
		st, _, err := m.StartSource(ctx, sources, prompts(n))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.StepN(ctx, st, randomRows(rng, len(sources), 3)); err != nil {
			t.Fatal(err)
		}
		if err := m.Rewind(st, n); err != nil {
			t.Fatal(err)
		}
		if st.Len() != n {
			t.Fatalf("Len after Rewind(%d) = %d", n, st.Len())
		}
		fresh, _, err := m.StartSource(ctx, sources, prompts(n))
		if err != nil {
			t.Fatal(err)
		}
		next := randomRows(rng, len(sources), 2)
		got, err := m.StepN(ctx, st, next)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.StepN(ctx, fresh, next)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			for j := range got[i] {
				w := make([]float64, tinyVocab)
				for v := range w {
					w[v] = float64(want[i][j][v])
				}
				assertDist(t, fmt.Sprintf("prompt %d, row %d, new token %d after Rewind", n, i, j), got[i][j], w)
			}
		}
	}
	st, _, err := m.StartSource(ctx, sources, prompts(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 3, -1} {
		if err := m.Rewind(st, n); err == nil {
			t.Errorf("Rewind(%d) of a state of 2 tokens succeeded", n)
		}
	}
}

// TestDecodeErrors: bad states, rows and lengths are errors, not panics.
func TestDecodeErrors(t *testing.T) {
	m := tiny(t, 1, 8)
	ctx := t.Context()
	sources := [][]int{{3, 4}, {5}}
	st, _, err := m.StartSource(ctx, sources, [][]int{{1}, {1}})
	if err != nil {
		t.Fatal(err)
	}
	other := tiny(t, 1, 8)
	cases := map[string]func() error{
		"sources longer than the context": func() error {
			_, _, err := m.StartSource(ctx, [][]int{make9()}, [][]int{{1}})
			return err
		},
		"prompt count": func() error { _, _, err := m.StartSource(ctx, sources, [][]int{{1}}); return err },
		"ragged prompts": func() error {
			_, _, err := m.StartSource(ctx, sources, [][]int{{1}, {1, 2}})
			return err
		},
		"empty source":         func() error { _, _, err := m.StartSource(ctx, [][]int{{}, {3}}, [][]int{{1}, {1}}); return err },
		"pad in source":        func() error { _, _, err := m.StartSource(ctx, [][]int{{0}, {3}}, [][]int{{1}, {1}}); return err },
		"token outside vocab":  func() error { _, err := m.Step(ctx, st, []int{1, tinyVocab}); return err },
		"row count":            func() error { _, err := m.Step(ctx, st, []int{1}); return err },
		"foreign state":        func() error { _, err := other.Step(ctx, st, []int{1, 1}); return err },
		"nil state":            func() error { _, err := m.StepN(ctx, nil, [][]int{{1}, {1}}); return err },
		"past the context":     func() error { _, err := m.StepN(ctx, st, [][]int{make9()[:8], make9()[:8]}); return err },
		"rewind foreign state": func() error { return other.Rewind(st, 1) },
	}
	for name, call := range cases {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if st.Len() != 1 {
		t.Errorf("failed calls changed the state: Len %d, want 1", st.Len())
	}
}

func make9() []int { return []int{1, 2, 3, 4, 5, 6, 7, 8, 9} }

// TestVerifierInterface: the model is what speculative decoding needs.
func TestVerifierInterface(t *testing.T) {
	var m harness.Model = s2s.New()
	if _, ok := m.(encdec.Verifier); !ok {
		t.Fatal("transformer-s2s is no encdec.Verifier")
	}
	if harness.SourceMode(m) != "conditioner" {
		t.Fatalf("SourceMode = %q, want conditioner", harness.SourceMode(m))
	}
}
