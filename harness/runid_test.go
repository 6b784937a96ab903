package harness_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
)

// A run id depends on the run's key and configuration by value: not on
// whitespace, key order, how a number is written or where weights are
// loaded from.
func TestRunIDIsCanonical(t *testing.T) {
	k := harness.RunKey{Task: "fake/count", Model: "fake-lm", Seed: 18446744073709551615}
	base := `{"task":{"name":"fake/count","config":{"seq_len":6}},"model":{"label":"fake-lm","train":{"lr":0.001,"eps":1e-08,"clip":1}},"seed":18446744073709551615}`
	id, err := harness.RunID(k, []byte(base))
	if err != nil || !harness.ValidRunID(id) {
		t.Fatalf("RunID = %q, %v", id, err)
	}
	for _, same := range []string{
		` { "seed" : 18446744073709551615, "model":{"train":{"clip":1.0,"eps":1e-8,"lr":1e-3},"label":"fake-lm"},
		    "task":{"config":{"seq_len":6e0},"name":"fake/count"} }`,
		`{"task":{"name":"fake/count","config":{"seq_len":6}},"model":{"label":"fake-lm","train":{"lr":0.0010,"eps":0.00000001,"clip":1}},"seed":18446744073709551615,"load_weights":"/elsewhere/w.safetensors"}`,
	} {
		if got, err := harness.RunID(k, []byte(same)); err != nil || got != id {
			t.Errorf("RunID of %s = %q, %v; want %q", same, got, err, id)
		}
	}
	differ := map[string]harness.RunKey{
		strings.Replace(base, `"seq_len":6`, `"seq_len":7`, 1):   k,
		strings.Replace(base, `"lr":0.001`, `"lr":0.0010001`, 1): k,
		// A uint64 seed is compared exactly, not as its float64 neighbour.
		strings.Replace(base, `"seed":18446744073709551615`, `"seed":18446744073709551614`, 1): k,
	}
	for cfg, key := range differ {
		if got, _ := harness.RunID(key, []byte(cfg)); got == id {
			t.Errorf("RunID of %s equals the base's", cfg)
		}
	}
	for _, key := range []harness.RunKey{{"fake/other", k.Model, k.Seed}, {k.Task, "lm2", k.Seed}, {k.Task, k.Model, 1}} {
		if got, _ := harness.RunID(key, []byte(base)); got == id {
			t.Errorf("RunID of %v equals the base's", key)
		}
	}
	if _, err := harness.RunID(k, []byte(`{"a":`)); err == nil || !strings.Contains(err.Error(), "run id of fake-lm on fake/count") {
		t.Errorf("RunID of bad JSON: err = %v", err)
	}
	if _, err := harness.RunID(k, []byte(`{} {}`)); err == nil {
		t.Error("RunID accepted two JSON values")
	}
}

func TestValidRunID(t *testing.T) {
	for s, want := range map[string]bool{"0123456789abcdef": true, "0123456789ABCDEF": false, "0123456789abcde": false, "0123456789abcdefa": false, "0123456789abcdeg": false} {
		if harness.ValidRunID(s) != want {
			t.Errorf("ValidRunID(%q) = %v", s, !want)
		}
	}
}

// Every recorded run carries the id the plan gives it; a results file
// written before ids existed loads with the same ids computed (and a run
// without a configuration with none), and a malformed id is refused.
func TestRunRecordsCarryRunIDs(t *testing.T) {
	e := experiment(t, "")
	plan, err := harness.PlanRuns(context.Background(), e, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := harness.Run(context.Background(), e, runOpts()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.Out, harness.ResultsFileName)
	rf, err := harness.LoadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rf.Runs {
		if r.RunID != plan[i].ID || r.Key() != plan[i].Key {
			t.Errorf("runs[%d] = %s %v, plan has %s %v", i, r.RunID, r.Key(), plan[i].ID, plan[i].Key)
		}
	}

	old := editRuns(t, path, func(i int, run map[string]any) {
		delete(run, "run_id")
		if i == 1 {
			delete(run, "config")
		}
	})
	loaded, err := harness.ParseResults("old.json", old)
	if err != nil {
		t.Fatalf("a file without run ids does not load: %v", err)
	}
	for i, r := range loaded.Runs {
		want := plan[i].ID
		if i == 1 {
			want = ""
		}
		if r.RunID != want {
			t.Errorf("old file: runs[%d].run_id = %q, want %q", i, r.RunID, want)
		}
	}

	bad := editRuns(t, path, func(i int, run map[string]any) {
		if i == 2 {
			run["run_id"] = "XYZ"
		}
	})
	if _, err := harness.ParseResults("bad.json", bad); err == nil || !strings.Contains(err.Error(), `bad.json: runs[2]: run_id "XYZ" is not 16 lowercase hexadecimal digits`) {
		t.Errorf("malformed run id: err = %v", err)
	}
}

// editRuns returns the results file at path with edit applied to each run.
func editRuns(t *testing.T, path string, edit func(i int, run map[string]any)) []byte {
	t.Helper()
	return editJSON(t, path, func(doc map[string]any) {
		for i, r := range doc["runs"].([]any) {
			edit(i, r.(map[string]any))
		}
	})
}

// editJSON returns the JSON file at path with edit applied.
func editJSON(t *testing.T, path string, edit func(doc map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A run that fails is listed in the manifest with its id and error (while
// the experiment goes on), stays listed once while it keeps failing, and
// is not listed once it is recorded.
func TestFailedRunIsRecordedInTheManifest(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n  - name: fake-fragile\n    config: {fail_setup: true}\n")
	plan, err := harness.PlanRuns(context.Background(), e, 1)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string) *harness.ResultsFile {
		t.Helper()
		rf, err := harness.LoadResults(e.Out)
		if err != nil {
			t.Fatal(err)
		}
		f := rf.Manifest.Failed
		if len(f) != 1 || f[0].RunID != plan[1].ID || f[0].Key() != plan[1].Key || !strings.Contains(f[0].Error, "setup fails as configured") {
			t.Errorf("%s: manifest.failed = %+v; want %s (%v)", what, f, plan[1].ID, plan[1].Key)
		}
		return rf
	}
	var rp *harness.RunProblems
	if _, err := harness.Run(context.Background(), e, runOpts()); !errors.As(err, &rp) {
		t.Fatalf("err = %v", err)
	}
	check("run")
	opt := runOpts()
	opt.Resume = true
	if _, err := harness.Run(context.Background(), e, opt); !errors.As(err, &rp) {
		t.Fatalf("resume: err = %v", err)
	}
	check("resumed, failing again")

	// A listed run that is recorded on resume is no longer listed, nor is
	// one the experiment does not plan (here the stored failure of
	// fail_setup, which is part of the configuration, and a made-up id).
	fixed := hardExperiment(t, countTask, "  - name: fake-lm\n  - name: fake-fragile\n")
	fixed.Out = e.Out
	fixedPlan, err := harness.PlanRuns(context.Background(), fixed, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.Out, harness.ResultsFileName)
	b := editJSON(t, path, func(doc map[string]any) {
		man := doc["manifest"].(map[string]any)
		stale := map[string]any{"run_id": "0000000000000000", "task": "fake/count", "model": "gone", "seed": 1, "error": "x"}
		retried := map[string]any{"run_id": fixedPlan[1].ID, "task": "fake/count", "model": "fake-fragile", "seed": 1, "error": "x"}
		man["failed"] = append(man["failed"].([]any), stale, retried)
	})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.Run(context.Background(), fixed, opt); err != nil {
		t.Fatal(err)
	}
	rf, err := harness.LoadResults(e.Out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rf.Manifest.Failed) != 0 || !rf.Manifest.Complete || len(rf.Runs) != 2 {
		t.Errorf("after the fix: failed %+v, complete %v, %d runs", rf.Manifest.Failed, rf.Manifest.Complete, len(rf.Runs))
	}
}
