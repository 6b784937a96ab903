package harness_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
)

func parse(t *testing.T, src string) (*harness.Experiment, error) {
	t.Helper()
	return harness.ParseExperiment("x.yaml", []byte(src))
}

func TestParseExperimentResolves(t *testing.T) {
	e, err := parse(t, `name: quick
seeds: [3, 4]
backend: fake
train: {steps: 7, lr: 0.01, eval_every: 3}
tasks:
  - name: fake/count
    config: {seq_len: 4, noise: 0.5}
models:
  - name: fake-lm
    config: {hidden: 9, opts: {scale: 2}, tags: [a, b]}
    train: {lr: 0.1, batch: 3}
  - name: fake-lm
    label: lm-small
  - name: fake-uniform
`)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "quick" || e.Out != "results/quick" || e.Device != "cpu" || e.Backend != "fake" {
		t.Errorf("top level = %+v", e)
	}
	if len(e.Seeds) != 2 || e.Seeds[0] != 3 || e.Seeds[1] != 4 {
		t.Errorf("seeds = %v", e.Seeds)
	}
	tc := e.Tasks[0].Config.(*harnesstest.TaskConfig)
	if tc.SeqLen != 4 || tc.Noise != 0.5 || tc.Length != 400 {
		t.Errorf("task config = %+v (want seq_len 4, noise 0.5, default length 400)", tc)
	}
	m0 := e.Models[0]
	c0 := m0.Config.(*harnesstest.LMConfig)
	if m0.Label != "fake-lm" || c0.Hidden != 9 || c0.Opts.Scale != 2 || len(c0.Tags) != 2 || c0.Init != 0.1 {
		t.Errorf("model 0 = %+v %+v", m0, c0)
	}
	// Per-model train overrides only the fields given.
	if m0.Train.LR != 0.1 || m0.Train.Batch != 3 || m0.Train.Steps != 7 || m0.Train.EvalEvery != 3 || m0.Train.Clip != 1 {
		t.Errorf("model 0 train = %+v", m0.Train)
	}
	if e.Models[1].Label != "lm-small" || e.Models[1].Train.LR != 0.01 || e.Models[1].Config.(*harnesstest.LMConfig).Hidden != 4 {
		t.Errorf("model 1 = %+v", e.Models[1])
	}
	// Each model has its own config instance.
	if e.Models[0].Config == e.Models[1].Config {
		t.Error("models share a config")
	}

	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Seeds []uint64 `json:"seeds"`
		Tasks []struct {
			Name   string
			Config map[string]any
		}
		Models []struct {
			Name, Label string
			Config      map[string]any
			Train       harness.TrainConfig
		}
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Tasks[0].Config["length"] != 400.0 || back.Tasks[0].Config["seq_len"] != 4.0 {
		t.Errorf("resolved task config %v lacks defaults", back.Tasks[0].Config)
	}
	if back.Models[0].Config["hidden"] != 9.0 || back.Models[0].Config["init"] != 0.1 || back.Models[0].Train.LR != 0.1 {
		t.Errorf("resolved model config %s", b)
	}
}

func TestParseExperimentStrictErrors(t *testing.T) {
	src := `name: bad
sed: 1
backend: fake
train:
  steps: lots
  lrr: 0.1
tasks:
  - name: fake/count
    dta: x
    config:
      seq_len: 4
      nois: 0.2
models:
  - name: fake-lm
    config:
      hiddn: 3
      opts: {scale: 1, bogus: 2}
      tags: notalist
    train: {batch: -1, foo: 1}
  - name: rnnn
    config: {hidden: 3}
  - name: fake-lm
    label: lm2
    config: {hidden: 0, dropout: 1.5}
`
	_, err := parse(t, src)
	var ce harness.ConfigErrors
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want ConfigErrors", err, err)
	}
	want := strings.Join([]string{
		`x.yaml:2: sed: unknown field (known: backend, bench, device, models, name, out, seed, seeds, tasks, train)`,
		`x.yaml:5: train.steps: expected an integer, got string "lots"`,
		`x.yaml:6: train.lrr: unknown field (known: batch, beta1, beta2, clip, eps, eval_every, log_every, lr, steps, warmup_steps, weight_decay)`,
		`x.yaml:9: tasks[0].dta: unknown field (known: config, data, name)`,
		`x.yaml:12: tasks[0].config.nois: unknown field (known: length, noise, seq_len)`,
		`x.yaml:16: models[0].config.hiddn: unknown field (known: dropout, embed, hidden, init, opts, tags)`,
		`x.yaml:17: models[0].config.opts.bogus: unknown field (known: scale)`,
		`x.yaml:18: models[0].config.tags: expected a list, got string "notalist"`,
		`x.yaml:19: models[0].train.foo: unknown field (known: batch, beta1, beta2, clip, eps, eval_every, log_every, lr, steps, warmup_steps, weight_decay)`,
		`x.yaml:20: models[1].name: unknown model "rnnn" (available: fake-lm, fake-uniform)`,
		`x.yaml:24: models[2].config: hidden must be >= 1, got 0`,
		`x.yaml:24: models[2].config: dropout must be in [0, 1), got 1.5`,
	}, "\n")
	if err.Error() != want {
		t.Errorf("errors:\n%s\nwant:\n%s", err, want)
	}
}

func TestParseExperimentValidation(t *testing.T) {
	_, err := parse(t, `name: "bad name"
seed: 1
seeds: [1, 2]
backend: nosuch
train: {steps: -1, lr: 0}
tasks:
  - name: fake/count
    config: {seq_len: 0}
  - name: fake/count
models:
  - name: fake-lm
    train: {lr: 0, clip: -1}
  - name: fake-lm
`)
	want := strings.Join([]string{
		`x.yaml:1: name: "bad name" must use only letters, digits, '.', '_' and '-'`,
		`x.yaml:3: seeds: seed and seeds are mutually exclusive`,
		`x.yaml:4: backend: unknown backend "nosuch" (available: fake)`,
		`x.yaml:5: train.steps: must be >= 0, got -1`,
		`x.yaml:5: train.lr: must be a positive number, got 0`,
		`x.yaml:8: tasks[0].config: seq_len must be >= 1, got 0`,
		`x.yaml:9: tasks[1].name: duplicate of tasks[0] (fake/count); results are keyed by task name`,
		`x.yaml:12: models[0].train.clip: must be >= 0 (0 disables clipping), got -1`,
		`x.yaml:13: models[1]: duplicate model label "fake-lm" (also models[0]); give one of them a distinct label`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestParseExperimentMissingAndMalformed(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "x.yaml:1: empty experiment file"},
		{"name: [", "x.yaml: line 1: did not find expected node content"},
		{"- a\n- b\n", `x.yaml:1: expected a mapping, got a list`},
		{"name: x\nbackend: fake\n", "x.yaml:1: tasks: at least one task is required\nx.yaml:1: models: at least one model is required"},
		{"name: x\nbackend: fake\ntasks: [{config: {}}]\nmodels: [{name: fake-lm}]\n", "x.yaml:3: tasks[0].name: required"},
		{"name: x\nbackend: fake\ntasks: [{name: nope/a}]\nmodels: [{name: fake-lm}]\n", `x.yaml:3: tasks[0].name: unknown task "nope" (available: fake)`},
		{"name: x\nbackend: fake\nseeds: [1, -2]\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}]\n", `x.yaml:3: seeds[1]: expected a non-negative integer, got integer -2`},
		{"name: x\nname: y\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}]\n", `x.yaml:2: name: duplicate field (first at line 1)`},
	} {
		_, err := parse(t, tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: err = %v, want %s", tc.src, err, tc.want)
		}
	}
}

func TestLoadExperimentFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.yaml")
	if err := os.WriteFile(path, []byte("name: e\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm, config: {hiddn: 1}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := harness.LoadExperiment(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":4: models[0].config.hiddn: unknown field") {
		t.Errorf("err = %v", err)
	}
	if _, err := harness.LoadExperiment(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestNewExperiment(t *testing.T) {
	_, err := harness.NewExperiment("cli", []string{"fake/x", "nope"}, []string{"fake-lm", "rnnn"}, "")
	want := "-task: unknown task \"nope\" (available: fake)\n-model: unknown model \"rnnn\" (available: fake-lm, fake-uniform)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	e, err := harness.NewExperiment("cli", []string{"fake/x"}, []string{"fake-lm"}, "data.txt")
	if err != nil {
		t.Fatal(err)
	}
	if e.Out != "results/cli" || e.Tasks[0].Data != "data.txt" || e.Models[0].Label != "fake-lm" || e.Seeds[0] != 1 {
		t.Errorf("experiment = %+v", e)
	}
	// The default backend (gorgonia) is not linked into this test binary.
	if err := e.Check(); err == nil || err.Error() != `backend: unknown backend "gorgonia" (available: fake)` {
		t.Errorf("Check = %v", err)
	}
	e.Backend = "fake"
	if err := e.Check(); err != nil {
		t.Errorf("Check = %v", err)
	}
}

func TestDecodeConfig(t *testing.T) {
	cfg := harnesstest.NewLM().Config().(*harnesstest.LMConfig)
	if err := harness.DecodeConfig("m.json", []byte(`{"hidden": 7, "opts": {"scale": 3}}`), cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Hidden != 7 || cfg.Opts.Scale != 3 || cfg.Init != 0.1 {
		t.Errorf("cfg = %+v", cfg)
	}
	err := harness.DecodeConfig("m.yaml", []byte("hidden: 0\nembd: 1\n"), cfg)
	if err == nil || err.Error() != "m.yaml:2: embd: unknown field (known: dropout, embed, hidden, init, opts, tags)" {
		t.Errorf("err = %v", err)
	}
	err = harness.DecodeConfig("m.yaml", []byte("hidden: 0\n"), cfg)
	if err == nil || err.Error() != "m.yaml: hidden must be >= 1, got 0" {
		t.Errorf("err = %v", err)
	}
}
