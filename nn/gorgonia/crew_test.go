package gorgonia

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrewSplit: every element is computed once, by pieces of whole
// multiples of align, whether the helpers are spinning or parked (after
// crewIdle without work), and callers that find the crew busy are told
// so and compute nothing.
func TestCrewSplit(t *testing.T) {
	c := sharedCrew()
	if c == nil {
		t.Skip("one processor: no crew")
	}
	for _, pause := range []time.Duration{0, 2 * crewIdle} {
		for _, n := range []int{1, 16, 33, 1000} {
			time.Sleep(pause)
			var count [1000]atomic.Int32
			if !c.split(n, 16, func(lo, hi int) {
				if lo%16 != 0 {
					t.Errorf("n = %d: piece starts at %d", n, lo)
				}
				for i := lo; i < hi; i++ {
					count[i].Add(1)
				}
			}) {
				t.Fatalf("n = %d: split refused with no other caller", n)
			}
			for i := range n {
				if got := count[i].Load(); got != 1 {
					t.Fatalf("pause %v, n = %d: element %d computed %d times", pause, n, i, got)
				}
			}
		}
	}
	release := make(chan struct{})
	started := make(chan struct{})
	go c.split(2, 1, func(lo, _ int) {
		if lo == 0 {
			close(started)
			<-release
		}
	})
	<-started
	if c.split(2, 1, func(int, int) { t.Error("a busy crew ran a second caller's piece") }) {
		t.Error("split on a busy crew reported true")
	}
	close(release)
}

// TestCrewProductsEqualSerial: the products sgemm gives the crew (few
// rows, A·Bᵀ; all but the first shape here) have the bits of the serial
// dotNT, also from several goroutines at once (one holds the crew, the
// others compute serially).
func TestCrewProductsEqualSerial(t *testing.T) {
	if sharedCrew() == nil {
		t.Skip("one processor: no crew")
	}
	shapes := [][3]int{{1, 16, 16}, {1, 512, 128}, {1, 37, 513}, {32, 384, 128}, {5, 100, 171}, {64, 64, 64}}
	for _, p := range gemmPaths {
		t.Run(p.String(), func(t *testing.T) {
			useGemmPath(t, p)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i, s := range shapes {
						m, n, k := s[0], s[1], s[2]
						rng := rand.New(rand.NewPCG(uint64(g), uint64(i)))
						a, b := randomFloats(rng, m*k, 1), randomFloats(rng, n*k, 1)
						want, got := make([]float32, m*n), make([]float32, m*n)
						dotNT(m, n, k, a, k, b, k, want, n)
						var pool gemmPool
						pool.sgemm(false, true, m, n, k, a, k, b, k, got, n, false)
						for j := range want {
							if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
								t.Errorf("%v: element %d is %v, serial %v", s, j, got[j], want[j])
								return
							}
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// TestCrewKeepsNoOperands: once split returns, the crew no longer
// references the product's operands (they would stay reachable until the
// next product: a closed executable's buffers, seen as a lower live heap
// by the plugins' memory tests).
func TestCrewKeepsNoOperands(t *testing.T) {
	c := sharedCrew()
	if c == nil {
		t.Skip("one processor: no crew")
	}
	freed := make(chan struct{})
	func() {
		buf := &[1 << 16]float32{}
		runtime.SetFinalizer(buf, func(*[1 << 16]float32) { close(freed) })
		c.split(64, 16, func(lo, hi int) { buf[lo] = float32(hi) })
	}()
	for range 10 {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the operands of a finished product are still reachable")
}
