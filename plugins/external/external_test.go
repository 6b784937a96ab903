package external_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"arbench/harness"
	_ "arbench/nn/gorgonia"
	_ "arbench/plugins/all"
	"arbench/plugins/external"
	_ "arbench/tasks/all"
)

// python returns the interpreter the test plugins run with (they need the
// standard library only).
func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: `make test` installs it")
	}
	return p
}

// plugin returns an external model configured for testdata/NAME.py.
func plugin(t *testing.T, name string, edit func(c *external.Config)) *external.Model {
	t.Helper()
	m := external.New().(*external.Model)
	c := m.Config().(*external.Config)
	c.Command = []string{python(t), filepath.Join("testdata", name+".py")}
	c.TimeoutS, c.StartupTimeoutS = 20, 20
	if edit != nil {
		edit(c)
	}
	return m
}

var env = harness.Env{Vocab: 5, SeqLen: 4, Seed: 1, Batch: 2, EvalBatch: 2}

func batch() harness.Batch {
	return harness.Batch{
		Inputs:  [][]int{{0, 1, 2, 3}, {1, 1, 1, 1}},
		Targets: [][]int{{1, 2, 3, 4}, {1, 1, -1, 1}},
	}
}

// alive reports whether the process pid still exists (and is no zombie
// we could still reap: Setup's processes are always waited for).
func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// TestUnigramCapabilities drives the working test plugin through every
// method: its training lowers the loss, score agrees with next_logprobs,
// start/step with next_logprobs, save and load round-trip, and Close
// leaves no process.
func TestUnigramCapabilities(t *testing.T) {
	ctx := context.Background()
	m := plugin(t, "unigram", nil)
	if errs := m.CheckEnv(env); len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, c := range []harness.Capability{harness.NeedTrainer, harness.NeedScorer, harness.NeedDistributions, harness.NeedStepper} {
		if !c.Has(m) {
			t.Errorf("unigram lacks %s", c)
		}
	}
	if err := m.Setup(ctx, env); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.Deterministic() || harness.Nondeterministic(m) {
		t.Error("unigram declares deterministic: true")
	}
	b := batch()
	var losses []float64
	for s := 1; s <= 20; s++ {
		loss, err := m.TrainStep(ctx, b, harness.StepInfo{Step: s, LR: 0.5, Seed: uint64(s)})
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, loss)
	}
	if !(losses[len(losses)-1] < losses[0]) {
		t.Errorf("loss %v -> %v: training does not lower it", losses[0], losses[len(losses)-1])
	}
	lp, err := m.LogProbs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	dist, err := m.NextLogProbs(ctx, b.Inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range b.Targets {
		for j, tg := range row {
			want := 0.0
			if tg >= 0 {
				want = float64(dist[i][j][tg])
			}
			if d := lp[i][j] - want; d > 1e-6 || d < -1e-6 {
				t.Errorf("score[%d][%d] = %v, next_logprobs gives %v", i, j, lp[i][j], want)
			}
		}
	}
	st, first, err := m.Start(ctx, [][]int{{0, 1}, {1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	next, err := m.Step(ctx, st, []int{2, 1})
	if err != nil || st.Len() != 3 || len(first) != 2 || len(next[0]) != env.Vocab {
		t.Fatalf("step: %v, len %d, %d rows of %d", err, st.Len(), len(first), len(next[0]))
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := m.SaveWeights(ctx, path, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.TrainStep(ctx, b, harness.StepInfo{Step: 21, LR: 0.5}); err != nil {
		t.Fatal(err)
	}
	if err := m.LoadWeights(ctx, path); err != nil {
		t.Fatal(err)
	}
	again, err := m.LogProbs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(lp) {
		t.Errorf("after save, a step and load: %v, want %v", again, lp)
	}
	pid := pidOf(t, m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("process %d still runs after Close", pid)
	}
}

func pidOf(t *testing.T, m *external.Model) int {
	t.Helper()
	pid := external.PID(m)
	if pid == 0 {
		t.Fatal("no plugin process")
	}
	return pid
}

// TestFaults: every way a plugin can misbehave gives an error naming the
// plugin and what happened (quoting its stderr where it wrote any), in
// bounded time, and leaves no process behind.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	score := func(m *external.Model) error { _, err := m.LogProbs(ctx, batch()); return err }
	train3 := func(m *external.Model) error {
		for s := 1; s <= 3; s++ {
			if _, err := m.TrainStep(ctx, batch(), harness.StepInfo{Step: s, LR: 0.1}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, c := range []struct {
		plugin string
		edit   func(c *external.Config)
		env    map[string]string
		setup  []string // Setup's error must contain these (nil: Setup succeeds)
		call   func(m *external.Model) error
		want   []string
	}{
		{plugin: "crash", call: train3, want: []string{"plugin crash.py: train_step", "exited", "exit status 3", "ValueError: boom at step 3"}},
		{plugin: "hang", edit: func(c *external.Config) { c.TimeoutS = 1 }, call: score,
			want: []string{"plugin hang.py: score", "no response after 1s (killed)"}},
		{plugin: "garbage", call: score, want: []string{"plugin garbage.py: score", "malformed response", "this is not json"}},
		{plugin: "oversized", edit: func(c *external.Config) { c.MaxResponseBytes = 1 << 20 }, env: map[string]string{"ARBENCH_TEST_BYTES": "3000000"},
			call: score, want: []string{"plugin oversized.py: score", "response larger than 1048576 bytes"}},
		{plugin: "wrongversion", setup: []string{"plugin wrongversion.py speaks protocol 2; arbench speaks 1"}},
		{plugin: "slowstart", edit: func(c *external.Config) { c.StartupTimeoutS = 1 }, env: map[string]string{"ARBENCH_TEST_SLEEP": "30"},
			setup: []string{"plugin slowstart.py: describe", "no response after 1s (killed)"}},
		{plugin: "undeclared", call: func(m *external.Model) error { _, err := m.NextLogProbs(ctx, batch().Inputs); return err },
			want: []string{"did not declare capability \"next_logprobs\""}},
		{plugin: "undeclared", call: score, want: []string{"plugin undeclared.py: score", "code -32601"}},
	} {
		t.Run(c.plugin, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			m := plugin(t, c.plugin, c.edit)
			t0 := time.Now()
			err := m.Setup(ctx, env)
			if c.setup != nil {
				checkErr(t, "Setup", err, c.setup)
				if external.PID(m) != 0 {
					t.Error("a failed Setup kept its process")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pid := pidOf(t, m)
			checkErr(t, "call", c.call(m), c.want)
			if time.Since(t0) > 15*time.Second {
				t.Errorf("took %v", time.Since(t0))
			}
			if err := m.Close(); err != nil && !strings.Contains(c.plugin, "undeclared") {
				t.Logf("Close after the failure: %v", err)
			}
			if alive(pid) {
				t.Errorf("process %d still runs", pid)
			}
		})
	}
}

func checkErr(t *testing.T, what string, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded; want an error containing %q", what, want)
	}
	t.Logf("%s: %v", what, err)
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q lacks %q", what, err, w)
		}
	}
}

// TestNoisyPluginKeepsProtocol: a plugin that prints inside its methods
// still works (the SDK sends stray prints to stderr).
func TestNoisyPluginKeepsProtocol(t *testing.T) {
	m := plugin(t, "noisy", nil)
	if err := m.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lp, err := m.LogProbs(context.Background(), batch())
	if err != nil {
		t.Fatal(err)
	}
	if len(lp) != 2 || len(lp[0]) != 4 {
		t.Fatalf("%v", lp)
	}
}

// TestConfigValidate names every bad field.
func TestConfigValidate(t *testing.T) {
	c := external.Config{TimeoutS: -1, MaxResponseBytes: 10}
	var msgs []string
	for _, e := range c.Validate() {
		msgs = append(msgs, e.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, w := range []string{"command:", "timeout_s:", "startup_timeout_s:", "max_response_bytes:"} {
		if !strings.Contains(got, w) {
			t.Errorf("Validate lacks %q:\n%s", w, got)
		}
	}
}

// experiment parses an experiment over a small text file.
func experiment(t *testing.T, models string) *harness.Experiment {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "corpus.txt")
	text := strings.Repeat("the quick brown fox jumps over the lazy dog. ", 400)
	if err := os.WriteFile(data, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	py := python(t)
	src := fmt.Sprintf(`name: ext
seeds: [1, 2]
out: %s
train: {steps: 6, batch: 4, lr: 0.5, eval_every: 3}
tasks:
  - name: text/jargon
    data: %s
    config: {seq_len: 16}
models:
%s`, filepath.Join(dir, "out"), data, strings.ReplaceAll(models, "PYTHON", py))
	e, err := harness.ParseExperiment("ext.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRunExternalModels: the runner trains and evaluates an external model
// like a built-in one (two seeds, curves, metrics), evaluates a plugin
// without train_step untrained, and a plugin that crashes fails its own
// runs only.
func TestRunExternalModels(t *testing.T) {
	e := experiment(t, `  - name: ext
    label: unigram
    config: {command: [PYTHON, testdata/unigram.py], plugin_config: {smoothing: 0.5}}
  - name: ext
    label: uniform
    config: {command: [PYTHON, testdata/uniform.py]}
  - name: ext
    label: crash
    config: {command: [PYTHON, testdata/crash.py]}
`)
	rf, err := harness.Run(context.Background(), e, harness.RunOptions{})
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Failed) != 2 {
		t.Fatalf("err = %v; want the crash plugin's two runs failed", err)
	}
	for _, f := range rp.Failed {
		if !strings.Contains(f, "crash") || !strings.Contains(f, "boom at step 3") {
			t.Errorf("failure %q", f)
		}
	}
	runs := map[string]int{}
	for _, r := range rf.Runs {
		runs[r.Model]++
		if r.Model == "uniform" && (r.Trained || !strings.Contains(r.Note, "untrained")) {
			t.Errorf("uniform: trained %v, note %q", r.Trained, r.Note)
		}
		if r.Model == "unigram" && (!r.Trained || r.Steps != 6) {
			t.Errorf("unigram: trained %v, %d steps", r.Trained, r.Steps)
		}
	}
	if runs["unigram"] != 2 || runs["uniform"] != 2 || runs["crash"] != 0 {
		t.Errorf("runs %v", runs)
	}
	metrics := map[string]float64{}
	for _, r := range rf.Results {
		if r.Metric == "bits_per_byte" {
			metrics[fmt.Sprintf("%s/%d", r.Model, r.Seed)] = float64(r.Value)
		}
	}
	if len(metrics) != 4 {
		t.Fatalf("bits_per_byte %v", metrics)
	}
	// Uniform over 256 bytes is exactly 8 bits per byte; the trained
	// unigram is far below.
	for _, s := range []string{"uniform/1", "uniform/2"} {
		if d := metrics[s] - 8; d > 1e-5 || d < -1e-5 {
			t.Errorf("%s: %v bits/byte, want 8", s, metrics[s])
		}
	}
	if !(metrics["unigram/1"] < 6) {
		t.Errorf("unigram: %v bits/byte", metrics["unigram/1"])
	}
	curves := 0
	for _, c := range rf.Curves {
		if c.Model == "unigram" && c.Name == harness.CurveTrainLoss && len(c.Values) > 0 {
			curves++
		}
	}
	if curves != 2 {
		t.Errorf("%d training curves of unigram, want 2", curves)
	}
}

// TestUndeclaredCapabilityRefusedBeforeWork: a plugin without
// next_logprobs cannot be paired with a task that reads distributions;
// the experiment check says so before anything runs.
func TestUndeclaredCapabilityRefusedBeforeWork(t *testing.T) {
	m := plugin(t, "undeclared", nil)
	if harness.NeedDistributions.Has(m) || !harness.NeedScorer.Has(m) || harness.NeedTrainer.Has(m) {
		t.Errorf("declared: distributions %v, scorer %v, trainer %v; want only the scorer",
			harness.NeedDistributions.Has(m), harness.NeedScorer.Has(m), harness.NeedTrainer.Has(m))
	}
	if miss := harness.MissingCapabilities(m, []harness.Capability{harness.NeedDistributions, harness.NeedDecoding}); !strings.Contains(miss, "Distributioner") {
		t.Errorf("missing %q", miss)
	}
}

// TestReadmeExample runs the README's ten-line Python model (this file is
// what the README shows, checked verbatim) through a whole experiment: it
// trains, lowers bits per byte below the uniform 8 and is reported.
func TestReadmeExample(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "readme_example.py"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```python\n"+string(src)+"```") {
		t.Error("README.md does not show testdata/readme_example.py verbatim in a ```python block")
	}
	sdk, err := filepath.Abs(filepath.Join("..", "..", "python"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", sdk) // as `pip install ./python` would
	e := experiment(t, `  - name: ext
    label: unigram
    config: {command: [PYTHON, testdata/readme_example.py]}
`)
	rf, err := harness.Run(context.Background(), e, harness.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rf.Results {
		if r.Metric == "bits_per_byte" {
			n++
			if !(float64(r.Value) < 6) {
				t.Errorf("seed %d: %v bits/byte", r.Seed, r.Value)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d bits_per_byte results, want 2 (two seeds)", n)
	}
}

// TestNamedPlugins: ext:NAME takes its configuration from the plugins
// file; an unknown name and a bad entry are errors naming the file.
func TestNamedPlugins(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "plugins.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("uni:\n  command: [%s, testdata/unigram.py]\n  plugin_config: {smoothing: 2}\nflat:\n  command: [%s, testdata/uniform.py]\n  timeout_s: 30\n", py, py))
	t.Setenv(external.PluginsEnv, file)
	m, err := harness.NewModel("ext:uni")
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config().(*external.Config)
	if c.Command[1] != "testdata/unigram.py" || c.PluginConfig["smoothing"] != 2 || c.TimeoutS != external.DefaultTimeout {
		t.Errorf("config %+v", c)
	}
	if harness.DefaultLabel("ext:uni") != "uni" {
		t.Errorf("label %q", harness.DefaultLabel("ext:uni"))
	}
	named, errs := harness.NamedConfigs()
	if len(errs) > 0 || len(named) != 2 || named[0].Name != "ext:flat" || named[1].Name != "ext:uni" {
		t.Errorf("named %v, errors %v", named, errs)
	}
	if _, err := harness.NewModel("ext:nope"); err == nil || !strings.Contains(err.Error(), `no external plugin "nope"`) || !strings.Contains(err.Error(), "known: flat, uni") {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := harness.NewModel("rnn:x"); err == nil || !strings.Contains(err.Error(), "no named configurations") {
		t.Errorf("rnn:x: %v", err)
	}
	write("uni:\n  command: [python3]\n  timeout: 3\n")
	if _, err := harness.NewModel("ext:uni"); err == nil || !strings.Contains(err.Error(), "plugins file "+file) || !strings.Contains(err.Error(), "line 3: field timeout not found") {
		t.Errorf("bad entry: %v", err)
	}
}

// TestNonFiniteLoss: a loss is a JSON number or one of the strings that
// stand for non-finite values (PROTOCOL.md); anything else is an error.
func TestNonFiniteLoss(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want float64
		ok   bool
	}{{`1.5`, 1.5, true}, {`"NaN"`, math.NaN(), true}, {`"Infinity"`, math.Inf(1), true}, {`"-Infinity"`, math.Inf(-1), true}, {`"x"`, 0, false}, {`null`, 0, false}} {
		got, err := external.Number([]byte(c.raw))
		if (err == nil) != c.ok || (c.ok && !(got == c.want || math.IsNaN(got) && math.IsNaN(c.want))) {
			t.Errorf("%s: %v, %v", c.raw, got, err)
		}
	}
}

// TestRunExternalOnSyntheticTask: an external model runs the synthetic
// tasks too (next-token distributions, free-running generation through
// its start/step), trained by arbench.
func TestRunExternalOnSyntheticTask(t *testing.T) {
	py := python(t)
	out := filepath.Join(t.TempDir(), "out")
	e, err := harness.ParseExperiment("s.yaml", []byte(fmt.Sprintf(`name: s
seed: 1
out: %s
train: {steps: 4, batch: 4, lr: 0.1}
tasks:
  - name: synthetic/copy
    config: {lengths: [4], eval_rows: 16, valid_rows: 16, eval_batch: 8}
models:
  - name: ext
    label: unigram
    config: {command: [%s, testdata/unigram.py]}
`, out, py)))
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

// TestTokenizerIndependentScoring: a plugin with its own tokenizer (byte
// pairs), uniform over its tokens, declares only score_text; the text task
// scores it from total nats over bytes: exactly 8 bits per byte, the same
// as the byte-level uniform model, evaluated untrained and without a
// validation curve.
func TestTokenizerIndependentScoring(t *testing.T) {
	e := experiment(t, `  - name: ext
    label: pairs
    config: {command: [PYTHON, testdata/bytepairs.py]}
  - name: ext
    label: uniform
    config: {command: [PYTHON, testdata/uniform.py]}
`)
	rf, err := harness.Run(context.Background(), e, harness.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rf.Results {
		if r.Metric != "bits_per_byte" {
			continue
		}
		n++
		// Exact for the text totals (float64); the byte-level uniform's
		// log-probabilities travel as float32.
		tol := 1e-12
		if r.Model == "uniform" {
			tol = 1e-6
		}
		if math.Abs(float64(r.Value)-8) > tol {
			t.Errorf("%s seed %d: %.15f bits/byte, want 8 within %g", r.Model, r.Seed, float64(r.Value), tol)
		}
		if scoring := r.Params["scoring"]; (r.Model == "pairs") != (scoring == "text") {
			t.Errorf("%s: scoring %v", r.Model, scoring)
		}
	}
	if n != 4 {
		t.Errorf("%d bits_per_byte results, want 4 (two models, two seeds)", n)
	}
	for _, c := range rf.Curves {
		if c.Model == "pairs" {
			t.Errorf("a curve %s for a model that does not train", c.Name)
		}
	}
}

// TestConditionalPlugin: a plugin that reads a source (conditional, with
// its own translate and decode settings) runs a seq2seq task like the
// built-in encoder–decoders: trained on batches with their source, and
// evaluated per decoding setting through its translate.
func TestConditionalPlugin(t *testing.T) {
	py := python(t)
	out := filepath.Join(t.TempDir(), "out")
	e, err := harness.ParseExperiment("c.yaml", []byte(fmt.Sprintf(`name: c
seed: 1
out: %s
train: {steps: 3, batch: 4, lr: 0.1}
tasks:
  - name: seq2seq/reverse
    config: {symbols: 6, min_len: 2, max_len: 5, valid_rows: 8, test_rows: 16, latency_rows: 2}
models:
  - name: ext
    label: reverser
    config: {command: [%s, testdata/reverser.py]}
`, out, py)))
	if err != nil {
		t.Fatal(err)
	}
	m := plugin(t, "reverser", nil)
	if harness.SourceMode(m) != "conditioner" || len(m.DecodeSettings()) != 2 || !m.DecodeSettings()[0].Baseline {
		t.Fatalf("source mode %q, settings %+v", harness.SourceMode(m), m.DecodeSettings())
	}
	rf, err := harness.Run(context.Background(), e, harness.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Runs) != 1 || !rf.Runs[0].Trained || rf.Runs[0].Steps != 3 {
		t.Fatalf("runs %+v", rf.Runs)
	}
	got := map[string]float64{}
	for _, r := range rf.Results {
		got[r.Metric] = float64(r.Value)
	}
	for _, name := range []string{"exact_match", "exact_match@T=1", "exact_match@T=2"} {
		if v, ok := got[name]; !ok || v != 1 {
			t.Errorf("%s = %v (present %v), want 1: the plugin reverses exactly", name, v, ok)
		}
	}
}

// TestResumeExternalRuns: -resume keeps an external model's finished runs
// (not rerun) and runs the failed ones again.
func TestResumeExternalRuns(t *testing.T) {
	e := experiment(t, `  - name: ext
    label: unigram
    config: {command: [PYTHON, testdata/unigram.py]}
  - name: ext
    label: crash
    config: {command: [PYTHON, testdata/crash.py]}
`)
	first, err := harness.Run(context.Background(), e, harness.RunOptions{})
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Failed) != 2 || len(first.Runs) != 2 {
		t.Fatalf("first run: %v, %d runs recorded", err, len(first.Runs))
	}
	again, err := harness.Run(context.Background(), e, harness.RunOptions{Resume: true})
	if !errors.As(err, &rp) || len(rp.Failed) != 2 {
		t.Fatalf("resumed: %v; want the crash plugin's two runs tried again", err)
	}
	if len(again.Runs) != 2 {
		t.Fatalf("resumed: %d runs, want unigram's two", len(again.Runs))
	}
	for i, r := range again.Runs {
		if r.Model != "unigram" || !r.Started.Equal(first.Runs[i].Started) {
			t.Errorf("run %d: %s started %v, first %v: a finished run was rerun", i, r.Model, r.Started, first.Runs[i].Started)
		}
	}
}

// TestRuntimeAndProcess: the description's runtime reaches ModelInfo, the
// plugin's process id is reported while it runs, and a runtime that is
// too long or spans lines is refused.
func TestRuntimeAndProcess(t *testing.T) {
	m := plugin(t, "unigram", nil)
	if got := m.Info().Runtime; got != "pure Python" {
		t.Errorf("Info().Runtime before Setup = %q, want the description's", got)
	}
	if m.ProcessID() != 0 {
		t.Error("a process id before Setup")
	}
	if err := m.Setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	pid := m.ProcessID()
	if pid == 0 || !alive(pid) {
		t.Fatalf("ProcessID %d while running", pid)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if m.ProcessID() != 0 {
		t.Error("a process id after Close")
	}
	for _, rt := range []string{"torch\n2", strings.Repeat("x", 201)} {
		d := &external.Description{Protocol: external.ProtocolVersion, Family: "f", Runtime: rt}
		if err := external.CheckDescription(d); err == nil || !strings.Contains(err.Error(), "runtime") {
			t.Errorf("runtime %q: %v, want a refusal naming runtime", rt, err)
		}
	}
	ok := &external.Description{Protocol: external.ProtocolVersion, Family: "f", Runtime: "PyTorch 2.15.0, 2 threads"}
	if err := external.CheckDescription(ok); err != nil {
		t.Error(err)
	}
}
