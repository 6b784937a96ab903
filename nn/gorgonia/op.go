package gorgonia

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Every value in the gorgonia graph is a flat vector: float32 for float
// tensors, int for integer tensors. The nn-level shape lives in the tensor
// handle and in the kernels' closures. Flat vectors give every op the same
// two concrete types, so gorgonia's type inference, its gradient summation
// (ReduceAdd) and scalars (a one-element vector; gorgonia's scalar values
// cannot share a Param's backing array) need no special cases.
var (
	vecF32 = G.TensorType{Dims: 1, Of: tensor.Float32}
	vecInt = G.TensorType{Dims: 1, Of: tensor.Int}
)

func vecType(isInt bool) G.TensorType {
	if isInt {
		return vecInt
	}
	return vecF32
}

// kernelOp is the single gorgonia Op type of this backend: a node-specific
// closure that computes the node's value into its output buffer out (or,
// for views, returns part of its input's value).
//
// The output buffer is assigned once, when the executable is compiled, so
// a rerun allocates nothing; ops whose values are never alive at the same
// time may share memory (see planBuffers). It is safe because every node
// is a kernelOp or an input and no op overwrites its input (OverwritesInput
// is -1, no UnsafeDo or UsePreallocDo): a value changes only when its own
// op runs, or when a later op whose buffer shares its memory runs after
// the value's last reader. Gradients are built by this package's own
// reverse pass (builder.differentiate), not through gorgonia's SDOp
// protocol.
type kernelOp struct {
	name string
	// id is unique within a graph and salt changes between compile
	// attempts: together they make every node's hash distinct, which
	// disables gorgonia's common-subexpression elimination for these ops
	// (see Backend.Compile on hash collisions).
	id, salt uint64
	ins      []bool // ins[i]: input i is an integer vector
	outInt   bool
	outLen   int
	do       func(in []G.Value) (G.Value, error)
	// owns marks an op that computes into out (apply) rather than
	// returning a view; out is assigned by planBuffers.
	owns bool
	out  *tensor.Dense
	// failed receives the op's error so Run can report it without the tape
	// machine's decoration.
	failed *error
}

var _ G.Op = (*kernelOp)(nil)

func (k *kernelOp) Arity() int { return len(k.ins) }

// Type builds a fresh function type on every call: gorgonia returns the
// type it gets to a pool after inference.
func (k *kernelOp) Type() hm.Type {
	ts := make([]hm.Type, 0, len(k.ins)+1)
	for _, isInt := range k.ins {
		ts = append(ts, vecType(isInt))
	}
	ts = append(ts, vecType(k.outInt))
	return hm.NewFnType(ts...)
}

func (k *kernelOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{k.outLen}, nil
}

func (k *kernelOp) Do(in ...G.Value) (G.Value, error) {
	v, err := k.do(in)
	if err != nil {
		err = fmt.Errorf("%s: %w", k.name, err)
		*k.failed = err
		return nil, err
	}
	return v, nil
}

func (k *kernelOp) ReturnsPtr() bool     { return false }
func (k *kernelOp) CallsExtern() bool    { return false }
func (k *kernelOp) OverwritesInput() int { return -1 }

// WriteHash writes the salt first: FNV-1a collisions survive any common
// suffix but not a change of what precedes the differing bytes.
func (k *kernelOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "%x/arbench.%s#%x", k.salt, k.name, k.id)
}

func (k *kernelOp) Hashcode() uint32 {
	h := fnv.New32a()
	k.WriteHash(h)
	return h.Sum32()
}

func (k *kernelOp) String() string { return k.name }

// f32 returns the data of a float vector value.
func f32(v G.Value) []float32 { return v.(*tensor.Dense).Float32s() }

// ints returns the data of an integer vector value.
func ints(v G.Value) []int { return v.(*tensor.Dense).Ints() }

func newF32Vec(n int) *tensor.Dense {
	return tensor.New(tensor.WithBacking(make([]float32, n)), tensor.WithShape(n))
}

func newIntVec(n int) *tensor.Dense {
	return tensor.New(tensor.WithBacking(make([]int, n)), tensor.WithShape(n))
}
