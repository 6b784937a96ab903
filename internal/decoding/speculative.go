package decoding

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Sampling is how next tokens are chosen: the fields and their semantics are
// harness.GenOptions' (Temperature, TopK, TopP), and Probs/Sample compute
// exactly the distribution and the draw harness.Generate makes (tested).
type Sampling struct {
	// Temperature divides the log-probabilities before sampling; 0 selects
	// greedy decoding (Argmax), and then TopK and TopP are ignored.
	Temperature float64
	// TopK keeps only the K most probable tokens (lower id first on ties);
	// 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most probable tokens, after TopK, whose
	// mass reaches TopP (Holtzman et al. 2020, nucleus sampling), a mass
	// within relative 1e-6 counting as reaching it; 0 or 1 keeps all.
	TopP float64
}

// Greedy reports whether s selects greedy decoding (Temperature 0).
func (s Sampling) Greedy() bool { return s.Temperature == 0 }

// Validate reports what makes s unusable: a temperature that is negative
// or not finite, a negative TopK, a TopP outside [0, 1].
func (s Sampling) Validate() error {
	var errs []error
	if !(s.Temperature >= 0) || math.IsInf(s.Temperature, 0) {
		errs = append(errs, fmt.Errorf("temperature %v must be a finite number >= 0", s.Temperature))
	}
	if s.TopK < 0 {
		errs = append(errs, fmt.Errorf("top-k %d < 0", s.TopK))
	}
	if !(s.TopP >= 0 && s.TopP <= 1) {
		errs = append(errs, fmt.Errorf("top-p %v outside [0, 1]", s.TopP))
	}
	return errors.Join(errs...)
}

// Argmax returns the index of the largest value, the lowest on ties; NaN
// never wins (0 when every value is NaN). It is the greedy choice of every
// decoding in arbench (harness.Argmax is this function).
func Argmax(xs []float32) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] || (xs[best] != xs[best] && x == x) {
			best = i
		}
	}
	return best
}

// Probs returns the distribution that s samples from logp, one probability
// per token of the vocabulary: softmax(logp/Temperature) restricted to the
// TopK most probable tokens and then to the TopP nucleus, renormalised;
// filtered-out and impossible (−Inf) tokens get 0. Greedy s gives the point
// mass on Argmax(logp). logp must be finite somewhere and hold no NaN or
// +Inf.
func Probs(logp []float32, s Sampling) ([]float64, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if p := LogProbsProblem(logp); p != "" {
		return nil, errors.New(p)
	}
	out := make([]float64, len(logp))
	if s.Greedy() {
		out[Argmax(logp)] = 1
		return out, nil
	}
	d := filter(logp, s)
	for k, v := range d.ids {
		out[v] = d.probs[k]
	}
	return out, nil
}

// Sample draws a token from Probs(logp, s) with one rng.Float64() (none when
// s is greedy: Argmax), walking the kept tokens from the most probable, so
// that with the same generator state it returns what harness.Generate
// would (tested). A drafter whose proposals Verify tests must draw them
// with Sample (or from Probs) under the Sampling given to Verify.
func Sample(logp []float32, s Sampling, rng *rand.Rand) (int, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if p := LogProbsProblem(logp); p != "" {
		return 0, errors.New(p)
	}
	if s.Greedy() {
		return Argmax(logp), nil
	}
	if rng == nil {
		return 0, errors.New("sampling needs a random generator")
	}
	return filter(logp, s).draw(rng), nil
}

// dist is a filtered distribution: the kept tokens, most probable first
// (lower id on ties), and their probabilities, summing to 1.
type dist struct {
	ids   []int
	probs []float64
}

// filter is Filter for logp that LogProbsProblem accepted, for which
// Filter cannot fail (the most probable token weighs 1).
func filter(logp []float32, s Sampling) dist {
	ids, probs, err := Filter(logp, s, nil, nil)
	if err != nil {
		panic("decoding: filter of unchecked log-probabilities: " + err.Error())
	}
	return dist{ids, probs}
}

// Filter returns the tokens a non-greedy s samples from, most probable
// first (lower id on ties), and their renormalised probabilities: the
// weights exp((x − max)/T) over the finite entries, cut to TopK, then to
// the TopP nucleus (in that order, as Hugging Face's generate applies
// them). It is the one sampling filter of arbench (harness.Generate's
// sampler uses it). ids and probs are buffers to reuse (nil allocates).
//
// The weights are exp((x − max)/T), never exp(x/T − max/T): with a tiny T
// both terms of the latter overflow to −Inf and their difference is NaN.
// The most probable token weighs exp(0) = 1 whatever T and every other
// token a weight in [0, 1], so the total is at least 1 for log-probabilities
// LogProbsProblem accepts; it is checked all the same.
func Filter(logp []float32, s Sampling, ids []int, probs []float64) ([]int, []float64, error) {
	ids = ids[:0]
	mx := math.Inf(-1)
	for v, lp := range logp {
		x := float64(lp)
		if math.IsInf(x, -1) {
			continue // an impossible token
		}
		ids = append(ids, v)
		mx = math.Max(mx, x)
	}
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("no finite log-probability among %d tokens", len(logp))
	}
	probs = probs[:0]
	for _, v := range ids {
		probs = append(probs, math.Exp((float64(logp[v])-mx)/s.Temperature))
	}
	sort.Sort(byProb{ids, probs})
	n := len(ids)
	if s.TopK > 0 && s.TopK < n {
		n = s.TopK
	}
	total := sum(probs[:n])
	if s.TopP > 0 && s.TopP < 1 {
		// The inputs are float32, so a mass within float32 rounding of p
		// (relative 1e-6) counts as reaching it.
		var cum float64
		for k, p := range probs[:n] {
			cum += p
			if cum >= s.TopP*total*(1-1e-6) {
				n = k + 1
				break
			}
		}
		total = sum(probs[:n])
	}
	if !(total > 0) || math.IsInf(total, 1) {
		return nil, nil, fmt.Errorf("sampling weights at temperature %v sum to %v (log-probabilities with NaN or +Inf?)", s.Temperature, total)
	}
	ids, probs = ids[:n], probs[:n]
	for k := range probs {
		probs[k] /= total
	}
	return ids, probs, nil
}

func sum(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// byProb sorts parallel ids and probabilities, most probable first, lower
// id on ties.
type byProb struct {
	ids   []int
	probs []float64
}

func (b byProb) Len() int { return len(b.ids) }
func (b byProb) Less(i, j int) bool {
	if b.probs[i] != b.probs[j] {
		return b.probs[i] > b.probs[j]
	}
	return b.ids[i] < b.ids[j]
}
func (b byProb) Swap(i, j int) {
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
	b.probs[i], b.probs[j] = b.probs[j], b.probs[i]
}

// draw picks a token with one rng.Float64().
func (d dist) draw(rng *rand.Rand) int {
	u := rng.Float64()
	var acc float64
	for k, p := range d.probs {
		acc += p
		if u < acc {
			return d.ids[k]
		}
	}
	return d.ids[len(d.ids)-1] // rounding: acc fell just short of 1
}

// dense returns d as one probability per token of a vocabulary of n.
func (d dist) dense(n int) []float64 {
	out := make([]float64, n)
	for k, v := range d.ids {
		out[v] = d.probs[k]
	}
	return out
}

// Outcome is the result of one speculative step.
type Outcome struct {
	// Drafted is γ, the number of draft tokens tested against.
	Drafted int
	// Accepted is the number of draft tokens accepted, 0..γ: the longest
	// accepted prefix of the draft.
	Accepted int
	// Tokens are the tokens the step emits: the Accepted draft tokens, then
	// one token from the verifier, the replacement of the first rejected
	// draft token or, when all γ were accepted, the bonus token. So
	// len(Tokens) = Accepted+1 always: a step costs one verifier pass and
	// emits between 1 and γ+1 tokens.
	Tokens []int
}

// Tested returns how many draft tokens went through the acceptance test:
// every one up to and including the first rejection, min(Accepted+1, γ).
// Summed over steps, accepted/tested estimates the acceptance rate α of
// Leviathan et al. (Sec. 3.1), which ExpectedAcceptance gives for one pair
// of distributions.
func (o Outcome) Tested() int { return min(o.Accepted+1, o.Drafted) }

// Verify is the acceptance step of speculative decoding (Leviathan et al.
// 2023, Algorithm 1; Chen et al. 2023, Algorithm 2). The drafter proposed
// draft = x_1..x_γ, drawing x_i from its distribution q_i (given as the
// log-probabilities q[i], which may depend on the prefix and on x_1..x_{i−1},
// or not at all, as for a non-autoregressive drafter), and the verifier's
// one pass over prefix+draft gave p[i] = log p_i for i = 1..γ+1 (p_i is its
// next-token distribution after x_1..x_{i−1}). With p'_i and q'_i the
// distributions that s samples (Probs: the same temperature, top-k and
// top-p filtering applied to both),
//
//	accept x_i, for i = 1, 2, … in turn, with probability min(1, p'_i(x_i)/q'_i(x_i));
//	at the first rejection, emit y ~ normalize(max(0, p'_i − q'_i)) and stop;
//	if all γ are accepted, emit a bonus token y ~ p'_{γ+1}.
//
// If the drafter drew x_i from q'_i, every emitted token is distributed
// exactly as p'_i given the tokens before it (Leviathan et al., Appendix
// A.1): the output has the verifier's own sampling distribution under s,
// whatever the drafter, and a draft token is accepted with probability
// α_i = Σ_v min(p'_i(v), q'_i(v)). Temperature, top-k and top-p are each
// plain sampling from an adjusted distribution (Leviathan et al., Sec. 2.2),
// which is why adjusting both p and q keeps the method exact; the
// adjustment must be the one the drafter sampled with: draw drafts with
// Sample(q[i], s, rng).
//
// Two degenerate cases are handled:
//
//   - q'_i(x_i) = 0: x_i cannot have been drawn from q'_i (a drafter that
//     did not sample under s; with one that did, this has probability 0).
//     It is rejected and the emitted token is drawn from p'_i itself, the
//     verifier's own choice at that position; no rule can make the output
//     exact for a drafter that does not sample from q'.
//   - max(0, p'_i − q'_i) is zero everywhere (p'_i = q'_i up to rounding,
//     when a rejection has probability 0 or only rounding made one): the
//     emitted token is drawn from p'_i.
//
// Greedy s (Temperature 0) accepts x_i while x_i = Argmax(p[i]) and then
// emits Argmax(p[i]) at the first mismatch, or Argmax(p[γ+1]) as the bonus,
// so the emitted tokens are exactly the verifier's greedy continuation,
// whatever the drafter proposed; q is not read (it may be nil) and neither
// is rng. (This is the sampled rule with p'_i the point mass on
// Argmax(p[i]), Sec. 2.2's argmax, and q'_i the point mass on x_i: the
// ratio is 1 or 0, and max(0, p'_i − q'_i) is p'_i.)
//
// rng drives the sampled tests and draws (one Float64 per test and one per
// emitted verifier token). γ = 0 is allowed: the step then draws one token
// from p'_1 as Sample would. Every row of p (and of q, when sampling) must
// be a distribution of log-probabilities over the same vocabulary: no NaN
// or +Inf, some entry finite.
func Verify(draft []int, q, p [][]float32, s Sampling, rng *rand.Rand) (Outcome, error) {
	if err := checkVerify(draft, q, p, s, rng); err != nil {
		return Outcome{}, fmt.Errorf("speculative: %w", err)
	}
	gamma := len(draft)
	out := Outcome{Drafted: gamma, Tokens: make([]int, 0, gamma+1)}
	if s.Greedy() {
		for i, x := range draft {
			if best := Argmax(p[i]); x != best {
				out.Tokens = append(out.Tokens, best)
				return out, nil
			}
			out.Tokens = append(out.Tokens, x)
			out.Accepted++
		}
		out.Tokens = append(out.Tokens, Argmax(p[gamma]))
		return out, nil
	}
	vocab := len(p[0])
	for i, x := range draft {
		pd, qd := filter(p[i], s), filter(q[i], s)
		pi, qi := pd.dense(vocab), qd.dense(vocab)
		if qi[x] == 0 {
			out.Tokens = append(out.Tokens, pd.draw(rng))
			return out, nil
		}
		if rng.Float64() < pi[x]/qi[x] {
			out.Tokens = append(out.Tokens, x)
			out.Accepted++
			continue
		}
		out.Tokens = append(out.Tokens, residualDraw(pi, qi, pd, rng))
		return out, nil
	}
	out.Tokens = append(out.Tokens, filter(p[gamma], s).draw(rng))
	return out, nil
}

// residualDraw draws from normalize(max(0, p − q)), walking tokens in id
// order, or from pd (the distribution p, sorted) when that is zero
// everywhere.
func residualDraw(p, q []float64, pd dist, rng *rand.Rand) int {
	var total float64
	last := -1
	for v := range p {
		if r := p[v] - q[v]; r > 0 {
			total += r
			last = v
		}
	}
	if !(total > 0) {
		return pd.draw(rng)
	}
	u := rng.Float64() * total
	var acc float64
	for v := range p {
		if r := p[v] - q[v]; r > 0 {
			acc += r
			if u < acc {
				return v
			}
		}
	}
	return last // rounding: acc fell just short of total
}

// checkVerify validates Verify's arguments.
func checkVerify(draft []int, q, p [][]float32, s Sampling, rng *rand.Rand) error {
	if err := s.Validate(); err != nil {
		return err
	}
	gamma := len(draft)
	if len(p) != gamma+1 {
		return fmt.Errorf("%d verifier distributions for %d draft tokens, want %d", len(p), gamma, gamma+1)
	}
	vocab := len(p[0])
	for i, row := range p {
		if len(row) != vocab {
			return fmt.Errorf("verifier distribution %d has %d tokens, distribution 0 has %d", i+1, len(row), vocab)
		}
		if prob := LogProbsProblem(row); prob != "" {
			return fmt.Errorf("verifier distribution %d: %s", i+1, prob)
		}
	}
	for i, x := range draft {
		if x < 0 || x >= vocab {
			return fmt.Errorf("draft token %d is %d, outside the vocabulary of %d", i+1, x, vocab)
		}
	}
	if s.Greedy() {
		return nil
	}
	if rng == nil {
		return errors.New("sampling needs a random generator")
	}
	if len(q) != gamma {
		return fmt.Errorf("%d draft distributions for %d draft tokens", len(q), gamma)
	}
	for i, row := range q {
		if len(row) != vocab {
			return fmt.Errorf("draft distribution %d has %d tokens, the verifier's %d", i+1, len(row), vocab)
		}
		if prob := LogProbsProblem(row); prob != "" {
			return fmt.Errorf("draft distribution %d: %s", i+1, prob)
		}
	}
	return nil
}

// ExpectedAcceptance returns α = Σ_v min(p(v), q(v)) = 1 − TV(p, q), the
// probability that speculative sampling accepts a draft token drawn from q
// when the verifier's distribution is p (Leviathan et al., Sec. 3.2: β =
// 1 − D_LK(p, q) = Σ min(p, q)); p and q are probabilities (Probs), not
// logarithms.
func ExpectedAcceptance(p, q []float64) float64 {
	var a float64
	for v := range min(len(p), len(q)) {
		a += math.Min(p[v], q[v])
	}
	return a
}

// ExpectedTokens returns the expected number of tokens one speculative step
// emits when every draft token is accepted independently with probability
// alpha (Leviathan et al., Equation 1): (1 − α^(γ+1)) / (1 − α), which is
// γ+1 at α = 1 and 1 at α = 0.
func ExpectedTokens(alpha float64, gamma int) float64 {
	if alpha >= 1 {
		return float64(gamma + 1)
	}
	return (1 - math.Pow(alpha, float64(gamma+1))) / (1 - alpha)
}

// logProbsProblem describes what makes logp not a distribution of
// log-probabilities ("" when nothing): no entries, a NaN or +Inf entry, or
// no finite entry (harness.Decoder's rule; −Inf entries are impossible
// tokens).
func LogProbsProblem(logp []float32) string {
	finite := false
	for v, x := range logp {
		switch {
		case x != x:
			return fmt.Sprintf("NaN at token %d", v)
		case x > math.MaxFloat32:
			return fmt.Sprintf("+Inf at token %d", v)
		case x >= -math.MaxFloat32:
			finite = true
		}
	}
	if !finite {
		return fmt.Sprintf("no finite entry among %d tokens", len(logp))
	}
	return ""
}
