//go:build gotch

package gotch

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// This file is the thin layer over gotch's C binding (package libtch) the
// backend uses instead of gotch's Go tensor package (ts). The ts wrappers
// leak a malloc(0) block per operation, attach a 100 kB Go allocation and a
// finalizer to every tensor and register each in a global map under a
// lock; here every torch::Tensor handle is owned by exactly one arena and
// freed by it, deterministically, at the end of a Run.

// libtorch c10::ScalarType codes (c10/core/ScalarType.h), which gotch's
// dtype table also uses.
const (
	kindBool    = 11
	kindInt64   = 4
	kindFloat32 = 6
	noDType     = -1 // "no dtype argument" for atg_sum, atg_softmax, ...
)

// deviceCPU is libtch's device code for the CPU; CUDA device i is i.
const deviceCPU = -1

// torchError is how operations report a libtorch failure: the builder
// panics with it and Run recovers it into an error.
type torchError struct {
	op  string
	msg string
}

func (e *torchError) Error() string { return fmt.Sprintf("libtorch %s: %s", e.op, e.msg) }

// lastError returns and clears libtorch's last error message. libtch keeps
// it in a C++ thread_local, so callers must stay on one OS thread between
// the call and this check (Run locks its goroutine to its thread).
func lastError() string {
	p := unsafe.Pointer(lib.GetAndResetLastErr())
	if p == nil {
		return ""
	}
	defer C.free(p)
	return C.GoString((*C.char)(p))
}

// check panics with a torchError if the last libtorch call failed.
func check(op string) {
	if msg := lastError(); msg != "" {
		panic(&torchError{op: op, msg: msg})
	}
}

// arena owns torch tensors created during one Run and frees them together.
type arena struct {
	ts []lib.Ctensor
}

// own records t for freeing.
func (a *arena) own(t lib.Ctensor) lib.Ctensor {
	a.ts = append(a.ts, t)
	return t
}

// free releases every owned handle. Freeing a handle drops one reference
// to the tensor's storage and autograd node; once all handles of a run are
// gone the memory returns to libtorch's allocator.
func (a *arena) free() {
	for i, t := range a.ts {
		if t != nil {
			lib.AtFree(t)
		}
		a.ts[i] = nil
	}
	a.ts = a.ts[:0]
}

// call runs one atg_* function writing a new tensor handle and takes
// ownership of it.
func (a *arena) call(op string, f func(out *lib.Ctensor)) lib.Ctensor {
	var out lib.Ctensor
	f(&out)
	check(op)
	if out == nil {
		panic(&torchError{op: op, msg: "no tensor returned"})
	}
	return a.own(out)
}

// reshape returns t viewed (or copied, if its strides require) as shape.
func (a *arena) reshape(t lib.Ctensor, shape []int) lib.Ctensor {
	d := dims64(shape)
	return a.call("reshape", func(out *lib.Ctensor) { lib.AtgReshape(out, t, nonEmpty(d), len(d)) })
}

// nonEmpty returns d, or a one-element dummy when d is empty: libtch's
// wrappers take the address of the first element even when the length
// argument is 0.
func nonEmpty(d []int64) []int64 {
	if len(d) == 0 {
		return []int64{0}
	}
	return d
}

func dims64(shape []int) []int64 {
	d := make([]int64, len(shape))
	for i, v := range shape {
		d[i] = int64(v)
	}
	return d
}

// upload copies nbytes of host data (float32, int64 or bool values) into a
// new tensor of the given shape and kind on device. The CPU tensor is made
// with torch.empty and filled by one Go copy into its storage (half the
// memory traffic of libtch's at_tensor_of_data, which zero-fills first).
func (a *arena) upload(src unsafe.Pointer, nbytes int, shape []int, kind, device int) lib.Ctensor {
	d := dims64(shape)
	var t lib.Ctensor
	lib.AtgEmpty(&t, nonEmpty(d), len(d), int32(kind), deviceCPU)
	check("empty")
	if device == deviceCPU {
		a.own(t)
	} else {
		defer lib.AtFree(t) // the host copy is not needed once on the device
	}
	if nbytes > 0 {
		dst := lib.AtDataPtr(t)
		check("data_ptr")
		copy(unsafe.Slice((*byte)(dst), nbytes), unsafe.Slice((*byte)(src), nbytes))
	}
	if device == deviceCPU {
		return t
	}
	return a.call("to", func(out *lib.Ctensor) { lib.AtgTo(out, t, int32(device)) })
}

func (a *arena) floats(data []float32, shape []int, device int) lib.Ctensor {
	return a.upload(unsafe.Pointer(&data[0]), 4*len(data), shape, kindFloat32, device)
}

func (a *arena) int64s(data []int64, shape []int, device int) lib.Ctensor {
	return a.upload(unsafe.Pointer(&data[0]), 8*len(data), shape, kindInt64, device)
}

func (a *arena) bools(data []bool, shape []int, device int) lib.Ctensor {
	return a.upload(unsafe.Pointer(&data[0]), len(data), shape, kindBool, device)
}

// download copies the float32 tensor t (any device, any strides) into dst,
// which must hold exactly its elements.
func download(t lib.Ctensor, dst []float32) {
	if len(dst) == 0 {
		return
	}
	lib.AtCopyData(t, unsafe.Pointer(&dst[0]), uint(len(dst)), 4)
	check("copy_data")
}

// mulScalar multiplies t by s.
func (a *arena) mulScalar(t lib.Ctensor, s float64) lib.Ctensor {
	sc := lib.AtsFloat(s)
	check("scalar")
	defer lib.AtsFree(sc)
	return a.call("mul", func(out *lib.Ctensor) { lib.AtgMulScalar(out, t, sc) })
}
