package gorgonia

import (
	"context"
	"math"
	"slices"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// eval compiles build as an inference executable and runs it once.
func eval(t *testing.T, ps *nn.ParamSet, feeds nn.Feeds, build nn.BuildFunc) *nn.Result {
	t.Helper()
	exe, err := New().Compile(nn.Spec{Key: "test/eval", Params: ps}, build)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	defer exe.Close()
	res, err := exe.Run(context.Background(), feeds)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// forward evaluates one output computed from constants.
func forward(t *testing.T, f func(g nn.Graph) nn.Tensor) nn.Value {
	t.Helper()
	res := eval(t, nil, nn.Feeds{}, func(g nn.Graph) error {
		g.Output("y", f(g))
		return nil
	})
	return res.Outputs["y"]
}

func expect(t *testing.T, what string, got nn.Value, shape []int, want []float32) {
	t.Helper()
	if !slices.Equal(got.Shape, shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, shape)
	}
	nntest.AssertClose(t, what, got.Data, want, 1e-6)
}

func iota32(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i)
	}
	return out
}

// transposed returns the row-major data of the transpose of m [r,c].
func transposed(m []float32, r, c int) []float32 {
	out := make([]float32, len(m))
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			out[j*r+i] = m[i*c+j]
		}
	}
	return out
}

func TestMatMulForward(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5, 6}    // [2,3]
	b := []float32{7, 8, 9, 10, 11, 12} // [3,2]
	want := []float32{58, 64, 139, 154} // a·b
	at, bt := transposed(a, 2, 3), transposed(b, 3, 2)
	for _, c := range []struct {
		ta, tb bool
		ad, bd []float32
		as, bs []int
	}{
		{false, false, a, b, []int{2, 3}, []int{3, 2}},
		{true, false, at, b, []int{3, 2}, []int{3, 2}},
		{false, true, a, bt, []int{2, 3}, []int{2, 3}},
		{true, true, at, bt, []int{3, 2}, []int{2, 3}},
	} {
		got := forward(t, func(g nn.Graph) nn.Tensor {
			return g.MatMul(g.Const(c.ad, c.as...), g.Const(c.bd, c.bs...), c.ta, c.tb)
		})
		expect(t, "MatMul", got, []int{2, 2}, want)
	}
}

func TestBatchMatMulForward(t *testing.T) {
	// batch 0: the product above; batch 1: [[1,0,0],[0,0,1]] selects rows 0 and 2.
	a := []float32{1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 0, 1}
	b := []float32{7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6}
	want := []float32{58, 64, 139, 154, 1, 2, 5, 6}
	at := append(transposed(a[:6], 2, 3), transposed(a[6:], 2, 3)...)
	bt := append(transposed(b[:6], 3, 2), transposed(b[6:], 3, 2)...)
	for _, c := range []struct {
		ta, tb bool
		ad, bd []float32
		as, bs []int
	}{
		{false, false, a, b, []int{2, 2, 3}, []int{2, 3, 2}},
		{true, false, at, b, []int{2, 3, 2}, []int{2, 3, 2}},
		{false, true, a, bt, []int{2, 2, 3}, []int{2, 2, 3}},
		{true, true, at, bt, []int{2, 3, 2}, []int{2, 2, 3}},
	} {
		got := forward(t, func(g nn.Graph) nn.Tensor {
			return g.BatchMatMul(g.Const(c.ad, c.as...), g.Const(c.bd, c.bs...), c.ta, c.tb)
		})
		expect(t, "BatchMatMul", got, []int{2, 2, 2}, want)
	}
}

func TestElementwiseForward(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6} // [2,3]
	y := []float32{6, 5, 4, 3, 2, 1}
	row := []float32{10, 20, 30} // [3]
	cases := []struct {
		name string
		f    func(g nn.Graph, a, b, r nn.Tensor) nn.Tensor
		want []float32
	}{
		{"Add", func(g nn.Graph, a, b, _ nn.Tensor) nn.Tensor { return g.Add(a, b) }, []float32{7, 7, 7, 7, 7, 7}},
		{"Sub", func(g nn.Graph, a, b, _ nn.Tensor) nn.Tensor { return g.Sub(a, b) }, []float32{-5, -3, -1, 1, 3, 5}},
		{"Mul", func(g nn.Graph, a, b, _ nn.Tensor) nn.Tensor { return g.Mul(a, b) }, []float32{6, 10, 12, 12, 10, 6}},
		{"AddRow", func(g nn.Graph, a, _, r nn.Tensor) nn.Tensor { return g.Add(a, r) }, []float32{11, 22, 33, 14, 25, 36}},
		{"SubRow", func(g nn.Graph, a, _, r nn.Tensor) nn.Tensor { return g.Sub(a, r) }, []float32{-9, -18, -27, -6, -15, -24}},
		{"MulRow", func(g nn.Graph, a, _, r nn.Tensor) nn.Tensor { return g.Mul(a, r) }, []float32{10, 40, 90, 40, 100, 180}},
		{"Scale", func(g nn.Graph, a, _, _ nn.Tensor) nn.Tensor { return g.Scale(a, -0.5) }, []float32{-0.5, -1, -1.5, -2, -2.5, -3}},
	}
	for _, c := range cases {
		got := forward(t, func(g nn.Graph) nn.Tensor {
			return c.f(g, g.Const(x, 2, 3), g.Const(y, 2, 3), g.Const(row, 3))
		})
		expect(t, c.name, got, []int{2, 3}, c.want)
	}
	// [2,2,2] + [2,2]: the matrix repeats over the leading axis; a scalar
	// (shape []) broadcasts over everything.
	got := forward(t, func(g nn.Graph) nn.Tensor {
		return g.Add(g.Const(iota32(8), 2, 2, 2), g.Const([]float32{100, 200, 300, 400}, 2, 2))
	})
	expect(t, "Add [2,2,2]+[2,2]", got, []int{2, 2, 2}, []float32{100, 201, 302, 403, 104, 205, 306, 407})
	got = forward(t, func(g nn.Graph) nn.Tensor {
		return g.Mul(g.Const(iota32(4), 2, 2), g.Sum(g.Const([]float32{1, 2}, 2)))
	})
	expect(t, "Mul by scalar", got, []int{2, 2}, []float32{0, 3, 6, 9})
}

func TestActivationsForward(t *testing.T) {
	x := []float32{-30, -2, -0.5, 0, 0.5, 2, 30}
	wantTanh := make([]float32, len(x))
	wantSig := make([]float32, len(x))
	wantReLU := make([]float32, len(x))
	for i, v := range x {
		wantTanh[i] = float32(math.Tanh(float64(v)))
		wantSig[i] = float32(1 / (1 + math.Exp(-float64(v))))
		wantReLU[i] = max(v, 0)
	}
	n := len(x)
	expect(t, "Tanh", forward(t, func(g nn.Graph) nn.Tensor { return g.Tanh(g.Const(x, n)) }), []int{n}, wantTanh)
	expect(t, "Sigmoid", forward(t, func(g nn.Graph) nn.Tensor { return g.Sigmoid(g.Const(x, n)) }), []int{n}, wantSig)
	expect(t, "ReLU", forward(t, func(g nn.Graph) nn.Tensor { return g.ReLU(g.Const(x, n)) }), []int{n}, wantReLU)
}

func TestShapeOpsForward(t *testing.T) {
	x := iota32(24) // [2,3,4]
	c := func(g nn.Graph) nn.Tensor { return g.Const(x, 2, 3, 4) }

	expect(t, "Reshape", forward(t, func(g nn.Graph) nn.Tensor { return g.Reshape(c(g), 6, 4) }), []int{6, 4}, x)
	expect(t, "Transpose 2-D", forward(t, func(g nn.Graph) nn.Tensor {
		return g.Transpose(g.Const(iota32(6), 2, 3), 1, 0)
	}), []int{3, 2}, []float32{0, 3, 1, 4, 2, 5})
	// out[i,j,k] = x[j,k,i] for perm (2,0,1): out shape [4,2,3].
	want := make([]float32, 24)
	for i := 0; i < 4; i++ {
		for j := 0; j < 2; j++ {
			for k := 0; k < 3; k++ {
				want[(i*2+j)*3+k] = x[(j*3+k)*4+i]
			}
		}
	}
	expect(t, "Transpose (2,0,1)", forward(t, func(g nn.Graph) nn.Tensor { return g.Transpose(c(g), 2, 0, 1) }), []int{4, 2, 3}, want)
	expect(t, "Transpose identity", forward(t, func(g nn.Graph) nn.Tensor { return g.Transpose(c(g), 0, 1, 2) }), []int{2, 3, 4}, x)

	expect(t, "Slice axis 0", forward(t, func(g nn.Graph) nn.Tensor { return g.Slice(c(g), 0, 1, 2) }),
		[]int{1, 3, 4}, x[12:])
	expect(t, "Slice axis 1", forward(t, func(g nn.Graph) nn.Tensor { return g.Slice(c(g), 1, 1, 3) }),
		[]int{2, 2, 4}, []float32{4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23})
	expect(t, "Slice axis 2", forward(t, func(g nn.Graph) nn.Tensor { return g.Slice(c(g), 2, 3, 4) }),
		[]int{2, 3, 1}, []float32{3, 7, 11, 15, 19, 23})

	a := []float32{1, 2, 3, 4} // [2,2]
	b := []float32{5, 6}       // [1,2] / [2,1]
	expect(t, "Concat axis 0", forward(t, func(g nn.Graph) nn.Tensor {
		return g.Concat(0, g.Const(a, 2, 2), g.Const(b, 1, 2))
	}), []int{3, 2}, []float32{1, 2, 3, 4, 5, 6})
	expect(t, "Concat axis 1", forward(t, func(g nn.Graph) nn.Tensor {
		return g.Concat(1, g.Const(a, 2, 2), g.Const(b, 2, 1), g.Const(a, 2, 2))
	}), []int{2, 5}, []float32{1, 2, 5, 1, 2, 3, 4, 6, 3, 4})
}

func TestIndexingForward(t *testing.T) {
	table := iota32(8) // [4,2]
	feeds := nn.Feeds{Ints: map[string][]int{"ids": {3, 0, 3}, "pick": {1, -1, 0}}}
	res := eval(t, nil, feeds, func(g nn.Graph) error {
		tab := g.Const(table, 4, 2)
		g.Output("gather", g.Gather(tab, g.Ints("ids", 3)))
		x := g.Const([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
		g.Output("pick", g.Pick(x, g.Ints("pick", 3)))
		return nil
	})
	expect(t, "Gather", res.Outputs["gather"], []int{3, 2}, []float32{6, 7, 0, 1, 6, 7})
	expect(t, "Pick", res.Outputs["pick"], []int{3}, []float32{2, 0, 5})
}

func TestIntegerShapeOps(t *testing.T) {
	// ids [2,3] = [[0,1,2],[3,0,1]]; time-major column 1 via Transpose, Slice, Reshape.
	feeds := nn.Feeds{Ints: map[string][]int{"ids": {0, 1, 2, 3, 0, 1}}}
	table := []float32{0, 10, 20, 30} // [4,1]
	res := eval(t, nil, feeds, func(g nn.Graph) error {
		ids := g.Ints("ids", 2, 3)
		tab := g.Const(table, 4, 1)
		col := g.Reshape(g.Slice(g.Transpose(ids, 1, 0), 0, 1, 2), 2) // [1,3]
		g.Output("col", g.Gather(tab, col))
		row := g.Reshape(g.Slice(ids, 1, 2, 3), 2) // [2]
		g.Output("row", g.Gather(tab, row))
		cat := g.Reshape(g.Concat(1, ids, ids), 12)
		g.Output("cat", g.Gather(tab, cat))
		return nil
	})
	expect(t, "column", res.Outputs["col"], []int{2, 1}, []float32{10, 0})
	expect(t, "row", res.Outputs["row"], []int{2, 1}, []float32{20, 10})
	expect(t, "concat", res.Outputs["cat"], []int{12, 1}, []float32{0, 10, 20, 0, 10, 20, 30, 0, 10, 30, 0, 10})
}

func softmaxRef(row []float64) []float32 {
	m := slices.Max(row)
	var s float64
	for _, v := range row {
		s += math.Exp(v - m)
	}
	out := make([]float32, len(row))
	for i, v := range row {
		out[i] = float32(math.Exp(v-m) / s)
	}
	return out
}

func TestSoftmaxForward(t *testing.T) {
	// Rows include huge values, which overflow a naive exp.
	x := []float32{1, 2, 3, 1000, 1001, 1002, -5, 0, 5, -1000, 0, 0}
	var wantS, wantL []float32
	for r := 0; r < 4; r++ {
		row := make([]float64, 3)
		for j := range row {
			row[j] = float64(x[r*3+j])
		}
		s := softmaxRef(row)
		wantS = append(wantS, s...)
		for _, v := range s {
			wantL = append(wantL, float32(math.Log(float64(v))))
		}
	}
	// The -1000 entry's log-probability is about -1000.69, finite.
	wantL[9] = float32(-1000 - math.Log(2))
	for _, shape := range [][]int{{4, 3}, {2, 2, 3}} {
		s := forward(t, func(g nn.Graph) nn.Tensor { return g.Softmax(g.Const(x, shape...)) })
		expect(t, "Softmax", s, shape, wantS)
		l := forward(t, func(g nn.Graph) nn.Tensor { return g.LogSoftmax(g.Const(x, shape...)) })
		expect(t, "LogSoftmax", l, shape, wantL)
	}
}

func TestLayerNormForward(t *testing.T) {
	// Row [1,2,3,4]: mean 2.5, biased variance 1.25. Row [2,2,2,2]: variance 0.
	x := []float32{1, 2, 3, 4, 2, 2, 2, 2}
	gamma := []float32{1, 2, 1, 0.5}
	beta := []float32{0, 0, 1, -1}
	const eps = 1e-5
	rs := 1 / math.Sqrt(1.25+eps)
	want := []float32{
		float32(-1.5 * rs * 1), float32(-0.5 * rs * 2), float32(0.5*rs*1 + 1), float32(1.5*rs*0.5 - 1),
		0, 0, 1, -1,
	}
	got := forward(t, func(g nn.Graph) nn.Tensor {
		return g.LayerNorm(g.Const(x, 2, 4), g.Const(gamma, 4), g.Const(beta, 4), eps)
	})
	expect(t, "LayerNorm", got, []int{2, 4}, want)
	got3 := forward(t, func(g nn.Graph) nn.Tensor {
		return g.LayerNorm(g.Const(x, 1, 2, 4), g.Const(gamma, 4), g.Const(beta, 4), eps)
	})
	expect(t, "LayerNorm 3-D", got3, []int{1, 2, 4}, want)
}

func TestSumAndLoss(t *testing.T) {
	res := eval(t, nil, nn.Feeds{}, func(g nn.Graph) error {
		s := g.Sum(g.Const(iota32(5), 5))
		g.Output("s", s)
		g.Loss(g.Scale(s, 2))
		return nil
	})
	expect(t, "Sum", res.Outputs["s"], []int{}, []float32{10})
	if res.Loss != 20 {
		t.Errorf("Loss = %v, want 20", res.Loss)
	}
}

func TestOutputsAreFreshCopies(t *testing.T) {
	ps := nn.NewParamSet()
	p := ps.Add("p", 3)
	copy(p.Data, []float32{1, 2, 3})
	exe, err := New().Compile(nn.Spec{Key: "fresh", Params: ps}, func(g nn.Graph) error {
		g.Output("p", g.Param(p))
		g.Output("y", g.Scale(g.Param(p), 2))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	r1, err := exe.Run(context.Background(), nn.Feeds{})
	if err != nil {
		t.Fatal(err)
	}
	r1.Outputs["p"].Data[0] = 100
	r1.Outputs["y"].Data[0] = 100
	if p.Data[0] != 1 {
		t.Fatalf("writing an output changed the parameter: %v", p.Data)
	}
	r2, err := exe.Run(context.Background(), nn.Feeds{})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "y after mutating an earlier result", r2.Outputs["y"], []int{3}, []float32{2, 4, 6})
	if &r1.Outputs["y"].Data[0] == &r2.Outputs["y"].Data[0] {
		t.Fatal("two runs returned the same output slice")
	}
}

// TestViewChains: a chain of views no gradient flows through (a decoding
// step's heads split: slice, reshape, an order-keeping transpose, reshape)
// compiles to one view of the input, and a transpose that moves only axes
// of length 1 is a view too; the values are those of the copies.
func TestViewChains(t *testing.T) {
	x := make([]float32, 24)
	for i := range x {
		x[i] = float32(i)
	}
	exe, err := New().Compile(nn.Spec{Key: "test/views"}, func(g nn.Graph) error {
		in := g.Floats("x", 1, 1, 24)
		k := g.Reshape(g.Slice(in, 2, 8, 16), 1, 1, 2, 4)
		g.Output("k", g.Reshape(g.Transpose(k, 0, 2, 1, 3), 2, 1, 4))
		g.Output("t", g.Transpose(g.Reshape(in, 6, 4), 1, 0))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	res, err := exe.Run(context.Background(), nn.Feeds{Floats: map[string][]float32{"x": x}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Outputs["k"].Data, x[8:16]; !slices.Equal(got, want) {
		t.Errorf("k = %v, want %v", got, want)
	}
	want := make([]float32, 24)
	for i := range 6 {
		for j := range 4 {
			want[j*6+i] = x[i*4+j]
		}
	}
	if got := res.Outputs["t"].Data; !slices.Equal(got, want) {
		t.Errorf("t = %v, want %v", got, want)
	}
	var names []string
	for _, op := range exe.(*executable).prog {
		names = append(names, op.kop.name)
	}
	if want := []string{"Reshape", "Reshape", "Transpose"}; !slices.Equal(names, want) {
		t.Errorf("program %v, want %v (k one view of x, t a reshape and a copy)", names, want)
	}
	for perm, want := range map[[4]int]bool{{0, 2, 1, 3}: true, {0, 1, 3, 2}: false, {1, 0, 2, 3}: true, {3, 2, 1, 0}: false} {
		if got := keepsOrder([]int{1, 1, 2, 4}, perm[:]); got != want {
			t.Errorf("keepsOrder([1 1 2 4], %v) = %v, want %v", perm, got, want)
		}
	}
}
