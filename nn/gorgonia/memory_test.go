package gorgonia

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"arbench/nn"
)

// BenchmarkTrainMemory compiles and runs once the training step of
// issue 13's large Transformer (peerLarge) and of a NAR of the same size,
// and reports the bytes of buffers the executable holds (held-MiB) and the
// process's peak resident set while compiling and running it (peak-MiB,
// /proc/self/status VmHWM, reset before the compile) and its rise over the
// resident set before the compile (rise-MiB); own-MiB is what the buffers
// would hold with one buffer per value. One iteration is the measurement,
// with buffers pooled or, with ARBENCH_NO_POOL=1, not:
//
//	go test ./nn/gorgonia -run '^$' -bench TrainMemory -benchtime 1x
func BenchmarkTrainMemory(b *testing.B) {
	cases := []struct {
		name  string
		graph func(modelSize, float32) (*nn.ParamSet, nn.Feeds, nn.BuildFunc)
	}{{"transformer", lmGraph}, {"nar", narGraph}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ps, feeds, build := c.graph(peerLarge, 0)
			for range b.N {
				measureTrain(b, New(), ps, feeds, build)
			}
		})
	}
}

// measureTrain compiles and runs build once on be and reports its memory
// (see BenchmarkTrainMemory).
func measureTrain(b *testing.B, be *Backend, ps *nn.ParamSet, feeds nn.Feeds, build nn.BuildFunc) {
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(b)
	before := procStatusKB(b, "VmRSS")
	exe, err := be.Compile(nn.Spec{Key: b.Name(), Params: ps, Train: true}, build)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := exe.Run(context.Background(), feeds); err != nil {
		b.Fatal(err)
	}
	peak := procStatusKB(b, "VmHWM")
	st := exe.(*executable).held()
	b.ReportMetric(float64(st.total())/(1<<20), "held-MiB")
	b.ReportMetric(float64(st.total()-st.values+st.unpooled)/(1<<20), "own-MiB")
	b.ReportMetric(float64(peak)/1024, "peak-MiB")
	b.ReportMetric(float64(peak-before)/1024, "rise-MiB")
	exe.Close()
}

// resetPeakRSS sets VmHWM to the current resident set (Linux's
// clear_refs, value 5).
func resetPeakRSS(tb testing.TB) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Skipf("cannot reset the peak resident set: %v", err)
	}
}

// procStatusKB returns the kB of field in /proc/self/status.
func procStatusKB(tb testing.TB, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			tb.Fatalf("%s: %v", field, err)
		}
		return kb
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}
