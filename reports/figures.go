package reports

import (
	"bytes"
	"fmt"
	"image"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot/vg"

	"arbench/harness"
)

// Figure kinds.
const (
	FigureLoss   = "loss"
	FigureMetric = "metric"
	FigureSeries = "series"
	// FigureSpeedQuality plots quality against latency per decoding
	// setting (seq2seq.go).
	FigureSpeedQuality = "speed_quality"
)

// Figure is one chart of a report.
type Figure struct {
	// Name is the file name under plots/, without extension; unique within
	// a report.
	Name string
	// Task is the task the figure belongs to; Kind is FigureLoss,
	// FigureMetric, FigureSeries, FigureSpeedQuality or FigureGrid.
	Task, Kind string
	// Title repeats the chart's title; Caption explains what is drawn.
	Title, Caption string
	Chart          Chart
	// Raster, when set, is the figure instead of Chart (FigureGrid): drawn
	// as it is, its PNG the image and its SVG the PNG embedded.
	Raster image.Image
	// PNG and SVG are the rendered images (after Render); Err says why the
	// figure could not be drawn.
	PNG, SVG []byte
	Err      error
}

// Render draws the figure as PNG and SVG, setting PNG and SVG, or Err (an
// Err set while building the figure is kept).
func (f *Figure) Render() {
	if f.Err != nil {
		return
	}
	if f.Raster != nil {
		f.renderRaster()
		return
	}
	var png, svg bytes.Buffer
	if err := Render(&png, f.Chart, FormatPNG); err != nil {
		f.Err = err
		return
	}
	if err := Render(&svg, f.Chart, FormatSVG); err != nil {
		f.Err = err
		return
	}
	f.PNG, f.SVG = png.Bytes(), svg.Bytes()
}

// ModelColors assigns every model label of rf a palette index (see Color)
// in order of first appearance, so a model has the same colour in every
// chart of a report.
func ModelColors(rf *harness.ResultsFile) map[string]int {
	colors := map[string]int{}
	add := func(m string) {
		if _, ok := colors[m]; !ok {
			colors[m] = len(colors)
		}
	}
	for _, r := range rf.Runs {
		add(r.Model)
	}
	for _, r := range rf.Results {
		add(r.Model)
	}
	for _, c := range rf.Curves {
		add(c.Model)
	}
	for _, s := range rf.Series {
		add(s.Model)
	}
	return colors
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// slug makes s usable in a file name.
func slug(s string) string { return strings.Trim(unsafeName.ReplaceAllString(s, "_"), "_") }

// taskOrder lists the tasks of rf in order of first appearance.
func taskOrder(rf *harness.ResultsFile) []string {
	var tasks []string
	seen := map[string]bool{}
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			tasks = append(tasks, t)
		}
	}
	for _, r := range rf.Runs {
		add(r.Task)
	}
	for _, r := range rf.Results {
		add(r.Task)
	}
	for _, c := range rf.Curves {
		add(c.Task)
	}
	for _, s := range rf.Series {
		add(s.Task)
	}
	return tasks
}

// seedLine is one seed's points of a line, with the series' own
// per-point interval when it has one (lo, hi; nil otherwise).
type seedLine struct{ x, y, lo, hi []float64 }

// aggregateLines averages per-seed lines point by point (over the seeds
// that have each x): y is the mean, and lo/hi the 95% confidence interval
// (Student t) where at least two seeds contribute, the mean elsewhere. lo
// and hi are nil when no point has two seeds. maxN is the largest number of
// seeds behind a point.
func aggregateLines(lines []seedLine) (x, y, lo, hi []float64, maxN int) {
	at := map[float64][]float64{}
	for _, l := range lines {
		for i, xv := range l.x {
			at[xv] = append(at[xv], l.y[i])
		}
	}
	for xv := range at {
		x = append(x, xv)
	}
	sort.Float64s(x)
	y = make([]float64, len(x))
	lo = make([]float64, len(x))
	hi = make([]float64, len(x))
	for i, xv := range x {
		s := Summarize(at[xv])
		y[i], lo[i], hi[i] = s.Mean, s.Lo(), s.Hi()
		maxN = max(maxN, s.N)
	}
	if maxN < 2 {
		lo, hi = nil, nil
	}
	return x, y, lo, hi, maxN
}

// seedsPhrase describes how lines were aggregated.
func seedsPhrase(maxN int) string {
	if maxN < 2 {
		return "Single seed per model (n=1): no confidence band."
	}
	return "Lines are means over seeds; shaded bands are 95% confidence intervals of the mean (Student t) where at least two seeds contribute."
}

// Figures builds every chart of rf, in task order: per task, the training
// and validation loss versus step (when curves were recorded), a point
// chart of the headline metric per model with its intervals and the task's
// reference values (PointChart), and one line chart per Series name.
// Figures are not rendered (see Figure.Render).
func Figures(rf *harness.ResultsFile) []Figure {
	colors := ModelColors(rf)
	used := map[string]int{}
	name := func(parts ...string) string {
		for i := range parts {
			parts[i] = slug(parts[i])
		}
		n := strings.Join(parts, "_")
		used[n]++
		if used[n] > 1 {
			n = fmt.Sprintf("%s_%d", n, used[n])
		}
		return n
	}
	var figs []Figure
	for _, task := range taskOrder(rf) {
		if f, ok := lossFigure(rf, task, colors); ok {
			f.Name = name("loss", task)
			figs = append(figs, f)
		}
		if f, ok := metricFigure(rf, task, colors); ok {
			f.Name = name("metric", task, f.Name)
			figs = append(figs, f)
		}
		for _, f := range speedQualityFigures(rf, task, colors) {
			f.Name = name(f.Name, task)
			figs = append(figs, f)
		}
		if f, ok := speedupFigure(rf, task, colors); ok {
			f.Name = name(f.Name, task)
			figs = append(figs, f)
		}
		for _, f := range seriesFigures(rf, task, colors) {
			f.Name = name("series", task, f.Name)
			figs = append(figs, f)
		}
	}
	return figs
}

// modelOrder lists the models of task in order of first appearance.
func modelOrder(rf *harness.ResultsFile, task string) []string {
	var models []string
	seen := map[string]bool{}
	add := func(t, m string) {
		if t == task && !seen[m] {
			seen[m] = true
			models = append(models, m)
		}
	}
	for _, r := range rf.Runs {
		add(r.Task, r.Model)
	}
	for _, r := range rf.Results {
		add(r.Task, r.Model)
	}
	for _, c := range rf.Curves {
		add(c.Task, c.Model)
	}
	for _, s := range rf.Series {
		add(s.Task, s.Model)
	}
	return models
}

// lossFigure plots the training (solid) and validation (dashed) loss of
// every model of task. A curve is cut at its first non-finite value (a run
// that diverged), which the caption reports.
func lossFigure(rf *harness.ResultsFile, task string, colors map[string]int) (Figure, bool) {
	type key struct{ model, curve string }
	per := map[key][]seedLine{}
	unit := ""
	var notes []string
	for _, c := range rf.Curves {
		if c.Task != task || (c.Name != harness.CurveTrainLoss && c.Name != harness.CurveValidLoss) {
			continue
		}
		if unit == "" {
			unit = c.Unit
		}
		var l seedLine
		for i, v := range c.Values {
			if i >= len(c.Steps) {
				break
			}
			if !finite(float64(v)) {
				notes = append(notes, fmt.Sprintf("%s seed %d: %s is %v at step %d (diverged); the curve stops there.",
					c.Model, c.Seed, strings.ReplaceAll(c.Name, "_", " "), float64(v), c.Steps[i]))
				break
			}
			l.x = append(l.x, float64(c.Steps[i]))
			l.y = append(l.y, float64(v))
		}
		if len(l.x) > 0 {
			k := key{c.Model, c.Name}
			per[k] = append(per[k], l)
		}
	}
	chart := &LineChart{Title: task + ": training and validation loss", XLabel: "training step", YLabel: axisLabel("loss", unit), XScale: ScaleLinear}
	maxN := 0
	// Training curves (noisy: thin and faint) first, validation curves
	// (thick) on top of them.
	for style, curve := range []string{harness.CurveTrainLoss, harness.CurveValidLoss} {
		for _, m := range modelOrder(rf, task) {
			lines := per[key{m, curve}]
			if len(lines) == 0 {
				continue
			}
			x, y, lo, hi, n := aggregateLines(lines)
			maxN = max(maxN, n)
			l := Line{Group: m, Color: colors[m], Variant: "training", Style: style, X: x, Y: y, Lo: lo, Hi: hi, Width: vg.Points(1), Faint: true}
			if curve == harness.CurveValidLoss {
				l.Variant, l.Width, l.Faint = "validation", vg.Points(2.2), false
			}
			chart.Lines = append(chart.Lines, l)
		}
	}
	if len(chart.Lines) == 0 {
		return Figure{}, false
	}
	caption := "Training loss (solid; mean of each logging window) and validation loss (dashed) versus optimiser step. " + seedsPhrase(maxN)
	if len(notes) > 0 {
		caption += " " + strings.Join(notes, " ")
	}
	return Figure{Task: task, Kind: FigureLoss, Title: chart.Title, Caption: caption, Chart: chart}, true
}

// headlineColumn returns the table of task and its headline metric's
// column: the one its runs name, else the first quality metric recorded.
func headlineColumn(rf *harness.ResultsFile, task string) (*taskTable, *metricCol) {
	for _, t := range aggregate(rf) {
		if t.task != task {
			continue
		}
		if c := t.headlineCol(); c != nil {
			return t, c
		}
		if t.headline == "" && len(t.metrics) > 0 {
			return t, t.metrics[0]
		}
	}
	return nil, nil
}

// boundsOf returns b when it bounds anything, else nil.
func boundsOf(b Bounds) *Bounds {
	if math.IsInf(b.Min, -1) && math.IsInf(b.Max, 1) {
		return nil
	}
	return &b
}

// metricFigure draws the headline metric of every model of task as a
// point with its 95% interval (PointChart) on an axis zoomed to the
// intervals, with the task's reference values of that metric as lines.
func metricFigure(rf *harness.ResultsFile, task string, colors map[string]int) (Figure, bool) {
	t, c := headlineColumn(rf, task)
	if c == nil {
		return Figure{}, false
	}
	chart := &PointChart{Title: task + ": " + t.label(c), XLabel: t.describe(c), Bounds: boundsOf(metricBounds(c.name, c.unit))}
	f := t.format(c, 4)
	var stats []cellStat
	for _, r := range t.rows {
		s := summarizeCell(r.values[c.name], r.cis[c.name])
		if s.n == 0 {
			continue
		}
		stats = append(stats, s)
		pf := f
		if !f.integer {
			pf.prec = valueDecimals(s.mean)
		}
		chart.Points = append(chart.Points, Point{Label: r.model, Note: pointNote(s), Color: colors[r.model],
			Value: s.mean, Lo: s.lo, Hi: s.hi, Interval: s.source != noInterval, Text: s.format(pf)})
	}
	if len(chart.Points) == 0 {
		return Figure{}, false
	}
	for _, ref := range t.refs {
		if s := ref.cell(c.name); s.n > 0 {
			label := ref.name
			if ref.fittedOn != "" {
				label += " (" + ref.fittedOn + ")"
			}
			chart.References = append(chart.References, Reference{Label: label, Value: s.mean})
		}
	}
	return Figure{Name: c.name, Task: task, Kind: FigureMetric, Title: chart.Title, Caption: pointCaption(chart, t.describe(c), stats), Chart: chart}, true
}

// boundsText writes b for a reader: "[0, 1]", "≥ 0", "≤ 1".
func boundsText(b Bounds) string {
	switch {
	case math.IsInf(b.Max, 1):
		return "≥ " + num(b.Min)
	case math.IsInf(b.Min, -1):
		return "≤ " + num(b.Max)
	}
	return "[" + num(b.Min) + ", " + num(b.Max) + "]"
}

// pointNote says what a point's interval counts: "3 seeds", "1 seed, 128
// rows", "1 seed, no interval".
func pointNote(s cellStat) string {
	switch {
	case s.source == taskInterval && s.task.N > 0:
		return fmt.Sprintf("1 seed, %s %s", formatCount(s.task.N), orDash(s.task.Of))
	case s.source == taskInterval:
		return "1 seed"
	case s.n == 1:
		return "1 seed, no interval"
	}
	return fmt.Sprintf("%d seeds", s.n)
}

// pointCaption explains a PointChart of the headline metric.
func pointCaption(chart *PointChart, what string, stats []cellStat) string {
	var seeds, bare bool
	var task []*harness.Interval
	for _, s := range stats {
		switch s.source {
		case seedInterval:
			seeds = true
		case taskInterval:
			task = append(task, s.task)
		default:
			bare = true
		}
	}
	var whiskers []string
	if seeds {
		whiskers = append(whiskers, "Student t across seeds for models with several seeds")
	}
	if len(task) > 0 {
		whiskers = append(whiskers, "the task's interval of the run for single-seed models ("+taskIntervals(task)+")")
	}
	caption := capitalize(what) + ", per model: dots are means over seeds"
	if len(whiskers) > 0 {
		caption += "; whiskers are 95% confidence intervals: " + strings.Join(whiskers, ", and ")
	}
	caption += "."
	if bare {
		caption += " A dot without a whisker is a single run without an interval."
	}
	if chart.Bounds != nil {
		caption += " Intervals are clipped to the metric's range (" + boundsText(*chart.Bounds) + ")."
	}
	caption += " The axis is fitted to the intervals and does not start at zero."
	if len(chart.References) > 0 {
		_, _, off := chart.axis()
		caption += " Grey dashed lines are the task's reference values"
		if len(off) > 0 {
			var names []string
			for _, r := range off {
				names = append(names, r.Label+" = "+formatValue(r.Value))
			}
			caption += "; off the scale and named at its edge: " + strings.Join(names, ", ")
		}
		caption += "."
	}
	return caption
}

// capitalize upper-cases the first letter of s (ASCII).
func capitalize(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// humanize turns a snake_case name into words, writing the acronyms of
// arbench's metric names in capitals (kl_vs_position -> KL vs position).
func humanize(s string) string {
	words := strings.Split(s, "_")
	for i, w := range words {
		switch w {
		case "kl", "nll", "ttft", "flops", "rss":
			words[i] = strings.ToUpper(w)
		}
	}
	return strings.Join(words, " ")
}

// seriesYName derives the y-axis name of a series from its Name: the part
// before "_vs_" ("token_error_vs_position" gives "token error").
func seriesYName(name string) string {
	if i := strings.Index(name, "_vs_"); i > 0 {
		return humanize(name[:i])
	}
	return humanize(name)
}

// ChanceLabel is the Label of a task's reference series (chance level):
// drawn as one thin grey line, not as a model's.
const ChanceLabel = "chance"

// seriesFigures draws, per Series name of task, one line per model and
// label (mean over seeds, with a confidence band: Student t across seeds,
// or the series' own intervals when there is one seed), markers at the
// points and a line style per label; series labelled ChanceLabel are one
// grey reference line. The title and axes name the series' own x axis
// ("accuracy vs length"). The returned figures' Name is the series name,
// to be prefixed by the caller.
func seriesFigures(rf *harness.ResultsFile, task string, colors map[string]int) []Figure {
	var names []string
	byName := map[string][]harness.SeriesRecord{}
	for _, s := range rf.Series {
		if s.Task != task {
			continue
		}
		if _, ok := byName[s.Name]; !ok {
			names = append(names, s.Name)
		}
		byName[s.Name] = append(byName[s.Name], s)
	}
	var figs []Figure
	for _, n := range names {
		figs = append(figs, seriesFigure(rf, task, n, byName[n], colors))
	}
	return figs
}

// seriesOf groups the records of one series name per (model, label).
type seriesOf struct {
	labels []string // in order of appearance, without ChanceLabel
	per    map[[2]string][]seedLine
	chance []seedLine
	bad    []string
	method string // the records' CIMethod
}

func groupSeries(recs []harness.SeriesRecord) seriesOf {
	g := seriesOf{per: map[[2]string][]seedLine{}}
	for _, r := range recs {
		if len(r.X) != len(r.Y) {
			g.bad = append(g.bad, fmt.Sprintf("%s seed %d has %d x but %d y values", r.Model, r.Seed, len(r.X), len(r.Y)))
			continue
		}
		l := seedLine{x: r.X, y: r.Y}
		if len(r.Lo) == len(r.X) && len(r.Hi) == len(r.X) && len(r.X) > 0 {
			l.lo, l.hi = r.Lo, r.Hi
			if g.method == "" {
				g.method = r.CIMethod
			}
		}
		if r.Label == ChanceLabel {
			g.chance = append(g.chance, seedLine{x: r.X, y: r.Y})
			continue
		}
		if !slices.Contains(g.labels, r.Label) {
			g.labels = append(g.labels, r.Label)
		}
		k := [2]string{r.Model, r.Label}
		g.per[k] = append(g.per[k], l)
	}
	return g
}

func seriesFigure(rf *harness.ResultsFile, task, name string, recs []harness.SeriesRecord, colors map[string]int) Figure {
	first := recs[0].Series
	yname := seriesYName(name)
	chart := &LineChart{
		Title:   task + ": " + yname + " vs " + first.XName,
		XLabel:  axisLabel(first.XName, first.XUnit),
		YLabel:  axisLabel(yname, first.Unit),
		Markers: true,
		YBounds: boundsOf(metricBounds(name, first.Unit)),
	}
	g := groupSeries(recs)
	maxN, own := 0, false
	for _, m := range modelOrder(rf, task) {
		for style, lab := range g.labels {
			lines := g.per[[2]string{m, lab}]
			if len(lines) == 0 {
				continue
			}
			line := Line{Group: m, Color: colors[m], Variant: lab, Style: style}
			if empty(lines) {
				// Keep the empty line: Validate reports it by name.
				chart.Lines = append(chart.Lines, line)
				continue
			}
			var n int
			var o bool
			line.X, line.Y, line.Lo, line.Hi, n, o = aggregateSeries(lines)
			maxN, own = max(maxN, n), own || o
			chart.Lines = append(chart.Lines, line)
		}
	}
	if len(g.chance) > 0 && !empty(g.chance) {
		x, y, _, _, _ := aggregateLines(g.chance)
		chart.Lines = append(chart.Lines, Line{Group: ChanceLabel, X: x, Y: y, Reference: true})
	}
	if spansDecades(chart.Lines) {
		chart.YScale = ScaleLog
	}
	f := Figure{Name: name, Task: task, Kind: FigureSeries, Title: chart.Title, Chart: chart,
		Caption: seriesCaption(chart, yname, first, g, maxN, own)}
	if len(g.bad) > 0 {
		f.Err = fmt.Errorf("chart %q: %s", chart.Title, strings.Join(g.bad, "; "))
	}
	return f
}

// spansDecades reports whether every value of lines (points and bands) is
// positive and they span more than LogDecades decades: such a series (a
// gradient norm falling by orders of magnitude with distance) is drawn on
// a logarithmic y axis, where a linear one would show only its largest
// points.
func spansDecades(lines []Line) bool {
	lo, hi := math.Inf(1), 0.0
	for _, l := range lines {
		for _, vs := range [][]float64{l.Y, l.Lo, l.Hi} {
			for _, v := range vs {
				if !(v > 0) || math.IsInf(v, 0) {
					return false
				}
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	return hi > 0 && math.Log10(hi/lo) > LogDecades
}

// aggregateSeries is aggregateLines, but a single seed's line keeps the
// series' own per-point intervals (own is then true) as its band.
func aggregateSeries(lines []seedLine) (x, y, lo, hi []float64, maxN int, own bool) {
	x, y, lo, hi, maxN = aggregateLines(lines)
	if maxN >= 2 || len(lines) != 1 || lines[0].lo == nil {
		return x, y, lo, hi, maxN, false
	}
	at := map[float64]int{}
	for i, xv := range lines[0].x {
		at[xv] = i
	}
	lo, hi = make([]float64, len(x)), make([]float64, len(x))
	for i, xv := range x {
		lo[i], hi[i] = lines[0].lo[at[xv]], lines[0].hi[at[xv]]
	}
	return x, y, lo, hi, maxN, true
}

// seriesCaption explains a series chart: what is drawn, the bands and
// what they count, the line styles and the reference line.
func seriesCaption(chart *LineChart, yname string, first harness.Series, g seriesOf, maxN int, own bool) string {
	caption := capitalize(yname) + " versus " + first.XName
	if first.Split != "" {
		caption += " on the " + first.Split + " split"
	}
	caption += ". "
	switch {
	case maxN >= 2:
		caption += seedsPhrase(maxN)
	case own:
		caption += "Single seed per model; shaded bands are the task's 95% intervals at each point (" + methodName(g.method) + " over the observations behind the point)."
	default:
		caption += seedsPhrase(maxN)
	}
	if chart.YBounds != nil && (maxN >= 2 || own) {
		caption += " Bands are clipped to the metric's range (" + boundsText(*chart.YBounds) + ")."
	}
	if len(g.labels) > 1 {
		var styles []string
		for i, l := range g.labels {
			styles = append(styles, l+": "+styleName(i))
		}
		caption += " Line styles: " + strings.Join(styles, "; ") + "."
	}
	if len(g.chance) > 0 {
		caption += " The grey dotted line is chance level (the task's reference, not a model)."
	}
	return caption
}

// styleName describes line style i in words (dashes and Glyph).
func styleName(i int) string {
	names := []string{"solid line, filled circles", "dashed line, open triangles", "dotted line, filled squares",
		"dash-dot line, open circles", "long dashes, crosses"}
	return names[((i%len(names))+len(names))%len(names)]
}

func empty(lines []seedLine) bool {
	for _, l := range lines {
		if len(l.x) > 0 {
			return false
		}
	}
	return true
}
