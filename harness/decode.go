package harness

import (
	"context"
	"errors"
	"fmt"

	"arbench/internal/decoding"
)

// DecodeMode selects a Decoder's path.
type DecodeMode int

const (
	// DecodeAuto takes the cached path when the model is a Stepper whose
	// context holds maxLen tokens (and, for a KVCacher, whose cache is
	// enabled), else the re-feeding path.
	DecodeAuto DecodeMode = iota
	// DecodeCached requires the Stepper, whatever KVCacher says.
	DecodeCached
	// DecodeRefeed requires the Distributioner, even when the model is a
	// Stepper (the bench's re-feeding loop).
	DecodeRefeed
)

// String returns "auto", "cached" or "refeed".
func (m DecodeMode) String() string {
	switch m {
	case DecodeAuto:
		return "auto"
	case DecodeCached:
		return "cached"
	case DecodeRefeed:
		return "refeed"
	}
	return fmt.Sprintf("DecodeMode(%d)", int(m))
}

// DecodeOptions configure NewDecoder; the zero value is DecodeAuto.
type DecodeOptions struct {
	Mode DecodeMode
}

// KVCacher is a Stepper whose carried state is a cache of what re-reading
// the prefix computes (a Transformer's keys and values), which the model's
// configuration can switch off (the transformer's kv_cache: false).
// DecodeAuto re-feeds a KVCacher whose KVCacheEnabled is false, and the
// throughput bench times KVCachers both ways.
type KVCacher interface {
	Stepper
	KVCacheEnabled() bool
}

// PositionDistributioner is a Distributioner that can compute the
// next-token distributions at one position only, which is all a
// re-feeding step reads. Absent, the re-feeding path calls NextLogProbs and
// keeps that position; the results must be the same.
type PositionDistributioner interface {
	Distributioner
	// NextLogProbsAt returns out[i][v] = log p(v | inputs[i][:at+1]) for
	// equal-length rows.
	NextLogProbsAt(ctx context.Context, inputs [][]int, at int) ([][]float32, error)
}

// RefeedPad is the token the re-feeding path pads inputs with.
const RefeedPad = 0

// ErrCannotDecode is wrapped by NewDecoder's errors that say the model
// cannot decode in the asked mode (a missing capability, a context too
// short), as opposed to failures.
var ErrCannotDecode = errors.New("cannot decode")

type cannotDecodeError struct{ msg string }

func (e *cannotDecodeError) Error() string        { return e.msg }
func (e *cannotDecodeError) Is(target error) bool { return target == ErrCannotDecode }

func cannotDecode(format string, args ...any) error {
	return &cannotDecodeError{fmt.Sprintf(format, args...)}
}

// DistributionError reports next-token log-probabilities that are not a
// distribution: a NaN or +Inf entry, or no finite entry (what non-finite
// weights produce).
type DistributionError struct {
	// Step is the number of tokens fed after the prompt (0: the
	// distribution after the prompt, which picks the first new token).
	Step int
	// Row is the row of the batch given to Start.
	Row int
	// Problem says what is wrong, e.g. "NaN at token 3".
	Problem string
}

func (e *DistributionError) Error() string {
	return fmt.Sprintf("step %d, row %d: next-token log-probabilities are not a distribution: %s", e.Step, e.Row, e.Problem)
}

// Decoder is the one step loop behind every free-running use of a model
// (Generate, the synthetic tasks' rollouts, the throughput bench), and the
// one place where the fallbacks between Stepper, Distributioner,
// PositionDistributioner, ContextLimiter and KVCacher are decided.
//
// A Decoder reads equal-length prompts and then one token per row per
// step, and returns the next-token log-probabilities after each. It takes
// one of two paths, chosen once by NewDecoder:
//
//   - cached (DecodeCached): the model's Stepper carries its state
//     (recurrent state, key/value cache) from token to token;
//   - re-feeding (DecodeRefeed): the model's Distributioner re-reads each
//     row at every step and the distribution at the row's last token is
//     kept, the survey's generate_text loop.
//
// The re-feeding path has one window rule: a row of n tokens is read whole,
// except that a ContextLimiter is given only its last MaxContext tokens (a
// sliding window). Inputs shorter than that are right-padded with
// RefeedPad up to a multiple of max(16, p/16) tokens, p the smallest power
// of two >= n (fewer than max(16, n/8) pad tokens), never beyond the
// longest input the decoder will read. Distributioner's contract makes the
// distribution at a position depend only on the inputs up to it, so
// padding changes no distribution; it bounds the number of distinct input
// widths (compiled shapes on a static-graph backend) to 8 per doubling of
// the length. A PositionDistributioner is asked for the one position kept.
//
// Every distribution a Decoder returns has been checked (see
// DistributionError): callers never sample from NaN.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	family string
	mode   DecodeMode
	maxLen int
	path   decodePath
	// rows and n are the batch size and tokens read per row (n = 0 before
	// Start); step counts the Step calls since Start.
	rows, n, step int
}

// decodePath is one way of computing next-token log-probabilities.
type decodePath interface {
	start(ctx context.Context, prompts [][]int) ([][]float32, error)
	step(ctx context.Context, tokens []int) ([][]float32, error)
}

// NewDecoder returns a step loop over m for rows of at most maxLen tokens
// (prompt plus the tokens fed to Step). Errors that wrap ErrCannotDecode
// say m cannot decode in opt.Mode.
func NewDecoder(m Model, maxLen int, opt DecodeOptions) (*Decoder, error) {
	if maxLen < 1 {
		return nil, fmt.Errorf("decode: maximum length %d < 1", maxLen)
	}
	path, mode, err := choosePath(m, maxLen, opt.Mode)
	if err != nil {
		return nil, err
	}
	return &Decoder{family: m.Info().Family, mode: mode, maxLen: maxLen, path: path}, nil
}

// choosePath resolves mode for m and builds its path.
func choosePath(m Model, maxLen int, mode DecodeMode) (decodePath, DecodeMode, error) {
	family := m.Info().Family
	limit := 0
	if mc := ContextOf(m); mc > 0 {
		limit = mc
	}
	fits := limit == 0 || maxLen <= limit
	if mode == DecodeAuto {
		var err error
		if mode, err = autoMode(m, maxLen, limit); err != nil {
			return nil, 0, err
		}
	}
	switch mode {
	case DecodeCached:
		st, ok := StepperOf(m)
		if !ok {
			return nil, 0, cannotDecode("model %s has no incremental decoding (no Stepper)", family)
		}
		if !fits {
			return nil, 0, cannotDecode("model %s: %d tokens exceed its context of %d", family, maxLen, limit)
		}
		return &stepPath{s: st}, mode, nil
	case DecodeRefeed:
		d, ok := DistributionerOf(m)
		if !ok {
			return nil, 0, cannotDecode("model %s cannot re-feed (no Distributioner)", family)
		}
		widest := maxLen
		if limit > 0 {
			widest = min(maxLen, limit)
		}
		return &refeedPath{d: d, widest: widest}, mode, nil
	}
	return nil, 0, fmt.Errorf("decode: unknown mode %v", mode)
}

// autoMode is DecodeAuto's choice for rows of maxLen tokens and a context
// limit (0: none): the Stepper when the rows fit (and a KVCacher's cache
// is on, unless the model cannot re-feed), else re-feeding.
func autoMode(m Model, maxLen, limit int) (DecodeMode, error) {
	fits := limit == 0 || maxLen <= limit
	_, isStepper := StepperOf(m)
	_, isDist := DistributionerOf(m)
	kv, isKV := m.(KVCacher)
	switch {
	case isStepper && fits && (!isDist || !isKV || kv.KVCacheEnabled()):
		return DecodeCached, nil
	case isDist:
		return DecodeRefeed, nil
	case isStepper:
		return 0, cannotDecode("model %s: %d tokens exceed its context of %d and it cannot re-read a window (no Distributioner)",
			m.Info().Family, maxLen, limit)
	}
	return 0, cannotDecode("model %s supports neither Stepper nor Distributioner", m.Info().Family)
}

// Mode returns the path taken: DecodeCached or DecodeRefeed.
func (d *Decoder) Mode() DecodeMode { return d.mode }

// Len returns the number of tokens read per row since Start.
func (d *Decoder) Len() int { return d.n }

// Start begins new sequences: it reads equal-length, non-empty prompts of
// at most maxLen tokens and returns out[i][v], the log-probability of v
// after prompt i. It may be called again to start over.
func (d *Decoder) Start(ctx context.Context, prompts [][]int) ([][]float32, error) {
	d.n, d.rows, d.step = 0, 0, 0
	if len(prompts) == 0 {
		return nil, errors.New("start: no prompts")
	}
	n := len(prompts[0])
	for i, p := range prompts {
		if len(p) != n || n == 0 {
			return nil, fmt.Errorf("start: prompt %d has %d tokens, want %d (non-zero, all equal)", i, len(p), n)
		}
	}
	if n > d.maxLen {
		return nil, fmt.Errorf("start: prompts of %d tokens exceed the decoder's maximum length %d", n, d.maxLen)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logp, err := d.path.start(ctx, prompts)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	d.rows, d.n = len(prompts), n
	return logp, d.check(logp)
}

// Step feeds one token per row and returns the next log-probabilities.
func (d *Decoder) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	switch {
	case d.n == 0:
		return nil, errors.New("step: decoder not started")
	case len(tokens) != d.rows:
		return nil, fmt.Errorf("step %d: %d tokens for %d rows", d.step+1, len(tokens), d.rows)
	case d.n >= d.maxLen:
		return nil, fmt.Errorf("step %d: rows would exceed the decoder's maximum length %d", d.step+1, d.maxLen)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logp, err := d.path.step(ctx, tokens)
	if err != nil {
		return nil, fmt.Errorf("step %d: %w", d.step+1, err)
	}
	d.n++
	d.step++
	return logp, d.check(logp)
}

// check verifies the shape and values of a step's distributions.
func (d *Decoder) check(logp [][]float32) error {
	if len(logp) != d.rows {
		return fmt.Errorf("step %d: model %s returned %d distributions for %d rows", d.step, d.family, len(logp), d.rows)
	}
	for i, row := range logp {
		if p := decoding.LogProbsProblem(row); p != "" {
			return &DistributionError{Step: d.step, Row: i, Problem: p}
		}
	}
	return nil
}

// Argmax returns the index of the largest value, the lowest on ties; NaN
// never wins (0 when every value is NaN). It is the greedy choice of every
// decoding in arbench (decoding.Argmax).
func Argmax(xs []float32) int { return decoding.Argmax(xs) }

// stepPath is the cached path: the model's Stepper.
type stepPath struct {
	s  Stepper
	st State
}

func (p *stepPath) start(ctx context.Context, prompts [][]int) ([][]float32, error) {
	st, logp, err := p.s.Start(ctx, prompts)
	p.st = st
	return logp, err
}

func (p *stepPath) step(ctx context.Context, tokens []int) ([][]float32, error) {
	return p.s.Step(ctx, p.st, tokens)
}

// refeedPath is the re-feeding path over a Distributioner.
type refeedPath struct {
	d Distributioner
	// widest is the widest input fed: maxLen, or the model's MaxContext
	// when that is shorter.
	widest int
	seqs   [][]int
}

func (p *refeedPath) start(ctx context.Context, prompts [][]int) ([][]float32, error) {
	p.seqs = make([][]int, len(prompts))
	for i, row := range prompts {
		p.seqs[i] = append(make([]int, 0, len(row)+64), row...)
	}
	return p.read(ctx)
}

func (p *refeedPath) step(ctx context.Context, tokens []int) ([][]float32, error) {
	for i, t := range tokens {
		p.seqs[i] = append(p.seqs[i], t)
	}
	return p.read(ctx)
}

// read feeds every row's window and returns the distributions at each
// row's last token.
func (p *refeedPath) read(ctx context.Context) ([][]float32, error) {
	n := len(p.seqs[0])
	start, width := n-min(n, p.widest), min(refeedWidth(n), p.widest)
	inputs := make([][]int, len(p.seqs))
	for i, s := range p.seqs {
		row := make([]int, width) // RefeedPad after the window
		copy(row, s[start:])
		inputs[i] = row
	}
	return p.at(ctx, inputs, n-1-start)
}

// at returns the distributions at position at of every input row.
func (p *refeedPath) at(ctx context.Context, inputs [][]int, at int) ([][]float32, error) {
	if pd, ok := p.d.(PositionDistributioner); ok {
		return pd.NextLogProbsAt(ctx, inputs, at) // Decoder.check counts the rows
	}
	dists, err := p.d.NextLogProbs(ctx, inputs)
	if err != nil {
		return nil, err
	}
	if len(dists) != len(inputs) {
		return nil, fmt.Errorf("model returned %d rows for %d inputs", len(dists), len(inputs))
	}
	out := make([][]float32, len(dists))
	for i, pos := range dists {
		if len(pos) != len(inputs[i]) {
			return nil, fmt.Errorf("model returned %d positions for %d inputs", len(pos), len(inputs[i]))
		}
		out[i] = pos[at]
	}
	return out, nil
}

// refeedWidth returns the padded width of an input of n tokens: n rounded
// up to a multiple of max(16, p/16), where p is the smallest power of two
// >= n: padding adds fewer than max(16, n/8) tokens, and there are 16
// widths up to 256 and 8 more per doubling beyond.
func refeedWidth(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	step := max(16, p/16)
	return (n + step - 1) / step * step
}
