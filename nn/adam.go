package nn

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// adamUpdate holds one parameter's constants of Adam's update at one step
// (see Adam): the betas and one minus each, the bias-corrected step size
// lr/(1−β1ᵗ), √(1−β2ᵗ), ε and the weight decay λ.
type adamUpdate struct {
	b1, omb1, b2, omb2 float64
	stepSize, bc2Sqrt  float64
	eps, wd            float64
}

// adamJob is a run of one parameter's elements with their gradients and
// moments.
type adamJob struct {
	u          adamUpdate
	p, g, m, v []float32
}

// adamChunk is how many elements a job holds at most: large parameters are
// cut into jobs the workers share.
const adamChunk = 1 << 15

// runAdamJobs updates every job's elements, on GOMAXPROCS goroutines when
// there are enough of them. Each element's update depends on that element
// alone, so the split changes no bit.
func runAdamJobs(jobs []adamJob) {
	total := 0
	for _, j := range jobs {
		total += len(j.p)
	}
	nw := min(runtime.GOMAXPROCS(0), len(jobs), total/adamChunk)
	if nw <= 1 {
		for _, j := range jobs {
			adamSpan(j)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func() {
		for i := int(next.Add(1)) - 1; i < len(jobs); i = int(next.Add(1)) - 1 {
			adamSpan(jobs[i])
		}
	}
	for range nw - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// adamSpan updates job j's elements: eight at a time in the AVX-512 kernel
// where the CPU has it, the rest in adamElems.
func adamSpan(j adamJob) {
	done := 0
	if haveAdamAVX512 && len(j.p) >= 8 {
		done = len(j.p) &^ 7
		adamAVX512(done/8, &j.p[0], &j.g[0], &j.m[0], &j.v[0], &j.u)
	}
	adamElems(j.u, j.p[done:], j.g[done:], j.m[done:], j.v[done:])
}

// adamElems is Adam's update of each element, in float64 (see Adam), the
// reference of adamAVX512, which performs the same operations in the same
// order, each rounded alike (amd64 does not fuse a multiply and an add
// unless told to), so the two agree bit for bit.
func adamElems(u adamUpdate, p, g, m, v []float32) {
	for i, g32 := range g {
		theta := float64(p[i])
		gi := float64(g32)
		if u.wd != 0 {
			gi += u.wd * theta
		}
		mi := u.b1*float64(m[i]) + u.omb1*gi
		vi := u.b2*float64(v[i]) + u.omb2*gi*gi
		m[i], v[i] = float32(mi), float32(vi)
		denom := math.Sqrt(float64(v[i]))/u.bc2Sqrt + u.eps
		p[i] = float32(theta - u.stepSize*float64(m[i])/denom)
	}
}
