package harness_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/harness/harnesstest"
	"arbench/reports"
)

// experiment returns a small two-model experiment writing to a temp dir.
func experiment(t *testing.T, extra string) *harness.Experiment {
	t.Helper()
	out := filepath.ToSlash(filepath.Join(t.TempDir(), "out"))
	e, err := parse(t, `name: unit
backend: fake
out: `+out+`
seeds: [1, 2]
train: {steps: 6, batch: 4, lr: 0.05, eval_every: 2, log_every: 2, warmup_steps: 2}
tasks:
  - name: fake/count
    config: {seq_len: 6, length: 300}
models:
  - name: fake-lm
    config: {dropout: 0.1}
  - name: fake-uniform
`+extra)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func runOpts() harness.RunOptions {
	return harness.RunOptions{Report: reports.Markdown, CommandLine: []string{"arbench", "test"}}
}

func readSamples(t *testing.T, dir string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, harness.SamplesFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("samples line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestRunEndToEnd(t *testing.T) {
	e := experiment(t, "")
	var log bytes.Buffer
	opt := runOpts()
	opt.Log = &log
	rf, err := harness.Run(context.Background(), e, opt)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored.Results, jsonRoundTrip(t, rf).Results) {
		t.Error("returned results differ from the stored ones")
	}
	m := stored.Manifest
	if m.Version != harness.Version || m.Name != "unit" || m.Backend != "fake" || m.GitSHA == "" || m.CPU == "" ||
		m.NumCPU < 1 || !m.Complete || len(m.Seeds) != 2 || m.End.Before(m.Start) || m.CommandLine[1] != "test" {
		t.Errorf("manifest = %+v", m)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, m.Config); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(compact.Bytes(), []byte(`"length":300`)) || !bytes.Contains(compact.Bytes(), []byte(`"dropout":0.1`)) {
		t.Errorf("manifest config lacks the resolved task/model configs: %s", compact.Bytes())
	}
	if len(stored.Runs) != 4 {
		t.Fatalf("%d runs, want 4", len(stored.Runs))
	}
	// Order: task, seed, model.
	wantKeys := []harness.RunKey{{"fake/count", "fake-lm", 1}, {"fake/count", "fake-uniform", 1}, {"fake/count", "fake-lm", 2}, {"fake/count", "fake-uniform", 2}}
	for i, r := range stored.Runs {
		if r.Key() != wantKeys[i] {
			t.Errorf("run %d = %v, want %v", i, r.Key(), wantKeys[i])
		}
	}
	lm, uni := stored.Runs[0], stored.Runs[1]
	if !lm.Trained || lm.Steps != 6 || lm.Params != 8*8+4 || lm.TrainTokens != 6*4*6 || lm.Info.Family != "fake-lm" || lm.TaskInfo.HeadlineMetric != "bits_per_token" {
		t.Errorf("lm run = %+v", lm)
	}
	if uni.Trained || uni.Steps != 0 || uni.Note == "" || uni.Params != 0 {
		t.Errorf("uniform run = %+v", uni)
	}
	if len(stored.Results) != 4*3 {
		t.Errorf("%d results, want 12", len(stored.Results))
	}
	for _, r := range stored.Results {
		if r.Model == "fake-uniform" && r.Metric == "bits_per_token" && r.Value != 3 {
			t.Errorf("uniform bits/token = %v, want 3", r.Value)
		}
		if r.Model == "fake-lm" && r.Metric == "bits_per_token" && !(r.Value > 0 && r.Value < 3) {
			t.Errorf("trained lm bits/token = %v, want in (0, 3)", r.Value)
		}
	}
	// Curves: train loss every 2 steps, valid loss at 2, 4 and the end.
	if len(stored.Curves) != 4 {
		t.Fatalf("%d curves, want 4 (train+valid for 2 lm runs)", len(stored.Curves))
	}
	tr, va := stored.Curves[0], stored.Curves[1]
	if tr.Name != "train_loss" || !reflect.DeepEqual(tr.Steps, []int{2, 4, 6}) || len(tr.Values) != 3 {
		t.Errorf("train curve = %+v", tr)
	}
	if va.Name != "valid_loss" || !reflect.DeepEqual(va.Steps, []int{2, 4, 6}) || !(va.Values[2] < va.Values[0]) {
		t.Errorf("valid curve = %+v (want decreasing)", va)
	}
	samples := readSamples(t, e.Out)
	// 300 tokens -> test split 30 tokens -> 4 windows of 6+1.
	if len(samples) != 4*4 {
		t.Fatalf("%d samples, want 16", len(samples))
	}
	if s := samples[0]; s["model"] != "fake-lm" || s["task"] != "fake/count" || s["seed"] != 1.0 || s["window"] != 0.0 {
		t.Errorf("sample 0 = %v", s)
	}
	report, err := os.ReadFile(filepath.Join(e.Out, harness.ReportFileName))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := reports.Markdown(&want, stored); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(report, want.Bytes()) {
		t.Errorf("report.md is not the rendering of results.json")
	}
	noTempFiles(t, e.Out)
	if !strings.Contains(log.String(), "fake-lm on fake/count seed 2: done: bits_per_token") {
		t.Errorf("log lacks the run summary:\n%s", log.String())
	}
}

func jsonRoundTrip(t *testing.T, rf *harness.ResultsFile) *harness.ResultsFile {
	t.Helper()
	b, err := json.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	var out harness.ResultsFile
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestRunDeterministic(t *testing.T) {
	var files [2]*harness.ResultsFile
	var samples [2][]byte
	for i := range files {
		e := experiment(t, "")
		if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
			t.Fatal(err)
		}
		rf, err := harness.LoadResults(e.Out)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = rf
		if samples[i], err = os.ReadFile(filepath.Join(e.Out, harness.SamplesFileName)); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(files[0].Results, files[1].Results) {
		t.Error("results differ between two runs with the same seeds")
	}
	if !reflect.DeepEqual(files[0].Curves, files[1].Curves) {
		t.Error("curves differ between two runs with the same seeds")
	}
	if !bytes.Equal(samples[0], samples[1]) {
		t.Error("samples differ between two runs with the same seeds")
	}
	// Different seeds give different values.
	if files[0].Results[0].Value == files[0].Results[6].Value {
		t.Error("seeds 1 and 2 gave the same lm result")
	}
}

func countSteps(ctx context.Context, n *int) context.Context {
	return context.WithValue(ctx, harnesstest.StepHook{}, func() { *n++ })
}

func TestRunResume(t *testing.T) {
	e := experiment(t, "")
	e.Seeds = []uint64{1}
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	first, _ := harness.LoadResults(e.Out)

	// Resuming the same experiment does nothing.
	opt := runOpts()
	opt.Resume = true
	steps := 0
	if _, err := harness.Run(countSteps(context.Background(), &steps), e, opt); err != nil {
		t.Fatal(err)
	}
	if steps != 0 {
		t.Errorf("resume of a finished experiment trained %d steps", steps)
	}

	// Adding a seed runs only the new combinations.
	e.Seeds = []uint64{1, 2}
	steps = 0
	rf, err := harness.Run(countSteps(context.Background(), &steps), e, opt)
	if err != nil {
		t.Fatal(err)
	}
	if steps != 6 {
		t.Errorf("resume trained %d steps, want 6 (one lm run)", steps)
	}
	if len(rf.Runs) != 4 || !rf.Manifest.Resumed || !rf.Manifest.Complete {
		t.Errorf("after resume: %d runs, manifest %+v", len(rf.Runs), rf.Manifest)
	}
	if !reflect.DeepEqual(rf.Results[:6], first.Results) || !rf.Manifest.Start.Equal(first.Manifest.Start) {
		t.Error("resume changed the stored results or start time")
	}
	if n := len(readSamples(t, e.Out)); n != 16 {
		t.Errorf("%d samples after resume, want 16", n)
	}
	// Same results as a run in one go.
	whole := experiment(t, "")
	if _, err := harness.Run(context.Background(), whole, runOpts()); err != nil {
		t.Fatal(err)
	}
	all, _ := harness.LoadResults(whole.Out)
	if !reflect.DeepEqual(all.Results, jsonRoundTrip(t, rf).Results) {
		t.Errorf("resumed results differ from an uninterrupted run:\n%v\n%v", all.Results, rf.Results)
	}

	// A changed configuration is refused before any work.
	e.Models[0].Config.(*harnesstest.LMConfig).Dropout = 0.2
	before, _ := os.ReadFile(filepath.Join(e.Out, harness.ResultsFileName))
	steps = 0
	_, err = harness.Run(countSteps(context.Background(), &steps), e, opt)
	if err == nil || !strings.Contains(err.Error(), "fake-lm on fake/count seed 1 was run with a different configuration (model.config.dropout: stored 0.1, now 0.2)") {
		t.Errorf("err = %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(e.Out, harness.ResultsFileName))
	if steps != 0 || !bytes.Equal(before, after) {
		t.Error("refused resume did work or changed results.json")
	}

	// So is a stored run that the experiment no longer includes.
	e.Models[0].Config.(*harnesstest.LMConfig).Dropout = 0.1
	e.Seeds = []uint64{2}
	_, err = harness.Run(context.Background(), e, opt)
	if err == nil || !strings.Contains(err.Error(), "fake-lm on fake/count seed 1 is stored but not part of this experiment") {
		t.Errorf("err = %v", err)
	}
}

func TestRunCancelKeepsFinished(t *testing.T) {
	e := experiment(t, `  - name: fake-lm
    label: lm2
`)
	e.Seeds = []uint64{1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	// The first lm trains 6 steps; cancel during the second (lm2).
	ctx = context.WithValue(ctx, harnesstest.StepHook{}, func() {
		calls++
		if calls == 9 {
			cancel()
		}
	})
	rf, err := harness.Run(ctx, e, runOpts())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	for _, s := range []string{"interrupted", "lm2 on fake/count seed 1 discarded", "kept 2 finished run(s) of 3"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	stored, lerr := harness.LoadResults(e.Out)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(stored.Runs) != 2 || stored.Manifest.Complete || len(rf.Runs) != 2 {
		t.Errorf("stored %d runs (complete=%v), want the 2 finished", len(stored.Runs), stored.Manifest.Complete)
	}
	for _, s := range readSamples(t, e.Out) {
		if s["model"] == "lm2" {
			t.Error("samples of the discarded run were written")
		}
	}
	noTempFiles(t, e.Out)
}

func TestRunCancelBeforeAnythingFinished(t *testing.T) {
	e := experiment(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rf, err := harness.Run(ctx, e, runOpts())
	if !errors.Is(err, context.Canceled) || rf != nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("rf = %v, err = %v", rf, err)
	}
	if _, err := os.Stat(e.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output directory created: %v", err)
	}
}

func TestRunInvalidWritesNothing(t *testing.T) {
	e := experiment(t, "")
	e.SetTrain(func(c *harness.TrainConfig) { c.Steps = -1 })
	_, err := harness.Run(context.Background(), e, runOpts())
	if err == nil || !strings.Contains(err.Error(), "train.steps: must be >= 0") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(e.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output directory created: %v", err)
	}
	// Missing weights are found before any work too.
	e = experiment(t, "")
	opt := runOpts()
	opt.LoadWeights = t.TempDir()
	_, err = harness.Run(context.Background(), e, opt)
	if err == nil || !strings.Contains(err.Error(), "-load-weights: no weights for fake-lm on fake/count seed 1") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(e.Out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output directory created: %v", err)
	}
}

func TestRunSaveLoadWeights(t *testing.T) {
	e := experiment(t, "")
	e.Seeds = []uint64{1}
	e.Models = e.Models[:1]
	weights := t.TempDir()
	opt := runOpts()
	opt.SaveWeights = weights
	trained, err := harness.Run(context.Background(), e, opt)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(weights, "fake_count-fake-lm-seed1.safetensors")
	if trained.Runs[0].WeightsOut != path {
		t.Errorf("weights saved to %q, want %q", trained.Runs[0].WeightsOut, path)
	}
	// Evaluating the saved weights without training reproduces the metrics.
	e2 := experiment(t, "")
	e2.Seeds = []uint64{1}
	e2.Models = e2.Models[:1]
	e2.SetTrain(func(c *harness.TrainConfig) { c.Steps = 0 })
	opt = runOpts()
	opt.LoadWeights = weights
	loaded, err := harness.Run(context.Background(), e2, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded.Results, trained.Results) {
		t.Errorf("loaded results %v differ from trained %v", loaded.Results, trained.Results)
	}
	if r := loaded.Runs[0]; r.WeightsIn != path || !r.Trained || r.Steps != 0 {
		t.Errorf("loaded run = %+v", r)
	}
	// A single file is used for every run.
	opt.LoadWeights = path
	e2.Out += "-file"
	if _, err := harness.Run(context.Background(), e2, opt); err != nil {
		t.Fatal(err)
	}
}

func TestRunDiverged(t *testing.T) {
	e := experiment(t, "")
	e.Seeds = []uint64{1}
	e.Models[0].Config.(*harnesstest.LMConfig).Init = 1e300
	e.Models[0].Train.Clip = 0
	rf, err := harness.Run(context.Background(), e, runOpts())
	var rp *harness.RunProblems
	if !errors.As(err, &rp) || len(rp.Diverged) != 1 || rp.Total != 2 || len(rp.Problems) != 0 {
		t.Fatalf("err = %v, want RunProblems with one diverged run", err)
	}
	r := rf.Runs[0]
	if !strings.HasPrefix(r.Note, "diverged at step 1") {
		t.Errorf("note = %q", r.Note)
	}
	for _, res := range rf.Results {
		if res.Model == "fake-lm" {
			t.Errorf("diverged run has result %+v", res)
		}
	}
	if len(rf.Runs) != 2 {
		t.Errorf("%d runs, want 2 (the experiment continues)", len(rf.Runs))
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := harness.WriteFileAtomic(path, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return errors.New("boom")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("failed write changed the file to %q", b)
	}
	noTempFiles(t, dir)
	if err := harness.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("file = %q", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v", st.Mode())
	}
	noTempFiles(t, dir)
}

func TestNumberJSON(t *testing.T) {
	b, err := json.Marshal([]harness.Number{1.5, harness.Number(math.NaN()), harness.Number(math.Inf(1)), harness.Number(math.Inf(-1))})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `[1.5,"NaN","+Inf","-Inf"]` {
		t.Errorf("got %s", b)
	}
	var back []harness.Number
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back[0] != 1.5 || !math.IsNaN(float64(back[1])) || !math.IsInf(float64(back[2]), 1) || !math.IsInf(float64(back[3]), -1) {
		t.Errorf("round trip = %v", back)
	}
}

// A task's EvaluateInitial runs before training: its metric is recorded with
// the run's, and it is the untrained model's loss (higher than the trained
// one's on the counting task).
func TestRunInitialEvaluation(t *testing.T) {
	e := experiment(t, "")
	e.Tasks[0].Config.(*harnesstest.TaskConfig).Initial = true
	e.Train.Steps = 60
	e.Models = e.Models[:1]
	for i := range e.Models {
		e.Models[i].Train.Steps = 60
	}
	rf, err := harness.Run(context.Background(), e, runOpts())
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]map[uint64]float64{}
	for _, r := range rf.Results {
		if values[r.Metric] == nil {
			values[r.Metric] = map[uint64]float64{}
		}
		values[r.Metric][r.Seed] = float64(r.Value)
	}
	for _, seed := range e.Seeds {
		before, ok := values["nll_init"][seed]
		after := values["nll"][seed]
		if !ok || !(before > after) {
			t.Errorf("seed %d: nll_init %v (recorded %v), nll after training %v: want the initial loss recorded and higher", seed, before, ok, after)
		}
	}
	found := false
	for _, s := range rf.Series {
		found = found || (s.Name == "nll_vs_training" && s.Label == "init")
	}
	if !found {
		t.Error("the initial evaluation's series was not recorded")
	}
}
