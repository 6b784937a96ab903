package harness_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
)

const benchBase = `name: b
backend: fake
tasks: [{name: fake/count}]
models: [{name: fake-lm}]
`

func TestBenchSectionDefaultsAndOverrides(t *testing.T) {
	e, err := parse(t, benchBase)
	if err != nil {
		t.Fatal(err)
	}
	if e.Bench != nil {
		t.Fatalf("experiment without a bench section has Bench = %+v", e.Bench)
	}
	e, err = parse(t, benchBase+`bench:
  repeats: 3
  train: {seq_lens: [16, 32]}
  generate: {lengths: [8], refeed_lengths: []}
`)
	if err != nil {
		t.Fatal(err)
	}
	b, def := e.Bench, harness.DefaultBench()
	if b.Repeats != 3 || b.Vocab != def.Vocab || b.Warmup != def.Warmup {
		t.Errorf("repeats/vocab/warmup = %d/%d/%d, want 3/%d/%d", b.Repeats, b.Vocab, b.Warmup, def.Vocab, def.Warmup)
	}
	if !slices.Equal(b.Train.SeqLens, []int{16, 32}) || b.Train.Batch != def.Train.Batch || !slices.Equal(b.Train.Batches, def.Train.Batches) {
		t.Errorf("train sweep = %+v", b.Train)
	}
	if !slices.Equal(b.Generate.Lengths, []int{8}) || len(b.Generate.RefeedLengths) != 0 || b.Generate.Prompt != def.Generate.Prompt {
		t.Errorf("generate = %+v", b.Generate)
	}
}

func TestBenchSectionErrors(t *testing.T) {
	for src, want := range map[string]string{
		"bench:\n  repats: 3\n":                   "x.yaml:6: bench.repats: unknown field",
		"bench:\n  generate: {lengths: [0]}\n":    "bench: generate.lengths[0]: must be >= 1",
		"bench:\n  train: {batch: x}\n":           "x.yaml:6: bench.train.batch: expected an integer",
		"bench:\n  repeats: 0\n  vocab: 1\n":      "bench: vocab: must be >= 2",
		"bench:\n  min_seconds: .inf\n":           "x.yaml:6: bench.min_seconds: must be a finite number, got +Inf",
		"bench:\n  score: {seq_lens: [8, 2.5]}\n": "x.yaml:6: bench.score.seq_lens[1]: expected an integer, got number 2.5",
	} {
		_, err := parse(t, benchBase+src)
		var ce harness.ConfigErrors
		if !errors.As(err, &ce) {
			t.Fatalf("%q: want ConfigErrors, got %v", src, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q: errors %q lack %q", src, err, want)
		}
	}
}
