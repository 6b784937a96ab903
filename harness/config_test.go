package harness_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

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
		`x.yaml:2: sed: unknown field (known: backend, bench, claims, device, models, name, out, seed, seeds, tasks, train)`,
		`x.yaml:5: train.steps: expected an integer, got string "lots"`,
		`x.yaml:6: train.lrr: unknown field (known: batch, beta1, beta2, clip, eps, eval_every, log_every, lr, lr_sweep, steps, warmup_steps, weight_decay)`,
		`x.yaml:9: tasks[0].dta: unknown field (known: config, data, name)`,
		`x.yaml:12: tasks[0].config.nois: unknown field (known: initial, length, noise, seq_len)`,
		`x.yaml:16: models[0].config.hiddn: unknown field (known: dropout, embed, hidden, init, opts, tags)`,
		`x.yaml:17: models[0].config.opts.bogus: unknown field (known: scale)`,
		`x.yaml:18: models[0].config.tags: expected a list, got string "notalist"`,
		`x.yaml:19: models[0].train.foo: unknown field (known: batch, beta1, beta2, clip, eps, eval_every, log_every, lr, lr_sweep, steps, warmup_steps, weight_decay)`,
		`x.yaml:20: models[1].name: unknown model "rnnn" (available: fake-fragile, fake-lm, fake-ownstep, fake-uniform)`,
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
		{"name: [", "x.yaml:1: did not find expected node content"},
		{"- a\n- b\n", `x.yaml:1: expected a mapping, got a list`},
		{"name: x\nbackend: fake\n", "x.yaml:1: tasks: at least one task is required\nx.yaml:1: models: at least one model is required"},
		{"name: x\nbackend: fake\ntasks: [{config: {}}]\nmodels: [{name: fake-lm}]\n", "x.yaml:3: tasks[0].name: required"},
		{"name: x\nbackend: fake\ntasks: [{name: nope/a}]\nmodels: [{name: fake-lm}]\n", `x.yaml:3: tasks[0].name: unknown task "nope" (available: fake, fake-needy)`},
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
	want := "-task: unknown task \"nope\" (available: fake, fake-needy)\n-model: unknown model \"rnnn\" (available: fake-fragile, fake-lm, fake-ownstep, fake-uniform)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	data := writeFile(t, "data.txt", "some bytes")
	e, err := harness.NewExperiment("cli", []string{"fake/x"}, []string{"fake-lm"}, data)
	if err != nil {
		t.Fatal(err)
	}
	if e.Out != "results/cli" || e.Tasks[0].Data != data || e.Models[0].Label != "fake-lm" || e.Seeds[0] != 1 {
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

// writeFile writes content to name in a fresh temporary directory and
// returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantErrors checks that err is ConfigErrors reading want, line by line.
func wantErrors(t *testing.T, err error, want ...string) {
	t.Helper()
	var ce harness.ConfigErrors
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want ConfigErrors", err, err)
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// Case 2 of issue 9: NaN and ±Inf are refused in every float field of every
// config section, all at once, each at its own line.
func TestParseExperimentNonFinite(t *testing.T) {
	_, err := parse(t, `name: nf
backend: fake
train: {steps: 1, lr: .nan}
tasks:
  - name: fake/count
    config: {noise: .inf}
models:
  - name: fake-lm
    config:
      dropout: .nan
      opts: {scale: -.inf}
    train: {clip: -.Inf}
bench:
  min_seconds: .NaN
`)
	wantErrors(t, err,
		`x.yaml:3: train.lr: must be a finite number, got NaN`,
		`x.yaml:6: tasks[0].config.noise: must be a finite number, got +Inf`,
		`x.yaml:10: models[0].config.dropout: must be a finite number, got NaN`,
		`x.yaml:11: models[0].config.opts.scale: must be a finite number, got -Inf`,
		`x.yaml:12: models[0].train.clip: must be a finite number, got -Inf`,
		`x.yaml:14: bench.min_seconds: must be a finite number, got NaN`,
	)
}

// Non-finite numbers set after loading (the command line's -lr NaN) are
// found by Check, once for the experiment-wide value every model inherits.
func TestCheckNonFiniteOverride(t *testing.T) {
	e, err := parse(t, "name: x\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}, {name: fake-lm, label: b}]\n")
	if err != nil {
		t.Fatal(err)
	}
	e.SetTrain(func(c *harness.TrainConfig) { c.LR = math.NaN() })
	e.Models[1].Config.(*harnesstest.LMConfig).Init = math.Inf(1)
	wantErrors(t, e.Check(),
		`train.lr: must be a finite number, got NaN`,
		`models[1].config.init: must be a finite number, got +Inf`,
	)
	cfg := harnesstest.NewLM().Config()
	wantErrors(t, harness.DecodeConfig("m.yaml", []byte("hidden: 2\ndropout: .nan\n"), cfg),
		`m.yaml:2: dropout: must be a finite number, got NaN`)
}

// Case 7 of issue 9: yaml.v3 truncates 5.9 into an int and wraps 2^64 into
// a uint64; both are errors naming the file, line and field.
func TestParseExperimentIntegers(t *testing.T) {
	_, err := parse(t, `name: ints
backend: fake
seeds: [1, 2.0, 18446744073709551616]
train: {steps: 5.9, batch: 1e3, eval_every: "3", log_every: 0x10}
tasks:
  - name: fake/count
    config: {seq_len: 4.5, noise: 1}
models:
  - name: fake-lm
    config: {hidden: 9223372036854775808}
bench:
  repeats: 2.5
`)
	wantErrors(t, err,
		`x.yaml:3: seeds[1]: expected a non-negative integer, got number 2.0`,
		`x.yaml:3: seeds[2]: 18446744073709551616 is out of range for a non-negative integer`,
		`x.yaml:4: train.steps: expected an integer, got number 5.9`,
		`x.yaml:4: train.batch: expected an integer, got number 1e3`,
		`x.yaml:4: train.eval_every: expected an integer, got string "3"`,
		`x.yaml:7: tasks[0].config.seq_len: expected an integer, got number 4.5`,
		`x.yaml:10: models[0].config.hidden: 9223372036854775808 is out of range for an integer`,
		`x.yaml:12: bench.repeats: expected an integer, got number 2.5`,
	)
	for src, want := range map[string]string{
		"seed: 18446744073709551616": `x.yaml:1: seed: 18446744073709551616 is out of range for a non-negative integer`,
		"seed: 18446744073709551615": ``,
		"seed: 1_000":                ``,
		"seed: -1":                   `x.yaml:1: seed: expected a non-negative integer, got integer -1`,
		"seed: 5.0":                  `x.yaml:1: seed: expected a non-negative integer, got number 5.0`,
		"train: {lr: 1e400}":         `x.yaml:1: train.lr: 1e400 is out of range for a number`,
		"train: {lr: 1}":             ``,
	} {
		_, err := parse(t, src+"\nname: x\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}]\n")
		if (want == "" && err != nil) || (want != "" && (err == nil || err.Error() != want)) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

// Case 8 of issue 9: a task reading a data file is named after the file.
func TestTaskSpecLabel(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"text/jargon", "", "text/jargon"},
		{"text/jargon", "/home/u/notes.txt", "text/notes"},
		{"text", "corpus.tar.gz", "text/corpus.tar"},
		{"fake", "dir/bytes", "fake/bytes"},
	} {
		if got := (harness.TaskSpec{Name: tc.name, Data: tc.data}).Label(); got != tc.want {
			t.Errorf("Label(%s, %q) = %s, want %s", tc.name, tc.data, got, tc.want)
		}
	}
}

// Tasks are unique by Label: one task on two files is fine, two tasks on
// files of one base name are not, also when -data sets Data after loading.
func TestParseExperimentDuplicateTaskLabels(t *testing.T) {
	a := writeFile(t, "a/notes.txt", "abc")
	b := writeFile(t, "b/notes.txt", "abc")
	other := writeFile(t, "other.txt", "abc")
	_, err := parse(t, `name: x
backend: fake
tasks:
  - name: fake/x
    data: `+a+`
  - name: fake/y
    data: `+b+`
  - name: fake/x
    data: `+other+`
models: [{name: fake-lm}]
`)
	wantErrors(t, err, `x.yaml:7: tasks[1].data: duplicate of tasks[0] (fake/notes, named after the data file `+b+`); results are keyed by task name`)

	e, err := parse(t, "name: x\nbackend: fake\ntasks: [{name: fake/x}, {name: fake/y}]\nmodels: [{name: fake-lm}]\n")
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.Tasks {
		e.Tasks[i].Data = other
	}
	wantErrors(t, e.Check(), `tasks[1].data: duplicate of tasks[0] (fake/other, named after the data file `+other+`); results are keyed by task name`)
}

// Case 12 of issue 9: a data file that cannot be read is an error of the
// experiment check, not of the run that reaches it.
func TestParseExperimentDataFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.txt")
	_, err := parse(t, `name: x
backend: fake
tasks:
  - name: fake/a
  - name: fake/b
    data: `+missing+`
  - name: fake/c
    data: `+dir+`
models: [{name: fake-lm}]
`)
	wantErrors(t, err,
		`x.yaml:6: tasks[1].data: stat `+missing+`: no such file or directory`,
		`x.yaml:8: tasks[2].data: `+dir+` is a directory, not a data file`,
	)
	if _, err := os.Stat("/dev/null"); err == nil {
		_, err := parse(t, "name: x\nbackend: fake\ntasks: [{name: fake, data: /dev/null}]\nmodels: [{name: fake-lm}]\n")
		wantErrors(t, err, `x.yaml:3: tasks[0].data: /dev/null is not a regular file (a device or a pipe?)`)
	}
}

func TestParseExperimentUnreadableData(t *testing.T) {
	path := writeFile(t, "secret.txt", "abc")
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Open(path); err == nil {
		f.Close()
		t.Skip("this user can read a file of mode 0 (root?)")
	}
	_, err := parse(t, "name: x\nbackend: fake\ntasks: [{name: fake, data: "+path+"}]\nmodels: [{name: fake-lm}]\n")
	wantErrors(t, err, `x.yaml:3: tasks[0].data: open `+path+`: permission denied`)
}

// NewExperiment reports an unknown model, an unknown task family and an
// unreadable -data file together.
func TestNewExperimentReportsAll(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "corpus.txt")
	_, err := harness.NewExperiment("cli", []string{"fakee/jargn"}, []string{"lstn"}, missing)
	wantErrors(t, err,
		`-task: unknown task "fakee" (available: fake, fake-needy)`,
		`-model: unknown model "lstn" (available: fake-fragile, fake-lm, fake-ownstep, fake-uniform)`,
		`-data: stat `+missing+`: no such file or directory`,
	)
}

// manyKeys is an experiment followed by n unknown top-level keys.
func manyKeys(n int) []byte {
	var b strings.Builder
	b.WriteString("name: x\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}]\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "k%07d: 1\n", i)
	}
	return []byte(b.String())
}

// parseTimes parses a and b alternately, five times each, and returns
// the fastest time of each (the least disturbed by other processes) and
// the error of b.
func parseTimes(a, b []byte) (ta, tb time.Duration, err error) {
	ta, tb = time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	timed := func(data []byte) time.Duration {
		runtime.GC()
		start := time.Now()
		_, err = harness.ParseExperiment("x.yaml", data)
		return time.Since(start)
	}
	for range 5 {
		ta = min(ta, timed(a))
		tb = min(tb, timed(b))
	}
	return ta, tb, err
}

// Case 14 of issue 9: yaml.v3 checks a mapping's keys for duplicates in
// O(n²) (20 s for 1 MB of keys); decoding is linear now. A linear decoder
// takes about 4x as long for 4x the keys (5-7x measured on a busy machine:
// the heap grows too), the quadratic one 16x; the bound is 10x.
func TestParseExperimentLinear(t *testing.T) {
	const n = 21000 // 4n keys are 12 bytes each: just under 1 MiB
	small, big := manyKeys(n), manyKeys(4*n)
	if len(big) > harness.MaxExperimentSize {
		t.Fatalf("test document of %d bytes is over the limit", len(big))
	}
	ts, tb, err := parseTimes(small, big)
	t.Logf("%d keys: %v, %d keys: %v (%.1fx)", n, ts, 4*n, tb, float64(tb)/float64(ts))
	if tb > 5*time.Second || tb > 10*ts {
		t.Errorf("parsing %d keys took %v, %d keys %v (%.1fx): not linear", n, ts, 4*n, tb, float64(tb)/float64(ts))
	}
	// Every key is reported, and the message lists the first ones.
	var ce harness.ConfigErrors
	if !errors.As(err, &ce) || len(ce) != 4*n {
		t.Fatalf("got %d problems, want %d", len(ce), 4*n)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != harness.MaxShownProblems+1 || lines[len(lines)-1] != fmt.Sprintf("... and %d more problems", 4*n-harness.MaxShownProblems) {
		t.Errorf("message has %d lines, ending %q", len(lines), lines[len(lines)-1])
	}
	if !strings.HasPrefix(lines[0], "x.yaml:5: k0000000: unknown field") {
		t.Errorf("first problem %q", lines[0])
	}
}

// LoadExperiment reads no more than MaxExperimentSize bytes, from a file
// or from an endless device, and names the file, its size and the limit.
func TestLoadExperimentSizeLimit(t *testing.T) {
	path := writeFile(t, "big.yaml", "name: x\n"+strings.Repeat("#", harness.MaxExperimentSize))
	_, err := harness.LoadExperiment(path)
	want := fmt.Sprintf("%s: the experiment file is %d bytes, over the limit of 1048576 bytes (1 MiB)", path, harness.MaxExperimentSize+8)
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	_, err = harness.ParseExperiment("x.yaml", make([]byte, harness.MaxExperimentSize+1))
	if err == nil || err.Error() != "x.yaml: the experiment file is 1048577 bytes, over the limit of 1048576 bytes (1 MiB)" {
		t.Errorf("ParseExperiment: err = %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err != nil {
		return
	}
	// An endless device is refused before it is opened (see also
	// TestLoadExperimentNamedPipe).
	_, err = harness.LoadExperiment("/dev/zero")
	if err == nil || err.Error() != "/dev/zero: a device, not a regular file; an experiment must be a regular file" {
		t.Errorf("/dev/zero: err = %v", err)
	}
	_, err = harness.LoadExperiment(t.TempDir())
	if err == nil || !strings.HasSuffix(err.Error(), ": a directory, not a regular file; an experiment must be a regular file") {
		t.Errorf("directory: err = %v", err)
	}
}

// A null list entry, or a scalar where an entry's mapping belongs, is an
// error at its line, and every later problem names its entry as written
// (models[2], not the models[1] of a list that left models[0] out).
func TestParseExperimentNullEntries(t *testing.T) {
	_, err := parse(t, "name: x\nbackend: fake\ntasks: [~, {name: fake}]\nmodels: [{name: fake-lm}]\n")
	wantErrors(t, err, `x.yaml:3: tasks[0]: expected a mapping, got null`)

	_, err = parse(t, `name: x
backend: fake
seeds: [2, ~, 0, x]
tasks: [{name: fake}]
models:
  - fake-lm
  - name: fake-lm
    config: {hiddn: 3}
  - name: fake-lm
    label: b
    config: {hidden: -1}
  - ~
  - &m {name: fake-uniform}
  - *m
`)
	wantErrors(t, err,
		`x.yaml:3: seeds[1]: expected a non-negative integer, got null`,
		`x.yaml:3: seeds[3]: expected a non-negative integer, got string "x"`,
		`x.yaml:6: models[0]: expected a mapping, got string "fake-lm"`,
		`x.yaml:8: models[1].config.hiddn: unknown field (known: dropout, embed, hidden, init, opts, tags)`,
		`x.yaml:11: models[2].config: hidden must be >= 1, got -1`,
		`x.yaml:12: models[3]: expected a mapping, got null`,
		`x.yaml:14: models[5]: duplicate model label "fake-uniform" (also models[4]); give one of them a distinct label`,
	)
}

// Case 14 of issue 9 (review): yaml.Unmarshal reads the first document
// and ignores the rest, a syntax error included. A second document is an
// error at its line, and the first is still checked.
func TestParseExperimentOneDocument(t *testing.T) {
	const valid = "name: x\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm}]\n"
	for _, tc := range []struct{ src, want string }{
		{valid + "...\n", ""},
		{"---\n" + valid, ""},
		{valid + "...\n---\ngarbage: [\n", "x.yaml:7: did not find expected node content (in a second YAML document; a file holds only one)"},
		{valid + "---\nname: y\n", "x.yaml:5: a second YAML document starts here; a file holds only one"},
		{valid + "---\n", "x.yaml:5: a second YAML document starts here; a file holds only one"},
		{valid + "---\nname: y\n---\n[\n", "x.yaml:5: a second YAML document starts here; a file holds only one\nx.yaml:8: did not find expected node content"},
		{"name: x\nbackend: fake\ntasks: [{name: fake}]\nmodels: [{name: fake-lm, config: {hiddn: 1}}]\n---\n{}\n",
			"x.yaml:4: models[0].config.hiddn: unknown field (known: dropout, embed, hidden, init, opts, tags)\nx.yaml:5: a second YAML document starts here; a file holds only one"},
		{"---\n---\n" + valid, "x.yaml:1: empty experiment file\nx.yaml:2: a second YAML document starts here; a file holds only one"},
	} {
		_, err := parse(t, tc.src)
		if (tc.want == "" && err != nil) || (tc.want != "" && (err == nil || err.Error() != tc.want)) {
			t.Errorf("%q:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}
	cfg := harnesstest.NewLM().Config()
	wantErrors(t, harness.DecodeConfig("m.yaml", []byte("hidden: 2\n---\nhidden: 3\n"), cfg),
		`m.yaml:2: a second YAML document starts here; a file holds only one`)
}
