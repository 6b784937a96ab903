package hybrid

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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

// rowDraftModel is a draftModel that can also draft for rows of
// different lengths (speculateRows).
type rowDraftModel interface {
	draftModel
	// rowsOK reports whether this drafter can draft rows of different
	// lengths.
	rowsOK() bool
	// startRowDraft starts a drafting run over rows of any lengths.
	startRowDraft(ctx context.Context, sources [][]int, start int) (rowDrafter, error)
}

// rowDrafter proposes the drafts of a per-row decoding, round after round.
type rowDrafter interface {
	// draftRows proposes, for every live row i with g[i] > 0, up to g[i]
	// tokens continuing seq[i] (the start token, then the tokens decoded so
	// far; rows may differ in length): x[i][j] drawn with decoding.Sample
	// from q[i][j]. A row may get fewer than g[i], or none; rows that are
	// not live or have g[i] = 0 get none.
	draftRows(ctx context.Context, seq [][]int, live []bool, g []int, pad int, dp decodeParams) (x [][]int, q [][][]float32, err error)
	// calls is the number of decoder passes so far.
	calls() int
}

// speculate is the decoding loop of Model.Translate (see its
// documentation): speculative decoding of sources with verifier v and
// drafts from dm, or with γ = 0 the verifier's own autoregressive
// decoding, drawn by Verify with no drafts (the greedy choice Argmax, or
// a draw as decoding.Sample makes it), with the calls of
// harness.Translate's greedy loop. With γ > 0, a verifier that keeps a
// length per row (encdec.RowVerifier) and a drafter that can follow it,
// rows advance independently (speculateRows); otherwise the batch advances
// synchronously.
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
	if rv, ok := v.(encdec.RowVerifier); ok && dp.gamma > 0 && opt.MaxLen > 1 {
		if rdm, ok := dm.(rowDraftModel); ok && rdm.rowsOK() {
			return speculateRows(ctx, rv, rdm, sources, opt, dp, padTok)
		}
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
	out, err := pass(ctx, s.v, s.st, tokens)
	if err != nil {
		return nil, err
	}
	B, k := len(tokens), len(tokens[0])
	s.calls++
	s.last = make([][]float32, B)
	for i := range B {
		s.fed[i] = append(s.fed[i], tokens[i]...)
		s.last[i] = out[i][k-1]
	}
	return out, s.check()
}

// pass feeds k ≥ 1 tokens per row of st (Step for one, StepN for more)
// and checks the shapes of what v returns: out[i][j], the next-token
// log-probabilities after tokens[i][:j+1].
func pass(ctx context.Context, v encdec.Verifier, st harness.State, tokens [][]int) ([][][]float32, error) {
	B, k := len(tokens), len(tokens[0])
	var out [][][]float32
	if k == 1 {
		col := make([]int, B)
		for i, row := range tokens {
			col[i] = row[0]
		}
		logp, err := v.Step(ctx, st, col)
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
		if out, err = v.StepN(ctx, st, tokens); err != nil {
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
	return out, nil
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

// speculateRows is speculate's per-row loop: every round each live row i
// gets up to g_i = min(γ, MaxLen − n_i − 1) drafts after its own n_i
// decoded tokens, one verifier pass scores every row's drafts, and each
// row emits its whole outcome (its accepted drafts and the verifier's
// replacement or bonus token), whatever the other rows accepted. Rows may
// then hold different numbers of tokens; the caches follow them with
// RewindRows.
func speculateRows(ctx context.Context, v encdec.RowVerifier, rdm rowDraftModel, sources [][]int, opt harness.TranslateOptions, dp decodeParams, padTok int) (*harness.Translation, error) {
	B := len(sources)
	var verifySec, draftSec time.Duration
	t0 := time.Now()
	vs, err := startRowStream(ctx, v, sources, opt.Start)
	verifySec += time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("translate: verifier: %w", err)
	}
	t0 = time.Now()
	dr, err := rdm.startRowDraft(ctx, sources, opt.Start)
	draftSec += time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("translate: drafter: %w", err)
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
	g := make([]int, B)
	for round := 1; ; round++ {
		left := 0
		for i := range B {
			g[i] = 0
			if live[i] {
				left++
				// The round emits at most g_i+1 tokens; the row has
				// MaxLen−n_i left.
				g[i] = min(dp.gamma, opt.MaxLen-(len(seq[i])-1)-1)
			}
		}
		if left == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 = time.Now()
		x, q, err := dr.draftRows(ctx, seq, live, g, padTok, dp)
		draftSec += time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("translate: round %d: drafter: %w", round, err)
		}
		for i := range B {
			if !live[i] && len(x[i]) > 0 || len(x[i]) > g[i] || (q != nil && len(q[i]) != len(x[i])) {
				return nil, fmt.Errorf("internal: round %d: row %d got %d drafts for %d", round, i, len(x[i]), g[i])
			}
		}
		t0 = time.Now()
		p, err := vs.score(ctx, seq, live, x, padTok)
		if err != nil {
			return nil, fmt.Errorf("translate: round %d: verifier: %w", round, err)
		}
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
			drafted += len(x[i])
			tested += o.Tested()
			testedAccepted += o.Accepted
			used := 0
			for _, tok := range o.Tokens {
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
		}
		verifySec += time.Since(t0)
	}
	stats := map[string]float64{
		"drafted":         float64(drafted),
		"accepted":        float64(accepted),
		"tested":          float64(tested),
		"tested_accepted": float64(testedAccepted),
		"verify_calls":    float64(vs.calls),
		"draft_calls":     float64(dr.calls()),
		"verify_seconds":  verifySec.Seconds(),
		"draft_seconds":   draftSec.Seconds(),
	}
	return &harness.Translation{Outputs: outs, Passes: vs.calls, Stats: stats}, nil
}

// rowStream is a RowVerifier's decoding state and the tokens its cache
// holds per row (the start token first; rows may differ in length), with
// last[i], the next-token log-probabilities after fed[i] (nil when a
// rewind made them stale).
type rowStream struct {
	v     encdec.RowVerifier
	st    harness.State
	fed   [][]int
	last  [][]float32
	calls int
}

// startRowStream encodes sources and feeds the start token: one call.
func startRowStream(ctx context.Context, v encdec.RowVerifier, sources [][]int, start int) (*rowStream, error) {
	s, err := startStream(ctx, v, sources, start)
	if err != nil {
		return nil, err
	}
	return &rowStream{v: v, st: s.st, fed: s.fed, last: s.last, calls: s.calls}, nil
}

// check compares the state's length (the longest row's) with the tokens
// fed.
func (s *rowStream) check() error {
	want := 0
	for _, f := range s.fed {
		want = max(want, len(f))
	}
	if got := s.st.Len(); got != want {
		return fmt.Errorf("decoding state holds %d tokens in its longest row, %d were fed", got, want)
	}
	return nil
}

// pending is how many of the last tokens of seq (a row's sequence) row i
// must be fed before the distribution after seq is known: 0 when the cache
// holds seq exactly and last[i] is current, else at least one (a rewind
// keeps a token to feed).
func (s *rowStream) pending(i int, seq []int) int {
	c := commonPrefix(s.fed[i], seq)
	if c == len(seq) {
		if len(s.fed[i]) == c && s.last[i] != nil {
			return 0
		}
		return 1
	}
	return len(seq) - c
}

// run rewinds row i to keep[i] tokens (1 ≤ keep[i] ≤ len(fed[i])) and
// then feeds rows[i] (the same k ≥ 1 per row) in one pass (Step for one
// token, StepN for more), returning out[i][j], the next-token
// log-probabilities after row i's tokens up to rows[i][j].
func (s *rowStream) run(ctx context.Context, keep []int, rows [][]int) ([][][]float32, error) {
	B := len(rows)
	rewind := false
	for i, n := range keep {
		if n < 1 || n > len(s.fed[i]) {
			return nil, fmt.Errorf("internal: row %d: keep %d of %d tokens", i, n, len(s.fed[i]))
		}
		rewind = rewind || n < len(s.fed[i])
	}
	if rewind {
		if err := s.v.RewindRows(s.st, keep); err != nil {
			return nil, err
		}
		for i, n := range keep {
			if n < len(s.fed[i]) {
				s.fed[i], s.last[i] = s.fed[i][:n], nil
			}
		}
		if err := s.check(); err != nil {
			return nil, err
		}
	}
	out, err := pass(ctx, s.v, s.st, rows)
	if err != nil {
		return nil, err
	}
	s.calls++
	k := len(rows[0])
	for i := range B {
		s.fed[i] = append(s.fed[i], rows[i]...)
		s.last[i] = out[i][k-1]
	}
	return out, s.check()
}

// score feeds, in one pass, each live row's tokens of seq[i] that the
// cache lacks and its drafts x[i] (rows of different lengths and draft
// counts are aligned by rewinding a row further and re-feeding tokens it
// had, or by padding after its drafts, which the causal mask makes
// harmless) and returns p[i], the len(x[i])+1 distributions Verify reads
// for live row i: after seq[i], then after each draft token. Finished
// rows keep only the start token and feed pad.
func (s *rowStream) score(ctx context.Context, seq [][]int, live []bool, x [][]int, pad int) ([][][]float32, error) {
	B := len(seq)
	K := 0
	for i := range B {
		if live[i] {
			K = max(K, s.pending(i, seq[i])+len(x[i]))
		}
	}
	p := make([][][]float32, B)
	if K == 0 { // every live row's distribution is known and it has no drafts
		for i := range B {
			if live[i] {
				p[i] = [][]float32{s.last[i]}
			}
		}
		return p, nil
	}
	keep := make([]int, B)
	rows := make([][]int, B)
	P := make([]int, B) // tokens of seq[i] fed
	for i := range B {
		rows[i] = make([]int, 0, K)
		if !live[i] {
			keep[i] = 1
		} else {
			keep[i] = max(1, len(seq[i])+len(x[i])-K)
			rows[i] = append(append(rows[i], seq[i][keep[i]:]...), x[i]...)
			P[i] = len(seq[i]) - keep[i]
		}
		for len(rows[i]) < K {
			rows[i] = append(rows[i], pad)
		}
	}
	before := slices.Clone(s.last)
	out, err := s.run(ctx, keep, rows)
	if err != nil {
		return nil, err
	}
	for i := range B {
		if !live[i] {
			continue
		}
		if P[i] == 0 {
			p[i] = append([][]float32{before[i]}, out[i][:len(x[i])]...)
		} else {
			p[i] = out[i][P[i]-1 : P[i]+len(x[i])]
		}
	}
	return p, nil
}

// rowsOK: an autoregressive drafter follows rows of different lengths
// when it keeps a length per row (encdec.RowVerifier).
func (a arDraft) rowsOK() bool {
	_, ok := a.v.(encdec.RowVerifier)
	return ok
}

func (a arDraft) startRowDraft(ctx context.Context, sources [][]int, start int) (rowDrafter, error) {
	rv, ok := a.v.(encdec.RowVerifier)
	if !ok {
		return nil, fmt.Errorf("internal: the drafter %T keeps no length per row", a.v)
	}
	s, err := startRowStream(ctx, rv, sources, start)
	if err != nil {
		return nil, err
	}
	return &arRowDrafter{s}, nil
}

type arRowDrafter struct{ s *rowStream }

func (d *arRowDrafter) calls() int { return d.s.calls }

// draftRows runs the passes of the synchronous drafter (arDrafter.draft):
// one over the tokens of seq[i] each row's cache lacks (k = the most any
// row lacks; none in the first round), then one per draft token but the
// last, max g[i] − 1 of them. Rows that need less of a pass feed padding
// after their tokens, which the next pass rewinds away (RewindRows), so
// every row drafts its g[i] tokens on its own prefix; finished rows keep
// the start token and feed padding.
func (d *arRowDrafter) draftRows(ctx context.Context, seq [][]int, live []bool, g []int, pad int, dp decodeParams) ([][]int, [][][]float32, error) {
	B := len(seq)
	x := make([][]int, B)
	q := make([][][]float32, B)
	pm := make([]int, B)
	K0, gmax := 0, 0
	drafts := func(i int) bool { return live[i] && g[i] > 0 }
	for i := range B {
		if drafts(i) {
			pm[i] = d.s.pending(i, seq[i])
			K0, gmax = max(K0, pm[i]), max(gmax, g[i])
		}
	}
	if gmax == 0 {
		return x, q, nil
	}
	// take draws row i's next draft from its distribution lp.
	take := func(i int, lp []float32) error {
		tok, err := draw(lp, dp)
		if err != nil {
			return fmt.Errorf("row %d draft %d: %w", i, len(x[i])+1, err)
		}
		x[i] = append(x[i], tok)
		q[i] = append(q[i], lp)
		return nil
	}
	// useful[i]: the tokens of row i's cache that are seq[i] and its drafts.
	useful := make([]int, B)
	keep := make([]int, B)
	if K0 > 0 {
		rows := make([][]int, B)
		for i := range B {
			keep[i], rows[i] = 1, make([]int, 0, K0)
			if drafts(i) {
				keep[i] = len(seq[i]) - pm[i]
				if pm[i] == 0 { // its distribution is known: feed padding
					keep[i] = len(d.s.fed[i])
				}
				rows[i] = append(rows[i], seq[i][keep[i]:]...)
			}
			for len(rows[i]) < K0 {
				rows[i] = append(rows[i], pad)
			}
		}
		last := slices.Clone(d.s.last)
		out, err := d.s.run(ctx, keep, rows)
		if err != nil {
			return nil, nil, err
		}
		for i := range B {
			if !drafts(i) {
				continue
			}
			lp := last[i]
			if pm[i] > 0 {
				lp = out[i][pm[i]-1]
			}
			if err := take(i, lp); err != nil {
				return nil, nil, err
			}
			useful[i] = len(seq[i])
		}
	} else {
		for i := range B {
			if drafts(i) {
				if err := take(i, d.s.last[i]); err != nil {
					return nil, nil, err
				}
				useful[i] = len(seq[i])
			}
		}
	}
	col := make([][]int, B)
	for t := 1; t < gmax; t++ {
		for i := range B {
			keep[i], col[i] = 1, []int{pad}
			if drafts(i) {
				keep[i] = useful[i]
				if t < g[i] {
					col[i] = x[i][t-1 : t]
				}
			}
		}
		out, err := d.s.run(ctx, keep, col)
		if err != nil {
			return nil, nil, err
		}
		for i := range B {
			if drafts(i) && t < g[i] {
				useful[i]++
				if err := take(i, out[i][0]); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	return x, q, nil
}

// rowsOK: a non-autoregressive drafter drafts for rows of any lengths.
func (narDraft) rowsOK() bool { return true }

func (a narDraft) startRowDraft(ctx context.Context, sources [][]int, _ int) (rowDrafter, error) {
	d, err := a.startDraft(ctx, sources, 0)
	if err != nil {
		return nil, err
	}
	return d.(*narDrafter), nil
}

// draftRows makes one Propose call for the rows of every length: the
// prefixes are cut to the shortest live row's P decoded tokens, and row i
// reads its drafts at positions n_i.., i.e. q[i][n_i−P+j], which the
// drafter predicts with the row's last n_i−P tokens masked (it does not
// see them). encdec.Proposer takes equal-length prefixes, so a row ahead
// of the others gets drafts conditioned on less of its prefix; one pass
// per distinct length would condition each on all of it at up to B times
// the drafting cost. Any q the drafts are drawn from keeps the output
// exact.
func (d *narDrafter) draftRows(ctx context.Context, seq [][]int, live []bool, g []int, pad int, dp decodeParams) ([][]int, [][][]float32, error) {
	B := len(seq)
	x := make([][]int, B)
	q := make([][][]float32, B)
	P, G := -1, 0
	for i := range B {
		if live[i] && g[i] > 0 {
			if n := len(seq[i]) - 1; P < 0 || n < P {
				P = n
			}
		}
	}
	if P < 0 {
		return x, q, nil
	}
	prefixes := make([][]int, B)
	for i := range B {
		if live[i] && g[i] > 0 {
			G = max(G, len(seq[i])-1-P+g[i])
		}
		prefixes[i] = make([]int, P)
		for j := range P {
			prefixes[i][j] = pad
			if 1+j < len(seq[i]) {
				prefixes[i][j] = seq[i][1+j]
			}
		}
	}
	out, err := d.p.Propose(ctx, d.st, prefixes, G)
	if err != nil {
		return nil, nil, err
	}
	d.npass++
	if len(out) != B {
		return nil, nil, fmt.Errorf("Propose returned %d rows for %d", len(out), B)
	}
	gr := len(out[0])
	if gr < 1 || gr > G {
		return nil, nil, fmt.Errorf("Propose returned %d distributions, want 1..%d", gr, G)
	}
	for i := range B {
		if len(out[i]) != gr {
			return nil, nil, fmt.Errorf("Propose returned %d distributions for row %d, %d for row 0", len(out[i]), i, gr)
		}
		if !live[i] || g[i] == 0 {
			continue
		}
		off := len(seq[i]) - 1 - P
		for j := 0; j < g[i] && off+j < gr; j++ {
			lp := out[i][off+j]
			tok, err := draw(lp, dp)
			if err != nil {
				return nil, nil, fmt.Errorf("row %d draft %d: %w", i, j+1, err)
			}
			x[i] = append(x[i], tok)
			q[i] = append(q[i], lp)
		}
	}
	return x, q, nil
}
