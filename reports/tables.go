package reports

import (
	"math"
	"strconv"
	"strings"

	"arbench/harness"
)

// simpleTable is a table shared by the terminal, Markdown and HTML
// reports.
type simpleTable struct {
	header []string
	rows   [][]string
	// right says which columns are right-aligned (numbers).
	right func(col int) bool
	// best marks the cells holding the best value of their column, as
	// {row, col}: bold in Markdown and HTML, BestMark in the terminal.
	best map[[2]int]bool
	// reference marks the rows that are reference values, not models.
	reference map[int]bool
}

// BestMark precedes the best value of a column in terminal tables.
const BestMark = "*"

// bestRows returns the indices of the best means (lowest for
// LowerIsBetter, highest for HigherIsBetter), compared at the display
// precision of f so that values that print the same tie: every tied row is
// returned. NaN and ±Inf means are ignored. It returns nothing when the
// direction is unknown, fewer than two means are finite, or every finite
// mean ties (nothing stands out). This marks the best mean; it does not
// claim that it is significantly better.
func bestRows(means []float64, dir Direction, f numberFormat) []int {
	if dir == DirectionUnknown {
		return nil
	}
	best, count := math.NaN(), 0
	for _, m := range means {
		if !finite(m) {
			continue
		}
		v := f.rounded(m)
		count++
		if math.IsNaN(best) || (dir == LowerIsBetter && v < best) || (dir == HigherIsBetter && v > best) {
			best = v
		}
	}
	var rows []int
	for i, m := range means {
		if finite(m) && f.rounded(m) == best {
			rows = append(rows, i)
		}
	}
	if count < 2 || len(rows) == count {
		return nil
	}
	return rows
}

// statColumn is one metric column of a table, computed.
type statColumn struct {
	header string
	format numberFormat
	dir    Direction
	// cells are the models' (rows of t) then the references'.
	cells, refs []cellStat
	// runs are the models' numbers of runs, for "(n=k)" when a cell has
	// fewer values.
	runs []int
}

func (t *taskTable) statColumn(c *metricCol, prec int) statColumn {
	sc := statColumn{header: t.header(c), format: t.format(c, prec), dir: c.direction()}
	for _, r := range t.rows {
		sc.cells = append(sc.cells, summarizeCell(r.values[c.name], r.cis[c.name]))
		sc.runs = append(sc.runs, len(r.seeds))
	}
	for _, r := range t.refs {
		sc.refs = append(sc.refs, r.cell(c.name))
	}
	return sc
}

// text is model row i's cell.
func (sc statColumn) text(i int) string {
	s := sc.cells[i].format(sc.format)
	if n := sc.cells[i].n; n > 0 && n != sc.runs[i] {
		s += " (n=" + strconv.Itoa(n) + ")"
	}
	return s
}

// table lays out the columns: a row per model (lead cells, then the
// columns, then tail cells), a row per reference with a value in some
// column, and the best cell of every column with a direction marked.
func (t *taskTable) table(lead []string, leadCells func(*modelRow) []string, cols []statColumn,
	tail []string, tailCells func(*modelRow) []string) simpleTable {
	st := simpleTable{header: append([]string{}, lead...), best: map[[2]int]bool{}, reference: map[int]bool{}}
	for _, c := range cols {
		st.header = append(st.header, c.header)
	}
	st.header = append(st.header, tail...)
	nLead := len(lead)
	for i, r := range t.rows {
		cells := leadCells(r)
		for _, c := range cols {
			cells = append(cells, c.text(i))
		}
		st.rows = append(st.rows, append(cells, tailCells(r)...))
	}
	for j, c := range cols {
		means := make([]float64, len(c.cells))
		for i, s := range c.cells {
			means[i] = s.mean
			if s.n == 0 {
				means[i] = math.NaN()
			}
		}
		for _, i := range bestRows(means, c.dir, c.format) {
			st.best[[2]int{i, nLead + j}] = true
		}
	}
	for k, ref := range t.refs {
		cells := make([]string, nLead, len(st.header))
		cells[0] = ref.label()
		for i := 1; i < nLead; i++ {
			cells[i] = ""
		}
		shown := false
		for _, c := range cols {
			s := c.refs[k]
			shown = shown || s.n > 0
			cells = append(cells, s.format(c.format))
		}
		if !shown {
			continue
		}
		for range tail {
			cells = append(cells, "")
		}
		st.reference[len(st.rows)] = true
		st.rows = append(st.rows, cells)
	}
	st.right = func(i int) bool { return i > 0 }
	return st
}

// qualityTable is the results table of t: a row per model with its number
// of runs n, its seeds, every quality metric (headline first) and its
// parameter count, then the reference rows.
func (t *taskTable) qualityTable(opts TableOptions) simpleTable {
	var cols []statColumn
	for _, c := range t.columns(t.metrics, opts) {
		cols = append(cols, t.statColumn(c, opts.precision()))
	}
	return t.table([]string{"model", "n", "seeds"},
		func(r *modelRow) []string { return []string{r.model, strconv.Itoa(len(r.seeds)), r.seedsCell()} },
		cols, []string{"params"}, func(r *modelRow) []string { return []string{r.paramsCell()} })
}

// speedTable is t's table of speed, apart from quality: per model the
// training time and training throughput (mean ± t interval over the
// trained seeds), then the task's timing metrics (latencies, rates per
// second). ok is false when no model trained and there are no timing
// metrics.
func (t *taskTable) speedTable(opts TableOptions) (simpleTable, bool) {
	trained := false
	for _, r := range t.rows {
		trained = trained || r.trained > 0
	}
	cols := []statColumn{}
	if trained {
		train := statColumn{header: "train time " + LowerIsBetter.Arrow() + "\n(s)", format: numberFormat{prec: 1}, dir: LowerIsBetter}
		tokps := statColumn{header: "throughput " + HigherIsBetter.Arrow() + "\n(tokens/s, training)", format: numberFormat{prec: 0}, dir: HigherIsBetter}
		for _, r := range t.rows {
			train.cells = append(train.cells, summarizeCell(r.train, nil))
			tokps.cells = append(tokps.cells, summarizeCell(r.tokps, nil))
			train.runs, tokps.runs = append(train.runs, len(r.seeds)), append(tokps.runs, len(r.seeds))
		}
		for range t.refs {
			train.refs, tokps.refs = append(train.refs, cellStat{}), append(tokps.refs, cellStat{})
		}
		cols = append(cols, train, tokps)
	}
	for _, c := range t.columns(t.speed, opts) {
		cols = append(cols, t.statColumn(c, opts.precision()))
	}
	if len(cols) == 0 {
		return simpleTable{}, false
	}
	st := t.table([]string{"model", "n"}, func(r *modelRow) []string { return []string{r.model, strconv.Itoa(len(r.seeds))} },
		cols, nil, func(*modelRow) []string { return nil })
	if trained {
		for i, r := range t.rows {
			if r.trained == 0 { // say why there is no time
				st.rows[i][2] = "untrained"
				if r.loaded > 0 {
					st.rows[i][2] = "loaded"
				}
			}
		}
	}
	return st, true
}

// speedCaption explains the speed table.
const speedCaption = "Speed, not quality: training time and training throughput (tokens processed per second, including gradients and the optimiser) per model, and the task's timing metrics; mean ± half-width of the 95% confidence interval (Student t) over seeds. Times depend on the machine (see the manifest) and are not reproduced by reruns."

// notes lists the notes of t's runs ("rnn seed 1: diverged ...").
func (t *taskTable) notes() []string {
	var out []string
	for _, r := range t.rows {
		for _, n := range r.notes {
			out = append(out, r.model+" "+n)
		}
	}
	return out
}

// caption explains the values of the quality table: what the intervals
// are and what their n counts (seeds, or the rows, pairs or windows of a
// task's interval), the direction arrows and the best marks (mark: how
// they are shown, "*" or "bold").
func (t *taskTable) caption(opts TableOptions, mark string) string {
	var seeds, bare, asym bool
	var perColumn []string
	for _, c := range t.columns(t.metrics, opts) {
		sc := t.statColumn(c, opts.precision())
		var task []*harness.Interval
		for _, s := range append(append([]cellStat{}, sc.cells...), sc.refs...) {
			switch s.source {
			case seedInterval:
				seeds = true
			case taskInterval:
				task = append(task, s.task)
				asym = asym || !s.symmetric(sc.format)
			default:
				bare = bare || s.n == 1
			}
		}
		if len(task) > 0 {
			perColumn = append(perColumn, t.label(c)+": "+taskIntervals(task))
		}
	}
	var parts []string
	switch {
	case seeds:
		parts = append(parts, "Values: mean over seeds ± half-width of the 95% confidence interval of the mean (Student t, n-1 degrees of freedom, n = seeds); with several seeds this interval across seeds is shown, not the tasks' per-run intervals.")
	case !seeds && len(perColumn) == 0:
		parts = append(parts, "Single seed (n=1): each value is one run; no confidence interval.")
	}
	if len(perColumn) > 0 {
		parts = append(parts, "Single-seed values (n=1) show the task's 95% interval of the run: "+strings.Join(perColumn, "; ")+".")
	}
	if asym {
		parts = append(parts, "[lo, hi] is an asymmetric interval.")
	}
	if bare && (seeds || len(perColumn) > 0) {
		parts = append(parts, "Values without an interval are single runs the task computed no interval for.")
	}
	if len(t.qualityTable(opts).reference) > 0 {
		parts = append(parts, "Rows \""+RefPrefix+"…\" are reference values the task computes (baselines such as a unigram model or chance level), not models.")
	}
	if d := t.directions(opts, mark); d != "" {
		parts = append(parts, d)
	}
	return strings.Join(parts, " ")
}

// directions explains the arrows and best marks of the quality table, ""
// when no column has a direction.
func (t *taskTable) directions(opts TableOptions, mark string) string {
	for _, c := range t.columns(t.metrics, opts) {
		if c.direction() == DirectionUnknown {
			continue
		}
		s := "↓ lower is better, ↑ higher is better."
		if len(t.qualityTable(opts).best) > 0 {
			s += " " + capitalize(mark) + " marks the best mean of each column among the models (not a significance test)."
		}
		return s
	}
	return ""
}

func (r *modelRow) seedsCell() string {
	parts := make([]string, len(r.seeds))
	for i, s := range r.seeds {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ",")
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
