package reports

import (
	"bytes"
	"fmt"
	"image"
	"regexp"
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

// seedLine is one seed's points of a line.
type seedLine struct{ x, y []float64 }

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
// and validation loss versus step (when curves were recorded), a bar chart
// of the headline metric per model, and one line chart per Series name.
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

func axisLabel(name, unit string) string {
	if unit == "" {
		return name
	}
	return name + " (" + unit + ")"
}

// headline returns the headline metric of task: the one its runs name, else
// the first metric recorded.
func headline(rf *harness.ResultsFile, task string) string {
	for _, r := range rf.Runs {
		if r.Task == task && r.TaskInfo.HeadlineMetric != "" {
			return r.TaskInfo.HeadlineMetric
		}
	}
	for _, r := range rf.Results {
		if r.Task == task {
			return r.Metric
		}
	}
	return ""
}

// metricFigure draws the headline metric of every model of task as bars
// with 95% confidence intervals over seeds.
func metricFigure(rf *harness.ResultsFile, task string, colors map[string]int) (Figure, bool) {
	metric := headline(rf, task)
	if metric == "" {
		return Figure{}, false
	}
	values := map[string][]float64{}
	unit, split := "", ""
	for _, r := range rf.Results {
		if r.Task == task && r.Metric == metric {
			values[r.Model] = append(values[r.Model], float64(r.Value))
			unit, split = r.Unit, r.Split
		}
	}
	chart := &BarChart{Title: task + ": " + metric, YLabel: axisLabel(metric, unit)}
	single := false
	for _, m := range modelOrder(rf, task) {
		xs := values[m]
		if len(xs) == 0 {
			continue
		}
		s := Summarize(xs)
		single = single || s.N < 2
		chart.Bars = append(chart.Bars, Bar{Label: m, Color: colors[m], Value: s.Mean, N: s.N, HalfWidth: s.HalfWidth})
	}
	if len(chart.Bars) == 0 {
		return Figure{}, false
	}
	caption := "Headline metric " + metric
	if split != "" {
		caption += " on the " + split + " split"
	}
	caption += ", mean over seeds; error bars are 95% confidence intervals of the mean (Student t, n-1 degrees of freedom)."
	if single {
		caption += " Bars marked n=1 are single runs, drawn without an interval."
	}
	return Figure{Name: metric, Task: task, Kind: FigureMetric, Title: chart.Title, Caption: caption, Chart: chart}, true
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

// seriesFigures draws, per Series name of task, one line per model and
// label (mean over seeds, with a confidence band when seeds > 1). The
// returned figures' Name is the series name, to be prefixed by the caller.
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
		recs := byName[n]
		first := recs[0].Series
		chart := &LineChart{
			Title:  task + ": " + humanize(n),
			XLabel: axisLabel(first.XName, first.XUnit),
			YLabel: axisLabel(seriesYName(n), first.Unit),
		}
		var labels []string
		labelStyle := map[string]int{}
		type key struct{ model, label string }
		per := map[key][]seedLine{}
		var bad []string
		for _, r := range recs {
			if _, ok := labelStyle[r.Label]; !ok {
				labelStyle[r.Label] = len(labels)
				labels = append(labels, r.Label)
			}
			if len(r.X) != len(r.Y) {
				bad = append(bad, fmt.Sprintf("%s seed %d has %d x but %d y values", r.Model, r.Seed, len(r.X), len(r.Y)))
				continue
			}
			k := key{r.Model, r.Label}
			per[k] = append(per[k], seedLine{r.X, r.Y})
		}
		maxN := 0
		for _, m := range modelOrder(rf, task) {
			for _, lab := range labels {
				lines := per[key{m, lab}]
				if len(lines) == 0 {
					continue
				}
				line := Line{Group: m, Color: colors[m], Variant: lab, Style: labelStyle[lab]}
				if empty(lines) {
					// Keep the empty line: Validate reports it by name.
					chart.Lines = append(chart.Lines, line)
					continue
				}
				var n int
				line.X, line.Y, line.Lo, line.Hi, n = aggregateLines(lines)
				maxN = max(maxN, n)
				chart.Lines = append(chart.Lines, line)
			}
		}
		caption := capitalize(seriesYName(n)) + " versus " + first.XName
		if first.Split != "" {
			caption += " on the " + first.Split + " split"
		}
		caption += ". " + seedsPhrase(maxN)
		f := Figure{Name: n, Task: task, Kind: FigureSeries, Title: chart.Title, Caption: caption, Chart: chart}
		if len(bad) > 0 {
			f.Err = fmt.Errorf("chart %q: %s", chart.Title, strings.Join(bad, "; "))
		}
		figs = append(figs, f)
	}
	return figs
}

func empty(lines []seedLine) bool {
	for _, l := range lines {
		if len(l.x) > 0 {
			return false
		}
	}
	return true
}
