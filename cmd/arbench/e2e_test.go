package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/datasets"
	"arbench/harness"
)

// corpus writes a deterministic English-like text of about n bytes.
func corpus(t *testing.T, n int) string {
	t.Helper()
	words := strings.Fields("the model reads its own output and the error grows with every position while the context is limited to a window of tokens")
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(9) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	path := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tinyExperiment is a real rnn/lstm/transformer run small enough for a test.
func tinyExperiment(t *testing.T, data, out string, steps int) string {
	t.Helper()
	cfg := fmt.Sprintf(`name: tiny
seed: 5
out: %s
train: {steps: %d, batch: 8, lr: 0.01, eval_every: 10}
tasks:
  - name: text
    data: %s
    config: {seq_len: 24, eval_stride: 8, eval_batch: 16, valid_tokens: 512}
models:
  - name: rnn
    config: {embed: 12, hidden: 24}
  - name: lstm
    config: {embed: 12, hidden: 24}
  - name: transformer
    config: {dim: 16, heads: 2, layers: 1, context: 24, dropout: 0.1}
`, out, steps, data)
	path := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func metricValues(t *testing.T, dir string) map[string]float64 {
	t.Helper()
	rf, err := harness.LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, r := range rf.Results {
		out[r.Model+"/"+r.Metric] = float64(r.Value)
	}
	return out
}

// TestEndToEndRealModels trains the three real plugins on the gorgonia
// backend through the CLI and checks the acceptance properties of the
// foundation: learning, same seed ⇒ identical metrics, and weights that
// round-trip through -save-weights/-load-weights.
func TestEndToEndRealModels(t *testing.T) {
	data := corpus(t, 24000)
	outA := filepath.Join(t.TempDir(), "a")
	weights := filepath.Join(t.TempDir(), "w")
	if _, stderr, err := arbench(t, "run", "-config", tinyExperiment(t, data, outA, 40), "-quiet", "-save-weights", weights); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	a := metricValues(t, outA)
	for _, m := range []string{"rnn", "lstm", "transformer"} {
		bpb, ok := a[m+"/bits_per_byte"]
		if !ok || math.IsNaN(bpb) || bpb >= 6 || bpb <= 0 {
			t.Errorf("%s: bits_per_byte = %v (present %v); want a learned value below 6 (uniform is 8)", m, bpb, ok)
		}
		if a[m+"/bits_per_byte_sliding"] <= 0 {
			t.Errorf("%s: no sliding-window evaluation", m)
		}
	}

	// Same seed, same everything: identical metric values.
	outB := filepath.Join(t.TempDir(), "b")
	if _, stderr, err := arbench(t, "run", "-config", tinyExperiment(t, data, outB, 40), "-quiet"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	b := metricValues(t, outB)
	if len(a) != len(b) {
		t.Fatalf("runs report %d and %d metrics", len(a), len(b))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: %v then %v with the same seed", k, v, b[k])
		}
	}

	// Loading the saved weights and evaluating without training reproduces
	// the trained models' metrics exactly.
	outC := filepath.Join(t.TempDir(), "c")
	if _, stderr, err := arbench(t, "run", "-config", tinyExperiment(t, data, outC, 0), "-quiet", "-load-weights", weights); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for k, v := range metricValues(t, outC) {
		if a[k] != v {
			t.Errorf("%s: trained %v, reloaded %v", k, a[k], v)
		}
	}

	// The manifest records what is needed to reproduce the numbers.
	raw, err := os.ReadFile(filepath.Join(outA, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Manifest map[string]any `json:"manifest"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"arbench_version", "git_sha", "go_version", "backend", "device", "cpu", "seeds", "config", "datasets"} {
		if _, ok := doc.Manifest[k]; !ok {
			t.Errorf("manifest lacks %q: %v", k, keys(doc.Manifest))
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestMissingCorpusSaysHowToFetch runs text/jargon against an empty data
// directory: the error says how to fetch it and nothing is written.
func TestMissingCorpusSaysHowToFetch(t *testing.T) {
	t.Setenv(datasets.EnvDir, t.TempDir())
	out := filepath.Join(t.TempDir(), "out")
	_, _, err := arbench(t, "run", "-model", "rnn", "-task", "text/jargon", "-steps", "1", "-out", out, "-quiet")
	if err == nil {
		t.Fatal("no error for a missing corpus")
	}
	if !strings.Contains(err.Error(), "make datasets") || !strings.Contains(err.Error(), "jargon") {
		t.Errorf("error does not say how to fetch the corpus: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "results.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("results written for a failed run: %v", err)
	}
}
