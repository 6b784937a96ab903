package hybrid

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"arbench/harness"
	"arbench/internal/decoding"
	"arbench/plugins/internal/encdec"
)

// drafterCase builds a fake drafter afresh and reads its pass count; rows
// false hides an autoregressive drafter's RewindRows.
type drafterCase struct {
	name string
	make func(rows bool) (draftModel, func() int)
}

func narCase(name string, d distFn) drafterCase {
	return drafterCase{name, func(bool) (draftModel, func() int) {
		f := &fakeNAR{dist: d}
		return narDraft{f}, func() int { return f.calls }
	}}
}

func arCase(name string, d distFn) drafterCase {
	return drafterCase{name, func(rows bool) (draftModel, func() int) {
		f := &fakeAR{dist: d}
		return arDraft{asVerifier(f, rows)}, func() int { return f.calls }
	}}
}

// asVerifier is f, or with rows false f as a Verifier without RewindRows.
func asVerifier(f *fakeAR, rows bool) encdec.Verifier {
	if rows {
		return f
	}
	return syncOnly{f}
}

// The decoding modes the fakes test: per-row (a RowVerifier verifier and
// drafter), synchronous (a plain Verifier), and the synchronous fallback
// of a RowVerifier with an autoregressive drafter that is not one.
var modes = []struct {
	name                    string
	rowVerifier, rowDrafter bool
}{{"rows", true, true}, {"sync", false, false}, {"sync-drafter", true, false}}

// emitted is the number of tokens a row of out emitted: its content
// tokens and the end token unless MaxLen cut it.
func emitted(out []int, maxLen int) int {
	if len(out) < maxLen {
		return len(out) + 1
	}
	return len(out)
}

// TestGreedyMatchesVerifier: greedy speculative decoding emits exactly
// harness.Translate's greedy decoding of the verifier alone, for every γ,
// batch size, length limit and drafter (one that agrees with the verifier
// often, always, or never), and its counts add up.
func TestGreedyMatchesVerifier(t *testing.T) {
	const vocab = 7
	vl := verifierLogits(11, vocab, 2, 0.2)
	verifier := fromLogits(vl)
	cases := []drafterCase{
		narCase("nar-noisy", noisy(vl, 23, 1.5)),
		narCase("nar-perfect", verifier),
		arCase("ar-noisy", noisy(vl, 29, 1.0)),
		arCase("ar-hopeless", negated(vl)),
	}
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	decodings := 0
	for _, mode := range modes {
		for _, dc := range cases {
			for gamma := 0; gamma <= 8; gamma++ {
				for _, B := range []int{1, 2, 3, 8, 17} {
					for _, maxLen := range []int{1, 2, 6, 24, -5} {
						name := fmt.Sprintf("%s/%s/gamma=%d/B=%d/max=%d", mode.name, dc.name, gamma, B, maxLen)
						sources := randomSources(rng, B, vocab, 6)
						opt := harness.TranslateOptions{Start: fakeStart, End: fakeEnd, MaxLen: maxLen}
						if maxLen < 0 { // outputs of exactly −maxLen tokens
							opt.MaxLen, opt.Length = 0, -maxLen
							maxLen = -maxLen
						}
						want, err := harness.Translate(ctx, &fakeAR{dist: verifier}, sources, opt)
						if err != nil {
							t.Fatal(err)
						}
						v := &fakeAR{dist: verifier}
						dm, draftCalls := dc.make(mode.rowDrafter)
						got, err := speculate(ctx, asVerifier(v, mode.rowVerifier), dm, sources, opt, decodeParams{gamma: gamma})
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						decodings++
						if opt.Length > 0 {
							for i, o := range got.Outputs {
								if len(o) != opt.Length {
									t.Fatalf("%s: output %d has %d tokens, want Length %d", name, i, len(o), opt.Length)
								}
							}
						}
						if !slices.EqualFunc(got.Outputs, want.Outputs, slices.Equal) {
							t.Fatalf("%s: outputs\n%v\nwant the verifier's greedy\n%v", name, got.Outputs, want.Outputs)
						}
						checkStats(t, name, got, v, draftCalls(), gamma)
						if v.maxLen > maxLen {
							t.Errorf("%s: the verifier's cache held %d tokens, more than greedy decoding's %d", name, v.maxLen, maxLen)
						}
						tmax := 0
						for _, o := range want.Outputs {
							tmax = max(tmax, emitted(o, maxLen))
						}
						s := got.Stats
						switch {
						case gamma == 0 || maxLen == 1:
							if got.Passes != want.Passes || s["drafted"] != 0 || s["draft_calls"] != 0 {
								t.Errorf("%s: %d passes (greedy %d), stats %v: want the verifier alone", name, got.Passes, want.Passes, s)
							}
						case dc.name == "nar-perfect":
							rounds := (tmax + gamma) / (gamma + 1)
							if got.Passes != 1+rounds || s["tested_accepted"] != s["drafted"] || s["tested"] != s["drafted"] {
								t.Errorf("%s: a perfect drafter took %d passes for %d tokens (want 1 + %d rounds), stats %v", name, got.Passes, tmax, rounds, s)
							}
						case dc.name == "ar-hopeless":
							// Every round emits one token per row, and the first
							// round's pass tests drafts only.
							if got.Passes != want.Passes+1 || s["accepted"] != 0 || s["tested_accepted"] != 0 {
								t.Errorf("%s: a drafter that is never right took %d passes (greedy %d), stats %v", name, got.Passes, want.Passes, s)
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d decodings", decodings)
}

// checkStats checks the counts of a decoding against the fakes' own.
func checkStats(t *testing.T, name string, got *harness.Translation, v *fakeAR, draftCalls, gamma int) {
	t.Helper()
	s := got.Stats
	if got.Passes != v.calls || s["verify_calls"] != float64(v.calls) {
		t.Errorf("%s: Passes %d, verify_calls %v, the verifier ran %d passes", name, got.Passes, s["verify_calls"], v.calls)
	}
	if s["draft_calls"] != float64(draftCalls) {
		t.Errorf("%s: draft_calls %v, the drafter ran %d passes", name, s["draft_calls"], draftCalls)
	}
	if !(s["accepted"] <= s["tested_accepted"] && s["tested_accepted"] <= s["tested"] && s["tested"] <= s["drafted"]) {
		t.Errorf("%s: want accepted ≤ tested_accepted ≤ tested ≤ drafted, stats %v", name, s)
	}
	if s["drafted"] > float64(gamma*len(got.Outputs)*got.Passes) {
		t.Errorf("%s: %v drafted in %d passes of %d rows at γ = %d", name, s["drafted"], got.Passes, len(got.Outputs), gamma)
	}
	for _, k := range []string{"verify_seconds", "draft_seconds"} {
		if x, ok := s[k]; !ok || x < 0 {
			t.Errorf("%s: %s = %v", name, k, x)
		}
	}
}

// exactDist is the distribution of outputs (keyed by fmt.Sprint) that
// sampling dist under s gives, computed by enumeration.
func exactDist(dist distFn, src []int, s decoding.Sampling, maxLen int) map[string]float64 {
	out := map[string]float64{}
	var rec func(seq, toks []int, p float64)
	rec = func(seq, toks []int, p float64) {
		probs, err := decoding.Probs(dist(src, seq), s)
		if err != nil {
			panic(err)
		}
		for v, pv := range probs {
			if pv == 0 {
				continue
			}
			if v == fakeEnd {
				out[fmt.Sprint(toks)] += p * pv
				continue
			}
			next := append(slices.Clone(toks), v)
			if len(next) == maxLen {
				out[fmt.Sprint(next)] += p * pv
				continue
			}
			rec(append(slices.Clone(seq), v), next, p*pv)
		}
	}
	rec([]int{fakeStart}, []int{}, 1)
	return out
}

// chiSquare returns Pearson's statistic of counts (n samples) against the
// probabilities want and its degrees of freedom, pooling the outcomes
// expected fewer than 5 times into one cell.
func chiSquare(counts map[string]int, want map[string]float64, n int) (float64, int) {
	for k := range counts {
		if want[k] == 0 {
			return float64(counts[k]) * 1e9, 1 // an impossible output
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var stat, poolE float64
	var poolO, cells int
	for _, k := range keys {
		e := want[k] * float64(n)
		if e < 5 {
			poolE += e
			poolO += counts[k]
			continue
		}
		d := float64(counts[k]) - e
		stat += d * d / e
		cells++
	}
	if poolE > 0 {
		d := float64(poolO) - poolE
		stat += d * d / poolE
		cells++
	}
	return stat, cells - 1
}

// TestSampledMatchesVerifierDistribution: sampled speculative decoding
// draws outputs from the verifier's own distribution (Leviathan et al.,
// Appendix A.1), in a batch whose rows advance together, with either kind
// of drafter and with temperature, top-k and top-p: Pearson's χ² of
// thousands of outputs per row against the exact distribution (by
// enumeration over a vocabulary of 3 tokens, outputs of at most 3) stays
// below its 0.999 quantile. The same test refuses the drafter's own
// distribution, so it can tell them apart.
func TestSampledMatchesVerifierDistribution(t *testing.T) {
	const (
		vocab   = 3 // tokens 0 and 1, and End = 2
		maxLen  = 3
		batches = 2500
	)
	vl := func(src, seq []int) []float64 {
		z := hashNormals(5, src, seq, vocab)
		z[fakeEnd] = z[fakeEnd]*0.5 - 0.5 + 0.3*float64(len(seq)-1)
		return z
	}
	verifier := fromLogits(vl)
	arDist := noisy(vl, 41, 1.5)
	cases := []drafterCase{narCase("nar", noisy(vl, 37, 1.5)), arCase("ar", arDist)}
	samplings := []decoding.Sampling{{Temperature: 1}, {Temperature: 0.6, TopK: 2}, {Temperature: 1.4, TopP: 0.8}}
	sources := [][]int{{0, 1}, {1}, {1, 1, 0}, {0}}
	ctx := t.Context()
	opt := harness.TranslateOptions{Start: fakeStart, End: fakeEnd, MaxLen: maxLen}
	for mi, mode := range modes[:2] {
		for ci, dc := range cases {
			for si, s := range samplings {
				for _, gamma := range []int{1, 2} {
					name := fmt.Sprintf("%s/%s/%+v/gamma=%d", mode.name, dc.name, s, gamma)
					rng := rand.New(rand.NewPCG(uint64(1000*mi+100*ci+10*si+gamma), 7))
					counts := make([]map[string]int, len(sources))
					for i := range counts {
						counts[i] = map[string]int{}
					}
					var accepted float64
					for range batches {
						dm, _ := dc.make(mode.rowDrafter)
						got, err := speculate(ctx, asVerifier(&fakeAR{dist: verifier}, mode.rowVerifier), dm, sources, opt, decodeParams{gamma: gamma, sampling: s, rng: rng})
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						for i, o := range got.Outputs {
							counts[i][fmt.Sprint(o)]++
						}
						accepted += got.Stats["tested_accepted"]
					}
					if accepted == 0 {
						t.Errorf("%s: no draft token was ever accepted; the test would not exercise acceptance", name)
					}
					var stat float64
					var df int
					var worse float64 // against the drafter's own distribution
					var worseDF int
					for i, src := range sources {
						st, d := chiSquare(counts[i], exactDist(verifier, src, s, maxLen), batches)
						stat, df = stat+st, df+d
						if dc.name == "ar" {
							st, d := chiSquare(counts[i], exactDist(arDist, src, s, maxLen), batches)
							worse, worseDF = worse+st, worseDF+d
						}
					}
					limit := distuv.ChiSquared{K: float64(df)}.Quantile(0.999)
					t.Logf("%s: χ² = %.1f, %d df, 0.999 quantile %.1f; %.0f accepted", name, stat, df, limit, accepted)
					if stat > limit {
						t.Errorf("%s: χ² = %.1f > %.1f (%d df, p < 0.001): the outputs are not the verifier's distribution", name, stat, limit, df)
					}
					if dc.name == "ar" {
						if l := (distuv.ChiSquared{K: float64(worseDF)}).Quantile(0.999); worse <= l {
							t.Errorf("%s: χ² against the drafter's distribution %.1f ≤ %.1f: the test cannot tell the two apart", name, worse, l)
						}
					}
				}
			}
		}
	}
}

// TestRowsDoNotWait: with a per-row verifier a batch takes about as many
// verifier passes as its slowest row alone, not the many more of the
// synchronous scheme, where every round all rows advance by the fewest
// tokens any of them accepted. An autoregressive drafter drafts every row
// on its own prefix, so a row's rounds do not depend on the batch and the
// counts are equal; the non-autoregressive one drafts the rows ahead of
// the shortest on a shorter prefix, so they may need a few more.
func TestRowsDoNotWait(t *testing.T) {
	const vocab = 7
	vl := verifierLogits(11, vocab, 2, 0.1)
	verifier := fromLogits(vl)
	ctx := t.Context()
	for _, tc := range []struct {
		dc    drafterCase
		slack int
	}{
		{arCase("ar-noisy", noisy(vl, 29, 1.0)), 0},
		{narCase("nar-noisy", noisy(vl, 23, 1.0)), 2},
	} {
		for _, gamma := range []int{2, 4} {
			rng := rand.New(rand.NewPCG(5, uint64(gamma)))
			sources := randomSources(rng, 24, vocab, 6)
			opt := harness.TranslateOptions{Start: fakeStart, End: fakeEnd, MaxLen: 30}
			run := func(src [][]int, rows bool) *harness.Translation {
				dm, _ := tc.dc.make(rows)
				got, err := speculate(ctx, asVerifier(&fakeAR{dist: verifier}, rows), dm, src, opt, decodeParams{gamma: gamma})
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			worst := 0
			for i := range sources {
				worst = max(worst, run(sources[i:i+1], true).Passes)
			}
			rows, sync := run(sources, true).Passes, run(sources, false).Passes
			name := fmt.Sprintf("%s/gamma=%d", tc.dc.name, gamma)
			t.Logf("%s: %d rows: %d verifier passes per row, %d synchronously; the slowest row alone %d", name, len(sources), rows, sync, worst)
			if rows > worst+tc.slack {
				t.Errorf("%s: the batch took %d verifier passes, its slowest row alone %d (slack %d)", name, rows, worst, tc.slack)
			}
			if sync <= worst {
				t.Errorf("%s: the synchronous batch took %d passes, no more than the slowest row alone (%d): the test does not tell the schemes apart", name, sync, worst)
			}
		}
	}
}
