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
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: arbench report DIR

Renders the report of DIR/results.json without rerunning anything: prints the
results tables (mean ± 95%% confidence interval over seeds, Student t, with n)
and writes into DIR
  report.md      Markdown tables and figure links
  report.html    one self-contained page: manifest, every table and figure
  results.csv    every metric of every run (one row per task, model, seed, metric)
  summary.csv    per task, model and metric: n, mean, std, 95%% CI
  curves.csv     training and validation loss curves
  series.csv     the curves tasks measure (error vs position, ...)
  plots/*.png|svg  loss vs step per task, headline metric per model with
                 95%% CIs, one chart per task-measured series
A figure whose data cannot be drawn (NaN, ±Inf, no points) is reported as
not drawn; everything else is still written and the command exits 1.
`)
	}
	return fs
}

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := reportFlags(stderr)
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
	if err := reports.Table(stdout, rf, reports.TableOptions{}); err != nil {
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
