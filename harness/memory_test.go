package harness

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"arbench/nn"
)

// writeTree creates files (path → contents) under a fresh directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	meminfo8G = "MemTotal:        8388608 kB\nMemFree:         1000 kB\n"
	mountsV2  = "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
	mountsV1  = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
		"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
)

func TestMachineMemory(t *testing.T) {
	for _, c := range []struct {
		name       string
		files      map[string]string
		want       int64
		wantSource string
	}{
		{"meminfo only", map[string]string{"proc/meminfo": meminfo8G}, 8 << 30, "MemTotal in /proc/meminfo"},
		{"cgroup v2 ancestor limit", map[string]string{
			"proc/meminfo":                    meminfo8G,
			"proc/self/mountinfo":             mountsV2,
			"proc/self/cgroup":                "0::/a/b\n",
			"sys/fs/cgroup/a/b/memory.max":    "max\n",
			"sys/fs/cgroup/a/memory.max":      "1073741824\n",
			"sys/fs/cgroup/other/memory.max":  "1024\n", // not ours
			"sys/fs/cgroup/a/b/memory.high":   "1024\n", // not a limit file
			"sys/fs/cgroup/a/b/cgroup.events": "populated 1\n",
		}, 1 << 30, "cgroup limit /sys/fs/cgroup/a/memory.max"},
		{"cgroup v1 limit", map[string]string{
			"proc/meminfo":        meminfo8G,
			"proc/self/mountinfo": mountsV1,
			"proc/self/cgroup":    "4:memory:/job\n1:cpu:/\n0::/\n",
			"sys/fs/cgroup/memory/job/memory.limit_in_bytes": "2147483648\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":     "9223372036854771712\n",
		}, 2 << 30, "cgroup limit /sys/fs/cgroup/memory/job/memory.limit_in_bytes"},
		{"cgroup v1 unlimited", map[string]string{
			"proc/meminfo":        meminfo8G,
			"proc/self/mountinfo": mountsV1,
			"proc/self/cgroup":    "4:memory:/job\n",
			"sys/fs/cgroup/memory/job/memory.limit_in_bytes": "9223372036854771712\n",
		}, 8 << 30, "MemTotal in /proc/meminfo"},
		{"no meminfo", map[string]string{"proc/self/cgroup": "0::/\n"}, 0, "unknown"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, source := machineMemory(writeTree(t, c.files))
			if got != c.want || source != c.wantSource {
				t.Errorf("machineMemory = %d (%s), want %d (%s)", got, source, c.want, c.wantSource)
			}
		})
	}
	if runtime.GOOS == "linux" {
		if got, source := MachineMemory(); got <= 0 {
			t.Errorf("MachineMemory on Linux = %d (%s), want positive", got, source)
		}
	}
}

// plain is a model without a memory estimate.
type plain struct{}

func (plain) Config() Config                   { return nil }
func (plain) Setup(context.Context, Env) error { return nil }
func (plain) Params() *nn.ParamSet             { return nil }
func (plain) Info() ModelInfo                  { return ModelInfo{Family: "big"} }

// estimating is a model with a fixed memory estimate.
type estimating struct {
	plain
	est MemoryEstimate
}

func (e *estimating) EstimateMemory(Env) MemoryEstimate { return e.est }

var _ MemoryEstimator = (*estimating)(nil)

func TestCheckMemory(t *testing.T) {
	const machine = 1 << 30
	fits := &estimating{est: MemoryEstimate{Params: 100 << 20, Training: 700 << 20, Inference: 50 << 20}}
	if err := checkMemory(fits, Env{}, machine, "test"); err != nil {
		t.Errorf("800 MiB on 1 GiB refused: %v", err)
	}
	if err := checkMemory(plain{}, Env{}, machine, "test"); err != nil {
		t.Errorf("model without an estimate refused: %v", err)
	}
	huge := &estimating{est: MemoryEstimate{Params: 3 << 30, Training: 9 << 30, Inference: 1 << 30}}
	if err := checkMemory(huge, Env{}, 0, "unknown"); err != nil {
		t.Errorf("unknown machine memory refused: %v", err)
	}
	err := checkMemory(huge, Env{}, machine, "MemTotal in /proc/meminfo")
	if err == nil {
		t.Fatal("12 GiB on 1 GiB passed")
	}
	for _, want := range []string{"big:", "12.0 GiB", "parameters 3.00 GiB", "training 9.00 GiB", "inference 1.00 GiB",
		"1.00 GiB (MemTotal in /proc/meminfo)", "train.batch", "seq_len"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	near := &estimating{est: MemoryEstimate{Params: 950 << 20}}
	if err := checkMemory(near, Env{}, machine, "test"); err == nil || !strings.Contains(err.Error(), "model's sizes in its config") {
		t.Errorf("950 MiB of parameters on 1 GiB (over 90%%): %v", err)
	}
	// Parts at the int64 limit must not wrap around to a small total.
	sat := &estimating{est: MemoryEstimate{Params: math.MaxInt64, Training: math.MaxInt64}}
	if err := checkMemory(sat, Env{}, machine, "test"); err == nil || !strings.Contains(err.Error(), "8.00 EiB") {
		t.Errorf("saturated estimate: %v", err)
	}
}

func TestMemoryFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.50 KiB", 100 << 20: "100 MiB",
		25 << 30: "25.0 GiB", math.MaxInt64: "8.00 EiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMemoryLimitHeap(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	t.Setenv("GOMEMLIMIT", "")
	machine, source := MachineMemory()
	got := LimitHeap()
	if machine <= 0 {
		if got != 0 {
			t.Errorf("LimitHeap with unknown machine memory (%s) = %d, want 0", source, got)
		}
		return
	}
	if want := int64(MemoryFraction * float64(machine)); got != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("LimitHeap = %d (runtime limit %d), want %d", got, debug.SetMemoryLimit(-1), want)
	}
	debug.SetMemoryLimit(prev)
	t.Setenv("GOMEMLIMIT", "1GiB")
	if got := LimitHeap(); got != 0 || debug.SetMemoryLimit(-1) != prev {
		t.Errorf("LimitHeap with GOMEMLIMIT set = %d, changed the runtime limit to %d", got, debug.SetMemoryLimit(-1))
	}
}
