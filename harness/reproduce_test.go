package harness_test

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/nn"
)

func TestToleranceAgree(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	exact := harness.Tolerance{}
	loose := harness.Tolerance{Rel: 1e-3, Abs: 1e-9}
	for _, c := range []struct {
		tol       harness.Tolerance
		a, b      float64
		agree     bool
		tolString string
	}{
		{exact, 1.5, 1.5, true, "exact"},
		{exact, 1.5, math.Nextafter(1.5, 2), false, "exact"},
		{exact, nan, nan, true, "exact"},
		{exact, nan, 1, false, "exact"},
		{exact, inf, inf, true, "exact"},
		{exact, 0, math.Copysign(0, -1), true, "exact"},
		{loose, 100, 100.09, true, "rel 0.001, abs 1e-09"},
		{loose, 100, 100.11, false, "rel 0.001, abs 1e-09"},
		{loose, 0, 5e-10, true, "rel 0.001, abs 1e-09"},
		{loose, 0, 2e-9, false, "rel 0.001, abs 1e-09"},
		{loose, inf, 1e308, false, "rel 0.001, abs 1e-09"},
		{loose, 1, nan, false, "rel 0.001, abs 1e-09"},
	} {
		if got := c.tol.Agree(c.a, c.b); got != c.agree {
			t.Errorf("%v.Agree(%v, %v) = %v", c.tol, c.a, c.b, got)
		}
		if c.tol.String() != c.tolString {
			t.Errorf("String() = %q", c.tol.String())
		}
	}
}

func TestIsTimingUnit(t *testing.T) {
	for unit, want := range map[string]bool{
		"s": true, "ms": true, "tokens/s": true, "samples/s": true, "ns/op": true,
		"bits/byte": false, "nats/token": false, "": false, "fraction": false, "bytes": false,
	} {
		if got := harness.IsTimingUnit(unit); got != want {
			t.Errorf("IsTimingUnit(%q) = %v", unit, got)
		}
	}
}

type detBackend struct {
	nn.Backend
	det bool
}

func (b detBackend) Deterministic() bool { return b.det }

func TestDefaultTolerance(t *testing.T) {
	fake, err := nn.OpenBackend("fake", "cpu")
	if err != nil {
		t.Fatal(err)
	}
	if tol := harness.DefaultTolerance(fake); tol != harness.NondeterministicTolerance() {
		t.Errorf("fake backend: %v", tol)
	}
	if tol := harness.DefaultTolerance(detBackend{fake, true}); !tol.Exact() {
		t.Errorf("deterministic backend: %v", tol)
	}
	if tol := harness.DefaultTolerance(detBackend{fake, false}); tol.Exact() {
		t.Errorf("nondeterministic backend: %v", tol)
	}
}

func TestCheckDatasets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.txt")
	os.WriteFile(path, []byte("hello"), 0o644)
	sum := "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" // sha256("hello")
	ok := harness.DatasetRef{Name: "d", Path: path, SHA256: sum, Bytes: 5}
	missing := harness.DatasetRef{Name: "gone", Path: filepath.Join(dir, "nope"), SHA256: sum}
	if err := harness.CheckDatasets([]harness.DatasetRef{ok, missing}); err != nil {
		t.Errorf("unchanged data: %v", err)
	}
	os.WriteFile(path, []byte("hellO"), 0o644)
	err := harness.CheckDatasets([]harness.DatasetRef{missing, ok})
	var de *harness.DatasetError
	if !errors.As(err, &de) || de.Dataset.Name != "d" || !strings.Contains(err.Error(), `dataset "d" (`+path+`) differs`) ||
		!strings.Contains(err.Error(), "manifest records "+sum) {
		t.Errorf("err = %v", err)
	}
}

// TestReproduceInterrupted reproduces a results file that holds only some
// of its experiment's runs: only those are rerun, and the stored metrics of
// the runs agree exactly with the fake (deterministic) models.
func TestReproduceInterrupted(t *testing.T) {
	e := experiment(t, "")
	rf, err := harness.Run(context.Background(), e, runOpts())
	if err != nil {
		t.Fatal(err)
	}
	// Keep seed 1 only, as if the run had been interrupted.
	keep := func(seed uint64) bool { return seed == 1 }
	var runs []harness.RunRecord
	for _, r := range rf.Runs {
		if keep(r.Seed) {
			runs = append(runs, r)
		}
	}
	var results []harness.Result
	for _, r := range rf.Results {
		if keep(r.Seed) {
			results = append(results, r)
		}
	}
	var curves []harness.Curve
	for _, c := range rf.Curves {
		if keep(c.Seed) {
			curves = append(curves, c)
		}
	}
	// A timing metric is never compared.
	results = append(results, harness.Result{Model: "fake-lm", Task: "fake/count", Seed: 1, Metric: "tokens_per_sec", Value: 123, Unit: "tokens/s"})
	rf.Runs, rf.Results, rf.Curves, rf.Manifest.Complete = runs, results, curves, false
	if err := rf.Write(filepath.Join(e.Out, harness.ResultsFileName)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rerun")
	exact := harness.Tolerance{}
	rep, err := harness.Reproduce(context.Background(), e.Out, harness.ReproduceOptions{Out: out, Tolerance: &exact})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Removed || rep.Dir != out {
		t.Errorf("OK %v removed %v dir %s; drifts %+v problems %v", rep.OK(), rep.Removed, rep.Dir, rep.Drifts(), rep.Problems)
	}
	if len(rep.Rerun.Runs) != 2 {
		t.Errorf("reran %d runs, want the 2 stored ones", len(rep.Rerun.Runs))
	}
	statuses := map[string]int{}
	for _, c := range rep.Checks {
		statuses[c.Status]++
	}
	if statuses[harness.CheckOK] != 6 || statuses[harness.CheckTiming] != 1 || len(rep.Checks) != 7 {
		t.Errorf("checks %v", statuses)
	}
	// Reproducing into a non-empty default temporary directory removes it.
	rep, err = harness.Reproduce(context.Background(), e.Out, harness.ReproduceOptions{Tolerance: &exact})
	if err != nil || !rep.Removed {
		t.Fatalf("err %v, removed %v", err, rep != nil && rep.Removed)
	}
	if _, err := os.Stat(rep.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory %s kept: %v", rep.Dir, err)
	}

	// A stored value that is missing from the rerun is a drift.
	// So is one measured on another split than the rerun's (not mistaken
	// for the rerun's value of the same metric).
	rf.Results = append(rf.Results, harness.Result{Model: "fake-lm", Task: "fake/count", Seed: 1, Metric: "made_up", Value: 1},
		harness.Result{Model: "fake-lm", Task: "fake/count", Seed: 1, Metric: "nll", Split: "valid", Value: 1, Unit: "nats/token"})
	rf.Write(filepath.Join(e.Out, harness.ResultsFileName))
	rep, err = harness.Reproduce(context.Background(), e.Out, harness.ReproduceOptions{Out: filepath.Join(t.TempDir(), "rerun2")})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Drifts()
	if len(d) != 2 || d[0].Metric != "made_up" || d[1].Metric != "nll" || d[1].Split != "valid" || rep.OK() {
		t.Errorf("drifts %+v", d)
	}
	for _, c := range d {
		if c.Status != harness.CheckMissing {
			t.Errorf("%s: status %s, want %s", c.Metric, c.Status, harness.CheckMissing)
		}
	}
}

func TestReproduceRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := harness.Reproduce(context.Background(), dir, harness.ReproduceOptions{}); err == nil || !strings.Contains(err.Error(), "results.json") {
		t.Errorf("no results: %v", err)
	}
	rf := &harness.ResultsFile{Manifest: harness.Manifest{Name: "x", Config: []byte(`{"name": "x"}`)}}
	rf.Write(filepath.Join(dir, harness.ResultsFileName))
	if _, err := harness.Reproduce(context.Background(), dir, harness.ReproduceOptions{}); err == nil || !strings.Contains(err.Error(), "runs is missing or empty: the file records no finished run") {
		t.Errorf("no runs: %v", err)
	}
	rf.Runs = []harness.RunRecord{{Model: "m", Task: "t", Seed: 1}}
	rf.Manifest.Version = harness.Version
	rf.Manifest.Config = []byte(`{"name": "x", "backend": "fake", "tasks": [{"name": "nosuch"}], "models": [{"name": "fake-lm"}]}`)
	rf.Write(filepath.Join(dir, harness.ResultsFileName))
	_, err := harness.Reproduce(context.Background(), dir, harness.ReproduceOptions{})
	if err == nil || !strings.Contains(err.Error(), "the stored configuration does not load") || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("bad config: %v", err)
	}
}

// rewriteWithPython re-serialises a results file with Python's json module,
// as a user's script would: keys sorted, indented, and numbers spelt the
// Python way (Go writes the default Adam eps as 1e-8, Python as 1e-08).
func rewriteWithPython(t *testing.T, dir string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	path := filepath.Join(dir, harness.ResultsFileName)
	script := `import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
with open(sys.argv[1], "w") as f:
    json.dump(d, f, indent=1, sort_keys=True)`
	if out, err := exec.Command(py, "-c", script, path).CombinedOutput(); err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"eps": 1e-08`) {
		t.Fatalf("the rewrite does not respell the numbers:\n%.2000s", b)
	}
}

// TestConfigDiffResumeAfterPythonRewrite: a results file rewritten by another JSON
// tool still belongs to its experiment, so -resume runs only what is new.
func TestConfigDiffResumeAfterPythonRewrite(t *testing.T) {
	e := experiment(t, "")
	e.Seeds = []uint64{1}
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	rewriteWithPython(t, e.Out)
	e.Seeds = []uint64{1, 2}
	opt := runOpts()
	opt.Resume = true
	steps := 0
	rf, err := harness.Run(countSteps(context.Background(), &steps), e, opt)
	if err != nil {
		t.Fatal(err)
	}
	if steps != 6 || len(rf.Runs) != 4 || !rf.Manifest.Complete {
		t.Errorf("resume trained %d steps (want 6, one lm run) and holds %d runs", steps, len(rf.Runs))
	}
}

// TestReproduceAfterPythonRewrite: reproduce compares the rerun's resolved
// configurations with the stored ones by value.
func TestReproduceAfterPythonRewrite(t *testing.T) {
	e := experiment(t, "")
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	rewriteWithPython(t, e.Out)
	exact := harness.Tolerance{}
	rep, err := harness.Reproduce(context.Background(), e.Out, harness.ReproduceOptions{Out: filepath.Join(t.TempDir(), "rerun"), Tolerance: &exact})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Checks) != 12 {
		t.Errorf("%d checks, drifts %+v, problems %q", len(rep.Checks), rep.Drifts(), rep.Problems)
	}
}
