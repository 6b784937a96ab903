//go:build gotch

package gotch

// Integer tensors (token ids, targets) only ever come from Feeds.Ints and
// the shape operations applied to them, and they are only consumed as
// indices by Gather and Pick. The backend therefore keeps their values on
// the host, applies Reshape, Transpose, Slice and Concat to them in Go, and
// uploads an index tensor only where Gather or Pick needs one. This lets
// Gather and Pick validate every id before libtorch sees it (an
// out-of-range index is a device-side assertion on CUDA, which poisons the
// CUDA context) without reading anything back from the device.

func sizeOf(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// stridesOf returns row-major strides.
func stridesOf(shape []int) []int {
	s := make([]int, len(shape))
	n := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = n
		n *= shape[i]
	}
	return s
}

// transposeInts permutes the axes of x [shape] like numpy.transpose(x, perm).
func transposeInts(x []int64, shape, perm []int) []int64 {
	out := make([]int64, len(x))
	in := stridesOf(shape)
	oshape := make([]int, len(perm))
	for d, p := range perm {
		oshape[d] = shape[p]
	}
	idx := make([]int, len(perm)) // index into the output
	for o := range out {
		src := 0
		for d, p := range perm {
			src += idx[d] * in[p]
		}
		out[o] = x[src]
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < oshape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// axisView describes shape as [outer, shape[axis], inner].
func axisView(shape []int, axis int) (outer, n, inner int) {
	return sizeOf(shape[:axis]), shape[axis], sizeOf(shape[axis+1:])
}

// sliceInts keeps [start,end) of axis of x [shape].
func sliceInts(x []int64, shape []int, axis, start, end int) []int64 {
	outer, n, inner := axisView(shape, axis)
	w := (end - start) * inner
	out := make([]int64, 0, outer*w)
	for o := range outer {
		base := o*n*inner + start*inner
		out = append(out, x[base:base+w]...)
	}
	return out
}

// concatInts joins xs along axis; ns[i] is xs[i]'s extent on that axis and
// outer, inner describe the common shape around it.
func concatInts(xs [][]int64, ns []int, outer, inner int) []int64 {
	total := 0
	for _, n := range ns {
		total += n
	}
	out := make([]int64, 0, outer*total*inner)
	for o := range outer {
		for i, x := range xs {
			w := ns[i] * inner
			out = append(out, x[o*w:(o+1)*w]...)
		}
	}
	return out
}
