package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"arbench/harness"
)

// runShards runs every shard of n of e (those listed in only, when given)
// and returns their directories by index.
func runShards(t *testing.T, e *harness.Experiment, n int, only ...int) []string {
	t.Helper()
	dirs := make([]string, n)
	for i := 0; i < n; i++ {
		sh := harness.Shard{Index: i, Count: n}
		dirs[i] = harness.ShardDir(e.Out, sh)
		if len(only) > 0 && !containsInt(only, i) {
			continue
		}
		opt := runOpts()
		opt.Shard = &sh
		var rp *harness.RunProblems
		if _, err := harness.Run(context.Background(), e, opt); err != nil && !errors.As(err, &rp) {
			t.Fatalf("shard %s: %v", sh, err)
		}
	}
	return dirs
}

func containsInt(list []int, x int) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// runWhole runs e into a directory of its own and returns it.
func runWhole(t *testing.T, e *harness.Experiment) string {
	t.Helper()
	whole := *e
	whole.Out = filepath.Join(t.TempDir(), "whole")
	if _, err := harness.Run(context.Background(), &whole, runOpts()); err != nil {
		t.Fatal(err)
	}
	return whole.Out
}

func mergeOpts(out string) harness.MergeOptions {
	return harness.MergeOptions{Out: out, CommandLine: []string{"arbench", "merge"}, Report: runOpts().Report}
}

// A merge of every shard is the single-machine run of the experiment:
// the same runs in the same order with the same ids, and metric for metric
// the same results, curves, series and samples; it is an ordinary results
// directory, and merging again replaces it. A shard written before run ids
// existed merges all the same.
func TestMergeEqualsSingleRun(t *testing.T) {
	e := sweep(t)
	whole := runWhole(t, e)
	dirs := runShards(t, e, 3)
	path := filepath.Join(dirs[1], harness.ResultsFileName)
	if err := os.WriteFile(path, editRuns(t, path, func(_ int, run map[string]any) { delete(run, "run_id") }), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	m, err := harness.Merge(context.Background(), dirs, mergeOpts(out))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Complete() || m.Count(harness.RunDone) != 12 || m.Dir != out || len(m.Shards) != 3 || m.ShardCount != 3 {
		t.Fatalf("merge: complete %v, %d done, dir %s, shards %+v", m.Complete(), m.Count(harness.RunDone), m.Dir, m.Shards)
	}
	for _, p := range m.Shards {
		if p.State() != harness.ShardComplete || p.Runs != 4 || p.Done != 4 || len(p.Dirs) != 1 {
			t.Errorf("shard %+v", p)
		}
	}
	a, err := harness.LoadResults(whole)
	if err != nil {
		t.Fatal(err)
	}
	b, err := harness.LoadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	sameResults(t, a, b)
	sameFile(t, filepath.Join(whole, harness.SamplesFileName), filepath.Join(out, harness.SamplesFileName))
	if b.Manifest.Shard != nil || !b.Manifest.Complete || len(b.Manifest.MergedFrom) != 3 || b.Manifest.MergedFrom[2].Dir != dirs[2] ||
		b.Manifest.CommandLine[1] != "merge" {
		t.Errorf("merged manifest %+v", b.Manifest)
	}
	if _, err := os.Stat(filepath.Join(out, harness.ReportFileName)); err != nil {
		t.Error(err)
	}
	if _, err := harness.Merge(context.Background(), dirs, mergeOpts(out)); err != nil {
		t.Errorf("merging again into the same directory: %v", err)
	}
	noTempFiles(t, out)
}

// sameResults fails unless a and b hold the same runs (ids, keys, order,
// notes, configurations) and the same results, curves and series.
func sameResults(t *testing.T, a, b *harness.ResultsFile) {
	t.Helper()
	if len(a.Runs) != len(b.Runs) {
		t.Fatalf("%d runs and %d runs", len(a.Runs), len(b.Runs))
	}
	for i := range a.Runs {
		x, y := a.Runs[i], b.Runs[i]
		if x.RunID != y.RunID || x.Key() != y.Key() || x.Note != y.Note || !sameJSON(t, x.Config, y.Config) || x.Steps != y.Steps {
			t.Errorf("runs[%d]: %s %v and %s %v", i, x.RunID, x.Key(), y.RunID, y.Key())
		}
	}
	if !reflect.DeepEqual(a.Results, b.Results) {
		t.Errorf("results differ:\n%+v\n%+v", a.Results, b.Results)
	}
	if !reflect.DeepEqual(a.Curves, b.Curves) || !reflect.DeepEqual(a.Series, b.Series) {
		t.Error("curves or series differ")
	}
}

// sameJSON reports whether two JSON documents hold the same values.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func sameFile(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Errorf("%s (%d bytes) and %s (%d bytes) differ", a, len(x), b, len(y))
	}
}

// copyDir copies the results of a directory into a new one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{harness.ResultsFileName, harness.SamplesFileName} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// editCopy copies dir and applies edit to the copy's results.json.
func editCopy(t *testing.T, dir string, edit func(doc map[string]any)) string {
	t.Helper()
	cp := copyDir(t, dir)
	path := filepath.Join(cp, harness.ResultsFileName)
	if err := os.WriteFile(path, editJSON(t, path, edit), 0o644); err != nil {
		t.Fatal(err)
	}
	return cp
}

func manifestOf(doc map[string]any) map[string]any { return doc["manifest"].(map[string]any) }

func firstResult(doc map[string]any) map[string]any {
	return doc["results"].([]any)[0].(map[string]any)
}

// Merge refuses directories of another experiment, version or data, runs
// that are not the experiment's or not their shard's, and a run found
// twice with different metrics, naming the directory and the difference;
// it writes nothing then.
func TestMergeRefusesMismatches(t *testing.T) {
	e := sweep(t)
	dirs := runShards(t, e, 3)
	other := *e
	other.Name = "other"
	other.Out = filepath.Join(t.TempDir(), "other")
	otherDirs := runShards(t, &other, 3, 1)
	changed := sweep(t)
	changed.Models[0].Train.LR = 0.01
	changedDirs := runShards(t, changed, 3, 2)

	edited := map[string]func(map[string]any){
		"version": func(d map[string]any) { manifestOf(d)["arbench_version"] = "0.0.1" },
		"dataset": func(d map[string]any) {
			manifestOf(d)["datasets"] = []any{map[string]any{"name": "corpus", "path": "c.txt", "sha256": "aa", "bytes": 1}}
		},
		"dataset2": func(d map[string]any) {
			manifestOf(d)["datasets"] = []any{map[string]any{"name": "corpus", "path": "c.txt", "sha256": "bb", "bytes": 1}}
		},
		"metric": func(d map[string]any) { firstResult(d)["value"] = 0.5 },
		"shard":  func(d map[string]any) { manifestOf(d)["shard"] = map[string]any{"index": 1, "count": 3} },
		"run_id": func(d map[string]any) { d["runs"].([]any)[0].(map[string]any)["run_id"] = "0123456789abcdef" },
		"config": func(d map[string]any) {
			run := d["runs"].([]any)[0].(map[string]any)
			delete(run, "run_id")
			run["config"].(map[string]any)["seed"] = 99
		},
	}
	copies := map[string]string{}
	for name, edit := range edited {
		copies[name] = editCopy(t, dirs[0], edit)
	}
	for _, tc := range []struct {
		name string
		dirs []string
		want []string
	}{
		{"name", []string{dirs[0], otherDirs[1]}, []string{otherDirs[1] + `: experiment "other", but ` + dirs[0] + ` holds experiment "sweep"`}},
		{"config", []string{dirs[0], changedDirs[2]}, []string{changedDirs[2] + ": the experiment's configuration differs from " + dirs[0] + "'s (models[0].train.lr: " + dirs[0] + " has 0.05, this one 0.01)"}},
		{"version", []string{copies["version"], dirs[1]}, []string{copies["version"] + ": written by arbench 0.0.1; this is arbench " + harness.Version,
			dirs[1] + ": arbench version " + harness.Version + ", but " + copies["version"] + " was written by 0.0.1"}},
		{"dataset", []string{copies["dataset"], copies["dataset2"]}, []string{copies["dataset2"] + `: dataset "corpus" has sha256 bb, in ` + copies["dataset"] + " aa"}},
		{"conflict", []string{dirs[0], copies["metric"]}, []string{"is in " + dirs[0] + " and " + copies["metric"] + " with different results (bits_per_token (test) {\"windows\":"}},
		{"shard", []string{copies["shard"]}, []string{copies["shard"] + ": runs[0] (", "belongs to shard 0/3, but the directory holds shard 1/3"}},
		{"run_id", []string{copies["run_id"]}, []string{copies["run_id"] + ": runs[0] (", "run_id 0123456789abcdef does not match its configuration"}},
		{"not planned", []string{copies["config"]}, []string{copies["config"] + ": runs[0] (", "not part of the experiment: its configuration differs (seed: stored 99, now"}},
		{"absent", []string{dirs[0], filepath.Join(t.TempDir(), "nope")}, []string{"nope: stat"}},
	} {
		out := filepath.Join(t.TempDir(), "merged")
		_, err := harness.Merge(context.Background(), tc.dirs, mergeOpts(out))
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: err = %v\nwant it to contain %q", tc.name, err, w)
			}
		}
		noOutput(t, out)
	}
}

// A run found twice with the same metrics is kept once, also when its
// timing metrics differ (no rerun reproduces them): the first copy's.
func TestMergeAcceptsIdenticalDuplicates(t *testing.T) {
	e := sweep(t)
	dirs := runShards(t, e, 3)
	speed := func(v float64) func(map[string]any) {
		return func(d map[string]any) {
			r := firstResult(d)
			d["results"] = append(d["results"].([]any), map[string]any{"model": r["model"], "task": r["task"], "seed": r["seed"],
				"metric": "train_speed", "value": v, "unit": "tokens/s"})
		}
	}
	a, b := editCopy(t, dirs[0], speed(100)), editCopy(t, dirs[0], speed(200))
	out := filepath.Join(t.TempDir(), "merged")
	m, err := harness.Merge(context.Background(), []string{a, dirs[1], b, dirs[2], dirs[1]}, mergeOpts(out))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Complete() || m.Duplicates != 8 || len(m.Results.Runs) != 12 {
		t.Errorf("complete %v, %d duplicates, %d runs", m.Complete(), m.Duplicates, len(m.Results.Runs))
	}
	kept := 0
	for _, r := range m.Results.Results {
		if r.Metric == "train_speed" {
			kept++
			if r.Value != 100 {
				t.Errorf("kept the second copy's timing %v", r.Value)
			}
		}
	}
	if kept != 1 {
		t.Errorf("%d train_speed results", kept)
	}
}

// An incomplete sweep: the runs of a shard not run yet are missing, runs
// that failed are reported failed (with their errors, also in the merged
// manifest), the merged directory is written but not Complete, and
// -status (no Out) counts every shard, reporting one being written as
// running where a merge refuses it.
func TestMergeReportsFailedAndMissing(t *testing.T) {
	e := hardExperiment(t, countTask, "  - name: fake-lm\n  - name: fake-fragile\n    config: {fail_setup: true}\n")
	e.Seeds = []uint64{1, 2, 3, 4, 5, 6}
	plan, err := harness.PlanRuns(context.Background(), e, 3)
	if err != nil {
		t.Fatal(err)
	}
	dirs := runShards(t, e, 3, 0, 1)
	given := []string{dirs[0], dirs[1]}
	want := map[string]string{}
	for _, r := range plan {
		_, statErr := os.Stat(filepath.Join(dirs[r.Shard], harness.ResultsFileName))
		switch {
		case r.Shard == 2 || statErr != nil:
			want[r.ID] = harness.RunMissing
		case r.Key.Model == "fake-fragile":
			want[r.ID] = harness.RunFailed
		default:
			want[r.ID] = harness.RunDone
		}
	}
	out := filepath.Join(t.TempDir(), "merged")
	m, err := harness.Merge(context.Background(), given, mergeOpts(out))
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, r := range m.Runs {
		if r.Status != want[r.ID] {
			t.Errorf("%s (%v, shard %d): %s, want %s", r.ID, r.Key, r.Shard, r.Status, want[r.ID])
		}
		if r.Status == harness.RunFailed {
			failed++
			if !strings.Contains(r.Error, "setup fails as configured") || r.Dir != dirs[r.Shard] {
				t.Errorf("%s: failed in %q with %q", r.ID, r.Dir, r.Error)
			}
		}
	}
	if failed == 0 || m.Count(harness.RunMissing) < 4 || m.Complete() {
		t.Fatalf("%d failed, %d missing: the test needs both", failed, m.Count(harness.RunMissing))
	}
	rf, err := harness.LoadResults(out)
	if err != nil {
		t.Fatal(err)
	}
	if rf.Manifest.Complete || len(rf.Manifest.Failed) != failed {
		t.Errorf("merged manifest: complete %v, failed %+v", rf.Manifest.Complete, rf.Manifest.Failed)
	}
	if p := m.Shards[2]; p.State() != harness.ShardNoResults || p.Missing != 4 || len(p.Dirs) != 0 {
		t.Errorf("shard 2: %+v (%s)", p, p.State())
	}

	release, err := harness.LockOutput(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := harness.Merge(context.Background(), given, mergeOpts(out)); !errors.Is(err, harness.ErrOutputInUse) {
		t.Errorf("merge of a shard being written: err = %v", err)
	}
	st, err := harness.Merge(context.Background(), given, harness.MergeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Shards[0]; p.State() != harness.ShardRunning || !strings.Contains(p.Running, "pid") || st.Dir != "" {
		t.Errorf("status: shard 0 %+v (%s)", p, p.State())
	}
}

// The output directory: results of a run there are kept unless Overwrite
// is set, an earlier merge is replaced, a directory merged is refused, and
// so is one another process writes.
func TestMergeOutputDirectory(t *testing.T) {
	e := sweep(t)
	dirs := runShards(t, e, 2)
	whole := runWhole(t, e)
	if _, err := harness.Merge(context.Background(), dirs, mergeOpts(whole)); err == nil ||
		!strings.Contains(err.Error(), "already holds the results of a run (") || !strings.Contains(err.Error(), "not of a merge; use -overwrite") {
		t.Errorf("merge over a run's results: err = %v", err)
	}
	opt := mergeOpts(whole)
	opt.Overwrite = true
	if _, err := harness.Merge(context.Background(), dirs, opt); err != nil {
		t.Errorf("-overwrite: %v", err)
	}
	if _, err := harness.Merge(context.Background(), dirs, mergeOpts(dirs[1])); err == nil || !strings.Contains(err.Error(), "is one of the directories merged") {
		t.Errorf("merge into a shard: err = %v", err)
	}
	release, err := harness.LockOutput(whole)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := harness.Merge(context.Background(), dirs, mergeOpts(whole)); !errors.Is(err, harness.ErrOutputInUse) {
		t.Errorf("merge into a locked directory: err = %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.Merge(context.Background(), []string{empty}, mergeOpts(filepath.Join(t.TempDir(), "m"))); err == nil ||
		!strings.Contains(err.Error(), "holds results yet") {
		t.Errorf("merge of a directory without results: err = %v", err)
	}
}
