package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
	"arbench/nn"
)

// TestGenerateRefusesNonFiniteWeights is issue 9 case 9: weights whose
// distributions are NaN used to print NUL bytes (token 0) and exit 0.
// Greedy and sampled generation must fail, naming the step, and print
// nothing.
func TestGenerateRefusesNonFiniteWeights(t *testing.T) {
	path := fakeLMWeights(t, "fake-lm", "nan.safetensors", func(w []float32) {
		for i := range w {
			w[i] = float32(math.NaN())
		}
	})
	for _, temp := range []string{"0", "1"} {
		stdout, _, err := arbench(t, "generate", "-load-weights", path, "-backend", "fake", "-prompt", "\x01\x02", "-max", "5", "-temperature", temp)
		if err == nil || !strings.Contains(err.Error(), "prompt 0, new token 1") || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("temperature %s: err = %v, want a NaN distribution error at new token 1", temp, err)
		}
		if strings.ContainsRune(stdout, 0) || stdout != "" {
			t.Errorf("temperature %s: stdout %q, want nothing", temp, stdout)
		}
	}
}

// chainWeights saves fake-lm weights whose greedy successor of byte b is
// b+1 (mod 8), with the metadata generate reads, and returns the file.
func chainWeights(t *testing.T, family string) string {
	t.Helper()
	return fakeLMWeights(t, family, "chain.safetensors", func(w []float32) {
		for prev := range harnesstest.Vocab {
			for next := range harnesstest.Vocab {
				w[prev*harnesstest.Vocab+next] = 0
			}
			w[prev*harnesstest.Vocab+(prev+1)%harnesstest.Vocab] = 5
		}
	})
}

// fakeLMWeights sets up a fake-lm, lets fill set its bigram table "w" and
// saves it as name with the metadata generate reads (family, vocab 8,
// seq_len 8).
func fakeLMWeights(t *testing.T, family, name string, fill func(w []float32)) string {
	t.Helper()
	backend, err := nn.OpenBackend("fake", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	m := harnesstest.NewLM()
	if err := m.Setup(context.Background(), harness.Env{Backend: backend, Vocab: harnesstest.Vocab, SeqLen: 8, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	fill(m.Params().Get("w").Data)
	path := filepath.Join(t.TempDir(), name)
	if err := nn.SaveSafetensors(path, m.Params(), map[string]string{"family": family, "vocab": "8", "seq_len": "8"}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGenerateExtremeSampling is issue 9's review findings 4 and 5:
// -temperature 1e-310 printed "\377\377..." (NaN weights, the last byte
// picked) and -max 9223372036854775807 failed with "maximum length
// -9223372036854775805 < 1". A subnormal temperature samples the argmax, and
// the largest -max generates until the stop byte.
func TestGenerateExtremeSampling(t *testing.T) {
	path := chainWeights(t, "fake-lm")
	for _, c := range []struct{ temp, max string }{
		{"0", "9223372036854775807"}, {"1", "9223372036854775807"}, {"1e-310", "4"}, {"5e-324", "4"}, {"1e-310", "9223372036854775807"},
	} {
		stdout, _, err := arbench(t, "generate", "-load-weights", path, "-backend", "fake", "-prompt", "\x00\x01",
			"-max", c.max, "-stop", "5", "-temperature", c.temp)
		if c.temp == "1" { // sampled: any bytes, but it stops at the stop byte
			if err != nil || !strings.HasSuffix(stdout, "\x05\n") {
				t.Errorf("-temperature 1 -max %s: stdout %q, err %v; want it to end at the stop byte", c.max, stdout, err)
			}
			continue
		}
		if err != nil || stdout != "\x00\x01\x02\x03\x04\x05\n" {
			t.Errorf("-temperature %s -max %s: stdout %q, err %v; want \"\\x00\\x01\\x02\\x03\\x04\\x05\\n\"", c.temp, c.max, stdout, err)
		}
	}
}

// TestGenerateChecksModel is issue 9's review finding 2: generate -config
// skipped the experiment's checks, so rnn {hidden: 100000000} allocated
// until the process died. The model must be refused before Setup, with its
// memory estimate, allocating nothing of its size.
func TestGenerateChecksModel(t *testing.T) {
	if machine, _ := harness.MachineMemory(); machine <= 0 {
		t.Skip("the machine's memory is unknown, so nothing is refused for its size")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "it.yaml")
	if err := os.WriteFile(cfg, []byte("name: it\ntasks: [{name: text/jargon}]\nmodels:\n  - name: rnn\n    config: {hidden: 100000000}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := chainWeights(t, "rnn")
	var start, end runtime.MemStats
	runtime.ReadMemStats(&start)
	_, _, err := arbench(t, "generate", "-config", cfg, "-load-weights", path, "-prompt", "hi")
	runtime.ReadMemStats(&end)
	if err == nil || !strings.Contains(err.Error(), "estimated memory") || !strings.Contains(err.Error(), "rnn") {
		t.Errorf("err = %v, want the rnn refused for its estimated memory", err)
	}
	if alloc := end.TotalAlloc - start.TotalAlloc; alloc > 64<<20 {
		t.Errorf("generate allocated %d bytes before refusing the model", alloc)
	}
}

// TestGenerateClosesModel: generate closes a model that is an io.Closer
// and reports a failing Close.
func TestGenerateClosesModel(t *testing.T) {
	dir := t.TempDir()
	path := chainWeights(t, "fake-fragile")
	for _, closeErr := range []bool{false, true} {
		cfg := filepath.Join(dir, "fragile.yaml")
		yaml := "name: it\ntasks: [{name: fake/count}]\nmodels:\n  - name: fake-fragile\n"
		if closeErr {
			yaml += "    config: {close_error: true}\n"
		}
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		before := harnesstest.FragileCloses.Load()
		stdout, _, err := arbench(t, "generate", "-config", cfg, "-load-weights", path, "-backend", "fake", "-prompt", "\x01",
			"-max", "3", "-temperature", "0")
		if n := harnesstest.FragileCloses.Load() - before; n != 1 {
			t.Errorf("close_error %v: the model was closed %d times, want once", closeErr, n)
		}
		if stdout != "\x01\x02\x03\x04\n" {
			t.Errorf("close_error %v: stdout %q", closeErr, stdout)
		}
		if closeErr != (err != nil) || (closeErr && !strings.Contains(err.Error(), "close fails as configured")) {
			t.Errorf("close_error %v: err = %v", closeErr, err)
		}
	}
}
