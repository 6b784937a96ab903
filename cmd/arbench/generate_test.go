package main

import (
	"context"
	"math"
	"path/filepath"
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
	backend, err := nn.OpenBackend("fake", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	m := harnesstest.NewLM()
	if err := m.Setup(context.Background(), harness.Env{Backend: backend, Vocab: harnesstest.Vocab, SeqLen: 8, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	w := m.Params().Get("w")
	for i := range w.Data {
		w.Data[i] = float32(math.NaN())
	}
	path := filepath.Join(t.TempDir(), "nan.safetensors")
	if err := nn.SaveSafetensors(path, m.Params(), map[string]string{"family": "fake-lm", "vocab": "8", "seq_len": "8"}); err != nil {
		t.Fatal(err)
	}
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
