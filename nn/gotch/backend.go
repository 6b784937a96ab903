//go:build gotch

// Package gotch implements nn.Backend on libtorch through
// github.com/sugarme/gotch (v0.9.1, libtorch 2.1), on the CPU and on CUDA
// devices. It is built only with the `gotch` build tag, against the
// libtorch that `make torch` installs (see README.md in this directory);
// importing it registers the backend as "gotch".
//
// Compile runs the build function once on a dry graph that only checks
// shapes (so malformed programs fail at Compile, as with the gorgonia
// backend) and records the declared inputs. Every Run executes the build
// function again, eagerly: each nn.Graph operation is one libtorch call on
// the run's tensors. Training runs mark each Param's tensor as requiring
// gradients and call libtorch's autograd (backward) on the Loss, then copy
// every parameter's .grad into Param.Grad as float32.
//
// Parameters are uploaded from Param.Data on every Run, so optimiser
// updates (nn.Adam works on the host) are always seen. Every tensor handle a
// Run creates is owned by an arena and freed before Run returns: nothing
// depends on Go finalizers, and no libtorch memory outlives the Run.
//
// Integer tensors stay on the host (see ints.go); dropout masks come from
// nn.DropoutMask, so both backends drop the same elements.
//
// The package uses gotch's C binding (package libtch) directly rather than
// its Go tensor package (ts): ts leaks a small C allocation per operation
// and gives every tensor a 100 kB Go allocation, a global-map entry and a
// finalizer. libtch keeps libtorch's last error in a C++ thread_local, so
// every sequence of libtorch calls here runs with its goroutine locked to
// its OS thread.
package gotch

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	lib "github.com/sugarme/gotch/libtch"

	"arbench/nn"
)

func init() {
	nn.RegisterBackend("gotch", func(device string) (nn.Backend, error) { return New(device) })
}

// Backend is the libtorch nn.Backend on one device.
type Backend struct {
	device int // libtch device code: deviceCPU or the CUDA index
}

var _ nn.Backend = (*Backend)(nil)

// New opens the backend on device: "" or "cpu", "cuda" (device 0) or
// "cuda:N". A CUDA device is checked by allocating two small matrices on
// it, multiplying them there and comparing the product with the host's;
// any failure is returned as an error that says what is missing.
func New(device string) (*Backend, error) {
	d, err := parseDevice(device)
	if err != nil {
		return nil, err
	}
	if d != deviceCPU {
		if err := checkCUDA(d); err != nil {
			return nil, fmt.Errorf("gotch backend: device %q is not usable: %w", device, err)
		}
	}
	return &Backend{device: d}, nil
}

func parseDevice(device string) (int, error) {
	switch {
	case device == "" || device == "cpu":
		return deviceCPU, nil
	case device == "cuda":
		return 0, nil
	case strings.HasPrefix(device, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(device, "cuda:"))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("gotch backend: bad device %q (want cpu, cuda or cuda:N)", device)
		}
		return n, nil
	}
	return 0, fmt.Errorf("gotch backend: unsupported device %q (want cpu, cuda or cuda:N)", device)
}

// checkCUDA verifies that CUDA device d computes correctly. gotch's
// IsAvailable alone is not trusted: it has reported devices that fail on
// first use (driver/runtime mismatches, devices hidden by the container).
func checkCUDA(d int) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lastError() // clear any stale message on this thread
	if !lib.AtcCudaIsAvailable() {
		return fmt.Errorf("libtorch reports no CUDA device (no NVIDIA driver or GPU visible, or this build links " +
			"libtorch_cpu only: run `make torch TORCH_CUDA=1` to link libtorch_cuda)")
	}
	if n := int(lib.AtcCudaDeviceCount()); d >= n {
		return fmt.Errorf("CUDA device %d requested, libtorch sees %d", d, n)
	}
	mem := &arena{}
	defer mem.free()
	defer func() {
		if r := recover(); r != nil {
			te, ok := r.(*torchError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("test computation on the device failed: %w", te)
		}
	}()
	a := []float32{1, 2, 3, 4, 5, 6}    // [2,3]
	b := []float32{7, 8, 9, 10, 11, 12} // [3,2]
	ta := mem.floats(a, []int{2, 3}, d)
	tb := mem.floats(b, []int{3, 2}, d)
	if dev := lib.AtDevice(ta); dev != d {
		return fmt.Errorf("tensor moved to CUDA device %d reports device %d", d, dev)
	}
	prod := mem.call("mm", func(out *lib.Ctensor) { lib.AtgMm(out, ta, tb) })
	got := make([]float32, 4)
	download(prod, got)
	for i := range 2 {
		for j := range 2 {
			var want float32
			for k := range 3 {
				want += a[i*3+k] * b[k*2+j]
			}
			if math.Abs(float64(got[i*2+j]-want)) > 1e-3 {
				return fmt.Errorf("test matrix product on the device gave %v, want [58 64 139 154]", got)
			}
		}
	}
	return nil
}

var _ nn.Describer = (*Backend)(nil)

// Describe names the library: libtorch through gotch v0.9.1, and its
// intra-op threads (OMP_NUM_THREADS, else libtorch's default of one per
// core).
func (b *Backend) Describe() string {
	threads := "one intra-op thread per core"
	if n := os.Getenv("OMP_NUM_THREADS"); n != "" {
		threads = "OMP_NUM_THREADS=" + n
	}
	return "libtorch through gotch v0.9.1, " + threads
}

// Name returns "gotch".
func (*Backend) Name() string { return "gotch" }

// Device returns "cpu" or "cuda:N".
func (b *Backend) Device() string {
	if b.device == deviceCPU {
		return "cpu"
	}
	return fmt.Sprintf("cuda:%d", b.device)
}

// Compile checks build on a dry graph and returns an executable that runs
// it eagerly on every Run.
func (b *Backend) Compile(spec nn.Spec, build nn.BuildFunc) (nn.Executable, error) {
	if build == nil {
		return nil, fmt.Errorf("gotch: compile %s: nil build function", spec.Key)
	}
	g := newGraph(spec, true, b.device, nn.Feeds{}, nil)
	if err := build(g); err != nil {
		return nil, fmt.Errorf("gotch: compile %s: build: %w", spec.Key, err)
	}
	g.done = true
	if spec.Train && g.loss == nil {
		return nil, fmt.Errorf("gotch: compile %s: training executable without a Loss", spec.Key)
	}
	if g.loss == nil && len(g.outputs) == 0 {
		return nil, fmt.Errorf("gotch: compile %s: build marked no Output and no Loss", spec.Key)
	}
	e := &executable{key: spec.Key, spec: spec, build: build, device: b.device, decls: g.decls}
	if spec.Train {
		// Every parameter's gradient is overwritten, including those the
		// Loss does not depend on (zero), as in the gorgonia backend.
		seen := map[*nn.Param]bool{}
		add := func(p *nn.Param) {
			if !seen[p] {
				seen[p] = true
				e.grads = append(e.grads, p)
			}
		}
		if spec.Params != nil {
			for _, p := range spec.Params.List() {
				add(p)
			}
		}
		for _, p := range g.bound {
			add(p)
		}
	}
	return e, nil
}
