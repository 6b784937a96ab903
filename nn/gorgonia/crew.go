package gorgonia

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The crew is a team (see team) shared by every executable of the
// process, for matrix products with few rows (a decoding step's
// matrix–vector products): too short for parallelFor, whose goroutines
// take about 100 µs to wake on the 2-core benchmark machine, and too
// many per step to each pay for a team of their own. Its helpers spin
// between phases while products keep coming and park after crewIdle
// without one, so a process that stops decoding stops spinning.
//
// Such a product is memory-bound: at batch 1 every weight is read once
// per token, and a model's weights (1.7 MB for the quick Transformer) do
// not fit one core's L2 cache (1 MB on Zen 4 and 5). Split in halves
// across the two cores, each core keeps reading the same half, which
// stays in its own L2 cache: a 1×128 by 128×3072 product measured 16.8 µs
// on one core and 7.3 µs on the crew (and 10.0 against 4.9 µs at half
// that size), where parallelFor's goroutines made it slower than one
// core. Other work of the same kind (a crewJob: CacheAttention's rows at
// a small batch) runs on it in pieces owned the same way.
type crew struct {
	mu      sync.Mutex   // held by the caller whose phase runs
	size    int          // workers, the caller included
	idle    *crewPhase   // the phase of no product
	spinner atomic.Int32 // helpers spinning, not parked
	wake    chan struct{}
	// cur, which the helpers poll, has a cache line of its own: sharing
	// mu's, every lock and unlock invalidated the helpers' copy.
	_   [cacheLine]byte
	cur atomic.Pointer[crewPhase]
	_   [cacheLine]byte
}

// cacheLine is the size of a CPU cache line on the machines arbench runs
// on (amd64, arm64), in bytes.
const cacheLine = 64

// crewIdle is how long a helper spins without a phase before it parks.
const crewIdle = 200 * time.Microsecond

// crewRows and crewMACs bound the products that run on the crew: at most
// crewRows rows and at least crewMACs multiply-adds (below, the hand-over
// costs more than the second core saves; parallelFor takes those from
// parallelMACs up).
const (
	crewRows = 64
	crewMACs = 1 << 14
)

// sharedCrew is the process's crew of GOMAXPROCS workers (at its first
// use), or nil when there is one processor.
var sharedCrew = sync.OnceValue(func() *crew {
	n := min(runtime.GOMAXPROCS(0), crewMaxWorkers)
	if n < 2 {
		return nil
	}
	c := &crew{size: n, wake: make(chan struct{}, n), idle: &crewPhase{}}
	c.cur.Store(c.idle)
	c.spinner.Store(int32(n - 1))
	for w := 1; w < n; w++ {
		go c.help(w)
	}
	return c
})

// crewPhase is one product on the crew, C = A·Bᵀ for C [m,n] (dotNT), in
// pieces of step columns, piece i belonging to worker i, which the caller
// takes over if its worker has not started it when the caller's own piece
// is done. It holds the operands rather than a closure: a product is one
// allocation.
type crewPhase struct {
	pieces, step  int
	m, n, k       int
	a, b, c       []float32
	lda, ldb, ldc int
	job           crewJob       // the work of a phase other than a product
	claimed       atomic.Uint64 // bit i: piece i is taken
	done          atomic.Int64
}

// crewJob is a phase's work when it is not a product: pieces that write
// disjoint outputs, piece i belonging to worker i as a product's columns
// do (crew.run).
type crewJob interface {
	piece(i int)
}

// crewMaxWorkers bounds the crew's size (the bits of claimed).
const crewMaxWorkers = 64

// claim computes piece i unless another worker has taken it.
func (p *crewPhase) claim(i int) {
	bit := uint64(1) << i
	for {
		old := p.claimed.Load()
		if old&bit != 0 {
			return
		}
		if p.claimed.CompareAndSwap(old, old|bit) {
			break
		}
	}
	if p.job != nil {
		p.job.piece(i)
		p.done.Add(1)
		return
	}
	lo := i * p.step
	dotNT(p.m, min(p.n, lo+p.step)-lo, p.k, p.a, p.lda, p.b[lo*p.ldb:], p.ldb, p.c[lo:], p.ldc)
	p.done.Add(1)
}

// dot computes C = A·Bᵀ (dotNT: A [m,k], B [n,k], C [m,n], row strides
// lda, ldb, ldc) cut by columns into one piece per worker, in multiples of
// 16, and reports true; it computes nothing and reports false when another
// caller holds the crew (that caller computes serially instead). Worker i
// computes piece i of every product (so the rows of B it reads stay in its
// cache from one step to the next), or the caller does when worker i has
// not started it by the time the caller's piece is done. Each element of C
// is the same dot product whichever worker computes it.
func (c *crew) dot(m, n, k int, a []float32, lda int, b []float32, ldb int, out []float32, ldc int) bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	step := roundUp(max(1, (n+c.size-1)/c.size), 16)
	c.do(&crewPhase{pieces: (n + step - 1) / step, step: step, m: m, n: n, k: k, a: a, b: b, c: out, lda: lda, ldb: ldb, ldc: ldc})
	return true
}

// run computes pieces (at most the crew's size) pieces of job, piece i by
// worker i or, as in dot, by the caller when worker i has not started it,
// and reports true; it runs nothing and reports false when another caller
// holds the crew.
func (c *crew) run(pieces int, job crewJob) bool {
	if pieces > c.size {
		panic(fmt.Sprintf("gorgonia: crew of %d given %d pieces", c.size, pieces))
	}
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	c.do(&crewPhase{pieces: pieces, job: job})
	return true
}

// do publishes phase p (c.mu held), wakes parked helpers, takes every
// piece not yet taken and waits for the rest.
func (c *crew) do(p *crewPhase) {
	for parked := c.size - 1 - int(c.spinner.Load()); parked > 0; parked-- {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	c.cur.Store(p)
	for i := range p.pieces {
		p.claim(i)
	}
	spinUntil(func() bool { return p.done.Load() == int64(p.pieces) })
	// Publish the empty phase: the finished one would keep its operands
	// (an executable's buffers) reachable until the next product.
	c.cur.Store(c.idle)
}

// help is helper w's loop: run its piece of each new phase, spin up to
// crewIdle for the next, park until woken when none comes.
func (c *crew) help(w int) {
	var last *crewPhase
	for {
		var p *crewPhase
		deadline := time.Now().Add(crewIdle)
		for i := 1; ; i++ {
			if p = c.cur.Load(); p != last {
				break
			}
			if i%1024 != 0 {
				continue
			}
			if time.Now().After(deadline) {
				c.spinner.Add(-1)
				<-c.wake
				c.spinner.Add(1)
				deadline = time.Now().Add(crewIdle)
			}
			runtime.Gosched() // let goroutines waiting for a processor run
		}
		if w < p.pieces {
			p.claim(w)
		}
		last = p
	}
}
