package gorgonia

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"arbench/nn"
)

var _ nn.CacheAttender = (*builder)(nil)

// CacheAttention is nn.CacheAttender's attention of one query per row over
// the first n slots of a key/value cache, in one node: for each of the N
// rows, the query scaled by 1/√dk (as the Scale node of the composition),
// its products with keys 0..n-1 (dotNT, as BatchMatMul with transB),
// the softmax over those n scores (softmaxInto) and their weighted sum of
// values 0..n-1 (the packed product). The composition computes the same
// over all C slots under the mask; every masked slot's weight is exactly 0,
// the softmax's sum adds it as +0, and the weighted sum's multiply-add
// chain over the slots adds it last as +0, so on this backend's GEMM the
// two agree bit for bit (TestCacheAttentionEqualsComposition), and cached
// decoding keeps equalling re-feeding. What it saves are the C-n empty
// slots (on average a quarter of a power-of-two capacity), five nodes per
// layer, and the m = 1 products' padding to a 6-row register tile.
func (b *builder) CacheAttention(q, k, v, n nn.Tensor) nn.Tensor {
	h := b.check("CacheAttention", q, k, v, n)
	qs, ks, vs := h[0].shape, h[1].shape, h[2].shape
	if h[0].isInt || h[1].isInt || h[2].isInt || !h[3].isInt || len(qs) != 3 || len(ks) != 3 || len(vs) != 3 ||
		qs[1] != 1 || ks[0] != qs[0] || ks[2] != qs[2] || vs[0] != qs[0] || vs[1] != ks[1] || sizeOf(h[3].shape) != 1 {
		panic(fmt.Sprintf("gorgonia: CacheAttention: q %v, k %v, v %v, n %v, want float [N 1 dk], [N C dk], [N C dv] and one int",
			qs, ks, vs, h[3].shape))
	}
	a := newCacheAttention(qs[0], ks[1], ks[2], vs[2], b.gemm, b.scratch)
	return b.apply("CacheAttention", []int{a.rows, 1, a.dv}, false, h,
		func(in []G.Value, out *tensor.Dense) error {
			filled := ints(in[3])[0]
			if filled < 1 || filled > a.slots {
				return fmt.Errorf("gorgonia: CacheAttention: %d filled slots of a cache of %d", filled, a.slots)
			}
			a.run(f32(in[0]), f32(in[1]), f32(in[2]), out.Float32s(), filled)
			return nil
		}, nil)
}

// cacheAttention holds one CacheAttention node's sizes, its split into
// pieces of per rows on the crew (pieces = 1: serial), and each piece's
// scratch: the scores of a group of rows (attnGroup·slots floats) and a
// scaled query (dk). q, k, v, out and n are the operands of the run in
// progress, for the crew's pieces.
type cacheAttention struct {
	rows, slots, dk, dv int
	scale               float32
	pool                *gemmPool
	per, pieces         int
	scratch             []float32
	q, k, v, out        []float32
	n                   int
}

var _ crewJob = (*cacheAttention)(nil)

// newCacheAttention returns the attention of rows queries over caches of
// slots slots, split into pieces of an even number of rows on the crew
// from 2 up to crewRows rows, its scratch from scratch and a workspace of
// pool for each piece.
func newCacheAttention(rows, slots, dk, dv int, pool *gemmPool, scratch func(n int) []float32) *cacheAttention {
	a := &cacheAttention{rows: rows, slots: slots, dk: dk, dv: dv, pool: pool, per: rows, pieces: 1}
	a.scale = float32(1 / math.Sqrt(float64(dk)))
	if cr := sharedCrew(); cr != nil && rows >= 2 && rows <= crewRows {
		a.per = roundUp((rows+cr.size-1)/cr.size, 2)
		a.pieces = (rows + a.per - 1) / a.per
	}
	a.scratch = scratch(a.pieces * a.scratchLen())
	pool.workspaces(a.pieces)
	return a
}

// attnGroup is how many rows CacheAttention takes at a time: their
// softmaxes share rowSums' independent chains (softmaxInto groups rows by
// rowGroup) and their weighted sums wsum4x32's.
const attnGroup = rowGroup

func (a *cacheAttention) scratchLen() int { return attnGroup*a.slots + a.dk }

// run computes out [rows, dv] from q [rows, dk] and the caches k
// [rows, slots, dk], v [rows, slots, dv], over the first n slots. Up to
// crewRows rows (a decoding step of a small batch) it runs in pieces of
// rows on the crew: piece i always reads the same rows' caches, which stay
// in worker i's L2 cache from one step to the next (batch 1 of the quick
// Transformer: 4 heads × up to 288 slots × 64 floats a layer). Larger
// batches stream their caches from memory, where splitting the rows
// measured no faster (batch 32, 4 heads, 256 slots: 125 µs a layer on one
// core, 157 µs on two). Every row is computed alike on either path.
func (a *cacheAttention) run(q, k, v, out []float32, n int) {
	if a.pieces > 1 {
		a.q, a.k, a.v, a.out, a.n = q, k, v, out, n
		ok := sharedCrew().run(a.pieces, a)
		// Drop the operands: k and v are a generation state's caches.
		a.q, a.k, a.v, a.out = nil, nil, nil, nil
		if ok {
			return
		}
	}
	a.rowsOf(0, q, k, v, out, 0, a.rows, n)
}

// piece computes rows [i·per, (i+1)·per) of the run in progress (crewJob).
func (a *cacheAttention) piece(i int) {
	a.rowsOf(i, a.q, a.k, a.v, a.out, i*a.per, min((i+1)*a.per, a.rows), a.n)
}

// rowsOf computes rows [r0, r1) in groups of attnGroup with piece i's
// workspace and scratch.
func (a *cacheAttention) rowsOf(i int, q, k, v, out []float32, r0, r1, n int) {
	ws, buf := a.pool.ws[i], a.scratch[i*a.scratchLen():(i+1)*a.scratchLen()]
	for g := r0; g < r1; g += attnGroup {
		a.group(ws, buf, q, k, v, out, g, min(g+attnGroup, r1), n)
	}
}

// group computes rows [r0, r1) of run's output: each row's n scores into
// its row of buf, their softmaxes together, then the weighted sums, four
// or two rows at a time where the value width is a multiple of 32 on
// AVX-512 (wsum4x32AVX512, wsum2x32AVX512), else one at a time.
func (a *cacheAttention) group(ws *gemmWorkspace, buf, q, k, v, out []float32, r0, r1, n int) {
	scores, qs := buf[:(r1-r0)*n], buf[attnGroup*a.slots:]
	for i := r0; i < r1; i++ {
		scaleInto(q[i*a.dk:(i+1)*a.dk], qs, a.scale)
		product(ws, false, true, 1, n, a.dk, qs, a.dk, k[i*a.slots*a.dk:], a.dk, scores[(i-r0)*n:], n)
	}
	softmaxInto(scores, scores, n)
	sv := a.slots * a.dv
	wide := a.dv%32 == 0 && gemmUse == gemmAVX512 && !externalBLAS
	for i := r0; i < r1; {
		w, vi, oi := scores[(i-r0)*n:], v[i*sv:], out[i*a.dv:]
		switch {
		case wide && r1-i >= 4:
			for j := 0; j < a.dv; j += 32 {
				wsum4x32AVX512(n, &w[0], n, &vi[j], a.dv, sv, &oi[j], a.dv)
			}
			i += 4
		case wide && r1-i >= 2:
			for j := 0; j < a.dv; j += 32 {
				wsum2x32AVX512(n, &w[0], n, &vi[j], a.dv, sv, &oi[j], a.dv)
			}
			i += 2
		default:
			product(ws, false, false, 1, a.dv, n, w, n, vi, a.dv, oi, a.dv)
			i++
		}
	}
}

// product is C = op(A)·op(B) on the calling goroutine, through the
// library the backend's products use (see gemm).
func product(ws *gemmWorkspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if externalBLAS {
		blasSgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, false)
		return
	}
	gemmSerial(ws, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, false)
}
