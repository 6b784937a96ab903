package harness

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemoryFraction is the share of the machine's memory a configuration's
// estimate may take: the rest is left to the Go runtime (whose collector
// lets the heap grow past the live data), the task's data and the system.
const MemoryFraction = 0.9

// CheckMemory is the one place the harness applies MemoryEstimator: a model
// without it passes, as does any model when the machine's memory cannot be
// read (see MachineMemory). Otherwise it refuses a configuration whose
// estimated peak (MemoryEstimate.Total) exceeds MemoryFraction of the
// machine's memory, with the estimate's breakdown, the machine's memory and
// where that figure came from. It allocates nothing the size of the model,
// so the experiment check calls it before any Setup.
func CheckMemory(m Model, env Env) error {
	bytes, source := MachineMemory()
	return checkMemory(m, env, bytes, source)
}

func checkMemory(m Model, env Env, machine int64, source string) error {
	me, ok := m.(MemoryEstimator)
	if !ok || machine <= 0 {
		return nil
	}
	est := me.EstimateMemory(env)
	// Summed in float64: parts near math.MaxInt64 must not wrap around.
	total := float64(est.Params) + max(float64(est.Training), float64(est.Inference))
	if total <= MemoryFraction*float64(machine) {
		return nil
	}
	return fmt.Errorf("%s: estimated memory %s (parameters %s, training %s, inference %s) exceeds %.0f%% of this machine's %s (%s); "+
		"shrink the model's sizes in its config (widths, layers), train.batch or the task's seq_len",
		m.Info().Family, formatBytes(saturate(total)), formatBytes(est.Params), formatBytes(est.Training), formatBytes(est.Inference),
		100*MemoryFraction, formatBytes(machine), source)
}

// LimitHeap sets the Go runtime's soft memory limit (debug.SetMemoryLimit)
// to MemoryFraction of MachineMemory and returns it; it sets nothing and
// returns 0 when GOMEMLIMIT is set (the user's choice wins) or the
// machine's memory is unknown. Memory estimates count live data, but with
// the default GOGC=100 the collector lets the heap grow to twice the live
// data before collecting (measured: a text run with 346 MiB live peaked at
// 713 MiB RSS), so a configuration CheckMemory accepts could still exhaust
// the machine; under the limit the collector works harder instead.
func LimitHeap() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	machine, _ := MachineMemory()
	if machine <= 0 {
		return 0
	}
	limit := int64(MemoryFraction * float64(machine))
	debug.SetMemoryLimit(limit)
	return limit
}

// saturate converts a non-negative byte count to int64, saturating at
// math.MaxInt64 (converting a larger float64 is not defined).
func saturate(v float64) int64 {
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// formatBytes writes n in binary units with three significant digits
// ("1.50 GiB", "512 B").
func formatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	switch {
	case u == 0:
		return fmt.Sprintf("%d B", n)
	case v < 10:
		return fmt.Sprintf("%.2f %s", v, units[u])
	case v < 100:
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.0f %s", v, units[u])
}

// MachineMemory returns the memory available to this process in bytes and
// where the figure comes from: MemTotal of /proc/meminfo, or a smaller
// cgroup limit of the process's cgroup or one of its ancestors (cgroup v2
// memory.max, v1 memory.limit_in_bytes), as a container sets. It returns
// 0 and "unknown" where neither can be read (outside Linux).
func MachineMemory() (bytes int64, source string) { return machineMemory("/") }

// machineMemory is MachineMemory with every path under root (for tests).
func machineMemory(root string) (int64, string) {
	total, err := memTotal(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return 0, "unknown"
	}
	bytes, source := total, "MemTotal in /proc/meminfo"
	if limit, file := cgroupLimit(root); limit > 0 && limit < bytes {
		bytes, source = limit, "cgroup limit "+file
	}
	return bytes, source
}

// memTotal reads MemTotal (in kB) from a meminfo file.
func memTotal(file string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil || kb <= 0 {
			return 0, fmt.Errorf("%s: malformed MemTotal line %q", file, sc.Text())
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemTotal line", file)
}

// cgroupMount is a mounted cgroup hierarchy that holds memory limits.
type cgroupMount struct {
	// root is the cgroup path at the mount's root, point where it is mounted.
	root, point string
	// v2 is a unified (cgroup2) hierarchy; otherwise a v1 memory hierarchy.
	v2 bool
}

// limitFile is the name of the memory limit file in the mount's cgroups.
func (c cgroupMount) limitFile() string {
	if c.v2 {
		return "memory.max"
	}
	return "memory.limit_in_bytes"
}

// cgroupLimit returns the smallest memory limit set on the process's
// cgroups and their ancestors, with the file it came from (0 when none).
func cgroupLimit(root string) (int64, string) {
	mounts := cgroupMounts(filepath.Join(root, "proc/self/mountinfo"))
	paths := cgroupPaths(filepath.Join(root, "proc/self/cgroup"))
	var best int64
	var file string
	for _, mt := range mounts {
		cg, ok := paths[mt.v2]
		if !ok {
			continue
		}
		rel, ok := strings.CutPrefix(cg, mt.root)
		if !ok || (mt.root != "/" && rel != "" && !strings.HasPrefix(rel, "/")) {
			continue
		}
		for dir := path.Join("/", rel); ; dir = path.Dir(dir) {
			f := path.Join(mt.point, dir, mt.limitFile())
			if v := readLimit(filepath.Join(root, f)); v > 0 && (best == 0 || v < best) {
				best, file = v, f
			}
			if dir == "/" {
				break
			}
		}
	}
	return best, file
}

// readLimit reads a cgroup limit file: a byte count, or "max" (no limit,
// returned as 0 like a missing file).
func readLimit(file string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v <= 0 {
		return 0
	}
	return v
}

// cgroupMounts lists the cgroup2 and v1 memory mounts of a mountinfo file
// (fields: id parent dev root point options... - fstype source superopts).
func cgroupMounts(file string) []cgroupMount {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var out []cgroupMount
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 1 {
			continue
		}
		switch {
		case g[0] == "cgroup2":
			out = append(out, cgroupMount{root: f[3], point: f[4], v2: true})
		case g[0] == "cgroup" && len(g) >= 3 && hasOption(g[2], "memory"):
			out = append(out, cgroupMount{root: f[3], point: f[4]})
		}
	}
	return out
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// cgroupPaths reads /proc/self/cgroup ("id:controllers:path" lines) and
// returns the process's cgroup path in the unified hierarchy (key true,
// the "0::" line) and in the v1 memory hierarchy (key false).
func cgroupPaths(file string) map[bool]string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	out := map[bool]string{}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			out[true] = parts[2]
		case hasOption(parts[1], "memory"):
			out[false] = parts[2]
		}
	}
	return out
}
