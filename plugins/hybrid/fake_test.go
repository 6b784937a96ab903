package hybrid

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
)

// The fakes' token layout: Start is fed first, End ends an output.
const (
	fakeStart = 1
	fakeEnd   = 2
)

// distFn is a fake model: the next-token log-probabilities after seq (the
// start token, then the tokens decoded so far) given the source src.
type distFn func(src, seq []int) []float32

// hashNormals returns vocab standard normals seeded by a hash of (salt,
// src, seq): a deterministic "network" of (source, prefix).
func hashNormals(salt uint64, src, seq []int, vocab int) []float64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(x uint64) {
		binary.LittleEndian.PutUint64(b[:], x)
		h.Write(b[:])
	}
	put(salt)
	for _, t := range src {
		put(uint64(t))
	}
	put(math.MaxUint64)
	for _, t := range seq {
		put(uint64(t))
	}
	rng := rand.New(rand.NewPCG(h.Sum64(), salt))
	z := make([]float64, vocab)
	for v := range z {
		z[v] = rng.NormFloat64()
	}
	return z
}

func logSoftmax(logits []float64) []float32 {
	mx := slices.Max(logits)
	var s float64
	for _, x := range logits {
		s += math.Exp(x - mx)
	}
	out := make([]float32, len(logits))
	for v, x := range logits {
		out[v] = float32(x - mx - math.Log(s))
	}
	return out
}

// verifierLogits are scale·z(salt) with End's logit raised by ramp per
// decoded token, so outputs end.
func verifierLogits(salt uint64, vocab int, scale, ramp float64) func(src, seq []int) []float64 {
	return func(src, seq []int) []float64 {
		z := hashNormals(salt, src, seq, vocab)
		for v := range z {
			z[v] *= scale
		}
		z[fakeEnd] += ramp * float64(len(seq)-1)
		return z
	}
}

// fromLogits turns logits into a distFn.
func fromLogits(f func(src, seq []int) []float64) distFn {
	return func(src, seq []int) []float32 { return logSoftmax(f(src, seq)) }
}

// noisy is f plus noise·z(salt): a drafter correlated with f.
func noisy(f func(src, seq []int) []float64, salt uint64, noise float64) distFn {
	return func(src, seq []int) []float32 {
		x := f(src, seq)
		z := hashNormals(salt, src, seq, len(x))
		for v := range x {
			x[v] += noise * z[v]
		}
		return logSoftmax(x)
	}
}

// negated is −f: its greedy token is f's least probable one.
func negated(f func(src, seq []int) []float64) distFn {
	return func(src, seq []int) []float32 {
		x := f(src, seq)
		for v := range x {
			x[v] = -x[v]
		}
		return logSoftmax(x)
	}
}

// fakeConfig is the fakes' empty configuration.
type fakeConfig struct{}

func (*fakeConfig) Validate() []error { return nil }

// fakeAR is a conditional autoregressive fake (harness.Model,
// SourceStepper, encdec.RowVerifier) over dist, recording its passes and
// the longest state it held; it refuses what a real RowVerifier refuses.
type fakeAR struct {
	dist   distFn
	calls  int
	maxLen int
}

var (
	_ verifierModel       = (*fakeAR)(nil)
	_ encdec.RowVerifier  = (*fakeAR)(nil)
	_ harness.Conditioner = (*fakeAR)(nil)
)

// syncOnly hides a fake's RewindRows: a Verifier whose rows advance
// together.
type syncOnly struct{ verifierModel }

type fakeState struct {
	owner *fakeAR
	src   [][]int
	seq   [][]int
}

// Len is the longest row's length.
func (s *fakeState) Len() int {
	n := 0
	for _, r := range s.seq {
		n = max(n, len(r))
	}
	return n
}

func (f *fakeAR) Config() harness.Config                   { return &fakeConfig{} }
func (f *fakeAR) Setup(context.Context, harness.Env) error { return nil }
func (f *fakeAR) Params() *nn.ParamSet                     { return nil }
func (f *fakeAR) Info() harness.ModelInfo                  { return harness.ModelInfo{Family: "fake-ar"} }
func (f *fakeAR) Conditional() bool                        { return true }
func (f *fakeAR) Gradients(context.Context, harness.Batch, uint64) (float64, error) {
	return 1, nil
}
func (f *fakeAR) LogProbs(_ context.Context, b harness.Batch) ([][]float64, error) {
	out := make([][]float64, len(b.Targets))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
	}
	return out, nil
}

func (f *fakeAR) StartSource(_ context.Context, sources, prompts [][]int) (harness.State, [][]float32, error) {
	if len(sources) != len(prompts) || len(sources) == 0 {
		return nil, nil, fmt.Errorf("fake: %d sources, %d prompts", len(sources), len(prompts))
	}
	st := &fakeState{owner: f, src: sources, seq: make([][]int, len(prompts))}
	out := make([][]float32, len(prompts))
	for i, p := range prompts {
		if len(p) != len(prompts[0]) || len(p) == 0 {
			return nil, nil, fmt.Errorf("fake: unequal or empty prompts")
		}
		st.seq[i] = slices.Clone(p)
		out[i] = f.dist(sources[i], st.seq[i])
	}
	f.calls++
	f.maxLen = max(f.maxLen, st.Len())
	return st, out, nil
}

func (f *fakeAR) state(s harness.State) (*fakeState, error) {
	st, ok := s.(*fakeState)
	if !ok || st.owner != f {
		return nil, fmt.Errorf("fake: foreign state %T", s)
	}
	return st, nil
}

func (f *fakeAR) Step(ctx context.Context, s harness.State, tokens []int) ([][]float32, error) {
	rows := make([][]int, len(tokens))
	for i, t := range tokens {
		rows[i] = []int{t}
	}
	out, err := f.StepN(ctx, s, rows)
	if err != nil {
		return nil, err
	}
	next := make([][]float32, len(out))
	for i := range out {
		next[i] = out[i][0]
	}
	return next, nil
}

func (f *fakeAR) StepN(_ context.Context, s harness.State, tokens [][]int) ([][][]float32, error) {
	st, err := f.state(s)
	if err != nil {
		return nil, err
	}
	if len(tokens) != len(st.seq) {
		return nil, fmt.Errorf("fake: %d token rows for %d", len(tokens), len(st.seq))
	}
	k := len(tokens[0])
	out := make([][][]float32, len(tokens))
	for i, row := range tokens {
		if len(row) != k || k == 0 {
			return nil, fmt.Errorf("fake: rows of %d and %d tokens", len(row), k)
		}
		for _, t := range row {
			st.seq[i] = append(st.seq[i], t)
			out[i] = append(out[i], f.dist(st.src[i], st.seq[i]))
		}
	}
	f.calls++
	f.maxLen = max(f.maxLen, st.Len())
	return out, nil
}

func (f *fakeAR) Rewind(s harness.State, n int) error {
	st, err := f.state(s)
	if err != nil {
		return err
	}
	for i := range st.seq {
		if n <= 0 || n > len(st.seq[i]) {
			return fmt.Errorf("fake: Rewind to %d of row %d's %d tokens", n, i, len(st.seq[i]))
		}
	}
	for i := range st.seq {
		st.seq[i] = st.seq[i][:n]
	}
	return nil
}

func (f *fakeAR) RewindRows(s harness.State, n []int) error {
	st, err := f.state(s)
	if err != nil {
		return err
	}
	if len(n) != len(st.seq) {
		return fmt.Errorf("fake: RewindRows of %d rows given %d lengths", len(st.seq), len(n))
	}
	for i := range st.seq {
		if n[i] <= 0 || n[i] > len(st.seq[i]) {
			return fmt.Errorf("fake: RewindRows row %d to %d of %d tokens", i, n[i], len(st.seq[i]))
		}
	}
	for i := range st.seq {
		st.seq[i] = st.seq[i][:n[i]]
	}
	return nil
}

// fakeNAR is a non-autoregressive fake (encdec.Proposer): at target
// position P+j it proposes dist after the prefix and dist's own greedy
// chain of j tokens, a function of the prefix only, as a CMLM's one pass
// is.
type fakeNAR struct {
	dist  distFn
	calls int
}

var _ encdec.Proposer = (*fakeNAR)(nil)

type fakeDraft struct{ src [][]int }

func (d *fakeDraft) Rows() int { return len(d.src) }

func (f *fakeNAR) StartDraft(_ context.Context, sources [][]int) (encdec.DraftState, error) {
	return &fakeDraft{sources}, nil
}

func (f *fakeNAR) Propose(_ context.Context, st encdec.DraftState, prefixes [][]int, gamma int) ([][][]float32, error) {
	d := st.(*fakeDraft)
	if len(prefixes) != d.Rows() || gamma < 1 {
		return nil, fmt.Errorf("fake: %d prefixes for %d rows, gamma %d", len(prefixes), d.Rows(), gamma)
	}
	out := make([][][]float32, len(prefixes))
	for i, p := range prefixes {
		if len(p) != len(prefixes[0]) {
			return nil, fmt.Errorf("fake: unequal prefixes")
		}
		seq := append([]int{fakeStart}, p...)
		for range gamma {
			q := f.dist(d.src[i], seq)
			out[i] = append(out[i], q)
			seq = append(seq, argmax(q))
		}
	}
	f.calls++
	return out, nil
}

func argmax(xs []float32) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}

// randomSources returns B sources of 1..maxLen tokens in [3, vocab).
func randomSources(rng *rand.Rand, B, vocab, maxLen int) [][]int {
	out := make([][]int, B)
	for i := range out {
		out[i] = make([]int, 1+rng.IntN(maxLen))
		for j := range out[i] {
			out[i][j] = 3 + rng.IntN(vocab-3)
		}
	}
	return out
}
