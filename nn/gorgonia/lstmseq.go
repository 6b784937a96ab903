package gorgonia

import (
	"fmt"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"arbench/nn"
)

// This file is nn.SequenceRecurrer: a whole RNN or LSTM recurrence as one
// node, as cuDNN and oneDNN run it. The layers compute the input
// projection of every step in one product before (nn.inputProjection);
// the forward node then runs, per step, only the recurrent product
// h_{t-1}·W_hhᵀ, the addition of the step's projection and the cell, and
// the backward node runs backpropagation through time (Werbos 1990):
// per step the cell's backward and the product that carries the gradient
// to h_{t-1}, and after the loop the recurrent weight's gradient as ONE
// product over all steps,
//
//	dW_hh = Σ_t dpre_tᵀ·h_{t-1} = dPreᵀ [G × T·B] · [h_0; h_1 … h_{T-1}] [T·B × H],
//
// instead of T products with an inner dimension of B. The unrolled graph
// needed about 10 nodes per step and layer (slices, products, cells,
// reshapes, their gradients and the sums of the recurrent weight's T
// gradient terms); profiling LSTM training at batch 32 × 64 steps showed
// that bookkeeping and the T small weight-gradient products.
//
// Numerics: the forward pass performs the unrolled graph's operations in
// the same order (the product through the same kernel, then
// projection + product, then the cell's or tanh's kernel), so its values
// are bit for bit those of the unrolled graph. The backward pass sums the
// weight gradient over all T·B rows in one multiply-add chain per element
// (the unrolled graph summed T partial products), and the gradient
// reaching h_{t-1} adds the carried and the output's contributions in a
// fixed order: both agree with the unrolled graph to within float32
// rounding, and are deterministic.
//
// Parallelism: a step's product is too short (about 20 µs for batch 32 at
// width 128) to be split by parallelFor, whose helpers take about 100 µs
// to wake on the benchmark machine; each pass instead runs on a team (see
// team) whose helpers stay for the whole pass. A step is two phases: the
// product in blocks of columns, then the element-wise work (the
// projection's addition and the cell forward, or the cell backward) in
// blocks of rows. Every element is computed by the same operations
// whichever worker computes it and however the blocks are cut, so the
// results do not depend on the team's size.

var _ nn.SequenceRecurrer = (*builder)(nil)

// seqDims checks proj [T,B,G], whh [G,H] and the states [B,H] of a
// recurrence with G = gates·H and returns T, B and H.
func seqDims(op string, gates int, proj, whh *tensorT, states ...*tensorT) (t, rows, hd int) {
	bad := len(proj.shape) != 3 || len(whh.shape) != 2 || proj.isInt || whh.isInt
	if !bad {
		t, rows, hd = proj.shape[0], proj.shape[1], whh.shape[1]
		bad = proj.shape[2] != gates*hd || whh.shape[0] != gates*hd
	}
	for _, s := range states {
		bad = bad || len(s.shape) != 2 || s.isInt || s.shape[0] != rows || s.shape[1] != hd
	}
	if bad {
		shapes := make([][]int, len(states))
		for i, s := range states {
			shapes[i] = s.shape
		}
		panic(fmt.Sprintf("gorgonia: %s: proj %v, whh %v and states %v, want float [T,B,%d·H], [%d·H,H] and [B,H]",
			op, proj.shape, whh.shape, shapes, gates, gates))
	}
	return t, rows, hd
}

// recurrence holds the sizes and buffers of one sequence node: its
// forward pass's saved activations and its backward pass's scratch.
type recurrence struct {
	t, rows, hd, gates int
	pool               *gemmPool
	// whhT, when set, holds W_hhᵀ (a per-run transposed input), so that
	// the backward product dpre·W_hh of few rows runs unpacked (dotNT).
	whhT *tensorT
	// pre is one step's pre-activations [B,G]; acts the LSTM cells'
	// activations (five blocks of B·H per step); cs every c_t.
	pre, acts, cs []float32
	// dh, carry and dc are the backward pass's gradients of h and c.
	dh, carry, dc []float32
	// ws are the workspaces of the running pass's team (see start).
	ws []*gemmWorkspace
}

func (b *builder) newRecurrence(gates int, t, rows, hd int, whh *tensorT) *recurrence {
	r := &recurrence{t: t, rows: rows, hd: hd, gates: gates, pool: b.gemm}
	bh := rows * hd
	r.pre = b.scratch(gates * bh)
	if gates == 4 {
		r.acts = b.scratch(5 * t * bh)
		r.cs = b.scratch(t * bh)
		r.dc = b.scratch(bh)
	}
	r.dh, r.carry = b.scratch(bh), b.scratch(bh)
	if b.spec.Train && whh.kop == nil && rows <= smallProductRows {
		r.whhT = b.transposedInput(whh)
	}
	return r
}

// seqTeamStepMACs and seqTeamMACs are the least work of one step's
// recurrent product (B·G·H multiply-adds) and of all T of them for which a
// pass runs on a team of GOMAXPROCS workers: a step of 2^18 takes about
// 2.5 µs on one core, twice the team's two hand-overs per step; the run
// must also cover starting the helper (see team). Tests lower them.
var seqTeamStepMACs, seqTeamMACs = 1 << 18, 1 << 24

// start returns the team of one forward or backward pass, and provides
// its workspaces; the caller closes it.
func (r *recurrence) start() *team {
	size := 1
	if macs := r.rows * r.gates * r.hd * r.hd; macs >= seqTeamStepMACs && r.t*macs >= seqTeamMACs {
		size = runtime.GOMAXPROCS(0)
	}
	tm := newTeam(size)
	r.ws = r.pool.workspaces(tm.size)
	return tm
}

// recurrentProduct sets r.pre to h·W_hhᵀ, as the unrolled graph's
// MatMul(h, whh, false, true) computes it, in blocks of columns (of whh's
// rows) across the team.
func (r *recurrence) recurrentProduct(tm *team, whh, h []float32) {
	g := r.gates * r.hd
	tm.split(g, 8, func(w, lo, hi int) {
		gemmSerial(r.ws[w], false, true, r.rows, hi-lo, r.hd, h, r.hd, whh[lo*r.hd:], r.hd, r.pre[lo:], g, false)
	})
}

// addProjection adds step's projection to rows [lo, hi) of r.pre,
// proj_t + pre as the unrolled graph's Add(Slice(proj), ·) computes it.
func (r *recurrence) addProjection(proj []float32, step, lo, hi int) {
	g := r.gates * r.hd
	p := proj[step*r.rows*g:]
	binaryVec('+', p[lo*g:hi*g], r.pre[lo*g:hi*g], r.pre[lo*g:hi*g])
}

// prevH is h_{t-1}: h0 for the first step, else step t-1 of seq.
func (r *recurrence) prevH(seq, h0 []float32, step int) []float32 {
	if step == 0 {
		return h0
	}
	bh := r.rows * r.hd
	return seq[(step-1)*bh : step*bh]
}

// carryBack sets r.carry to dpre·W_hh, the gradient reaching h_{t-1}, in
// blocks of columns across the team.
func (r *recurrence) carryBack(tm *team, dpre, whh, whhT []float32) {
	g := r.gates * r.hd
	tm.split(r.hd, 8, func(w, lo, hi int) {
		if whhT != nil {
			gemmSerial(r.ws[w], false, true, r.rows, hi-lo, g, dpre, g, whhT[lo*g:], g, r.carry[lo:], r.hd, false)
		} else {
			gemmSerial(r.ws[w], false, false, r.rows, hi-lo, g, dpre, g, whh[lo:], r.hd, r.carry[lo:], r.hd, false)
		}
	})
}

// weightGrad sets dwhh to dPreᵀ·[h0; seq_0 … seq_{T-2}]: the h0 rows, then
// the others continuing the same multiply-add chains (acc), which is one
// chain over all T·B rows in order. On a team each worker computes one
// block of dwhh's rows (the product of a block of rows has its bits in
// the whole product).
func (r *recurrence) weightGrad(tm *team, dpre, h0, seq, dwhh []float32) {
	g := r.gates * r.hd
	if tm.size == 1 {
		r.pool.sgemm(true, false, g, r.hd, r.rows, dpre, g, h0, r.hd, dwhh, r.hd, false)
		if r.t > 1 {
			r.pool.sgemm(true, false, g, r.hd, (r.t-1)*r.rows, dpre[r.rows*g:], g, seq, r.hd, dwhh, r.hd, true)
		}
		return
	}
	block := roundUp((g+tm.size-1)/tm.size, gemmMR)
	tm.run((g+block-1)/block, func(w, i int) {
		lo, hi := i*block, min(g, (i+1)*block)
		gemmSerial(r.ws[w], true, false, hi-lo, r.hd, r.rows, dpre[lo:], g, h0, r.hd, dwhh[lo*r.hd:], r.hd, false)
		if r.t > 1 {
			gemmSerial(r.ws[w], true, false, hi-lo, r.hd, (r.t-1)*r.rows, dpre[r.rows*g+lo:], g, seq, r.hd, dwhh[lo*r.hd:], r.hd, true)
		}
	})
}

// seqViews returns the views of a sequence node's output state of blocks
// [B,H]: the hidden states seq [T,B,H] (blocks 0 … T-1), the last one
// (block T-1) and, for the LSTM (blocks = T+1), the last cell state
// (block T).
func (b *builder) seqViews(name string, state *tensorT, t, rows, hd, blocks int) []*tensorT {
	bh := rows * hd
	view := func(suffix string, start, end int, shape []int) *tensorT {
		win := &window{outer: 1, n: blocks, inner: bh, start: start, end: end}
		var back backwardFunc
		if state.grad {
			back = func(_, g *tensorT, _ []bool) []grad { return []grad{{t: g, win: win}} }
		}
		return b.view(name+suffix, state, start*bh, shape, back)
	}
	vs := []*tensorT{view("Seq", 0, t, []int{t, rows, hd}), view("H", t-1, t, []int{rows, hd})}
	if blocks > t {
		vs = append(vs, view("C", blocks-1, blocks, []int{rows, hd}))
	}
	return vs
}

// gradViews returns views of a backward node's output d = [dproj | dwhh |
// d state_0 ...] for the inputs in need.
func (b *builder) gradViews(name string, d *tensorT, need []bool, ins []*tensorT) []grad {
	gs := make([]grad, len(ins))
	off := 0
	for i, in := range ins {
		if need[i] {
			gs[i] = dense(b.view(name, d, off, in.shape, nil))
		}
		off += in.size
	}
	return gs
}

func sizes(ts ...*tensorT) int {
	n := 0
	for _, t := range ts {
		n += t.size
	}
	return n
}

// RNNSequence is nn.SequenceRecurrer's Elman recurrence (Elman 1990):
// h_t = tanh(proj_t + h_{t-1}·W_hhᵀ) for t < T from h0.
func (b *builder) RNNSequence(proj, whh, h0 nn.Tensor) (nn.Tensor, nn.Tensor) {
	hs := b.check("RNNSequence", proj, whh, h0)
	t, rows, hd := seqDims("RNNSequence", 1, hs[0], hs[1], hs[2])
	r := b.newRecurrence(1, t, rows, hd, hs[1])
	vs := b.sequenceNode("RNNSequence", r, hs, t,
		func(in [][]float32, state []float32) { r.rnnForward(in[0], in[1], in[2], state) },
		func(state []float32, in [][]float32, whhT, gs, d []float32) {
			r.rnnBackward(state, in[1], whhT, in[2], gs, d)
		})
	return vs[0], vs[1]
}

// sequenceNode adds the node of recurrence r over ins = [proj, whh,
// initial states...], whose output state has blocks blocks of [B,H] (see
// seqViews), and returns the state's views. fwd computes the state from
// the inputs' values; bwd writes the gradient of every input, in ins'
// order, into d, given the state, the inputs' values (proj's is nil: no
// gradient depends on it), W_hhᵀ (nil unless r.whhT is set) and the
// state's gradient gs.
func (b *builder) sequenceNode(name string, r *recurrence, ins []*tensorT, blocks int,
	fwd func(in [][]float32, state []float32),
	bwd func(state []float32, in [][]float32, whhT, gs, d []float32)) []*tensorT {
	state := b.apply(name, []int{blocks, r.rows, r.hd}, false, ins,
		func(in []G.Value, out *tensor.Dense) error {
			vals := make([][]float32, len(in))
			for i, v := range in {
				vals[i] = f32(v)
			}
			fwd(vals, out.Float32s())
			return nil
		},
		func(y, g *tensorT, need []bool) []grad {
			// The backward node reads the state, its gradient, the
			// inputs but proj, and W_hhᵀ when set.
			bins := append([]*tensorT{y, g}, ins[1:]...)
			if r.whhT != nil {
				bins = append(bins, r.whhT)
			}
			d := b.apply(name+"Grad", []int{sizes(ins...)}, false, bins,
				func(in []G.Value, out *tensor.Dense) error {
					vals := make([][]float32, len(ins))
					for i := 1; i < len(ins); i++ {
						vals[i] = f32(in[i+1])
					}
					var whhT []float32
					if r.whhT != nil {
						whhT = f32(in[len(in)-1])
					}
					bwd(f32(in[0]), vals, whhT, f32(in[1]), out.Float32s())
					return nil
				}, nil)
			return b.gradViews(name+"Grad", d, need, ins)
		})
	return b.seqViews(name, state, r.t, r.rows, r.hd, blocks)
}

// rnnForward runs the steps, each in two phases on the team: the
// recurrent product by columns, then the projection and tanh by rows.
func (r *recurrence) rnnForward(proj, whh, h0, seq []float32) {
	tm := r.start()
	defer tm.close()
	hd := r.hd
	for step := range r.t {
		r.recurrentProduct(tm, whh, r.prevH(seq, h0, step))
		out := seq[step*r.rows*hd:]
		tm.split(r.rows, 1, func(_, lo, hi int) {
			r.addProjection(proj, step, lo, hi)
			tanhInto(r.pre[lo*hd:hi*hd], out[lo*hd:hi*hd])
		})
	}
}

// rnnBackward writes [dproj | dwhh | dh0] into d from the states seq and
// their gradient gseq: dpre_t = (gseq_t + carry)·(1 - h_t²) by rows, then
// carry = dpre_t·W_hh by columns, on the team.
func (r *recurrence) rnnBackward(seq, whh, whhT, h0, gseq, d []float32) {
	tm := r.start()
	defer tm.close()
	bh, hd := r.rows*r.hd, r.hd
	dproj := d[:r.t*bh]
	dwhh := d[r.t*bh : r.t*bh+r.hd*r.hd]
	dh0 := d[r.t*bh+r.hd*r.hd:]
	clear(r.carry)
	for step := r.t - 1; step >= 0; step-- {
		at := step * bh
		tm.split(r.rows, 1, func(_, lo, hi int) {
			lo, hi = lo*hd, hi*hd
			binaryVec('+', gseq[at+lo:at+hi], r.carry[lo:hi], r.dh[lo:hi])
			tanhGrad(seq[at+lo:at+hi], r.dh[lo:hi], dproj[at+lo:at+hi])
		})
		r.carryBack(tm, dproj[at:at+bh], whh, whhT)
	}
	copy(dh0, r.carry)
	r.weightGrad(tm, dproj, h0, seq, dwhh)
}

// LSTMSequence is nn.SequenceRecurrer's LSTM (Hochreiter & Schmidhuber
// 1997, forget gate of Gers et al. 2000): (h_t, c_t) =
// cell(proj_t + h_{t-1}·W_hhᵀ, c_{t-1}) with the fused cell's kernels
// (LSTMCell).
func (b *builder) LSTMSequence(proj, whh, h0, c0 nn.Tensor) (nn.Tensor, nn.Tensor, nn.Tensor) {
	hs := b.check("LSTMSequence", proj, whh, h0, c0)
	t, rows, hd := seqDims("LSTMSequence", 4, hs[0], hs[1], hs[2], hs[3])
	r := b.newRecurrence(4, t, rows, hd, hs[1])
	vs := b.sequenceNode("LSTMSequence", r, hs, t+1,
		func(in [][]float32, state []float32) { r.lstmForward(in[0], in[1], in[2], in[3], state) },
		func(state []float32, in [][]float32, whhT, gs, d []float32) {
			r.lstmBackward(state, in[1], whhT, in[2], in[3], gs, d)
		})
	return vs[0], vs[1], vs[2]
}

// prevC is c_{t-1}: c0 for the first step, else r.cs's step t-1.
func (r *recurrence) prevC(c0 []float32, step int) []float32 {
	if step == 0 {
		return c0
	}
	bh := r.rows * r.hd
	return r.cs[(step-1)*bh : step*bh]
}

// lstmForward writes h_0 … h_{T-1} and c_{T-1} into state (blocks 0…T-1
// and T) and keeps every c_t and the cells' activations for the backward
// pass. Each step runs in two phases on the team: the recurrent product
// by columns, then the projection and the cell by rows.
func (r *recurrence) lstmForward(proj, whh, h0, c0, state []float32) {
	tm := r.start()
	defer tm.close()
	bh, hd := r.rows*r.hd, r.hd
	for step := range r.t {
		r.recurrentProduct(tm, whh, r.prevH(state, h0, step))
		c, h := r.prevC(c0, step), state[step*bh:(step+1)*bh]
		c2, acts := r.cs[step*bh:(step+1)*bh], r.acts[5*step*bh:5*(step+1)*bh]
		tm.split(r.rows, 1, func(_, lo, hi int) {
			r.addProjection(proj, step, lo, hi)
			lstmCellForward(r.pre, c, h, c2, acts, bh, hd, lo*hd, hi*hd)
		})
	}
	copy(state[r.t*bh:], r.cs[(r.t-1)*bh:])
}

// lstmBackward writes [dproj | dwhh | dh0 | dc0] into d from the state's
// gradient gs (blocks: every h_t, then c_{T-1}): per step the cell's
// backward by rows, then the carried gradient by columns, on the team.
func (r *recurrence) lstmBackward(state, whh, whhT, h0, c0, gs, d []float32) {
	tm := r.start()
	defer tm.close()
	bh, hd := r.rows*r.hd, r.hd
	n := 4 * bh
	dproj := d[:r.t*n]
	dwhh := d[r.t*n : r.t*n+4*hd*hd]
	dh0 := d[r.t*n+4*hd*hd : r.t*n+4*hd*hd+bh]
	dc0 := d[r.t*n+4*hd*hd+bh:]
	clear(r.carry)
	copy(r.dc, gs[r.t*bh:])
	for step := r.t - 1; step >= 0; step-- {
		at := step * bh
		c, acts := r.prevC(c0, step), r.acts[5*step*bh:5*(step+1)*bh]
		dg := dproj[step*n : (step+1)*n]
		tm.split(r.rows, 1, func(_, lo, hi int) {
			lo, hi = lo*hd, hi*hd
			binaryVec('+', gs[at+lo:at+hi], r.carry[lo:hi], r.dh[lo:hi])
			lstmCellBackward(acts, c, r.dh, r.dc, dg, r.dc, bh, hd, lo, hi)
		})
		r.carryBack(tm, dg, whh, whhT)
	}
	copy(dh0, r.carry)
	copy(dc0, r.dc)
	r.weightGrad(tm, dproj, h0, state, dwhh)
}
