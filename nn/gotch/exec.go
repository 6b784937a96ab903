//go:build gotch

package gotch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	lib "github.com/sugarme/gotch/libtch"

	"arbench/nn"
)

// executable re-executes its build function eagerly on every Run.
type executable struct {
	mu     sync.Mutex
	key    string
	spec   nn.Spec
	build  nn.BuildFunc
	device int
	decls  []decl
	grads  []*nn.Param // parameters whose Grad a training Run overwrites
	mem    arena       // reused between runs; empty outside Run
	closed bool
}

// errClosed is returned by Run after Close.
var errClosed = errors.New("executable is closed")

// Run uploads the parameters and feeds, executes the build function on
// libtorch, runs backward when training, copies the outputs, the loss and
// the gradients out, and frees every tensor it created.
func (e *executable) Run(ctx context.Context, feeds nn.Feeds) (*nn.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gotch: run %s: %w", e.key, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("gotch: run %s: %w", e.key, errClosed)
	}
	if err := e.checkFeeds(feeds); err != nil {
		return nil, fmt.Errorf("gotch: run %s: %w", e.key, err)
	}
	for _, p := range e.grads {
		if len(p.Grad) != len(p.Data) {
			return nil, fmt.Errorf("gotch: run %s: param %s: Grad has %d values, Data %d", e.key, p.Name, len(p.Grad), len(p.Data))
		}
	}
	res, err := e.run(feeds)
	if err != nil {
		return nil, fmt.Errorf("gotch: run %s: %w", e.key, err)
	}
	return res, nil
}

// checkFeeds validates the feeds against the inputs the dry build declared.
func (e *executable) checkFeeds(feeds nn.Feeds) error {
	for _, d := range e.decls {
		var n int
		var ok bool
		kind := "float"
		if d.isInt {
			kind = "int"
			var v []int
			v, ok = feeds.Ints[d.name]
			n = len(v)
		} else {
			var v []float32
			v, ok = feeds.Floats[d.name]
			n = len(v)
		}
		if !ok {
			return fmt.Errorf("missing %s input %q (shape %v)", kind, d.name, d.shape)
		}
		if n != sizeOf(d.shape) {
			return fmt.Errorf("%s input %q has %d values, want %d (shape %v)", kind, d.name, n, sizeOf(d.shape), d.shape)
		}
	}
	return nil
}

func (e *executable) run(feeds nn.Feeds) (res *nn.Result, err error) {
	// libtch reports errors through a C++ thread_local: stay on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lastError()
	defer e.mem.free()
	defer func() {
		if r := recover(); r != nil {
			switch x := r.(type) {
			case *torchError:
				err = x
			case *feedError:
				err = x
			default:
				panic(r)
			}
		}
	}()
	g := newGraph(e.spec, false, e.device, feeds, &e.mem)
	if err := e.build(g); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	g.done = true
	if e.spec.Train && g.loss == nil {
		return nil, errors.New("build marked no Loss")
	}
	res = &nn.Result{Outputs: make(map[string]nn.Value, len(g.outputs))}
	for _, o := range g.outputs {
		data := make([]float32, sizeOf(o.t.shape))
		download(o.t.t, data)
		res.Outputs[o.name] = nn.Value{Shape: slices.Clone(o.t.shape), Data: data}
	}
	if g.loss != nil {
		var l [1]float32
		download(g.loss.t, l[:])
		res.Loss = float64(l[0])
	}
	if e.spec.Train {
		e.backward(g)
	}
	return res, nil
}

// backward differentiates the Loss and copies each parameter's gradient
// into its Grad (zero for parameters the Loss does not depend on).
func (e *executable) backward(g *graph) {
	leaves := make(map[*nn.Param]lib.Ctensor, len(g.leaves))
	for _, l := range g.leaves {
		leaves[l.p] = l.t
	}
	differentiable := lib.AtRequiresGrad(g.loss.t)
	check("requires_grad")
	if differentiable {
		lib.AtBackward(g.loss.t, 0, 0)
		check("backward")
	}
	for _, p := range e.grads {
		t, ok := leaves[p]
		if !ok || !differentiable {
			clear(p.Grad)
			continue
		}
		gr := e.mem.call("grad", func(out *lib.Ctensor) { lib.AtgGrad(out, t) })
		defined := lib.AtDefined(gr)
		check("defined")
		if !defined {
			clear(p.Grad)
			continue
		}
		download(gr, p.Grad)
	}
}

// Close marks the executable closed; it holds no libtorch memory between
// runs. Run fails afterwards.
func (e *executable) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.build = nil
	return nil
}
