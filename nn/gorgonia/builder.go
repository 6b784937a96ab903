package gorgonia

import (
	"fmt"
	"hash/maphash"
	"math"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"arbench/nn"
	"arbench/nn/internal/shapes"
)

// tensorT is the nn.Tensor handle of this backend.
type tensorT struct {
	b     *builder
	n     *G.Node
	shape []int
	size  int
	isInt bool
	// grad reports that the value depends differentiably on a Param of a
	// training executable, i.e. that gradients must flow into it.
	grad bool
	// op is how the value was computed, for the backward pass; nil for
	// inputs and values no gradient flows through.
	op *opRec
	// val is the current value: the bound value of an input, the output
	// of the last run for an op.
	val G.Value
	// kop and args are the kernel computing an op node and its operands
	// (nil for inputs).
	kop  *kernelOp
	args []*tensorT
	// viewOf is the operand whose memory a view node's value shares (nil
	// for other nodes), from element viewOff on.
	viewOf  *tensorT
	viewOff int
}

// opRec records a node's operands and gradient rule for the backward pass.
type opRec struct {
	name string
	ins  []*tensorT
	need []bool // need[i]: gradients flow into ins[i]
	back backwardFunc
}

func (t *tensorT) Shape() []int { return append([]int{}, t.shape...) }

type paramInput struct {
	p     *nn.Param
	t     *tensorT
	value *tensor.Dense // shares p.Data
}

// feedInput is an Ints or Floats input; Run copies the feed into value.
type feedInput struct {
	name  string
	t     *tensorT
	value *tensor.Dense
}

type dropInput struct {
	k     int
	p     float32
	value *tensor.Dense
}

type output struct {
	name string
	t    *tensorT
}

// builder implements nn.Graph by adding nodes to a gorgonia ExprGraph.
type builder struct {
	spec nn.Spec
	salt uint64
	g    *G.ExprGraph
	next uint64
	done bool
	// backward is set while gradient nodes are built: they are never
	// differentiated themselves.
	backward bool

	params   []*paramInput
	paramIdx map[*nn.Param]*tensorT
	ints     []*feedInput
	floats   []*feedInput
	names    map[string]bool
	nconst   int
	drops    []*dropInput
	ndrop    int
	outputs  []output
	outNames map[string]bool
	loss     *tensorT
	// nodes lists every forward op output in creation (hence topological)
	// order; prog lists every op, gradient ops included, in creation order.
	nodes []*tensorT
	prog  []*tensorT
	// failed holds the error of the op that failed during a run.
	failed error
	// transposed caches transposedInput's nodes.
	transposed map[*tensorT]*tensorT
	// gemm holds the matrix-multiply workspaces of the executable's ops
	// (they run one at a time).
	gemm *gemmPool
	// consts indexes the Const values by content (see Const).
	consts map[uint64][]*tensor.Dense
	// inputBytes counts the buffers of feeds, constants and dropout masks;
	// scratchBytes the private buffers of fused ops (see scratch).
	inputBytes, scratchBytes int64
}

func newBuilder(spec nn.Spec, salt uint64) *builder {
	return &builder{
		spec:     spec,
		salt:     salt,
		g:        G.NewGraph(),
		paramIdx: map[*nn.Param]*tensorT{},
		names:    map[string]bool{},
		outNames: map[string]bool{},
		gemm:     &gemmPool{},
	}
}

var _ nn.Graph = (*builder)(nil)

func sizeOf(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// check validates the handles passed to the named operation.
func (b *builder) check(op string, ts ...nn.Tensor) []*tensorT {
	return shapes.Handles(rules, op, b.done, ts, func(h *tensorT) bool { return h.b == b })
}

// rules holds the shape rules shared with the other backends.
const rules shapes.Backend = "gorgonia"

// operand describes t to the shape rules.
func (t *tensorT) operand() shapes.Operand { return shapes.Operand{Shape: t.shape, Int: t.isInt} }

// inputName makes the gorgonia name of an input node. Gorgonia hashes input
// nodes by name, so names are unique per kind and start with the salt: a
// colliding hash (FNV-1a) stays colliding under any common suffix, so only a
// prefix can break it.
func (b *builder) inputName(kind, name string) string {
	return fmt.Sprintf("%x/%s:%s", b.salt, kind, name)
}

func (b *builder) input(kind, name string, value *tensor.Dense, shape []int, isInt bool) *tensorT {
	if kind != "p" && kind != "c" { // parameters belong to the ParamSet; Const counts its own
		b.inputBytes += denseBytes(value)
	}
	dt := tensor.Float32
	if isInt {
		dt = tensor.Int
	}
	n := G.NewVector(b.g, dt, G.WithShape(sizeOf(shape)), G.WithName(b.inputName(kind, name)), G.WithValue(value))
	return &tensorT{b: b, n: n, shape: slices.Clone(shape), size: sizeOf(shape), isInt: isInt, val: value}
}

// forwardFunc computes a node's value into out from its inputs' values.
type forwardFunc func(in []G.Value, out *tensor.Dense) error

// backwardFunc returns the gradient of each input whose need flag is set
// (the zero grad otherwise), given the op's output y and the gradient g
// flowing into it.
type backwardFunc func(y, g *tensorT, need []bool) []grad

// grad is one gradient contribution to a tensor x: t has x's shape, or,
// when win is set, t is the gradient of the window win of x (the rest of x
// receives nothing from this contribution).
//
// A contribution may instead be a product mm not yet computed (t nil): see
// mmTerm.
type grad struct {
	t   *tensorT
	win *window
	mm  *mmTerm
}

// mmTerm is a gradient contribution op(a)·op(b) (m×n, inner dimension k)
// that accumulate computes instead of a MatMul node of its own. A
// parameter used in many products, like a recurrent weight in every time
// step, then gets the sum of their gradients in one op whose products all
// add into the same buffer, instead of one buffer per product and a sum
// over all of them.
type mmTerm struct {
	a, b           *tensorT
	transA, transB bool
	m, n, k        int
}

// window is the slice [start,end) of the middle axis of a tensor viewed as
// [outer, n, inner].
type window struct{ outer, n, inner, start, end int }

func dense(t *tensorT) grad { return grad{t: t} }

// apply adds a kernelOp node. Its value is computed by fwd into the op's
// output buffer, which the executable assigns when it is compiled (see
// planBuffers); back (nil for non-differentiable ops) builds gradients.
func (b *builder) apply(name string, shape []int, outInt bool, ins []*tensorT, fwd forwardFunc, back backwardFunc) *tensorT {
	t := b.applyDo(name, shape, outInt, ins, nil, back)
	k := t.kop
	k.owns = true
	k.do = func(in []G.Value) (G.Value, error) {
		if err := fwd(in, k.out); err != nil {
			return nil, err
		}
		return k.out, nil
	}
	return t
}

// scratch returns a private buffer of n floats for a fused op's closure
// (saved activations, per-step state), held for the executable's life.
func (b *builder) scratch(n int) []float32 {
	b.scratchBytes += 4 * int64(n)
	return make([]float32, n)
}

// applyDo is apply with a raw Do function (for views).
func (b *builder) applyDo(name string, shape []int, outInt bool, ins []*tensorT, do func([]G.Value) (G.Value, error), back backwardFunc) *tensorT {
	k := &kernelOp{
		name:   name,
		id:     b.next,
		salt:   b.salt,
		ins:    make([]bool, len(ins)),
		outInt: outInt,
		outLen: sizeOf(shape),
		do:     do,
		failed: &b.failed,
	}
	b.next++
	children := make(G.Nodes, len(ins))
	rec := &opRec{name: name, ins: ins, need: make([]bool, len(ins)), back: back}
	anyGrad := false
	for i, t := range ins {
		children[i] = t.n
		k.ins[i] = t.isInt
		rec.need[i] = t.grad && back != nil && !b.backward
		anyGrad = anyGrad || rec.need[i]
	}
	node, err := G.ApplyOp(k, children...)
	if err != nil {
		panic(fmt.Sprintf("gorgonia: %s: %v", name, err))
	}
	out := &tensorT{b: b, n: node, shape: slices.Clone(shape), size: k.outLen, isInt: outInt, grad: anyGrad, kop: k, args: ins}
	if anyGrad {
		out.op = rec
	}
	b.prog = append(b.prog, out)
	if !b.backward {
		b.nodes = append(b.nodes, out)
	}
	return out
}

// view adds a node whose value is elements [off, off+size(shape)) of x's
// value, sharing its memory. This is safe because no op ever writes into a
// value other than its own output buffer, and the readers of a view keep
// the buffer it views from being reused (see lastUses).
//
// A view of a view no gradient flows through views the first one's operand
// directly: chains of reshapes and slices (a decoding step's heads split
// and merged) run as one node, the intermediate ones pruned unless read.
func (b *builder) view(name string, x *tensorT, off int, shape []int, back backwardFunc) *tensorT {
	if x.viewOf != nil && !x.grad {
		off += x.viewOff
		x = x.viewOf
	}
	n := sizeOf(shape)
	var last *tensor.Dense
	t := b.applyDo(name, shape, x.isInt, []*tensorT{x}, func(in []G.Value) (G.Value, error) {
		src := in[0].(*tensor.Dense)
		if last == nil || last.Uintptr() != src.Uintptr()+uintptr(off)*uintptr(src.Dtype().Size()) {
			if x.isInt {
				last = tensor.New(tensor.WithBacking(src.Ints()[off:off+n]), tensor.WithShape(n))
			} else {
				last = tensor.New(tensor.WithBacking(src.Float32s()[off:off+n]), tensor.WithShape(n))
			}
		}
		return last, nil
	}, back)
	t.viewOf, t.viewOff = x, off
	return t
}

// ---- inputs ----

func (b *builder) Param(p *nn.Param) nn.Tensor {
	b.check("Param")
	if p == nil {
		panic("gorgonia: Param: nil parameter")
	}
	if t, ok := b.paramIdx[p]; ok {
		return t
	}
	if b.spec.Params != nil && b.spec.Params.Get(p.Name) != p {
		panic(fmt.Sprintf("gorgonia: Param: %q is not in the executable's ParamSet", p.Name))
	}
	rules.Param(p.Name, p.Shape, len(p.Data))
	value := tensor.New(tensor.WithBacking(p.Data), tensor.WithShape(len(p.Data)))
	t := b.input("p", p.Name, value, p.Shape, false)
	t.grad = b.spec.Train
	b.paramIdx[p] = t
	b.params = append(b.params, &paramInput{p: p, t: t, value: value})
	return t
}

func (b *builder) Ints(name string, shape ...int) nn.Tensor {
	b.check("Ints")
	rules.Dims("Ints "+name, shape)
	if b.names["i:"+name] {
		panic(fmt.Sprintf("gorgonia: Ints: input %q declared twice", name))
	}
	b.names["i:"+name] = true
	value := newIntVec(sizeOf(shape))
	t := b.input("i", name, value, shape, true)
	b.ints = append(b.ints, &feedInput{name: name, t: t, value: value})
	return t
}

func (b *builder) Floats(name string, shape ...int) nn.Tensor {
	b.check("Floats")
	rules.Dims("Floats "+name, shape)
	if b.names["f:"+name] {
		panic(fmt.Sprintf("gorgonia: Floats: input %q declared twice", name))
	}
	b.names["f:"+name] = true
	value := newF32Vec(sizeOf(shape))
	t := b.input("f", name, value, shape, false)
	b.floats = append(b.floats, &feedInput{name: name, t: t, value: value})
	return t
}

// Const binds a copy of data, or the value of an earlier Const with the
// same bits: no op writes into an input, so equal constants (the zero
// bases of nn.AttentionBias, one per attention block) can share one
// buffer.
func (b *builder) Const(data []float32, shape ...int) nn.Tensor {
	b.check("Const")
	rules.Const(shape, len(data))
	t := b.input("c", fmt.Sprint(b.nconst), b.constValue(data), shape, false)
	b.nconst++
	return t
}

// constValue returns a value holding data: an earlier constant's of the
// same bits, else a new copy.
func (b *builder) constValue(data []float32) *tensor.Dense {
	key := hashBits(data)
	for _, v := range b.consts[key] {
		if equalBits(v.Float32s(), data) {
			return v
		}
	}
	value := tensor.New(tensor.WithBacking(slices.Clone(data)), tensor.WithShape(len(data)))
	if b.consts == nil {
		b.consts = map[uint64][]*tensor.Dense{}
	}
	b.consts[key] = append(b.consts[key], value)
	b.inputBytes += denseBytes(value)
	return value
}

// constSeed seeds the hashes of constants' contents (hashBits).
var constSeed = maphash.MakeSeed()

// hashBits is a hash of data's bits.
func hashBits(data []float32) uint64 {
	var h maphash.Hash
	h.SetSeed(constSeed)
	buf := make([]byte, 0, 4096)
	for _, v := range data {
		u := math.Float32bits(v)
		buf = append(buf, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
		if len(buf) == cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return h.Sum64()
}

// equalBits reports whether x and y hold the same float32 bit patterns
// (NaN payloads and the sign of zero included).
func equalBits(x, y []float32) bool {
	if len(x) != len(y) {
		return false
	}
	for i, v := range x {
		if math.Float32bits(v) != math.Float32bits(y[i]) {
			return false
		}
	}
	return true
}

// ---- marks ----

func (b *builder) Output(name string, x nn.Tensor) {
	h := b.check("Output", x)
	rules.Output(name, h[0].operand())
	if b.outNames[name] {
		panic(fmt.Sprintf("gorgonia: Output %q marked twice", name))
	}
	b.outNames[name] = true
	b.outputs = append(b.outputs, output{name: name, t: h[0]})
}

func (b *builder) Loss(x nn.Tensor) {
	h := b.check("Loss", x)
	rules.Loss(h[0].operand())
	if b.loss != nil {
		panic("gorgonia: Loss marked twice")
	}
	b.loss = h[0]
}
