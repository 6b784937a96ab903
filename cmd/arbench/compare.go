package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"arbench/harness"
	"arbench/reports"
)

func compareFlags(w io.Writer, benchstat *string) *flag.FlagSet {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.StringVar(benchstat, "benchstat", "", "also write the shared metrics in Go benchmark format to `FILE` (\"-\": standard output), for `benchstat -col results FILE`")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: arbench compare [flags] DIR_A DIR_B

Prints the metrics both results directories hold (same task, model label and
metric) side by side: mean ± 95%% confidence interval over seeds (Student t)
with n, the difference B-A and (B-A)/|A| in percent. Metrics found in one
directory only are listed after the table. Nothing is rerun.

With -benchstat, the per-seed values are also written as
  Benchmark<Task>/model=<m>/metric=<x> 1 <value> <unit>
lines in two blocks whose configuration key "results" is DIR_A or DIR_B.

Flags:
`)
		fs.PrintDefaults()
	}
	return fs
}

func cmdCompare(args []string, stdout, stderr io.Writer) error {
	var benchstat string
	fs := compareFlags(stderr, &benchstat)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errUsage
	}
	dirA, dirB := fs.Arg(0), fs.Arg(1)
	a, err := harness.LoadResults(dirA)
	if err != nil {
		return err
	}
	b, err := harness.LoadResults(dirB)
	if err != nil {
		return err
	}
	shared, onlyA, onlyB := reports.CompareResults(a, b)
	if err := reports.CompareTable(stdout, dirA, dirB, shared); err != nil {
		return err
	}
	if len(onlyA) > 0 {
		fmt.Fprintf(stdout, "only in A (%s): %s\n", dirA, strings.Join(onlyA, "; "))
	}
	if len(onlyB) > 0 {
		fmt.Fprintf(stdout, "only in B (%s): %s\n", dirB, strings.Join(onlyB, "; "))
	}
	switch benchstat {
	case "":
		return nil
	case "-":
		return reports.Benchstat(stdout, dirA, dirB, a, b, shared)
	}
	if err := harness.WriteFileAtomic(benchstat, func(w io.Writer) error {
		return reports.Benchstat(w, dirA, dirB, a, b, shared)
	}); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	fmt.Fprintf(stderr, "wrote %s (compare with: benchstat -col results %s)\n", benchstat, benchstat)
	return nil
}

// compareFlagSet returns the flag set of `arbench compare` for help.
func compareFlagSet(w io.Writer) *flag.FlagSet {
	var s string
	return compareFlags(w, &s)
}
