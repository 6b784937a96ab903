package gorgonia

import (
	"fmt"
	"runtime"
)

// This file is the backend's own float32 matrix multiply: a packed,
// cache-blocked GEMM in the style of Goto & van de Geijn (2008, "Anatomy of
// high-performance matrix multiplication") and BLIS (Van Zee & van de Geijn
// 2015): C is computed in 6×16 register tiles by a micro-kernel (AVX2+FMA
// assembly on amd64, plain Go elsewhere) over panels of A and B packed
// into contiguous buffers, with blocks of kc = 256 along the inner
// dimension. It replaces gonum's pure-Go Sgemm, which profiling showed to
// be 80–85% of a training step and runs at roughly a tenth of the
// machine's float32 peak.
//
// Numerics: every element of C is one multiply-add chain over k in
// increasing order, started from zero; the k blocks continue the chain by
// loading the partial tile back into the accumulators. The value of C[i,j]
// therefore depends only on row i of op(A), column j of op(B) and k, never
// on m, n or the element's position in the tiling or among the workers.
// Incremental decoding relies on that: a key/value-cache step (one row)
// computes bit for bit what the full-prefix forward pass computes for the
// same position.

// A·Bᵀ (transB without transA, the product of every nn.Linear) is not
// packed: row i of A and row j of B are both contiguous, so dotNT computes
// C[i,j] as a dot product of the two rows, eight lanes at a time, tiles of
// 4×3 (or 1×8) products sharing their loads. This needs no packing, which
// for a single row (a generation step) would cost several times the
// product itself. Every element's value again depends only on the two rows
// (lane-wise FMAs in order, a fixed lane reduction, then the k mod 8 tail).

// Register tile and cache block sizes.
const (
	gemmMR = 6
	gemmNR = 16
	gemmKC = 256
	gemmMC = 120 // multiple of gemmMR: a packed A block is 120 KB
	gemmNC = 1024
	// gemmParallelMACs is the smallest product (m·n·k multiply-adds) that
	// is split across goroutines (about 50 µs on one core); below it the
	// cost of waking a worker (see serialWorkNS) outweighs the gain.
	gemmParallelMACs = 1 << 20
)

// gemmWorkspace holds one worker's packing buffers.
type gemmWorkspace struct {
	a, b, t []float32
	tile    [gemmMR * gemmNR]float32
}

func (w *gemmWorkspace) bufT(n int) []float32 {
	if cap(w.t) < n {
		w.t = make([]float32, n)
	}
	return w.t[:n]
}

func (w *gemmWorkspace) bufA(n int) []float32 {
	if cap(w.a) < n {
		w.a = make([]float32, n)
	}
	return w.a[:n]
}

func (w *gemmWorkspace) bufB(n int) []float32 {
	if cap(w.b) < n {
		w.b = make([]float32, n)
	}
	return w.b[:n]
}

// gemmPool is the set of workspaces of one executable, one per worker.
// Executables run one at a time, so the pool needs no locking of its own;
// workers of one call each use a different workspace.
type gemmPool struct {
	ws []*gemmWorkspace
}

// workspaces returns at least n workspaces.
func (p *gemmPool) workspaces(n int) []*gemmWorkspace {
	for len(p.ws) < n {
		p.ws = append(p.ws, &gemmWorkspace{})
	}
	return p.ws[:n]
}

// workers returns how many goroutines a computation of macs multiply-adds
// that splits into at most parts independent pieces should use.
func workers(macs, parts int) int {
	nw := runtime.GOMAXPROCS(0)
	if byWork := macs / gemmParallelMACs; byWork < nw {
		nw = byWork
	}
	if parts < nw {
		nw = parts
	}
	return max(nw, 1)
}

// sgemm computes C = op(A)·op(B) for row-major A (m×k, or k×m when transA),
// B (k×n, or n×k when transB) and C (m×n) with leading dimensions lda,
// ldb, ldc, splitting C across GOMAXPROCS workers when it is large.
//
// With acc, C += op(A)·op(B) instead: each element's multiply-adds continue
// from its current value.
func (p *gemmPool) sgemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if m == 0 || n == 0 {
		return
	}
	// Split the longer side of C in whole register tiles.
	rowTiles, colTiles := (m+gemmMR-1)/gemmMR, (n+gemmNR-1)/gemmNR
	byRows := rowTiles*gemmMR >= colTiles*gemmNR
	tiles := colTiles
	if byRows {
		tiles = rowTiles
	}
	nw := workers(m*n*k, tiles)
	ws := p.workspaces(nw)
	parallelFor(tiles, nw, func(w, lo, hi int) {
		if byRows {
			r0, r1 := lo*gemmMR, min(hi*gemmMR, m)
			ao := r0 * lda
			if transA {
				ao = r0
			}
			gemmSerial(ws[w], transA, transB, r1-r0, n, k, a[ao:], lda, b, ldb, c[r0*ldc:], ldc, acc)
			return
		}
		c0, c1 := lo*gemmNR, min(hi*gemmNR, n)
		bo := c0
		if transB {
			bo = c0 * ldb
		}
		gemmSerial(ws[w], transA, transB, m, c1-c0, k, a, lda, b[bo:], ldb, c[c0:], ldc, acc)
	})
}

// sgemmBatch computes batch independent products of the same shape, the
// i-th reading A, B and writing C at offsets i·sa, i·sb, i·sc, with dense
// leading dimensions. Large products are each split across workers;
// batches of small ones are split by batch item.
func (p *gemmPool) sgemmBatch(transA, transB bool, batch, m, n, k int, a, b, c []float32) {
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	sa, sb, sc := m*k, k*n, m*n
	if batch == 1 || m*n*k >= gemmParallelMACs*runtime.GOMAXPROCS(0) {
		for i := range batch {
			p.sgemm(transA, transB, m, n, k, a[i*sa:], lda, b[i*sb:], ldb, c[i*sc:], n, false)
		}
		return
	}
	nw := workers(batch*m*n*k, batch)
	ws := p.workspaces(nw)
	parallelFor(batch, nw, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			gemmSerial(ws[w], transA, transB, m, n, k, a[i*sa:], lda, b[i*sb:], ldb, c[i*sc:], n, false)
		}
	})
}

// gemmSerial computes C = op(A)·op(B) on one goroutine: A·Bᵀ with dotNT,
// the other cases with the packed GEMM.
func gemmSerial(ws *gemmWorkspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if !transA && transB {
		if !acc {
			dotNT(m, n, k, a, lda, b, ldb, c, ldc)
			return
		}
		t := ws.bufT(m * n)
		dotNT(m, n, k, a, lda, b, ldb, t, n)
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			for j, v := range t[i*n : (i+1)*n] {
				row[j] += v
			}
		}
		return
	}
	sgemmSerial(ws, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc)
}

// sgemmSerial is the blocked GEMM on one goroutine (loop order of BLIS:
// jc over nc columns, pc over kc inner blocks with B packed, ic over mc
// rows with A packed, then the register tiles). When A has at most one
// panel of rows and B is not transposed, every panel of B would be used
// once, so the full panels are read in place instead of packed.
func sgemmSerial(ws *gemmWorkspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if k == 0 {
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	direct := !transB && m <= gemmMR
	for jc := 0; jc < n; jc += gemmNC {
		nc := min(gemmNC, n-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kc := min(gemmKC, k-pc)
			var bp []float32
			switch {
			case !direct:
				bp = ws.bufB(kc * roundUp(nc, gemmNR))
				packB(bp, transB, b, ldb, pc, kc, jc, nc)
			case nc%gemmNR != 0:
				// Only the last, partial panel is packed (as panel 0).
				bp = ws.bufB(kc * gemmNR)
				packB(bp, false, b, ldb, pc, kc, jc+nc/gemmNR*gemmNR, nc%gemmNR)
			}
			load := acc || pc > 0
			for ic := 0; ic < m; ic += gemmMC {
				mc := min(gemmMC, m-ic)
				ap := ws.bufA(kc * roundUp(mc, gemmMR))
				packA(ap, transA, a, lda, ic, mc, pc, kc)
				for jr := 0; jr < nc; jr += gemmNR {
					nr := min(gemmNR, nc-jr)
					var bpanel []float32
					bstride := gemmNR
					switch {
					case !direct:
						bpanel = bp[jr*kc : (jr+gemmNR)*kc]
					case nr == gemmNR:
						bpanel, bstride = b[pc*ldb+jc+jr:], ldb
					default:
						bpanel = bp[:kc*gemmNR]
					}
					for ir := 0; ir < mc; ir += gemmMR {
						mr := min(gemmMR, mc-ir)
						apanel := ap[ir*kc : (ir+gemmMR)*kc]
						off := (ic+ir)*ldc + jc + jr
						if mr == gemmMR && nr == gemmNR {
							microKernel(kc, apanel, bpanel, bstride, c[off:], ldc, load)
							continue
						}
						// Edge tile: compute the full tile in a buffer and
						// copy the valid part (the padding is zero).
						t := ws.tile[:]
						if load {
							for i := range mr {
								copy(t[i*gemmNR:i*gemmNR+nr], c[off+i*ldc:off+i*ldc+nr])
							}
						}
						microKernel(kc, apanel, bpanel, bstride, t, gemmNR, load)
						for i := range mr {
							copy(c[off+i*ldc:off+i*ldc+nr], t[i*gemmNR:i*gemmNR+nr])
						}
					}
				}
			}
		}
	}
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// packB copies B[pc:pc+kc, jc:jc+nc] (of op(B)) into panels of gemmNR
// columns: panel q holds element (p, j) at q·kc·NR + p·NR + j, with
// columns past nc zero.
func packB(dst []float32, trans bool, b []float32, ldb, pc, kc, jc, nc int) {
	for q := 0; q*gemmNR < nc; q++ {
		panel := dst[q*kc*gemmNR : (q+1)*kc*gemmNR]
		c0 := jc + q*gemmNR
		nr := min(gemmNR, nc-q*gemmNR)
		switch {
		case !trans && nr == gemmNR:
			for p := range kc {
				off := (pc+p)*ldb + c0
				*(*[gemmNR]float32)(panel[p*gemmNR:]) = *(*[gemmNR]float32)(b[off : off+gemmNR])
			}
		case !trans:
			for p := range kc {
				row := panel[p*gemmNR : (p+1)*gemmNR]
				off := (pc+p)*ldb + c0
				copy(row, b[off:off+nr])
				clear(row[nr:])
			}
		default:
			// Column j of op(B) is row c0+j of b: gather the panel's rows
			// and write one packed row of 16 per k step.
			var rows [gemmNR][]float32
			for j := range nr {
				rows[j] = b[(c0+j)*ldb+pc : (c0+j)*ldb+pc+kc]
			}
			for p := range kc {
				d := (*[gemmNR]float32)(panel[p*gemmNR:])
				for j := range nr {
					d[j] = rows[j][p]
				}
				for j := nr; j < gemmNR; j++ {
					d[j] = 0
				}
			}
		}
	}
}

// packA copies A[ic:ic+mc, pc:pc+kc] (of op(A)) into panels of gemmMR rows:
// panel q holds element (i, p) at q·kc·MR + p·MR + i, with rows past mc
// zero.
func packA(dst []float32, trans bool, a []float32, lda, ic, mc, pc, kc int) {
	for q := 0; q*gemmMR < mc; q++ {
		panel := dst[q*kc*gemmMR : (q+1)*kc*gemmMR]
		r0 := ic + q*gemmMR
		mr := min(gemmMR, mc-q*gemmMR)
		switch {
		case trans && mr == gemmMR:
			// Element-wise: a 24-byte array copy compiles to a memmove call.
			for p := range kc {
				off := (pc+p)*lda + r0
				d, s := (*[gemmMR]float32)(panel[p*gemmMR:]), (*[gemmMR]float32)(a[off:off+gemmMR])
				d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
			}
		case trans:
			for p := range kc {
				col := panel[p*gemmMR : (p+1)*gemmMR]
				off := (pc+p)*lda + r0
				copy(col, a[off:off+mr])
				clear(col[mr:])
			}
		case mr == gemmMR:
			r := func(i int) []float32 { return a[(r0+i)*lda+pc : (r0+i)*lda+pc+kc] }
			a0, a1, a2, a3, a4, a5 := r(0), r(1), r(2), r(3), r(4), r(5)
			for p := range kc {
				d := (*[gemmMR]float32)(panel[p*gemmMR:])
				d[0], d[1], d[2], d[3], d[4], d[5] = a0[p], a1[p], a2[p], a3[p], a4[p], a5[p]
			}
		default:
			clear(panel)
			for i := range mr {
				src := a[(r0+i)*lda+pc : (r0+i)*lda+pc+kc]
				for p, v := range src {
					panel[p*gemmMR+i] = v
				}
			}
		}
	}
}

// microKernel computes the 6×16 tile c (row stride ldc) = [c +] a·b for a
// packed A panel (k columns of 6) and a B panel of k rows of 16 with row
// stride ldb (gemmNR when packed).
func microKernel(k int, a, b []float32, ldb int, c []float32, ldc int, load bool) {
	if k <= 0 || len(a) < k*gemmMR || len(b) < (k-1)*ldb+gemmNR || ldb < gemmNR || len(c) < (gemmMR-1)*ldc+gemmNR || ldc < gemmNR {
		panic(fmt.Sprintf("gorgonia: micro-kernel: k=%d with |a|=%d |b|=%d ldb=%d |c|=%d ldc=%d", k, len(a), len(b), ldb, len(c), ldc))
	}
	switch {
	case !haveAVX2FMA:
		kernelGo(k, a, b, ldb, c, ldc, load)
	case ldb == gemmNR:
		kernelAVX2(k, &a[0], &b[0], &c[0], ldc, load)
	default:
		kernelAVX2B(k, &a[0], &b[0], ldb, &c[0], ldc, load)
	}
}

// kernelGo is the portable micro-kernel: the same tile and order as
// kernelAVX2, with separately rounded multiplies and adds.
func kernelGo(k int, a, b []float32, ldb int, c []float32, ldc int, load bool) {
	var acc [gemmMR][gemmNR]float32
	if load {
		for i := range gemmMR {
			copy(acc[i][:], c[i*ldc:i*ldc+gemmNR])
		}
	}
	for p := range k {
		bp := (*[gemmNR]float32)(b[p*ldb : p*ldb+gemmNR])
		ap := a[p*gemmMR : (p+1)*gemmMR]
		for i, av := range ap {
			row := &acc[i]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
	}
	for i := range gemmMR {
		copy(c[i*ldc:i*ldc+gemmNR], acc[i][:])
	}
}

// dotNT computes C = A·Bᵀ for row-major A [m,k] (row stride lda), B [n,k]
// (ldb) and C [m,n] (ldc): blocks of 4 rows of A against B in groups of 3
// rows, the remaining rows of A against groups of 8, single products for
// what is left, each with the lane arithmetic of dotLanes followed by the
// k mod 8 tail (dotTail).
func dotNT(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	k8 := k / 8
	g3, g8 := n/3, n/8
	m4 := 0 // rows done in blocks of 4
	if g3 > 0 {
		m4 = m / 4 * 4
	}
	for i := 0; i < m4; i += 4 {
		dot4x3(k8, a[i*lda:], lda, b, ldb, g3, c[i*ldc:], ldc)
		for j := 3 * g3; j < n; j++ {
			for r := range 4 {
				c[(i+r)*ldc+j] = dotOne(k8, a[(i+r)*lda:(i+r)*lda+k], b[j*ldb:j*ldb+k])
			}
		}
	}
	for i := m4; i < m; i++ {
		ar := a[i*lda : i*lda+k]
		if g8 > 0 {
			dot1x8(k8, ar, b, ldb, g8, c[i*ldc:])
		}
		for j := 8 * g8; j < n; j++ {
			c[i*ldc+j] = dotOne(k8, ar, b[j*ldb:j*ldb+k])
		}
	}
	if k8*8 == k {
		return
	}
	// The tiles left out the last k mod 8 elements (dotOne added them).
	for i := range m {
		tiled := 8 * g8
		if i < m4 {
			tiled = 3 * g3
		}
		ar := a[i*lda : i*lda+k]
		for j := range tiled {
			c[i*ldc+j] = dotTail(c[i*ldc+j], ar, b[j*ldb:j*ldb+k], k8*8)
		}
	}
}

// dotTail adds the products of elements [from, len(a)) to s in order.
func dotTail(s float32, a, b []float32, from int) float32 {
	for p := from; p < len(a); p++ {
		s += a[p] * b[p]
	}
	return s
}

// dotOne is a single product with the tiles' arithmetic, tail included.
func dotOne(k8 int, a, b []float32) float32 {
	var out [8]float32
	dot1x8(k8, a, b, 0, 1, out[:]) // ldb 0: eight copies of the same product
	return dotTail(out[0], a, b, k8*8)
}

// dot4x3 writes c[r·ldc + 3g + s] = the lane-reduced dot product of the
// first 8·k8 elements of row r < 4 of a and row 3g+s of b, g < groups.
func dot4x3(k8 int, a []float32, lda int, b []float32, ldb, groups int, c []float32, ldc int) {
	if len(a) < 3*lda+8*k8 || len(b) < (3*groups-1)*ldb+8*k8 || len(c) < 3*ldc+3*groups {
		panic(fmt.Sprintf("gorgonia: dot4x3: k8=%d groups=%d |a|=%d lda=%d |b|=%d ldb=%d |c|=%d ldc=%d", k8, groups, len(a), lda, len(b), ldb, len(c), ldc))
	}
	if haveAVX2FMA {
		dot4x3AVX2(k8, &a[0], lda, &b[0], ldb, groups, &c[0], ldc)
		return
	}
	for r := range 4 {
		for j := range 3 * groups {
			c[r*ldc+j] = dotLanes(k8, a[r*lda:], b[j*ldb:])
		}
	}
}

// dot1x8 writes c[8g+s] = the lane-reduced dot product of the first 8·k8
// elements of a and row 8g+s of b, g < groups.
func dot1x8(k8 int, a, b []float32, ldb, groups int, c []float32) {
	if len(a) < 8*k8 || len(b) < (8*groups-1)*ldb+8*k8 || len(c) < 8*groups {
		panic(fmt.Sprintf("gorgonia: dot1x8: k8=%d groups=%d |a|=%d |b|=%d ldb=%d |c|=%d", k8, groups, len(a), len(b), ldb, len(c)))
	}
	if haveAVX2FMA {
		dot1x8AVX2(k8, &a[0], &b[0], ldb, groups, &c[0])
		return
	}
	for j := range 8 * groups {
		c[j] = dotLanes(k8, a, b[j*ldb:])
	}
}

// dotLanes is the portable form of the assembly dot kernels: eight
// lane-wise partial sums over 8·k8 elements, reduced as
// ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
func dotLanes(k8 int, a, b []float32) float32 {
	var l [8]float32
	for p := range k8 {
		av := (*[8]float32)(a[8*p : 8*p+8])
		bv := (*[8]float32)(b[8*p : 8*p+8])
		for q := range 8 {
			l[q] += av[q] * bv[q]
		}
	}
	return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}
