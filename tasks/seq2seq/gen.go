// Package seq2seq is arbench's family of generated sequence-to-sequence
// tasks ("seq2seq/VARIANT", issue 10), built to compare autoregressive,
// non-autoregressive and hybrid decoders on quality and speed: generators
// of (source, target) pairs for conditional models, made from the run's
// seed (nothing is downloaded), and the harness Task over them (Task: see
// TaskConfig, TrainBatch, ValidLoss and Evaluate). Models read the source
// as harness.BatchFor, harness.ScoreBatch and harness.Translate decide (a
// Conditioner, or a decoder-only language model in its joined mode).
//
// # Vocabulary
//
// One layout serves every variant; the vocabulary size is FirstSymbol plus
// the content alphabet (Config.Vocab):
//
//	0 Pad    pads sources and decoder inputs; never in an example, never a target
//	1 BOS    starts the decoder input; the separator between source and target
//	         for decoder-only models
//	2 EOS    ends every target
//	3 Noise  marks the next source token as noise (copy-noisy)
//	4 Plus   the '+' between add's operands
//	5 Mask   reserved for mask-predict decoders ([MASK]); never in the data
//	6...     content symbols: FirstSymbol+i for i < symbols (add: the digit i)
//
// Examples hold content only (Source and Target carry no BOS, EOS or Pad);
// PadBatch and PadJoined frame them.
//
// # Variants
//
// Each source length L is drawn uniformly from [min_len, max_len], each
// symbol uniformly from the alphabet.
//
//   - reverse: target = source reversed.
//   - sort: target = source sorted ascending (a permutation of the source).
//   - copy-noisy: the source holds k ≥ 1 noise markers, each followed by a
//     noise symbol (k = 1 + Binomial(floor((L−1)/2) − 1, noise_rate), the
//     2k noise tokens and the L−2k kept symbols in a uniformly random
//     order); the target is the source with every marker and the symbol
//     after it dropped, so it is 2k tokens shorter. L counts markers.
//   - add: source "a+b", the digits of a, Plus, the digits of b; target the
//     digits of a+b. Digits are written most significant first, as people
//     write them, with no leading zero (0 itself is the digit 0): so the
//     first target digit depends on the carry out of every lower position,
//     which a left-to-right decoder has to anticipate. The digit counts of
//     a and b are drawn independently from [min_len, max_len]; the target
//     has max(len a, len b) digits or one more.
//   - multimodal: source of L ≥ 2 symbols, never a palindrome; its two
//     valid targets are the source itself and its reverse (Example.Valid, in
//     that order), and each example's Target is one of them with
//     probability 1/2. A model that picks every position independently
//     mixes the two and matches neither.
//
// # Splits
//
// A source's split is decided by its tokens alone: FNV-1a (64 bit, over
// each token as 4 little-endian bytes) mod split_buckets is 0 for test, 1
// for validation and anything else for training (SplitOf). The training
// stream rejects validation and test sources, so the fixed validation and
// test sets (distinct sources each) never occur in training. A
// configuration whose possible sources cannot fill the sets is a
// configuration error that names the count (Config.ValidateVariant).
package seq2seq

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"arbench/harness"
	"arbench/internal/split"
)

// The vocabulary layout (see the package documentation).
const (
	Pad         = 0
	BOS         = 1
	EOS         = 2
	Noise       = 3
	Plus        = 4
	Mask        = 5
	FirstSymbol = 6
)

// IgnoreTarget pads target rows: a negative target is not scored
// (harness.Batch).
const IgnoreTarget = -1

// Example is one source with its target, content tokens only.
type Example struct {
	Source []int
	// Target is the target to train on (multimodal: the one drawn).
	Target []int
	// Valid lists every valid target when there is more than one
	// (multimodal: the source itself, then its reverse); nil otherwise.
	Valid [][]int
}

// ValidTargets lists every valid target of the example: Valid when set,
// else the single Target. Metrics count an output as an exact match when
// it equals one of them.
func (e Example) ValidTargets() [][]int {
	if e.Valid != nil {
		return e.Valid
	}
	return [][]int{e.Target}
}

// Match returns the index in ValidTargets of the target out equals, or −1
// when it equals none (for multimodal: the modes are mixed, or it is
// wrong otherwise).
func (e Example) Match(out []int) int {
	for i, t := range e.ValidTargets() {
		if slices.Equal(out, t) {
			return i
		}
	}
	return -1
}

// Split is one of the three disjoint parts of the source space.
type Split = split.Split

// The splits.
const (
	Train = split.Train
	Valid = split.Valid
	Test  = split.Test
)

// SplitOf returns the split of a source: FNV-1a 64 of its tokens (each as
// 4 little-endian bytes) mod buckets is 0 for Test, 1 for Valid and
// anything else for Train.
func SplitOf(src []int, buckets int) Split {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, t := range src {
		u := uint32(t)
		for range 4 {
			h ^= uint64(u & 0xff)
			h *= prime
			u >>= 8
		}
	}
	return split.Of(h, buckets)
}

// Random streams derived from the seed (the PCG's second word).
const (
	trainStream = 0x733273747261696e // "s2strain"
	validStream = 0x73327376616c6964 // "s2svalid"
	testStream  = 0x73327374657374   // "s2stest"
)

// Bounds on rejection sampling; a valid configuration stays far below them
// (see Fixed and Train).
const (
	maxTrainRejections = 1 << 20
	fixedDrawsPerRow   = 64
	fixedDrawsSlack    = 1 << 20
)

// Generator draws the examples of one variant.
type Generator struct {
	cfg     Config
	variant string
	sources SourceCount
}

// NewGenerator checks cfg for variant (Config.ValidateVariant, all
// problems joined) and returns its generator.
func NewGenerator(cfg Config, variant string) (*Generator, error) {
	if errs := cfg.check(variant); len(errs) > 0 {
		return nil, fmt.Errorf("seq2seq/%s: invalid config: %w", variant, errors.Join(errs...))
	}
	s := cfg.sources(variant)
	if errs := cfg.sizeErrors(variant, s); len(errs) > 0 {
		return nil, fmt.Errorf("seq2seq/%s: invalid config: %w", variant, errors.Join(errs...))
	}
	return &Generator{cfg: cfg, variant: variant, sources: s}, nil
}

// Variant returns the generator's variant.
func (g *Generator) Variant() string { return g.variant }

// Config returns the generator's configuration.
func (g *Generator) Config() Config { return g.cfg }

// Vocab returns the vocabulary size (Config.Vocab).
func (g *Generator) Vocab() int { return g.cfg.Vocab(g.variant) }

// Sources returns the number of distinct sources, in total and per split.
func (g *Generator) Sources() SourceCount { return g.sources }

// MaxLens returns the longest source and the longest target (content
// tokens, without BOS or EOS).
func (g *Generator) MaxLens() (source, target int) {
	n := g.cfg.MaxLen
	switch g.variant {
	case "copy-noisy":
		return n, n - 2
	case "add":
		return 2*n + 1, n + 1
	}
	return n, n
}

// Sample draws one example from the variant's distribution, whatever its
// split.
func (g *Generator) Sample(rng *rand.Rand) Example {
	c := &g.cfg
	L := c.MinLen + rng.IntN(c.MaxLen-c.MinLen+1)
	switch g.variant {
	case "reverse":
		src := symbols(rng, c.Symbols, L)
		tgt := slices.Clone(src)
		slices.Reverse(tgt)
		return Example{Source: src, Target: tgt}
	case "sort":
		src := symbols(rng, c.Symbols, L)
		tgt := slices.Clone(src)
		slices.Sort(tgt)
		return Example{Source: src, Target: tgt}
	case "copy-noisy":
		return genCopyNoisy(rng, c.Symbols, L, c.NoiseRate)
	case "add":
		return genAdd(rng, c.MinLen, c.MaxLen)
	case "multimodal":
		src := symbols(rng, c.Symbols, L)
		for isPalindrome(src) { // at most half of the sources (L ≥ 2, symbols ≥ 2)
			src = symbols(rng, c.Symbols, L)
		}
		rev := slices.Clone(src)
		slices.Reverse(rev)
		valid := [][]int{slices.Clone(src), rev}
		return Example{Source: src, Target: slices.Clone(valid[rng.IntN(2)]), Valid: valid}
	}
	panic("seq2seq: generator of unknown variant " + g.variant)
}

// Train draws one training example: Sample until the source falls in the
// train split. NewGenerator accepts only configurations whose draws fall
// in the train split with probability at least MinTrainProb
// (SourceCount.TrainProb), so the panic after 2^20 rejections in a row is
// unreachable (chance below e^−1000 per example); it guards against a
// broken invariant, not a configuration.
func (g *Generator) Train(rng *rand.Rand) Example {
	for range maxTrainRejections {
		if e := g.Sample(rng); SplitOf(e.Source, g.cfg.SplitBuckets) == Train {
			return e
		}
	}
	panic(fmt.Sprintf("seq2seq/%s: %d draws in a row fell outside the train split (%d of %d distinct sources are in it); widen the lengths or the alphabet",
		g.variant, maxTrainRejections, g.sources.Split[Train], g.sources.Total))
}

// Stream is the endless training stream of a seed.
type Stream struct {
	g   *Generator
	rng *rand.Rand
}

// TrainStream returns the training stream of seed: the same seed gives
// the same examples.
func (g *Generator) TrainStream(seed uint64) *Stream {
	return &Stream{g: g, rng: rand.New(rand.NewPCG(seed, trainStream))}
}

// Next returns the stream's next training example.
func (s *Stream) Next() Example { return s.g.Train(s.rng) }

// Fixed returns the fixed set of split Valid (valid_rows examples) or
// Test (test_rows) for seed: distinct sources of that split, in the order
// drawn from the variant's distribution (a source drawn twice is kept
// once). It fails after 64 draws per row plus 2^20, which a configuration
// accepted by NewGenerator reaches only when the split's sources are very
// improbable (an extreme noise_rate on a tiny space).
func (g *Generator) Fixed(seed uint64, split Split) ([]Example, error) {
	var rows int
	var rng *rand.Rand
	switch split {
	case Valid:
		rows, rng = g.cfg.ValidRows, rand.New(rand.NewPCG(seed, validStream))
	case Test:
		rows, rng = g.cfg.TestRows, rand.New(rand.NewPCG(seed, testStream))
	default:
		return nil, fmt.Errorf("seq2seq: no fixed set of split %s (training is a stream)", split)
	}
	out := make([]Example, 0, rows)
	seen := map[string]bool{}
	budget := fixedDrawsPerRow*g.cfg.SplitBuckets*rows + fixedDrawsSlack
	for range budget {
		e := g.Sample(rng)
		if SplitOf(e.Source, g.cfg.SplitBuckets) != split {
			continue
		}
		k := key(e.Source)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
		if len(out) == rows {
			return out, nil
		}
	}
	return nil, fmt.Errorf("seq2seq/%s: %s set: %d draws found only %d of the %d distinct sources asked for (%d fall in the split); they are too improbable under this configuration: ask for fewer rows or widen the lengths",
		g.variant, split, budget, len(out), rows, g.sources.Split[split])
}

// key is a map key for a token sequence.
func key(src []int) string {
	b := make([]byte, 0, 4*len(src))
	for _, t := range src {
		b = append(b, byte(t), byte(t>>8), byte(t>>16), byte(t>>24))
	}
	return string(b)
}

// symbols returns L symbols drawn uniformly from S.
func symbols(rng *rand.Rand, S, L int) []int {
	s := make([]int, L)
	for i := range s {
		s[i] = FirstSymbol + rng.IntN(S)
	}
	return s
}

func isPalindrome(s []int) bool {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		if s[i] != s[j] {
			return false
		}
	}
	return true
}

// genCopyNoisy draws a copy-noisy example of L ≥ 3 source tokens: k marked
// noise symbols ([Noise, s], dropped) and L−2k kept symbols, in random
// order.
func genCopyNoisy(rng *rand.Rand, S, L int, p float64) Example {
	maxK := (L - 1) / 2
	k := 1
	for range maxK - 1 {
		if rng.Float64() < p {
			k++
		}
	}
	units := L - k // k noise units and L−2k kept ones
	noise := make([]bool, units)
	for _, i := range rng.Perm(units)[:k] {
		noise[i] = true
	}
	e := Example{Source: make([]int, 0, L), Target: make([]int, 0, L-2*k)}
	for _, isNoise := range noise {
		s := FirstSymbol + rng.IntN(S)
		if isNoise {
			e.Source = append(e.Source, Noise, s)
			continue
		}
		e.Source = append(e.Source, s)
		e.Target = append(e.Target, s)
	}
	return e
}

// genAdd draws an add example with operands of min..max digits.
func genAdd(rng *rand.Rand, minDigits, maxDigits int) Example {
	operand := func() []int {
		d := minDigits + rng.IntN(maxDigits-minDigits+1)
		x := make([]int, d)
		for i := range x {
			x[i] = rng.IntN(10)
		}
		if d > 1 {
			x[0] = 1 + rng.IntN(9)
		}
		return x
	}
	a, b := operand(), operand()
	src := make([]int, 0, len(a)+len(b)+1)
	for _, d := range a {
		src = append(src, FirstSymbol+d)
	}
	src = append(src, Plus)
	for _, d := range b {
		src = append(src, FirstSymbol+d)
	}
	sum := AddDigits(a, b)
	for i := range sum {
		sum[i] += FirstSymbol
	}
	return Example{Source: src, Target: sum}
}

// AddDigits returns the digits of a+b, most significant first, for digits
// a and b (0..9, most significant first). The sum has no leading zero
// unless it is 0 and the operands are.
func AddDigits(a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n+1)
	carry := 0
	for i := 1; i <= n; i++ {
		s := carry
		if i <= len(a) {
			s += a[len(a)-i]
		}
		if i <= len(b) {
			s += b[len(b)-i]
		}
		out[n+1-i], carry = s%10, s/10
	}
	out[0] = carry
	if out[0] == 0 && n > 0 {
		out = out[1:]
	}
	return out
}

// PadBatch frames examples for an encoder–decoder model and right-pads
// every row to the batch's longest:
//
//	Source[i]  = source, then Pad
//	Inputs[i]  = BOS, target, then Pad       (the decoder's teacher-forced input)
//	Targets[i] = target, EOS, then −1        (IgnoreTarget: not scored)
//
// so Targets[i][t] is the token after Inputs[i][:t+1]. An encoder masks
// its Pad positions (Pad is never content).
func PadBatch(exs []Example) harness.Batch {
	ws, wt := 0, 0
	for _, e := range exs {
		ws, wt = max(ws, len(e.Source)), max(wt, len(e.Target)+1)
	}
	b := harness.Batch{Source: make([][]int, len(exs)), Inputs: make([][]int, len(exs)), Targets: make([][]int, len(exs))}
	for r, e := range exs {
		src := filled(ws, Pad)
		copy(src, e.Source)
		in, tg := filled(wt, Pad), filled(wt, IgnoreTarget)
		in[0] = BOS
		copy(in[1:], e.Target)
		copy(tg, e.Target)
		tg[len(e.Target)] = EOS
		b.Source[r], b.Inputs[r], b.Targets[r] = src, in, tg
	}
	return b
}

// PadJoined frames examples for a decoder-only model reading the source,
// the separator BOS, then the target: the sequence source, BOS, target, EOS
// is split into inputs (all but its last token) and targets (all but its
// first), only the target and EOS are scored, and rows are right-padded:
//
//	Inputs[i]  = source, BOS, target, then Pad
//	Targets[i] = −1 × len(source), target, EOS, then −1
//
// Source is nil.
func PadJoined(exs []Example) harness.Batch {
	w := 0
	for _, e := range exs {
		w = max(w, len(e.Source)+1+len(e.Target))
	}
	b := harness.Batch{Inputs: make([][]int, len(exs)), Targets: make([][]int, len(exs))}
	for r, e := range exs {
		in, tg := filled(w, Pad), filled(w, IgnoreTarget)
		n := copy(in, e.Source)
		in[n] = BOS
		copy(in[n+1:], e.Target)
		copy(tg[n:], e.Target)
		tg[n+len(e.Target)] = EOS
		b.Inputs[r], b.Targets[r] = in, tg
	}
	return b
}

func filled(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}
