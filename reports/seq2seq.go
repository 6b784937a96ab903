package reports

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"arbench/harness"
)

// Decoding settings. A task that evaluates a model under several decoding
// settings (mask-predict's iterations T, speculative decoding's draft
// length γ; harness.DecodeSweeper) names each setting's metrics
// "METRIC@SETTING" ("exact_match@T=4"). The model's table keeps the
// metrics of its configured decoding; the settings get a table of their
// own, a row per (model, setting), and the speed–quality figures plot every
// setting as a point.

// SettingSep separates a metric from its decoding setting.
const SettingSep = "@"

// splitSetting splits "exact_match@T=4" into ("exact_match", "T=4"); the
// setting is "" for a plain metric.
func splitSetting(metric string) (base, setting string) {
	if i := strings.Index(metric, SettingSep); i > 0 {
		return metric[:i], metric[i+1:]
	}
	return metric, ""
}

// SpeedMetric pairs a latency metric with the batch it was measured at,
// for the speed–quality figures and the speed-up table.
type SpeedMetric struct {
	// Metric is the per-sequence latency in milliseconds.
	Metric string
	// Batch describes the batch size ("batch 1", "large batch").
	Batch string
}

// SpeedMetrics are the per-sequence latencies conditional tasks record
// (tasks/seq2seq).
var SpeedMetrics = []SpeedMetric{
	{"latency_ms_b1", "batch 1"},
	{"latency_ms_large", "large batch"},
}

// QualityMetric is the quality axis of the speed–quality figures.
const QualityMetric = "exact_match"

// SpeedupBaseline is the model family whose configured decoding the
// speed-up table divides by: the autoregressive encoder–decoder.
const SpeedupBaseline = "transformer-s2s"

// settingRow is one (model, setting) of a task.
type settingRow struct {
	model, setting string
	values         map[string][]float64
}

// settingRows collects task's metrics per (model, setting), in order of
// first appearance; the configured decoding is setting "". units maps
// base metric names to units, order lists base metrics in appearance order.
func settingRows(rf *harness.ResultsFile, task string) (rows []*settingRow, order []string, units map[string]string) {
	units = map[string]string{}
	byKey := map[[2]string]*settingRow{}
	for _, r := range rf.Results {
		kind, base, setting := classify(r)
		if r.Task != task || kind == referenceMetric {
			continue
		}
		k := [2]string{r.Model, setting}
		row := byKey[k]
		if row == nil {
			row = &settingRow{model: r.Model, setting: setting, values: map[string][]float64{}}
			byKey[k] = row
			rows = append(rows, row)
		}
		if _, ok := units[base]; !ok {
			units[base] = r.Unit
			order = append(order, base)
		}
		row.values[base] = append(row.values[base], float64(r.Value))
	}
	return rows, order, units
}

// hasSettings reports whether any row of rows is a decoding setting.
func hasSettings(rows []*settingRow) bool {
	for _, r := range rows {
		if r.setting != "" {
			return true
		}
	}
	return false
}

// settingsTable lists, per model and decoding setting, the metrics the
// settings were measured on (mean ± 95% interval over seeds); ok is false
// when task has no settings.
func settingsTable(rf *harness.ResultsFile, task string) (simpleTable, bool) {
	rows, order, units := settingRows(rf, task)
	if !hasSettings(rows) {
		return simpleTable{}, false
	}
	var cols []string
	for _, m := range order {
		for _, r := range rows {
			if _, ok := r.values[m]; ok && r.setting != "" {
				cols = append(cols, m)
				break
			}
		}
	}
	header := []string{"model", "setting"}
	for _, c := range cols {
		h := c
		if units[c] != "" {
			h += " (" + units[c] + ")"
		}
		header = append(header, h)
	}
	var cells [][]string
	for _, r := range rows {
		if r.setting == "" {
			continue
		}
		line := []string{r.model, r.setting}
		for _, c := range cols {
			line = append(line, formatValues(r.values[c], len(r.values[c]), 4))
		}
		cells = append(cells, line)
	}
	return simpleTable{header: header, rows: cells, right: func(i int) bool { return i >= 2 }}, true
}

// extraTable is a titled table after a task's results table.
type extraTable struct {
	title, caption string
	table          simpleTable
}

// extraTables are task's decoding-settings and speed-up tables (none for
// tasks without them).
func extraTables(rf *harness.ResultsFile, task string) []extraTable {
	var out []extraTable
	if st, ok := settingsTable(rf, task); ok {
		out = append(out, extraTable{"Decoding settings", "Metrics per decoding setting (METRIC@SETTING in results.json): mean ± half-width of the 95% confidence interval over seeds.", st})
	}
	if st, caption, ok := speedupTable(rf, task); ok {
		out = append(out, extraTable{"Speed-up over " + SpeedupBaseline, caption, st})
	}
	if st, ok := publishedTable(task); ok {
		out = append(out, extraTable{"Published results", publishedCaption, st})
	}
	return out
}

// runFamilies maps model labels of task to their family.
func runFamilies(rf *harness.ResultsFile, task string) map[string]string {
	fam := map[string]string{}
	for _, r := range rf.Runs {
		if r.Task == task {
			fam[r.Model] = r.Info.Family
		}
	}
	return fam
}

// speedupTable divides the mean per-sequence latency of the first
// transformer-s2s model's configured decoding by every (model, setting)'s,
// at each batch of SpeedMetrics: above 1 is faster than the
// autoregressive baseline. ok is false without a baseline or latencies.
func speedupTable(rf *harness.ResultsFile, task string) (simpleTable, string, bool) {
	rows, _, _ := settingRows(rf, task)
	fam := runFamilies(rf, task)
	var base *settingRow
	for _, r := range rows {
		if r.setting == "" && fam[r.model] == SpeedupBaseline {
			base = r
			break
		}
	}
	if base == nil {
		return simpleTable{}, "", false
	}
	header := []string{"model", "setting"}
	var speeds []SpeedMetric
	for _, s := range SpeedMetrics {
		if len(base.values[s.Metric]) > 0 {
			speeds = append(speeds, s)
			header = append(header, "speed-up at "+s.Batch, "ms/seq at "+s.Batch)
		}
	}
	if len(speeds) == 0 {
		return simpleTable{}, "", false
	}
	var cells [][]string
	for _, r := range rows {
		line := []string{r.model, orDash(r.setting)}
		for _, s := range speeds {
			b, v := Summarize(base.values[s.Metric]), Summarize(r.values[s.Metric])
			if v.N == 0 || !(v.Mean > 0) {
				line = append(line, "-", "-")
				continue
			}
			line = append(line, strconv.FormatFloat(b.Mean/v.Mean, 'f', 2, 64)+"×", formatValues(r.values[s.Metric], v.N, 3))
		}
		cells = append(cells, line)
	}
	caption := fmt.Sprintf("Speed-up = mean latency per sequence of %s (%s, its configured decoding) divided by the row's, from the same run; below 1× is slower than the autoregressive baseline.", base.model, SpeedupBaseline)
	return simpleTable{header: header, rows: cells, right: func(i int) bool { return i >= 2 }}, caption, true
}

// speedQualityFigures draws, per batch of SpeedMetrics, exact match (y)
// against latency per sequence (x, logarithmic when it spans more than a
// decade), one line per model through its decoding settings in order of
// latency (one point when it has none), with each point the mean over
// seeds.
func speedQualityFigures(rf *harness.ResultsFile, task string, colors map[string]int) []Figure {
	rows, _, units := settingRows(rf, task)
	if _, ok := units[QualityMetric]; !ok {
		return nil
	}
	var figs []Figure
	for _, s := range SpeedMetrics {
		if _, ok := units[s.Metric]; !ok {
			continue
		}
		chart := &LineChart{
			Title:   fmt.Sprintf("%s: speed vs quality (%s)", task, s.Batch),
			XLabel:  axisLabel("latency per sequence", units[s.Metric]),
			YLabel:  axisLabel(humanize(QualityMetric), units[QualityMetric]),
			Markers: true,
			YBounds: boundsOf(metricBounds(QualityMetric, units[QualityMetric])),
		}
		for _, model := range modelOrder(rf, task) {
			line := speedQualityLine(rows, model, s.Metric)
			if len(line.X) == 0 {
				continue
			}
			line.Group, line.Color = model, colors[model]
			chart.Lines = append(chart.Lines, line)
		}
		if len(chart.Lines) == 0 {
			continue
		}
		figs = append(figs, Figure{
			Name: "speed_quality_" + slug(s.Batch), Task: task, Kind: FigureSpeedQuality, Title: chart.Title,
			Caption: fmt.Sprintf("Exact match versus latency per sequence at %s, one point per model and decoding setting (settings of a model joined in order of latency); means over seeds.", s.Batch),
			Chart:   chart,
		})
	}
	return figs
}

// speedQualityLine is model's points: its settings when it has any, else
// its configured decoding, sorted by latency.
func speedQualityLine(rows []*settingRow, model, latency string) Line {
	type pt struct{ x, y float64 }
	var pts []pt
	var plain *pt
	for _, r := range rows {
		if r.model != model || len(r.values[latency]) == 0 || len(r.values[QualityMetric]) == 0 {
			continue
		}
		p := pt{Summarize(r.values[latency]).Mean, Summarize(r.values[QualityMetric]).Mean}
		if r.setting == "" {
			plain = &p
			continue
		}
		pts = append(pts, p)
	}
	if len(pts) == 0 && plain != nil {
		pts = append(pts, *plain)
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
	var l Line
	for _, p := range pts {
		l.X, l.Y = append(l.X, p.x), append(l.Y, p.y)
	}
	return l
}

// LatencySeries is the series of per-sequence latency against target
// length that conditional tasks record per model (one line per label:
// "batch 1", "large batch"); speedupFigure divides the baseline's by it.
const LatencySeries = "latency_vs_target_length"

// speedupFigure draws the speed-up over the first transformer-s2s model
// against target length: for every other model and label of
// LatencySeries, the baseline's mean latency (over seeds) at each target
// length divided by the model's, at the lengths both measured. ok is false
// without a baseline or its series.
func speedupFigure(rf *harness.ResultsFile, task string, colors map[string]int) (Figure, bool) {
	fam := runFamilies(rf, task)
	type key struct{ model, label string }
	at := map[key]map[float64][]float64{}
	var labels []string
	base := ""
	for _, s := range rf.Series {
		if s.Task != task || s.Name != LatencySeries || len(s.X) != len(s.Y) {
			continue
		}
		if base == "" && fam[s.Model] == SpeedupBaseline {
			base = s.Model
		}
		k := key{s.Model, s.Label}
		if at[k] == nil {
			at[k] = map[float64][]float64{}
			if !slices.Contains(labels, s.Label) {
				labels = append(labels, s.Label)
			}
		}
		for i, x := range s.X {
			at[k][x] = append(at[k][x], s.Y[i])
		}
	}
	if base == "" {
		return Figure{}, false
	}
	chart := &LineChart{
		Title:   fmt.Sprintf("%s: speed-up over %s vs target length", task, base),
		XLabel:  "target length (tokens)",
		YLabel:  "speed-up (×)",
		Markers: true,
	}
	for _, m := range modelOrder(rf, task) {
		if m == base {
			continue
		}
		for li, lab := range labels {
			line := Line{Group: m, Color: colors[m], Variant: lab, Style: li}
			b, v := at[key{base, lab}], at[key{m, lab}]
			for _, x := range slices.Sorted(maps.Keys(v)) {
				if len(b[x]) == 0 {
					continue
				}
				bm, vm := Summarize(b[x]).Mean, Summarize(v[x]).Mean
				if vm > 0 {
					line.X, line.Y = append(line.X, x), append(line.Y, bm/vm)
				}
			}
			if len(line.X) > 0 {
				chart.Lines = append(chart.Lines, line)
			}
		}
	}
	if len(chart.Lines) == 0 {
		return Figure{}, false
	}
	return Figure{
		Name: "speedup_vs_target_length", Task: task, Kind: FigureSpeedQuality, Title: chart.Title, Chart: chart,
		Caption: fmt.Sprintf("Mean latency per sequence of %s (its configured decoding) divided by each model's, per target length of the test rows; solid: batch 1, dashed: large batch; means over seeds. Above 1 is faster than the autoregressive baseline.", base),
	}, true
}
