// Package gorgonia implements nn.Backend on gorgonia.org/gorgonia (pure Go,
// float32, CPU).
//
// Compile calls the build function once to construct a gorgonia ExprGraph,
// adds (for training executables) the nodes computing the gradient of the
// Loss with respect to every Param that influences it, and compiles the
// whole graph into one gorgonia TapeMachine. Run copies the feeds into the
// input buffers and reruns the machine; nothing is rebuilt or recompiled.
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
// broadcasting and axis semantics differ from nn.Graph's. Matrix products go
// through gorgonia's configured BLAS (G.WhichBLAS: gonum's pure-Go BLAS by
// default, OpenBLAS with the openblas build tag). Gorgonia provides the
// graph, type and shape inference, compilation (ordering, register
// allocation) and the tape machine that executes it.
package gorgonia

import (
	"context"
	"errors"
	"fmt"
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
	// par runs the parallel parts of every executable's kernels.
	par *workerPool
}

var _ nn.Backend = (*Backend)(nil)

// New returns a gorgonia backend.
func New(opts ...Option) *Backend {
	b := &Backend{par: &workerPool{}}
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
		b := newBuilder(spec, uint64(attempt), be.par)
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
		var opts []G.VMOpt
		if be.nanCheck {
			opts = append(opts, G.WithNaNWatch())
		}
		m, err := newMachine(b.g, opts...)
		if err != nil {
			return nil, fmt.Errorf("gorgonia: compile %s: %w", spec.Key, err)
		}
		return newExecutable(b, m, grads), nil
	}
	return nil, fmt.Errorf("gorgonia: compile %s: node hash collisions in %d attempts", spec.Key, compileAttempts)
}

func newMachine(g *G.ExprGraph, opts ...G.VMOpt) (m G.VM, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tape machine: %v", r)
		}
	}()
	return G.NewTapeMachine(g, opts...), nil
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
func (b *builder) differentiate() (grads map[*nn.Param]*G.Node, err error) {
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
	for i := len(b.nodes) - 1; i >= 0; i-- {
		t := b.nodes[i]
		gs := pending[t]
		if len(gs) == 0 || t.op == nil {
			continue
		}
		delete(pending, t)
		back := t.op.back(t, b.accumulate(t, gs), t.op.need)
		for j, in := range t.op.ins {
			if !t.op.need[j] {
				continue
			}
			if back[j].t == nil {
				panic(fmt.Sprintf("gorgonia: %s: no gradient for operand %d", t.op.name, j))
			}
			pending[in] = append(pending[in], back[j])
		}
	}
	grads = map[*nn.Param]*G.Node{}
	for _, pi := range b.params {
		if gs := pending[pi.t]; len(gs) > 0 {
			grads[pi.p] = b.accumulate(pi.t, gs).n
		}
	}
	return grads, nil
}

// accumulate returns the sum of the gradient contributions gs to x, in one
// op when there are several (or a window).
func (b *builder) accumulate(x *tensorT, gs []grad) *tensorT {
	for _, g := range gs {
		want := x.size
		if w := g.win; w != nil {
			want = w.outer * (w.end - w.start) * w.inner
		}
		if g.t.size != want || g.t.isInt {
			panic(fmt.Sprintf("gorgonia: gradient of shape %v for a tensor of shape %v", g.t.shape, x.shape))
		}
	}
	if len(gs) == 1 && gs[0].win == nil {
		return gs[0].t
	}
	ins := make([]*tensorT, len(gs))
	wins := make([]*window, len(gs))
	for i, g := range gs {
		ins[i], wins[i] = g.t, g.win
	}
	return b.apply("GradSum", x.shape, false, ins,
		func(in []G.Value, out *tensor.Dense) error {
			sumGrads(in, wins, out.Float32s())
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
	p    *nn.Param
	node *G.Node // nil: the Loss does not depend on p, its gradient is zero
}

type executable struct {
	mu      sync.Mutex
	key     string
	m       G.VM
	params  []*paramInput
	grads   []gradOut
	ints    []*feedInput
	floats  []*feedInput
	drops   []*dropInput
	outputs []output
	loss    *tensorT
	failed  *error
}

func newExecutable(b *builder, m G.VM, grads map[*nn.Param]*G.Node) *executable {
	e := &executable{
		key:     b.spec.Key,
		m:       m,
		params:  b.params,
		ints:    b.ints,
		floats:  b.floats,
		drops:   b.drops,
		outputs: b.outputs,
		loss:    b.loss,
		failed:  &b.failed,
	}
	if b.spec.Train {
		// Every parameter's gradient is overwritten, including those the
		// Loss does not depend on (zero).
		seen := map[*nn.Param]bool{}
		add := func(p *nn.Param) {
			if !seen[p] {
				seen[p] = true
				e.grads = append(e.grads, gradOut{p: p, node: grads[p]})
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
	return e
}

// errClosed is returned by Run after Close.
var errClosed = errors.New("executable is closed")

// Run feeds the inputs and reruns the tape machine.
func (e *executable) Run(ctx context.Context, feeds nn.Feeds) (*nn.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gorgonia: run %s: %w", e.key, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		return nil, fmt.Errorf("gorgonia: run %s: %w", e.key, errClosed)
	}
	if err := e.feed(feeds); err != nil {
		return nil, fmt.Errorf("gorgonia: run %s: %w", e.key, err)
	}
	e.m.Reset()
	*e.failed = nil
	if err := e.m.RunAll(); err != nil {
		if *e.failed != nil {
			err = *e.failed // the op's own error, without the machine's decoration
		}
		return nil, fmt.Errorf("gorgonia: run %s: %w", e.key, err)
	}
	res := &nn.Result{Outputs: make(map[string]nn.Value, len(e.outputs))}
	for _, o := range e.outputs {
		d, err := nodeData(o.t.n)
		if err != nil {
			return nil, fmt.Errorf("gorgonia: run %s: output %q: %w", e.key, o.name, err)
		}
		res.Outputs[o.name] = nn.Value{Shape: o.t.Shape(), Data: append([]float32(nil), d...)}
	}
	if e.loss != nil {
		d, err := nodeData(e.loss.n)
		if err != nil {
			return nil, fmt.Errorf("gorgonia: run %s: loss: %w", e.key, err)
		}
		res.Loss = float64(d[0])
	}
	for _, g := range e.grads {
		if len(g.p.Grad) != len(g.p.Data) {
			return nil, fmt.Errorf("gorgonia: run %s: param %s: Grad has %d values, Data %d", e.key, g.p.Name, len(g.p.Grad), len(g.p.Data))
		}
		if g.node == nil {
			clear(g.p.Grad)
			continue
		}
		d, err := nodeData(g.node)
		if err != nil {
			return nil, fmt.Errorf("gorgonia: run %s: gradient of %s: %w", e.key, g.p.Name, err)
		}
		copy(g.p.Grad, d)
	}
	return res, nil
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
			if err := G.Let(pi.t.n, v); err != nil {
				return fmt.Errorf("rebind param %s: %w", p.Name, err)
			}
			pi.value = v
		}
	}
	return nil
}

func nodeData(n *G.Node) ([]float32, error) {
	d, ok := n.Value().(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("node %v holds %T, want a float32 tensor", n, n.Value())
	}
	return d.Float32s(), nil
}

// Close releases the machine and the graph's buffers. Run fails afterwards.
func (e *executable) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		return nil
	}
	err := e.m.Close()
	e.m = nil
	e.params, e.grads, e.ints, e.floats, e.drops, e.outputs, e.loss, e.failed = nil, nil, nil, nil, nil, nil, nil, nil
	if err != nil {
		return fmt.Errorf("gorgonia: close %s: %w", e.key, err)
	}
	return nil
}
