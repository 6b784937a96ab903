package reports

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"arbench/harness"
)

// intervalSource says what a shown interval is computed over.
type intervalSource int

const (
	noInterval   intervalSource = iota
	seedInterval                // Student t across the seeds' values
	taskInterval                // the task's interval of a single run (harness.Result.CI)
)

// cellStat is what a table cell or a chart point shows of one metric of
// one row: the mean over the row's seeds and its interval.
type cellStat struct {
	// n is the number of values (seeds).
	n      int
	mean   float64
	lo, hi float64
	source intervalSource
	// task is the run's interval when source is taskInterval.
	task *harness.Interval
}

// summarizeCell combines one value per seed (cis: each seed's task
// interval or nil, aligned with xs; may be nil): with two or more seeds,
// the mean and the 95% Student t interval across the seeds (per-run
// intervals are then not shown); with one seed, its value and the task's
// interval when the task computed one with finite bounds.
func summarizeCell(xs []float64, cis []*harness.Interval) cellStat {
	s := Summarize(xs)
	c := cellStat{n: s.N, mean: s.Mean, lo: s.Mean, hi: s.Mean}
	switch {
	case s.HasCI():
		c.lo, c.hi, c.source = s.Lo(), s.Hi(), seedInterval
	case s.N == 1 && len(cis) == 1 && cis[0] != nil && finite(float64(cis[0].Lo)) && finite(float64(cis[0].Hi)):
		c.lo, c.hi, c.source, c.task = float64(cis[0].Lo), float64(cis[0].Hi), taskInterval, cis[0]
	}
	return c
}

// resultInterval is r's interval: r.CI, else the bounds a task recorded in
// Params (harness.ParamCILow, ParamCIHigh; over Params["rows"] rows when
// given), else nil.
func resultInterval(r harness.Result) *harness.Interval {
	if r.CI != nil {
		return r.CI
	}
	lo, okLo := paramFloat(r.Params, harness.ParamCILow)
	hi, okHi := paramFloat(r.Params, harness.ParamCIHigh)
	if !okLo || !okHi {
		return nil
	}
	ci := &harness.Interval{Lo: harness.Number(lo), Hi: harness.Number(hi), Level: CILevel}
	if n, ok := paramFloat(r.Params, "rows"); ok {
		ci.N, ci.Of = int(n), "rows"
	}
	return ci
}

func paramFloat(params map[string]any, key string) (float64, bool) {
	switch v := params[key].(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case harness.Number:
		return float64(v), true
	}
	return 0, false
}

// numberFormat says how a column prints its numbers.
type numberFormat struct {
	// prec is the number of decimals of non-integer columns.
	prec int
	// integer columns hold counts: whole values print as integers with
	// thousands separators, means of several seeds with one decimal.
	integer bool
}

func (f numberFormat) value(v float64) string {
	switch {
	case !finite(v):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case f.integer && v == math.Trunc(v) && math.Abs(v) < 1e15:
		return formatCount(int(v))
	case f.integer:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case f.prec == 0 && math.Abs(v) < 1e15:
		return formatCount(int(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', f.prec, 64)
}

// width prints an interval's half-width (integer columns: one decimal).
func (f numberFormat) width(v float64) string {
	if f.integer {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return f.value(v)
}

// rounded is v at the column's display precision, for comparing values as
// the reader sees them.
func (f numberFormat) rounded(v float64) float64 {
	p := f.prec
	if f.integer {
		p = 1
	}
	s := math.Pow(10, float64(p))
	return math.Round(v*s) / s
}

// format renders c: "-" without values; the mean; "± h" for a symmetric
// interval (equal half-widths at the display precision), "[lo, hi]" for an
// asymmetric one (a Wilson interval near 0 or 1).
func (c cellStat) format(f numberFormat) string {
	if c.n == 0 {
		return "-"
	}
	out := f.value(c.mean)
	if c.source == noInterval {
		return out
	}
	if c.symmetric(f) {
		return out + " ± " + f.width(c.hi-c.mean)
	}
	return out + " [" + f.value(c.lo) + ", " + f.value(c.hi) + "]"
}

func (c cellStat) symmetric(f numberFormat) bool {
	return c.source == seedInterval || f.width(c.hi-c.mean) == f.width(c.mean-c.lo)
}

// formatValues renders one metric cell: the mean over seeds, "± h" with h
// the half-width of its 95% confidence interval (Student t) when there are
// at least two values, and "(n=k)" when the cell has fewer values than the
// row has runs (some runs diverged). A single value gets no interval.
func formatValues(xs []float64, runs, prec int) string {
	c := summarizeCell(xs, nil)
	out := c.format(numberFormat{prec: prec})
	if c.n > 0 && c.n != runs {
		out += fmt.Sprintf(" (n=%d)", c.n)
	}
	return out
}

// methodNames are the interval methods (harness.CI*) in words.
var methodNames = map[string]string{
	harness.CIWilson:          "Wilson score interval",
	harness.CIBootstrap:       "percentile bootstrap",
	harness.CIPairedBootstrap: "paired percentile bootstrap",
	harness.CIStudentT:        "Student t",
}

// methodName is the name of an interval method ("" for an unnamed one:
// "the task's interval").
func methodName(m string) string {
	if n, ok := methodNames[m]; ok {
		return n
	}
	if m == "" {
		return "the task's interval"
	}
	return m
}

// taskIntervals describes the task intervals of a column's cells: per
// method and what was counted, the range of n ("Wilson score interval over
// 128 rows"; "percentile bootstrap over 96–128 windows").
func taskIntervals(cis []*harness.Interval) string {
	type key struct{ method, of string }
	var order []key
	ns := map[key][]int{}
	for _, ci := range cis {
		k := key{ci.Method, ci.Of}
		if _, ok := ns[k]; !ok {
			order = append(order, k)
		}
		ns[k] = append(ns[k], ci.N)
	}
	var parts []string
	for _, k := range order {
		p := methodName(k.method)
		n := ns[k]
		sort.Ints(n)
		of := k.of
		if of == "" {
			of = "observations"
		}
		switch {
		case n[len(n)-1] <= 0:
		case n[0] == n[len(n)-1]:
			p += " over " + formatCount(n[0]) + " " + of
		default:
			p += " over " + formatCount(n[0]) + "–" + formatCount(n[len(n)-1]) + " " + of
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}
