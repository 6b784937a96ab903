package external_test

import (
	"context"
	"strings"
	"testing"

	"arbench/bench"
	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/external"
)

// BenchmarkProtocolRoundTrip measures what one call over the protocol
// costs beyond the model: a score call of the uniform test plugin (whose
// own work is trivial), at one token and at the quick size (32 rows × 64
// tokens: the int32 inputs and targets and the float32 log-probabilities
// encoded, piped and decoded both ways). make bench runs it (bench-go);
// its ns/op is the per-call overhead to set against a training step's
// time (bench-external).
func BenchmarkProtocolRoundTrip(b *testing.B) {
	for _, size := range []struct {
		name string
		B, T int
	}{{"1x1", 1, 1}, {"32x64", 32, 64}} {
		b.Run(size.name, func(b *testing.B) {
			m := external.New().(*external.Model)
			c := m.Config().(*external.Config)
			c.Command = []string{"python3", "testdata/uniform.py"}
			if err := m.Setup(context.Background(), harness.Env{Vocab: 256, SeqLen: size.T, Seed: 1}); err != nil {
				b.Skip(err)
			}
			defer m.Close()
			batch := harness.Batch{Inputs: make([][]int, size.B), Targets: make([][]int, size.B)}
			for i := range batch.Inputs {
				batch.Inputs[i], batch.Targets[i] = make([]int, size.T), make([]int, size.T)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := m.LogProbs(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBenchExternalModel: arbench bench times an external model's own
// training step and its scoring next to a Go model's, reports its FLOPs as
// unknown (never 0), the plugin process's peak RSS and its runtime, and
// writes the ratios to the baseline and to the peer.
func TestBenchExternalModel(t *testing.T) {
	py := python(t)
	e, err := harness.ParseExperiment("b.yaml", []byte(`name: b
tasks: [{name: text/jargon}]
models:
  - name: rnn
    config: {embed: 4, hidden: 8}
  - name: ext
    label: unigram
    config: {command: [`+py+`, testdata/unigram.py]}
bench:
  vocab: 16
  warmup: 1
  repeats: 2
  min_seconds: 0.01
  ceiling_size: 64
  baseline: rnn
  peers: [{model: rnn, peer: unigram}]
  train: {batch: 2, seq_len: 8, seq_lens: [8], batches: []}
  score: {batch: 2, seq_len: 8, seq_lens: [8], batches: []}
  generate: {prompt: 2, batches: [1], lengths: [4], refeed_batches: [], refeed_lengths: []}
  translate: {batches: []}
`))
	if err != nil {
		t.Fatal(err)
	}
	backend, err := nn.OpenBackend("gorgonia", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bench.Run(context.Background(), bench.Options{Name: "b", Backend: backend, Config: e.Bench, Models: e.Models, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, p := range rep.Points {
		if p.Model != "unigram" {
			continue
		}
		if p.Skipped != "" {
			t.Errorf("%s skipped: %s", p.Kind, p.Skipped)
			continue
		}
		kinds[p.Kind] = true
		if p.FLOPsPerToken != 0 || !strings.Contains(p.FLOPsNote, "FLOPs unknown") || !(p.TokensPerSec.Median > 0) {
			t.Errorf("%s: FLOPs %v note %q, %v tokens/s", p.Kind, p.FLOPsPerToken, p.FLOPsNote, p.TokensPerSec.Median)
		}
		// A Python interpreter alone is several MiB resident.
		if p.Memory.PluginPeakRSS < 1<<20 {
			t.Errorf("%s: plugin peak RSS %d bytes", p.Kind, p.Memory.PluginPeakRSS)
		}
	}
	if !kinds[bench.KindTrain] || !kinds[bench.KindScore] || !kinds[bench.KindGenerate] {
		t.Errorf("unigram measured %v; want train, score and generate", kinds)
	}
	var md strings.Builder
	if err := bench.WriteMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	if got := rep.Runtimes; len(got) != 1 || got["unigram"] != "pure Python" {
		t.Errorf("runtimes %v, want unigram's", got)
	}
	for _, want := range []string{"## Speed relative to rnn", "| unigram | train b=2 T=8 |", "| unknown | unknown | unknown |",
		"## Against peers", "| rnn | unigram | train b=2 T=8 | train b=2 T=8 |", "| rnn | unigram | score b=2 T=8 |", "| rnn | unigram | generate/cached b=1 len=4 |", "- unigram: pure Python", " + plugin "} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("bench.md lacks %q:\n%s", want, md.String())
		}
	}
}
