package harness_test

import (
	"context"
	"errors"
	"math"
	"os"
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
	// A timing metric is never compared.
	results = append(results, harness.Result{Model: "fake-lm", Task: "fake/count", Seed: 1, Metric: "tokens_per_sec", Value: 123, Unit: "tokens/s"})
	rf.Runs, rf.Results, rf.Manifest.Complete = runs, results, false
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
	rf.Results = append(rf.Results, harness.Result{Model: "fake-lm", Task: "fake/count", Seed: 1, Metric: "made_up", Value: 1})
	rf.Write(filepath.Join(e.Out, harness.ResultsFileName))
	rep, err = harness.Reproduce(context.Background(), e.Out, harness.ReproduceOptions{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Drifts(); len(d) != 1 || d[0].Metric != "made_up" || d[0].Status != harness.CheckMissing || rep.OK() {
		t.Errorf("drifts %+v", d)
	}
}

func TestReproduceRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := harness.Reproduce(context.Background(), dir, harness.ReproduceOptions{}); err == nil || !strings.Contains(err.Error(), "results.json") {
		t.Errorf("no results: %v", err)
	}
	rf := &harness.ResultsFile{Manifest: harness.Manifest{Config: []byte(`{"name": "x"}`)}}
	rf.Write(filepath.Join(dir, harness.ResultsFileName))
	if _, err := harness.Reproduce(context.Background(), dir, harness.ReproduceOptions{}); err == nil || !strings.Contains(err.Error(), "holds no finished run") {
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
