package hybrid

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"arbench/harness"
	"arbench/internal/decoding"
	"arbench/plugins/internal/encdec"
)

// decodeParams are the choices of one decoding: the draft length γ (0 is
// the verifier alone) and how tokens are drawn.
type decodeParams struct {
	gamma    int
	sampling decoding.Sampling
	// rng draws the drafts, the acceptance tests and the verifier's
	// tokens; nil when sampling is greedy.
	rng *rand.Rand
}

// draftModel is the drafting half of the hybrid: it starts one drafting
// run per decoding.
type draftModel interface {
	startDraft(ctx context.Context, sources [][]int, start int) (drafter, error)
}

// drafter proposes the drafts of one decoding, round after round.
type drafter interface {
	// draft proposes up to gamma tokens for every row continuing seq[i]
	// (the start token, then the tokens decoded so far; every row has the
	// same length): x[i][j] drawn with decoding.Sample from q[i][j] for the
	// live rows, the padding token pad for the others. It may propose fewer than
	// gamma (the same number for every row) when its context ends, but at
	// least one.
	draft(ctx context.Context, seq [][]int, live []bool, gamma, pad int, dp decodeParams) (x [][]int, q [][][]float32, err error)
	// sync is told the sequences after a round (seq as for draft).
	sync(seq [][]int, live []bool) error
	// calls is the number of decoder passes so far.
	calls() int
}

// speculate is the decoding loop of Model.Translate (see its
// documentation): batch-synchronous speculative decoding of sources with
// verifier v and drafts from dm, or with γ = 0 the verifier's own
// autoregressive decoding, drawn by Verify with no drafts (the greedy
// choice Argmax, or a draw as decoding.Sample makes it), with the calls
// of harness.Translate's greedy loop.
func speculate(ctx context.Context, v encdec.Verifier, dm draftModel, sources [][]int, opt harness.TranslateOptions, dp decodeParams) (*harness.Translation, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("translate: no sources")
	}
	opt = opt.Fixed() // with Length set, no token ends an output before it
	padTok := opt.End // what finished rows feed
	if padTok < 0 {
		padTok = opt.Start
	}
	B := len(sources)
	var verifySec, draftSec time.Duration
	t0 := time.Now()
	vs, err := startStream(ctx, v, sources, opt.Start)
	verifySec += time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("translate: verifier: %w", err)
	}
	var dr drafter
	if dp.gamma > 0 && opt.MaxLen > 1 {
		t0 = time.Now()
		dr, err = dm.startDraft(ctx, sources, opt.Start)
		draftSec += time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("translate: drafter: %w", err)
		}
	}
	seq := make([][]int, B)
	outs := make([][]int, B)
	live := make([]bool, B)
	for i := range B {
		seq[i] = []int{opt.Start}
		outs[i] = []int{}
		live[i] = true
	}
	var drafted, accepted, tested, testedAccepted int
	outcomes := make([]decoding.Outcome, B)
	for round := 1; ; round++ {
		left := 0
		for _, l := range live {
			if l {
				left++
			}
		}
		if left == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := len(seq[0]) - 1 // tokens decoded per row
		// The round emits at most g+1 tokens; a row has MaxLen−n left.
		g := min(dp.gamma, opt.MaxLen-n-1)
		x := make([][]int, B)
		var q [][][]float32
		if g > 0 {
			t0 = time.Now()
			x, q, err = dr.draft(ctx, seq, live, g, padTok, dp)
			draftSec += time.Since(t0)
			if err != nil {
				return nil, fmt.Errorf("translate: round %d: drafter: %w", round, err)
			}
			g = len(x[0])
		}
		t0 = time.Now()
		p, err := vs.score(ctx, seq, x)
		if err != nil {
			return nil, fmt.Errorf("translate: round %d: verifier: %w", round, err)
		}
		// m: how many tokens past the first every live row takes. A row
		// whose valid tokens end it (its end token, or MaxLen) allows any
		// m; another allows at most its accepted count.
		m := g
		for i := range B {
			if !live[i] {
				continue
			}
			var qi [][]float32
			if q != nil {
				qi = q[i]
			}
			o, err := decoding.Verify(x[i], qi, p[i], dp.sampling, dp.rng)
			if err != nil {
				return nil, fmt.Errorf("translate: round %d: row %d: %w", round, i, err)
			}
			outcomes[i] = o
			tested += o.Tested()
			testedAccepted += o.Accepted
			if !ends(o.Tokens, n, opt) {
				m = min(m, o.Accepted)
			}
		}
		verifySec += time.Since(t0)
		for i := range B {
			if !live[i] {
				seq[i] = padTo(seq[i], n+m+2, padTok)
				continue
			}
			o := outcomes[i]
			drafted += g
			used := 0
			for _, tok := range o.Tokens[:m+1] {
				used++
				seq[i] = append(seq[i], tok)
				if tok == opt.End {
					live[i] = false
					break
				}
				outs[i] = append(outs[i], tok)
				if len(outs[i]) >= opt.MaxLen {
					live[i] = false
					break
				}
			}
			accepted += min(used, o.Accepted)
			seq[i] = padTo(seq[i], n+m+2, padTok)
		}
		if err := vs.sync(seq, live); err != nil {
			return nil, fmt.Errorf("translate: round %d: verifier: %w", round, err)
		}
		if dr != nil {
			if err := dr.sync(seq, live); err != nil {
				return nil, fmt.Errorf("translate: round %d: drafter: %w", round, err)
			}
		}
	}
	stats := map[string]float64{
		"drafted":         float64(drafted),
		"accepted":        float64(accepted),
		"tested":          float64(tested),
		"tested_accepted": float64(testedAccepted),
		"verify_calls":    float64(vs.calls),
		"draft_calls":     0,
		"verify_seconds":  verifySec.Seconds(),
		"draft_seconds":   draftSec.Seconds(),
	}
	if dr != nil {
		stats["draft_calls"] = float64(dr.calls())
	}
	return &harness.Translation{Outputs: outs, Passes: vs.calls, Stats: stats}, nil
}

// ends reports whether the tokens of an outcome, emitted after n decoded
// tokens, end their row: one of them is the end token or reaches MaxLen.
func ends(tokens []int, n int, opt harness.TranslateOptions) bool {
	for k, tok := range tokens {
		if tok == opt.End || n+k+1 >= opt.MaxLen {
			return true
		}
	}
	return false
}

// padTo appends tok to row up to length n.
func padTo(row []int, n, tok int) []int {
	for len(row) < n {
		row = append(row, tok)
	}
	return row
}

// stream is a Verifier's decoding state kept in step with the sequences
// decoded so far: the tokens its cache holds per row (the start token
// first; every row the same number) and, unless a rewind made it stale,
// the next-token log-probabilities after them.
type stream struct {
	v     encdec.Verifier
	st    harness.State
	fed   [][]int
	last  [][]float32
	calls int
}

// startStream encodes sources and feeds the start token: one call.
func startStream(ctx context.Context, v encdec.Verifier, sources [][]int, start int) (*stream, error) {
	B := len(sources)
	prompts := make([][]int, B)
	for i := range prompts {
		prompts[i] = []int{start}
	}
	st, logp, err := v.StartSource(ctx, sources, prompts)
	if err != nil {
		return nil, err
	}
	if len(logp) != B {
		return nil, fmt.Errorf("StartSource returned %d distributions for %d sources", len(logp), B)
	}
	s := &stream{v: v, st: st, fed: prompts, last: logp, calls: 1}
	return s, s.check()
}

// check compares the state's length with the tokens fed.
func (s *stream) check() error {
	if got, want := s.st.Len(), len(s.fed[0]); got != want {
		return fmt.Errorf("decoding state holds %d tokens, %d were fed", got, want)
	}
	return nil
}

// pending returns the tokens of seq that the cache lacks: seq[i] after
// the cache's length (sync keeps the cache a prefix of seq).
func (s *stream) pending(seq [][]int) [][]int {
	out := make([][]int, len(seq))
	n := len(s.fed[0])
	for i := range seq {
		out[i] = seq[i][n:]
	}
	return out
}

// feed feeds k ≥ 1 tokens per row (Step for one, StepN for more) and
// returns out[i][j], the next-token log-probabilities after
// tokens[i][:j+1].
func (s *stream) feed(ctx context.Context, tokens [][]int) ([][][]float32, error) {
	B, k := len(tokens), len(tokens[0])
	var out [][][]float32
	if k == 1 {
		col := make([]int, B)
		for i, row := range tokens {
			col[i] = row[0]
		}
		logp, err := s.v.Step(ctx, s.st, col)
		if err != nil {
			return nil, err
		}
		if len(logp) != B {
			return nil, fmt.Errorf("Step returned %d distributions for %d rows", len(logp), B)
		}
		out = make([][][]float32, B)
		for i := range B {
			out[i] = logp[i : i+1]
		}
	} else {
		var err error
		if out, err = s.v.StepN(ctx, s.st, tokens); err != nil {
			return nil, err
		}
		if len(out) != B {
			return nil, fmt.Errorf("StepN returned %d rows for %d", len(out), B)
		}
		for i := range out {
			if len(out[i]) != k {
				return nil, fmt.Errorf("StepN returned %d distributions for row %d's %d tokens", len(out[i]), i, k)
			}
		}
	}
	s.calls++
	s.last = make([][]float32, B)
	for i := range B {
		s.fed[i] = append(s.fed[i], tokens[i]...)
		s.last[i] = out[i][k-1]
	}
	return out, s.check()
}

// score feeds the pending tokens of seq and the drafts x[i] (g per row,
// possibly none) in one pass and returns p[i], the g+1 distributions
// Verify reads: after seq[i], then after each draft token.
func (s *stream) score(ctx context.Context, seq, x [][]int) ([][][]float32, error) {
	pend := s.pending(seq)
	P, g := len(pend[0]), len(x[0])
	before := s.last
	if P == 0 && before == nil {
		return nil, fmt.Errorf("internal: nothing to feed and no distribution after %d tokens", len(s.fed[0]))
	}
	p := make([][][]float32, len(seq))
	if P+g == 0 {
		for i := range p {
			p[i] = [][]float32{before[i]}
		}
		return p, nil
	}
	rows := make([][]int, len(seq))
	for i := range rows {
		rows[i] = append(append(make([]int, 0, P+g), pend[i]...), x[i]...)
	}
	out, err := s.feed(ctx, rows)
	if err != nil {
		return nil, err
	}
	for i := range p {
		if P == 0 {
			p[i] = append([][]float32{before[i]}, out[i][:g]...)
		} else {
			p[i] = out[i][P-1 : P+g]
		}
	}
	return p, nil
}

// sync rewinds the cache to the longest prefix its tokens share with
// seq[i] in every live row, keeping at least one token of seq unfed when
// it rewinds (so that the next pass yields the distribution after seq).
func (s *stream) sync(seq [][]int, live []bool) error {
	n := len(s.fed[0])
	c := n
	for i := range seq {
		if live[i] {
			c = min(c, commonPrefix(s.fed[i], seq[i]))
		}
	}
	if c == n {
		return nil
	}
	c = min(c, len(seq[0])-1)
	if err := s.v.Rewind(s.st, c); err != nil {
		return err
	}
	for i := range s.fed {
		s.fed[i] = s.fed[i][:c]
	}
	s.last = nil
	return s.check()
}

func commonPrefix(a, b []int) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// draw returns a token of logp as dp draws it (decoding.Sample).
func draw(logp []float32, dp decodeParams) (int, error) {
	return decoding.Sample(logp, dp.sampling, dp.rng)
}

// arDraft drafts with an autoregressive conditional model (a second
// transformer-s2s): γ tokens one at a time on its own cache, which every
// round rewinds to the tokens kept.
type arDraft struct{ v encdec.Verifier }

func (a arDraft) startDraft(ctx context.Context, sources [][]int, start int) (drafter, error) {
	s, err := startStream(ctx, a.v, sources, start)
	if err != nil {
		return nil, err
	}
	return &arDrafter{s}, nil
}

type arDrafter struct{ s *stream }

func (d *arDrafter) calls() int { return d.s.calls }

func (d *arDrafter) sync(seq [][]int, live []bool) error { return d.s.sync(seq, live) }

// draft feeds the pending tokens of seq in one pass (none when the cache
// holds seq already), then each draft token but the last: γ passes at
// most.
func (d *arDrafter) draft(ctx context.Context, seq [][]int, live []bool, gamma, pad int, dp decodeParams) ([][]int, [][][]float32, error) {
	B := len(seq)
	if pend := d.s.pending(seq); len(pend[0]) > 0 {
		if _, err := d.s.feed(ctx, pend); err != nil {
			return nil, nil, err
		}
	} else if d.s.last == nil {
		return nil, nil, fmt.Errorf("internal: nothing to feed and no distribution after %d tokens", len(d.s.fed[0]))
	}
	x := make([][]int, B)
	q := make([][][]float32, B)
	col := make([][]int, B)
	for j := range gamma {
		if j > 0 {
			for i := range B {
				col[i] = x[i][j-1 : j]
			}
			if _, err := d.s.feed(ctx, col); err != nil {
				return nil, nil, err
			}
		}
		for i := range B {
			q[i] = append(q[i], d.s.last[i])
			tok := pad
			if live[i] {
				var err error
				if tok, err = draw(d.s.last[i], dp); err != nil {
					return nil, nil, fmt.Errorf("row %d draft %d: %w", i, j+1, err)
				}
			}
			x[i] = append(x[i], tok)
		}
	}
	return x, q, nil
}

// narDraft drafts with a non-autoregressive model (encdec.Proposer): one
// pass proposes every draft token of a round, each drawn independently
// from its position's distribution.
type narDraft struct{ p encdec.Proposer }

func (a narDraft) startDraft(ctx context.Context, sources [][]int, _ int) (drafter, error) {
	st, err := a.p.StartDraft(ctx, sources)
	if err != nil {
		return nil, err
	}
	if st.Rows() != len(sources) {
		return nil, fmt.Errorf("StartDraft encoded %d rows for %d sources", st.Rows(), len(sources))
	}
	return &narDrafter{p: a.p, st: st}, nil
}

type narDrafter struct {
	p     encdec.Proposer
	st    encdec.DraftState
	npass int
}

func (d *narDrafter) calls() int { return d.npass }

func (d *narDrafter) sync([][]int, []bool) error { return nil }

func (d *narDrafter) draft(ctx context.Context, seq [][]int, live []bool, gamma, pad int, dp decodeParams) ([][]int, [][][]float32, error) {
	B := len(seq)
	prefixes := make([][]int, B)
	for i := range seq {
		prefixes[i] = seq[i][1:]
	}
	q, err := d.p.Propose(ctx, d.st, prefixes, gamma)
	if err != nil {
		return nil, nil, err
	}
	d.npass++
	if len(q) != B {
		return nil, nil, fmt.Errorf("Propose returned %d rows for %d", len(q), B)
	}
	g := len(q[0])
	if g < 1 || g > gamma {
		return nil, nil, fmt.Errorf("Propose returned %d distributions, want 1..%d", g, gamma)
	}
	x := make([][]int, B)
	for i := range B {
		if len(q[i]) != g {
			return nil, nil, fmt.Errorf("Propose returned %d distributions for row %d, %d for row 0", len(q[i]), i, g)
		}
		x[i] = make([]int, g)
		for j := range g {
			x[i][j] = pad
			if live[i] {
				if x[i][j], err = draw(q[i][j], dp); err != nil {
					return nil, nil, fmt.Errorf("row %d draft %d: %w", i, j+1, err)
				}
			}
		}
	}
	return x, q, nil
}
