//go:build gotch

package gotch

import (
	"fmt"
	"slices"

	lib "github.com/sugarme/gotch/libtch"

	"arbench/nn"
)

// This file implements the operations of nn.Graph on libtorch: the shape
// checks (identical to the gorgonia backend's, so both reject the same
// programs) and the libtorch call computing each result. Gradients come
// from libtorch's autograd.

// ---- linear algebra ----

func (g *graph) MatMul(a, c nn.Tensor, transA, transB bool) nn.Tensor {
	h := g.check("MatMul", a, c)
	mustFloat("MatMul", h...)
	if len(h[0].shape) != 2 || len(h[1].shape) != 2 {
		panic(fmt.Sprintf("gotch: MatMul: want 2-D operands, got shapes %v and %v", h[0].shape, h[1].shape))
	}
	return g.matmul(h[0], h[1], transA, transB)
}

func (g *graph) BatchMatMul(a, c nn.Tensor, transA, transB bool) nn.Tensor {
	h := g.check("BatchMatMul", a, c)
	mustFloat("BatchMatMul", h...)
	if len(h[0].shape) != 3 || len(h[1].shape) != 3 || h[0].shape[0] != h[1].shape[0] {
		panic(fmt.Sprintf("gotch: BatchMatMul: want 3-D operands with equal batch, got shapes %v and %v", h[0].shape, h[1].shape))
	}
	return g.matmul(h[0], h[1], transA, transB)
}

// matmul multiplies the last two axes: torch.mm for 2-D operands,
// torch.bmm for 3-D ones, with transposes as strided views.
func (g *graph) matmul(a, c *tensor, transA, transB bool) *tensor {
	name := "MatMul"
	if len(a.shape) == 3 {
		name = "BatchMatMul"
	}
	r := len(a.shape)
	m, k := a.shape[r-2], a.shape[r-1]
	if transA {
		m, k = k, m
	}
	kb, n := c.shape[r-2], c.shape[r-1]
	if transB {
		kb, n = n, kb
	}
	if k != kb {
		panic(fmt.Sprintf("gotch: %s: shapes %v and %v incompatible (transA=%t transB=%t)", name, a.shape, c.shape, transA, transB))
	}
	shape := []int{m, n}
	if r == 3 {
		shape = []int{a.shape[0], m, n}
	}
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

// broadcastable reports whether c's shape is a trailing suffix of a's.
func broadcastable(a, c []int) bool {
	return len(c) <= len(a) && slices.Equal(a[len(a)-len(c):], c)
}

// binary applies a libtorch broadcasting operation after checking the
// nn.Graph rule (the second shape equals the first or a trailing suffix of
// it), which is a special case of torch broadcasting with the same result.
func (g *graph) binary(name string, a, c nn.Tensor, f func(out *lib.Ctensor, x, y lib.Ctensor)) nn.Tensor {
	h := g.check(name, a, c)
	mustFloat(name, h...)
	if !broadcastable(h[0].shape, h[1].shape) {
		panic(fmt.Sprintf("gotch: %s: shapes %v and %v: the second must equal the first or a trailing suffix of it", name, h[0].shape, h[1].shape))
	}
	return g.float(h[0].shape, func(m *arena) lib.Ctensor {
		return m.call(name, func(out *lib.Ctensor) { f(out, h[0].t, h[1].t) })
	})
}

func (g *graph) Add(a, c nn.Tensor) nn.Tensor { return g.binary("Add", a, c, lib.AtgAdd) }
func (g *graph) Sub(a, c nn.Tensor) nn.Tensor { return g.binary("Sub", a, c, lib.AtgSub) }
func (g *graph) Mul(a, c nn.Tensor) nn.Tensor { return g.binary("Mul", a, c, lib.AtgMul) }

func (g *graph) Scale(x nn.Tensor, s float32) nn.Tensor {
	h := g.check("Scale", x)
	mustFloat("Scale", h...)
	return g.float(h[0].shape, func(m *arena) lib.Ctensor { return m.mulScalar(h[0].t, float64(s)) })
}

func (g *graph) unary(name string, x nn.Tensor, f func(out *lib.Ctensor, x lib.Ctensor)) nn.Tensor {
	h := g.check(name, x)
	mustFloat(name, h...)
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
	checkDims("Reshape", shape)
	if sizeOf(shape) != sizeOf(h[0].shape) {
		panic(fmt.Sprintf("gotch: Reshape: cannot reshape %v to %v", h[0].shape, shape))
	}
	if h[0].isInt {
		return g.intResult(shape, func() []int64 { return h[0].ints })
	}
	return g.float(shape, func(m *arena) lib.Ctensor { return m.reshape(h[0].t, shape) })
}

func (g *graph) Transpose(x nn.Tensor, perm ...int) nn.Tensor {
	h := g.check("Transpose", x)
	xs := h[0].shape
	r := len(xs)
	seen := make([]bool, r)
	ok := len(perm) == r
	for _, p := range perm {
		if !ok || p < 0 || p >= r || seen[p] {
			ok = false
			break
		}
		seen[p] = true
	}
	if !ok {
		panic(fmt.Sprintf("gotch: Transpose: %v is not a permutation of the axes of shape %v", perm, xs))
	}
	perm = slices.Clone(perm)
	shape := make([]int, r)
	for d, p := range perm {
		shape[d] = xs[p]
	}
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
	if axis < 0 || axis >= len(s) || start < 0 || end > s[axis] || start >= end {
		panic(fmt.Sprintf("gotch: Slice: axis %d range [%d,%d) invalid for shape %v", axis, start, end, s))
	}
	shape := slices.Clone(s)
	shape[axis] = end - start
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
	if len(h) == 0 {
		panic("gotch: Concat: no operands")
	}
	first := h[0].shape
	if axis < 0 || axis >= len(first) {
		panic(fmt.Sprintf("gotch: Concat: axis %d invalid for shape %v", axis, first))
	}
	shape := slices.Clone(first)
	shape[axis] = 0
	ns := make([]int, len(h))
	for i, t := range h {
		bad := t.isInt != h[0].isInt || len(t.shape) != len(first)
		for d := range first {
			if !bad && d != axis && t.shape[d] != first[d] {
				bad = true
			}
		}
		if bad {
			all := make([][]int, len(h))
			for j, u := range h {
				all[j] = u.shape
			}
			panic(fmt.Sprintf("gotch: Concat: shapes %v disagree outside axis %d (or mix integer and float)", all, axis))
		}
		ns[i] = t.shape[axis]
		shape[axis] += ns[i]
	}
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
	mustFloat("Gather", t)
	mustInt("Gather", id)
	if len(t.shape) != 2 || len(id.shape) != 1 {
		panic(fmt.Sprintf("gotch: Gather: want table [V,D] and ids [N], got shapes %v and %v", t.shape, id.shape))
	}
	vocab := t.shape[0]
	return g.float([]int{id.shape[0], t.shape[1]}, func(m *arena) lib.Ctensor {
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
	mustFloat("Pick", t)
	mustInt("Pick", id)
	if len(t.shape) != 2 || len(id.shape) != 1 || id.shape[0] != t.shape[0] {
		panic(fmt.Sprintf("gotch: Pick: want x [N,V] and ids [N], got shapes %v and %v", t.shape, id.shape))
	}
	n, v := t.shape[0], t.shape[1]
	return g.float([]int{n}, func(m *arena) lib.Ctensor {
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
	mustFloat(op, h...)
	if len(h[0].shape) == 0 {
		panic(fmt.Sprintf("gotch: %s: shape %v has no last axis", op, h[0].shape))
	}
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
	mustFloat("LayerNorm", h...)
	xs, gs, bs := h[0].shape, h[1].shape, h[2].shape
	if len(xs) == 0 || len(gs) != 1 || !slices.Equal(gs, bs) || gs[0] != xs[len(xs)-1] {
		panic(fmt.Sprintf("gotch: LayerNorm: x %v needs gamma and beta of shape [last axis of x], got %v and %v", xs, gs, bs))
	}
	if !(eps > 0) {
		panic(fmt.Sprintf("gotch: LayerNorm: eps %g must be positive", eps))
	}
	return g.float(xs, func(m *arena) lib.Ctensor {
		// torch.nn.functional.layer_norm: biased variance over the last
		// axis, eps inside the square root (Ba et al. 2016).
		return m.call("layer_norm", func(out *lib.Ctensor) {
			lib.AtgLayerNorm(out, h[0].t, []int64{int64(gs[0])}, 1, h[1].t, h[2].t, float64(eps), 1)
		})
	})
}

// ---- reduction, dropout ----

func (g *graph) Sum(x nn.Tensor) nn.Tensor {
	h := g.check("Sum", x)
	mustFloat("Sum", h...)
	return g.float(nil, func(m *arena) lib.Ctensor {
		return m.call("sum", func(out *lib.Ctensor) { lib.AtgSum(out, h[0].t, noDType) })
	})
}

// Dropout multiplies x by the k-th mask of the run, nn.DropoutMask(seed, k,
// size, p), uploaded as a constant, so that both backends drop the same
// elements.
func (g *graph) Dropout(x nn.Tensor, p float32) nn.Tensor {
	h := g.check("Dropout", x)
	mustFloat("Dropout", h...)
	if !(p >= 0 && p < 1) {
		panic(fmt.Sprintf("gotch: Dropout: probability %g not in [0,1)", p))
	}
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
