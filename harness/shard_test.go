package harness_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sweep is a fixed 12-run experiment (3 models × 4 seeds) whose run ids
// are pinned by testdata/shard_plan.golden.
func sweep(t *testing.T) *harness.Experiment {
	t.Helper()
	out := filepath.ToSlash(filepath.Join(t.TempDir(), "sweep"))
	e, err := parse(t, `name: sweep
backend: fake
out: `+out+`
seeds: [1, 2, 3, 4]
train: {steps: 3, batch: 4, lr: 0.05, eval_every: 0, log_every: 1}
tasks:
  - name: fake/count
    config: {seq_len: 6, length: 300}
models:
  - name: fake-lm
    config: {dropout: 0.1}
  - name: fake-uniform
  - name: fake-lm
    label: lm2
    config: {init: 0.5}
`)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want harness.Shard
	}{{"0/1", harness.Shard{0, 1}}, {"2/3", harness.Shard{2, 3}}, {"09/10", harness.Shard{9, 10}}} {
		got, err := harness.ParseShard(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "is not I/N"},
		{"3", "is not I/N"},
		{"3/3", "shard index must be in 0..2"},
		{"0/0", "shard count must be in 1..1048576, got 0"},
		{"-1/3", `shard index "-1" is not a non-negative integer`},
		{"+1/3", `shard index "+1" is not a non-negative integer`},
		{"1/ 3", `shard count " 3" is not a non-negative integer`},
		{"1/3/4", `shard count "3/4" is not a non-negative integer`},
		{"0/99999999", `shard count "99999999" is not a non-negative integer`},
		{"0/2000000", "shard count must be in 1..1048576, got 2000000"},
		{"a/b", `shard index "a"`},
	} {
		_, err := harness.ParseShard(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseShard(%q): err = %v; want it to contain %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseShard: ParseShard never panics, and what it accepts is a valid
// shard that prints back as its canonical input.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/1", "2/3", "09/10", "3/3", "-1/2", "1048575/1048576", "x", "/", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := harness.ParseShard(s)
		if err != nil {
			if err.Error() == "" || sh != (harness.Shard{}) {
				t.Fatalf("ParseShard(%q) = %v with error %q", s, sh, err)
			}
			return
		}
		if sh.Check() != nil || sh.Index < 0 || sh.Index >= sh.Count {
			t.Fatalf("ParseShard(%q) accepted the invalid %v", s, sh)
		}
		again, err := harness.ParseShard(sh.String())
		if err != nil || again != sh {
			t.Fatalf("%v does not round-trip: %v, %v", sh, again, err)
		}
	})
}

// Every run is in exactly one shard, shard sizes differ by at most one,
// and the assignment does not depend on the order the ids come in.
func TestShardAssignmentIsABalancedPartition(t *testing.T) {
	plan, err := harness.PlanRuns(context.Background(), sweep(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range plan {
		ids = append(ids, r.ID)
	}
	for n := 1; n <= 10; n++ {
		checkPartition(t, ids, n)
		for size := 0; size <= 25; size++ {
			checkPartition(t, fakeIDs(size), n)
		}
	}
}

func fakeIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	return out
}

func checkPartition(t *testing.T, ids []string, n int) {
	t.Helper()
	got := harness.AssignShards(ids, n)
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	again := harness.AssignShards(reversed, n)
	sizes := make([]int, n)
	for _, id := range ids {
		s, ok := got[id]
		if !ok || s < 0 || s >= n {
			t.Fatalf("N=%d: %s assigned to %d (present %v)", n, id, s, ok)
		}
		if again[id] != s {
			t.Fatalf("N=%d: %s is in shard %d, or %d when the ids come in another order", n, id, s, again[id])
		}
		sizes[s]++
	}
	if len(got) != len(ids) {
		t.Fatalf("N=%d: %d assignments for %d ids", n, len(got), len(ids))
	}
	if len(ids) > 0 && slices.Max(sizes)-slices.Min(sizes) > 1 {
		t.Errorf("N=%d, %d runs: unbalanced shard sizes %v", n, len(ids), sizes)
	}
}

// The run ids and shards of a fixed experiment are the same in every
// process and on every machine: they are pinned by a golden file
// (go test ./harness -run ShardPlanGolden -update rewrites it).
func TestShardPlanGolden(t *testing.T) {
	e := sweep(t)
	var b strings.Builder
	one, err := harness.PlanRuns(context.Background(), e, 1)
	if err != nil {
		t.Fatal(err)
	}
	shards := map[int][]harness.PlannedRun{}
	for _, n := range []int{3, 5} {
		if shards[n], err = harness.PlanRuns(context.Background(), e, n); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintln(&b, "# run id, task, model, seed, shard of 3, shard of 5")
	for i, r := range one {
		if r.Shard != 0 {
			t.Errorf("%s: shard %d of 1", r.Key, r.Shard)
		}
		fmt.Fprintf(&b, "%s %s %s %d %d %d\n", r.ID, r.Key.Task, r.Key.Model, r.Key.Seed, shards[3][i].Shard, shards[5][i].Shard)
	}
	golden(t, "shard_plan.golden", b.String())
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./harness -run %s -update creates it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test ./harness -run %s -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", path, t.Name(), got, want)
	}
}

// -shard I/N runs exactly the plan's runs of shard I, into
// OUT/shards/I-of-N, whose manifest records the shard and the experiment
// as a whole run records it; -resume works per shard and refuses another
// shard's directory.
func TestRunShard(t *testing.T) {
	e := sweep(t)
	plan, err := harness.PlanRuns(context.Background(), e, 5)
	if err != nil {
		t.Fatal(err)
	}
	sh := harness.Shard{Index: 3, Count: 5}
	opt := runOpts()
	opt.Shard = &sh
	rf, err := harness.Run(context.Background(), e, opt)
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.ShardDir(e.Out, sh)
	stored, err := harness.LoadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, r := range plan {
		if r.Shard == 3 {
			want = append(want, r.ID+" "+r.Key.String())
		}
	}
	for _, r := range stored.Runs {
		got = append(got, r.RunID+" "+r.Key().String())
	}
	if !slices.Equal(got, want) || len(rf.Runs) != len(want) {
		t.Errorf("shard 3/5 ran\n%v\nwant\n%v", got, want)
	}
	m := stored.Manifest
	if m.Shard == nil || *m.Shard != sh || !m.Complete {
		t.Errorf("manifest shard %v, complete %v", m.Shard, m.Complete)
	}
	var cfg struct{ Out string }
	if err := json.Unmarshal(m.Config, &cfg); err != nil || cfg.Out != e.Out {
		t.Errorf("manifest config records out %q (%v), want the experiment's %s", cfg.Out, err, e.Out)
	}
	if _, err := os.Stat(filepath.Join(e.Out, harness.ResultsFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a shard wrote the experiment's own results: %v", err)
	}

	opt.Resume = true
	if _, err := harness.Run(context.Background(), e, opt); err != nil {
		t.Fatalf("resume of a finished shard: %v", err)
	}
	other := harness.Shard{Index: 4, Count: 5}
	if err := os.Rename(dir, harness.ShardDir(e.Out, other)); err != nil {
		t.Fatal(err)
	}
	opt.Shard = &other
	_, err = harness.Run(context.Background(), e, opt)
	if err == nil || !strings.Contains(err.Error(), "it holds the results of shard 3/5, not of shard 4/5") {
		t.Errorf("resume in another shard's directory: err = %v", err)
	}
}

// More shards than runs is refused before any work.
func TestRunShardCountAboveRuns(t *testing.T) {
	e := sweep(t)
	sh := harness.Shard{Index: 0, Count: 13}
	opt := runOpts()
	opt.Shard = &sh
	_, err := harness.Run(context.Background(), e, opt)
	if err == nil || !strings.Contains(err.Error(), "-shard 0/13: 13 shards for 12 run(s) would leave shards without work; use at most 12") {
		t.Errorf("err = %v", err)
	}
	noOutput(t, e.Out)
	if _, err := harness.PlanRuns(context.Background(), e, 13); err == nil || !strings.Contains(err.Error(), "-shards 13: 13 shards for 12 run(s)") {
		t.Errorf("PlanRuns: err = %v", err)
	}
}
