package harness

import (
	"encoding/json"
	"fmt"
	"path/filepath"
)

// plannedSweep is one lr sweep of a stored experiment.
type plannedSweep struct {
	key  SweepKey
	seed uint64
	// id is RunID of the sweep's key (with its seed) and configuration.
	id     string
	config json.RawMessage
}

// sourceSweeps lists the lr sweeps of the experiment ref's manifest
// records, as makeSweeps plans them (task, then model; configurations as
// makePlan writes them), from the JSON alone.
func sourceSweeps(ref *source) ([]plannedSweep, error) {
	name := filepath.Join(ref.dir, ResultsFileName) + ": manifest.config"
	var e storedExperiment
	if err := json.Unmarshal(ref.rf.Manifest.Config, &e); err != nil {
		return nil, fmt.Errorf("merge: %s: %w", name, err)
	}
	var out []plannedSweep
	for ti, task := range e.Tasks {
		var t struct{ Name, Data string }
		if err := json.Unmarshal(task, &t); err != nil || t.Name == "" {
			return nil, fmt.Errorf("merge: %s: tasks[%d]: not a task entry", name, ti)
		}
		label := TaskSpec{Name: t.Name, Data: t.Data}.Label()
		for mi, model := range e.Models {
			var m struct {
				Train struct {
					Steps   int `json:"steps"`
					LRSweep *struct {
						Seed uint64 `json:"seed"`
					} `json:"lr_sweep"`
				} `json:"train"`
			}
			if err := json.Unmarshal(model, &m); err != nil {
				return nil, fmt.Errorf("merge: %s: models[%d]: %w", name, mi, err)
			}
			if m.Train.LRSweep == nil || m.Train.Steps <= 0 {
				continue
			}
			c, err := storedCombo(e, task, model, label, m.Train.LRSweep.Seed)
			if err != nil {
				return nil, fmt.Errorf("merge: %s: models[%d]: %w", name, mi, err)
			}
			out = append(out, plannedSweep{key: SweepKey{label, c.key.Model}, seed: c.seed, id: c.id, config: c.config})
		}
	}
	return out, nil
}

// collectSweeps gathers the directories' lr sweeps in the experiment's
// order, refusing a sweep that is not one of the experiment's (by its id,
// as runs are matched) and two copies of a sweep that differ (sweepDiff),
// naming both directories; identical copies are kept once.
func collectSweeps(srcs []*source, ref *source) ([]LRSweepRecord, error) {
	plan, err := sourceSweeps(ref)
	if err != nil {
		return nil, err
	}
	planned := map[SweepKey]plannedSweep{}
	for _, p := range plan {
		planned[p.key] = p
	}
	first := map[SweepKey]*LRSweepRecord{}
	from := map[SweepKey]string{}
	var problems []string
	for _, s := range srcs {
		if s.rf == nil {
			continue
		}
		for i := range s.rf.LRSweeps {
			sw := &s.rf.LRSweeps[i]
			if msg := checkSweep(sw, planned); msg != "" {
				problems = append(problems, fmt.Sprintf("%s: lr_sweeps[%d] (%s): %s", s.dir, i, sw.Key(), msg))
				continue
			}
			f, dup := first[sw.Key()]
			if !dup {
				first[sw.Key()], from[sw.Key()] = sw, s.dir
				continue
			}
			if diff := sweepDiff(f, sw); diff != "" {
				problems = append(problems, fmt.Sprintf("the lr sweep of %s is in %s and %s with different results (%s); leave one of them out",
					sw.Key(), from[sw.Key()], s.dir, diff))
			}
		}
	}
	if len(problems) > 0 {
		return nil, &MergeError{Problems: problems}
	}
	var out []LRSweepRecord
	for _, p := range plan {
		if f := first[p.key]; f != nil {
			out = append(out, *f)
		}
	}
	return out, nil
}

// checkSweep says why sw is not one of the planned sweeps ("" when it is).
func checkSweep(sw *LRSweepRecord, planned map[SweepKey]plannedSweep) string {
	p, ok := planned[sw.Key()]
	if !ok {
		return "the experiment has no such lr sweep"
	}
	id, err := RunID(RunKey{sw.Task, sw.Model, p.seed}, sw.Config)
	if err != nil {
		return err.Error()
	}
	if id != p.id {
		if diff, err := configDiff(sw.Config, p.config); err == nil && diff != "" {
			return fmt.Sprintf("not the experiment's lr sweep: its configuration differs (%s)", diff)
		}
		return "not the experiment's lr sweep: its configuration differs"
	}
	return ""
}
