package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arbench/harness"
)

// fakeSweep are the flags (of run and plan) of a 6-run experiment of the
// fake models.
func fakeSweep(out string) []string {
	return []string{"-model", "fake-lm,fake-uniform", "-task", "fake/count", "-steps", "2", "-seeds", "1,2,3", "-backend", "fake", "-out", out}
}

// A bad -shard value is a usage error naming the flag, and more shards
// than runs an error; both before any work, so nothing is written.
func TestShardFlagErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	for _, tc := range []struct{ value, want string }{
		{"3/3", `-shard: "3/3": shard index must be in 0..2`},
		{"1", `-shard: "1" is not I/N`},
		{"0/0", `-shard: "0/0": shard count must be in 1..`},
		{"x/2", `-shard: "x/2": shard index "x" is not a non-negative integer`},
	} {
		_, _, err := arbench(t, append([]string{"run", "-quiet", "-shard", tc.value}, fakeSweep(out)...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != exitUsage {
			t.Errorf("-shard %s: err = %v (exit %d); want a usage error containing %q", tc.value, err, exitCode(err), tc.want)
		}
	}
	_, _, err := arbench(t, append([]string{"run", "-quiet", "-shard", "0/7"}, fakeSweep(out)...)...)
	if err == nil || !strings.Contains(err.Error(), "-shard 0/7: 7 shards for 6 run(s) would leave shards without work; use at most 6") {
		t.Errorf("-shard 0/7: err = %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused run created %s: %v", out, err)
	}
	for _, args := range [][]string{{"-shards", "0"}, {"-shards", "7"}} {
		if _, _, err := arbench(t, append(append([]string{"plan"}, args...), fakeSweep(out)...)...); err == nil {
			t.Errorf("plan %v: no error", args)
		}
	}
	for _, args := range [][]string{{"-status", "-out", out, out}, {out}, {"-out", out}} {
		if _, _, err := arbench(t, append([]string{"merge"}, args...)...); exitCode(err) != exitUsage {
			t.Errorf("merge %v: err = %v, want a usage error", args, err)
		}
	}
}

// plan lists the runs as a table and as JSON, with the ids and shards the
// shards' runs then record, each in its own directory.
func TestPlanListsTheRunsOfEachShard(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	table, _, err := arbench(t, append([]string{"plan", "-shards", "3"}, fakeSweep(out)...)...)
	if err != nil {
		t.Fatal(err)
	}
	js, _, err := arbench(t, append([]string{"plan", "-shards", "3", "-json"}, fakeSweep(out)...)...)
	if err != nil {
		t.Fatal(err)
	}
	var doc planJSON
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if doc.Experiment != "cli" || doc.Shards != 3 || len(doc.Runs) != 6 {
		t.Fatalf("plan -json: %+v", doc)
	}
	if !strings.HasPrefix(table, "experiment cli: 6 run(s) in 3 shard(s)\nrun id ") {
		t.Errorf("plan table:\n%s", table)
	}
	for i := 0; i < 3; i++ {
		if _, stderr, err := arbench(t, append([]string{"run", "-quiet", "-shard", fmt.Sprintf("%d/3", i)}, fakeSweep(out)...)...); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, stderr)
		}
	}
	for _, r := range doc.Runs {
		line := fmt.Sprintf("%s  %d/3    %s  %s", r.RunID, r.Shard, r.Task, r.Model)
		if !strings.Contains(table, line) {
			t.Errorf("plan table lacks %q:\n%s", line, table)
		}
		rf, err := harness.LoadResults(r.Dir)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, run := range rf.Runs {
			found = found || run.RunID == r.RunID && run.Key() == harness.RunKey{Task: r.Task, Model: r.Model, Seed: r.Seed}
		}
		if !found || r.Dir != harness.ShardDir(out, harness.Shard{Index: r.Shard, Count: 3}) {
			t.Errorf("run %+v is not in its shard's results", r)
		}
	}
}

// textSweep is a real 6-run experiment: rnn and lstm on a small corpus
// with three seeds, a few training steps each.
func textSweep(t *testing.T, data, out string) string {
	t.Helper()
	cfg := fmt.Sprintf(`name: sweep
seeds: [1, 2, 3]
out: %s
train: {steps: 6, batch: 4, lr: 0.01, eval_every: 3}
tasks:
  - name: text
    data: %s
    config: {seq_len: 16, eval_stride: 8, eval_batch: 16, valid_tokens: 256}
models:
  - name: rnn
    config: {embed: 8, hidden: 16}
  - name: lstm
    config: {embed: 8, hidden: 16}
`, out, data)
	path := filepath.Join(t.TempDir(), "sweep.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The acceptance test of sharding: a 6-run experiment of real models run
// as 3 shards and merged equals the same experiment run on one machine,
// metric for metric (exactly: gorgonia on the CPU is deterministic; time
// and speed metrics aside); merge -status follows the sweep, an
// incomplete merge exits 1 naming what is missing, and report, compare
// and reproduce work on the merged directory.
func TestShardedRunMergesToTheSingleRun(t *testing.T) {
	data := corpus(t, 6000)
	single := filepath.Join(t.TempDir(), "single")
	if _, stderr, err := arbench(t, "run", "-config", textSweep(t, data, single), "-quiet"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	out := filepath.Join(t.TempDir(), "sweep")
	cfg := textSweep(t, data, out)
	shards := []string{filepath.Join(out, "shards", "0-of-3"), filepath.Join(out, "shards", "1-of-3"), filepath.Join(out, "shards", "2-of-3")}
	for i := 0; i < 2; i++ {
		if _, stderr, err := arbench(t, "run", "-config", cfg, "-shard", fmt.Sprintf("%d/3", i), "-quiet"); err != nil {
			t.Fatalf("shard %d: %v\n%s", i, err, stderr)
		}
	}
	status, _, err := arbench(t, "merge", "-status", shards[0], shards[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"experiment sweep: 4 of 6 run(s) done (0 diverged), 0 failed, 2 missing", "0/3    complete    2     2", "2/3    no results  2     0     0       2        -", " missing "} {
		if !strings.Contains(status, s) {
			t.Errorf("merge -status lacks %q:\n%s", s, status)
		}
	}
	if _, _, err := arbench(t, "merge", "-out", out, shards[0], shards[1]); err == nil || !strings.Contains(err.Error(), "is incomplete: 0 of 6 run(s) failed and 2 missing") {
		t.Errorf("incomplete merge: err = %v", err)
	}
	if _, stderr, err := arbench(t, "run", "-config", cfg, "-shard", "2/3", "-quiet"); err != nil {
		t.Fatalf("shard 2: %v\n%s", err, stderr)
	}
	merged, stderr, err := arbench(t, "merge", "-out", out, shards[2], shards[0], shards[1])
	if err != nil || !strings.Contains(merged, "6 of 6 run(s) done") || !strings.Contains(stderr, "merged 6 run(s) of sweep into "+out) {
		t.Fatalf("merge: %v\n%s\n%s", err, merged, stderr)
	}
	sameMetrics(t, single, out)
	sameBytes(t, filepath.Join(single, harness.SamplesFileName), filepath.Join(out, harness.SamplesFileName))

	if table, _, err := arbench(t, "report", out); err != nil || !strings.Contains(table, "text/corpus") {
		t.Errorf("report on the merged directory: %v\n%s", err, table)
	}
	if _, err := os.Stat(filepath.Join(out, "report.html")); err != nil {
		t.Error(err)
	}
	if cmp, _, err := arbench(t, "compare", single, out); err != nil || !strings.Contains(cmp, "bits_per_byte") {
		t.Errorf("compare: %v\n%s", err, cmp)
	}
	if rep, stderr, err := arbench(t, "reproduce", "-quiet", out); err != nil || !strings.Contains(rep, "all agree") {
		t.Errorf("reproduce of the merged directory: %v\n%s\n%s", err, rep, stderr)
	}
}

// sameMetrics fails unless the results of dirs a and b hold the same
// metrics, with equal values except for time and speed metrics, and the
// same loss curves.
func sameMetrics(t *testing.T, a, b string) {
	t.Helper()
	ra, err := harness.LoadResults(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := harness.LoadResults(b)
	if err != nil {
		t.Fatal(err)
	}
	key := func(r harness.Result) string {
		p, _ := json.Marshal(r.Params)
		return fmt.Sprint(r.Task, r.Model, r.Seed, r.Metric, r.Split, string(p))
	}
	values := map[string]harness.Result{}
	for _, r := range rb.Results {
		values[key(r)] = r
	}
	if len(ra.Results) != len(rb.Results) || len(ra.Results) < 30 {
		t.Fatalf("%d and %d results", len(ra.Results), len(rb.Results))
	}
	compared := 0
	for _, r := range ra.Results {
		m, ok := values[key(r)]
		switch {
		case !ok:
			t.Errorf("%s is missing from the merge", key(r))
		case harness.IsTimingUnit(r.Unit):
		case math.Float64bits(float64(m.Value)) != math.Float64bits(float64(r.Value)):
			t.Errorf("%s: single run %v, merged %v", key(r), r.Value, m.Value)
		default:
			compared++
		}
	}
	if compared < 30 {
		t.Errorf("only %d metrics compared", compared)
	}
	if len(ra.Curves) != len(rb.Curves) || fmt.Sprint(ra.Curves) != fmt.Sprint(rb.Curves) {
		t.Error("loss curves differ")
	}
}

func sameBytes(t *testing.T, a, b string) {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(x) != string(y) {
		t.Errorf("%s and %s differ", a, b)
	}
}
