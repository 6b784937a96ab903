package gorgonia

import (
	"context"
	"fmt"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// away shifts values from 0 by at least margin, keeping their sign, so that
// finite differences of kinked functions (ReLU) never straddle the kink.
func away(p *nn.Param, margin float32) {
	for i, v := range p.Data {
		if v >= 0 {
			p.Data[i] = v + margin
		} else {
			p.Data[i] = v - margin
		}
	}
}

// gradCase is a tiny graph: parameters → op → fixed random projection → Loss.
type gradCase struct {
	name  string
	setup func(ps *nn.ParamSet) func(g nn.Graph) nn.Tensor
	feeds nn.Feeds
}

func checkCase(t *testing.T, c gradCase) {
	t.Run(c.name, func(t *testing.T) {
		ps := nn.NewParamSet()
		f := c.setup(ps)
		build := func(g nn.Graph) error {
			g.Loss(nntest.Projection(g, f(g), 99))
			return nil
		}
		nntest.CheckGradientsWith(t, New(), ps, c.feeds, build, nntest.Options{MaxPerParam: -1})
	})
}

func param(ps *nn.ParamSet, name string, shape ...int) *nn.Param {
	return nntest.RandomParam(ps, name, uint64(len(ps.List())+1), 1, shape...)
}

func TestGradMatMul(t *testing.T) {
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			checkCase(t, gradCase{name: fmt.Sprintf("MatMul/%t/%t", ta, tb), setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
				as, bs := []int{2, 3}, []int{3, 4}
				if ta {
					as = []int{3, 2}
				}
				if tb {
					bs = []int{4, 3}
				}
				a, b := param(ps, "a", as...), param(ps, "b", bs...)
				return func(g nn.Graph) nn.Tensor { return g.MatMul(g.Param(a), g.Param(b), ta, tb) }
			}})
			checkCase(t, gradCase{name: fmt.Sprintf("BatchMatMul/%t/%t", ta, tb), setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
				as, bs := []int{2, 2, 3}, []int{2, 3, 4}
				if ta {
					as = []int{2, 3, 2}
				}
				if tb {
					bs = []int{2, 4, 3}
				}
				a, b := param(ps, "a", as...), param(ps, "b", bs...)
				return func(g nn.Graph) nn.Tensor { return g.BatchMatMul(g.Param(a), g.Param(b), ta, tb) }
			}})
		}
	}
}

func TestGradElementwise(t *testing.T) {
	bin := map[string]func(g nn.Graph, a, b nn.Tensor) nn.Tensor{
		"Add": func(g nn.Graph, a, b nn.Tensor) nn.Tensor { return g.Add(a, b) },
		"Sub": func(g nn.Graph, a, b nn.Tensor) nn.Tensor { return g.Sub(a, b) },
		"Mul": func(g nn.Graph, a, b nn.Tensor) nn.Tensor { return g.Mul(a, b) },
	}
	for name, op := range bin {
		for _, bs := range [][]int{{2, 3, 4}, {3, 4}, {4}, {}} {
			checkCase(t, gradCase{name: fmt.Sprintf("%s/%v", name, bs), setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
				a, b := param(ps, "a", 2, 3, 4), param(ps, "b", bs...)
				return func(g nn.Graph) nn.Tensor { return op(g, g.Param(a), g.Param(b)) }
			}})
		}
	}
	// The same tensor as both operands: contributions must add up.
	checkCase(t, gradCase{name: "MulSelf", setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		a := param(ps, "a", 3, 2)
		return func(g nn.Graph) nn.Tensor { x := g.Param(a); return g.Mul(x, g.Add(x, x)) }
	}})
	unary := map[string]func(g nn.Graph, x nn.Tensor) nn.Tensor{
		"Scale":   func(g nn.Graph, x nn.Tensor) nn.Tensor { return g.Scale(x, -1.5) },
		"Tanh":    func(g nn.Graph, x nn.Tensor) nn.Tensor { return g.Tanh(x) },
		"Sigmoid": func(g nn.Graph, x nn.Tensor) nn.Tensor { return g.Sigmoid(x) },
		"ReLU":    func(g nn.Graph, x nn.Tensor) nn.Tensor { return g.ReLU(x) },
	}
	for name, op := range unary {
		checkCase(t, gradCase{name: name, setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
			x := param(ps, "x", 3, 4)
			away(x, 0.05)
			return func(g nn.Graph) nn.Tensor { return op(g, g.Param(x)) }
		}})
	}
}

func TestGradShapeOps(t *testing.T) {
	checkCase(t, gradCase{name: "Reshape", setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		x := param(ps, "x", 2, 6)
		return func(g nn.Graph) nn.Tensor { return g.Tanh(g.Reshape(g.Param(x), 3, 2, 2)) }
	}})
	checkCase(t, gradCase{name: "Transpose", setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		x := param(ps, "x", 2, 3, 4)
		return func(g nn.Graph) nn.Tensor { return g.Transpose(g.Param(x), 2, 0, 1) }
	}})
	// Overlapping and repeated slices of one tensor along every axis, some
	// views (leading dimensions 1) and some copies.
	checkCase(t, gradCase{name: "Slice", setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		x := param(ps, "x", 2, 3, 4)
		return func(g nn.Graph) nn.Tensor {
			p := g.Param(x)
			a := g.Reshape(g.Slice(p, 2, 1, 3), 12)                  // [2,3,2]
			b := g.Reshape(g.Slice(g.Slice(p, 0, 1, 2), 1, 0, 2), 8) // [1,2,4], a view then a copy
			c := g.Reshape(g.Tanh(g.Slice(p, 2, 1, 3)), 12)          // same window again
			d := g.Reshape(g.Slice(p, 0, 0, 1), 12)                  // view
			return g.Concat(0, a, b, c, d)
		}
	}})
	checkCase(t, gradCase{name: "Concat", setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		a, b := param(ps, "a", 2, 1, 3), param(ps, "b", 2, 2, 3)
		return func(g nn.Graph) nn.Tensor {
			x, y := g.Param(a), g.Param(b)
			return g.Concat(1, y, x, y)
		}
	}})
	checkCase(t, gradCase{name: "ConcatAxis0", setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		a, b := param(ps, "a", 1, 3), param(ps, "b", 2, 3)
		return func(g nn.Graph) nn.Tensor { return g.Concat(0, g.Param(a), g.Param(b)) }
	}})
}

func TestGradIndexing(t *testing.T) {
	feeds := nn.Feeds{Ints: map[string][]int{"ids": {2, 0, 2, 2}, "pick": {1, -1, 3, 0}}}
	checkCase(t, gradCase{name: "Gather", feeds: feeds, setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		tab := param(ps, "table", 4, 3)
		return func(g nn.Graph) nn.Tensor { return g.Gather(g.Param(tab), g.Ints("ids", 4)) }
	}})
	checkCase(t, gradCase{name: "Pick", feeds: feeds, setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		x := param(ps, "x", 4, 5)
		return func(g nn.Graph) nn.Tensor { return g.Pick(g.LogSoftmax(g.Param(x)), g.Ints("pick", 4)) }
	}})
}

func TestGradNormalisation(t *testing.T) {
	for _, shape := range [][]int{{3, 5}, {2, 3, 5}} {
		checkCase(t, gradCase{name: fmt.Sprintf("Softmax/%v", shape), setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
			x := param(ps, "x", shape...)
			return func(g nn.Graph) nn.Tensor { return g.Softmax(g.Scale(g.Param(x), 3)) }
		}})
		checkCase(t, gradCase{name: fmt.Sprintf("LogSoftmax/%v", shape), setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
			x := param(ps, "x", shape...)
			return func(g nn.Graph) nn.Tensor { return g.LogSoftmax(g.Scale(g.Param(x), 3)) }
		}})
		checkCase(t, gradCase{name: fmt.Sprintf("LayerNorm/%v", shape), setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
			x := param(ps, "x", shape...)
			gamma, beta := param(ps, "gamma", 5), param(ps, "beta", 5)
			return func(g nn.Graph) nn.Tensor {
				return g.LayerNorm(g.Param(x), g.Param(gamma), g.Param(beta), 1e-5)
			}
		}})
	}
	checkCase(t, gradCase{name: "Sum", setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		x := param(ps, "x", 2, 3)
		return func(g nn.Graph) nn.Tensor { s := g.Sum(g.Param(x)); return g.Mul(s, s) }
	}})
}

func TestGradDropout(t *testing.T) {
	checkCase(t, gradCase{name: "Dropout", feeds: nn.Feeds{Seed: 7}, setup: func(ps *nn.ParamSet) func(nn.Graph) nn.Tensor {
		x := param(ps, "x", 4, 5)
		return func(g nn.Graph) nn.Tensor { return g.Dropout(g.Tanh(g.Dropout(g.Param(x), 0.3)), 0.5) }
	}})
}

// TestGradComposite checks a small recurrent language model, which mixes
// every common op and reuses parameters across time steps.
func TestGradComposite(t *testing.T) {
	const b, steps, v, d = 2, 3, 5, 4
	feeds := nn.Feeds{Ints: map[string][]int{"ids": {1, 4, 0, 2, 2, 3}, "tg": {4, 0, -1, 2, 3, 1}}, Seed: 3}
	ps := nn.NewParamSet()
	emb, wx, wh, bias, out := param(ps, "emb", v, d), param(ps, "wx", d, d), param(ps, "wh", d, d), param(ps, "b", d), param(ps, "out", v, d)
	build := func(g nn.Graph) error {
		ids := g.Ints("ids", b*steps)
		x := g.Reshape(g.Gather(g.Param(emb), ids), b, steps, d)
		h := g.Const(make([]float32, b*d), b, d)
		var hs []nn.Tensor
		for s := 0; s < steps; s++ {
			xs := g.Reshape(g.Slice(x, 1, s, s+1), b, d)
			h = g.Tanh(g.Add(g.Add(g.MatMul(xs, g.Param(wx), false, false), g.MatMul(h, g.Param(wh), false, true)), g.Param(bias)))
			hs = append(hs, g.Reshape(g.Dropout(h, 0.2), b, 1, d))
		}
		logits := g.MatMul(g.Reshape(g.Concat(1, hs...), b*steps, d), g.Param(out), false, true)
		g.Loss(g.Scale(g.Sum(g.Pick(g.LogSoftmax(logits), g.Ints("tg", b*steps))), -0.2))
		return nil
	}
	nntest.CheckGradientsWith(t, New(), ps, feeds, build, nntest.Options{MaxPerParam: -1})
}

// TestGatherGradAccumulates checks the exact gradient of repeated ids and
// that rows Pick ignores (negative ids) get none.
func TestGatherGradAccumulates(t *testing.T) {
	ps := nn.NewParamSet()
	tab := ps.Add("table", 3, 2)
	copy(tab.Data, []float32{1, 2, 3, 4, 5, 6})
	x := ps.Add("x", 3, 2)
	copy(x.Data, []float32{1, 2, 3, 4, 5, 6})
	feeds := nn.Feeds{Ints: map[string][]int{"ids": {1, 1, 2, 1}, "pick": {1, -1, 0}}}
	exe, err := New().Compile(nn.Spec{Key: "acc", Params: ps, Train: true}, func(g nn.Graph) error {
		e := g.Gather(g.Param(tab), g.Ints("ids", 4))
		p := g.Pick(g.Param(x), g.Ints("pick", 3))
		g.Loss(g.Add(g.Sum(e), g.Sum(g.Scale(p, 2))))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	res, err := exe.Run(context.Background(), feeds)
	if err != nil {
		t.Fatal(err)
	}
	// Σ rows 1,1,2,1 = 3·(3+4) + (5+6) = 32; picks 2 and 5, ×2 = 14.
	if res.Loss != 46 {
		t.Errorf("loss %v, want 46", res.Loss)
	}
	nntest.AssertClose(t, "table grad", tab.Grad, []float32{0, 0, 3, 3, 1, 1}, 0)
	nntest.AssertClose(t, "x grad", x.Grad, []float32{0, 2, 0, 0, 2, 0}, 0)
}
