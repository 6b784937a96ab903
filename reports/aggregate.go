package reports

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"arbench/harness"
)

// taskTable is the aggregated view of one task: rows are models (in order
// of first appearance), columns its metrics (headline first). Quality
// metrics and timing metrics (harness.IsTimingUnit: latencies, rates per
// second) are kept apart: the latter go to the speed table with the
// training time and throughput. Reference values (harness.ReferenceName)
// are rows of their own, not models.
type taskTable struct {
	task     string
	kind     string // harness.TaskInfo.Kind
	headline string
	metrics  []*metricCol
	speed    []*metricCol
	rows     []*modelRow
	refs     []*refRow
}

type metricCol struct {
	name, unit string
	// splits are the data splits the column's values were measured on.
	splits []string
}

type modelRow struct {
	model  string
	seeds  []uint64
	values map[string][]float64
	// cis are the task's intervals of values (nil entries where none).
	cis     map[string][]*harness.Interval
	params  []int
	train   []float64 // seconds, trained runs only
	tokps   []float64
	trained int // runs with training steps
	loaded  int // runs initialised from saved weights
	notes   []string
}

// refRow is one reference of a task (the "unigram" of
// "bits_per_byte@unigram") with its value of every metric it is a
// reference of. Every run reports the reference; one value per seed is
// kept (the runs of one seed share the data it is computed from).
type refRow struct {
	name string
	// fittedOn is the split the reference was fitted on, when the task
	// says (Params["fitted_on"]).
	fittedOn string
	seeds    map[string][]uint64
	values   map[string][]float64
	cis      map[string][]*harness.Interval
}

func (r *refRow) add(metric string, res harness.Result) {
	if slices.Contains(r.seeds[metric], res.Seed) {
		return
	}
	r.seeds[metric] = append(r.seeds[metric], res.Seed)
	r.values[metric] = append(r.values[metric], float64(res.Value))
	r.cis[metric] = append(r.cis[metric], resultInterval(res))
	if s, ok := res.Params["fitted_on"].(string); ok && r.fittedOn == "" {
		r.fittedOn = s
	}
}

// RefPrefix starts the label of a reference row.
const RefPrefix = "ref: "

// label names the reference row: "ref: unigram (train split)".
func (r *refRow) label() string {
	if r.fittedOn != "" {
		return RefPrefix + r.name + " (" + r.fittedOn + " split)"
	}
	return RefPrefix + r.name
}

// cell summarises the reference's values of metric: as a model's
// (summarizeCell), except that a reference every seed computed the same
// (one fitted on data the seeds share) is one value, without an interval
// across seeds.
func (r *refRow) cell(metric string) cellStat {
	xs, cis := r.values[metric], r.cis[metric]
	for _, x := range xs {
		if x != xs[0] {
			return summarizeCell(xs, cis)
		}
	}
	if len(xs) > 1 {
		xs, cis = xs[:1], cis[:1]
	}
	return summarizeCell(xs, cis)
}

// aggregate groups the results by task and model.
func aggregate(rf *harness.ResultsFile) []*taskTable {
	var tables []*taskTable
	byTask := map[string]*taskTable{}
	rowOf := map[[2]string]*modelRow{}
	table := func(task string) *taskTable {
		t := byTask[task]
		if t == nil {
			t = &taskTable{task: task}
			byTask[task] = t
			tables = append(tables, t)
		}
		return t
	}
	row := func(t *taskTable, model string) *modelRow {
		r := rowOf[[2]string{t.task, model}]
		if r == nil {
			r = &modelRow{model: model, values: map[string][]float64{}, cis: map[string][]*harness.Interval{}}
			rowOf[[2]string{t.task, model}] = r
			t.rows = append(t.rows, r)
		}
		return r
	}
	for _, run := range rf.Runs {
		t := table(run.Task)
		if t.headline == "" {
			t.headline = run.TaskInfo.HeadlineMetric
		}
		if t.kind == "" {
			t.kind = run.TaskInfo.Kind
		}
		r := row(t, run.Model)
		r.seeds = append(r.seeds, run.Seed)
		r.params = append(r.params, run.Params)
		if run.WeightsIn != "" {
			r.loaded++
		}
		if run.Steps > 0 {
			r.trained++
			r.train = append(r.train, run.TrainSeconds)
			r.tokps = append(r.tokps, run.TokensPerSec)
		}
		if run.Note != "" {
			r.notes = append(r.notes, fmt.Sprintf("seed %d: %s", run.Seed, run.Note))
		}
	}
	for _, res := range rf.Results {
		kind, base, ref := classify(res)
		switch kind {
		case settingMetric:
			continue // a decoding setting's: settingsTable
		case referenceMetric:
			t := table(res.Task)
			t.column(base, res.Unit, res.Split)
			t.ref(ref).add(base, res)
			continue
		}
		t := table(res.Task)
		t.column(res.Metric, res.Unit, res.Split)
		r := row(t, res.Model)
		r.values[res.Metric] = append(r.values[res.Metric], float64(res.Value))
		r.cis[res.Metric] = append(r.cis[res.Metric], resultInterval(res))
	}
	for _, t := range tables {
		// Headline metric first, the others in order of appearance.
		sort.SliceStable(t.metrics, func(i, j int) bool {
			return t.metrics[i].name == t.headline && t.metrics[j].name != t.headline
		})
	}
	return tables
}

// column returns t's column of metric, adding it (to the speed columns
// for a timing unit) when new, and records split.
func (t *taskTable) column(metric, unit, split string) *metricCol {
	for _, cols := range [][]*metricCol{t.metrics, t.speed} {
		for _, c := range cols {
			if c.name == metric {
				if split != "" && !slices.Contains(c.splits, split) {
					c.splits = append(c.splits, split)
				}
				return c
			}
		}
	}
	c := &metricCol{name: metric, unit: unit}
	if split != "" {
		c.splits = []string{split}
	}
	if harness.IsTimingUnit(unit) {
		t.speed = append(t.speed, c)
	} else {
		t.metrics = append(t.metrics, c)
	}
	return c
}

func (t *taskTable) ref(name string) *refRow {
	for _, r := range t.refs {
		if r.name == name {
			return r
		}
	}
	r := &refRow{name: name, seeds: map[string][]uint64{}, values: map[string][]float64{}, cis: map[string][]*harness.Interval{}}
	t.refs = append(t.refs, r)
	return r
}

// columns selects the given columns of t according to opts.
func (t *taskTable) columns(cols []*metricCol, opts TableOptions) []*metricCol {
	if len(opts.Metrics) == 0 {
		return cols
	}
	var out []*metricCol
	for _, name := range opts.Metrics {
		for _, m := range cols {
			if m.name == name {
				out = append(out, m)
			}
		}
	}
	return out
}

// perByte reports whether c's tokens are bytes: a text task (its tokens
// are bytes) or a unit that says so.
func (t *taskTable) perByte(c *metricCol) bool {
	return t.kind == "text" || strings.Contains(c.unit, "byte")
}

// label is the column's metric in words ("bits/byte", "perplexity per
// byte").
func (t *taskTable) label(c *metricCol) string { return metricLabel(c.name, t.perByte(c)) }

// header is the column's header: its label and direction arrow, then the
// unit (unless the label says it) and split in parentheses:
// "bits/byte ↓\n(test)", "accuracy ↑\n(fraction, test)".
func (t *taskTable) header(c *metricCol) string {
	h := t.label(c)
	if a := c.direction().Arrow(); a != "" {
		h += " " + a
	}
	var paren []string
	if u := unitShown(t.label(c), c.unit); u != "" {
		paren = append(paren, u)
	}
	if len(c.splits) > 0 {
		paren = append(paren, strings.Join(c.splits, "/"))
	}
	if len(paren) > 0 {
		h += "\n(" + strings.Join(paren, ", ") + ")"
	}
	return h
}

// describe is the column in a sentence: "bits/byte on the test split,
// lower is better".
func (t *taskTable) describe(c *metricCol) string {
	s := axisLabel(t.label(c), c.unit)
	if len(c.splits) > 0 {
		s += " on the " + strings.Join(c.splits, "/") + " split"
	}
	if p := c.direction().Phrase(); p != "" {
		s += ", " + p
	}
	return s
}

func (c *metricCol) direction() Direction { return MetricDirection(c.name, c.unit) }

// format is how the column prints its numbers: integers for a count unit
// whose values are all whole numbers (usable length, effective context),
// else prec decimals.
func (t *taskTable) format(c *metricCol, prec int) numberFormat {
	f := numberFormat{prec: prec}
	if !isCountUnit(c.unit) {
		return f
	}
	whole := func(xs []float64) bool {
		for _, x := range xs {
			if !finite(x) || x != math.Trunc(x) {
				return false
			}
		}
		return true
	}
	for _, r := range t.rows {
		if !whole(r.values[c.name]) {
			return f
		}
	}
	for _, r := range t.refs {
		if !whole(r.values[c.name]) {
			return f
		}
	}
	f.integer = true
	return f
}

// headlineCol is the column of the headline metric, nil when none.
func (t *taskTable) headlineCol() *metricCol {
	for _, c := range t.metrics {
		if c.name == t.headline {
			return c
		}
	}
	return nil
}
