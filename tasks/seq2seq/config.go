package seq2seq

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"

	"arbench/harness"
	"arbench/internal/fsum"
)

// Variants lists the seq2seq variants.
func Variants() []string {
	return []string{"reverse", "sort", "copy-noisy", "add", "multimodal"}
}

// Config is the typed configuration of the seq2seq data. One struct serves
// every variant; a field that does not apply to the variant must keep its
// default (ValidateVariant reports it otherwise).
type Config struct {
	// Symbols is the content alphabet size (every variant but add, whose
	// alphabet is the ten digits).
	Symbols int `yaml:"symbols"`
	// MinLen and MaxLen bound the source length, drawn uniformly per
	// example: the number of source tokens (copy-noisy: noise markers
	// included), or for add the number of digits of each operand (drawn
	// independently for a and b).
	MinLen int `yaml:"min_len"`
	MaxLen int `yaml:"max_len"`
	// NoiseRate is copy-noisy's noise density: a source of L tokens holds
	// k = 1 + Binomial(floor((L−1)/2) − 1, noise_rate) marked noise
	// symbols, so at least one and at most floor((L−1)/2).
	NoiseRate float64 `yaml:"noise_rate"`
	// ValidRows and TestRows are the sizes of the fixed validation and test
	// sets (each of distinct sources).
	ValidRows int `yaml:"valid_rows"`
	TestRows  int `yaml:"test_rows"`
	// SplitBuckets is N of the split rule: FNV-1a(source) mod N is 0 for
	// test, 1 for validation, anything else for training.
	SplitBuckets int `yaml:"split_buckets"`
}

// DefaultConfig returns the defaults shared by every variant.
func DefaultConfig() Config {
	return Config{Symbols: 8, MinLen: 4, MaxLen: 12, NoiseRate: 0.25, ValidRows: 128, TestRows: 256, SplitBuckets: 10}
}

// Bounds that keep a configuration from asking for absurd sizes by accident.
const (
	maxSymbols = 1 << 16
	maxLen     = 1 << 16
	maxRows    = 1 << 20
	maxBuckets = 1 << 16
)

var (
	_ harness.Config           = (*Config)(nil)
	_ harness.VariantValidator = (*Config)(nil)
)

// Validate reports every invalid field at once. Comparisons are written so
// that NaN fails them. Checks that depend on the variant are made by
// ValidateVariant.
func (c *Config) Validate() []error {
	var errs []error
	inRange := func(name string, v, lo, hi int) bool {
		if !(v >= lo && v <= hi) {
			errs = append(errs, fmt.Errorf("%s: must be in [%d, %d], got %d", name, lo, hi, v))
			return false
		}
		return true
	}
	inRange("symbols", c.Symbols, 1, maxSymbols)
	okMin := inRange("min_len", c.MinLen, 1, maxLen)
	okMax := inRange("max_len", c.MaxLen, 1, maxLen)
	if okMin && okMax && c.MinLen > c.MaxLen {
		errs = append(errs, fmt.Errorf("min_len: %d exceeds max_len %d", c.MinLen, c.MaxLen))
	}
	if !(c.NoiseRate >= 0 && c.NoiseRate <= 1) {
		errs = append(errs, fmt.Errorf("noise_rate: must be in [0, 1], got %v", c.NoiseRate))
	}
	inRange("valid_rows", c.ValidRows, 1, maxRows)
	inRange("test_rows", c.TestRows, 1, maxRows)
	inRange("split_buckets", c.SplitBuckets, 3, maxBuckets)
	return errs
}

// variantFields lists the variant-specific fields a variant reads (the
// others, min_len, max_len, valid_rows, test_rows and split_buckets, apply
// to every variant); ok is false for an unknown variant.
func variantFields(variant string) (fields []string, ok bool) {
	switch variant {
	case "reverse", "sort", "multimodal":
		return []string{"symbols"}, true
	case "copy-noisy":
		return []string{"symbols", "noise_rate"}, true
	case "add":
		return nil, true
	}
	return nil, false
}

// changed lists the variant-specific fields whose value differs from the
// default.
func (c *Config) changed() []string {
	d := DefaultConfig()
	var out []string
	if c.Symbols != d.Symbols {
		out = append(out, "symbols")
	}
	if c.NoiseRate != d.NoiseRate {
		out = append(out, "noise_rate")
	}
	return out
}

// ValidateVariant reports every problem of the configuration for variant:
// an unknown variant, invalid fields, fields that do not apply to it,
// lengths the variant cannot use, and split sizes that the possible
// sources cannot fill (see Sources).
func (c *Config) ValidateVariant(variant string) []error {
	if errs := c.check(variant); len(errs) > 0 {
		return errs
	}
	return c.sizeErrors(variant, c.sources(variant))
}

// check reports the problems of ValidateVariant but the split sizes.
func (c *Config) check(variant string) []error {
	fields, ok := variantFields(variant)
	if !ok {
		if variant == "" {
			return []error{fmt.Errorf("no variant: name one as seq2seq/VARIANT (%s)", strings.Join(Variants(), ", "))}
		}
		return []error{fmt.Errorf("unknown variant %q (available: %s)", variant, strings.Join(Variants(), ", "))}
	}
	errs := c.Validate()
	for _, f := range c.changed() {
		if !slices.Contains(fields, f) {
			reads := "no variant-specific field"
			if len(fields) > 0 {
				reads = strings.Join(fields, ", ")
			}
			errs = append(errs, fmt.Errorf("%s: does not apply to variant %s (it reads %s)", f, variant, reads))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	switch variant {
	case "copy-noisy":
		if c.MinLen < 3 {
			errs = append(errs, fmt.Errorf("min_len: copy-noisy sources hold a marked noise symbol (2 tokens) and a kept one, so at least 3 tokens; got %d", c.MinLen))
		}
	case "multimodal":
		if c.MinLen < 2 {
			errs = append(errs, fmt.Errorf("min_len: multimodal sources are not palindromes (the two targets must differ), so at least 2 tokens; got %d", c.MinLen))
		}
		if c.Symbols < 2 {
			errs = append(errs, fmt.Errorf("symbols: multimodal needs at least 2 symbols (with 1 every source is a palindrome), got %d", c.Symbols))
		}
	}
	return errs
}

// sizeErrors reports the splits whose distinct sources cannot fill the
// rows asked of them. An exact count must hold the rows; an estimate must
// hold twice as many, so that drawing distinct sources stays cheap.
func (c *Config) sizeErrors(variant string, s SourceCount) []error {
	var errs []error
	space := c.describe(variant, s)
	need := func(field string, sp Split, rows int) {
		have := s.Split[sp]
		switch {
		case s.Exact && have < uint64(rows):
			errs = append(errs, fmt.Errorf("%s: %d rows asked of the %s split, but only %d distinct sources fall in it (%s); widen the lengths or the alphabet, or ask for fewer rows", field, rows, sp, have, space))
		case !s.Exact && have/2 < uint64(rows):
			errs = append(errs, fmt.Errorf("%s: %d rows asked of the %s split, but only about %d distinct sources fall in it (%s), too few to draw %d distinct ones; widen the lengths or the alphabet, or ask for fewer rows", field, rows, sp, have, space, rows))
		}
	}
	need("test_rows", Test, c.TestRows)
	need("valid_rows", Valid, c.ValidRows)
	switch {
	case s.Split[Train] == 0:
		errs = append(errs, fmt.Errorf("split_buckets: no source falls in the train split (%s); widen the lengths or the alphabet", space))
	case !(s.TrainProb >= MinTrainProb):
		how := "an estimate from a fixed sample"
		if s.Exact {
			how = "exact"
		}
		errs = append(errs, fmt.Errorf("split_buckets: a draw falls in the train split with probability %.3g (%s), below %.3g: the training stream would reject nearly every draw (%d of %d distinct sources are in it, %s); widen the lengths or the alphabet, or move noise_rate away from 0 and 1",
			s.TrainProb, how, MinTrainProb, s.Split[Train], s.Total, space))
	}
	return errs
}

// describe names the source space of a size error.
func (c *Config) describe(variant string, s SourceCount) string {
	total := fmt.Sprint(s.Total)
	if s.Total >= countCap {
		total = fmt.Sprintf("at least %d", uint64(countCap))
	}
	if variant == "add" {
		return fmt.Sprintf("%s possible sources: operands of %d..%d digits", total, c.MinLen, c.MaxLen)
	}
	return fmt.Sprintf("%s possible sources: lengths %d..%d over %d symbols", total, c.MinLen, c.MaxLen, c.Symbols)
}

// SourceCount is the number of distinct sources a variant can generate, in
// total and per split. Counts saturate at 2^60. Split counts are exact
// (every source enumerated and hashed) when Exact, that is when Total is
// at most 2^16; otherwise each is the estimate Total/N for the test and
// validation splits, and the rest for training.
type SourceCount struct {
	Total uint64
	Split [3]uint64 // indexed by Split
	Exact bool
	// TrainProb is the probability that one draw of the variant's
	// distribution (Generator.Sample) falls in the train split: exact when
	// Exact (the sum of every train source's probability), else the
	// fraction of a fixed sample of draws (trainProbe).
	TrainProb float64
}

// MinTrainProb is the smallest TrainProb a valid configuration has. The
// training stream rejects draws outside the train split, so with it the
// chance of Generator.Train's 2^20 rejections in a row is below
// (1 − 2^−10)^(2^20) < e^−1000: Train's panic is unreachable.
const MinTrainProb = 1.0 / 1024

// enumLimit is the largest source space counted exactly per split.
const enumLimit = 1 << 16

// sources counts the distinct sources of a variant whose configuration is
// valid.
func (c *Config) sources(variant string) SourceCount {
	s := SourceCount{Total: c.countSources(variant)}
	if s.Total <= enumLimit {
		s.Exact = true
		var train []float64
		c.enumerate(variant, func(src []int) bool {
			sp := SplitOf(src, c.SplitBuckets)
			s.Split[sp]++
			if sp == Train {
				train = append(train, c.prob(variant, src))
			}
			return true
		})
		s.TrainProb = fsum.Sum(train)
		return s
	}
	est := s.Total / uint64(c.SplitBuckets)
	s.Split = [3]uint64{Train: s.Total - 2*est, Valid: est, Test: est}
	s.TrainProb = c.trainProbe(variant)
	return s
}

// prob returns the probability that Generator.Sample draws the source src
// (one of the variant's sources). Within a cell (a length; copy-noisy's
// length and number of noise markers; add's two digit counts) every
// source is equally likely, so it is the cell's probability over its size.
func (c *Config) prob(variant string, src []int) float64 {
	L, S := len(src), float64(c.Symbols)
	lengths := float64(c.MaxLen - c.MinLen + 1)
	switch variant {
	case "copy-noisy":
		k := 0
		for _, t := range src {
			if t == Noise {
				k++
			}
		}
		cell := float64(satBinomial(L-k, k)) * math.Pow(S, float64(L-k))
		return binomialPMF((L-1)/2-1, k-1, c.NoiseRate) / (lengths * cell)
	case "add":
		da := slices.Index(src, Plus)
		ops := float64(addOperands(da)) * float64(addOperands(L-da-1))
		return 1 / (lengths * lengths * ops)
	case "multimodal": // palindromes are redrawn
		return 1 / (lengths * (math.Pow(S, float64(L)) - math.Pow(S, float64((L+1)/2))))
	}
	return 1 / (lengths * math.Pow(S, float64(L)))
}

// binomialPMF is P(X = k) for X ~ Binomial(n, p).
func binomialPMF(n, k int, p float64) float64 {
	switch {
	case k < 0 || k > n:
		return 0
	case p == 0 || p == 1:
		if (p == 0 && k == 0) || (p == 1 && k == n) {
			return 1
		}
		return 0
	}
	ln, _ := math.Lgamma(float64(n + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	lnk, _ := math.Lgamma(float64(n - k + 1))
	return math.Exp(ln - lk - lnk + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
}

// Probe of TrainProb on spaces too large to enumerate: draws from a fixed
// stream, as many as fit a budget of drawn tokens (at least probeMin).
const (
	probeStream = 0x73327370726f6265 // "s2sprobe"
	probeMax    = 4096
	probeMin    = 64
	probeTokens = 1 << 22
)

// trainProbe estimates TrainProb from a fixed sample of draws.
func (c *Config) trainProbe(variant string) float64 {
	g := &Generator{cfg: *c, variant: variant}
	rng := rand.New(rand.NewPCG(0, probeStream))
	n := max(probeMin, min(probeMax, probeTokens/(2*c.MaxLen+1)))
	hits := 0
	for range n {
		if SplitOf(g.Sample(rng).Source, c.SplitBuckets) == Train {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// countCap is where source counts saturate.
const countCap = 1 << 60

func satAdd(a, b uint64) uint64 { return min(a+b, countCap) } // a, b ≤ 2^60: no overflow

func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 || lo > countCap {
		return countCap
	}
	return lo
}

func satPow(b uint64, e int) uint64 {
	r := uint64(1)
	for ; e > 0; e >>= 1 {
		if e&1 == 1 {
			r = satMul(r, b)
		}
		b = satMul(b, b)
	}
	return r
}

func satBinomial(n, k int) uint64 {
	b := new(big.Int).Binomial(int64(n), int64(k))
	if b.BitLen() > 60 {
		return countCap
	}
	return min(b.Uint64(), countCap)
}

// noiseSupport returns the range of copy-noisy's number of marked noise
// symbols k in a source of L tokens: 1 + Binomial(maxK−1, p) with
// maxK = floor((L−1)/2).
func (c *Config) noiseSupport(L int) (lo, hi int) {
	maxK := (L - 1) / 2
	switch {
	case c.NoiseRate == 0:
		return 1, 1
	case c.NoiseRate == 1:
		return maxK, maxK
	}
	return 1, maxK
}

// addOperands returns the number of d-digit operands (no leading zero,
// except 0 itself).
func addOperands(d int) uint64 {
	if d == 1 {
		return 10
	}
	return satMul(9, satPow(10, d-1))
}

// countSources returns the number of distinct sources (saturating).
func (c *Config) countSources(variant string) uint64 {
	S := uint64(c.Symbols)
	total := uint64(0)
	switch variant {
	case "add":
		ops := uint64(0)
		for d := c.MinLen; d <= c.MaxLen && ops < countCap; d++ {
			ops = satAdd(ops, addOperands(d))
		}
		return satMul(ops, ops)
	case "copy-noisy":
		for L := c.MinLen; L <= c.MaxLen && total < countCap; L++ {
			lo, hi := c.noiseSupport(L)
			for k := lo; k <= hi && total < countCap; k++ {
				sym := satPow(S, L-k) // L−2k kept and k marked symbols
				if sym < countCap {
					sym = satMul(sym, satBinomial(L-k, k)) // arrangements of k noise and L−2k kept units
				}
				total = satAdd(total, sym)
			}
		}
	default: // reverse, sort, multimodal
		for L := c.MinLen; L <= c.MaxLen && total < countCap; L++ {
			n := satPow(S, L)
			if variant == "multimodal" && n < countCap {
				n -= satPow(S, (L+1)/2) // palindromes
			}
			total = satAdd(total, n)
		}
	}
	return total
}

// enumerate calls visit with every distinct source of the variant (the
// slice is reused; visit must copy it to keep it) until visit returns
// false. It is meant for small spaces (see countSources).
func (c *Config) enumerate(variant string, visit func(src []int) bool) {
	S := c.Symbols
	var buf []int
	stop := false
	// seq extends buf by n symbols in every way, then calls done.
	var seq func(n, lo, hi int, done func())
	seq = func(n, lo, hi int, done func()) {
		if stop {
			return
		}
		if n == 0 {
			done()
			return
		}
		for s := lo; s < hi && !stop; s++ {
			buf = append(buf, s)
			seq(n-1, lo, hi, done)
			buf = buf[:len(buf)-1]
		}
	}
	emit := func() { stop = stop || !visit(buf) }
	switch variant {
	case "reverse", "sort", "multimodal":
		for L := c.MinLen; L <= c.MaxLen && !stop; L++ {
			seq(L, FirstSymbol, FirstSymbol+S, func() {
				if variant != "multimodal" || !isPalindrome(buf) {
					emit()
				}
			})
		}
	case "copy-noisy":
		// units places k noise units ([Noise, s]) and n kept units ([s]) in
		// every order.
		var units func(k, n int)
		units = func(k, n int) {
			if stop {
				return
			}
			if k == 0 && n == 0 {
				emit()
				return
			}
			if k > 0 {
				buf = append(buf, Noise)
				seq(1, FirstSymbol, FirstSymbol+S, func() { units(k-1, n) })
				buf = buf[:len(buf)-1]
			}
			if n > 0 {
				seq(1, FirstSymbol, FirstSymbol+S, func() { units(k, n-1) })
			}
		}
		for L := c.MinLen; L <= c.MaxLen && !stop; L++ {
			lo, hi := c.noiseSupport(L)
			for k := lo; k <= hi && !stop; k++ {
				units(k, L-2*k)
			}
		}
	case "add":
		// operand appends every d-digit operand in turn.
		operand := func(d int, done func()) {
			if d == 1 {
				seq(1, FirstSymbol, FirstSymbol+10, done)
				return
			}
			seq(1, FirstSymbol+1, FirstSymbol+10, func() { seq(d-1, FirstSymbol, FirstSymbol+10, done) })
		}
		for da := c.MinLen; da <= c.MaxLen && !stop; da++ {
			for db := c.MinLen; db <= c.MaxLen && !stop; db++ {
				operand(da, func() {
					buf = append(buf, Plus)
					operand(db, emit)
					buf = buf[:len(buf)-1]
				})
			}
		}
	}
}

// Sources counts the distinct sources of the variant, in total and per
// split (see SourceCount). It fails only for a configuration that is
// invalid regardless of the split sizes.
func (c *Config) Sources(variant string) (SourceCount, error) {
	if errs := c.check(variant); len(errs) > 0 {
		return SourceCount{}, errors.Join(errs...)
	}
	return c.sources(variant), nil
}

// Vocab returns the vocabulary size of the variant: the special tokens
// (FirstSymbol of them) and the content alphabet (the ten digits for add).
func (c *Config) Vocab(variant string) int {
	if variant == "add" {
		return FirstSymbol + 10
	}
	return FirstSymbol + c.Symbols
}
