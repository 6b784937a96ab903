// Package gorgonia implements nn.Backend on gorgonia.org/gorgonia (pure Go,
// float32, CPU).
//
// Compile calls the build function once to construct a gorgonia ExprGraph,
// adds (for training executables) the nodes computing the gradient of the
// Loss with respect to every Param that influences it, and keeps the ops the
// outputs, the Loss and the gradients need in creation (topological) order.
// Run copies the feeds into the input buffers and runs those ops; nothing
// is rebuilt or recompiled.
//
// Every op computes into an output buffer assigned at compile time, and
// values that are never alive at the same time share one (pool.go): an
// executable holds about its largest set of simultaneously live values
// (for training, the activations the backward pass reads, plus the
// gradients in flight), not every value of the graph. The results are
// bitwise those of one buffer per value, which the environment variable
// ARBENCH_NO_POOL=1 restores (to compare, or to rule pooling out when
// debugging).
//
// Parameters are input nodes whose values share each Param's Data slice
// (tensor.WithBacking), so in-place optimiser updates are seen by every
// executable without copying; if a Param's Data slice is replaced, Run
// rebinds it. After a training run the gradients are copied into Param.Grad.
//
// Every nn operation is a custom gorgonia Op (kernelOp) with its own kernel
// rather than a gorgonia built-in, and gradients come from this package's
// reverse pass (builder.differentiate) rather than G.Grad. The built-ins and
// G.Grad were not used because (1) gorgonia's ops and the Adds G.Grad
// inserts overwrite inputs in place when the compiler considers them dead,
// which corrupts values that are read back after a run or shared by views,
// (2) G.Grad sums the gradients of k slices of a tensor with k dense
// full-size Adds (O(T²) for the per-step slices of a recurrent model),
// (3) built-ins allocate a fresh output on every run, and (4) their
// broadcasting and axis semantics differ from nn.Graph's. Matrix products use
// this package's packed GEMM with AVX2 micro-kernels (sgemm.go; pure Go on
// other machines), or OpenBLAS through G.WhichBLAS with the openblas build
// tag; exponentials (softmax, sigmoid, tanh) an eight-lane kernel. Large
// kernels are split across GOMAXPROCS goroutines. Gorgonia provides the
// graph and its type and shape inference; the ops are executed by Run
// itself rather than a gorgonia TapeMachine, whose per-run goroutine and
// thread locking dominated small graphs (see executable.Run).
package gorgonia

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"arbench/nn"
)

func init() {
	nn.RegisterBackend("gorgonia", func(device string) (nn.Backend, error) {
		if device != "" && device != "cpu" {
			return nil, fmt.Errorf("gorgonia backend: unsupported device %q (only cpu)", device)
		}
		if gemmEnvErr != nil {
			return nil, fmt.Errorf("gorgonia backend: %w", gemmEnvErr)
		}
		if poolEnvErr != nil {
			return nil, fmt.Errorf("gorgonia backend: %w", poolEnvErr)
		}
		return New(), nil
	})
}

// Option configures a Backend.
type Option func(*Backend)

// WithNaNCheck makes every run fail with an error naming the node that first
// produces a NaN (slow; for debugging).
func WithNaNCheck() Option { return func(b *Backend) { b.nanCheck = true } }

// Backend is the gorgonia nn.Backend.
type Backend struct {
	nanCheck bool
	// noPool gives every value a buffer of its own (ARBENCH_NO_POOL=1).
	noPool bool
}

var (
	_ nn.Backend    = (*Backend)(nil)
	_ nn.Describer  = (*Backend)(nil)
	_ nn.IntoRunner = (*executable)(nil)
)

// Describe names the matrix-product kernels in use (see sgemm.go).
func (*Backend) Describe() string {
	return "arbench's GEMM with " + GemmKernels() + " micro-kernels"
}

// New returns a gorgonia backend.
func New(opts ...Option) *Backend {
	b := &Backend{noPool: poolOff}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Name returns "gorgonia".
func (*Backend) Name() string { return "gorgonia" }

// Device returns "cpu".
func (*Backend) Device() string { return "cpu" }

// compileAttempts bounds the retries after a node-hash collision.
const compileAttempts = 4

// Compile builds, differentiates (when spec.Train) and compiles build.
//
// Gorgonia's compiler merges nodes whose 32-bit structural hashes are equal
// (common-subexpression elimination) without comparing them, so a chance
// collision between two different nodes would silently compute a wrong
// graph; with thousands of nodes the odds are not negligible. Compile
// therefore checks all hashes and, on a collision, rebuilds the graph with a
// different salt in every node's hash, calling build again.
func (be *Backend) Compile(spec nn.Spec, build nn.BuildFunc) (nn.Executable, error) {
	if build == nil {
		return nil, fmt.Errorf("gorgonia: compile %s: nil build function", spec.Key)
	}
	for attempt := range compileAttempts {
		b := newBuilder(spec, uint64(attempt))
		if err := build(b); err != nil {
			return nil, fmt.Errorf("gorgonia: compile %s: build: %w", spec.Key, err)
		}
		b.done = true
		if spec.Train && b.loss == nil {
			return nil, fmt.Errorf("gorgonia: compile %s: training executable without a Loss", spec.Key)
		}
		if b.loss == nil && len(b.outputs) == 0 {
			return nil, fmt.Errorf("gorgonia: compile %s: build marked no Output and no Loss", spec.Key)
		}
		grads, err := b.differentiate()
		if err != nil {
			return nil, fmt.Errorf("gorgonia: compile %s: differentiate: %w", spec.Key, err)
		}
		if b.hashCollision() {
			continue
		}
		return newExecutable(b, grads, be.nanCheck, !be.noPool), nil
	}
	return nil, fmt.Errorf("gorgonia: compile %s: node hash collisions in %d attempts", spec.Key, compileAttempts)
}

// differentiate adds the gradient nodes of the Loss with respect to every
// Param it depends on and returns them by Param. It does nothing for
// inference executables.
//
// This is reverse-mode differentiation over the recorded nodes in reverse
// creation order (a reverse topological order), with each op's gradient
// rule building ordinary graph nodes. Gorgonia's own Backpropagate is not
// used: it sums a node's gradient contributions with a chain of dense
// in-place Adds, which for the typical per-time-step slices of a sequence
// model costs O(T²) and would write into buffers this package's views
// share. accumulate sums all contributions to a node in one op instead.
//
// A parameter's gradient is summed as soon as the reverse pass has passed
// its first consumer, when all its contributions are known: the deferred
// products of its contributions (mmTerm) read the activations and
// gradients of that layer, which are then free for other values (see
// planBuffers) instead of alive until the end of the backward pass.
func (b *builder) differentiate() (grads map[*nn.Param]*tensorT, err error) {
	if !b.spec.Train || !b.loss.grad {
		return nil, nil
	}
	b.backward = true
	defer func() {
		b.backward = false
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	seed := b.input("seed", "loss", tensor.New(tensor.WithBacking([]float32{1}), tensor.WithShape(1)), nil, false)
	pending := map[*tensorT][]grad{b.loss: {dense(seed)}}
	grads = map[*nn.Param]*tensorT{}
	flush := b.paramsByFirstUse()
	for i := len(b.nodes) - 1; i >= 0; i-- {
		b.backprop(b.nodes[i], pending)
		for _, pi := range flush[i] {
			if gs := pending[pi.t]; len(gs) > 0 {
				grads[pi.p] = b.accumulate(pi.t, gs)
			}
		}
	}
	return grads, nil
}

// backprop adds the gradient nodes of t's operands, from the gradient
// contributions pending for t, to pending.
func (b *builder) backprop(t *tensorT, pending map[*tensorT][]grad) {
	gs := pending[t]
	if len(gs) == 0 || t.op == nil {
		return
	}
	delete(pending, t)
	back := t.op.back(t, b.accumulate(t, gs), t.op.need)
	for j, in := range t.op.ins {
		if !t.op.need[j] {
			continue
		}
		if back[j].t == nil && back[j].mm == nil {
			panic(fmt.Sprintf("gorgonia: %s: no gradient for operand %d", t.op.name, j))
		}
		pending[in] = append(pending[in], back[j])
	}
}

// paramsByFirstUse returns, by position in b.nodes, the parameters whose
// first reader with a gradient rule for them is the node there (in
// b.params' order): once the reverse pass has processed that node, all
// their gradient contributions are pending.
func (b *builder) paramsByFirstUse() map[int][]*paramInput {
	first := map[*tensorT]int{}
	for i, t := range b.nodes {
		if t.op == nil {
			continue
		}
		for j, in := range t.op.ins {
			if _, seen := first[in]; t.op.need[j] && in.kop == nil && !seen {
				first[in] = i
			}
		}
	}
	flush := map[int][]*paramInput{}
	for _, pi := range b.params {
		if i, ok := first[pi.t]; ok {
			flush[i] = append(flush[i], pi)
		}
	}
	return flush
}

// accumulate returns the sum of the gradient contributions gs to x, in one
// op when there are several (or a window, or a deferred product).
func (b *builder) accumulate(x *tensorT, gs []grad) *tensorT {
	for _, g := range gs {
		if g.mm != nil {
			if g.mm.m*g.mm.n != x.size {
				panic(fmt.Sprintf("gorgonia: gradient product of %d×%d for a tensor of shape %v", g.mm.m, g.mm.n, x.shape))
			}
			continue
		}
		want := x.size
		if w := g.win; w != nil {
			want = w.outer * (w.end - w.start) * w.inner
		}
		if g.t.size != want || g.t.isInt {
			panic(fmt.Sprintf("gorgonia: gradient of shape %v for a tensor of shape %v", g.t.shape, x.shape))
		}
	}
	if len(gs) == 1 && gs[0].win == nil && gs[0].mm == nil {
		return gs[0].t
	}
	var ins []*tensorT
	var wins []*window
	var mms []*mmTerm
	for _, g := range gs {
		if g.mm != nil {
			mms = append(mms, g.mm)
			continue
		}
		ins, wins = append(ins, g.t), append(wins, g.win)
	}
	nt := len(ins)
	for _, mm := range mms {
		ins = append(ins, mm.a, mm.b)
	}
	pool := b.gemm
	return b.apply("GradSum", x.shape, false, ins,
		func(in []G.Value, out *tensor.Dense) error {
			o := out.Float32s()
			acc := nt > 0
			if acc {
				sumGrads(in[:nt], wins, o)
			}
			for i, mm := range mms {
				gemm(pool, mm.transA, mm.transB, 1, mm.m, mm.n, mm.k, f32(in[nt+2*i]), f32(in[nt+2*i+1]), o, acc)
				acc = true
			}
			return nil
		}, nil)
}

// hashCollision reports whether two distinct nodes share a hash.
func (b *builder) hashCollision() bool {
	all := b.g.AllNodes()
	seen := make(map[uint32]bool, len(all))
	for _, n := range all {
		h := n.Hashcode()
		if seen[h] {
			return true
		}
		seen[h] = true
	}
	return false
}

type gradOut struct {
	p *nn.Param
	t *tensorT // nil: the Loss does not depend on p, its gradient is zero
}

type executable struct {
	mu     sync.Mutex
	key    string
	closed bool
	// prog is the ops to run, in creation (hence topological) order,
	// pruned to those the outputs, the Loss and the gradients need.
	prog     []*tensorT
	args     [][]G.Value // args[i] receives the operand values of prog[i]
	nanCheck bool
	params   []*paramInput
	grads    []gradOut
	ints     []*feedInput
	floats   []*feedInput
	drops    []*dropInput
	outputs  []output
	loss     *tensorT
	failed   *error
	gemm     *gemmPool
	stats    bufferStats
}

// newExecutable prunes b's ops to those the outputs, the Loss and the
// gradients need and assigns their output buffers, shared between values
// whose lifetimes do not overlap when pool is set.
func newExecutable(b *builder, grads map[*nn.Param]*tensorT, nanCheck, pool bool) *executable {
	e := &executable{
		key:      b.spec.Key,
		gemm:     b.gemm,
		nanCheck: nanCheck,
		params:   b.params,
		ints:     b.ints,
		floats:   b.floats,
		drops:    b.drops,
		outputs:  b.outputs,
		loss:     b.loss,
		failed:   &b.failed,
	}
	if b.spec.Train {
		// Every parameter's gradient is overwritten, including those the
		// Loss does not depend on (zero).
		seen := map[*nn.Param]bool{}
		add := func(p *nn.Param) {
			if !seen[p] {
				seen[p] = true
				e.grads = append(e.grads, gradOut{p: p, t: grads[p]})
			}
		}
		if b.spec.Params != nil {
			for _, p := range b.spec.Params.List() {
				add(p)
			}
		}
		for _, pi := range b.params {
			add(pi.p)
		}
	}
	kept := e.keptValues()
	roots := slices.Clone(kept)
	needed := map[*tensorT]bool{}
	for len(roots) > 0 {
		t := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if needed[t] {
			continue
		}
		needed[t] = true
		roots = append(roots, t.args...)
	}
	for _, t := range b.prog {
		if needed[t] {
			e.prog = append(e.prog, t)
			e.args = append(e.args, make([]G.Value, len(t.args)))
		}
	}
	e.stats = planBuffers(e.prog, kept, pool)
	e.stats.inputs, e.stats.scratch = b.inputBytes, b.scratchBytes
	return e
}

// keptValues are the values Run reads after the ops: the outputs, the
// Loss and the gradients.
func (e *executable) keptValues() []*tensorT {
	var kept []*tensorT
	for _, o := range e.outputs {
		kept = append(kept, o.t)
	}
	if e.loss != nil {
		kept = append(kept, e.loss)
	}
	for _, g := range e.grads {
		if g.t != nil {
			kept = append(kept, g.t)
		}
	}
	return kept
}

// errClosed is returned by Run after Close.
var errClosed = errors.New("executable is closed")

// Run feeds the inputs and runs the ops in order.
//
// The ops are executed here rather than by gorgonia's TapeMachine: its
// RunAll locks the calling goroutine to its thread and runs the program on
// a new goroutine every time, a hand-over between threads (two futex
// calls) and a fresh stack per run that profiling showed to be the largest
// cost of a generation step, which runs small graphs once per token. Every
// node is a kernelOp with its own output buffer and no op writes into its
// operands (see kernelOp), so executing them in creation order is all the
// tape machine did for these graphs.
func (e *executable) Run(ctx context.Context, feeds nn.Feeds) (*nn.Result, error) {
	res := &nn.Result{}
	if err := e.RunInto(ctx, feeds, res); err != nil {
		return nil, err
	}
	return res, nil
}

// RunInto is Run into res (nn.IntoRunner), reusing its arrays.
func (e *executable) RunInto(ctx context.Context, feeds nn.Feeds, res *nn.Result) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gorgonia: run %s: %w", e.key, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("gorgonia: run %s: %w", e.key, errClosed)
	}
	if err := e.feed(feeds); err != nil {
		return fmt.Errorf("gorgonia: run %s: %w", e.key, err)
	}
	*e.failed = nil
	for i, t := range e.prog {
		args := e.args[i]
		for j, a := range t.args {
			args[j] = a.val
		}
		v, err := t.kop.Do(args...)
		if err != nil {
			return fmt.Errorf("gorgonia: run %s: %w", e.key, err)
		}
		t.val = v
		if e.nanCheck && !t.isInt && hasNaN(f32(v)) {
			return fmt.Errorf("gorgonia: run %s: %s (node %d, shape %v) produced NaN", e.key, t.kop.name, t.kop.id, t.shape)
		}
	}
	e.results(res)
	res.Loss = 0
	if e.loss != nil {
		res.Loss = float64(f32(e.loss.val)[0])
	}
	for _, g := range e.grads {
		if len(g.p.Grad) != len(g.p.Data) {
			return fmt.Errorf("gorgonia: run %s: param %s: Grad has %d values, Data %d", e.key, g.p.Name, len(g.p.Grad), len(g.p.Data))
		}
		if g.t == nil {
			clear(g.p.Grad)
			continue
		}
		copy(g.p.Grad, f32(g.t.val))
	}
	return nil
}

// results copies the outputs' values and shapes out of the executable's
// buffers into res.Outputs: into the arrays already there when an output's
// name, size and rank match (RunInto's reuse), else into one new array of
// values and one of shapes for all the others (a decoding step runs small
// executables many times a token: an allocation per output and shape was
// most of Run's own time).
func (e *executable) results(res *nn.Result) {
	if res.Outputs == nil {
		res.Outputs = make(map[string]nn.Value, len(e.outputs))
	}
	fits := func(o output) bool {
		v, ok := res.Outputs[o.name]
		return ok && len(v.Data) == o.t.size && len(v.Shape) == len(o.t.shape)
	}
	floats, dims := 0, 0
	for _, o := range e.outputs {
		if fits(o) {
			v := res.Outputs[o.name]
			copy(v.Data, f32(o.t.val))
			copy(v.Shape, o.t.shape)
			continue
		}
		floats += o.t.size
		dims += len(o.t.shape)
	}
	if floats+dims == 0 {
		return
	}
	data, shapes := make([]float32, floats), make([]int, dims)
	for _, o := range e.outputs {
		if fits(o) {
			continue
		}
		d := data[:copy(data, f32(o.t.val)):o.t.size]
		sh := shapes[:copy(shapes, o.t.shape):len(o.t.shape)]
		data, shapes = data[o.t.size:], shapes[len(o.t.shape):]
		res.Outputs[o.name] = nn.Value{Shape: sh, Data: d}
	}
}

func hasNaN(xs []float32) bool {
	for _, v := range xs {
		if v != v {
			return true
		}
	}
	return false
}

// feed copies the feeds into the input buffers, draws the dropout masks and
// rebinds parameters whose Data slice was replaced.
func (e *executable) feed(feeds nn.Feeds) error {
	for _, in := range e.ints {
		data, ok := feeds.Ints[in.name]
		if !ok {
			return fmt.Errorf("missing int input %q (shape %v)", in.name, in.t.shape)
		}
		if len(data) != in.t.size {
			return fmt.Errorf("int input %q has %d values, want %d (shape %v)", in.name, len(data), in.t.size, in.t.shape)
		}
		copy(in.value.Ints(), data)
	}
	for _, in := range e.floats {
		data, ok := feeds.Floats[in.name]
		if !ok {
			return fmt.Errorf("missing float input %q (shape %v)", in.name, in.t.shape)
		}
		if len(data) != in.t.size {
			return fmt.Errorf("float input %q has %d values, want %d (shape %v)", in.name, len(data), in.t.size, in.t.shape)
		}
		copy(in.value.Float32s(), data)
	}
	for _, d := range e.drops {
		buf := d.value.Float32s()
		copy(buf, nn.DropoutMask(feeds.Seed, d.k, len(buf), d.p))
	}
	for _, pi := range e.params {
		p := pi.p
		cur := pi.value.Float32s()
		if len(p.Data) != len(cur) {
			return fmt.Errorf("param %s has %d values, compiled for %d", p.Name, len(p.Data), len(cur))
		}
		if &p.Data[0] != &cur[0] {
			v := tensor.New(tensor.WithBacking(p.Data), tensor.WithShape(len(p.Data)))
			pi.value, pi.t.val = v, v
		}
	}
	return nil
}

// Close releases the graph's buffers. Run fails afterwards.
func (e *executable) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	// The ops' closures and the builder they point to may outlive e (a
	// BuildFunc's closure can hold handles), so the buffers are dropped
	// from the ops themselves.
	for _, t := range e.prog {
		t.kop.out, t.val = nil, nil
	}
	e.prog, e.args, e.params, e.grads, e.ints, e.floats, e.drops, e.outputs, e.loss = nil, nil, nil, nil, nil, nil, nil, nil, nil
	e.gemm, e.stats = nil, bufferStats{}
	return nil
}
