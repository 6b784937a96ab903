//go:build gotch

package gotch

import (
	"fmt"
	"slices"

	lib "github.com/sugarme/gotch/libtch"

	"arbench/nn"
	"arbench/nn/internal/shapes"
)

// This file implements the operations of nn.Graph on libtorch: the shape
// checks (the rules of package shapes, shared with the gorgonia backend, so
// both reject the same programs) and the libtorch call computing each
// result. Gradients come
// from libtorch's autograd.

// ---- linear algebra ----

func (g *graph) MatMul(a, c nn.Tensor, transA, transB bool) nn.Tensor {
	h := g.check("MatMul", a, c)
	return g.matmul(h[0], h[1], transA, transB, rules.MatMul(h[0].operand(), h[1].operand(), transA, transB))
}

func (g *graph) BatchMatMul(a, c nn.Tensor, transA, transB bool) nn.Tensor {
	h := g.check("BatchMatMul", a, c)
	return g.matmul(h[0], h[1], transA, transB, rules.BatchMatMul(h[0].operand(), h[1].operand(), transA, transB))
}

// matmul multiplies the last two axes, giving the checked result shape:
// torch.mm for 2-D operands, torch.bmm for 3-D ones, with transposes as
// strided views.
func (g *graph) matmul(a, c *tensor, transA, transB bool, shape []int) *tensor {
	r := len(a.shape)
	return g.float(shape, func(mem *arena) lib.Ctensor {
		x, y := a.t, c.t
		if transA {
			x = mem.swapLast(x, r)
		}
		if transB {
			y = mem.swapLast(y, r)
		}
		if r == 2 {
			return mem.call("mm", func(out *lib.Ctensor) { lib.AtgMm(out, x, y) })
		}
		return mem.call("bmm", func(out *lib.Ctensor) { lib.AtgBmm(out, x, y) })
	})
}

// swapLast transposes the last two of r axes (a view).
func (m *arena) swapLast(t lib.Ctensor, r int) lib.Ctensor {
	return m.call("transpose", func(out *lib.Ctensor) { lib.AtgTranspose(out, t, int64(r-2), int64(r-1)) })
}

// ---- element-wise ----

// binary applies a libtorch broadcasting operation after checking the
// nn.Graph rule (the second shape equals the first or a trailing suffix of
// it), which is a special case of torch broadcasting with the same result.
func (g *graph) binary(name string, a, c nn.Tensor, f func(out *lib.Ctensor, x, y lib.Ctensor)) nn.Tensor {
	h := g.check(name, a, c)
	return g.float(rules.Broadcast(name, h[0].operand(), h[1].operand()), func(m *arena) lib.Ctensor {
		return m.call(name, func(out *lib.Ctensor) { f(out, h[0].t, h[1].t) })
	})
}

func (g *graph) Add(a, c nn.Tensor) nn.Tensor { return g.binary("Add", a, c, lib.AtgAdd) }
func (g *graph) Sub(a, c nn.Tensor) nn.Tensor { return g.binary("Sub", a, c, lib.AtgSub) }
func (g *graph) Mul(a, c nn.Tensor) nn.Tensor { return g.binary("Mul", a, c, lib.AtgMul) }

func (g *graph) Scale(x nn.Tensor, s float32) nn.Tensor {
	h := g.check("Scale", x)
	rules.Float("Scale", h[0].operand())
	return g.float(h[0].shape, func(m *arena) lib.Ctensor { return m.mulScalar(h[0].t, float64(s)) })
}

func (g *graph) unary(name string, x nn.Tensor, f func(out *lib.Ctensor, x lib.Ctensor)) nn.Tensor {
	h := g.check(name, x)
	rules.Float(name, h[0].operand())
	return g.float(h[0].shape, func(m *arena) lib.Ctensor {
		return m.call(name, func(out *lib.Ctensor) { f(out, h[0].t) })
	})
}

func (g *graph) Tanh(x nn.Tensor) nn.Tensor    { return g.unary("Tanh", x, lib.AtgTanh) }
func (g *graph) Sigmoid(x nn.Tensor) nn.Tensor { return g.unary("Sigmoid", x, lib.AtgSigmoid) }
func (g *graph) ReLU(x nn.Tensor) nn.Tensor    { return g.unary("ReLU", x, lib.AtgRelu) }

// ---- shape manipulation ----

func (g *graph) Reshape(x nn.Tensor, shape ...int) nn.Tensor {
	h := g.check("Reshape", x)
	shape = rules.Reshape(h[0].operand(), shape)
	if h[0].isInt {
		return g.intResult(shape, func() []int64 { return h[0].ints })
	}
	return g.float(shape, func(m *arena) lib.Ctensor { return m.reshape(h[0].t, shape) })
}

func (g *graph) Transpose(x nn.Tensor, perm ...int) nn.Tensor {
	h := g.check("Transpose", x)
	xs := h[0].shape
	shape := rules.Transpose(h[0].operand(), perm)
	perm = slices.Clone(perm)
	if h[0].isInt {
		return g.intResult(shape, func() []int64 { return transposeInts(h[0].ints, xs, perm) })
	}
	return g.float(shape, func(m *arena) lib.Ctensor {
		d := dims64(perm)
		return m.call("permute", func(out *lib.Ctensor) { lib.AtgPermute(out, h[0].t, nonEmpty(d), len(d)) })
	})
}

func (g *graph) Slice(x nn.Tensor, axis, start, end int) nn.Tensor {
	h := g.check("Slice", x)
	s := h[0].shape
	shape := rules.Slice(h[0].operand(), axis, start, end)
	if h[0].isInt {
		return g.intResult(shape, func() []int64 { return sliceInts(h[0].ints, s, axis, start, end) })
	}
	return g.float(shape, func(m *arena) lib.Ctensor {
		return m.call("narrow", func(out *lib.Ctensor) {
			lib.AtgNarrow(out, h[0].t, int64(axis), int64(start), int64(end-start))
		})
	})
}

func (g *graph) Concat(axis int, xs ...nn.Tensor) nn.Tensor {
	h := g.check("Concat", xs...)
	shape, ns := rules.Concat(axis, shapes.Operands(h, (*tensor).operand)...)
	if h[0].isInt {
		return g.intResult(shape, func() []int64 {
			outer, _, inner := axisView(shape, axis)
			srcs := make([][]int64, len(h))
			for i, t := range h {
				srcs[i] = t.ints
			}
			return concatInts(srcs, ns, outer, inner)
		})
	}
	return g.float(shape, func(m *arena) lib.Ctensor {
		list := make([]lib.Ctensor, len(h))
		for i, t := range h {
			list[i] = t.t
		}
		return m.call("cat", func(out *lib.Ctensor) { lib.AtgCat(out, list, len(list), int64(axis)) })
	})
}

// ---- indexing ----

func (g *graph) Gather(table, ids nn.Tensor) nn.Tensor {
	h := g.check("Gather", table, ids)
	t, id := h[0], h[1]
	shape := rules.Gather(t.operand(), id.operand())
	vocab := t.shape[0]
	return g.float(shape, func(m *arena) lib.Ctensor {
		for i, v := range id.ints {
			if v < 0 || v >= int64(vocab) {
				panic(&feedError{fmt.Sprintf("Gather: id %d at position %d out of range [0,%d)", v, i, vocab)})
			}
		}
		idx := g.index(id)
		return m.call("index_select", func(out *lib.Ctensor) { lib.AtgIndexSelect(out, t.t, 0, idx) })
	})
}

func (g *graph) Pick(x, ids nn.Tensor) nn.Tensor {
	h := g.check("Pick", x, ids)
	t, id := h[0], h[1]
	shape := rules.Pick(t.operand(), id.operand())
	n, v := t.shape[0], t.shape[1]
	return g.float(shape, func(m *arena) lib.Ctensor {
		// out = where(ids >= 0, x.gather(1, max(ids,0)[:,None])[:,0], 0):
		// rows with a negative id read column 0 but get exactly 0 and no
		// gradient through where.
		col := make([]int64, n)
		keep := make([]bool, n)
		masked := false
		for i, c := range id.ints {
			switch {
			case c >= int64(v):
				panic(&feedError{fmt.Sprintf("Pick: id %d at row %d out of range [0,%d)", c, i, v)})
			case c < 0:
				masked = true
			default:
				col[i], keep[i] = c, true
			}
		}
		idx := m.int64s(col, []int{n, 1}, g.device)
		picked := m.reshape(m.call("gather", func(out *lib.Ctensor) { lib.AtgGather(out, t.t, 1, idx, 0) }), []int{n})
		if !masked {
			return picked
		}
		cond := m.bools(keep, []int{n}, g.device)
		zero := m.floats([]float32{0}, nil, g.device)
		return m.call("where", func(out *lib.Ctensor) { lib.AtgWhereSelf(out, cond, picked, zero) })
	})
}

// ---- normalisation ----

func (g *graph) lastAxis(op string, x nn.Tensor) *tensor {
	h := g.check(op, x)
	rules.LastAxis(op, h[0].operand())
	return h[0]
}

func (g *graph) Softmax(x nn.Tensor) nn.Tensor {
	h := g.lastAxis("Softmax", x)
	return g.float(h.shape, func(m *arena) lib.Ctensor {
		return m.call("softmax", func(out *lib.Ctensor) { lib.AtgSoftmax(out, h.t, -1, noDType) })
	})
}

func (g *graph) LogSoftmax(x nn.Tensor) nn.Tensor {
	h := g.lastAxis("LogSoftmax", x)
	return g.float(h.shape, func(m *arena) lib.Ctensor {
		return m.call("log_softmax", func(out *lib.Ctensor) { lib.AtgLogSoftmax(out, h.t, -1, noDType) })
	})
}

func (g *graph) LayerNorm(x, gamma, beta nn.Tensor, eps float32) nn.Tensor {
	h := g.check("LayerNorm", x, gamma, beta)
	xs := rules.LayerNorm(h[0].operand(), h[1].operand(), h[2].operand(), eps)
	d := xs[len(xs)-1]
	return g.float(xs, func(m *arena) lib.Ctensor {
		// torch.nn.functional.layer_norm: biased variance over the last
		// axis, eps inside the square root (Ba et al. 2016).
		return m.call("layer_norm", func(out *lib.Ctensor) {
			lib.AtgLayerNorm(out, h[0].t, []int64{int64(d)}, 1, h[1].t, h[2].t, float64(eps), 1)
		})
	})
}

// ---- reduction, dropout ----

func (g *graph) Sum(x nn.Tensor) nn.Tensor {
	h := g.check("Sum", x)
	return g.float(rules.Sum(h[0].operand()), func(m *arena) lib.Ctensor {
		return m.call("sum", func(out *lib.Ctensor) { lib.AtgSum(out, h[0].t, noDType) })
	})
}

// Dropout multiplies x by the k-th mask of the run, nn.DropoutMask(seed, k,
// size, p), uploaded as a constant, so that both backends drop the same
// elements.
func (g *graph) Dropout(x nn.Tensor, p float32) nn.Tensor {
	h := g.check("Dropout", x)
	rules.Dropout(h[0].operand(), p)
	k := g.ndrop
	g.ndrop++
	if !g.spec.Train || p == 0 {
		return h[0]
	}
	return g.float(h[0].shape, func(m *arena) lib.Ctensor {
		mask := m.floats(nn.DropoutMask(g.feeds.Seed, k, sizeOf(h[0].shape), p), h[0].shape, g.device)
		return m.call("mul", func(out *lib.Ctensor) { lib.AtgMul(out, h[0].t, mask) })
	})
}
