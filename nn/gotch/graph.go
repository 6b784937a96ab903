//go:build gotch

package gotch

import (
	"fmt"
	"slices"

	lib "github.com/sugarme/gotch/libtch"

	"arbench/nn"
	"arbench/nn/internal/shapes"
)

// tensor is the nn.Tensor handle of this backend. Float values are libtorch
// tensors owned by the run's arena; integer values live on the host (see
// ints.go). In a dry build (Compile's shape check) neither is set.
type tensor struct {
	g     *graph
	shape []int
	isInt bool
	t     lib.Ctensor // float value
	ints  []int64     // integer value
	dev   lib.Ctensor // ints uploaded for indexing, made on first use
}

func (t *tensor) Shape() []int { return slices.Clone(t.shape) }

// decl is an input declared by the build function.
type decl struct {
	name  string
	shape []int
	isInt bool
}

type leaf struct {
	p *nn.Param
	t lib.Ctensor
}

type output struct {
	name string
	t    *tensor
}

// graph implements nn.Graph. Compile runs the build function on a dry graph,
// which only checks shapes and records the declared inputs; every Run runs
// it again on an eager graph, which computes each operation with libtorch
// as it is called (recording the autograd tape when training).
type graph struct {
	spec   nn.Spec
	dry    bool
	device int
	feeds  nn.Feeds
	mem    *arena
	done   bool

	params   map[*nn.Param]*tensor
	bound    []*nn.Param // in binding order
	leaves   []leaf
	names    map[string]bool
	decls    []decl
	ndrop    int
	outputs  []output
	outNames map[string]bool
	loss     *tensor
}

var _ nn.Graph = (*graph)(nil)

func newGraph(spec nn.Spec, dry bool, device int, feeds nn.Feeds, mem *arena) *graph {
	return &graph{
		spec:     spec,
		dry:      dry,
		device:   device,
		feeds:    feeds,
		mem:      mem,
		params:   map[*nn.Param]*tensor{},
		names:    map[string]bool{},
		outNames: map[string]bool{},
	}
}

// feedError reports feeds that do not match what the build function
// declares during a Run; Run recovers it into an error.
type feedError struct{ msg string }

func (e *feedError) Error() string { return e.msg }

// check validates the handles passed to the named operation.
func (g *graph) check(op string, ts ...nn.Tensor) []*tensor {
	return shapes.Handles(rules, op, g.done, ts, func(h *tensor) bool { return h.g == g })
}

// rules holds the shape rules shared with the gorgonia backend, so that
// both reject the same programs.
const rules shapes.Backend = "gotch"

// operand describes t to the shape rules.
func (t *tensor) operand() shapes.Operand { return shapes.Operand{Shape: t.shape, Int: t.isInt} }

// float makes a float result of the given shape whose value f computes
// (not called in a dry build).
func (g *graph) float(shape []int, f func(m *arena) lib.Ctensor) *tensor {
	t := &tensor{g: g, shape: slices.Clone(shape)}
	if !g.dry {
		t.t = f(g.mem)
	}
	return t
}

// intResult makes an integer result whose host value f computes.
func (g *graph) intResult(shape []int, f func() []int64) *tensor {
	t := &tensor{g: g, shape: slices.Clone(shape), isInt: true}
	if !g.dry {
		t.ints = f()
	}
	return t
}

// index returns the int64 index tensor of an integer tensor on the device.
func (g *graph) index(t *tensor) lib.Ctensor {
	if t.dev == nil {
		t.dev = g.mem.int64s(t.ints, t.shape, g.device)
	}
	return t.dev
}

// ---- inputs ----

func (g *graph) Param(p *nn.Param) nn.Tensor {
	g.check("Param")
	if p == nil {
		panic("gotch: Param: nil parameter")
	}
	if t, ok := g.params[p]; ok {
		return t
	}
	if g.spec.Params != nil && g.spec.Params.Get(p.Name) != p {
		panic(fmt.Sprintf("gotch: Param: %q is not in the executable's ParamSet", p.Name))
	}
	rules.Param(p.Name, p.Shape, len(p.Data))
	t := g.float(p.Shape, func(m *arena) lib.Ctensor {
		v := m.floats(p.Data, p.Shape, g.device)
		if !g.spec.Train {
			return v
		}
		// requires_grad is set on the device tensor so that it is the leaf
		// whose .grad backward fills.
		l := m.call("set_requires_grad", func(out *lib.Ctensor) { lib.AtgSetRequiresGrad(out, v, 1) })
		g.leaves = append(g.leaves, leaf{p: p, t: l})
		return l
	})
	g.params[p] = t
	g.bound = append(g.bound, p)
	return t
}

func (g *graph) declare(kind, name string, shape []int, isInt bool) {
	key := kind + ":" + name
	if g.names[key] {
		panic(fmt.Sprintf("gotch: %s: input %q declared twice", kind, name))
	}
	g.names[key] = true
	g.decls = append(g.decls, decl{name: name, shape: slices.Clone(shape), isInt: isInt})
}

func (g *graph) Ints(name string, shape ...int) nn.Tensor {
	g.check("Ints")
	rules.Dims("Ints "+name, shape)
	g.declare("Ints", name, shape, true)
	return g.intResult(shape, func() []int64 {
		data, ok := g.feeds.Ints[name]
		if !ok || len(data) != sizeOf(shape) {
			panic(&feedError{fmt.Sprintf("int input %q (shape %v) missing or of the wrong length", name, shape)})
		}
		v := make([]int64, len(data))
		for i, x := range data {
			v[i] = int64(x)
		}
		return v
	})
}

func (g *graph) Floats(name string, shape ...int) nn.Tensor {
	g.check("Floats")
	rules.Dims("Floats "+name, shape)
	g.declare("Floats", name, shape, false)
	return g.float(shape, func(m *arena) lib.Ctensor {
		data, ok := g.feeds.Floats[name]
		if !ok || len(data) != sizeOf(shape) {
			panic(&feedError{fmt.Sprintf("float input %q (shape %v) missing or of the wrong length", name, shape)})
		}
		return m.floats(data, shape, g.device)
	})
}

func (g *graph) Const(data []float32, shape ...int) nn.Tensor {
	g.check("Const")
	rules.Const(shape, len(data))
	return g.float(shape, func(m *arena) lib.Ctensor { return m.floats(data, shape, g.device) })
}

// ---- marks ----

func (g *graph) Output(name string, x nn.Tensor) {
	h := g.check("Output", x)
	rules.Output(name, h[0].operand())
	if g.outNames[name] {
		panic(fmt.Sprintf("gotch: Output %q marked twice", name))
	}
	g.outNames[name] = true
	g.outputs = append(g.outputs, output{name: name, t: h[0]})
}

func (g *graph) Loss(x nn.Tensor) {
	h := g.check("Loss", x)
	rules.Loss(h[0].operand())
	if g.loss != nil {
		panic("gotch: Loss marked twice")
	}
	g.loss = h[0]
}
