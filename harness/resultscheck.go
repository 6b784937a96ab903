package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
)

// maxResultsProblems bounds how many problems a ResultsError lists.
const maxResultsProblems = 20

// ResultsError is every problem found in a results file (up to a limit),
// each naming the entry it concerns, e.g. "results[3]: metric is missing"
// or "runs[2]: duplicate of runs[0] (lstm on text/jargon seed 1)".
type ResultsError struct {
	File     string
	Problems []string
	// More counts the problems found beyond those listed.
	More int
}

func (e *ResultsError) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	for _, p := range e.Problems {
		lines = append(lines, e.File+": "+p)
	}
	if e.More > 0 {
		lines = append(lines, fmt.Sprintf("%s: ... and %d more problem(s)", e.File, e.More))
	}
	return strings.Join(lines, "\n")
}

// ParseResults decodes and checks the content b of a results file; name
// (its path) starts every message. Besides valid JSON of the right types,
// it requires
//
//   - a manifest with a name, and at least one run;
//   - the key fields of every entry: the task, model and seed of runs,
//     results, curves and series, a result's metric, unit and value, a
//     curve's and a series' name (a unit may be "" but must be present);
//   - unique runs (task, model, seed), results (task, model, seed, metric,
//     split, params), curves (task, model, seed, name) and series (task,
//     model, seed, name, label, split, params);
//   - that every result, curve and series belongs to a recorded run, and
//     that a curve has as many values as steps;
//   - a run_id, when present, of the form RunID returns;
//   - lr sweeps with a task, a model and a configuration, unique by
//     (task, model), whose trials have distinct positive rates, and whose
//     chosen_lr is the rate chooseLR picks from them (absent when every
//     trial diverged).
//
// A run without a run_id (files written before ids existed) gets the one
// RunID computes from its key and configuration.
//
// Problems are all reported at once as a *ResultsError.
func ParseResults(name string, b []byte) (*ResultsFile, error) {
	if err := expectObject(b); err != nil {
		return nil, &ResultsError{File: name, Problems: []string{err.Error()}}
	}
	var rf ResultsFile
	if err := json.Unmarshal(b, &rf); err != nil {
		return nil, jsonError(name, b, err)
	}
	var raw rawResults
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, jsonError(name, b, err)
	}
	c := resultsCheck{}
	c.check(&rf, &raw)
	if len(c.problems) > 0 {
		return nil, c.err(name)
	}
	fillRunIDs(rf.Runs)
	return &rf, nil
}

// fillRunIDs computes the run id of every run recorded without one (files
// written before run ids existed) from its key and configuration; a run
// without a configuration keeps an empty (unknown) id.
func fillRunIDs(runs []RunRecord) {
	for i, r := range runs {
		if r.RunID != "" || len(r.Config) == 0 || string(r.Config) == "null" {
			continue
		}
		if id, err := RunID(r.Key(), r.Config); err == nil {
			runs[i].RunID = id
		}
	}
}

// expectObject refuses anything but a JSON object at the top level ({} is
// refused later, for lacking a manifest and runs).
func expectObject(b []byte) error {
	t := bytes.TrimSpace(b)
	switch {
	case len(t) == 0:
		return errors.New("empty file, expected a JSON object (a results file)")
	case t[0] == '{':
		return nil
	case t[0] == '[':
		return errors.New("expected a JSON object (a results file), got an array")
	}
	return fmt.Errorf("expected a JSON object (a results file), got %.20s", t)
}

// jsonError locates a decoding error by line when the decoder says where.
func jsonError(name string, b []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := int64(-1)
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(b)) {
		return fmt.Errorf("%s: %w", name, err)
	}
	return fmt.Errorf("%s:%d: %w", name, 1+bytes.Count(b[:off], []byte{'\n'}), err)
}

// rawResults is the results file with every entry as its raw fields, to
// tell a missing field from a zero one.
type rawResults struct {
	Manifest map[string]json.RawMessage   `json:"manifest"`
	Results  []map[string]json.RawMessage `json:"results"`
	Curves   []map[string]json.RawMessage `json:"curves"`
	Series   []map[string]json.RawMessage `json:"series"`
	Runs     []map[string]json.RawMessage `json:"runs"`
	LRSweeps []map[string]json.RawMessage `json:"lr_sweeps"`
}

type resultsCheck struct {
	problems []string
	more     int
}

func (c *resultsCheck) addf(format string, args ...any) {
	if len(c.problems) == maxResultsProblems {
		c.more++
		return
	}
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *resultsCheck) err(name string) error {
	return &ResultsError{File: name, Problems: c.problems, More: c.more}
}

func (c *resultsCheck) check(rf *ResultsFile, raw *rawResults) {
	switch {
	case raw.Manifest == nil:
		c.addf("manifest is missing")
	case rf.Manifest.Name == "":
		c.addf("manifest.name is missing")
	}
	if len(raw.Runs) == 0 {
		c.addf("runs is missing or empty: the file records no finished run")
	}
	runs := c.checkRuns(rf.Runs, raw.Runs)
	c.checkResults(rf.Results, raw.Results, runs)
	c.checkCurves(rf.Curves, raw.Curves, runs)
	c.checkSeries(rf.Series, raw.Series, runs)
	c.checkSweeps(rf.LRSweeps, raw.LRSweeps)
}

// checkSweeps checks the lr sweeps: key fields, unique keys, trials.
func (c *resultsCheck) checkSweeps(sweeps []LRSweepRecord, raw []map[string]json.RawMessage) {
	seen := map[string]int{}
	for i, s := range sweeps {
		where := fmt.Sprintf("lr_sweeps[%d]", i)
		if !c.fields(where, raw[i], []string{"task", "model", "trials", "config"}, [2]string{"task", s.Task}, [2]string{"model", s.Model}) {
			continue
		}
		c.unique(seen, "lr_sweeps", i, fmt.Sprint(s.Task, "\x00", s.Model), "lr sweep of "+s.Key().String())
		c.checkTrials(where, s)
	}
}

// checkTrials checks a sweep's trials and its choice.
func (c *resultsCheck) checkTrials(where string, s LRSweepRecord) {
	if len(s.Trials) == 0 {
		c.addf("%s: trials is empty", where)
		return
	}
	rates := map[float64]int{}
	for j, t := range s.Trials {
		if !(t.LR > 0) || !finite(t.LR) {
			c.addf("%s: trials[%d]: lr %v is not a positive number", where, j, t.LR)
			return
		}
		if k, dup := rates[t.LR]; dup {
			c.addf("%s: trials[%d]: lr %v is also trials[%d]'s", where, j, t.LR, k)
			return
		}
		rates[t.LR] = j
	}
	want := 0.0
	if j := chooseLR(s.Trials); j >= 0 {
		want = s.Trials[j].LR
	}
	switch {
	case s.Chosen == want:
	case want == 0:
		c.addf("%s: chosen_lr is %v, but every trial diverged", where, s.Chosen)
	default:
		c.addf("%s: chosen_lr is %v, not %v, the rate of the lowest validation loss", where, s.Chosen, want)
	}
}

// fields reports the fields of entry where (e.g. "results[3]") that are
// absent or null (required) or empty strings (nonEmpty, with their decoded
// values); it returns whether all are there.
func (c *resultsCheck) fields(where string, entry map[string]json.RawMessage, required []string, nonEmpty ...[2]string) bool {
	if entry == nil {
		c.addf("%s is not an object", where)
		return false
	}
	missing := map[string]bool{}
	for _, k := range required {
		if v, has := entry[k]; !has || string(v) == "null" {
			c.addf("%s: %s is missing", where, k)
			missing[k] = true
		}
	}
	for _, kv := range nonEmpty {
		if !missing[kv[0]] && kv[1] == "" {
			c.addf("%s: %s is empty", where, kv[0])
			missing[kv[0]] = true
		}
	}
	return len(missing) == 0
}

// checkRuns returns the index of every run by key.
func (c *resultsCheck) checkRuns(runs []RunRecord, raw []map[string]json.RawMessage) map[RunKey]int {
	index := map[RunKey]int{}
	for i, r := range runs {
		where := fmt.Sprintf("runs[%d]", i)
		if !c.fields(where, raw[i], []string{"task", "model", "seed"}, [2]string{"task", r.Task}, [2]string{"model", r.Model}) {
			continue
		}
		if cfg, has := raw[i]["config"]; has && string(cfg) != "null" && !bytes.HasPrefix(cfg, []byte("{")) {
			c.addf("%s: config is not an object", where)
		}
		if r.RunID != "" && !ValidRunID(r.RunID) {
			c.addf("%s: run_id %q is not %d lowercase hexadecimal digits", where, r.RunID, RunIDLen)
		}
		if j, dup := index[r.Key()]; dup {
			c.addf("%s: duplicate of runs[%d] (%s)", where, j, r.Key())
			continue
		}
		index[r.Key()] = i
	}
	return index
}

// belongs reports an entry whose run is not recorded.
func (c *resultsCheck) belongs(where string, k RunKey, runs map[RunKey]int) {
	if _, ok := runs[k]; !ok {
		c.addf("%s: belongs to no recorded run (%s is not in runs)", where, k)
	}
}

// unique reports an entry whose identity (described by what) was seen.
func (c *resultsCheck) unique(seen map[string]int, kind string, i int, id, what string) {
	if j, dup := seen[id]; dup {
		c.addf("%s[%d]: duplicate of %s[%d] (%s)", kind, i, kind, j, what)
		return
	}
	seen[id] = i
}

func (c *resultsCheck) checkResults(results []Result, raw []map[string]json.RawMessage, runs map[RunKey]int) {
	seen := map[string]int{}
	for i, r := range results {
		where := fmt.Sprintf("results[%d]", i)
		if !c.fields(where, raw[i], []string{"task", "model", "seed", "metric", "value", "unit"},
			[2]string{"task", r.Task}, [2]string{"model", r.Model}, [2]string{"metric", r.Metric}) {
			continue
		}
		k := RunKey{r.Task, r.Model, r.Seed}
		c.belongs(where, k, runs)
		params := canonical(r.Params)
		what := fmt.Sprintf("%s of %s", r.Metric, k)
		if r.Split != "" {
			what += ", split " + r.Split
		}
		if params != "" {
			what += ", params " + params
		}
		c.unique(seen, "results", i, fmt.Sprint(k, "\x00", r.Metric, "\x00", r.Split, "\x00", params), what)
	}
}

func (c *resultsCheck) checkCurves(curves []Curve, raw []map[string]json.RawMessage, runs map[RunKey]int) {
	seen := map[string]int{}
	for i, cu := range curves {
		where := fmt.Sprintf("curves[%d]", i)
		if !c.fields(where, raw[i], []string{"task", "model", "seed", "name"},
			[2]string{"task", cu.Task}, [2]string{"model", cu.Model}, [2]string{"name", cu.Name}) {
			continue
		}
		if len(cu.Steps) != len(cu.Values) {
			c.addf("%s: %d steps but %d values", where, len(cu.Steps), len(cu.Values))
		}
		k := RunKey{cu.Task, cu.Model, cu.Seed}
		c.belongs(where, k, runs)
		c.unique(seen, "curves", i, fmt.Sprint(k, "\x00", cu.Name), fmt.Sprintf("%s of %s", cu.Name, k))
	}
}

func (c *resultsCheck) checkSeries(series []SeriesRecord, raw []map[string]json.RawMessage, runs map[RunKey]int) {
	seen := map[string]int{}
	for i, s := range series {
		where := fmt.Sprintf("series[%d]", i)
		if !c.fields(where, raw[i], []string{"task", "model", "seed", "name"},
			[2]string{"task", s.Task}, [2]string{"model", s.Model}, [2]string{"name", s.Name}) {
			continue
		}
		k := RunKey{s.Task, s.Model, s.Seed}
		c.belongs(where, k, runs)
		params := canonical(s.Params)
		what := fmt.Sprintf("%s of %s", s.Name, k)
		for _, part := range [][2]string{{"label", s.Label}, {"split", s.Split}, {"params", params}} {
			if part[1] != "" {
				what += ", " + part[0] + " " + part[1]
			}
		}
		c.unique(seen, "series", i, fmt.Sprint(k, "\x00", s.Name, "\x00", s.Label, "\x00", s.Split, "\x00", params), what)
	}
}

// IntervalParams are the Metric.Params keys that bound a value's
// confidence interval (ParamCILow, ParamCIHigh): they move with the value,
// so they are not part of a metric's identity (canonical).
const (
	ParamCILow  = "ci_low"
	ParamCIHigh = "ci_high"
)

// canonical renders params as JSON with sorted keys ("" when empty),
// without the interval bounds, which describe the value, not the metric.
func canonical(params map[string]any) string {
	if _, ok := params[ParamCILow]; ok {
		params = maps.Clone(params)
		delete(params, ParamCILow)
		delete(params, ParamCIHigh)
	}
	if _, ok := params[ParamCIHigh]; ok {
		params = maps.Clone(params)
		delete(params, ParamCIHigh)
	}
	if len(params) == 0 {
		return ""
	}
	b, err := json.Marshal(params)
	if err != nil {
		return fmt.Sprint(params) // decoded from JSON, so always encodable
	}
	return string(b)
}
