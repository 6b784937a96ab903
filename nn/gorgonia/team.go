package gorgonia

import (
	"runtime"
	"sync/atomic"
)

// A team runs a computation of many short, dependent phases, such as the
// time steps of a recurrence (two phases a step), on the calling
// goroutine and helpers that stay for the whole computation.
//
// parallelFor starts its goroutines afresh each call; a helper starting on
// an idle processor is woken through the kernel, which on the 2-core
// benchmark machine (a virtual machine) takes about 100 µs, five times a
// recurrent step's product at width 128, so the per-step products of a
// sequence node ran on one core. A team's helpers are started once and
// wait for the next phase by spinning, for the few microseconds the
// caller takes to publish it. Work is not assigned but claimed: each
// worker takes the next unclaimed item of the phase until none are left,
// so a helper that starts late, or loses its processor, delays nothing
// but the items it holds, and the caller alone finishes the rest.
//
// Which worker runs an item must not change the item's result; the
// workspace index w passed to the body only selects scratch memory.
type team struct {
	size int // workers, the caller (worker 0) included
	cur  atomic.Pointer[teamPhase]
}

// teamPhase is one phase: body(w, i) for items i < n.
type teamPhase struct {
	n          int
	body       func(w, i int)
	stop       bool // the team is done: helpers return
	next, done atomic.Int64
}

// newTeam returns a team of size workers: the caller and size-1 helper
// goroutines, which spin from now until close. With size ≤ 1 the team
// runs every phase on the caller.
func newTeam(size int) *team {
	t := &team{size: max(size, 1)}
	t.cur.Store(&teamPhase{})
	for w := 1; w < t.size; w++ {
		go t.help(w)
	}
	return t
}

// run calls body(w, i) for every i < n, each once, by some worker w <
// t.size, and returns when all calls have returned.
func (t *team) run(n int, body func(w, i int)) {
	if t.size == 1 {
		for i := range n {
			body(0, i)
		}
		return
	}
	p := &teamPhase{n: n, body: body}
	t.cur.Store(p)
	p.work(0)
	spinUntil(func() bool { return p.done.Load() == int64(n) })
}

// split runs body(w, lo, hi) over [0, n) cut into about 4 pieces per
// worker (one on a team of one) of whole multiples of align, the last
// piece taking the rest.
func (t *team) split(n, align int, body func(w, lo, hi int)) {
	if n <= 0 {
		return
	}
	pieces := 1
	if t.size > 1 {
		pieces = 4 * t.size
	}
	step := roundUp(max(1, (n+pieces-1)/pieces), align)
	t.run((n+step-1)/step, func(w, i int) { body(w, i*step, min(n, (i+1)*step)) })
}

// close ends the helpers; the team must not be used after.
func (t *team) close() {
	if t.size > 1 {
		t.cur.Store(&teamPhase{stop: true})
	}
}

// help is helper w's loop: run the items of each new phase it sees.
func (t *team) help(w int) {
	var last *teamPhase
	for {
		var p *teamPhase
		spinUntil(func() bool { p = t.cur.Load(); return p != last })
		if p.stop {
			return
		}
		p.work(w)
		last = p
	}
}

// work claims and runs the phase's items until none are left.
func (p *teamPhase) work(w int) {
	for {
		i := int(p.next.Add(1)) - 1
		if i >= p.n {
			return
		}
		p.body(w, i)
		p.done.Add(1)
	}
}

// spinUntil returns once cond() holds, polling it and yielding to the
// scheduler every so often (so that a spinning goroutine lets others run
// where the team has more workers than processors).
func spinUntil(cond func() bool) {
	for i := 1; !cond(); i++ {
		if i%256 == 0 {
			runtime.Gosched()
		}
	}
}
