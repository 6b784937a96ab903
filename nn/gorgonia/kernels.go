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
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	switch {
	case externalBLAS:
		sa, sb, sc := m*k, k*n, m*n
		for i := range batch {
			blasSgemm(transA, transB, m, n, k, a[i*sa:(i+1)*sa], lda, b[i*sb:(i+1)*sb], ldb, c[i*sc:(i+1)*sc], n, acc)
		}
	case batch == 1:
		pool.sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, n, acc)
	default:
		pool.sgemmBatch(transA, transB, batch, m, n, k, a, b, c)
	}
}

// blasSgemm is C = op(A)·op(B) (with acc, C += op(A)·op(B)) through
// G.WhichBLAS(), the external library of the openblas build tag.
func blasSgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	beta := float32(0)
	if acc {
		beta = 1
	}
	G.WhichBLAS().Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// binary applies a (op) b where b repeats every len(b) elements of a.
// Below 16 elements a block runs in Go (binaryGo), saving the calls.
func binary(kind byte, a, b, out []float32) {
	nb := len(b)
	vec := binaryVec
	if nb < 16 {
		vec = binaryGo
	}
	for off := 0; off < len(a); off += nb {
		vec(kind, a[off:off+nb], b, out[off:off+nb])
	}
}

// binaryVec sets out[j] = a[j] (op) b[j] for j < len(b): sixteen lanes at
// a time (AVX-512) or eight (AVX2) as gemmUse says, the rest in Go. Each
// element is one rounded operation with a first, the same bits on every
// path.
func binaryVec(kind byte, a, b, out []float32) {
	n := len(b)
	if n == 0 {
		return
	}
	a, out = a[:n], out[:n]
	var k512, k256 func(int, *float32, *float32, *float32)
	switch kind {
	case '+':
		k512, k256 = addAVX512, addAVX2
	case '-':
		k512, k256 = subAVX512, subAVX2
	case '*':
		k512, k256 = mulAVX512, mulAVX2
	default:
		panic("gorgonia: unknown binary kernel " + string(kind))
	}
	done := 0
	switch gemmUse {
	case gemmAVX512:
		k512(n, &a[0], &b[0], &out[0])
		return
	case gemmAVX2:
		if n8 := n / 8; n8 > 0 {
			k256(n8, &a[0], &b[0], &out[0])
			done = 8 * n8
		}
	}
	binaryGo(kind, a[done:], b[done:], out[done:])
}

// binaryGo is binaryVec element by element.
func binaryGo(kind byte, a, b, out []float32) {
	a, out = a[:len(b)], out[:len(b)]
	switch kind {
	default:
		panic("gorgonia: unknown binary kernel " + string(kind))
	case '+':
		for j, bv := range b {
			out[j] = a[j] + bv
		}
	case '-':
		for j, bv := range b {
			out[j] = a[j] - bv
		}
	case '*':
		for j, bv := range b {
			out[j] = a[j] * bv
		}
	}
}

// reduceLeading sums g over its leading blocks of len(out) elements:
// out[j] = scale · Σ_i g[i·len(out)+j]. It is the gradient of broadcasting.
func reduceLeading(g, out []float32, scale float32) {
	nb := len(out)
	copy(out, g[:nb])
	for off := nb; off < len(g); off += nb {
		binaryVec('+', out, g[off:off+nb], out)
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

// expInto sets out[i] = e^x[i] (x and out may be the same slice) with
// Cephes' expf (exp32) at width actLanes: sixteen lanes (expAVX512) or
// eight (expAVX2) at a time, the last len mod 16 or 8 included, or exp32
// element by element. All give the same bits, so an element's result
// depends neither on its index, nor on the slice's length, nor on the
// machine.
func expInto(x, out []float32) {
	checkOut("expInto", x, out)
	switch {
	case len(x) == 0:
	case actLanes == 16:
		expAVX512(len(x), &x[0], &out[0])
	case actLanes == 8:
		expInto8(x, out)
	default:
		for i, v := range x {
			out[i] = exp32(v)
		}
	}
}

// expInto8 is expInto with expAVX2, the tail padded to eight lanes.
func expInto8(x, out []float32) {
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

// tanhInto sets out[i] = tanh(x[i]) (x and out may be the same slice); see
// tanh32 and actLanes.
func tanhInto(x, out []float32) {
	checkOut("tanhInto", x, out)
	switch {
	case len(x) == 0:
	case actLanes == 16:
		tanhAVX512(len(x), &x[0], &out[0])
	case actLanes == 8:
		tanhAVX2(len(x), &x[0], &out[0])
	default:
		for i, v := range x {
			out[i] = tanh32(v)
		}
	}
}

// sigmoidInto sets out[i] = 1/(1+e^-x[i]) (x and out may be the same
// slice); see sigmoid32 and actLanes.
func sigmoidInto(x, out []float32) {
	checkOut("sigmoidInto", x, out)
	switch {
	case len(x) == 0:
	case actLanes == 16:
		sigmoidAVX512(len(x), &x[0], &out[0])
	case actLanes == 8:
		sigmoidAVX2(len(x), &x[0], &out[0])
	default:
		for i, v := range x {
			out[i] = sigmoid32(v)
		}
	}
}

func checkOut(name string, x, out []float32) {
	if len(out) < len(x) {
		panic(fmt.Sprintf("gorgonia: %s: %d outputs for %d inputs", name, len(out), len(x)))
	}
}

// reluInto computes max(x, 0) as v > 0 ? v : 0 does (NaN, -0 and
// negatives give +0), branch-free: on the bits u of v, v > 0 exactly when
// u-1 < 0x7f800000 (u in (0, +Inf]), a test the compiler turns into a
// conditional move. Profiling a Transformer step showed the branch, taken
// at random for half the elements, mispredicted at ~10% of the step.
func reluInto(x, out []float32) { positiveSelect(x, x, out) }

// positiveSelect sets out[i] = u[i] where y[i] > 0, else +0: in the
// AVX-512 kernel (the same test on the bits, sixteen at a time) where the
// products run on AVX-512, else with positiveBits.
func positiveSelect(y, u, out []float32) {
	u, out = u[:len(y)], out[:len(y)]
	if gemmUse == gemmAVX512 && len(y) > 0 {
		positiveSelectAVX512(len(y), &y[0], &u[0], &out[0])
		return
	}
	for i, v := range y {
		out[i] = math.Float32frombits(positiveBits(math.Float32bits(v), math.Float32bits(u[i])))
	}
}

// positiveBits returns u when y's bits mark y > 0 (see reluInto), else 0.
func positiveBits(y, u uint32) uint32 {
	if y-1 >= 0x7f800000 {
		u = 0
	}
	return u
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
func reluGrad(y, g, out []float32) { positiveSelect(y, g, out) }

// transposeInto permutes the axes of src (shape) into dst like
// numpy.transpose(src, perm): by rows of the output's last axis, copied
// whole where that axis stays the input's last, or, where the output's
// last two axes are the input's last two swapped (a matrix transpose,
// such as a recurrent weight's W_hhᵀ), by planes in strips (transposePlane).
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
	last := r - 1
	inner, innerStride := outShape[last], stride[last]
	unit := func(o, off int) { // one row of the output's last axis
		row := dst[o : o+inner]
		if innerStride == 1 { // the last axis stays last: whole rows
			copy(row, src[off:off+inner])
			return
		}
		for j := range row {
			row[j] = src[off]
			off += innerStride
		}
	}
	if r >= 2 && innerStride != 1 && stride[last-1] == 1 {
		rows := outShape[last-1]
		last--
		inner *= rows
		unit = func(o, off int) { transposePlane(dst[o:o+inner], src[off:], rows, outShape[r-1], innerStride) }
	}
	idx := make([]int, r)
	off := 0 // input offset of idx
	for o := 0; o < len(dst); o += inner {
		unit(o, off)
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

// transposePlane sets dst[i·cols+j] = src[j·ld+i] for i < rows, j < cols,
// in strips of 8 output rows: each source row gives 8 adjacent values,
// one to each row of the strip, whose ends stay in cache (measured 3×
// faster than 16×16 tiles for a 2048×512 weight).
func transposePlane[T any](dst, src []T, rows, cols, ld int) {
	i0 := 0
	for ; i0+8 <= rows; i0 += 8 {
		d0, d1, d2, d3 := dst[i0*cols:], dst[(i0+1)*cols:], dst[(i0+2)*cols:], dst[(i0+3)*cols:]
		d4, d5, d6, d7 := dst[(i0+4)*cols:], dst[(i0+5)*cols:], dst[(i0+6)*cols:], dst[(i0+7)*cols:(i0+8)*cols]
		for j := range d7 {
			v := (*[8]T)(src[j*ld+i0:])
			d0[j], d1[j], d2[j], d3[j], d4[j], d5[j], d6[j], d7[j] = v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		}
	}
	for i := i0; i < rows; i++ {
		row := dst[i*cols : (i+1)*cols]
		for j := range row {
			row[j] = src[j*ld+i]
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
// (the sum in float64). Like logSoftmaxInto it works four rows at a
// time, while they are in cache.
func softmaxInto(x, out []float32, d int) {
	for off := 0; off < len(x); off += rowGroup * d {
		n := min(rowGroup, (len(x)-off)/d)
		for r := range n {
			xr, or := x[off+r*d:off+(r+1)*d], out[off+r*d:off+(r+1)*d]
			subSub(xr, rowMax(xr), 0, or)
			expInto(or, or)
		}
		s := rowSums(out[off:], d, n)
		for r := range n {
			or := out[off+r*d : off+(r+1)*d]
			inv := float32(1 / s[r])
			for j := range or {
				or[j] *= inv
			}
		}
	}
}

// rowGroup is how many rows the softmax kernels take at a time: their
// float64 sums, each one chain of additions in order, run as that many
// independent chains (rowSums), which the CPU overlaps (one chain waits
// on every addition: profiling showed those sums as most of the log
// softmax of a language model head).
const rowGroup = 4

// rowSums returns, for each of the n ≤ rowGroup rows of length d at the
// start of x, Σ_j float64(row[j]) added in order from j = 0, exactly as
// one loop over the row alone adds them.
func rowSums(x []float32, d, n int) [rowGroup]float64 {
	switch n {
	case 1:
		var s0 float64
		for _, v := range x[:d] {
			s0 += float64(v)
		}
		return [rowGroup]float64{s0}
	case 2:
		r0, r1 := x[:d], x[d:2*d]
		var s0, s1 float64
		for j, v := range r0 {
			s0 += float64(v)
			s1 += float64(r1[j])
		}
		return [rowGroup]float64{s0, s1}
	case 3:
		r0, r1, r2 := x[:d], x[d:2*d], x[2*d:3*d]
		var s0, s1, s2 float64
		for j, v := range r0 {
			s0 += float64(v)
			s1 += float64(r1[j])
			s2 += float64(r2[j])
		}
		return [rowGroup]float64{s0, s1, s2}
	}
	r0, r1, r2, r3 := x[:d], x[d:2*d], x[2*d:3*d], x[3*d:4*d]
	var s0, s1, s2, s3 float64
	for j, v := range r0 {
		s0 += float64(v)
		s1 += float64(r1[j])
		s2 += float64(r2[j])
		s3 += float64(r3[j])
	}
	return [rowGroup]float64{s0, s1, s2, s3}
}

// subSub sets out[j] = (x[j] - a) - b, each difference rounded (with b =
// 0 that is x[j] - a bit for bit): sixteen lanes at a time on the AVX-512
// path, else in Go.
func subSub(x []float32, a, b float32, out []float32) {
	if len(x) == 0 {
		return
	}
	out = out[:len(x)]
	if gemmUse == gemmAVX512 {
		subSubAVX512(len(x), &x[0], a, b, &out[0])
		return
	}
	for j, v := range x {
		out[j] = (v - a) - b
	}
}

// subMul sets out[j] = g[j] - e[j]·s, the product rounded before the
// difference (out may be e): sixteen lanes at a time on the AVX-512
// path, else in Go.
func subMul(g, e []float32, s float32, out []float32) {
	if len(g) == 0 {
		return
	}
	e, out = e[:len(g)], out[:len(g)]
	if gemmUse == gemmAVX512 {
		subMulAVX512(len(g), &g[0], &e[0], s, &out[0])
		return
	}
	for j, v := range e {
		out[j] = g[j] - float32(v*s)
	}
}

// rowMax returns the first of the largest elements of xr (NaN where xr[0]
// is NaN; other NaNs are skipped), as rowMaxSerial does, but with
// branch-free maxima of interleaved elements (the serial loop waits on, or
// mispredicts, each compare): sixteen lanes of VMAXPS on the AVX-512
// path, else four in Go. They can disagree with it only where some
// element is NaN (max propagates it; VMAXPS reports it) or the maximum is
// zero (+0 and -0 compare equal); there rowMaxSerial decides.
func rowMax(xr []float32) float32 {
	if gemmUse == gemmAVX512 {
		m, nan := rowMaxAVX512(len(xr), &xr[0])
		if nan || m == 0 {
			return rowMaxSerial(xr)
		}
		return m
	}
	m0 := xr[0]
	m1, m2, m3 := m0, m0, m0
	rest := xr[1:]
	for ; len(rest) >= 4; rest = rest[4:] {
		m0, m1, m2, m3 = max(m0, rest[0]), max(m1, rest[1]), max(m2, rest[2]), max(m3, rest[3])
	}
	for _, v := range rest {
		m0 = max(m0, v)
	}
	m := max(m0, m1, m2, m3)
	if m != m || m == 0 {
		return rowMaxSerial(xr)
	}
	return m
}

func rowMaxSerial(xr []float32) float32 {
	m := xr[0]
	for _, v := range xr[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

// logSoftmaxInto computes out = (x - max) - log Σexp(x-max) per row of
// length d, rowGroup rows at a time (the exponentials go through out
// first; an element's exponential does not depend on the slice it is in,
// see expInto).
func logSoftmaxInto(x, out []float32, d int) {
	for off := 0; off < len(x); off += rowGroup * d {
		n := min(rowGroup, (len(x)-off)/d)
		var m [rowGroup]float32
		for r := range n {
			xr, or := x[off+r*d:off+(r+1)*d], out[off+r*d:off+(r+1)*d]
			m[r] = rowMax(xr)
			subSub(xr, m[r], 0, or)
			expInto(or, or)
		}
		s := rowSums(out[off:], d, n)
		for r := range n {
			// (x-max) is exact for nearby values; subtracting max+log s at
			// once would round at the magnitude of max.
			ls := float32(math.Log(s[r]))
			subSub(x[off+r*d:off+(r+1)*d], m[r], ls, out[off+r*d:off+(r+1)*d])
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

// logSoftmaxGrad: dx = g - exp(y)·Σg per row, y = log softmax(x),
// rowGroup rows at a time (see rowSums).
func logSoftmaxGrad(y, g, out []float32, d int) {
	for off := 0; off < len(y); off += rowGroup * d {
		n := min(rowGroup, (len(y)-off)/d)
		for r := range n {
			expInto(y[off+r*d:off+(r+1)*d], out[off+r*d:off+(r+1)*d])
		}
		s := rowSums(g[off:], d, n)
		for r := range n {
			or := out[off+r*d : off+(r+1)*d]
			subMul(g[off+r*d:off+(r+1)*d], or, float32(s[r]), or)
		}
	}
}

// groupStats returns the mean and 1/sqrt(var+eps) (biased variance) of
// each of the n ≤ rowGroup rows of length d at the start of x: a row's sum
// added in order from its first element, then its squared deviations from
// the mean added in order, in float64, the rows' sums run as independent
// chains (rowSums, rowSqDevs): one row's two chains of float64 additions
// left the layer norm waiting on every addition (profiled at 10% of a
// Transformer's training step).
func groupStats(x []float32, d, n int, eps float32) (mean, rstd [rowGroup]float32) {
	s := rowSums(x, d, n)
	var mu [rowGroup]float64
	for r := range n {
		mu[r] = s[r] / float64(d)
	}
	ss := rowSqDevs(x, d, n, mu)
	for r := range n {
		mean[r] = float32(mu[r])
		rstd[r] = float32(1 / math.Sqrt(ss[r]/float64(d)+float64(eps)))
	}
	return mean, rstd
}

// rowSqDevs returns Σ_j (float64(row_r[j]) − mu[r])² for each of the n ≤
// rowGroup rows of length d at the start of x, added in order from j = 0,
// four rows as four independent chains.
func rowSqDevs(x []float32, d, n int, mu [rowGroup]float64) [rowGroup]float64 {
	var s [rowGroup]float64
	if n < rowGroup {
		for r := range n {
			m := mu[r]
			var sr float64
			for _, v := range x[r*d : (r+1)*d] {
				dv := float64(v) - m
				sr += dv * dv
			}
			s[r] = sr
		}
		return s
	}
	r0, r1, r2, r3 := x[:d], x[d:2*d], x[2*d:3*d], x[3*d:4*d]
	var s0, s1, s2, s3 float64
	for j, v := range r0 {
		d0, d1 := float64(v)-mu[0], float64(r1[j])-mu[1]
		d2, d3 := float64(r2[j])-mu[2], float64(r3[j])-mu[3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	return [rowGroup]float64{s0, s1, s2, s3}
}

// forRows calls f for each row of length d of x, from its offset off (in
// elements), with the row's mean and 1/sqrt(var+eps), the statistics
// taken rowGroup rows at a time (groupStats).
func forRows(x []float32, d int, eps float32, f func(off int, mu, rs float32)) {
	for off := 0; off < len(x); off += rowGroup * d {
		n := min(rowGroup, (len(x)-off)/d)
		mean, rstd := groupStats(x[off:], d, n, eps)
		for r := range n {
			f(off+r*d, mean[r], rstd[r])
		}
	}
}

// layerNormInto computes y = (x-mean)/sqrt(var+eps)·gamma + beta over rows
// of length len(gamma) (Ba et al. 2016, "Layer Normalization").
func layerNormInto(x, gamma, beta, out []float32, eps float32) {
	d := len(gamma)
	forRows(x, d, eps, func(off int, mu, rs float32) {
		xr, or := x[off:off+d], out[off:off+d]
		for j, v := range xr {
			or[j] = (v-mu)*rs*gamma[j] + beta[j]
		}
	})
}

// layerNormGradX: with x̂ the normalised row and ĝ = g·gamma,
// dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)).
func layerNormGradX(x, gamma, g, out []float32, eps float32) {
	d := len(gamma)
	fd := float64(d)
	forRows(x, d, eps, func(off int, mu, rs float32) {
		xr, gr, or := x[off:off+d], g[off:off+d], out[off:off+d]
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
	})
}

// layerNormGradGamma: dgamma = Σ_rows g·x̂.
func layerNormGradGamma(x, g, out []float32, eps float32) {
	d := len(out)
	clear(out)
	forRows(x, d, eps, func(off int, mu, rs float32) {
		xr, gr := x[off:off+d], g[off:off+d]
		for j, v := range xr {
			out[j] += gr[j] * (v - mu) * rs
		}
	})
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
		binaryVec('+', out, src, out)
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
			binaryVec('+', dst, src[o*width:(o+1)*width], dst)
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

// The activation kernels (expInto, tanhInto, sigmoidInto) have assembly
// versions of eight lanes (AVX2 and FMA) and of sixteen (AVX-512 F) in
// act_amd64.s (the eight-lane exponential is in sgemm_amd64.s). The
// functions below are their scalar lanes in Go, operation for operation:
// every fused multiply-add of the assembly is an fma32 here, every other
// product or sum is rounded to float32 on its own (explicit conversions
// keep the compiler from fusing it), and the clamps keep a NaN operand as
// VMINPS and VMAXPS do with the constant first. So all versions give the
// same bits for every input (NaN results are NaN, their payload
// unspecified), which the tests check, and a machine's results do not
// depend on which of them it has. The Go lanes are slower (about 20 ns an
// element, 3 times math.Exp's) and run only without AVX2.

// Constants of Cephes' expf (Moshier 1989): the clamp bounds (e^expHi is
// just below 2^127.5), log2 e, ln 2 in two parts (Cody and Waite) and the
// polynomial P of exp32; the polynomial of Cephes' tanhf for |x| < 0.625.
const (
	expHi   = 88.3762626647949
	expLo   = -expHi
	log2e   = 1.44269504088896341
	expC1   = 0.693359375
	expC2   = -2.12194440e-4
	expP0   = 1.9875691500e-4
	expP1   = 1.3981999507e-3
	expP2   = 8.3334519073e-3
	expP3   = 4.1665795894e-2
	expP4   = 1.6666665459e-1
	tanhP0  = -5.70498872745e-3
	tanhP1  = 2.06390887954e-2
	tanhP2  = -5.37397155531e-2
	tanhP3  = 1.33314422036e-1
	tanhP4  = -3.33332819422e-1
	signBit = 1 << 31
)

// actLanes is the width of expInto, tanhInto and sigmoidInto: 16
// (AVX-512), 8 (AVX2 and FMA) or 1 (exp32, tanh32 and sigmoid32). All three
// give the same bits; only tests change it.
var actLanes = func() int {
	switch {
	case actAVX512:
		return 16
	case haveAVX2FMA:
		return 8
	}
	return 1
}()

// exp32 is one lane of expAVX2 (relative error below 2e-7): x clamped to
// [expLo, expHi], expCore, and +Inf for x > expHi. Below expLo the result
// is 0 (e^x < 2^-126 there; see expCore); NaN stays NaN.
func exp32(x float32) float32 {
	c := x
	if expHi < c {
		c = expHi
	}
	if expLo > c {
		c = expLo
	}
	if x > expHi {
		return float32(math.Inf(1))
	}
	return expCore(c)
}

// expCore returns e^x for x in [expLo, expHi] (or NaN): with n = ⌊x·log2 e
// + 1/2⌋ and r = x - n·ln 2, e^x = 2^n·(1 + r + r²·P(r)), P of degree 5.
// 2^n is built in the exponent field; at n = -127 (x near expLo) that is
// 0, which flushes the results below 2^-126 to 0.
func expCore(x float32) float32 {
	fx := float32(math.Floor(float64(fma32(x, log2e, 0.5))))
	r := fma32(-fx, expC1, x)
	r = fma32(-fx, expC2, r)
	z := float32(r * r)
	y := fma32(fma32(fma32(fma32(fma32(expP0, r, expP1), r, expP2), r, expP3), r, expP4), r, 0.5)
	y = fma32(y, z, r) + 1
	return float32(y * math.Float32frombits(uint32(int32(fx+127))<<23))
}

// tanh32 is one lane of tanhInto, on a = |x| with the sign of x applied at
// the end (so tanh(-0) = -0): for a ≥ 0.625, 1 - 2/(e^{2a}+1), 2a clamped
// to expHi (beyond, the quotient is below 2^-126 and the result 1 either
// way); below, Cephes' tanhf polynomial a + a³·P(a²), where the exponential
// form would cancel. Relative error at most 1.33 ulp (measured on every
// float32). The assembly computes both forms and selects one; here only
// that one is computed.
func tanh32(x float32) float32 {
	a := math.Float32frombits(math.Float32bits(x) &^ signBit)
	var t float32
	if a < 0.625 {
		z := float32(a * a)
		p := fma32(fma32(fma32(fma32(tanhP0, z, tanhP1), z, tanhP2), z, tanhP3), z, tanhP4)
		t = fma32(float32(p*z), a, a)
	} else {
		c := a + a
		if expHi < c {
			c = expHi
		}
		t = 1 - 2/(expCore(c)+1)
	}
	return math.Float32frombits(math.Float32bits(t) ^ math.Float32bits(x)&signBit)
}

// sigmoid32 is one lane of sigmoidInto: 1/(1+e^-x) with exp32, so e^-x
// overflows to +Inf (giving 0) for x < -expHi and is 0 (giving 1) for
// x > expHi. Relative error at most 2.49 ulp wherever σ(x) ≥ 2^-126, that
// is x > -87.34 (measured on every float32); below, 0 ≤ σ(x) < 2^-126.
func sigmoid32(x float32) float32 {
	return 1 / (1 + exp32(-x))
}

// fma32 returns x·y+z rounded once to float32, as VFMADD…PS does.
// float32(math.FMA(…)) would round twice, through float64.
func fma32(x, y, z float32) float32 {
	p := float64(x) * float64(y) // exact: at most 48 significant bits
	s := p + float64(z)
	// Rounding s to float32 differs from rounding x·y+z once only where s
	// lies exactly halfway between two float32 values, its low 29 bits 1
	// and zeros, but x·y+z does not, or where |s| < 2^-126 (exponent field
	// below 0x381) and the result is subnormal.
	if b := math.Float64bits(s); b&(1<<29-1) != 1<<28 && b&^(1<<63) >= 0x381<<52 {
		return float32(s)
	}
	return fma32Slow(p, float64(z), s)
}

// fma32Slow rounds p+z, of which s is the float64 sum, to float32 through
// rounding to odd (Boldo and Melquiond 2008): s moved one float64 ulp
// towards p+z where s is even and inexact, then rounded to float32.
func fma32Slow(p, z, s float64) float32 {
	t := s - p
	e := (p - (s - t)) + (z - t) // p+z = s+e exactly (Knuth's TwoSum)
	b := math.Float64bits(s)
	if e != 0 && b&1 == 0 && !math.IsInf(s, 0) {
		if (e > 0) == (s > 0) {
			b++
		} else {
			b--
		}
	}
	return float32(math.Float64frombits(b))
}
