package gorgonia

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// workerPool runs the parallel parts of kernels on helper goroutines that
// stay awake between kernels. A training step runs thousands of kernels,
// many of them tens of microseconds long; starting a goroutine for each
// wakes an idle thread through the kernel (futex) every time, which
// profiling showed to cost 10–15% of a step on two cores. The helpers
// instead spin for a short while after each job (spinFor), so the next
// job, which usually follows within microseconds, starts without a system
// call; idle helpers then block until the next job.
//
// One pool belongs to a Backend and is shared by its executables. Only
// one dispatcher uses the helpers at a time; a concurrent one falls back
// to fresh goroutines.
type workerPool struct {
	once    sync.Once
	busy    atomic.Bool
	helpers []*helper
}

// spinFor is how long an idle helper polls for work before it blocks.
const spinFor = 100 * time.Microsecond

type poolJob struct {
	body   func(w, lo, hi int)
	w      int
	lo, hi int
	done   *atomic.Int32
}

type helper struct {
	job    atomic.Pointer[poolJob]
	parked atomic.Bool
	wake   chan struct{}
}

func (p *workerPool) start() {
	n := max(runtime.NumCPU()-1, 0)
	p.helpers = make([]*helper, n)
	for i := range p.helpers {
		h := &helper{wake: make(chan struct{}, 1)}
		p.helpers[i] = h
		go h.loop()
	}
}

func (h *helper) loop() {
	for {
		idleSince := time.Now()
		for i := 0; ; i++ {
			if j := h.job.Swap(nil); j != nil {
				j.body(j.w, j.lo, j.hi)
				j.done.Add(-1)
				idleSince, i = time.Now(), 0
				continue
			}
			if i%256 == 255 {
				if time.Since(idleSince) > spinFor {
					break
				}
				runtime.Gosched()
			}
		}
		// Park; the dispatcher stores the job before reading parked and we
		// store parked before re-reading the job, so one of us sees the
		// other (sync/atomic is sequentially consistent).
		h.parked.Store(true)
		if h.job.Load() == nil {
			<-h.wake
		}
		h.parked.Store(false)
	}
}

// For runs body(w, lo, hi) over [0,n) split into nw contiguous ranges,
// worker w = 0 on the calling goroutine. A nil pool starts goroutines.
func (p *workerPool) For(n, nw int, body func(w, lo, hi int)) {
	if nw <= 1 || n <= 1 {
		body(0, 0, n)
		return
	}
	nw = min(nw, n)
	if p == nil || !p.busy.CompareAndSwap(false, true) {
		spawnFor(n, nw, body)
		return
	}
	defer p.busy.Store(false)
	p.once.Do(p.start)
	nw = min(nw, len(p.helpers)+1)
	if nw <= 1 {
		body(0, 0, n)
		return
	}
	var done atomic.Int32
	done.Store(int32(nw - 1))
	jobs := make([]poolJob, nw-1)
	for w := 1; w < nw; w++ {
		jobs[w-1] = poolJob{body: body, w: w, lo: w * n / nw, hi: (w + 1) * n / nw, done: &done}
		h := p.helpers[w-1]
		h.job.Store(&jobs[w-1])
		if h.parked.Load() {
			select {
			case h.wake <- struct{}{}:
			default:
			}
		}
	}
	body(0, 0, n/nw)
	for i := 0; done.Load() != 0; i++ {
		if i%64 == 63 {
			runtime.Gosched()
		}
	}
}

// spawnFor is For on fresh goroutines.
func spawnFor(n, nw int, body func(w, lo, hi int)) {
	var wg sync.WaitGroup
	for w := 1; w < nw; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(w, w*n/nw, (w+1)*n/nw)
		}()
	}
	body(0, 0, n/nw)
	wg.Wait()
}

// splitRange runs body over [0,n) in contiguous pieces whose boundaries are
// multiples of align (a row length; n must be a multiple of it), on up to
// GOMAXPROCS workers when the estimated work n·cost is large enough.
func (p *workerPool) splitRange(n, align int, cost float64, body func(lo, hi int)) {
	total := float64(n) * cost
	if total < serialWorkNS || align <= 0 || n < 2*align {
		body(0, n)
		return
	}
	units := n / align
	nw := min(runtime.GOMAXPROCS(0), int(total/workPerWorkerNS), units)
	p.For(units, nw, func(_, lo, hi int) { body(lo*align, hi*align) })
}

// binary is the element-wise binary kernel split across workers for large
// operands.
func (p *workerPool) binary(kind byte, a, b, out []float32) {
	if len(a) == len(b) {
		p.splitRange(len(a), 1, costCheap, func(lo, hi int) { binary(kind, a[lo:hi], b[lo:hi], out[lo:hi]) })
		return
	}
	p.splitRange(len(a), len(b), costCheap, func(lo, hi int) { binary(kind, a[lo:hi], b, out[lo:hi]) })
}
