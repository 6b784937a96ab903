// Package reports renders saved arbench results (harness.ResultsFile)
// without rerunning anything: terminal tables and report.md (Table,
// Markdown), a self-contained report.html (HTML), CSV files and figures
// drawn with gonum/plot as PNG and SVG (Figures, Render), all written by
// WriteReport. Rendering depends only on the results file, so `arbench
// report DIR` reproduces the output of the run that wrote it.
//
// Tables: a quality table per task (headline metric first; each column
// says its unit and split and, from MetricDirection, whether lower ↓ or
// higher ↑ is better; the best mean of a column is marked, BestMark in a
// terminal and bold elsewhere, as a description and not a significance
// test), the task's reference values (harness.ReferenceName) as rows
// under the models, and a separate speed table (training time,
// throughput, timing metrics). Values over seeds are the mean ± half-width
// of the 95% confidence interval of the mean (Student t with n-1 degrees of
// freedom, exact quantiles: TQuantile, Summarize); a single seed shows the
// task's own interval (harness.Result.CI, over rows, pairs or windows) when
// it has one, as ± h or [lo, hi] when asymmetric, and the caption says what
// n counts. Terminal tables wider than TableOptions.Width are split into
// parts that fit (splitColumns), each repeating the model column.
//
// Charts: headline metrics as dot-and-whisker plots on an axis zoomed to
// the intervals (PointChart), series as lines with markers and a line
// style per label, intervals clipped to the metric's range (Bounds).
// CompareResults, CompareTable and Benchstat compare two results files;
// DriftTable shows what `arbench reproduce` found.
package reports

import (
	"fmt"
	"io"
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
	// Width is the width in terminal columns the terminal tables should
	// fit (see TerminalWidth): a wider table is split into parts, each
	// repeating the model column. 0 means no limit.
	Width int
}

func (o TableOptions) precision() int {
	if o.Precision <= 0 {
		return 4
	}
	return o.Precision
}

// Table writes, per task, its quality table for a terminal: a row per
// model with its number of runs n, its seeds, every quality metric (mean
// and 95% interval, see caption; headline first; ↓/↑ for the metric's
// direction and BestMark before the best mean of each column) and its
// parameter count, then the task's reference values as rows of their own;
// the runs' notes; and a separate speed table (training time, throughput,
// timing metrics); then the Claims table when the experiment tests claims.
// A table wider than opts.Width is split into parts that fit, each
// repeating the model column.
func Table(w io.Writer, rf *harness.ResultsFile, opts TableOptions) error {
	tables := aggregate(rf)
	if len(tables) == 0 {
		_, err := fmt.Fprintln(w, "no results")
		return err
	}
	ew := &errWriter{w: w}
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(ew)
		}
		fmt.Fprintf(ew, "%s\n%s\n", wrapText(t.task+" (headline: "+orDash(t.headline)+"): "+t.headlineText(), opts.Width), wrapText(t.caption(opts, BestMark), opts.Width))
		if err := terminalTable(ew, t.qualityTable(opts), opts.Width); err != nil {
			return fmt.Errorf("table %s: %w", t.task, err)
		}
		for _, n := range t.notes() {
			fmt.Fprintln(ew, wrapText("Note: "+n, opts.Width))
		}
		if st, ok := t.speedTable(opts); ok {
			fmt.Fprintf(ew, "%s: speed (not quality)\n", t.task)
			if err := terminalTable(ew, st, opts.Width); err != nil {
				return fmt.Errorf("speed table %s: %w", t.task, err)
			}
		}
	}
	if st, err, ok := claimsSection(rf); ok {
		fmt.Fprintf(ew, "\nClaims\n%s\n", wrapText(claimsCaption, opts.Width))
		if err != nil {
			fmt.Fprintf(ew, "claims not judged: %v\n", err)
		} else if err := terminalTable(ew, st, opts.Width); err != nil {
			return fmt.Errorf("claims table: %w", err)
		}
	}
	return ew.err
}

// headlineText describes the headline metric ("bits/byte on the test
// split (lower is better)"), "-" when the task names none.
func (t *taskTable) headlineText() string {
	if c := t.headlineCol(); c != nil {
		return t.describe(c)
	}
	return orDash(t.headline)
}

// terminalCells returns st's cells as printed in a terminal: the best of
// each column after BestMark.
func terminalCells(st simpleTable) [][]string {
	rows := make([][]string, len(st.rows))
	for i, r := range st.rows {
		rows[i] = append([]string{}, r...)
		for j := range r {
			if st.best[[2]int{i, j}] {
				rows[i][j] = BestMark + r[j]
			}
		}
	}
	return rows
}

// terminalTable draws st with box characters, split into parts of at most
// width terminal columns (splitColumns; 0: no limit), each repeating the
// first column; a reference row is left out of a part where it has no
// value.
func terminalTable(w io.Writer, st simpleTable, width int) error {
	rows := terminalCells(st)
	parts := splitColumns(columnWidths(st.header, rows), width)
	for p, cols := range parts {
		if len(parts) > 1 {
			fmt.Fprintf(w, "(part %d of %d, split to fit %d columns)\n", p+1, len(parts), width)
		}
		header := pick(st.header, cols)
		var sub [][]string
		for i, r := range rows {
			cells := pick(r, cols)
			if st.reference[i] && !hasValue(cells[1:]) {
				continue
			}
			sub = append(sub, cells)
		}
		align := make(tw.Alignment, len(cols))
		for k, c := range cols {
			align[k] = tw.AlignLeft
			if st.right(c) {
				align[k] = tw.AlignRight
			}
		}
		tbl := tablewriter.NewTable(w,
			tablewriter.WithHeaderAutoFormat(tw.Off),
			tablewriter.WithHeaderAlignment(tw.AlignCenter),
			tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		)
		tbl.Header(header)
		if err := tbl.Bulk(sub); err != nil {
			return err
		}
		if err := tbl.Render(); err != nil {
			return err
		}
	}
	return nil
}

func pick(cells []string, cols []int) []string {
	out := make([]string, len(cols))
	for k, c := range cols {
		if c < len(cells) {
			out[k] = cells[c]
		}
	}
	return out
}

func hasValue(cells []string) bool {
	for _, c := range cells {
		if c != "" && c != "-" {
			return true
		}
	}
	return false
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

// mdTable writes st as a Markdown table: the best cell of each column in
// bold, reference rows in italics.
func mdTable(w io.Writer, st simpleTable) {
	cells := make([]string, len(st.header))
	for i, h := range st.header {
		cells[i] = mdCell(h)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	for i := range st.header {
		if st.right(i) {
			cells[i] = "---:"
		} else {
			cells[i] = "---"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(cells, "|"))
	for i, r := range st.rows {
		cells := make([]string, len(r))
		for j, c := range r {
			cells[j] = mdCell(c)
			switch {
			case c == "":
			case st.best[[2]int{i, j}]:
				cells[j] = "**" + cells[j] + "**"
			case st.reference[i] && j == 0:
				cells[j] = "*" + cells[j] + "*"
			}
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
	return simpleTable{header: []string{"task", "model", "seed", "final train loss", "final valid loss", "best valid loss"}, rows: rows,
		right: func(i int) bool { return i >= 2 }}, true
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
	return simpleTable{header: []string{"name", "path", "bytes", "sha256"}, rows: rows, right: func(i int) bool { return i == 2 }}, true
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
			strconv.Itoa(r.Steps), lrCell(r), strconv.FormatFloat(r.TrainSeconds, 'f', 1, 64),
			strconv.FormatFloat(r.TokensPerSec, 'f', 0, 64), strconv.FormatFloat(r.EvalSeconds, 'f', 1, 64),
			convergenceCell(r), weights, orDash(r.Note)})
	}
	return simpleTable{header: []string{"task", "model", "seed", "params", "steps", "lr", "train s", "tok/s", "eval s", "end of training", "loaded weights", "note"}, rows: rows,
		right: func(i int) bool { return i >= 2 && i <= 8 }}
}

// code wraps s in Markdown backticks.
func code(s string) string { return "`" + s + "`" }

// Markdown writes the report (see markdown) without figures.
func Markdown(w io.Writer, rf *harness.ResultsFile) error {
	return markdown(w, rf, nil, "")
}

// The sections of report.md and report.html, in this order:
//
//  1. the manifest (report.html adds the resolved configuration);
//  2. the Claims table, each claim the experiment tests with its verdict
//     (package reports/claims; claimsreport.go), before the per-task
//     detail it summarises;
//  3. per task: the quality table (reference rows under it), the runs'
//     notes, the speed table, the decoding-settings and speed-up tables,
//     then the figures;
//  4. the loss curves, the datasets and every run.

// markdown writes the report with the figures of each task after its
// tables, linked as plotsDir/NAME.png and .svg.
func markdown(w io.Writer, rf *harness.ResultsFile, figs []Figure, plotsDir string) error {
	ew := &errWriter{w: w}
	mdManifest(ew, rf)
	mdClaims(ew, rf)
	mdTasks(ew, rf, figs, plotsDir)
	mdAppendix(ew, rf)
	return ew.err
}

func mdManifest(w io.Writer, rf *harness.ResultsFile) {
	m := rf.Manifest
	fmt.Fprintf(w, "# arbench report: %s\n\n", mdCell(orDash(m.Name)))
	if !m.Complete {
		fmt.Fprintf(w, "**Incomplete:** %d run(s) finished; the experiment was interrupted, is still running, or some of its runs failed (arbench run lists them; -resume runs them again).\n\n", len(rf.Runs))
	}
	mt := manifestTable(m)
	mt.rows[len(mt.rows)-1][1] = code(mt.rows[len(mt.rows)-1][1])
	mdTable(w, mt)
}

// mdTasks writes a section per task: its tables, then its figures.
func mdTasks(w io.Writer, rf *harness.ResultsFile, figs []Figure, plotsDir string) {
	tasks := map[string]bool{}
	for _, t := range aggregate(rf) {
		tasks[t.task] = true
		fmt.Fprintf(w, "\n## %s\n\nHeadline metric: %s. %s\n\n", mdCell(t.task), t.headlineText(), t.caption(TableOptions{}, "bold"))
		mdTable(w, t.qualityTable(TableOptions{}))
		if notes := t.notes(); len(notes) > 0 {
			fmt.Fprintln(w)
			for _, n := range notes {
				fmt.Fprintf(w, "- Note: %s\n", mdCell(n))
			}
		}
		if st, ok := t.speedTable(TableOptions{}); ok {
			fmt.Fprintf(w, "\n### Speed\n\n%s\n\n", speedCaption)
			mdTable(w, st)
		}
		for _, x := range extraTables(rf, t.task) {
			fmt.Fprintf(w, "\n### %s\n\n%s\n\n", x.title, x.caption)
			mdTable(w, x.table)
		}
		mdFigures(w, figs, t.task, plotsDir)
	}
	for _, task := range taskOrder(rf) { // tasks with curves or series only
		if !tasks[task] && hasFigures(figs, task) {
			fmt.Fprintf(w, "\n## %s\n", mdCell(task))
			mdFigures(w, figs, task, plotsDir)
		}
	}
}

// mdAppendix writes the loss curves, datasets and runs.
func mdAppendix(w io.Writer, rf *harness.ResultsFile) {
	if lt, ok := lossTable(rf); ok {
		fmt.Fprintf(w, "\n## Loss curves\n\nFinal training loss (mean over the last logging window) and validation loss, in nats/token.\n\n")
		mdTable(w, lt)
	}
	if dt, ok := datasetTable(rf.Manifest); ok {
		fmt.Fprintf(w, "\n## Datasets\n\n")
		for _, r := range dt.rows {
			r[1], r[3] = code(r[1]), code(r[3])
		}
		mdTable(w, dt)
	}
	if st, ok := sweepTable(rf); ok {
		fmt.Fprintf(w, "\n## Learning-rate sweeps\n\n%s\n\n", sweepCaption)
		mdTable(w, st)
	}
	fmt.Fprintf(w, "\n## Runs\n\n%s\n\n", runsCaption)
	mdTable(w, runTable(rf))
}

// runsCaption explains the runs table's convergence column.
const runsCaption = "End of training: the least-squares slope of the validation loss over the last quarter of the steps, " +
	"with its 95% interval; still improving (the interval below 0: not converged at this budget), flat (no trend detectable) or rising."

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
