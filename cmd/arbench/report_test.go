package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"arbench/datasets"
	"arbench/harness"
	"arbench/reports"
)

// fakeRun runs the fake task with the fake models and returns the output
// directory.
func fakeRun(t *testing.T, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	all := append([]string{"run", "-model", "fake-lm,fake-uniform", "-task", "fake/count", "-backend", "fake", "-out", out, "-quiet"}, args...)
	if _, stderr, err := arbench(t, all...); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	return out
}

// TestReportMultiSeed runs three seeds (-seeds) and renders the report:
// the table has n and 95% intervals, and every output file is written.
func TestReportMultiSeed(t *testing.T) {
	dir := fakeRun(t, "-seeds", "1,2,3", "-steps", "6")
	rf, err := harness.LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Runs) != 6 || fmt.Sprint(rf.Manifest.Seeds) != "[1 2 3]" {
		t.Fatalf("%d runs, seeds %v", len(rf.Runs), rf.Manifest.Seeds)
	}
	table, stderr, err := arbench(t, "report", dir)
	if err != nil {
		t.Fatalf("report: %v\n%s", err, stderr)
	}
	for _, s := range []string{"95% confidence interval", "│ n │", "│ fake-lm      │ 3 │ 1,2,3 │", " ± "} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	for _, f := range []string{"report.md", "report.html", "results.csv", "summary.csv", "curves.csv", "series.csv",
		"plots/loss_fake_count.png", "plots/loss_fake_count.svg",
		"plots/metric_fake_count_bits_per_token.png", "plots/metric_fake_count_bits_per_token.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		} else if !strings.Contains(stderr, "wrote "+filepath.Join(dir, f)) {
			t.Errorf("stderr does not list %s:\n%s", f, stderr)
		}
	}
	// summary.csv: the 3-seed interval of fake-lm, checked by hand from the
	// per-seed values in results.csv.
	rows := readCSV(t, filepath.Join(dir, "results.csv"))
	var xs []float64
	for _, r := range rows[1:] {
		if r[1] == "fake-lm" && r[3] == "bits_per_token" {
			v, _ := strconv.ParseFloat(r[4], 64)
			xs = append(xs, v)
		}
	}
	if len(xs) != 3 {
		t.Fatalf("results.csv has %d fake-lm bits_per_token rows", len(xs))
	}
	want := reports.Summarize(xs)
	for _, r := range readCSV(t, filepath.Join(dir, "summary.csv"))[1:] {
		if r[1] == "fake-lm" && r[2] == "bits_per_token" {
			h, _ := strconv.ParseFloat(r[7], 64)
			if r[4] != "3" || h != want.HalfWidth || h <= 0 {
				t.Errorf("summary row %v, want n=3 and half-width %v", r, want.HalfWidth)
			}
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// editResult changes one stored metric value of results.json.
func editResult(t *testing.T, dir, model, metric string, seed uint64, f func(float64) float64) {
	t.Helper()
	rf, err := harness.LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, r := range rf.Results {
		if r.Model == model && r.Metric == metric && r.Seed == seed {
			rf.Results[i].Value = harness.Number(f(float64(r.Value)))
			found = true
		}
	}
	if !found {
		t.Fatalf("no %s %s seed %d in %s", model, metric, seed, dir)
	}
	if err := rf.Write(filepath.Join(dir, harness.ResultsFileName)); err != nil {
		t.Fatal(err)
	}
}

func TestReproduce(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data.bin")
	content := []byte(strings.Repeat("0123456789abcdef-arbench-", 40))
	if err := os.WriteFile(data, content, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := fakeRun(t, "-seeds", "1,2", "-steps", "5", "-data", data)

	// Untouched: exit 0, and the temporary rerun directory is removed.
	stdout, stderr, err := arbench(t, "reproduce", "-quiet", dir)
	if err != nil {
		t.Fatalf("reproduce: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "reproduced 12 metric(s) of 4 run(s)") || !strings.Contains(stdout, "all agree") {
		t.Errorf("stdout: %s", stdout)
	}
	if strings.Contains(stderr, "rerun results:") {
		t.Errorf("the temporary rerun directory was kept: %s", stderr)
	}

	// One value off by 1e-12 relative: exact comparison catches it and
	// names the metric; the default tolerance of a backend not known to be
	// deterministic (1e-3) does not.
	editResult(t, dir, "fake-lm", "nll", 2, func(v float64) float64 { return v * (1 + 1e-12) })
	stdout, _, err = arbench(t, "reproduce", "-quiet", "-out", filepath.Join(t.TempDir(), "rerun"), "-rtol", "0", dir)
	if err == nil || errors.Is(err, errUsage) {
		t.Fatalf("reproduce after an edit: err = %v", err)
	}
	if !strings.Contains(err.Error(), "1 metric(s) differ: nll (fake-lm on fake/data seed 2, drift)") {
		t.Errorf("error does not name the metric: %v", err)
	}
	if !strings.Contains(stdout, "│ fake/data │ fake-lm │    2 │ nll (nats/token) │") {
		t.Errorf("drift table:\n%s", stdout)
	}
	if _, _, err := arbench(t, "reproduce", "-quiet", dir); err != nil {
		t.Errorf("default tolerance: %v", err)
	}
	editResult(t, dir, "fake-uniform", "bits_per_token", 1, func(v float64) float64 { return v + 0.5 })
	_, _, err = arbench(t, "reproduce", "-quiet", "-out", filepath.Join(t.TempDir(), "rerun"), dir)
	if err == nil || !strings.Contains(err.Error(), "bits_per_token (fake-uniform on fake/data seed 1, drift)") {
		t.Errorf("err = %v", err)
	}

	// Reproducing into the stored directory itself is refused.
	_, _, err = arbench(t, "reproduce", "-quiet", "-out", dir, dir)
	if err == nil || !strings.Contains(err.Error(), "is the directory being reproduced") {
		t.Errorf("err = %v", err)
	}

	// A changed dataset: refused before anything runs, naming it.
	content[10] ^= 1
	if err := os.WriteFile(data, content, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rerun")
	_, _, err = arbench(t, "reproduce", "-quiet", "-out", out, dir)
	var de *harness.DatasetError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), `dataset "data.bin"`) || !strings.Contains(err.Error(), "refusing to reproduce") {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reproduce ran despite the changed dataset: %v", err)
	}
}

// TestReproduceRealModelsExact trains real models on the gorgonia backend
// (deterministic: exact comparison by default) and reproduces them; then
// reproduces a text/jargon run and corrupts the cached corpus.
func TestReproduceRealModelsExact(t *testing.T) {
	data := corpus(t, 12000)
	dir := filepath.Join(t.TempDir(), "a")
	cfg := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(cfg, []byte(`name: tiny
seeds: [3, 4]
out: `+dir+`
train: {steps: 4, batch: 4, lr: 0.01, eval_every: 2}
tasks:
  - name: text
    data: `+data+`
    config: {seq_len: 16, eval_stride: 8, eval_batch: 16, valid_tokens: 256, max_eval_tokens: 512}
models:
  - name: lstm
    config: {embed: 8, hidden: 12}
  - name: transformer
    config: {dim: 8, heads: 2, layers: 1, context: 16, dropout: 0.1}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := arbench(t, "run", "-config", cfg, "-quiet"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	stdout, stderr, err := arbench(t, "reproduce", "-quiet", dir)
	if err != nil {
		t.Fatalf("reproduce: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "tolerance exact: all agree") {
		t.Errorf("stdout: %s", stdout)
	}
	if _, stderr, err := arbench(t, "report", dir); err != nil {
		t.Fatalf("report: %v\n%s", err, stderr)
	}
	// Every metric of a deterministic backend must agree bit for bit, so
	// the smallest representable change is a drift.
	editResult(t, dir, "transformer", "bits_per_byte", 4, func(v float64) float64 { return math.Nextafter(v, math.Inf(1)) })
	_, _, err = arbench(t, "reproduce", "-quiet", "-out", filepath.Join(t.TempDir(), "rerun"), dir)
	if err == nil || !strings.Contains(err.Error(), "bits_per_byte (transformer on text/corpus seed 4, drift)") {
		t.Errorf("err = %v", err)
	}
}

// TestReproduceJargonCorrupted reproduces a text/jargon run from a private
// copy of the cached corpus, then corrupts the copy: reproduce refuses and
// names the dataset.
func TestReproduceJargonCorrupted(t *testing.T) {
	dir := datasets.Dir()
	if os.Getenv(datasets.EnvDir) == "" {
		dir = filepath.Join("..", "..", "data") // the module root's cache, as make uses it
	}
	src, err := datasets.Path("jargon", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("the jargon corpus is not cached (%v): `make datasets` fetches it", err)
	}
	cache := t.TempDir()
	t.Setenv(datasets.EnvDir, cache)
	dst, _ := datasets.Path("jargon", cache)
	copyFile(t, src, dst)
	dir = filepath.Join(t.TempDir(), "j")
	cfg := filepath.Join(t.TempDir(), "j.yaml")
	if err := os.WriteFile(cfg, []byte(`name: j
seed: 1
out: `+dir+`
train: {steps: 2, batch: 2, lr: 0.01, eval_every: 0}
tasks:
  - name: text/jargon
    config: {seq_len: 16, eval_stride: 16, eval_batch: 16, valid_tokens: 128, max_eval_tokens: 256}
models:
  - name: rnn
    config: {embed: 8, hidden: 8}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := arbench(t, "run", "-config", cfg, "-quiet"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if stdout, stderr, err := arbench(t, "reproduce", "-quiet", dir); err != nil {
		t.Fatalf("reproduce: %v\n%s%s", err, stdout, stderr)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("corrupted")
	f.Close()
	_, _, err = arbench(t, "reproduce", "-quiet", dir)
	if err == nil || !strings.Contains(err.Error(), `dataset "jargon"`) || !strings.Contains(err.Error(), "refusing to reproduce") {
		t.Errorf("err = %v", err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCompare(t *testing.T) {
	a := fakeRun(t, "-seeds", "1,2", "-steps", "2")
	b := fakeRun(t, "-seeds", "1,2", "-steps", "30", "-model", "fake-lm")
	bench := filepath.Join(t.TempDir(), "bench.txt")
	stdout, stderr, err := arbench(t, "compare", "-benchstat", bench, a, b)
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, stderr)
	}
	for _, s := range []string{"A: " + a, "B: " + b, "B−A (%)", "fake/count │ fake-lm │ bits_per_token (bits/token)", "(n=2)",
		"only in A (" + a + "): fake/count fake-uniform bits_per_token; fake/count fake-uniform nll; fake/count fake-uniform perplexity"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("compare output lacks %q:\n%s", s, stdout)
		}
	}
	// More training lowers the loss: a negative delta.
	if !regexp.MustCompile(`│ fake/count │ fake-lm │ nll \(nats/token\) +│ +[0-9.]+ ± [0-9.]+ \(n=2\) │ +[0-9.]+ ± [0-9.]+ \(n=2\) │ +-[0-9.]+ │ +-[0-9.]+% │`).MatchString(stdout) {
		t.Errorf("no negative nll delta:\n%s", stdout)
	}
	raw, err := os.ReadFile(bench)
	if err != nil {
		t.Fatal(err)
	}
	// Go benchmark format: configuration lines, then per seed
	// Benchmark<Task>/model=<m>/metric=<x> 1 <value> <unit>.
	line := regexp.MustCompile(`^Benchmark[A-Z][A-Za-z0-9._-]*/model=[A-Za-z0-9._-]+/metric=[A-Za-z0-9._-]+ 1 \S+ \S+$`)
	config := regexp.MustCompile(`^[a-z][^\sA-Z:]*: \S.*$`)
	var blocks []string
	benches := 0
	for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		switch {
		case l == "":
		case line.MatchString(l):
			benches++
			f := strings.Fields(l)
			if _, err := strconv.ParseFloat(f[2], 64); err != nil {
				t.Errorf("value of %q: %v", l, err)
			}
		case config.MatchString(l):
			if v, ok := strings.CutPrefix(l, "results: "); ok {
				blocks = append(blocks, v)
			}
		default:
			t.Errorf("not Go benchmark format: %q", l)
		}
	}
	// 3 shared metrics × 2 seeds × 2 sides.
	if benches != 12 || fmt.Sprint(blocks) != fmt.Sprint([]string{a, b}) {
		t.Errorf("%d benchmark lines, blocks %v:\n%s", benches, blocks, raw)
	}
	if !strings.Contains(string(raw), "BenchmarkFake_count/model=fake-lm/metric=perplexity 1 ") ||
		!strings.Contains(string(raw), " perplexity\n") {
		t.Errorf("unitless metric not written with its name as unit:\n%s", raw)
	}
	// "-" writes to standard output.
	stdout, _, err = arbench(t, "compare", "-benchstat", "-", a, b)
	if err != nil || !strings.Contains(stdout, "BenchmarkFake_count/model=fake-lm/metric=nll 1 ") {
		t.Errorf("compare -benchstat -: %v\n%s", err, stdout)
	}
	if _, _, err := arbench(t, "compare", a); !errors.Is(err, errUsage) {
		t.Errorf("one directory: err = %v", err)
	}
}

func TestReportCommandsHelpAndUsage(t *testing.T) {
	for _, cmd := range []string{"report", "reproduce", "compare"} {
		out, _, err := arbench(t, "help", cmd)
		if err != nil || !strings.Contains(out, "Usage: arbench "+cmd) {
			t.Errorf("help %s = %q, %v", cmd, out, err)
		}
	}
	for _, args := range [][]string{{"reproduce"}, {"reproduce", "a", "b"}, {"compare", "a"}, {"compare", "-nosuch", "a", "b"}, {"report", "a", "b"}} {
		if _, _, err := arbench(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	if out, _, _ := arbench(t, "help"); !strings.Contains(out, "arbench reproduce DIR") || !strings.Contains(out, "arbench compare DIR_A DIR_B") {
		t.Errorf("usage lacks the new commands:\n%s", out)
	}
}

// TestReportRefusesInvalidResults: report, compare and reproduce refuse a
// results file that they would misread (a missing field, a duplicated run,
// no content), naming the entry, and report writes nothing.
func TestReportRefusesInvalidResults(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(fakeRun(t), harness.ResultsFileName))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := harness.ParseResults("good", good)
	if err != nil {
		t.Fatal(err)
	}
	encode := func(edit func(rf harness.ResultsFile) harness.ResultsFile) string {
		b, err := json.Marshal(edit(*rf))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dupRun := encode(func(rf harness.ResultsFile) harness.ResultsFile {
		rf.Runs = append(slices.Clone(rf.Runs), rf.Runs[0])
		return rf
	})
	noMetric := strings.Replace(string(good), `"metric": "bits_per_token",`, "", 1)
	for _, c := range []struct{ name, content, want string }{
		{"empty object", "{}", "results.json: manifest is missing"},
		{"null", "null", "results.json: expected a JSON object (a results file), got null"},
		{"duplicate run", dupRun, "results.json: runs[2]: duplicate of runs[0] (fake-lm on fake/count seed 1)"},
		{"missing metric", noMetric, "results.json: results[0]: metric is missing"},
	} {
		dir := filepath.Join(t.TempDir(), "r")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, harness.ResultsFileName), []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, _, err := arbench(t, "report", dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || stdout != "" {
			t.Errorf("%s: report: err = %v, stdout %q; want an error naming %q", c.name, err, stdout, c.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("%s: report wrote files: %v", c.name, ents)
		}
		if _, _, err := arbench(t, "compare", dir, dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: compare: err = %v", c.name, err)
		}
		out := filepath.Join(t.TempDir(), "rerun")
		if _, _, err := arbench(t, "reproduce", "-quiet", "-out", out, dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: reproduce: err = %v", c.name, err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: reproduce ran: %v", c.name, err)
		}
	}
}
