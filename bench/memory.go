package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"

	"arbench/harness"
)

// Memory is the peak memory of one measured configuration.
type Memory struct {
	// PeakRSS is the process's peak resident set size (bytes) while the
	// configuration ran: VmHWM from /proc/self/status after resetting it
	// through /proc/self/clear_refs (Linux), or getrusage's ru_maxrss,
	// which cannot be reset and is then the peak of the whole process so
	// far (RSSReset false).
	PeakRSS  int64 `json:"peak_rss_bytes"`
	RSSReset bool  `json:"rss_reset"`
	// PeakHeap is the largest Go heap (bytes of live and not yet swept
	// objects, runtime/metrics /memory/classes/heap/objects:bytes) seen by
	// sampling every millisecond and at the end.
	PeakHeap int64 `json:"peak_heap_bytes"`
	// PluginPeakRSS is the peak resident set size (bytes) of the process a
	// model computes in (harness.ProcessReporter: an external plugin),
	// started for this configuration; 0 for arbench's own models.
	PluginPeakRSS int64 `json:"plugin_peak_rss_bytes,omitempty"`
}

// pluginPeakRSS returns VmHWM of the process m computes in, when it has
// one (harness.ProcessReporter), else 0. The plugin process is started
// for each measured configuration, so its peak is that configuration's.
func pluginPeakRSS(m harness.Model) int64 {
	pr, ok := m.(harness.ProcessReporter)
	if !ok || pr.ProcessID() == 0 {
		return 0
	}
	v, _ := procPeakRSS(strconv.Itoa(pr.ProcessID()))
	return v
}

// procPeakRSS returns VmHWM (bytes) of /proc/PID/status ("self" for this
// process).
func procPeakRSS(pid string) (int64, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, false
	}
	v, ok := statusKB(b, "VmHWM:")
	return v * 1024, ok
}

const heapMetric = "/memory/classes/heap/objects:bytes"

// memoryMonitor samples the Go heap in the background.
type memoryMonitor struct {
	stop  chan struct{}
	done  sync.WaitGroup
	peak  int64
	reset bool
}

// startMemory collects garbage, returns freed memory to the OS, resets the
// peak RSS where the kernel allows it and starts sampling the heap.
func startMemory() *memoryMonitor {
	runtime.GC()
	debug.FreeOSMemory()
	m := &memoryMonitor{stop: make(chan struct{}), reset: resetPeakRSS()}
	m.peak = heapBytes()
	m.done.Add(1)
	go func() {
		defer m.done.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tick.C:
				m.peak = max(m.peak, heapBytes())
			}
		}
	}()
	return m
}

// finish stops sampling and returns the peaks.
func (m *memoryMonitor) finish() Memory {
	close(m.stop)
	m.done.Wait()
	m.peak = max(m.peak, heapBytes())
	return Memory{PeakRSS: peakRSS(), RSSReset: m.reset, PeakHeap: m.peak}
}

func heapBytes() int64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// resetPeakRSS resets VmHWM (writing 5 to /proc/self/clear_refs, Linux
// 4.0 and later) and reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS returns VmHWM from /proc/self/status, or ru_maxrss.
func peakRSS() int64 {
	if v, ok := procPeakRSS("self"); ok {
		return v
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		return ru.Maxrss * 1024 // kilobytes on Linux
	}
	return 0
}

// statusKB reads a "Key:   123 kB" line of /proc/self/status.
func statusKB(status []byte, key string) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(key)) {
			continue
		}
		f := bytes.Fields(line[len(key):])
		if len(f) == 0 {
			return 0, false
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		return v, err == nil
	}
	return 0, false
}
