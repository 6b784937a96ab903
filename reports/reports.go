// Package reports renders saved arbench results (harness.ResultsFile)
// without rerunning anything: terminal tables and report.md (Table,
// Markdown), a self-contained report.html (HTML), CSV files and figures
// drawn with gonum/plot as PNG and SVG (Figures, Render), all written by
// WriteReport. Values over seeds are summarised as mean ± half-width of the
// 95% confidence interval of the mean (Student t with n-1 degrees of
// freedom, exact quantiles: TQuantile, Summarize); single runs are shown
// without an interval. CompareResults, CompareTable and Benchstat compare
// two results files; DriftTable shows what `arbench reproduce` found.
// Rendering depends only on the results file, so `arbench report DIR`
// reproduces the output of the run that wrote it.
package reports

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"arbench/harness"
)

// TableOptions controls Table.
type TableOptions struct {
	// Precision is the number of digits after the decimal point of metric
	// values; 0 means 4.
	Precision int
	// Metrics restricts the metric columns to these names (in this order,
	// headline metric first anyway when listed); empty shows all.
	Metrics []string
}

func (o TableOptions) precision() int {
	if o.Precision <= 0 {
		return 4
	}
	return o.Precision
}

// taskTable is the aggregated view of one task: rows are models (in order
// of first appearance), columns its metrics (headline first).
type taskTable struct {
	task     string
	headline string
	metrics  []metricCol
	rows     []*modelRow
}

type metricCol struct{ name, unit string }

type modelRow struct {
	model   string
	seeds   []uint64
	values  map[string][]float64
	params  []int
	train   []float64 // seconds, trained runs only
	tokps   []float64
	trained int // runs with training steps
	loaded  int // runs initialised from saved weights
	notes   []string
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
			r = &modelRow{model: model, values: map[string][]float64{}}
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
		if _, setting := splitSetting(res.Metric); setting != "" {
			continue // a decoding setting's: settingsTable
		}
		t := table(res.Task)
		r := row(t, res.Model)
		if _, ok := r.values[res.Metric]; !ok {
			seen := false
			for _, m := range t.metrics {
				seen = seen || m.name == res.Metric
			}
			if !seen {
				t.metrics = append(t.metrics, metricCol{res.Metric, res.Unit})
			}
		}
		r.values[res.Metric] = append(r.values[res.Metric], float64(res.Value))
	}
	for _, t := range tables {
		// Headline metric first, the others in order of appearance.
		sort.SliceStable(t.metrics, func(i, j int) bool {
			return t.metrics[i].name == t.headline && t.metrics[j].name != t.headline
		})
	}
	return tables
}

// columns selects the metric columns of t according to opts.
func (t *taskTable) columns(opts TableOptions) []metricCol {
	if len(opts.Metrics) == 0 {
		return t.metrics
	}
	var cols []metricCol
	for _, name := range opts.Metrics {
		for _, m := range t.metrics {
			if m.name == name {
				cols = append(cols, m)
			}
		}
	}
	return cols
}

// formatValues renders one metric cell: the mean over seeds, "± h" with h
// the half-width of its 95% confidence interval (Student t) when there are
// at least two values, and "(n=k)" when the cell has fewer values than the
// row has runs (some runs diverged). A single value gets no interval.
func formatValues(xs []float64, runs, prec int) string {
	if len(xs) == 0 {
		return "-"
	}
	s := Summarize(xs)
	out := strconv.FormatFloat(s.Mean, 'f', prec, 64)
	if s.HasCI() {
		out += " ± " + strconv.FormatFloat(s.HalfWidth, 'f', prec, 64)
	}
	if s.N != runs {
		out += fmt.Sprintf(" (n=%d)", s.N)
	}
	return out
}

// formatCount writes n with thousands separators.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (r *modelRow) paramsCell() string {
	if len(r.params) == 0 {
		return "-"
	}
	lo, hi := r.params[0], r.params[0]
	for _, p := range r.params {
		lo, hi = min(lo, p), max(hi, p)
	}
	if lo == hi {
		return formatCount(lo)
	}
	return formatCount(lo) + "–" + formatCount(hi)
}

func (r *modelRow) trainCell() string {
	if r.trained == 0 {
		if r.loaded > 0 {
			return "loaded"
		}
		return "untrained"
	}
	return strconv.FormatFloat(Summarize(r.train).Mean, 'f', 1, 64) + "s"
}

func (r *modelRow) tokpsCell() string {
	if r.trained == 0 {
		return "-"
	}
	return strconv.FormatFloat(Summarize(r.tokps).Mean, 'f', 0, 64)
}

func (r *modelRow) seedsCell() string {
	parts := make([]string, len(r.seeds))
	for i, s := range r.seeds {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ",")
}

// caption explains the values of the table's metric cells.
func (t *taskTable) caption() string {
	single, multi := 0, 0
	for _, r := range t.rows {
		if len(r.seeds) > 1 {
			multi++
		} else {
			single++
		}
	}
	const ci = "mean ± half-width of the 95% confidence interval of the mean (Student t, n-1 degrees of freedom) over n seeds"
	switch {
	case multi == 0:
		return "Single seed (n=1): each value is one run; no confidence interval."
	case single == 0:
		return "Values: " + ci + "."
	}
	return "Values: " + ci + "; rows with n=1 are single runs, shown without an interval."
}

// header and cells of one task table.
func (t *taskTable) grid(opts TableOptions) (header []string, rows [][]string) {
	cols := t.columns(opts)
	hasNotes := false
	for _, r := range t.rows {
		hasNotes = hasNotes || len(r.notes) > 0
	}
	header = []string{"model", "n", "seeds"}
	for _, c := range cols {
		h := c.name
		if c.unit != "" {
			h += "\n(" + c.unit + ")"
		}
		header = append(header, h)
	}
	header = append(header, "params", "train", "tok/s")
	if hasNotes {
		header = append(header, "note")
	}
	for _, r := range t.rows {
		cells := []string{r.model, strconv.Itoa(len(r.seeds)), r.seedsCell()}
		for _, c := range cols {
			cells = append(cells, formatValues(r.values[c.name], len(r.seeds), opts.precision()))
		}
		cells = append(cells, r.paramsCell(), r.trainCell(), r.tokpsCell())
		if hasNotes {
			cells = append(cells, strings.Join(r.notes, "; "))
		}
		rows = append(rows, cells)
	}
	return header, rows
}

// Table writes one terminal table per task: a row per model with its number
// of runs n, its metric values (mean ± half-width of the 95% confidence
// interval over seeds, Student t; single runs without an interval; headline
// metric first), parameter count, mean training time and throughput.
func Table(w io.Writer, rf *harness.ResultsFile, opts TableOptions) error {
	tables := aggregate(rf)
	if len(tables) == 0 {
		_, err := fmt.Fprintln(w, "no results")
		return err
	}
	for i, t := range tables {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s (headline: %s)\n%s\n", t.task, orDash(t.headline), t.caption()); err != nil {
			return err
		}
		header, rows := t.grid(opts)
		align := make(tw.Alignment, len(header))
		for k := range align {
			align[k] = tw.AlignRight
		}
		align[0] = tw.AlignLeft
		if header[len(header)-1] == "note" {
			align[len(align)-1] = tw.AlignLeft
		}
		tbl := tablewriter.NewTable(w,
			tablewriter.WithHeaderAutoFormat(tw.Off),
			tablewriter.WithHeaderAlignment(tw.AlignCenter),
			tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		)
		tbl.Header(header)
		if err := tbl.Bulk(rows); err != nil {
			return fmt.Errorf("table %s: %w", t.task, err)
		}
		if err := tbl.Render(); err != nil {
			return fmt.Errorf("table %s: %w", t.task, err)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func mdTable(w io.Writer, header []string, rows [][]string, right func(col int) bool) {
	cells := make([]string, len(header))
	for i, h := range header {
		cells[i] = mdCell(h)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	for i := range header {
		if right(i) {
			cells[i] = "---:"
		} else {
			cells[i] = "---"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(cells, "|"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = mdCell(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// simpleTable is a titled table shared by the Markdown and HTML reports.
type simpleTable struct {
	header []string
	rows   [][]string
	// right says which columns are right-aligned (numbers).
	right func(col int) bool
}

// manifestTable describes where and how the results were produced.
func manifestTable(m harness.Manifest) simpleTable {
	git := m.GitSHA
	if m.GitDirty {
		git += " (dirty)"
	}
	seeds := make([]string, len(m.Seeds))
	for i, s := range m.Seeds {
		seeds[i] = strconv.FormatUint(s, 10)
	}
	dur := "-"
	if !m.Start.IsZero() && !m.End.IsZero() {
		dur = m.End.Sub(m.Start).Round(1e9).String()
	}
	return simpleTable{
		header: []string{"", ""},
		rows: [][]string{
			{"arbench", m.Version},
			{"git", git},
			{"go", fmt.Sprintf("%s %s/%s", m.GoVersion, m.GOOS, m.GOARCH)},
			{"backend", fmt.Sprintf("%s (%s)", m.Backend, m.Device)},
			{"cpu", fmt.Sprintf("%s, %d CPUs, GOMAXPROCS %d", m.CPU, m.NumCPU, m.GOMAXPROCS)},
			{"seeds", strings.Join(seeds, ", ")},
			{"start", m.Start.UTC().Format("2006-01-02 15:04:05 MST")},
			{"duration", dur},
			{"command", strings.Join(m.CommandLine, " ")},
		},
		right: func(int) bool { return false },
	}
}

// taskSimpleTable is the results table of one task.
func (t *taskTable) simple() simpleTable {
	header, rows := t.grid(TableOptions{})
	last := len(header) - 1
	return simpleTable{header, rows, func(i int) bool { return i > 0 && !(i == last && header[i] == "note") }}
}

// lossTable lists, per run, the final training and validation loss and the
// best validation loss; ok is false when no curves were recorded.
func lossTable(rf *harness.ResultsFile) (simpleTable, bool) {
	if len(rf.Curves) == 0 {
		return simpleTable{}, false
	}
	type key struct {
		task, model string
		seed        uint64
	}
	var order []key
	curves := map[key]map[string]harness.Curve{}
	for _, c := range rf.Curves {
		k := key{c.Task, c.Model, c.Seed}
		if curves[k] == nil {
			curves[k] = map[string]harness.Curve{}
			order = append(order, k)
		}
		curves[k][c.Name] = c
	}
	var rows [][]string
	for _, k := range order {
		tr, va := curves[k][harness.CurveTrainLoss], curves[k][harness.CurveValidLoss]
		best := "-"
		if len(va.Values) > 0 && len(va.Steps) == len(va.Values) {
			bi := 0
			for i, v := range va.Values {
				if float64(v) < float64(va.Values[bi]) {
					bi = i
				}
			}
			best = fmt.Sprintf("%.4f (step %d)", float64(va.Values[bi]), va.Steps[bi])
		}
		rows = append(rows, []string{k.task, k.model, strconv.FormatUint(k.seed, 10),
			lastPoint(tr), lastPoint(va), best})
	}
	return simpleTable{[]string{"task", "model", "seed", "final train loss", "final valid loss", "best valid loss"}, rows,
		func(i int) bool { return i >= 2 }}, true
}

// datasetTable lists the datasets of the manifest; ok is false when none.
func datasetTable(m harness.Manifest) (simpleTable, bool) {
	if len(m.Datasets) == 0 {
		return simpleTable{}, false
	}
	var rows [][]string
	for _, d := range m.Datasets {
		rows = append(rows, []string{d.Name, d.Path, formatCount(int(d.Bytes)), d.SHA256})
	}
	return simpleTable{[]string{"name", "path", "bytes", "sha256"}, rows, func(i int) bool { return i == 2 }}, true
}

// runTable lists every run.
func runTable(rf *harness.ResultsFile) simpleTable {
	var rows [][]string
	for _, r := range rf.Runs {
		weights := r.WeightsIn
		if weights == "" {
			weights = "-"
		}
		rows = append(rows, []string{r.Task, r.Model, strconv.FormatUint(r.Seed, 10), formatCount(r.Params),
			strconv.Itoa(r.Steps), strconv.FormatFloat(r.TrainSeconds, 'f', 1, 64),
			strconv.FormatFloat(r.TokensPerSec, 'f', 0, 64), strconv.FormatFloat(r.EvalSeconds, 'f', 1, 64),
			weights, orDash(r.Note)})
	}
	return simpleTable{[]string{"task", "model", "seed", "params", "steps", "train s", "tok/s", "eval s", "loaded weights", "note"}, rows,
		func(i int) bool { return i >= 2 && i <= 7 }}
}

// code wraps s in Markdown backticks.
func code(s string) string { return "`" + s + "`" }

// Markdown writes the report: a manifest summary, one results table per
// task, the final points of the loss curves, the datasets and every run.
func Markdown(w io.Writer, rf *harness.ResultsFile) error {
	return markdown(w, rf, nil, "")
}

// markdown writes the report with the figures of each task after its table,
// linked as plotsDir/NAME.png and .svg.
func markdown(w io.Writer, rf *harness.ResultsFile, figs []Figure, plotsDir string) error {
	ew := &errWriter{w: w}
	m := rf.Manifest
	fmt.Fprintf(ew, "# arbench report: %s\n\n", mdCell(orDash(m.Name)))
	if !m.Complete {
		fmt.Fprintf(ew, "**Incomplete:** %d run(s) finished; the experiment was interrupted, is still running, or some of its runs failed (arbench run lists them; -resume runs them again).\n\n", len(rf.Runs))
	}
	mt := manifestTable(m)
	mt.rows[len(mt.rows)-1][1] = code(mt.rows[len(mt.rows)-1][1])
	mdTable(ew, mt.header, mt.rows, mt.right)

	tables := aggregate(rf)
	tasks := map[string]bool{}
	for _, t := range tables {
		tasks[t.task] = true
		fmt.Fprintf(ew, "\n## %s\n\nHeadline metric: %s. %s\n\n", mdCell(t.task), orDash(t.headline), t.caption())
		st := t.simple()
		mdTable(ew, st.header, st.rows, st.right)
		for _, x := range extraTables(rf, t.task) {
			fmt.Fprintf(ew, "\n### %s\n\n%s\n\n", x.title, x.caption)
			mdTable(ew, x.table.header, x.table.rows, x.table.right)
		}
		mdFigures(ew, figs, t.task, plotsDir)
	}
	for _, task := range taskOrder(rf) { // tasks with curves or series only
		if !tasks[task] && hasFigures(figs, task) {
			fmt.Fprintf(ew, "\n## %s\n", mdCell(task))
			mdFigures(ew, figs, task, plotsDir)
		}
	}

	if lt, ok := lossTable(rf); ok {
		fmt.Fprintf(ew, "\n## Loss curves\n\nFinal training loss (mean over the last logging window) and validation loss, in nats/token.\n\n")
		mdTable(ew, lt.header, lt.rows, lt.right)
	}
	if dt, ok := datasetTable(m); ok {
		fmt.Fprintf(ew, "\n## Datasets\n\n")
		for _, r := range dt.rows {
			r[1], r[3] = code(r[1]), code(r[3])
		}
		mdTable(ew, dt.header, dt.rows, dt.right)
	}
	fmt.Fprintf(ew, "\n## Runs\n\n")
	rt := runTable(rf)
	mdTable(ew, rt.header, rt.rows, rt.right)
	return ew.err
}

func hasFigures(figs []Figure, task string) bool {
	for _, f := range figs {
		if f.Task == task {
			return true
		}
	}
	return false
}

// mdFigures writes the figures of task as images linking their SVG.
func mdFigures(w io.Writer, figs []Figure, task, plotsDir string) {
	for _, f := range figs {
		if f.Task != task {
			continue
		}
		if f.Err != nil {
			fmt.Fprintf(w, "\n**%s: not drawn:** %s\n", mdCell(f.Title), mdCell(f.Err.Error()))
			continue
		}
		png, svg := plotsDir+"/"+f.Name+".png", plotsDir+"/"+f.Name+".svg"
		fmt.Fprintf(w, "\n![%s](%s)\n\n*%s* ([SVG](%s))\n", mdCell(f.Title), png, mdCell(f.Caption), svg)
	}
}

func lastPoint(c harness.Curve) string {
	if len(c.Values) == 0 || len(c.Steps) != len(c.Values) {
		return "-"
	}
	return fmt.Sprintf("%.4f (step %d)", float64(c.Values[len(c.Values)-1]), c.Steps[len(c.Steps)-1])
}
