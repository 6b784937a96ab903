package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// MergeOptions configure Merge.
type MergeOptions struct {
	// Out is the directory the merged results are written to. Empty only
	// reads the directories and reports the progress (arbench merge
	// -status); then a directory being written is reported as running
	// instead of refused.
	Out string
	// Overwrite replaces results in Out that are not an earlier merge's
	// (those of an earlier merge are always replaced).
	Overwrite bool
	// Report and Finish are called as Run calls them (report.md after the
	// results are written; Finish once, while Out is locked).
	Report func(w io.Writer, rf *ResultsFile) error
	Finish func(dir string, rf *ResultsFile) error
	// CommandLine is recorded in the merged manifest; nil records os.Args.
	CommandLine []string
}

// MergedSource is one directory a merge read, as the merged manifest
// records it (Manifest.MergedFrom).
type MergedSource struct {
	Dir string `json:"dir"`
	// Shard is the directory's shard; nil for the results of a whole
	// experiment.
	Shard *Shard `json:"shard,omitempty"`
	// Runs is the number of runs it holds, Complete its manifest's.
	Runs     int       `json:"runs"`
	Complete bool      `json:"complete"`
	GitSHA   string    `json:"git_sha"`
	GitDirty bool      `json:"git_dirty"`
	CPU      string    `json:"cpu"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
}

// Run statuses in a merge.
const (
	RunDone     = "done"
	RunDiverged = "diverged"
	RunFailed   = "failed"
	RunMissing  = "missing"
)

// MergedRun is one planned run and what the merge found of it.
type MergedRun struct {
	PlannedRun
	// Status is RunDone or RunDiverged (its results are merged), RunFailed
	// (a directory's manifest lists it as failed and none holds its
	// results) or RunMissing (no directory holds or lists it).
	Status string
	// Dir is the directory its results come from, or that recorded its
	// failure.
	Dir string
	// Error is the failure a directory recorded.
	Error string
}

// ShardProgress is the state of one shard of a sweep. Its runs are those
// its Shard is assigned (all of them for Shard 0/1, the results of a whole
// experiment), counted wherever their results were found.
type ShardProgress struct {
	Shard Shard
	// Dirs are the directories read for this shard (none: not given, or no
	// results yet).
	Dirs []string
	// Running names the holder of a directory's lock (a run still writing
	// there), or is "".
	Running string
	// Runs is the number of runs assigned to the shard; Done, Failed and
	// Missing count them by status (Done includes diverged runs).
	Runs, Done, Failed, Missing int
}

// Merged is what Merge found and wrote.
type Merged struct {
	// Name is the experiment's name; Dir the directory written ("" for
	// -status).
	Name, Dir string
	// Runs are the experiment's planned runs in execution order; their
	// Shard is among ShardCount.
	Runs []MergedRun
	// ShardCount is the shard count of the directories read (1 when none
	// is a shard, or when their counts differ).
	ShardCount int
	// Shards is the progress per shard, by count then index.
	Shards []ShardProgress
	// Duplicates counts the runs found in several directories (identical
	// but for timing metrics; the first directory's copy is kept).
	Duplicates int
	// Warnings are differences that do not stop a merge (shards run from
	// different commits, directories without results yet).
	Warnings []string
	// Results is the merged results file; nil when no run finished.
	Results *ResultsFile
}

// Count returns the number of runs with the given status.
func (m *Merged) Count(status string) int {
	n := 0
	for _, r := range m.Runs {
		if r.Status == status {
			n++
		}
	}
	return n
}

// Complete reports whether every planned run is done or diverged.
func (m *Merged) Complete() bool {
	return m.Count(RunDone)+m.Count(RunDiverged) == len(m.Runs)
}

// MergeError lists every reason a merge was refused, each naming the
// directory and what differs.
type MergeError struct {
	Problems []string
	// errs are the errors behind problems that have one (a directory in
	// use: errors.Is(err, ErrOutputInUse)).
	errs []error
}

func (e *MergeError) Error() string {
	return "merge refused:\n  " + strings.Join(e.Problems, "\n  ")
}

// Unwrap returns the errors behind the problems.
func (e *MergeError) Unwrap() []error { return e.errs }

// Merge combines the results directories dirs (usually the shards of one
// experiment, `arbench run -shard I/N`; any results directories of the
// experiment will do) into one ordinary results directory opt.Out. It
// refuses, naming the directory and what differs, directories of another
// experiment (name, or resolved configuration other than out), another
// arbench version (each must be this one's) or other data (a dataset with
// another checksum); runs that are not part of the experiment, or not of
// their directory's shard; and a run found twice with different metrics
// (timing metrics aside). A run found twice with the same metrics is kept
// once. So is an lr sweep found in several directories (each shard runs
// the sweeps its runs need) with the same trials; copies with different
// ones (sweepDiff), and a sweep that is not the experiment's, are refused.
// The merged results list the runs in the experiment's order, as one
// run of the whole experiment would, the failed runs in Manifest.Failed,
// the directories in Manifest.MergedFrom, and are Complete when every
// planned run is present. Out is written atomically (samples.jsonl, then
// results.json, then the report) while its lock is held; each directory
// read is locked while it is read, so one being written by a run is
// refused (reported as running with an empty opt.Out).
func Merge(ctx context.Context, dirs []string, opt MergeOptions) (*Merged, error) {
	if len(dirs) == 0 {
		return nil, errors.New("merge: no results directories given")
	}
	srcs, err := readSources(dirs, opt.Out == "")
	if err != nil {
		return nil, err
	}
	ref := firstWithResults(srcs)
	if ref == nil {
		return nil, fmt.Errorf("merge: none of %s holds results yet (%s)", strings.Join(dirs, ", "), ResultsFileName)
	}
	if err := checkSources(srcs, ref); err != nil {
		return nil, err
	}
	plan, err := sourcePlan(ref)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, entries, err := collectRuns(srcs, plan)
	if err != nil {
		return nil, err
	}
	sweeps, err := collectSweeps(srcs, ref)
	if err != nil {
		return nil, err
	}
	m.Name = ref.rf.Manifest.Name
	m.Shards = shardProgress(srcs, m.Runs)
	m.Warnings = append(sourceWarnings(srcs, ref), m.Warnings...)
	if len(entries) > 0 {
		m.Results = mergedResults(srcs, ref, m, entries, opt.CommandLine)
		m.Results.LRSweeps = sweeps
	}
	if opt.Out == "" {
		return m, nil
	}
	if m.Results == nil {
		return m, fmt.Errorf("merge: nothing to write to %s: no run of %s has finished", opt.Out, m.Name)
	}
	return m, writeMerged(opt, srcs, m, mergedSamples(m, entries))
}

// source is one directory given to Merge.
type source struct {
	dir string
	// shard is the manifest's, or inferred from a name ShardDir gives when
	// the directory holds no results yet.
	shard *Shard
	rf    *ResultsFile
	// samples holds the raw samples.jsonl lines of each recorded run.
	samples map[RunKey][][]byte
	// running names the holder of the directory's lock.
	running string
}

// readSources reads every directory. A directory being written is
// refused, or with status set reported as running (and read as it is).
func readSources(dirs []string, status bool) ([]*source, error) {
	var srcs []*source
	me := &MergeError{}
	for _, dir := range dirs {
		s, err := readSource(dir, status)
		if err != nil {
			me.Problems, me.errs = append(me.Problems, err.Error()), append(me.errs, err)
			continue
		}
		srcs = append(srcs, s)
	}
	if len(me.Problems) > 0 {
		return nil, me
	}
	return srcs, nil
}

// readSource reads one directory's results and samples under its lock.
func readSource(dir string, status bool) (*source, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory (give the results directories)", dir)
	}
	s := &source{dir: dir}
	release, err := LockOutput(dir)
	switch {
	case errors.Is(err, ErrOutputInUse) && status:
		s.running = lockHolder(dir)
	case errors.Is(err, ErrOutputInUse):
		return nil, fmt.Errorf("%s: %w", dir, err)
	case err == nil:
		defer release()
	}
	// Any other lock failure (a read-only directory) leaves the directory
	// to be read unlocked: no run can be writing where it cannot lock.
	rf, err := LoadResults(dir)
	if errors.Is(err, os.ErrNotExist) {
		s.shard = shardOfDir(dir)
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	s.rf, s.shard = rf, rf.Manifest.Shard
	if s.samples, err = loadRunSamples(dir, rf); err != nil {
		return nil, err
	}
	return s, nil
}

// lockHolder describes who holds dir's lock.
func lockHolder(dir string) string {
	f, err := os.Open(filepath.Join(dir, LockFileName))
	if err != nil {
		return "another process"
	}
	defer f.Close()
	return readHolder(f)
}

// shardOfDir returns the shard a directory named as ShardDir names it
// stands for, or nil.
func shardOfDir(dir string) *Shard {
	var s Shard
	base := filepath.Base(dir)
	if n, err := fmt.Sscanf(base, "%d-of-%d", &s.Index, &s.Count); err != nil || n != 2 ||
		s.Check() != nil || fmt.Sprintf("%d-of-%d", s.Index, s.Count) != base {
		return nil
	}
	return &s
}

// loadRunSamples reads dir's samples.jsonl (checked as ParseSamples does)
// as raw lines per run, keeping only those of recorded runs (a killed run
// leaves lines of a run it did not record).
func loadRunSamples(dir string, rf *ResultsFile) (map[RunKey][][]byte, error) {
	path := filepath.Join(dir, SamplesFileName)
	b, err := readBounded(path, "samples")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	recorded := map[RunKey]bool{}
	for _, r := range rf.Runs {
		recorded[r.Key()] = true
	}
	out := map[RunKey][][]byte{}
	for n := 1; len(b) > 0; n++ {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := parseSampleLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if recorded[rec.Run] {
			out[rec.Run] = append(out[rec.Run], line)
		}
	}
	return out, nil
}

func firstWithResults(srcs []*source) *source {
	for _, s := range srcs {
		if s.rf != nil {
			return s
		}
	}
	return nil
}

// checkSources refuses directories of another experiment, arbench version
// or data than ref's, naming each and what differs.
func checkSources(srcs []*source, ref *source) error {
	var problems []string
	if v := ref.rf.Manifest.Version; v != Version {
		problems = append(problems, fmt.Sprintf("%s: written by arbench %s; this is arbench %s (merge with the version that ran the shards)", ref.dir, v, Version))
	}
	datasets := map[string]DatasetRef{}
	where := map[string]string{}
	for _, s := range srcs {
		if s.rf == nil {
			continue
		}
		if s != ref {
			problems = append(problems, sameExperiment(s, ref)...)
		}
		for _, d := range s.rf.Manifest.Datasets {
			if have, ok := datasets[d.Name]; ok && have.SHA256 != d.SHA256 {
				problems = append(problems, fmt.Sprintf("%s: dataset %q has sha256 %s, in %s %s: the shards read different data", s.dir, d.Name, d.SHA256, where[d.Name], have.SHA256))
			} else if !ok {
				datasets[d.Name], where[d.Name] = d, s.dir
			}
		}
	}
	if len(problems) > 0 {
		return &MergeError{Problems: problems}
	}
	return nil
}

// sameExperiment compares s's manifest with ref's: name, arbench version
// and resolved configuration (but for out, which only says where).
func sameExperiment(s, ref *source) []string {
	a, b := s.rf.Manifest, ref.rf.Manifest
	var problems []string
	if a.Name != b.Name {
		problems = append(problems, fmt.Sprintf("%s: experiment %q, but %s holds experiment %q", s.dir, a.Name, ref.dir, b.Name))
	}
	if a.Version != b.Version {
		problems = append(problems, fmt.Sprintf("%s: arbench version %s, but %s was written by %s", s.dir, a.Version, ref.dir, b.Version))
	}
	diff, err := configDiff(withoutOut(b.Config), withoutOut(a.Config))
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("%s: manifest.config: %v", s.dir, err))
	case diff != "":
		diff = strings.Replace(strings.Replace(diff, ": stored ", ": "+ref.dir+" has ", 1), ", now ", ", this one ", 1)
		problems = append(problems, fmt.Sprintf("%s: the experiment's configuration differs from %s's (%s)", s.dir, ref.dir, diff))
	}
	return problems
}

// withoutOut returns a resolved experiment without its "out" field (the
// configuration unchanged when it is not an object).
func withoutOut(config json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(config, &m) != nil || m == nil {
		return config
	}
	delete(m, "out")
	b, err := json.Marshal(m)
	if err != nil {
		return config
	}
	return b
}

// storedExperiment is the part of a manifest's resolved experiment that
// makes its plan; tasks and models stay as they were written.
type storedExperiment struct {
	Seeds   []uint64          `json:"seeds"`
	Backend string            `json:"backend"`
	Device  string            `json:"device"`
	Tasks   []json.RawMessage `json:"tasks"`
	Models  []json.RawMessage `json:"models"`
}

// sourcePlan lists the runs of the experiment ref's manifest records, as
// makePlan does (task, seed, model; ids from the same resolved
// configurations), from the JSON alone: no plugin, task or data is needed.
func sourcePlan(ref *source) ([]combo, error) {
	name := filepath.Join(ref.dir, ResultsFileName) + ": manifest.config"
	var e storedExperiment
	if err := json.Unmarshal(ref.rf.Manifest.Config, &e); err != nil {
		return nil, fmt.Errorf("merge: %s: %w", name, err)
	}
	var plan []combo
	for ti, task := range e.Tasks {
		var t struct{ Name, Data string }
		if err := json.Unmarshal(task, &t); err != nil || t.Name == "" {
			return nil, fmt.Errorf("merge: %s: tasks[%d]: not a task entry", name, ti)
		}
		label := TaskSpec{Name: t.Name, Data: t.Data}.Label()
		for _, seed := range e.Seeds {
			for mi, model := range e.Models {
				c, err := storedCombo(e, task, model, label, seed)
				if err != nil {
					return nil, fmt.Errorf("merge: %s: models[%d]: %w", name, mi, err)
				}
				plan = append(plan, c)
			}
		}
	}
	return plan, nil
}

// storedCombo is one run of a stored experiment: its key, resolved
// configuration (as makePlan writes it, without weights) and id.
func storedCombo(e storedExperiment, task, model json.RawMessage, taskLabel string, seed uint64) (combo, error) {
	var m struct{ Label string }
	if err := json.Unmarshal(model, &m); err != nil || m.Label == "" {
		return combo{}, errors.New("not a model entry")
	}
	c := combo{seed: seed, key: RunKey{Task: taskLabel, Model: m.Label, Seed: seed}}
	cfg, err := json.Marshal(struct {
		Task    json.RawMessage `json:"task"`
		Model   json.RawMessage `json:"model"`
		Seed    uint64          `json:"seed"`
		Backend string          `json:"backend"`
		Device  string          `json:"device"`
	}{task, model, seed, e.Backend, e.Device})
	if err != nil {
		return combo{}, err
	}
	c.config = cfg
	if c.id, err = RunID(c.key, cfg); err != nil {
		return combo{}, err
	}
	return c, nil
}

// mergeEntry is a run's merged data: its record and everything belonging to it.
type mergeEntry struct {
	src     *source
	rec     RunRecord
	results []Result
	curves  []Curve
	series  []SeriesRecord
}

// collectRuns gathers every directory's runs by id, checking each against
// the plan and its shard and every duplicate against the first copy, and
// sets each planned run's status.
func collectRuns(srcs []*source, plan []combo) (*Merged, map[string]*mergeEntry, error) {
	byID := map[string]combo{}
	for _, c := range plan {
		byID[c.id] = c
	}
	entries := map[string]*mergeEntry{}
	m := &Merged{}
	var problems []string
	for _, s := range srcs {
		if s.rf != nil {
			problems = append(problems, m.addSource(s, plan, byID, entries)...)
		}
	}
	if len(problems) > 0 {
		return nil, nil, &MergeError{Problems: problems}
	}
	m.ShardCount = commonShardCount(srcs)
	m.Runs = runStatuses(srcs, plan, entries, m.ShardCount)
	return m, entries, nil
}

// addSource adds s's runs to entries, returning what is wrong with them.
func (m *Merged) addSource(s *source, plan []combo, byID map[string]combo, entries map[string]*mergeEntry) []string {
	var problems []string
	var assigned map[string]int
	if s.shard != nil {
		assigned = AssignShards(planIDs(plan), s.shard.Count)
	}
	data := groupByRun(s.rf)
	for i, rec := range s.rf.Runs {
		id, err := checkRun(s, i, rec, plan, byID, assigned)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		e := data[rec.Key()]
		e.src, e.rec = s, rec
		e.rec.RunID = id
		first, dup := entries[id]
		if !dup {
			entries[id] = e
			continue
		}
		m.Duplicates++
		if diff := runDiff(first, e); diff != "" {
			problems = append(problems, fmt.Sprintf("%s is in %s and %s with different results (%s); leave one of them out",
				rec.Key(), first.src.dir, s.dir, diff))
		}
	}
	return problems
}

func planIDs(plan []combo) []string {
	ids := make([]string, len(plan))
	for i, c := range plan {
		ids[i] = c.id
	}
	return ids
}

// checkRun returns the id of s's i-th run, checking that the stored id
// matches its configuration, that the run is one of the plan's, with the
// planned configuration, and that it belongs to s's shard.
func checkRun(s *source, i int, rec RunRecord, plan []combo, byID map[string]combo, assigned map[string]int) (string, error) {
	where := fmt.Sprintf("%s: runs[%d] (%s)", s.dir, i, rec.Key())
	if len(rec.Config) == 0 || string(rec.Config) == "null" {
		return "", fmt.Errorf("%s: no configuration recorded, so it cannot be matched to the experiment's runs", where)
	}
	id, err := RunID(rec.Key(), rec.Config)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where, err)
	}
	if rec.RunID != id {
		return "", fmt.Errorf("%s: run_id %s does not match its configuration (whose id is %s)", where, rec.RunID, id)
	}
	if _, ok := byID[id]; !ok {
		return "", fmt.Errorf("%s: not part of the experiment%s", where, planDiff(rec, plan))
	}
	if assigned != nil && assigned[id] != s.shard.Index {
		return "", fmt.Errorf("%s: belongs to shard %d/%d, but the directory holds shard %s", where, assigned[id], s.shard.Count, s.shard)
	}
	return id, nil
}

// planDiff says how rec differs from the plan's run of the same key.
func planDiff(rec RunRecord, plan []combo) string {
	for _, c := range plan {
		if c.key == rec.Key() {
			if diff, err := configDiff(rec.Config, c.config); err == nil && diff != "" {
				return fmt.Sprintf(": its configuration differs (%s)", diff)
			}
		}
	}
	return ""
}

// groupByRun returns the results, curves and series of rf by run.
func groupByRun(rf *ResultsFile) map[RunKey]*mergeEntry {
	out := map[RunKey]*mergeEntry{}
	get := func(k RunKey) *mergeEntry {
		if out[k] == nil {
			out[k] = &mergeEntry{}
		}
		return out[k]
	}
	for _, r := range rf.Runs {
		get(r.Key())
	}
	for _, r := range rf.Results {
		e := get(RunKey{r.Task, r.Model, r.Seed})
		e.results = append(e.results, r)
	}
	for _, c := range rf.Curves {
		e := get(RunKey{c.Task, c.Model, c.Seed})
		e.curves = append(e.curves, c)
	}
	for _, s := range rf.Series {
		e := get(RunKey{s.Task, s.Model, s.Seed})
		e.series = append(e.series, s)
	}
	return out
}

// runDiff describes the first difference between two copies of a run
// ("" when they agree): its note, the metrics it has, and every metric's
// value exactly, but for time and speed metrics (IsTimingUnit), which no
// rerun reproduces.
func runDiff(a, b *mergeEntry) string {
	if a.rec.Note != b.rec.Note {
		return fmt.Sprintf("note %q, then %q", a.rec.Note, b.rec.Note)
	}
	if a.rec.LR != b.rec.LR {
		return fmt.Sprintf("trained with lr %v, then %v", a.rec.LR, b.rec.LR)
	}
	av, bv := metricsByID(a.results), metricsByID(b.results)
	for _, id := range sortedKeys(keySet(av, bv)) {
		x, xok := av[id]
		y, yok := bv[id]
		switch {
		case !yok:
			return fmt.Sprintf("%s only in %s", id, a.src.dir)
		case !xok:
			return fmt.Sprintf("%s only in %s", id, b.src.dir)
		case IsTimingUnit(x.Unit):
		case !(Tolerance{}).Agree(float64(x.Value), float64(y.Value)):
			return fmt.Sprintf("%s %v, then %v", id, float64(x.Value), float64(y.Value))
		}
	}
	return ""
}

// metricsByID indexes results by metric, split and params.
func metricsByID(results []Result) map[string]Result {
	out := map[string]Result{}
	for _, r := range results {
		id := r.Metric
		if r.Split != "" {
			id += " (" + r.Split + ")"
		}
		if p := canonical(r.Params); p != "" {
			id += " " + p
		}
		out[id] = r
	}
	return out
}

func keySet[V any](ms ...map[string]V) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			out[k] = true
		}
	}
	return out
}

// runStatuses sets the status of every planned run: done or diverged when
// merged, failed when a directory lists it as failed, else missing.
func runStatuses(srcs []*source, plan []combo, entries map[string]*mergeEntry, shards int) []MergedRun {
	failed := map[string]FailedRun{}
	failedIn := map[string]string{}
	for _, s := range srcs {
		if s.rf == nil {
			continue
		}
		for _, f := range s.rf.Manifest.Failed {
			if _, seen := failed[f.RunID]; !seen {
				failed[f.RunID], failedIn[f.RunID] = f, s.dir
			}
		}
	}
	runs := make([]MergedRun, len(plan))
	for i, p := range plannedRuns(plan, shards) {
		r := MergedRun{PlannedRun: p, Status: RunMissing}
		if e, ok := entries[p.ID]; ok {
			r.Status, r.Dir = RunDone, e.src.dir
			if e.rec.Diverged() {
				r.Status = RunDiverged
			}
		} else if f, ok := failed[p.ID]; ok {
			r.Status, r.Dir, r.Error = RunFailed, failedIn[p.ID], f.Error
		}
		runs[i] = r
	}
	return runs
}

// shardProgress counts the runs of every shard the directories hold, and
// of the shards of the same counts that none holds; a directory with the
// results of a whole experiment counts as shard 0/1.
func shardProgress(srcs []*source, runs []MergedRun) []ShardProgress {
	byShard := map[Shard]*ShardProgress{}
	counts := map[int]bool{}
	for _, s := range srcs {
		sh := Shard{0, 1}
		if s.shard != nil {
			sh = *s.shard
		}
		if s.shard == nil && s.rf == nil {
			continue // neither results nor a shard's name: nothing to count
		}
		counts[sh.Count] = true
		p := byShard[sh]
		if p == nil {
			p = &ShardProgress{Shard: sh}
			byShard[sh] = p
		}
		p.Dirs = append(p.Dirs, s.dir)
		if s.running != "" {
			p.Running = s.running
		}
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
	}
	var out []ShardProgress
	for _, n := range sortedInts(counts) {
		assigned := AssignShards(ids, n)
		for i := 0; i < n; i++ {
			p := byShard[Shard{i, n}]
			if p == nil {
				p = &ShardProgress{Shard: Shard{i, n}}
			}
			for _, r := range runs {
				if assigned[r.ID] == i {
					p.count(r.Status)
				}
			}
			out = append(out, *p)
		}
	}
	return out
}

// commonShardCount is the count of the shards among srcs when they agree
// on one, else 1.
func commonShardCount(srcs []*source) int {
	n := 0
	for _, s := range srcs {
		switch {
		case s.shard == nil:
		case n == 0:
			n = s.shard.Count
		case n != s.shard.Count:
			return 1
		}
	}
	return max(n, 1)
}

// Shard states (ShardProgress.State).
const (
	ShardComplete   = "complete"
	ShardRunning    = "running"
	ShardFailed     = "failed"
	ShardIncomplete = "incomplete"
	ShardNoResults  = "no results"
)

// State summarises the shard: running while a directory of it is being
// written, else complete, failed (some runs failed), incomplete (some
// missing) or no results (none of its runs found).
func (p ShardProgress) State() string {
	switch {
	case p.Running != "":
		return ShardRunning
	case p.Done == p.Runs:
		return ShardComplete
	case p.Failed > 0:
		return ShardFailed
	case p.Done == 0:
		return ShardNoResults
	}
	return ShardIncomplete
}

func (p *ShardProgress) count(status string) {
	p.Runs++
	switch status {
	case RunDone, RunDiverged:
		p.Done++
	case RunFailed:
		p.Failed++
	default:
		p.Missing++
	}
}

func sortedInts(set map[int]bool) []int {
	var out []int
	for n := range set {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// sourceWarnings notes what differs between directories without stopping
// the merge: the commit or Go version the runs were made with, and
// directories that hold no results yet.
func sourceWarnings(srcs []*source, ref *source) []string {
	var out []string
	for _, s := range srcs {
		switch {
		case s.rf == nil && s.running != "":
			out = append(out, fmt.Sprintf("%s: no results yet (being written by %s)", s.dir, s.running))
		case s.rf == nil:
			out = append(out, fmt.Sprintf("%s: no results (%s): not run yet, or no run of it finished", s.dir, ResultsFileName))
		case s.rf.Manifest.GitSHA != ref.rf.Manifest.GitSHA:
			out = append(out, fmt.Sprintf("%s: run from commit %s, %s from %s", s.dir, s.rf.Manifest.GitSHA, ref.dir, ref.rf.Manifest.GitSHA))
		case s.rf.Manifest.GoVersion != ref.rf.Manifest.GoVersion:
			out = append(out, fmt.Sprintf("%s: built with %s, %s with %s", s.dir, s.rf.Manifest.GoVersion, ref.dir, ref.rf.Manifest.GoVersion))
		}
	}
	return out
}

// mergedResults builds the merged results file: the runs in plan order,
// and a manifest that is ref's but for what the merge combines.
func mergedResults(srcs []*source, ref *source, m *Merged, entries map[string]*mergeEntry, cmdline []string) *ResultsFile {
	rf := &ResultsFile{Manifest: ref.rf.Manifest, Results: []Result{}, Curves: []Curve{}, Runs: []RunRecord{}}
	man := &rf.Manifest
	man.Shard, man.Resumed, man.Failed, man.Datasets = nil, false, nil, nil
	man.CommandLine = append([]string(nil), os.Args...)
	if cmdline != nil {
		man.CommandLine = append([]string(nil), cmdline...)
	}
	for _, s := range srcs {
		if s.rf == nil {
			continue
		}
		sm := s.rf.Manifest
		man.MergedFrom = append(man.MergedFrom, MergedSource{Dir: s.dir, Shard: sm.Shard, Runs: len(s.rf.Runs), Complete: sm.Complete,
			GitSHA: sm.GitSHA, GitDirty: sm.GitDirty, CPU: sm.CPU, Start: sm.Start, End: sm.End})
		man.Datasets = mergeDatasets(man.Datasets, sm.Datasets)
		man.Resumed = man.Resumed || sm.Resumed
		man.GitDirty = man.GitDirty || sm.GitDirty
		if sm.Start.Before(man.Start) {
			man.Start = sm.Start
		}
		if sm.End.After(man.End) {
			man.End = sm.End
		}
	}
	for _, r := range m.Runs {
		if e := entries[r.ID]; e != nil {
			rf.Runs = append(rf.Runs, e.rec)
			rf.Results = append(rf.Results, e.results...)
			rf.Curves = append(rf.Curves, e.curves...)
			rf.Series = append(rf.Series, e.series...)
		} else if r.Status == RunFailed {
			man.Failed = append(man.Failed, FailedRun{RunID: r.ID, Task: r.Key.Task, Model: r.Key.Model, Seed: r.Key.Seed, Error: r.Error})
		}
	}
	man.Complete = m.Complete()
	return rf
}

// mergedSamples returns the samples.jsonl of the merged runs, in plan
// order.
func mergedSamples(m *Merged, entries map[string]*mergeEntry) []byte {
	var buf bytes.Buffer
	for _, r := range m.Runs {
		if e := entries[r.ID]; e != nil {
			for _, line := range e.src.samples[r.Key] {
				buf.Write(line)
				buf.WriteByte('\n')
			}
		}
	}
	return buf.Bytes()
}

// writeMerged writes the merged results into opt.Out under its lock.
func writeMerged(opt MergeOptions, srcs []*source, m *Merged, samples []byte) error {
	for _, s := range srcs {
		if same, err := sameDir(opt.Out, s.dir); err != nil {
			return fmt.Errorf("merge: %w", err)
		} else if same {
			return fmt.Errorf("merge: the output directory %s is one of the directories merged; choose another -out", opt.Out)
		}
	}
	lock, err := lockOutput(opt.Out)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	wrote := false
	defer func() { lock.release(!wrote) }()
	if err := removeStaleTemps(opt.Out); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := checkMergeOutput(opt); err != nil {
		return err
	}
	wrote = true
	if err := WriteFileAtomic(filepath.Join(opt.Out, SamplesFileName), func(w io.Writer) error {
		_, err := w.Write(samples)
		return err
	}); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := m.Results.Write(filepath.Join(opt.Out, ResultsFileName)); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	m.Dir = opt.Out
	return finishMerged(opt, m.Results)
}

// checkMergeOutput refuses an output directory holding results that are
// not an earlier merge's, unless opt.Overwrite is set.
func checkMergeOutput(opt MergeOptions) error {
	path := filepath.Join(opt.Out, ResultsFileName)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) || opt.Overwrite {
		return nil
	}
	old, err := LoadResults(path)
	if err != nil {
		return fmt.Errorf("merge: %s holds a results file that does not load (%v); use -overwrite to replace it, or choose another -out", opt.Out, err)
	}
	if len(old.Manifest.MergedFrom) == 0 {
		return fmt.Errorf("merge: %s already holds the results of a run (%s), not of a merge; use -overwrite to replace them, or choose another -out", opt.Out, path)
	}
	return nil
}

// finishMerged writes report.md and calls opt.Finish, as a run does.
func finishMerged(opt MergeOptions, rf *ResultsFile) error {
	var errs []error
	if opt.Report != nil {
		if err := WriteFileAtomic(filepath.Join(opt.Out, ReportFileName), func(w io.Writer) error {
			return opt.Report(w, rf)
		}); err != nil {
			errs = append(errs, fmt.Errorf("merge: report: %w", err))
		}
	}
	if opt.Finish != nil {
		if err := opt.Finish(opt.Out, rf); err != nil {
			errs = append(errs, fmt.Errorf("merge: %w", err))
		}
	}
	return errors.Join(errs...)
}
