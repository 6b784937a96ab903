package reports

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"arbench/harness"
)

// CSV file names written by WriteReport.
const (
	ResultsCSV = "results.csv"
	SummaryCSV = "summary.csv"
	CurvesCSV  = "curves.csv"
	SeriesCSV  = "series.csv"
)

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// ResultsCSVTo writes every metric of every run, one row per (task, model,
// seed, metric): task,model,seed,metric,value,unit,split.
func ResultsCSVTo(w io.Writer, rf *harness.ResultsFile) error {
	rows := make([][]string, 0, len(rf.Results))
	for _, r := range rf.Results {
		rows = append(rows, []string{r.Task, r.Model, strconv.FormatUint(r.Seed, 10), r.Metric, num(float64(r.Value)), r.Unit, r.Split})
	}
	return writeCSV(w, []string{"task", "model", "seed", "metric", "value", "unit", "split"}, rows)
}

// SummaryCSVTo writes one row per (task, model, metric) aggregated over
// seeds: n, mean, sample standard deviation and the 95% confidence interval
// of the mean (Student t); std and the interval are empty when n = 1.
func SummaryCSVTo(w io.Writer, rf *harness.ResultsFile) error {
	var rows [][]string
	for _, t := range aggregate(rf) {
		for _, r := range t.rows {
			for _, m := range append(append([]*metricCol{}, t.metrics...), t.speed...) {
				xs := r.values[m.name]
				if len(xs) == 0 {
					continue
				}
				s := Summarize(xs)
				row := []string{t.task, r.model, m.name, m.unit, strconv.Itoa(s.N), num(s.Mean), "", "", "", ""}
				if s.HasCI() {
					row[6], row[7], row[8], row[9] = num(s.Std), num(s.HalfWidth), num(s.Lo()), num(s.Hi())
				}
				rows = append(rows, row)
			}
		}
	}
	return writeCSV(w, []string{"task", "model", "metric", "unit", "n", "mean", "std", "ci95_half_width", "ci95_low", "ci95_high"}, rows)
}

// CurvesCSVTo writes the training and validation curves, one row per point:
// task,model,seed,curve,unit,step,value.
func CurvesCSVTo(w io.Writer, rf *harness.ResultsFile) error {
	var rows [][]string
	for _, c := range rf.Curves {
		for i, v := range c.Values {
			if i >= len(c.Steps) {
				break
			}
			rows = append(rows, []string{c.Task, c.Model, strconv.FormatUint(c.Seed, 10), c.Name, c.Unit, strconv.Itoa(c.Steps[i]), num(float64(v))})
		}
	}
	return writeCSV(w, []string{"task", "model", "seed", "curve", "unit", "step", "value"}, rows)
}

// SeriesCSVTo writes the task-measured series, one row per point:
// task,model,seed,series,label,split,x_name,x_unit,x,unit,y,n (n empty when
// the series records no counts).
func SeriesCSVTo(w io.Writer, rf *harness.ResultsFile) error {
	var rows [][]string
	for _, s := range rf.Series {
		for i, x := range s.X {
			y, n := "", ""
			if i < len(s.Y) {
				y = num(s.Y[i])
			}
			if i < len(s.N) {
				n = strconv.Itoa(s.N[i])
			}
			rows = append(rows, []string{s.Task, s.Model, strconv.FormatUint(s.Seed, 10), s.Name, s.Label, s.Split, s.XName, s.XUnit, num(x), s.Unit, y, n})
		}
	}
	return writeCSV(w, []string{"task", "model", "seed", "series", "label", "split", "x_name", "x_unit", "x", "unit", "y", "n"}, rows)
}
