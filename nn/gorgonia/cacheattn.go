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
	a := cacheAttention{rows: qs[0], slots: ks[1], dk: ks[2], dv: vs[2], pool: b.gemm}
	a.scale = float32(1 / math.Sqrt(float64(a.dk)))
	a.scratch = b.scratch(a.scratchLen())
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

// cacheAttention holds one CacheAttention node's sizes and scratch: the
// scores of a group of rows (attnGroup·slots floats) and a scaled query
// (dk).
type cacheAttention struct {
	rows, slots, dk, dv int
	scale               float32
	pool                *gemmPool
	scratch             []float32
}

// attnGroup is how many rows CacheAttention takes at a time: their
// softmaxes share rowSums' independent chains (softmaxInto groups rows by
// rowGroup) and their weighted sums wsum4x32's.
const attnGroup = rowGroup

func (a *cacheAttention) scratchLen() int { return attnGroup*a.slots + a.dk }

// run computes out [rows, dv] from q [rows, dk] and the caches k
// [rows, slots, dk], v [rows, slots, dv], over the first n slots, in
// groups of attnGroup rows, on the calling goroutine: the products stream
// the caches from memory, and splitting the rows across the two cores of
// the benchmark machine measured no faster (batch 32, 4 heads, 256 slots:
// 125 µs a layer on one core, 157 µs on two).
func (a *cacheAttention) run(q, k, v, out []float32, n int) {
	ws := a.pool.workspaces(1)[0]
	for r0 := 0; r0 < a.rows; r0 += attnGroup {
		a.group(ws, a.scratch, q, k, v, out, r0, min(r0+attnGroup, a.rows), n)
	}
}

// group computes rows [r0, r1) of run's output: each row's n scores into
// its row of buf, their softmaxes together, then the weighted sums.
func (a *cacheAttention) group(ws *gemmWorkspace, buf, q, k, v, out []float32, r0, r1, n int) {
	scores, qs := buf[:(r1-r0)*n], buf[attnGroup*a.slots:]
	for i := r0; i < r1; i++ {
		scaleInto(q[i*a.dk:(i+1)*a.dk], qs, a.scale)
		product(ws, false, true, 1, n, a.dk, qs, a.dk, k[i*a.slots*a.dk:], a.dk, scores[(i-r0)*n:], n)
	}
	softmaxInto(scores, scores, n)
	sv := a.slots * a.dv
	if r1-r0 == 4 && a.dv%32 == 0 && gemmUse == gemmAVX512 && !externalBLAS {
		for j := 0; j < a.dv; j += 32 {
			wsum4x32AVX512(n, &scores[0], n, &v[r0*sv+j], a.dv, sv, &out[r0*a.dv+j], a.dv)
		}
		return
	}
	for i := r0; i < r1; i++ {
		product(ws, false, false, 1, a.dv, n, scores[(i-r0)*n:], n, v[i*sv:], a.dv, out[i*a.dv:], a.dv)
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
