package gorgonia

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

func compile(t *testing.T, spec nn.Spec, build nn.BuildFunc) nn.Executable {
	t.Helper()
	exe, err := New().Compile(spec, build)
	if err != nil {
		t.Fatalf("compile %s: %v", spec.Key, err)
	}
	t.Cleanup(func() { exe.Close() })
	return exe
}

func mustRun(t *testing.T, exe nn.Executable, feeds nn.Feeds) *nn.Result {
	t.Helper()
	res, err := exe.Run(context.Background(), feeds)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func TestBackendIdentity(t *testing.T) {
	b := New()
	if b.Name() != "gorgonia" || b.Device() != "cpu" {
		t.Fatalf("Name/Device = %q/%q", b.Name(), b.Device())
	}
	got, err := nn.OpenBackend("gorgonia", "cpu")
	if err != nil || got.Name() != "gorgonia" {
		t.Fatalf("OpenBackend: %v, %v", got, err)
	}
	if _, err := nn.OpenBackend("gorgonia", "cuda:0"); err == nil {
		t.Fatal("OpenBackend accepted a cuda device")
	}
}

// TestInPlaceUpdatesAreSeen mimics an optimiser: it writes p.Data in place
// between runs, and every executable binding p must see the new values.
// It also checks that replacing the Data slice is picked up.
func TestInPlaceUpdatesAreSeen(t *testing.T) {
	ps := nn.NewParamSet()
	w := ps.Add("w", 2, 2)
	copy(w.Data, []float32{1, 2, 3, 4})
	build := func(g nn.Graph) error {
		y := g.MatMul(g.Floats("x", 1, 2), g.Param(w), false, false)
		g.Output("y", y)
		g.Output("flat", g.Reshape(g.Param(w), 4)) // a view of the parameter
		g.Loss(g.Sum(y))
		return nil
	}
	feeds := nn.Feeds{Floats: map[string][]float32{"x": {1, 1}}}
	ev := compile(t, nn.Spec{Key: "eval", Params: ps}, build)
	tr := compile(t, nn.Spec{Key: "train", Params: ps, Train: true}, build)

	expect(t, "y", mustRun(t, ev, feeds).Outputs["y"], []int{1, 2}, []float32{4, 6})
	mustRun(t, tr, feeds)
	nntest.AssertClose(t, "grad", w.Grad, []float32{1, 1, 1, 1}, 0)
	for i := range w.Data { // SGD step, lr 1
		w.Data[i] -= w.Grad[i]
	}
	expect(t, "y after update (eval)", mustRun(t, ev, feeds).Outputs["y"], []int{1, 2}, []float32{2, 4})
	expect(t, "y after update (train)", mustRun(t, tr, feeds).Outputs["y"], []int{1, 2}, []float32{2, 4})

	w.Data = []float32{10, 20, 30, 40} // a loader replacing the slice
	expect(t, "y after replacing Data", mustRun(t, ev, feeds).Outputs["y"], []int{1, 2}, []float32{40, 60})
	w.Data[0] = 0
	res := mustRun(t, ev, feeds)
	expect(t, "y after updating the new slice", res.Outputs["y"], []int{1, 2}, []float32{30, 60})
	expect(t, "view after updating the new slice", res.Outputs["flat"], []int{4}, []float32{0, 20, 30, 40})
}

func TestNaNCheck(t *testing.T) {
	inf := float32(math.Inf(1))
	build := func(g nn.Graph) error {
		g.Output("y", g.Mul(g.Const([]float32{inf, 1}, 2), g.Floats("z", 2)))
		return nil
	}
	exe, err := New(WithNaNCheck()).Compile(nn.Spec{Key: "nan"}, build)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	if _, err := exe.Run(context.Background(), nn.Feeds{Floats: map[string][]float32{"z": {1, 1}}}); err != nil {
		t.Fatalf("finite run: %v", err)
	}
	if _, err := exe.Run(context.Background(), nn.Feeds{Floats: map[string][]float32{"z": {0, 1}}}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN run: err = %v", err)
	}
}

// TestGradientsOverwrite checks that a training run overwrites every
// gradient (never accumulates) and zeroes those the Loss does not reach.
func TestGradientsOverwrite(t *testing.T) {
	ps := nn.NewParamSet()
	a := ps.Add("a", 2)
	unused := ps.Add("unused", 3) // bound, but not part of the Loss
	other := ps.Add("other", 1)   // not bound at all
	scalar := ps.Add("scalar")    // shape []
	copy(a.Data, []float32{1, 2})
	scalar.Data[0] = 3
	for _, p := range ps.List() {
		for i := range p.Grad {
			p.Grad[i] = 42
		}
	}
	exe := compile(t, nn.Spec{Key: "over", Params: ps, Train: true}, func(g nn.Graph) error {
		g.Output("unused", g.Tanh(g.Param(unused)))
		g.Loss(g.Mul(g.Sum(g.Mul(g.Param(a), g.Param(a))), g.Param(scalar))) // s·Σa²
		return nil
	})
	for range 2 {
		res := mustRun(t, exe, nn.Feeds{})
		if res.Loss != 15 {
			t.Fatalf("loss %v, want 15", res.Loss)
		}
		nntest.AssertClose(t, "a.Grad", a.Grad, []float32{6, 12}, 0)
		nntest.AssertClose(t, "scalar.Grad", scalar.Grad, []float32{5}, 0)
		nntest.AssertClose(t, "unused.Grad", unused.Grad, []float32{0, 0, 0}, 0)
		nntest.AssertClose(t, "other.Grad", other.Grad, []float32{0}, 0)
	}
}

func TestDropout(t *testing.T) {
	const n = 1000
	ps := nn.NewParamSet()
	x := ps.Add("x", n)
	nn.InitConst(x, 1)
	build := func(g nn.Graph) error {
		p := g.Param(x)
		a := g.Dropout(p, 0.25)
		b := g.Dropout(p, 0.5)
		g.Output("a", a)
		g.Output("b", b)
		g.Loss(g.Sum(g.Add(a, b)))
		return nil
	}
	tr := compile(t, nn.Spec{Key: "drop", Params: ps, Train: true}, build)
	r1 := mustRun(t, tr, nn.Feeds{Seed: 5})
	r2 := mustRun(t, tr, nn.Feeds{Seed: 5})
	r3 := mustRun(t, tr, nn.Feeds{Seed: 6})
	nntest.AssertClose(t, "dropout 0 mask", r1.Outputs["a"].Data, nn.DropoutMask(5, 0, n, 0.25), 0)
	nntest.AssertClose(t, "dropout 1 mask", r1.Outputs["b"].Data, nn.DropoutMask(5, 1, n, 0.5), 0)
	if !slices.Equal(r1.Outputs["a"].Data, r2.Outputs["a"].Data) || r1.Loss != r2.Loss {
		t.Fatal("same seed gave different dropout")
	}
	if slices.Equal(r1.Outputs["a"].Data, r3.Outputs["a"].Data) {
		t.Fatal("different seeds gave the same dropout mask")
	}
	// The gradient is the mask: Σ over both dropouts of mask values.
	want := nn.DropoutMask(6, 0, n, 0.25)
	for i, m := range nn.DropoutMask(6, 1, n, 0.5) {
		want[i] += m
	}
	nntest.AssertClose(t, "grad", x.Grad, want, 1e-6)

	ev := compile(t, nn.Spec{Key: "drop-eval", Params: ps}, build)
	r := mustRun(t, ev, nn.Feeds{Seed: 5})
	nntest.AssertClose(t, "eval identity", r.Outputs["a"].Data, x.Data, 0)
}

func TestRunErrors(t *testing.T) {
	build := func(g nn.Graph) error {
		tab := g.Const([]float32{1, 2, 3, 4}, 2, 2)
		e := g.Gather(tab, g.Ints("ids", 3))
		g.Output("y", g.Mul(e, g.Floats("scale", 3, 2)))
		return nil
	}
	exe := compile(t, nn.Spec{Key: "errs/b3"}, build)
	good := nn.Feeds{Ints: map[string][]int{"ids": {0, 1, 0}}, Floats: map[string][]float32{"scale": make([]float32, 6)}}
	mustRun(t, exe, good)

	cases := []struct {
		name  string
		feeds nn.Feeds
		want  []string
	}{
		{"missing int", nn.Feeds{Floats: good.Floats}, []string{"errs/b3", `"ids"`, "missing"}},
		{"short int", nn.Feeds{Ints: map[string][]int{"ids": {0}}, Floats: good.Floats}, []string{"errs/b3", `"ids"`, "1 values, want 3"}},
		{"missing float", nn.Feeds{Ints: good.Ints}, []string{"errs/b3", `"scale"`, "missing"}},
		{"long float", nn.Feeds{Ints: good.Ints, Floats: map[string][]float32{"scale": make([]float32, 7)}}, []string{"errs/b3", `"scale"`, "7 values, want 6"}},
		{"id out of range", nn.Feeds{Ints: map[string][]int{"ids": {0, 2, 0}}, Floats: good.Floats}, []string{"errs/b3", "Gather", "id 2", "[0,2)"}},
		{"negative gather id", nn.Feeds{Ints: map[string][]int{"ids": {-1, 0, 0}}, Floats: good.Floats}, []string{"Gather", "id -1"}},
	}
	for _, c := range cases {
		_, err := exe.Run(context.Background(), c.feeds)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	mustRun(t, exe, good) // a failed run leaves the executable usable

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := exe.Run(ctx, good); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
	if err := exe.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := exe.Run(context.Background(), good); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("run after Close: err = %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	b := New()
	if _, err := b.Compile(nn.Spec{Key: "k", Train: true}, func(g nn.Graph) error {
		g.Output("x", g.Floats("x", 2))
		return nil
	}); err == nil || !strings.Contains(err.Error(), "Loss") {
		t.Errorf("train without loss: %v", err)
	}
	sentinel := errors.New("boom")
	if _, err := b.Compile(nn.Spec{Key: "k"}, func(nn.Graph) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("build error not wrapped: %v", err)
	}
}

// mustPanic compiles a graph built by f and checks that building panics
// with a message containing every string in want.
func mustPanic(t *testing.T, name string, want []string, spec nn.Spec, f func(g nn.Graph)) {
	t.Helper()
	r := capturePanic(func() {
		New().Compile(spec, func(g nn.Graph) error { f(g); return nil })
	})
	if r == nil {
		t.Errorf("%s: no panic", name)
		return
	}
	msg := fmt.Sprint(r)
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: panic %q does not mention %q", name, msg, w)
		}
	}
}

func capturePanic(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func TestShapeMisusePanics(t *testing.T) {
	f := func(g nn.Graph, s ...int) nn.Tensor { return g.Floats(fmt.Sprint(s), s...) }
	spec := nn.Spec{Key: "panic"}
	cases := []struct {
		name string
		want []string
		f    func(g nn.Graph)
	}{
		{"MatMul", []string{"MatMul", "[2 3]", "[4 5]"}, func(g nn.Graph) { g.MatMul(f(g, 2, 3), f(g, 4, 5), false, false) }},
		{"MatMul rank", []string{"MatMul", "[2 3 4]"}, func(g nn.Graph) { g.MatMul(f(g, 2, 3, 4), f(g, 4, 5), false, false) }},
		{"BatchMatMul", []string{"BatchMatMul", "[2 2 3]", "[3 3 2]"}, func(g nn.Graph) { g.BatchMatMul(f(g, 2, 2, 3), f(g, 3, 3, 2), false, false) }},
		{"Add", []string{"Add", "[2 3]", "[2]"}, func(g nn.Graph) { g.Add(f(g, 2, 3), f(g, 2)) }},
		{"Mul", []string{"Mul", "[3]", "[2 3]"}, func(g nn.Graph) { g.Mul(f(g, 3), f(g, 2, 3)) }},
		{"Add int", []string{"Add", "integer"}, func(g nn.Graph) { g.Add(g.Ints("i", 2), f(g, 2)) }},
		{"Reshape", []string{"Reshape", "[2 3]", "[4 2]"}, func(g nn.Graph) { g.Reshape(f(g, 2, 3), 4, 2) }},
		{"Transpose", []string{"Transpose", "[0 0]"}, func(g nn.Graph) { g.Transpose(f(g, 2, 3), 0, 0) }},
		{"Slice", []string{"Slice", "[2 3]"}, func(g nn.Graph) { g.Slice(f(g, 2, 3), 1, 2, 4) }},
		{"Concat", []string{"Concat", "[2 3]", "[3 3]"}, func(g nn.Graph) { g.Concat(1, f(g, 2, 3), f(g, 3, 3)) }},
		{"Gather float ids", []string{"Gather", "integer"}, func(g nn.Graph) { g.Gather(f(g, 4, 2), f(g, 3)) }},
		{"Pick rows", []string{"Pick", "[3 4]", "[2]"}, func(g nn.Graph) { g.Pick(f(g, 3, 4), g.Ints("i", 2)) }},
		{"LayerNorm", []string{"LayerNorm", "[2 3]", "[2]"}, func(g nn.Graph) { x := f(g, 2); g.LayerNorm(f(g, 2, 3), x, x, 1e-5) }},
		{"Softmax scalar", []string{"Softmax", "[]"}, func(g nn.Graph) { g.Softmax(g.Sum(f(g, 2))) }},
		{"Loss", []string{"Loss", "[2]"}, func(g nn.Graph) { g.Loss(f(g, 2)) }},
		{"Dropout p", []string{"Dropout", "1"}, func(g nn.Graph) { g.Dropout(f(g, 2), 1) }},
		{"Output twice", []string{"Output", `"y"`}, func(g nn.Graph) { x := f(g, 2); g.Output("y", x); g.Output("y", x) }},
		{"Ints twice", []string{"Ints", `"i"`}, func(g nn.Graph) { g.Ints("i", 2); g.Ints("i", 2) }},
		{"bad dims", []string{"Floats", "[2 0]"}, func(g nn.Graph) { f(g, 2, 0) }},
	}
	for _, c := range cases {
		mustPanic(t, c.name, c.want, spec, c.f)
	}
	w := nn.NewParamSet().Add("w", 2)
	mustPanic(t, "foreign param", []string{"Param", `"w"`}, nn.Spec{Key: "p", Params: nn.NewParamSet()},
		func(g nn.Graph) { g.Param(w) })
	var other nn.Tensor
	if _, err := New().Compile(spec, func(g nn.Graph) error { other = f(g, 2); g.Output("o", other); return nil }); err != nil {
		t.Fatal(err)
	}
	mustPanic(t, "foreign tensor", []string{"Tanh", "another graph"}, spec, func(g nn.Graph) { g.Tanh(other) })
	var late nn.Graph
	if _, err := New().Compile(spec, func(g nn.Graph) error { late = g; g.Output("o", f(g, 2)); return nil }); err != nil {
		t.Fatal(err)
	}
	if r := capturePanic(func() { late.Floats("x", 2) }); r == nil || !strings.Contains(fmt.Sprint(r), "after the build") {
		t.Errorf("use after build: %v", r)
	}
}

// TestLargeGraph compiles an unrolled recurrence of a few thousand nodes
// (the scale at which gorgonia's 32-bit node hashes would collide) and checks
// its value against a direct computation.
func TestLargeGraph(t *testing.T) {
	const steps = 1500
	res := eval(t, nil, nn.Feeds{}, func(g nn.Graph) error {
		h := g.Const([]float32{0}, 1)
		one := g.Const([]float32{1}, 1)
		for range steps {
			h = g.Scale(g.Add(h, one), 0.5)
		}
		g.Output("h", h)
		return nil
	})
	var h float32
	for range steps {
		h = (h + 1) * 0.5
	}
	expect(t, "h", res.Outputs["h"], []int{1}, []float32{h})
}

// TestHashCollisionRetry feeds two inputs whose gorgonia node hashes collide
// for salt 0 (found by search). Gorgonia's compiler would merge them and
// compute x - y = 0; Compile must detect the collision and rebuild.
func TestHashCollisionRetry(t *testing.T) {
	const xn, yn = "53925", "294890"
	build := func(g nn.Graph) error {
		g.Output("d", g.Sub(g.Floats(xn, 2), g.Floats(yn, 2)))
		return nil
	}
	b := newBuilder(nn.Spec{Key: "collide"}, 0)
	if err := build(b); err != nil {
		t.Fatal(err)
	}
	if !b.hashCollision() {
		t.Fatal("precondition: the two input names no longer collide under salt 0 (gorgonia's node hash changed?)")
	}
	res := eval(t, nil, nn.Feeds{Floats: map[string][]float32{xn: {1, 2}, yn: {10, 20}}}, build)
	expect(t, "x-y", res.Outputs["d"], []int{2}, []float32{-9, -18})
}
