package harness_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"arbench/harness"
)

// brokenExperiments seed FuzzParseExperiment with the shapes of input that
// have gone wrong before: type errors, truncation, aliases, huge numbers.
var brokenExperiments = []string{
	"",
	"name: [",
	"- a\n- b\n",
	"name: x\nname: y\n",
	"name: x\nbackend: fake\nseeds: [1, 2.0, 18446744073709551616]\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}]\n",
	"name: x\nbackend: fake\ntrain: {steps: 5.9, lr: .nan}\ntasks: [{name: fake, config: {noise: .inf}}]\nmodels: [{name: fake-lm, config: {dropout: .nan}}]\n",
	"a: &a [*a]\nname: *a\n",
	"base: &b {name: fake-lm}\nmodels: [*b, {<<: *b, label: x}]\n",
	"name: x\nbackend: fake\ntasks: [{name: fake, data: /nonexistent}]\nmodels: [{name: fake-lm}]\nbench: {repeats: 1.5, generate: {lengths: [0]}}\n",
	"name: ok\nbackend: fake\nseeds: [1, 2]\ntrain: &t {steps: 3, lr: 0.01}\ntasks:\n  - name: fake/a\n    config: {seq_len: 4, noise: 0.5}\n" +
		"models:\n  - name: fake-lm\n    config: {hidden: 3, opts: {scale: 2}, tags: [a]}\n    train: *t\n  - {name: fake-uniform, label: u}\n" +
		"bench: {repeats: 2, min_seconds: 0.5, train: {seq_lens: [4]}}\n",
	`{"name": "x", "backend": "fake", "seeds": [1], "tasks": [{"name": "fake", "config": {"seq_len": 4}}], "models": [{"name": "fake-lm", "label": "a", "train": {"lr": 1e-08}}]}`,
	"name: x\nbackend: fake\nseeds: [1, ~]\ntasks: [~, {name: fake}]\nmodels: [fake-lm, {name: fake-lm, config: {hiddn: 3}}, &m {name: fake-lm, label: b}, *m]\n",
	"name: x\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}]\n...\n---\ngarbage: [\n",
	"---\n---\nname: x\n---\n[\n",
	"name: x\nbackend: fake\ntrain: {steps: 8, warmup_steps: 9, lr_sweep: {lrs: [0.1, 0.1, -1, .inf], steps: 0}}\ntasks: [{name: fake}]\n" +
		"models: [{name: fake-lm, train: {lr_sweep: ~}}, {name: fake-lm, label: b, train: {lr_sweep: {steps: 2, seed: 3}}}, {name: fake-lm, label: c, train: {lr_sweep: [1]}}]\n",
}

// FuzzParseExperiment: ParseExperiment never panics, every error it
// returns is ConfigErrors, and an experiment it accepts passes Check and
// round-trips through its JSON form (the manifest that reproduce parses).
func FuzzParseExperiment(f *testing.F) {
	files, err := filepath.Glob("../experiments/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no experiment files in ../experiments (%v)", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range brokenExperiments {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := harness.ParseExperiment("fuzz.yaml", data)
		if err != nil {
			var ce harness.ConfigErrors
			if !errors.As(err, &ce) || len(ce) == 0 {
				t.Fatalf("error %v (%T) is not ConfigErrors", err, err)
			}
			return
		}
		if err := e.Check(); err != nil {
			t.Fatalf("parsed experiment fails Check: %v", err)
		}
		manifest, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := harness.ParseExperiment("manifest.json", manifest)
		if err != nil {
			t.Fatalf("manifest %s does not parse: %v", manifest, err)
		}
		again, err := json.Marshal(back)
		if err != nil || string(again) != string(manifest) {
			t.Fatalf("manifest changed in a round trip:\n%s\n%s (%v)", manifest, again, err)
		}
	})
}
