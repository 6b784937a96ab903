package gorgonia

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestTeamRunsEveryItemOnce: run calls the body once per item, with
// worker indices below the team's size, phase after phase; split covers
// [0, n) with pieces aligned as asked; close ends the helpers.
func TestTeamRunsEveryItemOnce(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, size := range []int{0, 1, 2, 3} {
		tm := newTeam(size)
		for _, n := range []int{0, 1, 5, 200} {
			for phase := range 20 {
				counts := make([]atomic.Int32, n)
				var bad atomic.Bool
				tm.run(n, func(w, i int) {
					bad.Store(bad.Load() || w < 0 || w >= max(size, 1))
					counts[i].Add(1)
				})
				for i := range counts {
					if c := counts[i].Load(); c != 1 {
						t.Fatalf("size %d, n %d, phase %d: item %d ran %d times", size, n, phase, i, c)
					}
				}
				if bad.Load() {
					t.Fatalf("size %d: a worker index outside [0, %d)", size, size)
				}
			}
			for _, align := range []int{1, 6, 8} {
				covered := make([]atomic.Int32, n)
				tm.split(n, align, func(_, lo, hi int) {
					if lo%align != 0 || lo >= hi || hi > n {
						panic(fmt.Sprintf("piece [%d,%d) of %d, align %d", lo, hi, n, align))
					}
					for i := lo; i < hi; i++ {
						covered[i].Add(1)
					}
				})
				for i := range covered {
					if c := covered[i].Load(); c != 1 {
						t.Fatalf("size %d: split(%d, %d) covered %d %d times", size, n, align, i, c)
					}
				}
			}
		}
		tm.close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after closing the teams, %d before", n, before)
	}
}
