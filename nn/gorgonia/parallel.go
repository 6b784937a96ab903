package gorgonia

import (
	"runtime"
	"sync"
)

// Estimated single-core costs, in nanoseconds per element, used to decide
// whether an element-wise or row-wise kernel is split across goroutines.
const (
	costCheap = 0.5 // add, multiply, copy-like
	costMath  = 2   // exp, tanh (eight lanes at a time)
	// serialWorkNS is the work below which a kernel runs on one goroutine;
	// workPerWorkerNS is the least work worth handing to another one.
	// Starting a goroutine on an idle processor wakes a thread through
	// the kernel (futex), some microseconds each time; profiles of
	// training steps on two cores showed 10–15% of the time in those
	// wake-ups with limits a few times lower. (A pool of spinning helper
	// goroutines avoided the wake-ups on an idle machine but wasted the
	// cores and ran slower on a loaded one.)
	serialWorkNS    = 100_000
	workPerWorkerNS = 50_000
)

// parallelFor runs body(w, lo, hi) over [0,n) split into nw contiguous
// ranges, worker w = 0 on the calling goroutine.
func parallelFor(n, nw int, body func(w, lo, hi int)) {
	if nw <= 1 || n <= 1 {
		body(0, 0, n)
		return
	}
	nw = min(nw, n)
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
// GOMAXPROCS goroutines when the estimated work n·cost is large enough.
func splitRange(n, align int, cost float64, body func(lo, hi int)) {
	total := float64(n) * cost
	if serialWork(n, cost) || align <= 0 || n < 2*align {
		body(0, n)
		return
	}
	units := n / align
	nw := min(runtime.GOMAXPROCS(0), int(total/workPerWorkerNS), units)
	parallelFor(units, nw, func(_, lo, hi int) { body(lo*align, hi*align) })
}

// serialWork reports whether splitRange runs n elements of cost serially.
// Callers on hot paths test it first and call their kernel directly: the
// closure they would pass splitRange is allocated on the heap (its
// parallel path hands it to goroutines) even when it runs serially, which
// a decoding step's small nodes paid once each.
func serialWork(n int, cost float64) bool { return float64(n)*cost < serialWorkNS }

// binaryPar is the element-wise binary kernel split across goroutines for
// large operands.
func binaryPar(kind byte, a, b, out []float32) {
	if serialWork(len(a), costCheap) {
		binary(kind, a, b, out)
		return
	}
	if len(a) == len(b) {
		splitRange(len(a), 1, costCheap, func(lo, hi int) { binary(kind, a[lo:hi], b[lo:hi], out[lo:hi]) })
		return
	}
	splitRange(len(a), len(b), costCheap, func(lo, hi int) { binary(kind, a[lo:hi], b, out[lo:hi]) })
}
