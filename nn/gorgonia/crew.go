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
	spinner atomic.Int32 // helpers spinning, not parked
	wake    chan struct{}
	// seq, which the helpers poll, is the current phase's number times
	// crewSeqStep plus its number of pieces; phase holds its operands,
	// written by the caller before it stores seq, so a helper finds the
	// phase's description in the cache lines it polls (one allocation and
	// two lines moved between the cores fewer per phase than a pointer
	// to a new phase: BenchmarkCrewHandOver).
	_     [cacheLine]byte
	seq   atomic.Uint64
	phase crewPhase
	_     [cacheLine]byte
	// workers[i] is piece i's claim and completion, on lines of their own.
	workers []crewWorker
}

// crewWorker is piece i's state: claim is the number of the last phase
// whose piece i was taken (by worker i or the caller), done the last whose
// piece i is computed.
type crewWorker struct {
	claim atomic.Uint64
	_     [cacheLine - 8]byte
	done  atomic.Uint64
	_     [cacheLine - 8]byte
}

// crewSeqStep is the step of crew.seq from one phase to the next; the
// remainder is the phase's number of pieces.
const crewSeqStep = 256

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
	c := &crew{size: n, wake: make(chan struct{}, n), workers: make([]crewWorker, n)}
	c.spinner.Store(int32(n - 1))
	for w := 1; w < n; w++ {
		go c.help(w)
	}
	return c
})

// crewPhase is one product on the crew, C = A·Bᵀ for C [m,n] (dotNT), in
// pieces of step columns, or pieces of a job; piece i belongs to worker i,
// which the caller takes over if its worker has not started it when the
// caller's own piece (piece 0) is done.
type crewPhase struct {
	pieces, step  int
	m, n, k       int
	lda, ldb, ldc int
	a, b, c       []float32
	job           crewJob // the work of a phase other than a product
}

// crewJob is a phase's work when it is not a product: pieces that write
// disjoint outputs, piece i belonging to worker i as a product's columns
// do (crew.run).
type crewJob interface {
	piece(i int)
}

// crewMaxWorkers bounds the crew's size (the pieces in crew.seq).
const crewMaxWorkers = 64

// compute computes piece i of p.
func (p *crewPhase) compute(i int) {
	if p.job != nil {
		p.job.piece(i)
		return
	}
	lo := i * p.step
	dotNT(nil, p.m, min(p.n, lo+p.step)-lo, p.k, p.a, p.lda, p.b[lo*p.ldb:], p.ldb, p.c[lo:], p.ldc)
}

// claim reports whether it took piece i of phase s for the caller (false:
// another worker took it).
func (c *crew) claim(i int, s uint64) bool {
	w := &c.workers[i]
	for {
		old := w.claim.Load()
		if old >= s {
			return false
		}
		if w.claim.CompareAndSwap(old, s) {
			return true
		}
	}
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
	step := roundUp(max(1, (n+c.size-1)/c.size), 16)
	return c.do(crewPhase{pieces: (n + step - 1) / step, step: step, m: m, n: n, k: k, a: a, b: b, c: out, lda: lda, ldb: ldb, ldc: ldc})
}

// run computes pieces (at most the crew's size) pieces of job, piece i by
// worker i or, as in dot, by the caller when worker i has not started it,
// and reports true; it runs nothing and reports false when another caller
// holds the crew.
func (c *crew) run(pieces int, job crewJob) bool {
	if pieces > c.size {
		panic(fmt.Sprintf("gorgonia: crew of %d given %d pieces", c.size, pieces))
	}
	return c.do(crewPhase{pieces: pieces, job: job})
}

// do runs phase ph and reports true, or reports false at once when another
// caller holds the crew: it wakes parked helpers, publishes the phase's
// number, computes piece 0 and every piece not yet taken, and waits for
// the rest.
func (c *crew) do(ph crewPhase) bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	c.phase = ph
	for parked := c.size - 1 - int(c.spinner.Load()); parked > 0; parked-- {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	p := &c.phase
	s := c.seq.Load()/crewSeqStep + 1
	c.seq.Store(s*crewSeqStep + uint64(p.pieces))
	p.compute(0)
	for i := 1; i < p.pieces; i++ {
		if c.claim(i, s) {
			p.compute(i)
			c.workers[i].done.Store(s)
		}
	}
	for i := 1; i < p.pieces; i++ {
		w := &c.workers[i]
		spinUntil(func() bool { return w.done.Load() >= s })
	}
	// Drop the operands: they would keep an executable's buffers
	// reachable until the next phase.
	*p = crewPhase{}
	return true
}

// help is helper w's loop: run its piece of each new phase, spin up to
// crewIdle for the next, park until woken when none comes. It reads a
// phase's operands only once it holds the claim on its piece, which the
// caller waits on before it writes the next phase.
func (c *crew) help(w int) {
	last := c.seq.Load()
	for {
		var v uint64
		deadline := time.Now().Add(crewIdle)
		for i := 1; ; i++ {
			if v = c.seq.Load(); v != last {
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
		last = v
		if s := v / crewSeqStep; w < int(v%crewSeqStep) && c.claim(w, s) {
			c.phase.compute(w)
			c.workers[w].done.Store(s)
		}
	}
}
