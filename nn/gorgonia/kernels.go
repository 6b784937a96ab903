package gorgonia

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
)

// This file holds the numeric kernels. They read inputs, write a caller
// owned output completely (never accumulate into stale contents) and never
// write into their inputs.

// gemm computes c = op(a)·op(b) for dense row-major operands, batch
// products at a time (a, b, c hold batch consecutive matrices), with this
// package's GEMM (sgemm.go) or, with the openblas build tag, OpenBLAS. With
// acc (batch 1 only) it adds the product to c instead.
func gemm(pool *gemmPool, transA, transB bool, batch, m, n, k int, a, b, c []float32, acc bool) {
	if acc && batch != 1 {
		panic("gorgonia: accumulating batched product")
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	lda, ldb := k, n
	if transA {
		ta, lda = blas.Trans, m
	}
	if transB {
		tb, ldb = blas.Trans, k
	}
	switch {
	case externalBLAS:
		beta := float32(0)
		if acc {
			beta = 1
		}
		sa, sb, sc := m*k, k*n, m*n
		for i := range batch {
			G.WhichBLAS().Sgemm(ta, tb, m, n, k, 1, a[i*sa:(i+1)*sa], lda, b[i*sb:(i+1)*sb], ldb, beta, c[i*sc:(i+1)*sc], n)
		}
	case batch == 1:
		pool.sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, n, acc)
	default:
		pool.sgemmBatch(transA, transB, batch, m, n, k, a, b, c)
	}
}

// binary applies a (op) b where b repeats every len(b) elements of a.
func binary(kind byte, a, b, out []float32) {
	nb := len(b)
	for off := 0; off < len(a); off += nb {
		ao, oo := a[off:off+nb], out[off:off+nb]
		switch kind {
		case '+':
			for j, bv := range b {
				oo[j] = ao[j] + bv
			}
		case '-':
			for j, bv := range b {
				oo[j] = ao[j] - bv
			}
		case '*':
			for j, bv := range b {
				oo[j] = ao[j] * bv
			}
		default:
			panic("gorgonia: unknown binary kernel " + string(kind))
		}
	}
}

// reduceLeading sums g over its leading blocks of len(out) elements:
// out[j] = scale · Σ_i g[i·len(out)+j]. It is the gradient of broadcasting.
func reduceLeading(g, out []float32, scale float32) {
	nb := len(out)
	copy(out, g[:nb])
	for off := nb; off < len(g); off += nb {
		gg := g[off : off+nb]
		for j, v := range gg {
			out[j] += v
		}
	}
	if scale != 1 {
		for j := range out {
			out[j] *= scale
		}
	}
}

// mulReduce computes out[j] = Σ_i g[i·n+j]·a[i·n+j] with n = len(out): the
// gradient of a broadcast second factor.
func mulReduce(g, a, out []float32) {
	nb := len(out)
	clear(out)
	for off := 0; off < len(g); off += nb {
		gg, aa := g[off:off+nb], a[off:off+nb]
		for j, v := range gg {
			out[j] += v * aa[j]
		}
	}
}

func scaleInto(x, out []float32, s float32) {
	for i, v := range x {
		out[i] = s * v
	}
}

// expInto sets out[i] = e^x[i] (x and out may be the same slice). With
// AVX2 every element, the last len mod 8 included, goes through the same
// eight-lane code (expAVX2), so an element's result never depends on its
// index or on the slice's length; otherwise math.Exp is used.
func expInto(x, out []float32) {
	if len(out) < len(x) {
		panic(fmt.Sprintf("gorgonia: expInto: %d outputs for %d inputs", len(out), len(x)))
	}
	if !haveAVX2FMA {
		for i, v := range x {
			out[i] = float32(math.Exp(float64(v)))
		}
		return
	}
	n8 := len(x) / 8
	if n8 > 0 {
		expAVX2(n8, &x[0], &out[0])
	}
	if r := len(x) - 8*n8; r > 0 {
		var t [8]float32
		copy(t[:], x[8*n8:])
		expAVX2(1, &t[0], &t[0])
		copy(out[8*n8:len(x)], t[:r])
	}
}

// tanhInto computes tanh(x) = 1 - 2/(e^{2x}+1) for |x| ≥ 0.625 (odd
// symmetry for x < 0) and Cephes' tanhf polynomial x + x³·P(x²) below,
// where the exponential form would cancel.
func tanhInto(x, out []float32) {
	for i, v := range x {
		out[i] = 2 * float32(math.Abs(float64(v)))
	}
	expInto(out[:len(x)], out)
	for i, v := range x {
		a := float32(math.Abs(float64(v)))
		if a < 0.625 {
			z := v * v
			out[i] = ((((-5.70498872745e-3*z+2.06390887954e-2)*z-5.37397155531e-2)*z+1.33314422036e-1)*z-3.33332819422e-1)*z*v + v
			continue
		}
		t := 1 - 2/(out[i]+1)
		if v < 0 {
			t = -t
		}
		out[i] = t
	}
}

// sigmoidInto computes 1/(1+e^-x); e^-x overflows to +Inf (giving 0) for
// very negative x and underflows to 0 (giving 1) for large x.
func sigmoidInto(x, out []float32) {
	for i, v := range x {
		out[i] = -v
	}
	expInto(out[:len(x)], out)
	for i := range x {
		out[i] = 1 / (1 + out[i])
	}
}

func reluInto(x, out []float32) {
	for i, v := range x {
		if v > 0 {
			out[i] = v
		} else {
			out[i] = 0
		}
	}
}

// tanhGrad: dx = g·(1-y²) with y = tanh(x).
func tanhGrad(y, g, out []float32) {
	for i, v := range y {
		out[i] = g[i] * (1 - v*v)
	}
}

// sigmoidGrad: dx = g·y·(1-y) with y = σ(x).
func sigmoidGrad(y, g, out []float32) {
	for i, v := range y {
		out[i] = g[i] * v * (1 - v)
	}
}

// reluGrad: dx = g where y > 0, else 0.
func reluGrad(y, g, out []float32) {
	for i, v := range y {
		if v > 0 {
			out[i] = g[i]
		} else {
			out[i] = 0
		}
	}
}

// transposeInto permutes the axes of src (shape) into dst like
// numpy.transpose(src, perm).
func transposeInto[T any](src, dst []T, shape, perm []int) {
	r := len(shape)
	inStride := make([]int, r)
	s := 1
	for d := r - 1; d >= 0; d-- {
		inStride[d] = s
		s *= shape[d]
	}
	outShape := make([]int, r)
	stride := make([]int, r) // input stride of each output axis
	for d, p := range perm {
		outShape[d] = shape[p]
		stride[d] = inStride[p]
	}
	if r == 0 {
		copy(dst, src)
		return
	}
	idx := make([]int, r)
	last := r - 1
	inner, innerStride := outShape[last], stride[last]
	off := 0 // input offset of idx
	for o := 0; o < len(dst); o += inner {
		p := off
		row := dst[o : o+inner]
		for j := range row {
			row[j] = src[p]
			p += innerStride
		}
		// advance idx over the outer axes
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			off += stride[d]
			if idx[d] < outShape[d] {
				break
			}
			off -= stride[d] * outShape[d]
			idx[d] = 0
		}
	}
}

// sliceInto copies [start,end) of the middle axis of src viewed as
// [outer, n, inner] into dst [outer, end-start, inner].
func sliceInto[T any](src, dst []T, outer, n, inner, start, end int) {
	w := (end - start) * inner
	for o := 0; o < outer; o++ {
		copy(dst[o*w:(o+1)*w], src[(o*n+start)*inner:(o*n+end)*inner])
	}
}

// concatInto joins srcs, each viewed as [outer, ns[i], inner], along the
// middle axis.
func concatInto[T any](srcs [][]T, dst []T, outer int, ns []int, inner int) {
	total := 0
	for _, n := range ns {
		total += n
	}
	for o := 0; o < outer; o++ {
		p := o * total * inner
		for i, s := range srcs {
			w := ns[i] * inner
			copy(dst[p:p+w], s[o*w:(o+1)*w])
			p += w
		}
	}
}

// gatherInto copies rows ids of table [V,D] into out [N,D].
func gatherInto(table []float32, ids []int, out []float32, vocab, d int) error {
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return fmt.Errorf("id %d at position %d out of range [0,%d)", id, i, vocab)
		}
		copy(out[i*d:(i+1)*d], table[id*d:(id+1)*d])
	}
	return nil
}

// gatherGrad scatter-adds g [N,D] into out [V,D] (zeroed first), so repeated
// ids accumulate.
func gatherGrad(g []float32, ids []int, out []float32, d int) {
	clear(out)
	for i, id := range ids {
		row, gr := out[id*d:(id+1)*d], g[i*d:(i+1)*d]
		for j, v := range gr {
			row[j] += v
		}
	}
}

// pickInto sets out[i] = x[i, ids[i]] for x [N,V], or 0 when ids[i] < 0.
func pickInto(x []float32, ids []int, out []float32, v int) error {
	for i, id := range ids {
		switch {
		case id < 0:
			out[i] = 0
		case id >= v:
			return fmt.Errorf("id %d at row %d out of range [0,%d)", id, i, v)
		default:
			out[i] = x[i*v+id]
		}
	}
	return nil
}

// pickGrad writes g[i] at (i, ids[i]) of out [N,V] and zero elsewhere.
func pickGrad(g []float32, ids []int, out []float32, v int) {
	clear(out)
	for i, id := range ids {
		if id >= 0 {
			out[i*v+id] = g[i]
		}
	}
}

// softmaxInto normalises every row of length d: out = exp(x-max)/Σexp(x-max)
// (the sum in float64).
func softmaxInto(x, out []float32, d int) {
	for off := 0; off < len(x); off += d {
		xr, or := x[off:off+d], out[off:off+d]
		m := rowMax(xr)
		for j, v := range xr {
			or[j] = v - m
		}
	}
	expInto(out[:len(x)], out)
	for off := 0; off < len(x); off += d {
		or := out[off : off+d]
		var s float64
		for _, e := range or {
			s += float64(e)
		}
		inv := float32(1 / s)
		for j := range or {
			or[j] *= inv
		}
	}
}

func rowMax(xr []float32) float32 {
	m := xr[0]
	for _, v := range xr[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

// logSoftmaxInto computes out = (x - max) - log Σexp(x-max) per row of
// length d (the exponentials go through out first).
func logSoftmaxInto(x, out []float32, d int) {
	for off := 0; off < len(x); off += d {
		xr, or := x[off:off+d], out[off:off+d]
		m := rowMax(xr)
		for j, v := range xr {
			or[j] = v - m
		}
	}
	expInto(out[:len(x)], out)
	for off := 0; off < len(x); off += d {
		xr, or := x[off:off+d], out[off:off+d]
		var s float64
		for _, e := range or {
			s += float64(e)
		}
		// (x-max) is exact for nearby values; subtracting max+log s at once
		// would round at the magnitude of max.
		ls := float32(math.Log(s))
		m := rowMax(xr)
		for j, v := range xr {
			or[j] = (v - m) - ls
		}
	}
}

// softmaxGrad: dx = y·(g - Σ g·y) per row, y = softmax(x).
func softmaxGrad(y, g, out []float32, d int) {
	for off := 0; off < len(y); off += d {
		yr, gr, or := y[off:off+d], g[off:off+d], out[off:off+d]
		var dot float64
		for j, v := range yr {
			dot += float64(v * gr[j])
		}
		dt := float32(dot)
		for j, v := range yr {
			or[j] = v * (gr[j] - dt)
		}
	}
}

// logSoftmaxGrad: dx = g - exp(y)·Σg per row, y = log softmax(x).
func logSoftmaxGrad(y, g, out []float32, d int) {
	expInto(y, out)
	for off := 0; off < len(y); off += d {
		gr, or := g[off:off+d], out[off:off+d]
		var s float64
		for _, v := range gr {
			s += float64(v)
		}
		st := float32(s)
		for j, e := range or {
			or[j] = gr[j] - e*st
		}
	}
}

// rowStats returns the mean and 1/sqrt(var+eps) of a row (biased variance).
func rowStats(x []float32, eps float32) (mean, rstd float32) {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	mu := s / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mu
		ss += d * d
	}
	return float32(mu), float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
}

// layerNormInto computes y = (x-mean)/sqrt(var+eps)·gamma + beta over rows
// of length len(gamma) (Ba et al. 2016, "Layer Normalization").
func layerNormInto(x, gamma, beta, out []float32, eps float32) {
	d := len(gamma)
	for off := 0; off < len(x); off += d {
		xr, or := x[off:off+d], out[off:off+d]
		mu, rs := rowStats(xr, eps)
		for j, v := range xr {
			or[j] = (v-mu)*rs*gamma[j] + beta[j]
		}
	}
}

// layerNormGradX: with x̂ the normalised row and ĝ = g·gamma,
// dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)).
func layerNormGradX(x, gamma, g, out []float32, eps float32) {
	d := len(gamma)
	fd := float64(d)
	for off := 0; off < len(x); off += d {
		xr, gr, or := x[off:off+d], g[off:off+d], out[off:off+d]
		mu, rs := rowStats(xr, eps)
		var sg, sgx float64
		for j, v := range xr {
			gh := float64(gr[j] * gamma[j])
			sg += gh
			sgx += gh * float64((v-mu)*rs)
		}
		mg, mgx := float32(sg/fd), float32(sgx/fd)
		for j, v := range xr {
			xh := (v - mu) * rs
			or[j] = rs * (gr[j]*gamma[j] - mg - xh*mgx)
		}
	}
}

// layerNormGradGamma: dgamma = Σ_rows g·x̂.
func layerNormGradGamma(x, g, out []float32, eps float32) {
	d := len(out)
	clear(out)
	for off := 0; off < len(x); off += d {
		xr, gr := x[off:off+d], g[off:off+d]
		mu, rs := rowStats(xr, eps)
		for j, v := range xr {
			out[j] += gr[j] * (v - mu) * rs
		}
	}
}

// sumGrads writes the sum of gradient contributions into out: in[i] has
// out's size when wins[i] is nil, else it is added into window wins[i].
func sumGrads(in []G.Value, wins []*window, out []float32) {
	started := false
	for i, w := range wins {
		if w != nil {
			continue
		}
		src := f32(in[i])
		if !started {
			copy(out, src)
			started = true
			continue
		}
		for j, v := range src {
			out[j] += v
		}
	}
	if !started {
		clear(out)
	}
	for i, w := range wins {
		if w == nil {
			continue
		}
		src := f32(in[i])
		width := (w.end - w.start) * w.inner
		for o := 0; o < w.outer; o++ {
			dst := out[(o*w.n+w.start)*w.inner : (o*w.n+w.end)*w.inner]
			for j, v := range src[o*width : (o+1)*width] {
				dst[j] += v
			}
		}
	}
}

func sumOf(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return float32(s)
}

func fill(out []float32, v float32) {
	for i := range out {
		out[i] = v
	}
}
