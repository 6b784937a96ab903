package gorgonia

import (
	"fmt"
	"os"
	"slices"
	"strconv"

	"gorgonia.org/tensor"
)

// Buffer pooling. Every op computes its value into an output buffer
// assigned when the executable is compiled (kernelOp.out). A value is
// alive from its op to its last reader in the executable's schedule (the
// forward ops, then for training executables the backward ops: forward
// values a gradient rule reads, such as a product's operands or a
// softmax's output, stay alive into the backward pass), and a view's
// readers keep the value it views alive. Outputs, the Loss and the
// parameters' gradients, read after the run, stay alive to its end.
// planBuffers gives values whose lifetimes do not overlap the same memory,
// so an executable holds about its largest set of simultaneously live
// values instead of all of them.
//
// The results are bit for bit those of one buffer per value: every kernel
// writes its whole output and reads no part of it before writing it
// (kernels.go; fused ops' accumulating products start with a plain one),
// and memory is handed to a later op only after the last reader of its
// previous value has run, so every op reads exactly the values it read
// before. Training executables also sum each parameter's gradient as soon
// as the reverse pass has passed the parameter's first consumer (see
// builder.differentiate), so the deferred weight-gradient products do not
// keep every layer's activations alive to the end of the backward pass.

// noPoolEnv is the environment variable that turns pooling off (see the
// package comment).
const noPoolEnv = "ARBENCH_NO_POOL"

// poolOff is set by ARBENCH_NO_POOL=1; a value other than 0 or 1 leaves it
// false and its error in poolEnvErr, which opening the backend by name
// reports.
var poolOff, poolEnvErr = parseNoPool(os.Getenv(noPoolEnv))

func parseNoPool(v string) (bool, error) {
	switch v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("%s=%q: want 1 (a buffer of its own for every value), or 0 or unset (pooled buffers)", noPoolEnv, v)
}

// withoutPooling gives every value a buffer of its own, as ARBENCH_NO_POOL=1
// does (for tests comparing the two).
func withoutPooling() Option { return func(b *Backend) { b.noPool = true } }

// intBytes is the size of an int, the element of integer values.
const intBytes = strconv.IntSize / 8

// bufferStats counts the bytes of the buffers an executable holds.
type bufferStats struct {
	// values are the buffers the ops compute into, as assigned;
	// unpooled what they would be with one buffer per value.
	values, unpooled int64
	// inputs are the feeds', constants' and dropout masks' buffers
	// (parameters belong to their ParamSet); scratch the private
	// buffers of fused ops (saved LSTM activations and states).
	inputs, scratch int64
	// workspace is the matrix products' packing buffers, allocated on
	// first use.
	workspace int64
}

// total is the sum of the held bytes.
func (s bufferStats) total() int64 {
	return s.values + s.inputs + s.scratch + s.workspace
}

// storage returns the op whose output buffer holds t's value: t itself,
// the base of a chain of views, or nil for an input (inputs keep their
// own buffers).
func storage(t *tensorT) *tensorT {
	for t.viewOf != nil {
		t = t.viewOf
	}
	if t.kop == nil {
		return nil
	}
	if !t.kop.owns {
		panic(fmt.Sprintf("gorgonia: %s: op neither computes into a buffer nor is a view", t.kop.name))
	}
	return t
}

// lastUses returns, for every op of prog with an output buffer, the
// position in prog of the last op reading its value (directly or through
// views; its own position when none does), or len(prog) for the values
// of kept, which are read after the run.
func lastUses(prog []*tensorT, kept []*tensorT) map[*tensorT]int {
	last := make(map[*tensorT]int, len(prog))
	for i, t := range prog {
		if t.kop.owns {
			last[t] = i
		}
		for _, a := range t.args {
			if s := storage(a); s != nil {
				last[s] = i // prog is in topological order: i only grows
			}
		}
	}
	for _, t := range kept {
		if s := storage(t); s != nil {
			last[s] = len(prog)
		}
	}
	return last
}

// planBuffers assigns the output buffer of every op of prog, the values
// of kept (outputs, the Loss, gradients) alive to the end of the run: with
// pool, parts of one arena per element type, shared by values whose
// lifetimes do not overlap (see placeValues); else a buffer of its own for
// each. It returns the values' bytes (stats.values and stats.unpooled).
func planBuffers(prog []*tensorT, kept []*tensorT, pool bool) bufferStats {
	var st bufferStats
	last := lastUses(prog, kept)
	var floats, ints []*lifetime
	for i, t := range prog {
		k := t.kop
		if !k.owns {
			continue
		}
		st.unpooled += valueBytes(k.outLen, k.outInt)
		if !pool {
			if k.outInt {
				k.out = newIntVec(k.outLen)
			} else {
				k.out = newF32Vec(k.outLen)
			}
			continue
		}
		v := &lifetime{k: k, def: i, last: last[t], size: roundUp(k.outLen, arenaAlign)}
		if k.outInt {
			ints = append(ints, v)
		} else {
			floats = append(floats, v)
		}
	}
	if !pool {
		st.values = st.unpooled
		return st
	}
	st.values = valueBytes(allocateArena[float32](floats), false) + valueBytes(allocateArena[int](ints), true)
	return st
}

// allocateArena places vals in one arena of elements E and sets each op's
// output to its part; it returns the arena's length.
func allocateArena[E float32 | int](vals []*lifetime) int {
	if len(vals) == 0 {
		return 0
	}
	n := placeValues(vals)
	arena := make([]E, n)
	for _, v := range vals {
		part := arena[v.off : v.off+v.k.outLen : v.off+v.k.outLen]
		v.k.out = tensor.New(tensor.WithBacking(part), tensor.WithShape(v.k.outLen))
	}
	return n
}

// arenaAlign is the alignment of values in an arena, in elements: 16
// float32s are a 64-byte cache line, as the kernels' vector loads of a
// buffer of its own would find it.
const arenaAlign = 16

// lifetime is a value of the plan: op k's output of size elements (its
// length rounded up to arenaAlign), alive from position def to position
// last of the program, both included, placed at offset off of the arena.
type lifetime struct {
	k               *kernelOp
	def, last, size int
	off             int
}

// overlaps reports whether a and b are alive at a common position.
func (a *lifetime) overlaps(b *lifetime) bool {
	return a.def <= b.last && b.def <= a.last
}

// placeValues sets the offset of every value so that values alive at the
// same time do not share memory, and returns the arena's size. It is the
// "greedy by size" offset calculation of Pisarchyk & Lee 2020 ("Efficient
// memory management for deep neural net inference", arXiv:2001.03288):
// the values from largest to smallest (the earlier first among equals),
// each into the smallest gap between the values already placed that it
// overlaps in time, or above them all. At issue 13's large Transformer
// size the arena is within 2% of the most bytes alive at once.
func placeValues(vals []*lifetime) int {
	order := slices.Clone(vals)
	slices.SortStableFunc(order, func(a, b *lifetime) int { return b.size - a.size })
	var placed []*lifetime // by offset
	arena := 0
	for _, v := range order {
		off, gap, top := -1, 0, 0
		for _, p := range placed {
			if !p.overlaps(v) {
				continue
			}
			if free := p.off - top; free >= v.size && (off < 0 || free < gap) {
				off, gap = top, free
			}
			top = max(top, p.off+p.size)
		}
		if off < 0 {
			off = top
		}
		v.off = off
		at, _ := slices.BinarySearchFunc(placed, off, func(p *lifetime, off int) int { return p.off - off })
		placed = slices.Insert(placed, at, v)
		arena = max(arena, off+v.size)
	}
	return arena
}

func valueBytes(n int, isInt bool) int64 {
	if isInt {
		return int64(n) * intBytes
	}
	return 4 * int64(n)
}

// denseBytes is the size of a value's data.
func denseBytes(v *tensor.Dense) int64 {
	return int64(v.DataSize()) * int64(v.Dtype().Size())
}

// workspaceBytes is the size of the pool's packing buffers.
func (p *gemmPool) workspaceBytes() int64 {
	var n int64
	for _, w := range p.ws {
		n += 4 * int64(cap(w.a)+cap(w.b)+cap(w.t))
	}
	return n
}

// held returns the bytes of the buffers e holds.
func (e *executable) held() bufferStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.stats
	if e.gemm != nil {
		st.workspace = e.gemm.workspaceBytes()
	}
	return st
}
