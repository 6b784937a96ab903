package gorgonia

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"arbench/nn"
	"arbench/nn/internal/shapes"
)

// This file implements the operations of nn.Graph: shape checks, the
// forward kernel of each node and its gradient rule.

// ---- linear algebra ----

func (b *builder) MatMul(a, c nn.Tensor, transA, transB bool) nn.Tensor {
	h := b.check("MatMul", a, c)
	rules.MatMul(h[0].operand(), h[1].operand(), transA, transB)
	return b.matmul(h[0], h[1], transA, transB)
}

func (b *builder) BatchMatMul(a, c nn.Tensor, transA, transB bool) nn.Tensor {
	h := b.check("BatchMatMul", a, c)
	rules.BatchMatMul(h[0].operand(), h[1].operand(), transA, transB)
	return b.matmul(h[0], h[1], transA, transB)
}

// matmul multiplies the last two axes of a and c (2-D, or 3-D batch by
// batch): op(a)·op(c) with op a transpose when the flag is set.
func (b *builder) matmul(a, c *tensorT, transA, transB bool) *tensorT {
	name := "MatMul"
	batch := 1
	if len(a.shape) == 3 {
		name, batch = "BatchMatMul", a.shape[0]
	}
	m, n, k := rules.Product(name, a.shape, c.shape, transA, transB)
	shape := []int{m, n}
	if len(a.shape) == 3 {
		shape = []int{batch, m, n}
	}
	pool := b.gemm
	return b.apply(name, shape, false, []*tensorT{a, c},
		func(in []G.Value, out *tensor.Dense) error {
			gemm(pool, transA, transB, batch, m, n, k, f32(in[0]), f32(in[1]), out.Float32s(), false)
			return nil
		},
		func(_, g *tensorT, need []bool) []grad {
			// C = op(A)·op(B); e.g. Giles 2008, "Collected matrix derivative results".
			gs := make([]grad, 2)
			// The gradient of a parameter (an input node) of a 2-D product
			// is deferred to accumulate (see mmTerm).
			lazy := [2]bool{batch == 1 && a.kop == nil, batch == 1 && c.kop == nil}
			product := func(op int, x, y *tensorT, tx, ty bool) {
				if !need[op] {
					return
				}
				if !lazy[op] {
					gs[op] = dense(b.matmul(x, y, tx, ty))
					return
				}
				rows, inner := x.shape[0], x.shape[1]
				if tx {
					rows, inner = inner, rows
				}
				cols := y.shape[1]
				if ty {
					cols = y.shape[0]
				}
				gs[op] = grad{mm: &mmTerm{a: x, b: y, transA: tx, transB: ty, m: rows, n: cols, k: inner}}
			}
			switch {
			case !transA && !transB:
				product(0, g, c, false, true) // G·Bᵀ
				product(1, a, g, true, false) // Aᵀ·G
			case transA && !transB:
				product(0, c, g, false, true)  // B·Gᵀ
				product(1, a, g, false, false) // A·G
			case !transA && transB:
				if need[0] && c.kop == nil && len(g.shape) == 2 && g.shape[0] <= smallProductRows {
					// G·B as G·(Bᵀ)ᵀ: with few rows the unpacked
					// row-by-row product (dotNT) is faster than the
					// packed one, and Bᵀ of a parameter or input is
					// computed once per run (see transposedInput).
					gs[0] = dense(b.matmul(g, b.transposedInput(c), false, true))
				} else {
					product(0, g, c, false, false) // G·B
				}
				product(1, g, a, true, false) // Gᵀ·A
			default:
				product(0, c, g, true, true) // Bᵀ·Gᵀ
				product(1, g, a, true, true) // Gᵀ·Aᵀ
			}
			return gs
		})
}

// smallProductRows is the most rows of G for which the gradient G·B of
// A·Bᵀ is computed as G·(Bᵀ)ᵀ (see matmul): the per-time-step products of a
// recurrent layer's state with its recurrent weight.
const smallProductRows = 64

// transposedInput returns a node holding xᵀ of the 2-D input x (a
// parameter or an input: its value is fixed during a run), one per x and
// executable, created on first use.
func (b *builder) transposedInput(x *tensorT) *tensorT {
	if t, ok := b.transposed[x]; ok {
		return t
	}
	t := b.transpose(x, []int{1, 0})
	if b.transposed == nil {
		b.transposed = map[*tensorT]*tensorT{}
	}
	b.transposed[x] = t
	return t
}

// ---- element-wise ----

func (b *builder) Add(a, c nn.Tensor) nn.Tensor {
	h := b.check("Add", a, c)
	return b.binary("Add", '+', h[0], h[1])
}

func (b *builder) Sub(a, c nn.Tensor) nn.Tensor {
	h := b.check("Sub", a, c)
	return b.binary("Sub", '-', h[0], h[1])
}

func (b *builder) Mul(a, c nn.Tensor) nn.Tensor {
	h := b.check("Mul", a, c)
	return b.binary("Mul", '*', h[0], h[1])
}

// binary computes a (op) c where c has a's shape or a trailing suffix of it
// and is repeated over a's leading axes.
func (b *builder) binary(name string, kind byte, a, c *tensorT) *tensorT {
	rules.Broadcast(name, a.operand(), c.operand())
	same := a.size == c.size
	return b.apply(name, a.shape, false, []*tensorT{a, c},
		func(in []G.Value, out *tensor.Dense) error {
			binaryPar(kind, f32(in[0]), f32(in[1]), out.Float32s())
			return nil
		},
		func(_, g *tensorT, need []bool) []grad {
			gs := make([]grad, 2)
			switch kind {
			case '+', '-':
				if need[0] {
					gs[0] = dense(g)
				}
				if need[1] {
					switch {
					case same && kind == '+':
						gs[1] = dense(g)
					case kind == '+':
						gs[1] = dense(b.reduceLeading(g, c.shape, 1))
					default:
						gs[1] = dense(b.reduceLeading(g, c.shape, -1))
					}
				}
			case '*':
				if need[0] {
					gs[0] = dense(b.binary("MulGrad", '*', g, c))
				}
				if need[1] {
					if same {
						gs[1] = dense(b.binary("MulGrad", '*', g, a))
					} else {
						gs[1] = dense(b.apply("MulReduceGrad", c.shape, false, []*tensorT{g, a},
							func(in []G.Value, out *tensor.Dense) error {
								mulReduce(f32(in[0]), f32(in[1]), out.Float32s())
								return nil
							}, nil))
					}
				}
			}
			return gs
		})
}

// reduceLeading sums g over the axes in front of shape, times scale.
func (b *builder) reduceLeading(g *tensorT, shape []int, scale float32) *tensorT {
	return b.apply("ReduceLeading", shape, false, []*tensorT{g},
		func(in []G.Value, out *tensor.Dense) error {
			reduceLeading(f32(in[0]), out.Float32s(), scale)
			return nil
		}, nil)
}

func (b *builder) Scale(x nn.Tensor, s float32) nn.Tensor {
	h := b.check("Scale", x)
	rules.Float("Scale", h[0].operand())
	return b.scale(h[0], s)
}

func (b *builder) scale(x *tensorT, s float32) *tensorT {
	return b.apply("Scale", x.shape, false, []*tensorT{x},
		func(in []G.Value, out *tensor.Dense) error {
			scaleInto(f32(in[0]), out.Float32s(), s)
			return nil
		},
		func(_, g *tensorT, _ []bool) []grad { return []grad{dense(b.scale(g, s))} })
}

// unary adds an element-wise function whose derivative is expressed in
// terms of its output y: dx = dfun(y, g).
// cost estimates fun's nanoseconds per element (see splitRange).
func (b *builder) unary(name string, x nn.Tensor, cost float64, fun func(x, out []float32), dfun func(y, g, out []float32)) nn.Tensor {
	h := b.check(name, x)
	rules.Float(name, h[0].operand())
	return b.apply(name, h[0].shape, false, h,
		func(in []G.Value, out *tensor.Dense) error {
			x, o := f32(in[0]), out.Float32s()
			if serialWork(len(x), cost) {
				fun(x, o)
				return nil
			}
			splitRange(len(x), 1, cost, func(lo, hi int) { fun(x[lo:hi], o[lo:hi]) })
			return nil
		},
		func(y, g *tensorT, _ []bool) []grad {
			return []grad{dense(b.apply(name+"Grad", y.shape, false, []*tensorT{y, g},
				func(in []G.Value, out *tensor.Dense) error {
					y, g, o := f32(in[0]), f32(in[1]), out.Float32s()
					splitRange(len(y), 1, costCheap, func(lo, hi int) { dfun(y[lo:hi], g[lo:hi], o[lo:hi]) })
					return nil
				}, nil))}
		})
}

func (b *builder) Tanh(x nn.Tensor) nn.Tensor {
	return b.unary("Tanh", x, costMath, tanhInto, tanhGrad)
}

func (b *builder) Sigmoid(x nn.Tensor) nn.Tensor {
	return b.unary("Sigmoid", x, costMath, sigmoidInto, sigmoidGrad)
}

func (b *builder) ReLU(x nn.Tensor) nn.Tensor {
	return b.unary("ReLU", x, costCheap, reluInto, reluGrad)
}

// ---- shape manipulation ----

func (b *builder) Reshape(x nn.Tensor, shape ...int) nn.Tensor {
	h := b.check("Reshape", x)
	return b.reshape(h[0], rules.Reshape(h[0].operand(), shape))
}

// reshape is a view: the element order is unchanged.
func (b *builder) reshape(x *tensorT, shape []int) *tensorT {
	return b.view("Reshape", x, 0, shape, func(_, g *tensorT, _ []bool) []grad {
		return []grad{dense(b.reshape(g, x.shape))}
	})
}

func (b *builder) Transpose(x nn.Tensor, perm ...int) nn.Tensor {
	h := b.check("Transpose", x)
	rules.Transpose(h[0].operand(), perm)
	return b.transpose(h[0], slices.Clone(perm))
}

func (b *builder) transpose(x *tensorT, perm []int) *tensorT {
	shape := make([]int, len(perm))
	inv := make([]int, len(perm))
	for d, p := range perm {
		shape[d] = x.shape[p]
		inv[p] = d
	}
	if keepsOrder(x.shape, perm) {
		return b.reshape(x, shape)
	}
	var back backwardFunc
	if !x.isInt {
		back = func(_, g *tensorT, _ []bool) []grad { return []grad{dense(b.transpose(g, inv))} }
	}
	return b.apply("Transpose", shape, x.isInt, []*tensorT{x},
		func(in []G.Value, out *tensor.Dense) error {
			if x.isInt {
				transposeInto(ints(in[0]), out.Ints(), x.shape, perm)
			} else {
				transposeInto(f32(in[0]), out.Float32s(), x.shape, perm)
			}
			return nil
		}, back)
}

// keepsOrder reports whether transposing shape by perm leaves the elements
// in memory order: the axes longer than 1 keep their relative order (a
// decoding step's [B, 1, heads, d] to [B, heads, 1, d]), so the transpose
// is a reshape.
func keepsOrder(shape, perm []int) bool {
	last := -1
	for _, p := range perm {
		if shape[p] == 1 {
			continue
		}
		if p < last {
			return false
		}
		last = p
	}
	return true
}

// axisView describes a tensor as [outer, shape[axis], inner].
func axisView(shape []int, axis int) (outer, n, inner int) {
	return sizeOf(shape[:axis]), shape[axis], sizeOf(shape[axis+1:])
}

func (b *builder) Slice(x nn.Tensor, axis, start, end int) nn.Tensor {
	h := b.check("Slice", x)
	rules.Slice(h[0].operand(), axis, start, end)
	return b.slice(h[0], axis, start, end)
}

// slice keeps [start,end) of axis. A slice that is contiguous in memory
// (all leading dimensions 1) is a view, others copy. The gradient is a
// window contribution, so the gradients of many slices of one tensor are
// summed by a single pass (see accumulate).
func (b *builder) slice(x *tensorT, axis, start, end int) *tensorT {
	shape := slices.Clone(x.shape)
	shape[axis] = end - start
	outer, n, inner := axisView(x.shape, axis)
	win := &window{outer: outer, n: n, inner: inner, start: start, end: end}
	var back backwardFunc
	if !x.isInt {
		back = func(_, g *tensorT, _ []bool) []grad { return []grad{{t: g, win: win}} }
	}
	if outer == 1 {
		return b.view("Slice", x, start*inner, shape, back)
	}
	return b.apply("Slice", shape, x.isInt, []*tensorT{x},
		func(in []G.Value, out *tensor.Dense) error {
			if x.isInt {
				sliceInto(ints(in[0]), out.Ints(), outer, n, inner, start, end)
			} else {
				sliceInto(f32(in[0]), out.Float32s(), outer, n, inner, start, end)
			}
			return nil
		}, back)
}

func (b *builder) Concat(axis int, xs ...nn.Tensor) nn.Tensor {
	h := b.check("Concat", xs...)
	shape, ns := rules.Concat(axis, shapes.Operands(h, (*tensorT).operand)...)
	outer, _, inner := axisView(shape, axis)
	isInt := h[0].isInt
	var back backwardFunc
	if !isInt {
		back = func(_, g *tensorT, need []bool) []grad {
			gs := make([]grad, len(h))
			off := 0
			for i, n := range ns {
				if need[i] {
					gs[i] = dense(b.slice(g, axis, off, off+n))
				}
				off += n
			}
			return gs
		}
	}
	return b.apply("Concat", shape, isInt, h,
		func(in []G.Value, out *tensor.Dense) error {
			if isInt {
				srcs := make([][]int, len(in))
				for i, v := range in {
					srcs[i] = ints(v)
				}
				concatInto(srcs, out.Ints(), outer, ns, inner)
			} else {
				srcs := make([][]float32, len(in))
				for i, v := range in {
					srcs[i] = f32(v)
				}
				concatInto(srcs, out.Float32s(), outer, ns, inner)
			}
			return nil
		}, back)
}

// ---- indexing ----

func (b *builder) Gather(table, ids nn.Tensor) nn.Tensor {
	h := b.check("Gather", table, ids)
	t, id := h[0], h[1]
	shape := rules.Gather(t.operand(), id.operand())
	vocab, d := t.shape[0], t.shape[1]
	return b.apply("Gather", shape, false, h,
		func(in []G.Value, out *tensor.Dense) error {
			return gatherInto(f32(in[0]), ints(in[1]), out.Float32s(), vocab, d)
		},
		func(_, g *tensorT, _ []bool) []grad {
			return []grad{dense(b.apply("GatherGrad", t.shape, false, []*tensorT{g, id},
				func(in []G.Value, out *tensor.Dense) error {
					gatherGrad(f32(in[0]), ints(in[1]), out.Float32s(), d)
					return nil
				}, nil)), {}}
		})
}

func (b *builder) Pick(x, ids nn.Tensor) nn.Tensor {
	h := b.check("Pick", x, ids)
	t, id := h[0], h[1]
	shape := rules.Pick(t.operand(), id.operand())
	v := t.shape[1]
	return b.apply("Pick", shape, false, h,
		func(in []G.Value, out *tensor.Dense) error {
			return pickInto(f32(in[0]), ints(in[1]), out.Float32s(), v)
		},
		func(_, g *tensorT, _ []bool) []grad {
			return []grad{dense(b.apply("PickGrad", t.shape, false, []*tensorT{g, id},
				func(in []G.Value, out *tensor.Dense) error {
					pickGrad(f32(in[0]), ints(in[1]), out.Float32s(), v)
					return nil
				}, nil)), {}}
		})
}

// ---- normalisation ----

func (b *builder) lastAxis(op string, x nn.Tensor) *tensorT {
	h := b.check(op, x)
	rules.LastAxis(op, h[0].operand())
	return h[0]
}

// rowwise adds a last-axis normalisation whose gradient is a function of
// its output y and the incoming gradient.
func (b *builder) rowwise(name string, x *tensorT, fun func(x, out []float32, d int), dfun func(y, g, out []float32, d int)) *tensorT {
	d := x.shape[len(x.shape)-1]
	return b.apply(name, x.shape, false, []*tensorT{x},
		func(in []G.Value, out *tensor.Dense) error {
			x, o := f32(in[0]), out.Float32s()
			if serialWork(len(x), costMath) {
				fun(x, o, d)
				return nil
			}
			splitRange(len(x), d, costMath, func(lo, hi int) { fun(x[lo:hi], o[lo:hi], d) })
			return nil
		},
		func(y, g *tensorT, _ []bool) []grad {
			return []grad{dense(b.apply(name+"Grad", y.shape, false, []*tensorT{y, g},
				func(in []G.Value, out *tensor.Dense) error {
					y, g, o := f32(in[0]), f32(in[1]), out.Float32s()
					splitRange(len(y), d, costMath, func(lo, hi int) { dfun(y[lo:hi], g[lo:hi], o[lo:hi], d) })
					return nil
				}, nil))}
		})
}

func (b *builder) Softmax(x nn.Tensor) nn.Tensor {
	return b.rowwise("Softmax", b.lastAxis("Softmax", x), softmaxInto, softmaxGrad)
}

func (b *builder) LogSoftmax(x nn.Tensor) nn.Tensor {
	return b.rowwise("LogSoftmax", b.lastAxis("LogSoftmax", x), logSoftmaxInto, logSoftmaxGrad)
}

func (b *builder) LayerNorm(x, gamma, beta nn.Tensor, eps float32) nn.Tensor {
	h := b.check("LayerNorm", x, gamma, beta)
	xs := rules.LayerNorm(h[0].operand(), h[1].operand(), h[2].operand(), eps)
	gs, bs := h[1].shape, h[2].shape
	xt, gt := h[0], h[1]
	return b.apply("LayerNorm", xs, false, h,
		func(in []G.Value, out *tensor.Dense) error {
			x, gm, bt, o := f32(in[0]), f32(in[1]), f32(in[2]), out.Float32s()
			if serialWork(len(x), 4*costCheap) {
				layerNormInto(x, gm, bt, o, eps)
				return nil
			}
			splitRange(len(x), len(gm), 4*costCheap, func(lo, hi int) { layerNormInto(x[lo:hi], gm, bt, o[lo:hi], eps) })
			return nil
		},
		func(_, g *tensorT, need []bool) []grad {
			grads := make([]grad, 3)
			if need[0] {
				grads[0] = dense(b.apply("LayerNormGradX", xs, false, []*tensorT{xt, gt, g},
					func(in []G.Value, out *tensor.Dense) error {
						x, gm, g, o := f32(in[0]), f32(in[1]), f32(in[2]), out.Float32s()
						splitRange(len(x), len(gm), 6*costCheap, func(lo, hi int) { layerNormGradX(x[lo:hi], gm, g[lo:hi], o[lo:hi], eps) })
						return nil
					}, nil))
			}
			if need[1] {
				grads[1] = dense(b.apply("LayerNormGradGamma", gs, false, []*tensorT{xt, g},
					func(in []G.Value, out *tensor.Dense) error {
						layerNormGradGamma(f32(in[0]), f32(in[1]), out.Float32s(), eps)
						return nil
					}, nil))
			}
			if need[2] {
				grads[2] = dense(b.reduceLeading(g, bs, 1))
			}
			return grads
		})
}

// ---- reduction, dropout ----

func (b *builder) Sum(x nn.Tensor) nn.Tensor {
	h := b.check("Sum", x)
	xt := h[0]
	return b.apply("Sum", rules.Sum(xt.operand()), false, h,
		func(in []G.Value, out *tensor.Dense) error {
			out.Float32s()[0] = sumOf(f32(in[0]))
			return nil
		},
		func(_, g *tensorT, _ []bool) []grad {
			return []grad{dense(b.apply("SumGrad", xt.shape, false, []*tensorT{g},
				func(in []G.Value, out *tensor.Dense) error {
					fill(out.Float32s(), f32(in[0])[0])
					return nil
				}, nil))}
		})
}

// Dropout multiplies x by the k-th mask of the run, an input fed from
// nn.DropoutMask(feeds.Seed, k, size, p) on every Run.
func (b *builder) Dropout(x nn.Tensor, p float32) nn.Tensor {
	h := b.check("Dropout", x)
	rules.Dropout(h[0].operand(), p)
	k := b.ndrop
	b.ndrop++
	if !b.spec.Train || p == 0 {
		return h[0]
	}
	xt := h[0]
	value := newF32Vec(xt.size)
	mask := b.input("dropout", fmt.Sprint(k), value, xt.shape, false)
	b.drops = append(b.drops, &dropInput{k: k, p: p, value: value})
	return b.apply("Dropout", xt.shape, false, []*tensorT{xt, mask},
		func(in []G.Value, out *tensor.Dense) error {
			binaryPar('*', f32(in[0]), f32(in[1]), out.Float32s())
			return nil
		},
		func(_, g *tensorT, _ []bool) []grad {
			return []grad{dense(b.binary("DropoutGrad", '*', g, mask)), {}}
		})
}
