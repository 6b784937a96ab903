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
// synchronously (speculateSync).
func speculate(ctx context.Context, v encdec.Verifier, dm draftModel, sources [][]int, opt harness.TranslateOptions, dp decodeParams) (*harness.Translation, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("translate: no sources")
	}
	opt = opt.Fixed() // with Length set, no token ends an output before it
	b := newBatch(len(sources), opt, dp)
	if rv, ok := v.(encdec.RowVerifier); ok && dp.gamma > 0 && opt.MaxLen > 1 {
		if rdm, ok := dm.(rowDraftModel); ok && rdm.rowsOK() {
			return speculateRows(ctx, rv, rdm, sources, b)
		}
	}
	return speculateSync(ctx, v, dm, sources, b)
}

// tally counts what Model.Translate reports in its Stats: the draft
// tokens drafted, accepted, tested and tested_accepted, and the wall time
// of verifying and of drafting.
type tally struct {
	drafted, accepted, tested, testedAccepted int
	verifyTime, draftTime                     time.Duration
}

// translation is the result of a decoding: outs, with the verifier's
// verifyCalls passes as Passes, and the Stats.
func (t *tally) translation(outs [][]int, verifyCalls, draftCalls int) *harness.Translation {
	stats := map[string]float64{
		"drafted":         float64(t.drafted),
		"accepted":        float64(t.accepted),
		"tested":          float64(t.tested),
		"tested_accepted": float64(t.testedAccepted),
		"verify_calls":    float64(verifyCalls),
		"draft_calls":     float64(draftCalls),
		"verify_seconds":  t.verifyTime.Seconds(),
		"draft_seconds":   t.draftTime.Seconds(),
	}
	return &harness.Translation{Outputs: outs, Passes: verifyCalls, Stats: stats}
}

// batch is what both decoding loops keep: the options, every row's
// sequence seq[i] (the start token, then the tokens decoded so far; the
// synchronous loop pads a finished row after them), its output outs[i]
// and whether it is still decoding, live[i], and the tally.
type batch struct {
	opt  harness.TranslateOptions
	dp   decodeParams
	pad  int // what finished rows feed
	seq  [][]int
	outs [][]int
	live []bool
	tally
}

// newBatch starts B rows: the start token, no output, live.
func newBatch(B int, opt harness.TranslateOptions, dp decodeParams) *batch {
	b := &batch{opt: opt, dp: dp, pad: opt.End, seq: make([][]int, B), outs: make([][]int, B), live: make([]bool, B)}
	if b.pad < 0 {
		b.pad = opt.Start
	}
	for i := range B {
		b.seq[i] = []int{opt.Start}
		b.outs[i] = []int{}
		b.live[i] = true
	}
	return b
}

// left is the number of live rows.
func (b *batch) left() int {
	n := 0
	for _, l := range b.live {
		if l {
			n++
		}
	}
	return n
}

// budget is the number of drafts a round gives a row with n decoded
// tokens: the round emits at most budget+1 tokens; the row has MaxLen−n
// left.
func (b *batch) budget(n int) int {
	return min(b.dp.gamma, b.opt.MaxLen-n-1)
}

// verify runs the acceptance tests of row i's drafts x[i], drawn from
// q[i] (q is nil when nothing was drafted), against the verifier's
// distributions p[i], and tallies them.
func (b *batch) verify(i int, x [][]int, q, p [][][]float32) (decoding.Outcome, error) {
	var qi [][]float32
	if q != nil {
		qi = q[i]
	}
	o, err := decoding.Verify(x[i], qi, p[i], b.dp.sampling, b.dp.rng)
	if err != nil {
		return o, fmt.Errorf("row %d: %w", i, err)
	}
	b.tested += o.Tested()
	b.testedAccepted += o.Accepted
	return o, nil
}

// emit appends the first k tokens of row i's outcome o to its sequence
// and output, up to the first that finishes the row: its end token (which
// the output does not get) or the one that makes the output MaxLen long,
// after which the row is no longer live. It tallies the accepted draft
// tokens among those it used.
func (b *batch) emit(i int, o decoding.Outcome, k int) {
	used := 0
	for _, tok := range o.Tokens[:k] {
		used++
		b.seq[i] = append(b.seq[i], tok)
		if tok == b.opt.End {
			b.live[i] = false
			break
		}
		b.outs[i] = append(b.outs[i], tok)
		if len(b.outs[i]) >= b.opt.MaxLen {
			b.live[i] = false
			break
		}
	}
	b.accepted += min(used, o.Accepted)
}

// rounds calls round until no row of b is live, checking ctx before
// each.
func rounds(ctx context.Context, b *batch, round func(context.Context) error) error {
	for n := 1; b.left() > 0; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := round(ctx); err != nil {
			return fmt.Errorf("translate: round %d: %w", n, err)
		}
	}
	return nil
}

// syncRun is a synchronous decoding (speculateSync): the batch, the
// verifier's stream, the drafter (nil when nothing is drafted: γ = 0 or
// MaxLen 1) and the live rows' outcomes of the round.
type syncRun struct {
	*batch
	vs       *stream
	dr       drafter
	outcomes []decoding.Outcome
}

// speculateSync is speculate's synchronous loop: every round all live
// rows take m+1 tokens of their outcomes (see the package documentation)
// and finished rows are padded, so that every row holds the same number
// of tokens.
func speculateSync(ctx context.Context, v encdec.Verifier, dm draftModel, sources [][]int, b *batch) (*harness.Translation, error) {
	r, err := startSync(ctx, v, dm, sources, b)
	if err != nil {
		return nil, err
	}
	if err := rounds(ctx, b, r.round); err != nil {
		return nil, err
	}
	draftCalls := 0
	if r.dr != nil {
		draftCalls = r.dr.calls()
	}
	return r.translation(r.outs, r.vs.calls, draftCalls), nil
}

// startSync starts the verifier's stream and, when the decoding drafts
// (γ > 0 and MaxLen > 1), the drafter.
func startSync(ctx context.Context, v encdec.Verifier, dm draftModel, sources [][]int, b *batch) (*syncRun, error) {
	r := &syncRun{batch: b, outcomes: make([]decoding.Outcome, len(sources))}
	t0 := time.Now()
	vs, err := startStream(ctx, v, sources, b.opt.Start)
	r.verifyTime += time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("translate: verifier: %w", err)
	}
	r.vs = vs
	if b.dp.gamma > 0 && b.opt.MaxLen > 1 {
		t0 = time.Now()
		r.dr, err = dm.startDraft(ctx, sources, b.opt.Start)
		r.draftTime += time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("translate: drafter: %w", err)
		}
	}
	return r, nil
}

// round is one round of the synchronous loop: draft, score the drafts
// and test them, emit m+1 tokens of every live row's outcome, and rewind
// both caches to the tokens kept.
func (r *syncRun) round(ctx context.Context) error {
	n := len(r.seq[0]) - 1 // tokens decoded per row
	x, q, err := r.draft(ctx, n)
	if err != nil {
		return fmt.Errorf("drafter: %w", err)
	}
	m, err := r.score(ctx, n, x, q)
	if err != nil {
		return err
	}
	r.advance(n, len(x[0]), m)
	if err := r.vs.sync(r.seq, r.live); err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	if r.dr != nil {
		if err := r.dr.sync(r.seq, r.live); err != nil {
			return fmt.Errorf("drafter: %w", err)
		}
	}
	return nil
}

// draft has the drafter propose the round's drafts after n decoded
// tokens, the same number g for every row (up to the budget; none when it
// is 0, and then q is nil).
func (r *syncRun) draft(ctx context.Context, n int) ([][]int, [][][]float32, error) {
	g := r.budget(n)
	if g <= 0 {
		return make([][]int, len(r.seq)), nil, nil
	}
	t0 := time.Now()
	x, q, err := r.dr.draft(ctx, r.seq, r.live, g, r.pad, r.dp)
	r.draftTime += time.Since(t0)
	return x, q, err
}

// score scores the drafts x in one verifier pass and runs every live
// row's acceptance tests, keeping the outcomes, and returns m: how many
// tokens past the first every live row takes. A row whose valid tokens
// end it (its end token, or MaxLen) allows any m; another allows at most
// its accepted count.
func (r *syncRun) score(ctx context.Context, n int, x [][]int, q [][][]float32) (int, error) {
	t0 := time.Now()
	p, err := r.vs.score(ctx, r.seq, x)
	if err != nil {
		return 0, fmt.Errorf("verifier: %w", err)
	}
	m := len(x[0])
	for i := range r.live {
		if !r.live[i] {
			continue
		}
		o, err := r.verify(i, x, q, p)
		if err != nil {
			return 0, err
		}
		r.outcomes[i] = o
		if !ends(o.Tokens, n, r.opt) {
			m = min(m, o.Accepted)
		}
	}
	r.verifyTime += time.Since(t0)
	return m, nil
}

// advance emits the first m+1 tokens of every live row's outcome (of g
// drafts) and pads every row to n+m+2 tokens: the start token, the n
// decoded before the round and its m+1.
func (r *syncRun) advance(n, g, m int) {
	for i := range r.live {
		if r.live[i] {
			r.drafted += g
			r.emit(i, r.outcomes[i], m+1)
		}
		r.seq[i] = padTo(r.seq[i], n+m+2, r.pad)
	}
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
	q, err := d.propose(ctx, prefixes, gamma)
	if err != nil {
		return nil, nil, err
	}
	g := len(q[0])
	x := make([][]int, B)
	for i := range B {
		if err := proposedRow(q, i); err != nil {
			return nil, nil, err
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

// propose makes one Propose call for up to G ≥ 1 distributions after each
// of prefixes and checks that it returns a row per prefix and 1..G
// distributions in row 0 (proposedRow checks the other rows).
func (d *narDrafter) propose(ctx context.Context, prefixes [][]int, G int) ([][][]float32, error) {
	out, err := d.p.Propose(ctx, d.st, prefixes, G)
	if err != nil {
		return nil, err
	}
	d.npass++
	if len(out) != len(prefixes) {
		return nil, fmt.Errorf("Propose returned %d rows for %d", len(out), len(prefixes))
	}
	if g := len(out[0]); g < 1 || g > G {
		return nil, fmt.Errorf("Propose returned %d distributions, want 1..%d", g, G)
	}
	return out, nil
}

// proposedRow checks that Propose returned as many distributions for row
// i as for row 0.
func proposedRow(out [][][]float32, i int) error {
	if len(out[i]) != len(out[0]) {
		return fmt.Errorf("Propose returned %d distributions for row %d, %d for row 0", len(out[i]), i, len(out[0]))
	}
	return nil
}

// speculateRows is speculate's per-row loop: every round each live row i
// gets up to g_i = min(γ, MaxLen − n_i − 1) drafts after its own n_i
// decoded tokens, one verifier pass scores every row's drafts, and each
// row emits its whole outcome (its accepted drafts and the verifier's
// replacement or bonus token), whatever the other rows accepted. Rows may
// then hold different numbers of tokens; the caches follow them with
// RewindRows.
func speculateRows(ctx context.Context, v encdec.RowVerifier, rdm rowDraftModel, sources [][]int, b *batch) (*harness.Translation, error) {
	r, err := startRows(ctx, v, rdm, sources, b)
	if err != nil {
		return nil, err
	}
	if err := rounds(ctx, b, r.round); err != nil {
		return nil, err
	}
	return r.translation(r.outs, r.vs.calls, r.dr.calls()), nil
}

// rowRun is a per-row decoding (speculateRows): the batch, the verifier's
// stream, the drafter and the round's draft budget g[i] of every row (0
// for the rows not live).
type rowRun struct {
	*batch
	vs *rowStream
	dr rowDrafter
	g  []int
}

// startRows starts the verifier's stream and the drafter.
func startRows(ctx context.Context, v encdec.RowVerifier, rdm rowDraftModel, sources [][]int, b *batch) (*rowRun, error) {
	r := &rowRun{batch: b, g: make([]int, len(sources))}
	t0 := time.Now()
	vs, err := startRowStream(ctx, v, sources, b.opt.Start)
	r.verifyTime += time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("translate: verifier: %w", err)
	}
	r.vs = vs
	t0 = time.Now()
	r.dr, err = rdm.startRowDraft(ctx, sources, b.opt.Start)
	r.draftTime += time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("translate: drafter: %w", err)
	}
	return r, nil
}

// round is one round of the per-row loop: every live row's budget, its
// drafts, one verifier pass over them all, and every live row's
// acceptance tests and outcome.
func (r *rowRun) round(ctx context.Context) error {
	r.budgets()
	x, q, err := r.draft(ctx)
	if err != nil {
		return err
	}
	return r.score(ctx, x, q)
}

// budgets sets g[i], row i's budget after its own decoded tokens, or 0
// when the row is not live.
func (r *rowRun) budgets() {
	for i := range r.g {
		r.g[i] = 0
		if r.live[i] {
			r.g[i] = r.budget(len(r.seq[i]) - 1)
		}
	}
}

// draft has the drafter propose up to g[i] drafts for every live row and
// checks their numbers.
func (r *rowRun) draft(ctx context.Context) ([][]int, [][][]float32, error) {
	t0 := time.Now()
	x, q, err := r.dr.draftRows(ctx, r.seq, r.live, r.g, r.pad, r.dp)
	r.draftTime += time.Since(t0)
	if err != nil {
		return nil, nil, fmt.Errorf("drafter: %w", err)
	}
	for i := range r.live {
		if !r.live[i] && len(x[i]) > 0 || len(x[i]) > r.g[i] || (q != nil && len(q[i]) != len(x[i])) {
			return nil, nil, fmt.Errorf("internal: row %d got %d drafts for %d", i, len(x[i]), r.g[i])
		}
	}
	return x, q, nil
}

// score scores every live row's drafts x[i] in one verifier pass, runs
// the row's acceptance tests and emits its whole outcome.
func (r *rowRun) score(ctx context.Context, x [][]int, q [][][]float32) error {
	t0 := time.Now()
	p, err := r.vs.score(ctx, r.seq, r.live, x, r.pad)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	for i := range r.live {
		if !r.live[i] {
			continue
		}
		o, err := r.verify(i, x, q, p)
		if err != nil {
			return err
		}
		r.drafted += len(x[i])
		r.emit(i, o, len(o.Tokens))
	}
	r.verifyTime += time.Since(t0)
	return nil
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
		rows[i] = padTo(rows[i], K, pad)
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
	r := &arRowRound{s: d.s, seq: seq, live: live, g: g, pad: pad, dp: dp,
		x: make([][]int, B), q: make([][][]float32, B),
		useful: make([]int, B), keep: make([]int, B), col: make([][]int, B)}
	pm := make([]int, B)
	K0, gmax := 0, 0
	for i := range B {
		if r.drafts(i) {
			pm[i] = d.s.pending(i, seq[i])
			K0, gmax = max(K0, pm[i]), max(gmax, g[i])
		}
	}
	if gmax == 0 {
		return r.x, r.q, nil
	}
	if err := r.first(ctx, pm, K0); err != nil {
		return nil, nil, err
	}
	for t := 1; t < gmax; t++ {
		if err := r.step(ctx, t); err != nil {
			return nil, nil, err
		}
	}
	return r.x, r.q, nil
}

// arRowRound is one call of arRowDrafter.draftRows: its arguments, the
// drafts x[i] drawn so far from q[i], and the bookkeeping of its passes.
type arRowRound struct {
	s    *rowStream
	seq  [][]int
	live []bool
	g    []int
	pad  int
	dp   decodeParams
	x    [][]int
	q    [][][]float32
	// useful[i]: the tokens of row i's cache that are seq[i] and its drafts.
	useful []int
	keep   []int   // the tokens a pass keeps per row
	col    [][]int // the tokens a step feeds per row
}

// drafts reports whether row i drafts: it is live and its budget is not 0.
func (r *arRowRound) drafts(i int) bool { return r.live[i] && r.g[i] > 0 }

// take draws row i's next draft from its distribution lp.
func (r *arRowRound) take(i int, lp []float32) error {
	tok, err := draw(lp, r.dp)
	if err != nil {
		return fmt.Errorf("row %d draft %d: %w", i, len(r.x[i])+1, err)
	}
	r.x[i] = append(r.x[i], tok)
	r.q[i] = append(r.q[i], lp)
	return nil
}

// first draws every drafting row's first draft from the distribution
// after seq[i]: known already (pm[i] = 0) or after the pm[i] tokens its
// cache lacks, which one pass of K0 = max pm[i] tokens per row feeds
// (none when K0 = 0).
func (r *arRowRound) first(ctx context.Context, pm []int, K0 int) error {
	last := r.s.last
	var out [][][]float32
	if K0 > 0 {
		rows := r.firstRows(pm, K0)
		last = slices.Clone(r.s.last)
		var err error
		if out, err = r.s.run(ctx, r.keep, rows); err != nil {
			return err
		}
	}
	for i := range r.seq {
		if !r.drafts(i) {
			continue
		}
		lp := last[i]
		if pm[i] > 0 {
			lp = out[i][pm[i]-1]
		}
		if err := r.take(i, lp); err != nil {
			return err
		}
		r.useful[i] = len(r.seq[i])
	}
	return nil
}

// firstRows sets keep for the first pass and returns its K0 tokens per
// row: a drafting row's tokens of seq[i] that its cache lacks (none when
// its distribution is known), then padding; the other rows keep the start
// token and feed padding.
func (r *arRowRound) firstRows(pm []int, K0 int) [][]int {
	rows := make([][]int, len(r.seq))
	for i := range rows {
		r.keep[i], rows[i] = 1, make([]int, 0, K0)
		if r.drafts(i) {
			r.keep[i] = len(r.seq[i]) - pm[i]
			if pm[i] == 0 { // its distribution is known: feed padding
				r.keep[i] = len(r.s.fed[i])
			}
			rows[i] = append(rows[i], r.seq[i][r.keep[i]:]...)
		}
		rows[i] = padTo(rows[i], K0, r.pad)
	}
	return rows
}

// step is pass t ≥ 1: every drafting row whose budget g[i] exceeds t
// feeds its draft t after its useful tokens (rewinding the padding a pass
// fed) and draws draft t+1; the other drafting rows feed padding after
// their useful tokens, the rows not drafting after the start token.
func (r *arRowRound) step(ctx context.Context, t int) error {
	for i := range r.col {
		r.keep[i], r.col[i] = 1, []int{r.pad}
		if r.drafts(i) {
			r.keep[i] = r.useful[i]
			if t < r.g[i] {
				r.col[i] = r.x[i][t-1 : t]
			}
		}
	}
	out, err := r.s.run(ctx, r.keep, r.col)
	if err != nil {
		return err
	}
	for i := range r.col {
		if r.drafts(i) && t < r.g[i] {
			r.useful[i]++
			if err := r.take(i, out[i][0]); err != nil {
				return err
			}
		}
	}
	return nil
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
	drafts := func(i int) bool { return live[i] && g[i] > 0 }
	P, G := -1, 0
	for i := range B {
		if drafts(i) {
			if n := len(seq[i]) - 1; P < 0 || n < P {
				P = n
			}
		}
	}
	if P < 0 {
		return x, q, nil
	}
	for i := range B {
		if drafts(i) {
			G = max(G, len(seq[i])-1-P+g[i])
		}
	}
	out, err := d.propose(ctx, cutPrefixes(seq, P, pad), G)
	if err != nil {
		return nil, nil, err
	}
	gr := len(out[0])
	for i := range B {
		if err := proposedRow(out, i); err != nil {
			return nil, nil, err
		}
		if !drafts(i) {
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

// cutPrefixes returns every row's first P decoded tokens (after the start
// token), padded with pad where a row has fewer.
func cutPrefixes(seq [][]int, P, pad int) [][]int {
	prefixes := make([][]int, len(seq))
	for i := range seq {
		prefixes[i] = make([]int, P)
		for j := range P {
			prefixes[i][j] = pad
			if 1+j < len(seq[i]) {
				prefixes[i][j] = seq[i][1+j]
			}
		}
	}
	return prefixes
}
