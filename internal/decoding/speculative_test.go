package decoding

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// bigram is a fake model whose next-token log-probabilities depend only on
// the previous token: logp[prev][next].
type bigram [][]float32

// randomBigram returns a bigram over V tokens with logits drawn from
// N(0, scale²); quantized logits (0, 1 or 2) make ties frequent.
func randomBigram(rng *rand.Rand, V int, scale float64, quantized bool) bigram {
	b := make(bigram, V)
	for a := range b {
		logits := make([]float64, V)
		for v := range logits {
			if quantized {
				logits[v] = float64(rng.IntN(3))
			} else {
				logits[v] = scale * rng.NormFloat64()
			}
		}
		b[a] = logSoftmax(logits)
	}
	return b
}

func logSoftmax(logits []float64) []float32 {
	mx := slices.Max(logits)
	var z float64
	for _, x := range logits {
		z += math.Exp(x - mx)
	}
	out := make([]float32, len(logits))
	for v, x := range logits {
		out[v] = float32(x - mx - math.Log(z))
	}
	return out
}

func logs(ps ...float64) []float32 {
	out := make([]float32, len(ps))
	for v, p := range ps {
		out[v] = float32(math.Log(p))
	}
	return out
}

// greedyChain is plain greedy decoding of b: n tokens after start.
func greedyChain(b bigram, start, n int) []int {
	out := make([]int, 0, n)
	for prev := start; len(out) < n; {
		prev = Argmax(b[prev])
		out = append(out, prev)
	}
	return out
}

func mustProbs(t *testing.T, logp []float32, s Sampling) []float64 {
	t.Helper()
	p, err := Probs(logp, s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbs(t *testing.T) {
	base := logs(0.5, 0.3, 0.15, 0.05)
	sq := []float64{math.Sqrt(0.5), math.Sqrt(0.3), math.Sqrt(0.15), math.Sqrt(0.05)}
	sqSum := sq[0] + sq[1] + sq[2] + sq[3]
	inf := float32(math.Inf(-1))
	for _, tc := range []struct {
		name string
		logp []float32
		s    Sampling
		want []float64
	}{
		{"temperature 1", base, Sampling{Temperature: 1}, []float64{0.5, 0.3, 0.15, 0.05}},
		{"temperature 2 takes square roots", base, Sampling{Temperature: 2},
			[]float64{sq[0] / sqSum, sq[1] / sqSum, sq[2] / sqSum, sq[3] / sqSum}},
		{"top-k 2", base, Sampling{Temperature: 1, TopK: 2}, []float64{0.625, 0.375, 0, 0}},
		{"top-k beyond the vocabulary", base, Sampling{Temperature: 1, TopK: 9}, []float64{0.5, 0.3, 0.15, 0.05}},
		{"top-p reached exactly (within 1e-6)", base, Sampling{Temperature: 1, TopP: 0.8}, []float64{0.625, 0.375, 0, 0}},
		{"top-p reached within float32 rounding", logs(0.4, 0.3, 0.2, 0.1), Sampling{Temperature: 1, TopP: 0.4}, []float64{1, 0, 0, 0}},
		{"top-p just above", base, Sampling{Temperature: 1, TopP: 0.81}, []float64{0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0}},
		{"top-k then top-p", base, Sampling{Temperature: 1, TopK: 3, TopP: 0.5}, []float64{1, 0, 0, 0}},
		{"greedy is the argmax", base, Sampling{}, []float64{1, 0, 0, 0}},
		{"greedy ignores top-k", logs(0.2, 0.5, 0.3), Sampling{TopK: 3}, []float64{0, 1, 0}},
		{"greedy tie goes to the lower id", []float32{-1, 0, 0}, Sampling{}, []float64{0, 1, 0}},
		{"top-k tie keeps the lower ids", logs(0.25, 0.25, 0.25, 0.25), Sampling{Temperature: 1, TopK: 2}, []float64{0.5, 0.5, 0, 0}},
		{"impossible token", []float32{0, inf}, Sampling{Temperature: 0.5}, []float64{1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustProbs(t, tc.logp, tc.s)
			for v := range tc.want {
				if math.Abs(got[v]-tc.want[v]) > 1e-6 {
					t.Fatalf("Probs = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestSamplingErrors(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		logp []float32
		s    Sampling
		want string
	}{
		{[]float32{0}, Sampling{Temperature: -1}, "temperature"},
		{[]float32{0}, Sampling{Temperature: math.Inf(1)}, "temperature"},
		{[]float32{0}, Sampling{Temperature: math.NaN()}, "temperature"},
		{[]float32{0}, Sampling{Temperature: 1, TopK: -1}, "top-k"},
		{[]float32{0}, Sampling{Temperature: 1, TopP: 1.5}, "top-p"},
		{[]float32{0, nan}, Sampling{Temperature: 1}, "NaN at token 1"},
		{[]float32{float32(math.Inf(1))}, Sampling{}, "+Inf at token 0"},
		{[]float32{float32(math.Inf(-1))}, Sampling{Temperature: 1}, "no finite entry"},
		{nil, Sampling{}, "no finite entry"},
	} {
		if _, err := Probs(tc.logp, tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Probs(%v, %+v) error %v, want it to say %q", tc.logp, tc.s, err, tc.want)
		}
		if _, err := Sample(tc.logp, tc.s, rand.New(rand.NewPCG(1, 2))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Sample(%v, %+v) error %v, want it to say %q", tc.logp, tc.s, err, tc.want)
		}
	}
	if _, err := Sample([]float32{0, 0}, Sampling{Temperature: 1}, nil); err == nil {
		t.Error("Sample without a generator: no error")
	}
}

// TestVerifyGreedyEqualsVerifierGreedy runs greedy speculative decoding of
// random bigram verifiers with deliberately different drafters (greedy,
// sampling and arbitrary proposals) over many sequences and γ = 1..6, and
// requires the output to be the verifier's plain greedy decoding token for
// token. Half the tables have quantized logits, so argmax ties are common
// and the lower-id rule is exercised.
func TestVerifyGreedyEqualsVerifierGreedy(t *testing.T) {
	const V, L = 5, 24
	var tested, accepted, calls int
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 1))
		P := randomBigram(rng, V, 2, seed%2 == 0)
		Q := randomBigram(rng, V, 2, seed%3 == 0)
		for gamma := 1; gamma <= 6; gamma++ {
			for start := range V {
				want := greedyChain(P, start, L)
				var got []int
				for last := start; len(got) < L; last = got[len(got)-1] {
					draft := make([]int, gamma)
					ps := make([][]float32, gamma+1)
					prev := last
					for i := range draft {
						ps[i] = P[prev]
						switch seed % 4 {
						case 0: // arbitrary proposals
							draft[i] = rng.IntN(V)
						case 1: // a sampling drafter
							draft[i], _ = Sample(Q[prev], Sampling{Temperature: 1}, rng)
						default: // a greedy drafter
							draft[i] = Argmax(Q[prev])
						}
						prev = draft[i]
					}
					ps[gamma] = P[prev]
					out, err := Verify(draft, nil, ps, Sampling{}, nil)
					if err != nil {
						t.Fatal(err)
					}
					if len(out.Tokens) != out.Accepted+1 || !slices.Equal(out.Tokens[:out.Accepted], draft[:out.Accepted]) {
						t.Fatalf("draft %v: outcome %+v is not an accepted prefix plus one token", draft, out)
					}
					got = append(got, out.Tokens...)
					tested += out.Tested()
					accepted += out.Accepted
					calls++
				}
				if got = got[:L]; !slices.Equal(got, want) {
					t.Fatalf("seed %d, γ = %d, start %d:\nspeculative %v\ngreedy      %v", seed, gamma, start, got, want)
				}
			}
		}
	}
	// Both branches must have been taken many times for the equality to
	// mean anything.
	if accepted < tested/10 || accepted > tested*9/10 {
		t.Fatalf("accepted %d of %d tested draft tokens: the drafters are too close to or too far from the verifiers", accepted, tested)
	}
	t.Logf("%d verifier calls, %d of %d tested draft tokens accepted", calls, accepted, tested)
}

// verifyFunc is Verify's signature, so the statistical tests can run
// deliberately wrong rules through the same measurement.
type verifyFunc func(draft []int, q, p [][]float32, s Sampling, rng *rand.Rand) (Outcome, error)

// drawDense draws from probabilities in id order.
func drawDense(p []float64, rng *rand.Rand) int {
	u := rng.Float64()
	var acc float64
	for v, x := range p {
		if acc += x; u < acc {
			return v
		}
	}
	return len(p) - 1
}

// wrongVerify is speculative sampling with one deliberate mistake:
//
//   - "accept-always": every draft token is accepted (the output is the
//     drafter's distribution);
//   - "replace-from-p": the right test, but the replacement is drawn from p
//     instead of normalize(max(0, p − q));
//   - "inverted-ratio": acceptance with min(1, q/p) instead of min(1, p/q).
func wrongVerify(rule string) verifyFunc {
	return func(draft []int, q, p [][]float32, s Sampling, rng *rand.Rand) (Outcome, error) {
		out := Outcome{Drafted: len(draft)}
		for i, x := range draft {
			pi, err := Probs(p[i], s)
			if err != nil {
				return out, err
			}
			qi, err := Probs(q[i], s)
			if err != nil {
				return out, err
			}
			var accept bool
			switch rule {
			case "accept-always":
				accept = true
			case "replace-from-p":
				accept = rng.Float64() < pi[x]/qi[x]
			case "inverted-ratio":
				accept = rng.Float64() < qi[x]/pi[x]
			default:
				panic(rule)
			}
			if accept {
				out.Tokens = append(out.Tokens, x)
				out.Accepted++
				continue
			}
			r := make([]float64, len(pi))
			var total float64
			for v := range r {
				r[v] = math.Max(0, pi[v]-qi[v])
				total += r[v]
			}
			for v := range r {
				r[v] /= total
			}
			if rule == "replace-from-p" {
				r = pi
			}
			out.Tokens = append(out.Tokens, drawDense(r, rng))
			return out, nil
		}
		bonus, err := Probs(p[len(draft)], s)
		out.Tokens = append(out.Tokens, drawDense(bonus, rng))
		return out, err
	}
}

// chiSquare returns Pearson's statistic Σ (O − E)² / E over the cells of
// positive expectation and their number less one (the degrees of freedom);
// an observation in a cell of expectation 0 makes it +Inf. It fails the
// test when an expected count is below 5 (the approximation's usual rule):
// that is a mistake in the test's design, not in the code under test.
func chiSquare(t *testing.T, observed []int, expected []float64) (stat float64, df int) {
	t.Helper()
	for c, e := range expected {
		switch {
		case e == 0 && observed[c] > 0:
			return math.Inf(1), len(expected) - 1
		case e == 0:
		case e < 5:
			t.Fatalf("cell %d: expected count %.2f < 5; draw more samples", c, e)
		default:
			d := float64(observed[c]) - e
			stat += d * d / e
			df++
		}
	}
	return stat, df - 1
}

// critical is the chi-square critical value at significance 0.001.
func critical(df int) float64 { return distuv.ChiSquared{K: float64(df)}.Quantile(0.999) }

func TestChiSquareCriticalValues(t *testing.T) {
	// Tabulated 0.999 quantiles (NIST/SEMATECH e-Handbook, Table 1.3.6.7.4).
	for df, want := range map[int]float64{3: 16.266, 8: 26.124, 15: 37.697} {
		if got := critical(df); math.Abs(got-want) > 1e-3 {
			t.Errorf("critical(%d) = %.4f, want %.3f", df, got, want)
		}
	}
}

// specPairs runs speculative sampling from the context token c0 until two
// tokens are emitted, n times, with a drafter drawing γ proposals from the
// bigram Q under s. It returns counts[a*V+b] of the first two tokens (a, b)
// and how many times the first test (of x_1 given c0) accepted.
func specPairs(t *testing.T, verify verifyFunc, P, Q bigram, c0, gamma int, s Sampling, n int, rng *rand.Rand) (counts []int, firstAccepted int) {
	t.Helper()
	V := len(P)
	counts = make([]int, V*V)
	draft := make([]int, gamma)
	qs, ps := make([][]float32, gamma), make([][]float32, gamma+1)
	for range n {
		seq := []int{c0}
		for first := true; len(seq) < 3; first = false {
			prev := seq[len(seq)-1]
			for i := range draft {
				qs[i], ps[i] = Q[prev], P[prev]
				var err error
				if draft[i], err = Sample(Q[prev], s, rng); err != nil {
					t.Fatal(err)
				}
				prev = draft[i]
			}
			ps[gamma] = P[prev]
			out, err := verify(draft, qs, ps, s, rng)
			if err != nil {
				t.Fatal(err)
			}
			if first && out.Accepted > 0 {
				firstAccepted++
			}
			seq = append(seq, out.Tokens...)
		}
		counts[seq[1]*V+seq[2]]++
	}
	return counts, firstAccepted
}

// pairStats returns the chi-square statistics of the first token and of
// the pair (first, second) against the verifier's own distribution under
// s: p'(a | c0) and p'(a | c0)·p'(b | a).
func pairStats(t *testing.T, counts []int, P bigram, c0 int, s Sampling) (first, pair float64, dfFirst, dfPair int) {
	t.Helper()
	V := len(P)
	n := 0
	for _, c := range counts {
		n += c
	}
	p0 := mustProbs(t, P[c0], s)
	firstObs, firstExp := make([]int, V), make([]float64, V)
	pairExp := make([]float64, V*V)
	for a := range V {
		pa := mustProbs(t, P[a], s)
		firstExp[a] = float64(n) * p0[a]
		for b := range V {
			firstObs[a] += counts[a*V+b]
			pairExp[a*V+b] = float64(n) * p0[a] * pa[b]
		}
	}
	first, dfFirst = chiSquare(t, firstObs, firstExp)
	pair, dfPair = chiSquare(t, counts, pairExp)
	return first, pair, dfFirst, dfPair
}

// TestVerifySamplingDistribution checks that speculative sampling emits the
// verifier's distribution: on a vocabulary of 4 with random bigram verifier
// P and drafter Q, the first emitted token (df ≤ 3) and the pair of the
// first two (df ≤ 15, often emitted by two verifier calls) are tested by
// Pearson's chi-square against p' and p'·p' under each sampling setting,
// at significance 0.001 with fixed seeds (so the test cannot flake). The
// empirical acceptance of the first draft token is also compared with
// α = Σ min(p'(·|c0), q'(·|c0)) (|z| < 4).
func TestVerifySamplingDistribution(t *testing.T) {
	const V, n, c0 = 4, 40000, 1
	rng := rand.New(rand.NewPCG(7, 7))
	P := randomBigram(rng, V, 1, false)
	Q := randomBigram(rng, V, 1, false)
	for _, tc := range []struct {
		s     Sampling
		gamma int
	}{
		{Sampling{Temperature: 1}, 1},
		{Sampling{Temperature: 1}, 2},
		{Sampling{Temperature: 1}, 4},
		{Sampling{Temperature: 0.7, TopK: 3}, 3},
		{Sampling{Temperature: 1.5, TopP: 0.9}, 2},
	} {
		t.Run(fmt.Sprintf("%+v/γ=%d", tc.s, tc.gamma), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tc.gamma), 11))
			counts, firstAccepted := specPairs(t, Verify, P, Q, c0, tc.gamma, tc.s, n, rng)
			first, pair, df1, df2 := pairStats(t, counts, P, c0, tc.s)
			c1, c2 := critical(df1), critical(df2)
			t.Logf("first token χ² = %.2f (df %d, critical %.2f); pair χ² = %.2f (df %d, critical %.2f)", first, df1, c1, pair, df2, c2)
			if first > c1 || pair > c2 {
				t.Fatalf("the emitted tokens are not the verifier's distribution")
			}
			alpha := ExpectedAcceptance(mustProbs(t, P[c0], tc.s), mustProbs(t, Q[c0], tc.s))
			rate := float64(firstAccepted) / n
			if z := (rate - alpha) / math.Sqrt(alpha*(1-alpha)/n); math.Abs(z) > 4 {
				t.Fatalf("first draft token accepted at rate %.4f, α = %.4f (z = %.1f)", rate, alpha, z)
			}
		})
	}
}

// TestVerifySamplingTestHasPower runs the same measurement on deliberately
// wrong rules: each must fail it by far, which shows the chi-square test
// above can tell a correct rule from a subtly wrong one.
func TestVerifySamplingTestHasPower(t *testing.T) {
	const V, n, c0, gamma = 4, 40000, 1, 2
	rng := rand.New(rand.NewPCG(7, 7))
	P := randomBigram(rng, V, 1, false)
	Q := randomBigram(rng, V, 1, false)
	s := Sampling{Temperature: 1}
	for _, rule := range []string{"accept-always", "replace-from-p", "inverted-ratio"} {
		counts, _ := specPairs(t, wrongVerify(rule), P, Q, c0, gamma, s, n, rand.New(rand.NewPCG(2, 11)))
		_, pair, _, df := pairStats(t, counts, P, c0, s)
		t.Logf("%s: pair χ² = %.1f (df %d, critical %.2f)", rule, pair, df, critical(df))
		if pair < 2*critical(df) {
			t.Errorf("%s: pair χ² = %.1f, not far above the critical value %.2f: the test lacks power", rule, pair, critical(df))
		}
	}
}

// TestVerifyAcceptanceRate checks acceptance against Leviathan et al.'s
// analysis when p and q do not depend on the context, so every test is an
// independent Bernoulli(α) trial: the acceptance rate (accepted/tested),
// P(Accepted ≥ k) = α^k for k = 1..γ, and the mean number of tokens per
// verifier call, (1 − α^(γ+1))/(1 − α), each within 4 standard errors.
func TestVerifyAcceptanceRate(t *testing.T) {
	const n, gamma = 20000, 4
	p, q := logs(0.4, 0.3, 0.2, 0.1), logs(0.1, 0.2, 0.3, 0.4)
	for _, s := range []Sampling{{Temperature: 1}, {Temperature: 0.5}, {Temperature: 1, TopK: 3}} {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			pp, qq := mustProbs(t, p, s), mustProbs(t, q, s)
			alpha := ExpectedAcceptance(pp, qq)
			rng := rand.New(rand.NewPCG(3, 5))
			ps := [][]float32{p, p, p, p, p}
			qs := [][]float32{q, q, q, q}
			atLeast := make([]int, gamma+1)
			var accepted, tested, tokens, tokens2 float64
			draft := make([]int, gamma)
			for range n {
				for i := range draft {
					draft[i], _ = Sample(q, s, rng)
				}
				out, err := Verify(draft, qs, ps, s, rng)
				if err != nil {
					t.Fatal(err)
				}
				for k := 0; k <= out.Accepted; k++ {
					atLeast[k]++
				}
				accepted += float64(out.Accepted)
				tested += float64(out.Tested())
				k := float64(len(out.Tokens))
				tokens += k
				tokens2 += k * k
			}
			if z := (accepted - alpha*tested) / math.Sqrt(alpha*(1-alpha)*tested); math.Abs(z) > 4 {
				t.Errorf("acceptance rate %.4f, α = %.4f (z = %.1f)", accepted/tested, alpha, z)
			}
			for k := 1; k <= gamma; k++ {
				want := math.Pow(alpha, float64(k))
				got := float64(atLeast[k]) / n
				if z := (got - want) / math.Sqrt(want*(1-want)/n); math.Abs(z) > 4 {
					t.Errorf("P(Accepted ≥ %d) = %.4f, α^%d = %.4f (z = %.1f)", k, got, k, want, z)
				}
			}
			mean := tokens / n
			sd := math.Sqrt(tokens2/n - mean*mean)
			want := ExpectedTokens(alpha, gamma)
			if z := (mean - want) / (sd / math.Sqrt(n)); math.Abs(z) > 4 {
				t.Errorf("%.4f tokens per verifier call, expected %.4f (z = %.1f)", mean, want, z)
			}
			t.Logf("α = %.4f: rate %.4f, tokens per call %.4f (expected %.4f)", alpha, accepted/tested, mean, want)
		})
	}
}

func TestExpectedAcceptanceAndTokens(t *testing.T) {
	if a := ExpectedAcceptance([]float64{0.4, 0.3, 0.2, 0.1}, []float64{0.1, 0.2, 0.3, 0.4}); math.Abs(a-0.6) > 1e-12 {
		t.Errorf("α = %v, want 0.6", a)
	}
	for _, tc := range []struct {
		alpha float64
		gamma int
		want  float64
	}{
		{0.6, 4, (1 - 0.07776) / 0.4}, // 0.6^5 = 0.07776
		{0.5, 1, 1.5},
		{1, 3, 4},
		{0, 5, 1},
	} {
		if got := ExpectedTokens(tc.alpha, tc.gamma); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("ExpectedTokens(%v, %d) = %v, want %v", tc.alpha, tc.gamma, got, tc.want)
		}
	}
}

// TestVerifyZeroDraftProbability: a draft token that q' gives probability
// 0 (impossible in q, or cut by top-k) is rejected, and the emitted token
// has the verifier's distribution p' (chi-square, df 3, significance 0.001).
func TestVerifyZeroDraftProbability(t *testing.T) {
	const n = 20000
	inf := float32(math.Inf(-1))
	p := logs(0.1, 0.2, 0.3, 0.4)
	for _, tc := range []struct {
		name string
		q    []float32
		s    Sampling
	}{
		{"impossible in q", []float32{0, 0, inf, 0}, Sampling{Temperature: 1}},
		{"cut by top-k", logs(0.4, 0.3, 0.2, 0.1), Sampling{Temperature: 1, TopK: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 4))
			counts := make([]int, 4)
			for range n {
				out, err := Verify([]int{2, 0}, [][]float32{tc.q, tc.q}, [][]float32{p, p, p}, tc.s, rng)
				if err != nil {
					t.Fatal(err)
				}
				if out.Accepted != 0 || len(out.Tokens) != 1 {
					t.Fatalf("outcome %+v, want the draft rejected at once", out)
				}
				counts[out.Tokens[0]]++
			}
			pp := mustProbs(t, p, tc.s)
			want := make([]float64, 4)
			for v := range want {
				want[v] = n * pp[v]
			}
			if stat, df := chiSquare(t, counts, want); stat > critical(df) {
				t.Fatalf("replacements %v: χ² = %.2f > %.2f", counts, stat, critical(df))
			}
		})
	}
}

// TestVerifyEqualDistributions: when p = q, min(1, p/q) = 1 and every
// draft token is accepted.
func TestVerifyEqualDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	p := logs(0.7, 0.2, 0.1)
	for range 1000 {
		draft := []int{rng.IntN(3), rng.IntN(3), rng.IntN(3)}
		out, err := Verify(draft, [][]float32{p, p, p}, [][]float32{p, p, p, p}, Sampling{Temperature: 1}, rng)
		if err != nil {
			t.Fatal(err)
		}
		if out.Accepted != 3 {
			t.Fatalf("p = q, draft %v: accepted %d of 3", draft, out.Accepted)
		}
	}
}

// TestResidualZeroFallsBackToP: a residual max(0, p − q) that is zero
// everywhere (p = q, reached only through rounding) draws from p, the
// same draw as p's own sampler.
func TestResidualZeroFallsBackToP(t *testing.T) {
	logp := logs(0.5, 0.25, 0.25)
	pd := filter(logp, Sampling{Temperature: 1})
	dense := pd.dense(3)
	for seed := range uint64(50) {
		got := residualDraw(dense, dense, pd, rand.New(rand.NewPCG(seed, 0)))
		if want := pd.draw(rand.New(rand.NewPCG(seed, 0))); got != want {
			t.Fatalf("seed %d: residual draw %d, p's draw %d", seed, got, want)
		}
	}
	// And a residual that is not zero draws only where p > q.
	q := []float64{0.5, 0.5, 0}
	for seed := range uint64(50) {
		if got := residualDraw(dense, q, pd, rand.New(rand.NewPCG(seed, 0))); got != 2 {
			t.Fatalf("residual of p = %v, q = %v drew %d, want 2", dense, q, got)
		}
	}
}

// TestVerifyNoDraft: γ = 0 draws one token from p'_1 exactly as Sample.
func TestVerifyNoDraft(t *testing.T) {
	p := logs(0.1, 0.2, 0.3, 0.4)
	s := Sampling{Temperature: 0.8, TopP: 0.9}
	for seed := range uint64(50) {
		out, err := Verify(nil, nil, [][]float32{p}, s, rand.New(rand.NewPCG(seed, 9)))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Sample(p, s, rand.New(rand.NewPCG(seed, 9)))
		if out.Accepted != 0 || !slices.Equal(out.Tokens, []int{want}) || out.Tested() != 0 {
			t.Fatalf("seed %d: %+v, want one token %d", seed, out, want)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	p, q := logs(0.5, 0.5), logs(0.9, 0.1)
	one := Sampling{Temperature: 1}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name  string
		draft []int
		q, p  [][]float32
		s     Sampling
		rng   *rand.Rand
		want  string
	}{
		{"too few verifier rows", []int{0}, [][]float32{q}, [][]float32{p}, one, rng, "1 verifier distributions for 1 draft tokens, want 2"},
		{"too many verifier rows", []int{0}, [][]float32{q}, [][]float32{p, p, p}, Sampling{}, nil, "want 2"},
		{"too few draft rows", []int{0, 1}, [][]float32{q}, [][]float32{p, p, p}, one, rng, "1 draft distributions for 2 draft tokens"},
		{"token outside", []int{2}, [][]float32{q}, [][]float32{p, p}, Sampling{}, nil, "draft token 1 is 2, outside the vocabulary of 2"},
		{"negative token", []int{-1}, [][]float32{q}, [][]float32{p, p}, one, rng, "outside the vocabulary"},
		{"ragged verifier", []int{0}, [][]float32{q}, [][]float32{p, {0}}, one, rng, "verifier distribution 2 has 1 tokens"},
		{"ragged draft", []int{0}, [][]float32{{0, 0, 0}}, [][]float32{p, p}, one, rng, "draft distribution 1 has 3 tokens"},
		{"NaN in p", []int{0}, [][]float32{q}, [][]float32{p, {0, float32(math.NaN())}}, Sampling{}, nil, "verifier distribution 2: NaN at token 1"},
		{"no finite q", []int{0}, [][]float32{{float32(math.Inf(-1)), float32(math.Inf(-1))}}, [][]float32{p, p}, one, rng, "draft distribution 1: no finite entry"},
		{"no generator", []int{0}, [][]float32{q}, [][]float32{p, p}, one, nil, "random generator"},
		{"bad sampling", []int{0}, [][]float32{q}, [][]float32{p, p}, Sampling{Temperature: 1, TopP: -0.5}, rng, "top-p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.draft, tc.q, tc.p, tc.s, tc.rng)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
		})
	}
}
