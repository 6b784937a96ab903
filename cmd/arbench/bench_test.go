package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchCommand runs `arbench bench` on a tiny experiment with a bench:
// section and checks the tables and files it writes.
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tiny.yaml")
	if err := os.WriteFile(cfg, []byte(`name: tiny
backend: gorgonia
tasks: [{name: fake/count}]
models:
  - name: rnn
    config: {embed: 4, hidden: 5}
  - name: transformer
    label: tr
    config: {dim: 8, heads: 2, layers: 1, context: 16}
bench:
  vocab: 11
  repeats: 2
  min_seconds: 0
  ceiling_size: 32
  train: {batch: 2, seq_len: 4, seq_lens: [4], batches: []}
  score: {batch: 2, seq_len: 4, seq_lens: [], batches: []}
  generate: {prompt: 2, batches: [1], lengths: [6], refeed_batches: [1], refeed_lengths: [6]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	stdout, stderr, err := arbench(t, "bench", "-config", cfg, "-out", out, "-model", "tr")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, s := range []string{"## Training and scoring", "| tr | train | 2 | 4 |", "| tr | cached | 1 | 6 |", "| tr | refeed | 1 | 6 |", "speed-up"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	if strings.Contains(stdout, "| rnn |") {
		t.Error("-model tr also measured rnn")
	}
	if !strings.Contains(stderr, "matmul ceiling") || !strings.Contains(stderr, "tr           generate/cached b=1 len=6") {
		t.Errorf("progress:\n%s", stderr)
	}
	for _, f := range []string{"bench.json", "bench.md", "bench.txt", "charts/throughput_vs_seq_len.svg", "charts/latency_vs_length_b1.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}

	// -no-cache re-feeds every model; flags override the section.
	stdout, stderr, err = arbench(t, "bench", "-config", cfg, "-out", out, "-no-cache", "-repeats", "1", "-quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if stderr != "" || strings.Contains(stdout, "| cached |") || !strings.Contains(stdout, "| rnn | refeed | 1 | 6 |") {
		t.Errorf("-no-cache -quiet:\nstdout %s\nstderr %s", stdout, stderr)
	}

	if _, _, err := arbench(t, "bench", "-model", "nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown model: %v", err)
	}
	if _, _, err := arbench(t, "bench", "-config", cfg, "-repeats", "0"); err == nil || !strings.Contains(err.Error(), "repeats") {
		t.Errorf("-repeats 0: %v", err)
	}
}
