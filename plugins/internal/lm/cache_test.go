package lm

import (
	"context"
	"testing"

	"arbench/nn"
)

type fakeBackend struct{ compiled, closed map[string]int }

func (*fakeBackend) Name() string   { return "fake" }
func (*fakeBackend) Device() string { return "cpu" }
func (f *fakeBackend) Compile(spec nn.Spec, _ nn.BuildFunc) (nn.Executable, error) {
	f.compiled[spec.Key]++
	return &fakeExec{key: spec.Key, b: f}, nil
}

type fakeExec struct {
	key string
	b   *fakeBackend
}

func (*fakeExec) Run(context.Context, nn.Feeds) (*nn.Result, error) { return &nn.Result{}, nil }
func (e *fakeExec) Close() error                                    { e.b.closed[e.key]++; return nil }

// TestCacheEvictsLeastRecentlyUsed: beyond the limit the least recently
// used executable is closed and recompiled on its next use.
func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	fb := &fakeBackend{compiled: map[string]int{}, closed: map[string]int{}}
	c := NewCache(fb, nn.NewParamSet())
	c.SetLimit(2)
	get := func(k string) {
		if _, err := c.Get(k, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	get("a")
	get("b")
	get("a") // b is now the least recently used
	get("c") // evicts b
	if fb.closed["b"] != 1 || fb.closed["a"] != 0 || c.Len() != 2 {
		t.Fatalf("after a,b,a,c with limit 2: closed %v, %d cached", fb.closed, c.Len())
	}
	get("a")
	if fb.compiled["a"] != 1 {
		t.Fatalf("a compiled %d times, want 1 (still cached)", fb.compiled["a"])
	}
	get("b")
	if fb.compiled["b"] != 2 || fb.closed["c"] != 1 {
		t.Fatalf("b compiled %d times (want 2), c closed %d times (want 1)", fb.compiled["b"], fb.closed["c"])
	}
	if err := c.Close(); err != nil || c.Len() != 0 || fb.closed["a"] != 1 {
		t.Fatalf("Close: err %v, %d left, a closed %d times", err, c.Len(), fb.closed["a"])
	}
}
