package gorgonia

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"arbench/nn"
)

// LSTMCell is the fused LSTM cell of nn.LSTMCeller (Hochreiter &
// Schmidhuber 1997, forget gate of Gers et al. 2000): from gates [B,4H]
// (pre-activations of i, f, g, o) and c [B,H],
//
//	c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g),  h' = σ(o) ⊙ tanh(c').
//
// One forward node computes a state [2,B,H] holding h' and c' (which are
// views of its two blocks) and keeps σ(i), σ(f), tanh(g), σ(o) and tanh(c')
// in a buffer of its own for the backward pass; one backward node, which
// depends on the state and hence runs after the forward node in every run,
// reads that buffer and computes the gradients of gates and c together.
// This replaces the composition's 13 small forward nodes per time step
// (Slice×4, Sigmoid×3, Tanh×2, Mul×3, Add) and their gradient nodes, whose
// per-node costs were a large part of LSTM training (a 2-layer, 64-step
// training graph shrinks from 4647 to 2217 nodes). The arithmetic is the
// composition's, element by element, so the results agree with it to
// within float32 rounding (the gradient of c' may sum its two
// contributions in a different order).
func (b *builder) LSTMCell(gates, c nn.Tensor) (nn.Tensor, nn.Tensor) {
	hs := b.check("LSTMCell", gates, c)
	gt, ct := hs[0], hs[1]
	if len(gt.shape) != 2 || len(ct.shape) != 2 || gt.isInt || ct.isInt ||
		gt.shape[0] != ct.shape[0] || gt.shape[1] != 4*ct.shape[1] {
		panic(fmt.Sprintf("gorgonia: LSTMCell: gates %v and c %v, want float [B,4H] and [B,H]", gt.shape, ct.shape))
	}
	rows, hd := ct.shape[0], ct.shape[1]
	bh := rows * hd
	acts := b.scratch(5 * bh)
	state := b.apply("LSTMCell", []int{2, rows, hd}, false, []*tensorT{gt, ct},
		func(in []G.Value, out *tensor.Dense) error {
			gs, cs, s := f32(in[0]), f32(in[1]), out.Float32s()
			splitRange(bh, hd, lstmCellCost, func(lo, hi int) { lstmCellForward(gs, cs, s[:bh], s[bh:], acts, bh, hd, lo, hi) })
			return nil
		},
		func(y, g *tensorT, need []bool) []grad {
			d := b.apply("LSTMCellGrad", []int{5 * bh}, false, []*tensorT{y, ct, g},
				func(in []G.Value, out *tensor.Dense) error {
					cs, ds, o := f32(in[1]), f32(in[2]), out.Float32s()
					splitRange(bh, hd, lstmCellGradCost, func(lo, hi int) {
						lstmCellBackward(acts, cs, ds[:bh], ds[bh:2*bh], o[:4*bh], o[4*bh:5*bh], bh, hd, lo, hi)
					})
					return nil
				}, nil)
			gs := make([]grad, 2)
			if need[0] {
				gs[0] = dense(b.view("LSTMCellGradGates", d, 0, gt.shape, nil))
			}
			if need[1] {
				gs[1] = dense(b.view("LSTMCellGradC", d, 4*bh, ct.shape, nil))
			}
			return gs
		})
	block := func(name string, k int) *tensorT {
		win := &window{outer: 1, n: 2, inner: bh, start: k, end: k + 1}
		var back backwardFunc
		if state.grad {
			back = func(_, g *tensorT, _ []bool) []grad { return []grad{{t: g, win: win}} }
		}
		return b.view(name, state, k*bh, ct.shape, back)
	}
	return block("LSTMCellH", 0), block("LSTMCellC", 1)
}

// Estimated nanoseconds per hidden unit of the fused cell (five
// exponentials and a few multiply-adds forward; multiply-adds backward),
// for splitRange.
const (
	lstmCellCost     = 5*costMath + 4*costCheap
	lstmCellGradCost = 12 * costCheap
)

// lstmCellForward computes rows [lo/hd, hi/hd) of the fused cell's new
// state h' and c' (bh = B·H values each) and of acts, five blocks: σ(i),
// σ(f), tanh(g), σ(o), tanh(c'). The products are rounded separately
// (lstmCellState), as the composition's Mul and Add nodes round them. Each
// row is finished before the next (its values stay in L1: measured faster
// than each step over the whole range, with the data in L2 or L3).
func lstmCellForward(gates, c, h, c2, acts []float32, bh, hd, lo, hi int) {
	ig, fg, gg, og, tc := acts[:bh], acts[bh:2*bh], acts[2*bh:3*bh], acts[3*bh:4*bh], acts[4*bh:5*bh]
	for r0 := lo; r0 < hi; r0 += hd {
		row := gates[4*r0 : 4*r0+4*hd]
		r1 := r0 + hd
		sigmoidInto(row[:hd], ig[r0:r1])
		sigmoidInto(row[hd:2*hd], fg[r0:r1])
		tanhInto(row[2*hd:3*hd], gg[r0:r1])
		sigmoidInto(row[3*hd:], og[r0:r1])
		lstmCellState(fg[r0:r1], c[r0:r1], ig[r0:r1], gg[r0:r1], c2[r0:r1])
		tanhInto(c2[r0:r1], tc[r0:r1])
		lstmCellOut(og[r0:r1], tc[r0:r1], h[r0:r1])
	}
}

// lstmCellState sets c2[j] = f[j]·c[j] + i[j]·g[j] for j < len(c2), the
// products rounded separately: sixteen lanes at a time (lstmStateAVX512)
// or eight (lstmStateAVX2) as gemmUse says, else lstmCellStateGo; all give
// the same bits (the assembly performs the same rounded operations).
func lstmCellState(f, c, i, g, c2 []float32) {
	n := len(c2)
	if n == 0 {
		return
	}
	f, c, i, g = f[:n], c[:n], i[:n], g[:n]
	switch gemmUse {
	case gemmAVX512:
		lstmStateAVX512(n, &f[0], &c[0], &i[0], &g[0], &c2[0])
	case gemmAVX2:
		lstmStateAVX2(n, &f[0], &c[0], &i[0], &g[0], &c2[0])
	default:
		lstmCellStateGo(f, c, i, g, c2)
	}
}

func lstmCellStateGo(f, c, i, g, c2 []float32) {
	for j := range c2 {
		c2[j] = float32(f[j]*c[j]) + float32(i[j]*g[j])
	}
}

// lstmCellOut sets h[j] = o[j]·t[j] for j < len(h), on gemmUse's lanes as
// lstmCellState.
func lstmCellOut(o, t, h []float32) {
	n := len(h)
	if n == 0 {
		return
	}
	o, t = o[:n], t[:n]
	switch gemmUse {
	case gemmAVX512:
		lstmOutAVX512(n, &o[0], &t[0], &h[0])
	case gemmAVX2:
		lstmOutAVX2(n, &o[0], &t[0], &h[0])
	default:
		for j := range h {
			h[j] = o[j] * t[j]
		}
	}
}

// lstmCellBackward computes rows [lo/hd, hi/hd) of the gradients dgates
// (B×4H, row-major like gates) and dc (B×H) from the activations acts
// (see lstmCellForward), the input c and the incoming gradients dh, dc2
// of h' and c'. dc may be dc2 (each element is read before it is
// written). With dh, dc' the incoming gradients:
//
//	do = dh·tanh(c'),  dc' += dh·σ(o)·(1-tanh²(c')),
//	di = dc'·tanh(g),  df = dc'·c,  dg = dc'·σ(i),  dc = dc'·σ(f),
//
// then through the gate non-linearities: σ' = σ(1-σ), tanh' = 1-tanh².
// It runs sixteen lanes at a time (lstmBackAVX512) or eight
// (lstmBackAVX2) as gemmUse says, else lstmCellBackwardGo; all give the
// same bits.
func lstmCellBackward(acts, c, dh, dc2, dgates, dc []float32, bh, hd, lo, hi int) {
	switch {
	case hi <= lo:
	case gemmUse == gemmAVX512:
		lstmCellBackwardAsm(lstmBackAVX512, acts, c, dh, dc2, dgates, dc, bh, hd, lo, hi)
	case gemmUse == gemmAVX2:
		lstmCellBackwardAsm(lstmBackAVX2, acts, c, dh, dc2, dgates, dc, bh, hd, lo, hi)
	default:
		lstmCellBackwardGo(acts, c, dh, dc2, dgates, dc, bh, hd, lo, hi)
	}
}

// lstmCellBackwardAsm runs kernel on the whole rows from lo (hi > lo),
// after checking every slice's bounds as lstmCellBackwardGo's indexing
// would.
func lstmCellBackwardAsm(kernel func(rows, hd, bh int, acts, c, dh, dc2, dgates, dc *float32),
	acts, c, dh, dc2, dgates, dc []float32, bh, hd, lo, hi int) {
	rows := (hi - lo + hd - 1) / hd
	end := lo + rows*hd
	ig, tc := acts[:bh][lo:end], acts[4*bh : 5*bh][lo:end]
	_ = tc
	c, dh, dc2, dc, dgates = c[lo:end], dh[lo:end], dc2[lo:end], dc[lo:end], dgates[4*lo:4*end]
	kernel(rows, hd, bh, &ig[0], &c[0], &dh[0], &dc2[0], &dgates[0], &dc[0])
}

// lstmCellBackwardGo is lstmCellBackward element by element, each
// product, sum and difference rounded on its own.
func lstmCellBackwardGo(acts, c, dh, dc2, dgates, dc []float32, bh, hd, lo, hi int) {
	ig, fg, gg, og, tc := acts[:bh], acts[bh:2*bh], acts[2*bh:3*bh], acts[3*bh:4*bh], acts[4*bh:5*bh]
	for r0 := lo; r0 < hi; r0 += hd {
		row := dgates[4*r0 : 4*r0+4*hd]
		for k := range hd {
			j := r0 + k
			i, f, g, o, t := ig[j], fg[j], gg[j], og[j], tc[j]
			dtc := dh[j] * o
			d := dc2[j] + float32(dtc*float32(1-float32(t*t)))
			row[k] = float32(float32(d*g)*i) * (1 - i)
			row[hd+k] = float32(float32(d*c[j])*f) * (1 - f)
			row[2*hd+k] = float32(d*i) * (1 - float32(g*g))
			row[3*hd+k] = float32(float32(dh[j]*t)*o) * (1 - o)
			dc[j] = d * f
		}
	}
}
