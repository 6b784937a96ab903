package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"arbench/harness"
	"arbench/reports"
)

func reportFlags(w io.Writer) *flag.FlagSet {
	fs, _ := newReportFlags(w)
	return fs
}

func newReportFlags(w io.Writer) (*flag.FlagSet, *reports.WidthFlag) {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(w)
	width := &reports.WidthFlag{}
	fs.Var(width, "width", "fit the printed tables into `N` terminal columns (wider ones are split, repeating the model column); "+
		"auto: $COLUMNS when set, else the terminal's width when stdout is one, else full; full: never split")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: arbench report [-width auto|full|N] DIR

Renders the report of DIR/results.json without rerunning anything: prints the
results tables (mean ± 95%% confidence interval over seeds, Student t, with n;
a single seed shows the task's interval over rows when it has one; ↓/↑ say
which way a metric improves and * marks the best mean of each column;
reference values such as a unigram baseline are rows "ref: …"; training time
and throughput are in a separate speed table) and writes into DIR
  report.md      Markdown tables and figure links
  report.html    one self-contained page: manifest, every table and figure
  results.csv    every metric of every run (one row per task, model, seed, metric)
  summary.csv    per task, model and metric: n, mean, std, 95%% CI
  curves.csv     training and validation loss curves
  series.csv     the curves tasks measure (error vs position, ...)
  plots/*.png|svg  loss vs step per task, headline metric per model as
                 points with 95%% intervals on an axis zoomed to them, one
                 chart per task-measured series
A table wider than -width is printed in parts that fit, each repeating the
model column; a file or a pipe gets the full tables unless -width or
$COLUMNS gives a width.
A figure whose data cannot be drawn (NaN, ±Inf, no points) is reported as
not drawn; everything else is still written and the command exits 1.

Flags:
`)
		fs.PrintDefaults()
	}
	return fs, width
}

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs, width := newReportFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	dir := fs.Arg(0)
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		dir = filepath.Dir(dir)
	}
	// A run writing into dir holds its lock: refuse until it is done, and
	// read the results under the lock so they are the ones rendered.
	release, err := harness.LockOutput(dir)
	if err != nil {
		return err
	}
	defer release()
	rf, err := harness.LoadResults(fs.Arg(0))
	if err != nil {
		return err
	}
	if err := reports.Table(stdout, rf, reports.TableOptions{Width: width.Columns(stdout)}); err != nil {
		return err
	}
	written, err := reports.WriteReport(dir, rf)
	if written != nil {
		for _, f := range written.Files {
			fmt.Fprintf(stderr, "wrote %s\n", f)
		}
	}
	return err
}
