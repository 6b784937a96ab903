package gorgonia

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestCrewDot: a product on the crew has the bits of the serial dotNT
// whether the helpers are spinning or parked (after crewIdle without
// work), for column counts below, at and past one piece per worker, and a
// caller that finds the crew busy is told so and nothing is computed.
func TestCrewDot(t *testing.T) {
	c := sharedCrew()
	if c == nil {
		t.Skip("one processor: no crew")
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for _, pause := range []time.Duration{0, 2 * crewIdle} {
		for _, n := range []int{1, 16, 33, 1000} {
			const m, k = 3, 45
			a, b := randomFloats(rng, m*k, 1), randomFloats(rng, n*k, 1)
			want, got := make([]float32, m*n), make([]float32, m*n)
			dotNT(nil, m, n, k, a, k, b, k, want, n)
			time.Sleep(pause)
			if !c.dot(m, n, k, a, k, b, k, got, n) {
				t.Fatalf("n = %d: dot refused with no other caller", n)
			}
			for j := range want {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("pause %v, n = %d: element %d is %v, serial %v", pause, n, j, got[j], want[j])
				}
			}
		}
	}
	c.mu.Lock()
	out := make([]float32, 64)
	busy := c.dot(1, 64, 1, []float32{1}, 1, make([]float32, 64), 1, out, 64)
	c.mu.Unlock()
	if busy {
		t.Error("dot on a busy crew reported true")
	}
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
						dotNT(nil, m, n, k, a, k, b, k, want, n)
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
		b := make([]float32, 1<<16)
		runtime.SetFinalizer(&b[0], func(*float32) { close(freed) })
		c.dot(1, 1<<10, 64, make([]float32, 64), 64, b, 64, make([]float32, 1<<10), 1<<10)
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

// BenchmarkCrewHandOver: products of one row too small to gain from a
// second core (32 × 512 weights), on the crew, against serial dotNT: the
// difference is the cost of handing a phase over and collecting it.
func BenchmarkCrewHandOver(b *testing.B) {
	cr := sharedCrew()
	if cr == nil {
		b.Skip("one processor: no crew")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	const n, k = 32, 512
	a, w, c := randVec(rng, k), randVec(rng, n*k), make([]float32, n)
	b.Run("serial", func(b *testing.B) {
		for range b.N {
			dotNT(nil, 1, n, k, a, k, w, k, c, n)
		}
	})
	b.Run("crew", func(b *testing.B) {
		for range b.N {
			if !cr.dot(1, n, k, a, k, w, k, c, n) {
				b.Fatal("the crew is busy")
			}
		}
	})
}
