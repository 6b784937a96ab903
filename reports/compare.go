package reports

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"arbench/harness"
)

// MetricDelta is one metric present in two results files.
type MetricDelta struct {
	Task, Model, Metric, Unit string
	// A and B summarise the metric's values over the seeds of each file;
	// ValuesA and ValuesB are those values in file order.
	A, B             Summary
	ValuesA, ValuesB []float64
}

// Delta is B's mean minus A's.
func (d MetricDelta) Delta() float64 { return d.B.Mean - d.A.Mean }

// Relative is Delta as a percentage of |A's mean| (NaN when A's mean is 0).
func (d MetricDelta) Relative() float64 {
	if d.A.Mean == 0 {
		return math.NaN()
	}
	return 100 * d.Delta() / math.Abs(d.A.Mean)
}

// metricKey identifies a metric of a model on a task.
type metricKey struct{ task, model, metric string }

// collect groups rf's results by (task, model, metric), in order of first
// appearance, with the unit of the first.
func collect(rf *harness.ResultsFile) ([]metricKey, map[metricKey][]float64, map[metricKey]string) {
	var order []metricKey
	vals := map[metricKey][]float64{}
	units := map[metricKey]string{}
	for _, r := range rf.Results {
		k := metricKey{r.Task, r.Model, r.Metric}
		if _, ok := vals[k]; !ok {
			order = append(order, k)
			units[k] = r.Unit
		}
		vals[k] = append(vals[k], float64(r.Value))
	}
	return order, vals, units
}

// CompareResults pairs the metrics two results files share (same task,
// model label and metric), in A's order; onlyA and onlyB describe the
// metrics found in one file only ("task model metric").
func CompareResults(a, b *harness.ResultsFile) (shared []MetricDelta, onlyA, onlyB []string) {
	orderA, valsA, unitsA := collect(a)
	orderB, valsB, _ := collect(b)
	for _, k := range orderA {
		vb, ok := valsB[k]
		if !ok {
			onlyA = append(onlyA, k.task+" "+k.model+" "+k.metric)
			continue
		}
		va := valsA[k]
		shared = append(shared, MetricDelta{Task: k.task, Model: k.model, Metric: k.metric, Unit: unitsA[k],
			A: Summarize(va), B: Summarize(vb), ValuesA: va, ValuesB: vb})
	}
	for _, k := range orderB {
		if _, ok := valsA[k]; !ok {
			onlyB = append(onlyB, k.task+" "+k.model+" "+k.metric)
		}
	}
	return shared, onlyA, onlyB
}

// summaryCell renders "mean ± h (n=k)" or "mean (n=1)".
func summaryCell(s Summary, prec int) string {
	out := strconv.FormatFloat(s.Mean, 'f', prec, 64)
	if s.HasCI() {
		out += " ± " + strconv.FormatFloat(s.HalfWidth, 'f', prec, 64)
	}
	return out + fmt.Sprintf(" (n=%d)", s.N)
}

func signed(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if v > 0 {
		s = "+" + s
	}
	return s
}

// CompareTable writes the shared metrics side by side: A and B as mean ±
// 95% confidence interval with n, the difference B−A and the relative
// difference (B−A)/|A| in percent. nameA and nameB head the columns.
func CompareTable(w io.Writer, nameA, nameB string, deltas []MetricDelta) error {
	if len(deltas) == 0 {
		_, err := fmt.Fprintln(w, "no shared metrics")
		return err
	}
	const prec = 4
	header := []string{"task", "model", "metric", "A: " + nameA, "B: " + nameB, "B−A", "B−A (%)"}
	var rows [][]string
	for _, d := range deltas {
		metric := d.Metric
		if d.Unit != "" {
			metric += " (" + d.Unit + ")"
		}
		rel := "-"
		if r := d.Relative(); finite(r) {
			rel = signed(r, 2) + "%"
		}
		rows = append(rows, []string{d.Task, d.Model, metric, summaryCell(d.A, prec), summaryCell(d.B, prec), signed(d.Delta(), prec), rel})
	}
	align := tw.Alignment{tw.AlignLeft, tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight}
	tbl := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignCenter),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	)
	tbl.Header(header)
	if err := tbl.Bulk(rows); err != nil {
		return fmt.Errorf("compare table: %w", err)
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("compare table: %w", err)
	}
	_, err := fmt.Fprintln(w, "Values: mean ± half-width of the 95% confidence interval (Student t) over n seeds; n=1 values are single runs without an interval.")
	return err
}

var (
	benchUnsafe  = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	procsSuffix  = regexp.MustCompile(`-([0-9]+)$`)
	configUnsafe = regexp.MustCompile(`[\r\n]+`)
)

// benchPart makes s usable as (part of) a Go benchmark name: characters
// other than letters, digits, '.', '_' and '-' (in particular '/', '=' and
// spaces, which the format gives a meaning) become '_'.
func benchPart(s string) string {
	if s == "" {
		return "_"
	}
	return benchUnsafe.ReplaceAllString(s, "_")
}

// BenchmarkName is the Go benchmark name of a metric:
// Benchmark<Task>/model=<model>/metric=<metric>, with the task's first
// letter upper-cased ("text/jargon" gives "Text_jargon") and a trailing
// "-<digits>", which benchstat would read as GOMAXPROCS, changed to
// "_<digits>".
func BenchmarkName(task, model, metric string) string {
	t := capitalize(benchPart(task))
	if c := t[0]; !(c >= 'A' && c <= 'Z') {
		t = "T" + t
	}
	name := "Benchmark" + t + "/model=" + benchPart(model) + "/metric=" + benchPart(metric)
	return procsSuffix.ReplaceAllString(name, "_$1")
}

// BenchmarkUnit is the unit of a metric in Go benchmark format: its unit
// with spaces replaced by '_', or the metric name when it has none (the
// format requires one).
func BenchmarkUnit(metric, unit string) string {
	if unit == "" {
		unit = metric
	}
	return strings.Join(strings.Fields(unit), "_")
}

// Benchstat writes the deltas in the Go benchmark format that benchstat
// (golang.org/x/perf/cmd/benchstat) reads: for each side a block of
// configuration lines, its "results:" key set to nameA or nameB, then one
// line per seed and metric,
//
//	Benchmark<Task>/model=<m>/metric=<x> 1 <value> <unit>
//
// Compare the two sides with `benchstat -col results FILE`.
func Benchstat(w io.Writer, nameA, nameB string, a, b *harness.ResultsFile, deltas []MetricDelta) error {
	ew := &errWriter{w: w}
	for side, rf := range []*harness.ResultsFile{a, b} {
		name := nameA
		if side == 1 {
			name = nameB
		}
		m := rf.Manifest
		if side > 0 {
			fmt.Fprintln(ew)
		}
		for _, kv := range [][2]string{{"results", name}, {"experiment", m.Name}, {"goos", m.GOOS}, {"goarch", m.GOARCH},
			{"cpu", m.CPU}, {"backend", m.Backend}, {"device", m.Device}, {"git", m.GitSHA}} {
			// An empty value would delete the key; "-" keeps the blocks aligned.
			fmt.Fprintf(ew, "%s: %s\n", kv[0], configUnsafe.ReplaceAllString(orDash(kv[1]), " "))
		}
		for _, d := range deltas {
			vals := d.ValuesA
			if side == 1 {
				vals = d.ValuesB
			}
			name, unit := BenchmarkName(d.Task, d.Model, d.Metric), BenchmarkUnit(d.Metric, d.Unit)
			for _, v := range vals {
				fmt.Fprintf(ew, "%s 1 %s %s\n", name, strconv.FormatFloat(v, 'g', -1, 64), unit)
			}
		}
	}
	return ew.err
}

// DriftTable writes the failed checks of a reproduction (metrics that
// drifted beyond the tolerance or are missing from the rerun): stored and
// rerun values in full precision, their difference and the relative
// difference.
func DriftTable(w io.Writer, checks []harness.MetricCheck) error {
	var rows [][]string
	for _, c := range checks {
		metric := c.Metric
		if c.Unit != "" {
			metric += " (" + c.Unit + ")"
		}
		rerun, diff, rel := "missing", "-", "-"
		if c.Status != harness.CheckMissing {
			rerun = num(c.Rerun)
			d := c.Rerun - c.Stored
			diff = num(d)
			if d > 0 {
				diff = "+" + diff
			}
			if c.Stored != 0 && finite(d) {
				rel = strconv.FormatFloat(100*d/math.Abs(c.Stored), 'g', 3, 64) + "%"
			}
		}
		rows = append(rows, []string{c.Key.Task, c.Key.Model, strconv.FormatUint(c.Key.Seed, 10), metric, num(c.Stored), rerun, diff, rel})
	}
	align := tw.Alignment{tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight}
	tbl := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignCenter),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	)
	tbl.Header([]string{"task", "model", "seed", "metric", "stored", "rerun", "rerun−stored", "relative"})
	if err := tbl.Bulk(rows); err != nil {
		return fmt.Errorf("drift table: %w", err)
	}
	if err := tbl.Render(); err != nil {
		return fmt.Errorf("drift table: %w", err)
	}
	return nil
}
