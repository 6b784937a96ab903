package external_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
)

// torchPython is the interpreter with PyTorch for the example plugins
// (python/examples): $ARBENCH_TORCH_PYTHON, which `make test` sets after
// installing Debian's python3-torch (the test then fails without torch),
// else /usr/bin/python3 (the test is skipped without torch).
func torchPython(t *testing.T) string {
	t.Helper()
	py, required := os.Getenv("ARBENCH_TORCH_PYTHON"), true
	if py == "" {
		py, required = "/usr/bin/python3", false
	}
	if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
		if required {
			t.Fatalf("ARBENCH_TORCH_PYTHON=%s cannot import torch (make python-deps installs it): %v\n%s", py, err, out)
		}
		t.Skipf("%s has no torch (make test installs python3-torch)", py)
	}
	return py
}

// TestTorchExamplesReproduceGoModels: the PyTorch example plugins load the
// weights arbench's Go rnn, lstm and transformer saved after training and
// score the same test text to the same bits per byte (within 1e-5), so a
// PyTorch model and its Go twin are compared in one harness on equal
// terms.
func TestTorchExamplesReproduceGoModels(t *testing.T) {
	py := torchPython(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "corpus.txt")
	var text strings.Builder
	for i := range 300 {
		fmt.Fprintf(&text, "line %d: the quick brown fox jumps over the lazy dog %d times. ", i, i*i%97)
	}
	if err := os.WriteFile(data, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Abs(filepath.Join("..", "..", "python", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	header := func(out string, steps int) string {
		return fmt.Sprintf(`name: same-weights
seed: 4
out: %s
train: {steps: %d, batch: 4, lr: 0.01, clip: 1.0}
tasks:
  - name: text/jargon
    data: %s
    config: {seq_len: 16, eval_stride: 8}
models:
`, filepath.Join(dir, out), steps, data)
	}
	goModels := `  - name: rnn
    config: {embed: 8, hidden: 16}
  - name: lstm
    config: {embed: 8, hidden: 16}
  - name: transformer
    config: {dim: 16, heads: 2, layers: 1, ff: 32, context: 16, dropout: 0}
`
	torch := fmt.Sprintf(`  - name: ext
    label: rnn
    config: {command: [%[1]s, %[2]s/torch_rnn.py], plugin_config: {cell: rnn, embed: 8, hidden: 16}}
  - name: ext
    label: lstm
    config: {command: [%[1]s, %[2]s/torch_rnn.py], plugin_config: {cell: lstm, embed: 8, hidden: 16}}
  - name: ext
    label: transformer
    config: {command: [%[1]s, %[2]s/torch_transformer.py, --context, "16"], plugin_config: {dim: 16, heads: 2, layers: 1, ff: 32, context: 16, dropout: 0}}
`, py, examples)
	run := func(src string, opt harness.RunOptions) *harness.ResultsFile {
		t.Helper()
		e, err := harness.ParseExperiment("same.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		rf, err := harness.Run(context.Background(), e, opt)
		if err != nil {
			t.Fatal(err)
		}
		return rf
	}
	weights := filepath.Join(dir, "weights")
	goRF := run(header("go", 30)+goModels, harness.RunOptions{SaveWeights: weights})
	torchRF := run(header("torch", 0)+torch, harness.RunOptions{LoadWeights: weights})
	value := func(rf *harness.ResultsFile, model, metric string) float64 {
		for _, r := range rf.Results {
			if r.Model == model && r.Metric == metric {
				return float64(r.Value)
			}
		}
		t.Fatalf("no %s of %s", metric, model)
		return 0
	}
	for _, model := range []string{"rnn", "lstm", "transformer"} {
		for _, metric := range []string{"bits_per_byte", "bits_per_byte_sliding"} {
			g, p := value(goRF, model, metric), value(torchRF, model, metric)
			t.Logf("%s %s: Go %.7f, PyTorch %.7f (difference %.1e)", model, metric, g, p, p-g)
			if math.Abs(p-g) > 1e-5 {
				t.Errorf("%s %s: Go %.7f, PyTorch example %.7f", model, metric, g, p)
			}
		}
	}
	for _, r := range torchRF.Runs {
		if r.WeightsIn == "" || !r.Info.Nondeterministic {
			t.Errorf("%s: weights in %q, nondeterministic %v", r.Model, r.WeightsIn, r.Info.Nondeterministic)
		}
	}
	// arbench trains the PyTorch model itself (its own Adam, arbench's
	// batches and schedule): the loss falls and it beats a uniform model.
	first := strings.SplitN(torch, "  - name: ext\n", 3)[1]
	trained := run(header("torch-train", 30)+"  - name: ext\n"+first, harness.RunOptions{})
	for _, c := range trained.Curves {
		if c.Name == harness.CurveTrainLoss && !(float64(c.Values[len(c.Values)-1]) < float64(c.Values[0])) {
			t.Errorf("PyTorch rnn trained by arbench: loss %v", c.Values)
		}
	}
	if bpb := value(trained, "rnn", "bits_per_byte"); !(bpb < 7) {
		t.Errorf("PyTorch rnn trained 30 steps by arbench: %v bits/byte", bpb)
	}
}

// TestTorchNARRunsSeq2seq: the PyTorch CMLM (python/examples/torch_nar.py,
// a conditional plugin with its own mask-predict) is trained by arbench on
// seq2seq/reverse and evaluated at each of its decoding settings, as the
// built-in nar is.
func TestTorchNARRunsSeq2seq(t *testing.T) {
	py := torchPython(t)
	examples, err := filepath.Abs(filepath.Join("..", "..", "python", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	e, err := harness.ParseExperiment("nar.yaml", []byte(fmt.Sprintf(`name: nar
seed: 1
out: %s
train: {steps: 40, batch: 16, lr: 0.003, clip: 1.0}
tasks:
  - name: seq2seq/reverse
    config: {symbols: 6, min_len: 2, max_len: 5, valid_rows: 8, test_rows: 32, latency_rows: 2}
models:
  - name: ext
    label: torch-nar
    config:
      command: [%s, %s/torch_nar.py, --sweep-iterations, "1,4"]
      plugin_config: {dim: 32, heads: 2, layers: 1, ff: 64, context: 16, max_offset: 4}
`, out, py, examples)))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := harness.Run(context.Background(), e, harness.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Runs) != 1 || !rf.Runs[0].Trained || rf.Runs[0].Steps != 40 {
		t.Fatalf("runs %+v", rf.Runs)
	}
	got := map[string]float64{}
	for _, r := range rf.Results {
		got[r.Metric] = float64(r.Value)
	}
	for _, name := range []string{"exact_match@T=1", "exact_match@T=4"} {
		if v, ok := got[name]; !ok || v < 0 || v > 1 {
			t.Errorf("%s = %v (present %v)", name, v, ok)
		}
	}
	for _, c := range rf.Curves {
		if c.Name == harness.CurveTrainLoss && !(float64(c.Values[len(c.Values)-1]) < float64(c.Values[0])) {
			t.Errorf("training loss %v does not fall", c.Values)
		}
	}
	t.Logf("exact match T=1 %.3f, T=4 %.3f after 40 steps", got["exact_match@T=1"], got["exact_match@T=4"])
}

// TestTorchRNNOnSyntheticTask: the PyTorch RNN example runs a synthetic
// task too (next-token distributions, free-running generation through its
// start/step), trained by arbench.
func TestTorchRNNOnSyntheticTask(t *testing.T) {
	py := torchPython(t)
	examples, err := filepath.Abs(filepath.Join("..", "..", "python", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := harness.ParseExperiment("s.yaml", []byte(fmt.Sprintf(`name: s
seed: 1
out: %s
train: {steps: 20, batch: 8, lr: 0.01, clip: 1.0}
tasks:
  - name: synthetic/copy
    config: {lengths: [4], eval_rows: 16, valid_rows: 16, eval_batch: 8}
models:
  - name: ext
    label: torch-lstm
    config: {command: [%s, %s/torch_rnn.py], plugin_config: {cell: lstm, embed: 8, hidden: 32}}
`, filepath.Join(t.TempDir(), "out"), py, examples)))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := harness.Run(context.Background(), e, harness.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Runs) != 1 || !rf.Runs[0].Trained || len(rf.Results) == 0 {
		t.Fatalf("runs %+v, %d results", rf.Runs, len(rf.Results))
	}
}
