package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Shard is one of Count parts of an experiment's runs (Index is 0-based).
// In a manifest it is recorded as "shard": {"index": I, "count": N}.
//
// Assignment: the experiment's run ids (RunID) are sorted, and the k-th id
// of that order (k = 0, 1, ...) belongs to shard k mod Count. Every run is
// in exactly one shard, shard sizes differ by at most one, and the
// assignment depends only on the experiment's set of runs, so every process
// on every machine computes the same. Within a shard, runs keep the
// experiment's order (task, seed, model), and the runner prepares a task
// once per (task, seed) that the shard's runs use: spreading runs evenly
// means a task may be prepared by several shards (each on its own node, as
// it would have to be anyway), in exchange for balanced shards whatever
// the experiment's shape.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// MaxShards bounds a shard count (far beyond any sweep).
const MaxShards = 1 << 20

// ParseShard parses the value of -shard: "I/N", decimal integers with
// 1 <= N <= MaxShards and 0 <= I < N.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%q is not I/N (shard I of N, 0-based: 0/3, 1/3, 2/3)", s)
	}
	i, err := shardNumber(is)
	if err != nil {
		return Shard{}, fmt.Errorf("%q: shard index %w", s, err)
	}
	n, err := shardNumber(ns)
	if err != nil {
		return Shard{}, fmt.Errorf("%q: shard count %w", s, err)
	}
	sh := Shard{Index: i, Count: n}
	if err := sh.Check(); err != nil {
		return Shard{}, fmt.Errorf("%q: %w", s, err)
	}
	return sh, nil
}

// shardNumber parses a non-negative decimal integer of at most 7 digits
// (no sign, no spaces).
func shardNumber(s string) (int, error) {
	if s == "" || len(s) > 7 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	return strconv.Atoi(s)
}

// Check reports a shard outside 1 <= Count <= MaxShards, 0 <= Index < Count.
func (s Shard) Check() error {
	switch {
	case s.Count < 1 || s.Count > MaxShards:
		return fmt.Errorf("shard count must be in 1..%d, got %d", MaxShards, s.Count)
	case s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("shard index must be in 0..%d (0-based, below the count %d), got %d", s.Count-1, s.Count, s.Index)
	}
	return nil
}

// ShardDir is the results directory of one shard of an experiment whose
// output directory is out: OUT/shards/I-of-N.
func ShardDir(out string, s Shard) string {
	return filepath.Join(out, "shards", fmt.Sprintf("%d-of-%d", s.Index, s.Count))
}

// AssignShards returns the shard (0..count-1) of each id (see Shard).
// The ids must be distinct.
func AssignShards(ids []string, count int) map[string]int {
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	out := make(map[string]int, len(ids))
	for k, id := range sorted {
		out[id] = k % count
	}
	return out
}

// PlannedRun is one run of an experiment's plan.
type PlannedRun struct {
	ID  string
	Key RunKey
	// Shard is the run's shard among the count PlanRuns was given.
	Shard int
	// Config is the resolved configuration (RunRecord.Config).
	Config json.RawMessage
}

// PlanRuns lists the runs of e in execution order (task, seed, model) with
// their ids and the shard each belongs to among shards (1: all in shard
// 0). It checks e first (as Run does, without preparing tasks), and
// refuses more shards than runs.
func PlanRuns(ctx context.Context, e *Experiment, shards int) ([]PlannedRun, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	plan, err := makePlan(e, "")
	if err != nil {
		return nil, err
	}
	if err := checkShardCount(shards, len(plan)); err != nil {
		return nil, fmt.Errorf("-shards %d: %w", shards, err)
	}
	return plannedRuns(plan, shards), nil
}

// checkShardCount refuses a shard count outside 1..MaxShards or above the
// number of runs (which would leave shards without work).
func checkShardCount(count, runs int) error {
	if count < 1 || count > MaxShards {
		return fmt.Errorf("shard count must be in 1..%d, got %d", MaxShards, count)
	}
	if count > runs {
		return fmt.Errorf("%d shards for %d run(s) would leave shards without work; use at most %d", count, runs, runs)
	}
	return nil
}

// plannedRuns describes plan with each run's shard among count.
func plannedRuns(plan []combo, count int) []PlannedRun {
	ids := make([]string, len(plan))
	for i, c := range plan {
		ids[i] = c.id
	}
	shard := AssignShards(ids, count)
	out := make([]PlannedRun, len(plan))
	for i, c := range plan {
		out[i] = PlannedRun{ID: c.id, Key: c.key, Shard: shard[c.id], Config: c.config}
	}
	return out
}

// selectShard keeps the combinations of plan that belong to shard s, in
// plan order. More shards than runs (which would leave shards empty) is an
// error.
func selectShard(plan []combo, s Shard) ([]combo, error) {
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("-shard %s: %w", s, err)
	}
	if err := checkShardCount(s.Count, len(plan)); err != nil {
		return nil, fmt.Errorf("-shard %s: %w", s, err)
	}
	ids := make([]string, len(plan))
	for i, c := range plan {
		ids[i] = c.id
	}
	shard := AssignShards(ids, s.Count)
	var keep []combo
	for _, c := range plan {
		if shard[c.id] == s.Index {
			keep = append(keep, c)
		}
	}
	return keep, nil
}
