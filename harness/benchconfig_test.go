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
  translate: {lengths: [4, 8]}
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
	if tr := b.Translate; !slices.Equal(tr.Lengths, []int{4, 8}) || tr.Source != def.Translate.Source ||
		!slices.Equal(tr.Batches, def.Translate.Batches) || tr.Repeats != def.Translate.Repeats || !tr.Enabled() {
		t.Errorf("translate = %+v", tr)
	}
	if d := def.Translate; d.Source != 16 || !slices.Equal(d.Batches, []int{1, 64}) || !slices.Equal(d.Lengths, []int{16, 32}) || d.Repeats != 10 {
		t.Errorf("default translate = %+v", d)
	}
	e, err = parse(t, benchBase+"bench:\n  vocab: 2\n  translate: {batches: []}\n")
	if err != nil || e.Bench.Translate.Enabled() {
		t.Errorf("an empty translate sweep: %v, %+v", err, e.Bench.Translate)
	}
}

// TestBenchTranslateValidate: every field of the translate section is
// checked, all problems reported at once.
func TestBenchTranslateValidate(t *testing.T) {
	c := harness.DefaultBench()
	c.Vocab = 2
	c.Translate = harness.BenchTranslate{Source: 0, Batches: []int{1, 0}, Lengths: []int{-1}, Repeats: 0}
	var got []string
	for _, err := range c.Validate() {
		got = append(got, err.Error())
	}
	want := []string{
		"translate.source: must be >= 1, got 0",
		"translate.repeats: must be >= 1, got 0",
		"translate.batches[1]: must be >= 1, got 0",
		"translate.lengths[0]: must be >= 1, got -1",
		"vocab: must be >= 3 for the translate sweep (tokens 1 and 2 start and end an output), got 2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors\n%q\nwant\n%q", got, want)
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
		"bench:\n  translate: {sorce: 3}\n":       "x.yaml:6: bench.translate.sorce: unknown field",
		"bench:\n  translate: {source: 0}\n":      "bench: translate.source: must be >= 1, got 0",
		"bench:\n  translate: {repeats: 1.5}\n":   "x.yaml:6: bench.translate.repeats: expected an integer, got number 1.5",
		"bench:\n  translate: {batches: [0]}\n":   "bench: translate.batches[0]: must be >= 1",
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

// TestBenchImageSection: the image sweep is off by default, a section
// naming sizes turns it on with the default batches, and empty sizes or
// sample batches keep it off.
func TestBenchImageSection(t *testing.T) {
	def := harness.DefaultBench()
	if def.Image.Enabled() || len(def.Image.Sizes) != 0 {
		t.Errorf("default image sweep %+v is on", def.Image)
	}
	e, err := parse(t, benchBase+"bench:\n  image: {sizes: [8, 28]}\n")
	if err != nil {
		t.Fatal(err)
	}
	im := e.Bench.Image
	if !im.Enabled() || !slices.Equal(im.Sizes, []int{8, 28}) || !slices.Equal(im.SampleBatches, def.Image.SampleBatches) ||
		im.PassBatch != def.Image.PassBatch || im.Repeats != def.Image.Repeats {
		t.Errorf("image = %+v", im)
	}
	e, err = parse(t, benchBase+"bench:\n  image: {sizes: [12], sample_batches: []}\n")
	if err != nil || e.Bench.Image.Enabled() {
		t.Errorf("empty sample_batches: %v, %+v", err, e.Bench.Image)
	}
}

// TestBenchImageValidate: every field of the image section is checked,
// all problems reported at once.
func TestBenchImageValidate(t *testing.T) {
	c := harness.DefaultBench()
	c.Image = harness.BenchImage{Sizes: []int{8, 7, 29, 28}, SampleBatches: []int{1, 0}, PassBatch: 0, Repeats: -1}
	var got []string
	for _, err := range c.Validate() {
		got = append(got, err.Error())
	}
	want := []string{
		"image.sizes[1]: must be in [8, 28] (the image task's sides), got 7",
		"image.sizes[2]: must be in [8, 28] (the image task's sides), got 29",
		"image.sample_batches[1]: must be >= 1, got 0",
		"image.pass_batch: must be >= 1, got 0",
		"image.repeats: must be >= 1, got -1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors\n%q\nwant\n%q", got, want)
	}
	for src, want := range map[string]string{
		"bench:\n  image: {size: [8]}\n":            "x.yaml:6: bench.image.size: unknown field",
		"bench:\n  image: {sizes: [8, 30]}\n":       "bench: image.sizes[1]: must be in [8, 28] (the image task's sides), got 30",
		"bench:\n  image: {pass_batch: 2.5}\n":      "x.yaml:6: bench.image.pass_batch: expected an integer, got number 2.5",
		"bench:\n  image: {repeats: 0}\n":           "bench: image.repeats: must be >= 1, got 0",
		"bench:\n  image: {sample_batches: [-2]}\n": "bench: image.sample_batches[0]: must be >= 1, got -2",
	} {
		_, err := parse(t, benchBase+src)
		var ce harness.ConfigErrors
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: errors %v lack %q", src, err, want)
		}
	}
}

// TestBenchPeers: peers decode as label pairs; empty, self and repeated
// pairs and labels that name no model are refused with their field.
func TestBenchPeers(t *testing.T) {
	two := "name: b\nbackend: fake\ntasks: [{name: fake/count}]\nmodels: [{name: fake-lm, label: a}, {name: fake-lm, label: b}]\n"
	e, err := parse(t, two+"bench:\n  peers: [{model: a, peer: b}]\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := []harness.BenchPeer{{Model: "a", Peer: "b"}}; !slices.Equal(e.Bench.Peers, want) {
		t.Errorf("peers %v, want %v", e.Bench.Peers, want)
	}
	for src, want := range map[string]string{
		"bench:\n  peers: [{model: a}]\n":                               `bench: peers[0]: needs model and peer labels, got "a" and ""`,
		"bench:\n  peers: [{model: a, peer: a}]\n":                      `bench: peers[0]: model and peer are both "a"`,
		"bench:\n  peers: [{model: a, peer: b}, {model: a, peer: b}]\n": "bench: peers[1]: the pair a/b is listed twice",
		"bench:\n  peers: [{model: a, peer: c}]\n":                      `x.yaml:6: bench.peers[0].peer: no model labelled "c"`,
		"bench:\n  baseline: z\n":                                       `bench.baseline: no model labelled "z"`,
		"bench:\n  peers: [{model: a, pear: b}]\n":                      "bench.peers[0].pear: unknown field",
	} {
		_, err := parse(t, two+src)
		var ce harness.ConfigErrors
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: errors %v lack %q", src, err, want)
		}
	}
}
