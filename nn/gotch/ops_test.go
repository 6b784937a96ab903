//go:build gotch

package gotch_test

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"arbench/nn"
	"arbench/nn/gorgonia"
	"arbench/nn/gotch"
	"arbench/nn/nntest"
)

// testDevice is the device the tests run gotch on: cpu unless
// ARBENCH_GOTCH_DEVICE names another (scripts/gpu-check.sh sets cuda).
func testDevice() string {
	if d := os.Getenv("ARBENCH_GOTCH_DEVICE"); d != "" {
		return d
	}
	return "cpu"
}

func openGotch(t testing.TB) nn.Backend {
	t.Helper()
	b, err := gotch.New(testDevice())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runBoth compiles build on gorgonia and gotch with the same parameters and
// feeds and compares outputs, loss and (when training) every gradient.
func runBoth(t *testing.T, ps *nn.ParamSet, feeds nn.Feeds, train bool, tol float64, build nn.BuildFunc) {
	t.Helper()
	ctx := context.Background()
	run := func(b nn.Backend) (*nn.Result, map[string][]float32) {
		t.Helper()
		exe, err := b.Compile(nn.Spec{Key: "cmp", Params: ps, Train: train}, build)
		if err != nil {
			t.Fatalf("%s: compile: %v", b.Name(), err)
		}
		defer exe.Close()
		for _, p := range ps.List() {
			for i := range p.Grad {
				p.Grad[i] = float32(math.NaN()) // Run must overwrite every gradient
			}
		}
		res, err := exe.Run(ctx, feeds)
		if err != nil {
			t.Fatalf("%s: run: %v", b.Name(), err)
		}
		grads := map[string][]float32{}
		for _, p := range ps.List() {
			grads[p.Name] = slices.Clone(p.Grad)
		}
		return res, grads
	}
	want, wantGrads := run(gorgonia.New())
	got, gotGrads := run(openGotch(t))
	if len(got.Outputs) != len(want.Outputs) {
		t.Fatalf("gotch returned %d outputs, gorgonia %d", len(got.Outputs), len(want.Outputs))
	}
	for name, w := range want.Outputs {
		g, ok := got.Outputs[name]
		if !ok {
			t.Fatalf("gotch output %q missing", name)
		}
		if !slices.Equal(g.Shape, w.Shape) {
			t.Fatalf("output %q: shape %v, gorgonia %v", name, g.Shape, w.Shape)
		}
		nntest.AssertClose(t, "output "+name, g.Data, w.Data, tol)
	}
	if d := math.Abs(got.Loss - want.Loss); d > tol*(1+math.Abs(want.Loss)) {
		t.Errorf("loss %.7g, gorgonia %.7g", got.Loss, want.Loss)
	}
	if train {
		for _, p := range ps.List() {
			nntest.AssertClose(t, "grad "+p.Name, gotGrads[p.Name], wantGrads[p.Name], tol)
		}
	}
}

const opTol = 1e-5

func TestMatMulMatchesGorgonia(t *testing.T) {
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		ps := nn.NewParamSet()
		// a is [3,4] (or its transpose), b is [4,5] (or its transpose).
		as, bs := []int{3, 4}, []int{4, 5}
		if tr[0] {
			as = []int{4, 3}
		}
		if tr[1] {
			bs = []int{5, 4}
		}
		a := nntest.RandomParam(ps, "a", 1, 1, as...)
		b := nntest.RandomParam(ps, "b", 2, 1, bs...)
		// Batched: [2, ...] versions.
		ba := nntest.RandomParam(ps, "ba", 3, 1, append([]int{2}, as...)...)
		bb := nntest.RandomParam(ps, "bb", 4, 1, append([]int{2}, bs...)...)
		runBoth(t, ps, nn.Feeds{}, true, opTol, func(g nn.Graph) error {
			y := g.MatMul(g.Param(a), g.Param(b), tr[0], tr[1])
			z := g.BatchMatMul(g.Param(ba), g.Param(bb), tr[0], tr[1])
			g.Output("y", y)
			g.Output("z", z)
			g.Loss(g.Add(nntest.Projection(g, y, 5), nntest.Projection(g, z, 6)))
			return nil
		})
	}
}

func TestElementwiseMatchesGorgonia(t *testing.T) {
	ps := nn.NewParamSet()
	x := nntest.RandomParam(ps, "x", 1, 2, 2, 3, 4)
	y := nntest.RandomParam(ps, "y", 2, 2, 2, 3, 4)
	m := nntest.RandomParam(ps, "m", 3, 2, 3, 4)
	v := nntest.RandomParam(ps, "v", 4, 2, 4)
	runBoth(t, ps, nn.Feeds{}, true, opTol, func(g nn.Graph) error {
		xt, yt := g.Param(x), g.Param(y)
		outs := []nn.Tensor{
			g.Add(xt, yt), g.Sub(xt, yt), g.Mul(xt, yt),
			g.Add(xt, g.Param(m)), g.Sub(xt, g.Param(v)), g.Mul(xt, g.Param(m)),
			g.Scale(xt, -0.37), g.Tanh(xt), g.Sigmoid(yt), g.ReLU(xt),
		}
		var loss nn.Tensor
		for i, o := range outs {
			g.Output(string(rune('a'+i)), o)
			p := nntest.Projection(g, o, uint64(10+i))
			if loss == nil {
				loss = p
			} else {
				loss = g.Add(loss, p)
			}
		}
		g.Loss(loss)
		return nil
	})
}

func TestShapeOpsMatchGorgonia(t *testing.T) {
	ps := nn.NewParamSet()
	x := nntest.RandomParam(ps, "x", 1, 1, 2, 3, 4)
	y := nntest.RandomParam(ps, "y", 2, 1, 2, 2, 4)
	runBoth(t, ps, nn.Feeds{}, true, opTol, func(g nn.Graph) error {
		xt := g.Param(x)
		outs := []nn.Tensor{
			g.Reshape(xt, 6, 4),
			g.Transpose(xt, 2, 0, 1),
			g.Slice(xt, 1, 1, 3), // not contiguous
			g.Slice(xt, 0, 1, 2),
			g.Concat(1, xt, g.Param(y), xt),
			g.Concat(0, xt, xt),
			// A transposed (strided) value through reshape and matmul.
			g.MatMul(g.Reshape(g.Transpose(xt, 0, 2, 1), 8, 3), g.Reshape(g.Slice(xt, 2, 0, 2), 3, 4), false, false),
		}
		var loss nn.Tensor
		for i, o := range outs {
			g.Output(string(rune('a'+i)), o)
			p := nntest.Projection(g, o, uint64(20+i))
			if loss == nil {
				loss = p
			} else {
				loss = g.Add(loss, p)
			}
		}
		g.Loss(loss)
		return nil
	})
}

func TestIndexingMatchesGorgonia(t *testing.T) {
	ps := nn.NewParamSet()
	table := nntest.RandomParam(ps, "table", 1, 1, 7, 3)
	x := nntest.RandomParam(ps, "x", 2, 1, 6, 5)
	feeds := nn.Feeds{Ints: map[string][]int{
		"ids":  {3, 0, 6, 3, 3, 1}, // repeated ids accumulate gradients
		"pick": {4, -1, 0, 2, -100, 4},
		"grid": {1, 2, 3, 4, 5, 6}, // [2,3] int tensor for the int shape ops
	}}
	runBoth(t, ps, feeds, true, opTol, func(g nn.Graph) error {
		ids := g.Ints("ids", 6)
		grid := g.Ints("grid", 2, 3)
		// Int shape ops: transpose [3,2] -> flatten -> [1 4 2 5 3 6];
		// slice columns 1..3 -> [2 3 5 6]; concat with the first row.
		tr := g.Reshape(g.Transpose(grid, 1, 0), 6)
		sl := g.Reshape(g.Slice(grid, 1, 1, 3), 4)
		cat := g.Concat(0, sl, g.Reshape(g.Slice(grid, 0, 0, 1), 3))
		gathered := g.Gather(g.Param(table), ids)
		picked := g.Pick(g.Param(x), g.Ints("pick", 6))
		viaTr := g.Gather(g.Param(table), tr)
		viaCat := g.Gather(g.Param(table), cat)
		g.Output("gathered", gathered)
		g.Output("picked", picked)
		g.Output("viaTr", viaTr)
		g.Output("viaCat", viaCat)
		g.Loss(g.Add(g.Add(nntest.Projection(g, gathered, 1), nntest.Projection(g, picked, 2)),
			g.Add(nntest.Projection(g, viaTr, 3), nntest.Projection(g, viaCat, 4))))
		return nil
	})
}

func TestNormalisationMatchesGorgonia(t *testing.T) {
	ps := nn.NewParamSet()
	x := nntest.RandomParam(ps, "x", 1, 3, 2, 3, 5)
	gamma := nntest.RandomParam(ps, "gamma", 2, 1, 5)
	beta := nntest.RandomParam(ps, "beta", 3, 1, 5)
	runBoth(t, ps, nn.Feeds{}, true, opTol, func(g nn.Graph) error {
		xt := g.Param(x)
		sm := g.Softmax(xt)
		ls := g.LogSoftmax(xt)
		ln := g.LayerNorm(xt, g.Param(gamma), g.Param(beta), 1e-5)
		s := g.Sum(xt)
		g.Output("sm", sm)
		g.Output("ls", ls)
		g.Output("ln", ln)
		g.Output("sum", s)
		g.Loss(g.Add(g.Add(nntest.Projection(g, sm, 1), nntest.Projection(g, ls, 2)),
			g.Add(nntest.Projection(g, ln, 3), g.Scale(s, 0.1))))
		return nil
	})
}

func TestDropoutMatchesGorgonia(t *testing.T) {
	ps := nn.NewParamSet()
	x := nntest.RandomParam(ps, "x", 1, 1, 4, 8)
	build := func(g nn.Graph) error {
		xt := g.Param(x)
		a := g.Dropout(xt, 0.5)
		b := g.Dropout(xt, 0) // counts as mask 1 even though p = 0
		c := g.Dropout(g.Tanh(xt), 0.25)
		g.Output("a", a)
		g.Output("b", b)
		g.Output("c", c)
		g.Loss(g.Add(nntest.Projection(g, a, 1), g.Add(nntest.Projection(g, b, 2), nntest.Projection(g, c, 3))))
		return nil
	}
	runBoth(t, ps, nn.Feeds{Seed: 42}, true, opTol, build)
	runBoth(t, ps, nn.Feeds{Seed: 42}, false, opTol, build) // identity
}

func TestConstAndInputsMatchGorgonia(t *testing.T) {
	ps := nn.NewParamSet()
	w := nntest.RandomParam(ps, "w", 1, 1, 3)
	feeds := nn.Feeds{Floats: map[string][]float32{"f": nntest.RandomData(6, 2, 1)}}
	runBoth(t, ps, feeds, true, opTol, func(g nn.Graph) error {
		c := g.Const([]float32{1.5, -2, 0.25, 4, 5, 6}, 2, 3)
		s := g.Const([]float32{3}) // a scalar constant
		y := g.Mul(g.Add(g.Floats("f", 2, 3), c), g.Param(w))
		g.Output("y", y)
		g.Output("w", g.Param(w)) // a parameter returned as is
		g.Loss(g.Mul(nntest.Projection(g, y, 1), s))
		return nil
	})
}

// TestGradientsFiniteDifference checks libtorch's gradients through an
// encoder layer with the shared finite-difference checker.
func TestGradientsFiniteDifference(t *testing.T) {
	ps := nn.NewParamSet()
	enc := nn.NewTransformerEncoderLayer(ps, "enc", 8, 2, 16, 0.1)
	enc.Init(nn.NewRNG(1))
	for _, p := range ps.List() {
		if strings.Contains(p.Name, "norm") {
			nn.InitNormal(p, nn.NewRNG(2), 0.5)
		}
	}
	feeds := nn.Feeds{Floats: map[string][]float32{"x": nntest.RandomData(2*3*8, 3, 1)}, Seed: 7}
	nntest.CheckGradients(t, openGotch(t), ps, feeds, func(g nn.Graph) error {
		x := g.Floats("x", 2, 3, 8)
		y := enc.Forward(g, x, g.Const(nn.CausalMask(3), 3, 3))
		g.Loss(nntest.Projection(g, y, 9))
		return nil
	}, 2e-2)
}

func TestRunErrors(t *testing.T) {
	b := openGotch(t)
	ps := nn.NewParamSet()
	table := nntest.RandomParam(ps, "table", 1, 1, 4, 2)
	exe, err := b.Compile(nn.Spec{Key: "errs", Params: ps, Train: true}, func(g nn.Graph) error {
		ids := g.Ints("ids", 3)
		rows := g.Gather(g.Param(table), ids)
		g.Loss(g.Sum(g.Pick(rows, g.Ints("cols", 3))))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name  string
		feeds nn.Feeds
		want  string
	}{
		{"missing", nn.Feeds{Ints: map[string][]int{"ids": {0, 1, 2}}}, `missing int input "cols"`},
		{"length", nn.Feeds{Ints: map[string][]int{"ids": {0, 1}, "cols": {0, 0, 0}}}, `"ids" has 2 values, want 3`},
		{"gather range", nn.Feeds{Ints: map[string][]int{"ids": {0, 4, 2}, "cols": {0, 0, 0}}}, "id 4 at position 1 out of range [0,4)"},
		{"gather negative", nn.Feeds{Ints: map[string][]int{"ids": {0, -1, 2}, "cols": {0, 0, 0}}}, "out of range"},
		{"pick range", nn.Feeds{Ints: map[string][]int{"ids": {0, 1, 2}, "cols": {0, 2, 0}}}, "id 2 at row 1 out of range [0,2)"},
	}
	for _, c := range cases {
		if _, err := exe.Run(ctx, c.feeds); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A good run still works after the failures.
	res, err := exe.Run(ctx, nn.Feeds{Ints: map[string][]int{"ids": {3, 1, 2}, "cols": {1, -1, 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := table.Data[3*2+1] + table.Data[2*2]; math.Abs(res.Loss-float64(want)) > 1e-6 {
		t.Errorf("loss %v, want %v", res.Loss, want)
	}
	wantGrad := make([]float32, 8)
	wantGrad[3*2+1], wantGrad[2*2] = 1, 1
	nntest.AssertClose(t, "grad", table.Grad, wantGrad, 0)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := exe.Run(cctx, nn.Feeds{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
	if err := exe.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := exe.Run(ctx, nn.Feeds{Ints: map[string][]int{"ids": {0, 1, 2}, "cols": {0, 0, 0}}}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("run after close: got %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	b := openGotch(t)
	ps := nn.NewParamSet()
	w := nntest.RandomParam(ps, "w", 1, 1, 2, 2)
	if _, err := b.Compile(nn.Spec{Key: "noloss", Params: ps, Train: true}, func(g nn.Graph) error {
		g.Output("w", g.Param(w))
		return nil
	}); err == nil || !strings.Contains(err.Error(), "without a Loss") {
		t.Errorf("train without loss: %v", err)
	}
	if _, err := b.Compile(nn.Spec{Key: "empty"}, func(g nn.Graph) error { return nil }); err == nil {
		t.Error("empty build compiled")
	}
	sentinel := errors.New("sentinel")
	if _, err := b.Compile(nn.Spec{Key: "fails"}, func(g nn.Graph) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("build error not wrapped: %v", err)
	}
	// Shape errors are programmer errors caught by the dry build at Compile.
	func() {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(r.(string), "MatMul") {
				t.Errorf("shape error: recovered %v", r)
			}
		}()
		b.Compile(nn.Spec{Key: "shape", Params: ps}, func(g nn.Graph) error {
			g.Output("y", g.MatMul(g.Param(w), g.Const(make([]float32, 3), 3, 1), false, false))
			return nil
		})
	}()
}

func TestUnusedParamGradIsZero(t *testing.T) {
	ps := nn.NewParamSet()
	used := nntest.RandomParam(ps, "used", 1, 1, 3)
	unused := nntest.RandomParam(ps, "unused", 2, 1, 3)
	bound := nntest.RandomParam(ps, "bound", 3, 1, 3)
	runBoth(t, ps, nn.Feeds{}, true, opTol, func(g nn.Graph) error {
		g.Output("bound", g.Param(bound)) // bound, but the loss does not depend on it
		g.Loss(nntest.Projection(g, g.Param(used), 1))
		return nil
	})
	_ = unused
	// A loss that depends on no parameter at all.
	runBoth(t, ps, nn.Feeds{}, true, opTol, func(g nn.Graph) error {
		g.Loss(g.Sum(g.Const([]float32{1, 2}, 2)))
		return nil
	})
}

func TestDevices(t *testing.T) {
	for _, d := range []string{"", "cpu"} {
		b, err := gotch.New(d)
		if err != nil || b.Device() != "cpu" || b.Name() != "gotch" {
			t.Errorf("New(%q) = %v, %v", d, b, err)
		}
	}
	for _, d := range []string{"gpu", "cuda:x", "cuda:-1"} {
		if _, err := gotch.New(d); err == nil {
			t.Errorf("New(%q) succeeded", d)
		}
	}
	if _, err := nn.OpenBackend("gotch", "cpu"); err != nil {
		t.Errorf("registry: %v", err)
	}
}

// TestCUDA opens cuda: it must either pass the device self-test or fail
// with an error that explains itself; with ARBENCH_GOTCH_DEVICE=cuda it
// must succeed.
func TestCUDA(t *testing.T) {
	b, err := gotch.New("cuda")
	if strings.HasPrefix(testDevice(), "cuda") {
		if err != nil {
			t.Fatalf("CUDA requested by ARBENCH_GOTCH_DEVICE but unusable: %v", err)
		}
		if b.Device() != "cuda:0" {
			t.Errorf("device %q", b.Device())
		}
		return
	}
	if err != nil {
		if !strings.Contains(err.Error(), `device "cuda" is not usable`) {
			t.Errorf("unclear error: %v", err)
		}
		t.Logf("no CUDA here: %v", err)
	}
}

// TestDescribe: the backend names libtorch and its thread setting for
// benchmark reports (nn.Describer).
func TestDescribe(t *testing.T) {
	d, ok := openGotch(t).(nn.Describer)
	if !ok {
		t.Fatal("the gotch backend is no nn.Describer")
	}
	t.Setenv("OMP_NUM_THREADS", "2")
	if got := d.Describe(); !strings.Contains(got, "libtorch") || !strings.Contains(got, "OMP_NUM_THREADS=2") {
		t.Errorf("Describe() = %q", got)
	}
}
