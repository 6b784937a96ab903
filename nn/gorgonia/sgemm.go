package gorgonia

import (
	"fmt"
	"os"
	"runtime"
)

// This file is the backend's own float32 matrix multiply: a packed,
// cache-blocked GEMM in the style of Goto & van de Geijn (2008, "Anatomy of
// high-performance matrix multiplication") and BLIS (Van Zee & van de Geijn
// 2015): C is computed in register tiles of 6×16 (6×64 and 6×32 with AVX-512) by a
// micro-kernel (AVX-512 or AVX2+FMA assembly on amd64, plain Go elsewhere)
// over panels of A and B packed into contiguous buffers (the AVX-512
// kernels take A's strides and read it in place), with blocks of kc = 256
// along the inner dimension. It replaces gonum's pure-Go Sgemm, which
// profiling showed to be 80–85% of a training step and runs at roughly a
// tenth of the machine's float32 peak.
//
// Numerics: every element of C is one multiply-add chain over k in
// increasing order, started from zero; the k blocks continue the chain by
// loading the partial tile back into the accumulators. The value of C[i,j]
// therefore depends only on row i of op(A), column j of op(B) and k, never
// on m, n or the element's position in the tiling or among the workers.
// Incremental decoding relies on that: a key/value-cache step (one row)
// computes bit for bit what the full-prefix forward pass computes for the
// same position.

// A·Bᵀ (transB without transA, the product of every nn.Linear) is
// computed as dot products: row i of A and row j of B are both
// contiguous, so dotNT computes C[i,j] as a dot product of the two rows,
// eight lanes at a time, tiles of 4×3 or 1×8 products (AVX-512: 6×8 and
// 4×8, 1×16 below 4 rows) sharing their loads. B is read in place, as
// packing it for a single row (a generation step) would cost several
// times the product itself, nor would it pay for a recurrent layer's
// per-step product h·W_hhᵀ of few rows; from dotPackRows512 rows the
// AVX-512 tiles read B's rows packed in interleaved pairs (dotPackB).
// Every element's value again depends only on the two rows (lane-wise
// FMAs in order, a fixed lane reduction, then the k mod 8 tail), so tiles
// of any height, overlapping tiles and blocks of columns, packed or not,
// all give the same bits.

// Kernel paths: the micro-kernels come in three sets (gemmPath), chosen
// once at start-up: AVX-512 (F, DQ, VL) where the CPU has it, else
// AVX2+FMA, else portable Go. The environment variable ARBENCH_GEMM=go,
// avx2 or avx512 forces one, for tests and benchmarks; an unknown name,
// or a path this CPU (or build) lacks, makes opening the backend fail
// with a message naming the variable, rather than silently measuring
// another path. AVX-512 and AVX2 compute every element with the same fused
// multiply-adds in the same order and the same lane reduction, so they
// agree bit for bit (results do not depend on which of the two a machine
// has); the Go kernels round each product separately and agree with them
// within rounding.

// Register tile and cache block sizes.
const (
	gemmMR = 6
	gemmNR = 16
	gemmKC = 256
	gemmMC = 120 // multiple of gemmMR: a packed A block is 120 KB
	gemmNC = 1024
	// gemmParallelMACs is the smallest product (m·n·k multiply-adds) that
	// is split across goroutines (about 50 µs on one core); below it the
	// cost of waking a worker (see serialWorkNS) outweighs the gain. The
	// AVX-512 kernels do the same work in half the time, so their
	// threshold is gemmParallelMACs512 (measured on Zen 5: a 32×128 by
	// 128×512 product, 2M multiply-adds, took 25 µs on one core and 45 µs
	// split across two).
	gemmParallelMACs    = 1 << 20
	gemmParallelMACs512 = 1 << 22
	// gemmDirectRows512 is the most rows of C for which the AVX-512 path
	// reads B (not transposed) in place instead of packing it: packing
	// costs about as much as a kernel pass over a packed element, which
	// then serves only m/6 tiles (measured on Zen 5: 2–3× faster at m 12
	// to 32, +20% at 128, slower from m 256 with wide B).
	gemmDirectRows512 = 128
)

// gemmPath names a set of micro-kernels (see "Kernel paths" above).
type gemmPath uint8

const (
	gemmGo gemmPath = iota
	gemmAVX2
	gemmAVX512
)

// gemmEnv is the environment variable that forces a path.
const gemmEnv = "ARBENCH_GEMM"

var gemmPathNames = [...]string{gemmGo: "go", gemmAVX2: "avx2", gemmAVX512: "avx512"}

func (p gemmPath) String() string { return gemmPathNames[p] }

// available reports whether this CPU and build can run p.
func (p gemmPath) available() bool {
	switch p {
	case gemmAVX512:
		return haveAVX512
	case gemmAVX2:
		return haveAVX2FMA
	}
	return true
}

// gemmUse is the path of every product: $ARBENCH_GEMM's, or the fastest
// this machine has. It is set once here (reading the environment and the
// CPU flags, nothing else); only tests change it, between products. An
// unusable $ARBENCH_GEMM leaves the fastest path in gemmUse and its error
// in gemmEnvErr, which opening the backend by name (nn.OpenBackend, every
// command's path) reports before any work.
var gemmUse, gemmEnvErr = gemmPathFromEnv(os.Getenv(gemmEnv))

// parseGemmPath returns the path called name, or for "" the fastest
// available one.
func parseGemmPath(name string) (gemmPath, error) {
	if name == "" {
		for p := gemmAVX512; p > gemmGo; p-- {
			if p.available() {
				return p, nil
			}
		}
		return gemmGo, nil
	}
	for p, s := range gemmPathNames {
		if s != name {
			continue
		}
		if !gemmPath(p).available() {
			return 0, fmt.Errorf("%s=%s, but this CPU or build has no %s kernels", gemmEnv, name, name)
		}
		return gemmPath(p), nil
	}
	return 0, fmt.Errorf("%s=%q: want go, avx2 or avx512 (or unset for the fastest)", gemmEnv, name)
}

// gemmPathFromEnv is parseGemmPath(name), with the fastest path next to
// the error of a name it refuses.
func gemmPathFromEnv(name string) (gemmPath, error) {
	p, err := parseGemmPath(name)
	if err != nil {
		fastest, _ := parseGemmPath("")
		return fastest, err
	}
	return p, nil
}

// GemmKernels names the micro-kernels the backend's matrix products use:
// "avx512", "avx2" or "go".
func GemmKernels() string { return gemmUse.String() }

// gemmWorkspace holds one worker's packing buffers.
type gemmWorkspace struct {
	a, b, t []float32
	edge    [gemmMR * 2 * gemmNR]float32 // one register tile of C
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

// parallelMACs is the threshold of splitting a product on the path in use.
func parallelMACs() int {
	if gemmUse == gemmAVX512 {
		return gemmParallelMACs512
	}
	return gemmParallelMACs
}

// workers returns how many goroutines a computation of macs multiply-adds
// that splits into at most parts independent pieces should use.
func workers(macs, parts int) int {
	byWork := macs / parallelMACs()
	if byWork <= 1 || parts <= 1 {
		// Most products of a decoding step: runtime.GOMAXPROCS takes the
		// scheduler's lock, which profiling showed at batch 1.
		return 1
	}
	return max(min(runtime.GOMAXPROCS(0), byWork, parts), 1)
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
	if nw == 1 && p.onCrew(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, acc) {
		return
	}
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

// onCrew computes a product of at most crewRows rows and at least crewMACs
// multiply-adds of A·Bᵀ (dotNT) on the shared crew, split by columns of C,
// and reports whether it did (see crew: a decoding step's matrix–vector
// products). Each element of C is the same dot product whichever worker
// computes it.
func (p *gemmPool) onCrew(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) bool {
	if transA || !transB || acc || m > crewRows || m*n*k < crewMACs || n < 32 {
		return false
	}
	cr := sharedCrew()
	return cr != nil && cr.dot(m, n, k, a, lda, b, ldb, c, ldc)
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
	if batch == 1 || m*n*k >= parallelMACs()*runtime.GOMAXPROCS(0) {
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
			dotNT(ws, m, n, k, a, lda, b, ldb, c, ldc)
			return
		}
		t := ws.bufT(m * n)
		dotNT(ws, m, n, k, a, lda, b, ldb, t, n)
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
// rows with A packed, or read in place by the AVX-512 kernels, then the
// register tiles). When A has at most one
// panel of rows (on the AVX-512 path: at most gemmDirectRows512 rows) and
// B is not transposed, every panel of B would be used only a few times,
// so the full panels are read in place instead of packed.
func sgemmSerial(ws *gemmWorkspace, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if k == 0 {
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	direct := !transB && (m <= gemmMR || gemmUse == gemmAVX512 && m <= gemmDirectRows512)
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
				ab := ws.blockA(transA, a, lda, ic, mc, pc, kc)
				var bd []float32
				if direct {
					bd = b[pc*ldb+jc:]
				}
				ws.block(mc, nc, kc, ab, bp, bd, ldb, c[ic*ldc+jc:], ldc, load)
			}
		}
	}
}

// aPanel locates kc columns of 6 rows of op(A): element (i, p) at
// a[i·rs + p·cs] (rs 1 and cs 6 when packed).
type aPanel struct {
	a      []float32
	rs, cs int
}

// aBlock is an mc×kc block of op(A): panels of 6 rows read in place from
// a (strides rs, cs) up to row inPlace, packed in ap from there.
type aBlock struct {
	a, ap   []float32
	rs, cs  int
	inPlace int
}

// panel returns the panel of rows ir..ir+5 (ir a multiple of 6).
func (b *aBlock) panel(ir, kc int) aPanel {
	if ir < b.inPlace {
		return aPanel{b.a[ir*b.rs:], b.rs, b.cs}
	}
	return aPanel{b.ap[(ir-b.inPlace)*kc:], 1, gemmMR}
}

// blockA returns rows [ic, ic+mc) and columns [pc, pc+kc) of op(A): the
// AVX-512 kernels read whole panels in place (their strides are
// arguments), the others need them packed (packA); the last panel, when
// partial, is always packed, zero-padded.
func (ws *gemmWorkspace) blockA(trans bool, a []float32, lda, ic, mc, pc, kc int) aBlock {
	if gemmUse != gemmAVX512 {
		ap := ws.bufA(kc * roundUp(mc, gemmMR))
		packA(ap, trans, a, lda, ic, mc, pc, kc)
		return aBlock{ap: ap}
	}
	b := aBlock{rs: lda, cs: 1, inPlace: mc / gemmMR * gemmMR}
	if trans {
		b.a, b.rs, b.cs = a[pc*lda+ic:], 1, lda
	} else {
		b.a = a[ic*lda+pc:]
	}
	if mr := mc - b.inPlace; mr > 0 {
		b.ap = ws.bufA(kc * gemmMR)
		packA(b.ap, trans, a, lda, ic+b.inPlace, mr, pc, kc)
	}
	return b
}

// block computes the mc×nc block of C at c (row stride ldc) = [c +] the
// product of the A block ab and the B block: packed in bp, or, when bd is
// not nil, read in place from bd (row stride ldb) with only its last
// partial panel packed (as panel 0 of bp). Its register tiles are
// 6×64 where the AVX-512 path has 64 columns left (packed: one of packB's
// panels of 64), 6×32 where it has 32, else 6×16.
func (ws *gemmWorkspace) block(mc, nc, kc int, ab aBlock, bp, bd []float32, ldb int, c []float32, ldc int, load bool) {
	for jr := 0; jr < nc; {
		w := gemmNR
		switch {
		case gemmUse == gemmAVX512 && nc-jr >= 4*gemmNR:
			w = 4 * gemmNR
		case gemmUse == gemmAVX512 && nc-jr >= 2*gemmNR:
			w = 2 * gemmNR
		}
		// The tile's columns 16..31 start next elements after 0..15.
		var bt []float32
		stride, next := gemmNR, kc*gemmNR
		switch {
		case bd == nil && w == 4*gemmNR:
			bt, stride, next = bp[jr*kc:], w, gemmNR // a panel of 64 (packB)
		case bd == nil:
			bt = bp[jr*kc:]
		case nc-jr >= gemmNR:
			bt, stride, next = bd[jr:], ldb, gemmNR
		default:
			bt = bp[:kc*gemmNR]
		}
		nr := min(w, nc-jr)
		for ir := 0; ir < mc; ir += gemmMR {
			if w == 4*gemmNR {
				ws.tile64(min(gemmMR, mc-ir), kc, ab.panel(ir, kc), bt, stride, next, c[ir*ldc+jr:], ldc, load)
				continue
			}
			ws.tile(w, min(gemmMR, mc-ir), nr, kc, ab.panel(ir, kc), bt, stride, next, c[ir*ldc+jr:], ldc, load)
		}
		jr += w
	}
}

// tile64 computes the first mr rows of a 6×64 tile of four full panels
// of B (next elements apart): kernel6x64AVX512 for a full tile, else two
// 6×32 tiles (every element is the same chain either way).
func (ws *gemmWorkspace) tile64(mr, kc int, a aPanel, b []float32, ldb, next int, c []float32, ldc int, load bool) {
	if mr < gemmMR {
		ws.tile(2*gemmNR, mr, 2*gemmNR, kc, a, b, ldb, next, c, ldc, load)
		ws.tile(2*gemmNR, mr, 2*gemmNR, kc, a, b[2*next:], ldb, next, c[2*gemmNR:], ldc, load)
		return
	}
	if kc <= 0 || a.rs < 0 || a.cs < 0 || len(a.a) < (gemmMR-1)*a.rs+(kc-1)*a.cs+1 || ldb < gemmNR || next < gemmNR ||
		len(b) < 3*next+(kc-1)*ldb+gemmNR || ldc < 4*gemmNR || len(c) < (gemmMR-1)*ldc+4*gemmNR {
		panic(fmt.Sprintf("gorgonia: 6×64 micro-kernel: k=%d with |a|=%d (strides %d, %d) |b|=%d ldb=%d next=%d |c|=%d ldc=%d", kc, len(a.a), a.rs, a.cs, len(b), ldb, next, len(c), ldc))
	}
	kernel6x64AVX512(kc, &a.a[0], a.rs, a.cs, &b[0], next, ldb, &c[0], ldc, load)
}

// tile computes the mr×nr corner of a 6×w register tile; see
// microKernel. A partial tile is computed in full in a buffer (the
// padding of the packed panels is zero) and its valid part copied.
func (ws *gemmWorkspace) tile(w, mr, nr, kc int, a aPanel, b []float32, ldb, next int, c []float32, ldc int, load bool) {
	if mr == gemmMR && nr == w {
		microKernel(w, kc, a, b, ldb, next, c, ldc, load)
		return
	}
	t := ws.edge[:gemmMR*w]
	if load {
		for i := range mr {
			copy(t[i*w:i*w+nr], c[i*ldc:i*ldc+nr])
		}
	}
	microKernel(w, kc, a, b, ldb, next, t, w, load)
	for i := range mr {
		copy(c[i*ldc:i*ldc+nr], t[i*w:i*w+nr])
	}
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// packB copies B[pc:pc+kc, jc:jc+nc] (of op(B)) into panels: on the
// AVX-512 path the first ⌊nc/64⌋·64 columns into panels of 64, which the
// 6×64 kernel reads one contiguous 256-byte row per k step, then (on the
// other paths every column) panels of gemmNR, the last zero-padded past
// nc. Every panel of w columns starting at column c (of the block) holds
// element (p, c+j) at c·kc + p·w + j.
func packB(dst []float32, trans bool, b []float32, ldb, pc, kc, jc, nc int) {
	wide := 0
	if gemmUse == gemmAVX512 {
		wide = nc / (4 * gemmNR) * (4 * gemmNR)
	}
	for c := 0; c < wide; c += 4 * gemmNR {
		packPanel(dst[c*kc:(c+4*gemmNR)*kc], 4*gemmNR, trans, b, ldb, pc, kc, jc+c, 4*gemmNR)
	}
	for c := wide; c < nc; c += gemmNR {
		packPanel(dst[c*kc:(c+gemmNR)*kc], gemmNR, trans, b, ldb, pc, kc, jc+c, min(gemmNR, nc-c))
	}
}

// packPanel copies columns [c0, c0+nr) of rows [pc, pc+kc) of op(B) into
// the panel of w ≥ nr columns: element (p, c0+j) at p·w + j, columns nr..w
// zero.
func packPanel(panel []float32, w int, trans bool, b []float32, ldb, pc, kc, c0, nr int) {
	switch {
	case !trans && nr == w:
		copyRows(panel, b[pc*ldb+c0:], ldb, kc, w)
	case !trans:
		for p := range kc {
			row := panel[p*w : (p+1)*w]
			off := (pc+p)*ldb + c0
			copy(row, b[off:off+nr])
			clear(row[nr:])
		}
	default:
		// Column c0+j of op(B) is row c0+j of b.
		for j := range nr {
			for p, v := range b[(c0+j)*ldb+pc : (c0+j)*ldb+pc+kc] {
				panel[p*w+j] = v
			}
		}
		if nr < w {
			for p := range kc {
				clear(panel[p*w+nr : (p+1)*w])
			}
		}
	}
}

// copyRows copies rows r < n of w values (a multiple of gemmNR) from src
// (row stride lds) to dst, contiguously: with AVX2 moves where the CPU
// has them (copying 64 bytes at a time instead of a memmove call per row,
// which took a sixth of a 512³ product on one core), else row by row.
func copyRows(dst, src []float32, lds, n, w int) {
	if n == 0 {
		return
	}
	_, _ = dst[n*w-1], src[(n-1)*lds+w-1]
	if haveAVX2FMA {
		copyRowsAVX2(&dst[0], &src[0], lds, n, w/gemmNR)
		return
	}
	for r := range n {
		copy(dst[r*w:(r+1)*w], src[r*lds:r*lds+w])
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

// microKernel computes the 6×w tile c (row stride ldc, w 16 or 32) =
// [c +] a·b for an A panel of k columns (packed, except on the AVX-512
// path) and a B panel of k rows with row stride ldb (gemmNR when packed):
// columns 0..15 of row p at b[p·ldb:], and for w = 32 columns 16..31 at
// b[next+p·ldb:] (the next packed panel, or the next 16 columns of B read
// in place).
func microKernel(w, k int, a aPanel, b []float32, ldb, next int, c []float32, ldc int, load bool) {
	right := 0 // offset of the last 16 columns
	if w == 2*gemmNR {
		right = next
	}
	packed := a.rs == 1 && a.cs == gemmMR
	if k <= 0 || a.rs < 0 || a.cs < 0 || len(a.a) < (gemmMR-1)*a.rs+(k-1)*a.cs+1 || !packed && gemmUse != gemmAVX512 ||
		ldb < gemmNR || right < 0 || len(b) < right+(k-1)*ldb+gemmNR || ldc < w || len(c) < (gemmMR-1)*ldc+w || w != gemmNR && w != 2*gemmNR {
		panic(fmt.Sprintf("gorgonia: %s micro-kernel: %d columns, k=%d with |a|=%d (strides %d, %d) |b|=%d ldb=%d next=%d |c|=%d ldc=%d", gemmUse, w, k, len(a.a), a.rs, a.cs, len(b), ldb, next, len(c), ldc))
	}
	switch {
	case gemmUse == gemmAVX512 && w == 2*gemmNR:
		kernel6x32AVX512(k, &a.a[0], a.rs, a.cs, &b[0], &b[next], ldb, &c[0], ldc, load)
	case gemmUse == gemmAVX512:
		kernel6x16AVX512(k, &a.a[0], a.rs, a.cs, &b[0], ldb, &c[0], ldc, load)
	case w == 2*gemmNR:
		microKernel(gemmNR, k, a, b, ldb, 0, c, ldc, load)
		microKernel(gemmNR, k, a, b[next:], ldb, 0, c[gemmNR:], ldc, load)
	case gemmUse == gemmGo:
		kernelGo(k, a.a, b, ldb, c, ldc, load)
	case ldb == gemmNR:
		kernelAVX2(k, &a.a[0], &b[0], &c[0], ldc, load)
	default:
		kernelAVX2B(k, &a.a[0], &b[0], ldb, &c[0], ldc, load)
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
// (ldb) and C [m,n] (ldc): every element is the lane-reduced dot product
// of its two rows over the first 8·⌊k/8⌋ elements (dotLaneSums), plus the
// k mod 8 tail (dotTail). ws, when not nil, is a workspace in which a
// product of many rows packs B (see dotLaneSums512).
func dotNT(ws *gemmWorkspace, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	k8 := k / 8
	if k8 == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
	} else {
		dotLaneSums(ws, m, n, k8, a, lda, b, ldb, c, ldc)
	}
	if k8*8 == k {
		return
	}
	for i := range m {
		ar := a[i*lda : i*lda+k]
		for j := range n {
			c[i*ldc+j] = dotTail(c[i*ldc+j], ar, b[j*ldb:j*ldb+k], k8*8)
		}
	}
}

// dotLaneSums writes c[i·ldc+j] = the lane-reduced dot product of the
// first 8·k8 elements of rows i < m of a and j < n of b (k8 > 0): with
// AVX-512 in tiles of 6 or 4 rows × 8 columns (dotLaneSums512); otherwise
// with dotLaneSums43. Each product's value is the same in every tile.
func dotLaneSums(ws *gemmWorkspace, m, n, k8 int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	switch {
	case gemmUse != gemmAVX512:
		dotLaneSums43(m, n, k8, a, lda, b, ldb, c, ldc)
	case m < 4 || n < 8:
		// Row by row, in column blocks of b that stay in cache for the
		// next row (see dotCacheBytes).
		block := max(16, dotCacheBytes/(4*8*k8)/16*16)
		for j := 0; j < n; j += block {
			for i := range m {
				dotRow(min(block, n-j), k8, a[i*lda:], b[j*ldb:], ldb, c[i*ldc+j:])
			}
		}
	default:
		dotLaneSums512(ws, m, n, k8, a, lda, b, ldb, c, ldc)
	}
}

// dotCacheBytes is the most bytes of b that dotLaneSums512 runs its row
// tiles over before moving on to the next columns: a block that stays in
// a core's L2 cache (1 MB on Zen 4 and 5) while every tile reads it, as
// the recurrent weight of a large layer (4 MB at width 512) does not.
const dotCacheBytes = 256 << 10

// dotLaneSums512 is dotLaneSums on the AVX-512 path for m ≥ 4 rows and
// n ≥ 8 columns: the rows in tiles of 6 and 4 (dotRowTiles), in column
// blocks of at most dotCacheBytes of b, and the last n mod 8 columns as
// one more group of 8 ending at column n, which overlaps the previous
// one (its products are computed twice, with the same value). With a
// workspace and at least dotPackRows512 rows, each column block is first
// packed (dotPackB) for the packed tiles, which compute the same bits.
func dotLaneSums512(ws *gemmWorkspace, m, n, k8 int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	g := n / 8
	block := max(1, dotCacheBytes/(4*8*8*k8)) // groups of 8 rows of b
	tiles := func(j, groups int) {
		var bp []float32
		if ws != nil && m >= dotPackRows512 {
			bp = ws.bufB(64 * k8 * groups)
			dotPackB(bp, b[j*ldb:], ldb, groups, k8)
		}
		dotRowTiles(m, func(i, h int) {
			switch {
			case bp != nil:
				dotPacked(h, k8, a[i*lda:], lda, bp, groups, c[i*ldc+j:], ldc)
			case h == 6:
				dot6x8(k8, a[i*lda:], lda, b[j*ldb:], ldb, groups, c[i*ldc+j:], ldc)
			default:
				dot4x8(k8, a[i*lda:], lda, b[j*ldb:], ldb, groups, c[i*ldc+j:], ldc)
			}
		})
	}
	for g0 := 0; g0 < g; g0 += block {
		tiles(8*g0, min(block, g-g0))
	}
	if 8*g < n {
		tiles(n-8, 1)
	}
}

// dotPackRows512 is the fewest rows of A for which dotLaneSums512 packs
// the column blocks of B: the packed tiles load each pair of B's chunks
// with one 512-bit move instead of a move and an insert, which on Intel
// cores takes the port of the second FMA (4 of every 28 of those µops).
// Measured on a Xeon, one core, against the tiles over B in place: 48
// rows break even, 64 +7%, 128 +12%, 1024–2048 rows +17–25% (two cores
// +14–39%).
const dotPackRows512 = 64

// dotPackB copies groups of 8 rows of b (row stride ldb; group g is rows
// 8g..8g+7, over their first 8·k8 elements) into the layout of the packed
// dot tiles: for k step p (elements 8p..8p+7) and pair q < 4, the chunks
// of rows 8g+2q and 8g+2q+1 side by side at dst[64·(g·k8 + p) + 16q:], the
// register of dot6x8's pair q (AVX-512 only).
func dotPackB(dst, b []float32, ldb, groups, k8 int) {
	if k8 <= 0 || groups <= 0 || len(dst) < 64*k8*groups || len(b) < (8*groups-1)*ldb+8*k8 {
		panic(fmt.Sprintf("gorgonia: dotPackB: k8=%d groups=%d |dst|=%d |b|=%d ldb=%d", k8, groups, len(dst), len(b), ldb))
	}
	dotPackAVX512(&dst[0], &b[0], ldb, groups, k8)
}

// dotRowTiles calls tile(i, h) for tiles of h = 6 or 4 rows starting at
// row i that together cover rows [0, m), m ≥ 4: 6-row tiles (the most
// efficient) and one or two 4-row tiles for the rest, the last tile
// overlapping its neighbour where no combination fits exactly (m mod 6 =
// 1, 3 or 5). The 1-row tiles this replaces read b once per row.
func dotRowTiles(m int, tile func(i, h int)) {
	q, r := m/6, m%6
	if r == 1 || r == 2 {
		q-- // 6+1 and 6+2 rows as 4+4
	}
	for t := range q {
		tile(6*t, 6)
	}
	switch {
	case r == 0:
	case r == 5 && q > 0:
		tile(m-6, 6)
	case r == 1 || r == 2 || r == 5:
		tile(6*q, 4)
		tile(m-4, 4)
	default: // 3, 4
		tile(m-4, 4)
	}
}

// dotLaneSums43 is dotLaneSums in tiles of 4 rows × 3 columns (the last
// columns one product at a time) and the rows they leave with dotRow.
func dotLaneSums43(m, n, k8 int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	g := n / 3
	mt := 0 // rows done in blocks of 4
	if g > 0 {
		mt = m / 4 * 4
	}
	for i := 0; i < mt; i += 4 {
		dot4x3(k8, a[i*lda:], lda, b, ldb, g, c[i*ldc:], ldc)
		for j := 3 * g; j < n; j++ {
			for r := range 4 {
				c[(i+r)*ldc+j] = dotOne(k8, a[(i+r)*lda:], b[j*ldb:])
			}
		}
	}
	for i := mt; i < m; i++ {
		dotRow(n, k8, a[i*lda:], b, ldb, c[i*ldc:])
	}
}

// dotRow writes c[j] = the lane-reduced dot product of the first 8·k8
// elements of a and row j < n of b: in groups of 16 (AVX-512) or 8
// columns, then one product at a time.
func dotRow(n, k8 int, a, b []float32, ldb int, c []float32) {
	j := 0
	if g := n / 16; gemmUse == gemmAVX512 && g > 0 {
		dot1x16(k8, a, b, ldb, g, c)
		j = 16 * g
	}
	if g := (n - j) / 8; g > 0 {
		dot1x8(k8, a, b[j*ldb:], ldb, g, c[j:])
		j += 8 * g
	}
	for ; j < n; j++ {
		c[j] = dotOne(k8, a, b[j*ldb:])
	}
}

// dotTail adds the products of elements [from, len(a)) to s in order.
func dotTail(s float32, a, b []float32, from int) float32 {
	for p := from; p < len(a); p++ {
		s += a[p] * b[p]
	}
	return s
}

// dotOne is the lane-reduced dot product of the first 8·k8 elements of a
// and b, with the tiles' arithmetic.
func dotOne(k8 int, a, b []float32) float32 {
	var out [8]float32
	dot1x8(k8, a, b, 0, 1, out[:]) // ldb 0: eight copies of the same product
	return out[0]
}

// dot4x3 writes c[r·ldc + 3g + s] = the lane-reduced dot product of the
// first 8·k8 elements of row r < 4 of a and row 3g+s of b, g < groups.
func dot4x3(k8 int, a []float32, lda int, b []float32, ldb, groups int, c []float32, ldc int) {
	if len(a) < 3*lda+8*k8 || len(b) < (3*groups-1)*ldb+8*k8 || len(c) < 3*ldc+3*groups {
		panic(fmt.Sprintf("gorgonia: dot4x3: k8=%d groups=%d |a|=%d lda=%d |b|=%d ldb=%d |c|=%d ldc=%d", k8, groups, len(a), lda, len(b), ldb, len(c), ldc))
	}
	if gemmUse != gemmGo {
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
	if gemmUse != gemmGo {
		dot1x8AVX2(k8, &a[0], &b[0], ldb, groups, &c[0])
		return
	}
	for j := range 8 * groups {
		c[j] = dotLanes(k8, a, b[j*ldb:])
	}
}

// dot6x8 writes c[r·ldc + 8g + s] = the lane-reduced dot product of the
// first 8·k8 elements of row r < 6 of a and row 8g+s of b, g < groups
// (AVX-512 only).
func dot6x8(k8 int, a []float32, lda int, b []float32, ldb, groups int, c []float32, ldc int) {
	if k8 <= 0 || groups <= 0 || len(a) < 5*lda+8*k8 || len(b) < (8*groups-1)*ldb+8*k8 || len(c) < 5*ldc+8*groups {
		panic(fmt.Sprintf("gorgonia: dot6x8: k8=%d groups=%d |a|=%d lda=%d |b|=%d ldb=%d |c|=%d ldc=%d", k8, groups, len(a), lda, len(b), ldb, len(c), ldc))
	}
	dot6x8AVX512(k8, &a[0], lda, &b[0], ldb, groups, &c[0], ldc)
}

// dotPacked is dot6x8 (h = 6) or dot4x8 (h = 4) over groups of b packed
// by dotPackB at b.
func dotPacked(h, k8 int, a []float32, lda int, b []float32, groups int, c []float32, ldc int) {
	if h != 6 && h != 4 || k8 <= 0 || groups <= 0 || len(a) < (h-1)*lda+8*k8 || len(b) < 64*k8*groups || len(c) < (h-1)*ldc+8*groups {
		panic(fmt.Sprintf("gorgonia: dotPacked: h=%d k8=%d groups=%d |a|=%d lda=%d |b|=%d |c|=%d ldc=%d", h, k8, groups, len(a), lda, len(b), len(c), ldc))
	}
	if h == 6 {
		dot6x8pAVX512(k8, &a[0], lda, &b[0], groups, &c[0], ldc)
	} else {
		dot4x8pAVX512(k8, &a[0], lda, &b[0], groups, &c[0], ldc)
	}
}

// dot4x8 is dot6x8 for 4 rows of a (AVX-512 only).
func dot4x8(k8 int, a []float32, lda int, b []float32, ldb, groups int, c []float32, ldc int) {
	if k8 <= 0 || groups <= 0 || len(a) < 3*lda+8*k8 || len(b) < (8*groups-1)*ldb+8*k8 || len(c) < 3*ldc+8*groups {
		panic(fmt.Sprintf("gorgonia: dot4x8: k8=%d groups=%d |a|=%d lda=%d |b|=%d ldb=%d |c|=%d ldc=%d", k8, groups, len(a), lda, len(b), ldb, len(c), ldc))
	}
	dot4x8AVX512(k8, &a[0], lda, &b[0], ldb, groups, &c[0], ldc)
}

// dot1x16 writes c[16g+s] = the lane-reduced dot product of the first
// 8·k8 elements of a and row 16g+s of b, g < groups (AVX-512 only).
func dot1x16(k8 int, a, b []float32, ldb, groups int, c []float32) {
	if k8 <= 0 || groups <= 0 || len(a) < 8*k8 || len(b) < (16*groups-1)*ldb+8*k8 || len(c) < 16*groups {
		panic(fmt.Sprintf("gorgonia: dot1x16: k8=%d groups=%d |a|=%d |b|=%d ldb=%d |c|=%d", k8, groups, len(a), len(b), ldb, len(c)))
	}
	dot1x16AVX512(k8, &a[0], &b[0], ldb, groups, &c[0])
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
