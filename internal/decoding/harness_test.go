package decoding_test

// These tests tie the package to arbench's one decoding path: the greedy
// choice, the filtered distribution and the draw are harness.Generate's, so
// speculative decoding in arbench reproduces what the verifier alone would
// generate.

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"arbench/harness"
	"arbench/internal/decoding"
	"arbench/nn"
)

// markov is a harness.Model and Stepper whose next-token distribution
// depends only on the previous token.
type markov struct{ logp [][]float32 }

type markovState struct {
	n    int
	last []int
}

func (s *markovState) Len() int { return s.n }

func (m *markov) Config() harness.Config                   { return nil }
func (m *markov) Setup(context.Context, harness.Env) error { return nil }
func (m *markov) Params() *nn.ParamSet                     { return nil }
func (m *markov) Info() harness.ModelInfo                  { return harness.ModelInfo{Family: "markov"} }

func (m *markov) Start(_ context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	st := &markovState{n: len(prompts[0])}
	for _, p := range prompts {
		st.last = append(st.last, p[len(p)-1])
	}
	return st, m.dists(st.last), nil
}

func (m *markov) Step(_ context.Context, s harness.State, tokens []int) ([][]float32, error) {
	st := s.(*markovState)
	st.n++
	copy(st.last, tokens)
	return m.dists(st.last), nil
}

func (m *markov) dists(last []int) [][]float32 {
	out := make([][]float32, len(last))
	for i, v := range last {
		out[i] = m.logp[v]
	}
	return out
}

func randomMarkov(rng *rand.Rand, V int, quantized bool) *markov {
	m := &markov{logp: make([][]float32, V)}
	for a := range V {
		logits := make([]float64, V)
		for v := range logits {
			if quantized {
				logits[v] = float64(rng.IntN(3))
			} else {
				logits[v] = 2 * rng.NormFloat64()
			}
		}
		mx := slices.Max(logits)
		var z float64
		for _, x := range logits {
			z += math.Exp(x - mx)
		}
		m.logp[a] = make([]float32, V)
		for v, x := range logits {
			m.logp[a][v] = float32(x - mx - math.Log(z))
		}
	}
	return m
}

func TestArgmaxIsHarnessArgmax(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	cases := [][]float32{{}, {nan, nan}, {nan, 1, 1}, {inf, inf}, {-1, 0, 0, nan, 0}, {2, 1, 2}}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		xs := make([]float32, 1+rng.IntN(6))
		for i := range xs {
			switch rng.IntN(6) {
			case 0:
				xs[i] = nan
			case 1:
				xs[i] = inf
			default:
				xs[i] = float32(rng.IntN(3))
			}
		}
		cases = append(cases, xs)
	}
	for _, xs := range cases {
		if got, want := decoding.Argmax(xs), harness.Argmax(xs); got != want {
			t.Fatalf("Argmax(%v) = %d, harness.Argmax = %d", xs, got, want)
		}
	}
}

// TestSampleIsHarnessGenerate: with row 0's generator (harness.Generate
// seeds row i from (Seed, i)), Sample returns the first token Generate
// generates, for every seed and sampling setting: the filtering and the
// draw are the same, bit for bit.
func TestSampleIsHarnessGenerate(t *testing.T) {
	ctx := context.Background()
	m := randomMarkov(rand.New(rand.NewPCG(3, 3)), 7, false)
	for _, s := range []decoding.Sampling{
		{}, {Temperature: 1}, {Temperature: 0.5}, {Temperature: 2, TopK: 3},
		{Temperature: 1, TopP: 0.7}, {Temperature: 0.9, TopK: 4, TopP: 0.8}, {Temperature: 1, TopK: 1},
	} {
		for seed := range uint64(100) {
			prev := int(seed % 7)
			opt := harness.GenOptions{MaxNew: 1, Temperature: s.Temperature, TopK: s.TopK, TopP: s.TopP, StopToken: -1, Seed: seed}
			out, err := harness.Generate(ctx, m, [][]int{{prev}}, opt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decoding.Sample(m.logp[prev], s, rand.New(rand.NewPCG(seed, 0)))
			if err != nil {
				t.Fatal(err)
			}
			if got != out[0][0] {
				t.Fatalf("%+v, seed %d: Sample = %d, harness.Generate = %d", s, seed, got, out[0][0])
			}
		}
	}
}

// TestGreedySpeculativeIsHarnessGreedy: greedy speculative decoding of a
// verifier with a different drafter equals harness.Generate's greedy
// output of the verifier alone.
func TestGreedySpeculativeIsHarnessGreedy(t *testing.T) {
	const V, L = 6, 30
	ctx := context.Background()
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 5))
		verifier := randomMarkov(rng, V, seed%2 == 0)
		drafter := randomMarkov(rng, V, seed%3 == 0)
		for gamma := 1; gamma <= 6; gamma++ {
			prompt := []int{int(seed) % V}
			want, err := harness.Generate(ctx, verifier, [][]int{prompt}, harness.GenOptions{MaxNew: L, StopToken: -1})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for last := prompt[0]; len(got) < L; last = got[len(got)-1] {
				draft := make([]int, gamma)
				p := make([][]float32, gamma+1)
				prev := last
				for i := range draft {
					p[i] = verifier.logp[prev]
					draft[i] = decoding.Argmax(drafter.logp[prev])
					prev = draft[i]
				}
				p[gamma] = verifier.logp[prev]
				out, err := decoding.Verify(draft, nil, p, decoding.Sampling{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, out.Tokens...)
			}
			if !slices.Equal(got[:L], want[0]) {
				t.Fatalf("seed %d, γ = %d:\nspeculative %v\nharness     %v", seed, gamma, got[:L], want[0])
			}
		}
	}
}
