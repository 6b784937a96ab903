// Package nn is arbench's backend-neutral neural-network layer.
//
// Models are written once as a build function over the Graph interface. A
// Backend compiles such a function into an Executable: the gorgonia backend
// (package nn/gorgonia) builds a static graph once per shape signature and
// reruns it; the libtorch backend (package nn/gotch, build tag gotch)
// re-executes the build function eagerly on every Run. Parameters live in a
// backend-neutral ParamSet (float32, PyTorch state_dict names), so weights,
// the optimiser (Adam) and gradient clipping are shared by all backends.
//
// Shapes are row-major. All floating-point values are float32.
package nn

import "context"

// Tensor is an opaque handle to a value inside one Graph. Handles from one
// Graph must never be used with another.
type Tensor interface {
	// Shape returns the static shape of the value.
	Shape() []int
}

// Graph is the set of differentiable operations models are written against.
// Shape errors are programmer errors: implementations panic with a message
// naming the operation and the shapes involved.
//
// Broadcasting: in Add, Sub and Mul the second operand may have the same
// shape as the first or a shape equal to a trailing suffix of the first's
// shape (e.g. [N,D] + [D], or [B,T,T] + [T,T]); it is repeated over the
// leading dimensions.
type Graph interface {
	// Param binds a parameter of the executable's ParamSet.
	Param(p *Param) Tensor
	// Ints declares an integer input (token ids, targets) fed at Run time
	// through Feeds.Ints[name]; len must equal the product of shape.
	Ints(name string, shape ...int) Tensor
	// Floats declares a float input fed at Run time through Feeds.Floats[name].
	Floats(name string, shape ...int) Tensor
	// Const embeds a constant (e.g. a causal mask). data is not retained
	// beyond the call's semantics: callers must not mutate it afterwards.
	Const(data []float32, shape ...int) Tensor

	// MatMul multiplies 2-D a [m,k] (or [k,m] when transA) by b [k,n] (or
	// [n,k] when transB).
	MatMul(a, b Tensor, transA, transB bool) Tensor
	// BatchMatMul multiplies 3-D tensors batch by batch: a [B,m,k] x b [B,k,n]
	// with the same transpose flags as MatMul applied to the last two axes.
	BatchMatMul(a, b Tensor, transA, transB bool) Tensor

	Add(a, b Tensor) Tensor
	Sub(a, b Tensor) Tensor
	Mul(a, b Tensor) Tensor
	// Scale multiplies every element by s.
	Scale(x Tensor, s float32) Tensor
	Tanh(x Tensor) Tensor
	Sigmoid(x Tensor) Tensor
	ReLU(x Tensor) Tensor

	// Reshape keeps the element order; the element count must match.
	Reshape(x Tensor, shape ...int) Tensor
	// Transpose permutes axes like numpy.transpose(x, perm).
	Transpose(x Tensor, perm ...int) Tensor
	// Slice keeps indices [start,end) along axis.
	Slice(x Tensor, axis, start, end int) Tensor
	// Concat joins tensors along axis; other dimensions must agree.
	Concat(axis int, xs ...Tensor) Tensor
	// Gather selects rows: table [V,D], ids integer [N] -> [N,D].
	Gather(table, ids Tensor) Tensor
	// Pick selects one entry per row: x [N,V], ids integer [N] -> [N] with
	// out[i] = x[i, ids[i]]; rows whose id is negative give 0 and no gradient.
	Pick(x, ids Tensor) Tensor

	// Softmax and LogSoftmax normalise over the last axis.
	Softmax(x Tensor) Tensor
	LogSoftmax(x Tensor) Tensor
	// LayerNorm normalises over the last axis (biased variance, as
	// torch.nn.LayerNorm) then applies gamma and beta of shape [D].
	LayerNorm(x, gamma, beta Tensor, eps float32) Tensor
	// Sum reduces every element to a scalar (shape []).
	Sum(x Tensor) Tensor
	// Dropout zeroes each element with probability p and scales survivors by
	// 1/(1-p) when the executable trains; it is the identity otherwise. Masks
	// are drawn from DropoutMask so every backend draws the same ones.
	Dropout(x Tensor, p float32) Tensor

	// Output marks x to be returned by Run under name.
	Output(name string, x Tensor)
	// Loss marks the scalar that training executables differentiate.
	Loss(x Tensor)
}

// BuildFunc constructs a computation on g. It must depend only on the shapes
// it was written for, never on input values, so a backend may call it once
// and rerun the result.
type BuildFunc func(g Graph) error

// Spec describes an executable to compile.
type Spec struct {
	// Key names the shape signature (e.g. "train/b32/t64"), for errors and caches.
	Key string
	// Params holds the parameters the build function binds.
	Params *ParamSet
	// Train makes Run compute gradients of the Loss into each Param.Grad
	// (overwriting them) and enables Dropout.
	Train bool
}

// Backend compiles build functions into executables.
type Backend interface {
	// Name is the backend's registry name ("gorgonia", "gotch").
	Name() string
	// Device names where computation runs ("cpu", "cuda:0").
	Device() string
	Compile(spec Spec, build BuildFunc) (Executable, error)
}

// Describer is an optional interface of a Backend (detected by type
// assertion): Describe says in one line what computes its products (the
// kernels or library in use), for benchmark reports. Absent: reports name
// the backend and device only.
type Describer interface {
	Describe() string
}

// Feeds are the run-time inputs of an executable.
type Feeds struct {
	Ints   map[string][]int
	Floats map[string][]float32
	// Seed drives the dropout masks of this run (see DropoutMask).
	Seed uint64
}

// Value is an output tensor copied out of a backend.
type Value struct {
	Shape []int
	Data  []float32
}

// Result is what one Run returns.
type Result struct {
	Outputs map[string]Value
	// Loss is the value of the Loss scalar (0 when none was marked).
	Loss float64
}

// Executable is a compiled computation.
type Executable interface {
	Run(ctx context.Context, feeds Feeds) (*Result, error)
	Close() error
}

// IntoRunner is an optional interface of an Executable (detected by type
// assertion): RunInto is Run writing its result into res, reusing the
// arrays of res.Outputs whose names and sizes match (a result of an
// earlier run), for callers that run an executable many times a second
// and are done with each result before the next run (a decoding step).
// Absent: RunInto (the function) stores Run's result in res.
type IntoRunner interface {
	RunInto(ctx context.Context, feeds Feeds, res *Result) error
}

// RunInto runs e with feeds into res: e's RunInto when it is an
// IntoRunner, else Run. The values left in res belong to the next RunInto
// on res: copy what must outlive it.
func RunInto(ctx context.Context, e Executable, feeds Feeds, res *Result) error {
	if r, ok := e.(IntoRunner); ok {
		return r.RunInto(ctx, feeds, res)
	}
	out, err := e.Run(ctx, feeds)
	if err != nil {
		return err
	}
	*res = *out
	return nil
}
