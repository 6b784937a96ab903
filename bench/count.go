package bench

import (
	"context"
	"fmt"
	"slices"

	"arbench/nn"
)

// CountBackend is an nn.Backend that computes nothing and counts the
// floating-point operations of the matrix products a model executes. Its
// Compile runs the build function on a shape-only graph that adds up, for
// every MatMul and BatchMatMul, 2·m·n·k FLOPs (one multiply and one add per
// multiply-accumulate) and, in training executables, the same again for
// each operand whose gradient the backward pass computes (∂A = G·Bᵀ,
// ∂B = Aᵀ·G). Run returns zero-valued outputs of the declared shapes and
// adds the executable's count to the total, so running a model operation
// (a training step, a scoring pass, a generation loop) against it counts
// exactly the products that operation executes on a real backend.
//
// nn.CacheAttention counts the products it executes, over the filled
// slots alone: 2·N·n·(dk+dv) FLOPs for each run, n read from the run's
// feed.
//
// Element-wise operations, softmax, normalisation and lookups are not
// counted: at the sizes arbench benchmarks they are a few percent of the
// total, and the matrix products are what a matmul ceiling compares with.
type CountBackend struct {
	total float64
}

var _ nn.Backend = (*CountBackend)(nil)

// Name returns "count".
func (*CountBackend) Name() string { return "count" }

// Device returns "none".
func (*CountBackend) Device() string { return "none" }

// FLOPs returns the FLOPs executed so far.
func (c *CountBackend) FLOPs() float64 { return c.total }

// Reset sets the count to zero.
func (c *CountBackend) Reset() { c.total = 0 }

// Compile builds the graph shapes only and records its FLOPs per run.
func (c *CountBackend) Compile(spec nn.Spec, build nn.BuildFunc) (exe nn.Executable, err error) {
	g := &countGraph{train: spec.Train, outputs: map[string][]int{}}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("count: compile %s: %v", spec.Key, r)
		}
	}()
	if err := build(g); err != nil {
		return nil, fmt.Errorf("count: compile %s: %w", spec.Key, err)
	}
	return &countExec{b: c, flops: g.flops, fills: g.fills, outputs: g.outputs}, nil
}

type countExec struct {
	b       *CountBackend
	flops   float64
	fills   []fillTerm
	outputs map[string][]int
}

// fillTerm is the FLOPs of a CacheAttention node: perSlot times the
// number of filled slots, the first value of the Ints feed named feed.
type fillTerm struct {
	feed    string
	perSlot float64
}

func (e *countExec) Run(_ context.Context, feeds nn.Feeds) (*nn.Result, error) {
	flops := e.flops
	for _, f := range e.fills {
		n, ok := feeds.Ints[f.feed]
		if !ok || len(n) != 1 {
			return nil, fmt.Errorf("count: CacheAttention's filled slots: int input %q has %d values, want 1", f.feed, len(n))
		}
		flops += f.perSlot * float64(n[0])
	}
	e.b.total += flops
	res := &nn.Result{Outputs: make(map[string]nn.Value, len(e.outputs))}
	for name, shape := range e.outputs {
		res.Outputs[name] = nn.Value{Shape: slices.Clone(shape), Data: make([]float32, size(shape))}
	}
	return res, nil
}

func (e *countExec) Close() error { return nil }

func size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// countT is a tensor of countGraph: a shape, whether a training
// executable's backward pass computes its gradient, and the name of the
// Ints input it is (for CacheAttention's filled slots).
type countT struct {
	shape []int
	grad  bool
	feed  string
}

func (t *countT) Shape() []int { return slices.Clone(t.shape) }

type countGraph struct {
	train   bool
	flops   float64
	fills   []fillTerm
	outputs map[string][]int
}

var (
	_ nn.Graph         = (*countGraph)(nil)
	_ nn.CacheAttender = (*countGraph)(nil)
)

func ct(x nn.Tensor) *countT { return x.(*countT) }

func (g *countGraph) like(shape []int, ins ...nn.Tensor) nn.Tensor {
	t := &countT{shape: slices.Clone(shape)}
	for _, in := range ins {
		t.grad = t.grad || ct(in).grad
	}
	return t
}

func (g *countGraph) Param(p *nn.Param) nn.Tensor {
	return &countT{shape: slices.Clone(p.Shape), grad: g.train}
}
func (g *countGraph) Ints(name string, shape ...int) nn.Tensor {
	return &countT{shape: slices.Clone(shape), feed: name}
}
func (g *countGraph) Floats(_ string, shape ...int) nn.Tensor { return &countT{shape: shape} }
func (g *countGraph) Const(_ []float32, shape ...int) nn.Tensor {
	return &countT{shape: slices.Clone(shape)}
}

func (g *countGraph) MatMul(a, b nn.Tensor, transA, transB bool) nn.Tensor {
	return g.matmul(1, a, b, transA, transB)
}

func (g *countGraph) BatchMatMul(a, b nn.Tensor, transA, transB bool) nn.Tensor {
	return g.matmul(ct(a).shape[0], a, b, transA, transB)
}

func (g *countGraph) matmul(batch int, a, b nn.Tensor, transA, transB bool) nn.Tensor {
	as, bs := ct(a).shape, ct(b).shape
	r := len(as)
	m, k := as[r-2], as[r-1]
	if transA {
		m, k = k, m
	}
	n := bs[r-1]
	if transB {
		n = bs[r-2]
	}
	f := 2 * float64(batch) * float64(m) * float64(n) * float64(k)
	g.flops += f
	for _, x := range []nn.Tensor{a, b} {
		if ct(x).grad {
			g.flops += f
		}
	}
	shape := []int{m, n}
	if r == 3 {
		shape = []int{batch, m, n}
	}
	return g.like(shape, a, b)
}

// CacheAttention counts q [N,1,dk] against the filled slots of k [N,C,dk]
// and v [N,C,dv] when the run's n is an input, else all C slots (n derived
// in the graph: at most C).
func (g *countGraph) CacheAttention(q, k, v, n nn.Tensor) nn.Tensor {
	ks, vs := ct(k).shape, ct(v).shape
	perSlot := 2 * float64(ks[0]) * float64(ks[2]+vs[2])
	if feed := ct(n).feed; feed != "" {
		g.fills = append(g.fills, fillTerm{feed: feed, perSlot: perSlot})
	} else {
		g.flops += perSlot * float64(ks[1])
	}
	return g.like([]int{ks[0], 1, vs[2]}, q, k, v)
}

func (g *countGraph) Add(a, b nn.Tensor) nn.Tensor           { return g.like(ct(a).shape, a, b) }
func (g *countGraph) Sub(a, b nn.Tensor) nn.Tensor           { return g.like(ct(a).shape, a, b) }
func (g *countGraph) Mul(a, b nn.Tensor) nn.Tensor           { return g.like(ct(a).shape, a, b) }
func (g *countGraph) Scale(x nn.Tensor, _ float32) nn.Tensor { return g.like(ct(x).shape, x) }
func (g *countGraph) Tanh(x nn.Tensor) nn.Tensor             { return g.like(ct(x).shape, x) }
func (g *countGraph) Sigmoid(x nn.Tensor) nn.Tensor          { return g.like(ct(x).shape, x) }
func (g *countGraph) ReLU(x nn.Tensor) nn.Tensor             { return g.like(ct(x).shape, x) }
func (g *countGraph) Reshape(x nn.Tensor, shape ...int) nn.Tensor {
	return g.like(shape, x)
}

func (g *countGraph) Transpose(x nn.Tensor, perm ...int) nn.Tensor {
	s := ct(x).shape
	out := make([]int, len(perm))
	for d, p := range perm {
		out[d] = s[p]
	}
	return g.like(out, x)
}

func (g *countGraph) Slice(x nn.Tensor, axis, start, end int) nn.Tensor {
	s := slices.Clone(ct(x).shape)
	s[axis] = end - start
	return g.like(s, x)
}

func (g *countGraph) Concat(axis int, xs ...nn.Tensor) nn.Tensor {
	s := slices.Clone(ct(xs[0]).shape)
	s[axis] = 0
	for _, x := range xs {
		s[axis] += ct(x).shape[axis]
	}
	return g.like(s, xs...)
}

func (g *countGraph) Gather(table, ids nn.Tensor) nn.Tensor {
	return g.like([]int{ct(ids).shape[0], ct(table).shape[1]}, table)
}

func (g *countGraph) Pick(x, ids nn.Tensor) nn.Tensor {
	return g.like([]int{ct(ids).shape[0]}, x)
}

func (g *countGraph) Softmax(x nn.Tensor) nn.Tensor    { return g.like(ct(x).shape, x) }
func (g *countGraph) LogSoftmax(x nn.Tensor) nn.Tensor { return g.like(ct(x).shape, x) }
func (g *countGraph) LayerNorm(x, gamma, beta nn.Tensor, _ float32) nn.Tensor {
	return g.like(ct(x).shape, x, gamma, beta)
}
func (g *countGraph) Sum(x nn.Tensor) nn.Tensor                { return g.like(nil, x) }
func (g *countGraph) Dropout(x nn.Tensor, _ float32) nn.Tensor { return x }
func (g *countGraph) Output(name string, x nn.Tensor)          { g.outputs[name] = ct(x).Shape() }
func (g *countGraph) Loss(nn.Tensor)                           {}
