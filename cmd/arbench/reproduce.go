package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"arbench/datasets"
	"arbench/harness"
	"arbench/reports"
)

// reproduceFlags are the flags of `arbench reproduce`.
type reproduceFlags struct {
	fs               *flag.FlagSet
	out              string
	rtol, atol       float64
	quiet, overwrite bool
}

func newReproduceFlags(w io.Writer) *reproduceFlags {
	f := &reproduceFlags{fs: flag.NewFlagSet("reproduce", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(w)
	fs.StringVar(&f.out, "out", "", "write the rerun's results to `DIR` (default: a temporary directory, removed when everything agrees)")
	fs.Float64Var(&f.rtol, "rtol", -1, "relative tolerance `R` (default: exact for deterministic backends such as gorgonia on the CPU, else 1e-3)")
	fs.Float64Var(&f.atol, "atol", -1, "absolute tolerance `A` (default 0)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress output")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace the results already in -out DIR")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: arbench reproduce [flags] DIR

Reruns the experiment stored in DIR/results.json exactly as recorded in its
manifest (resolved configuration, seeds, backend, device; only the runs the
file holds) and compares every metric with the stored value:
|rerun - stored| <= atol + rtol*|stored|. Time and speed metrics are not
compared. Exits 0 when everything agrees; otherwise prints the drifted
metrics and exits 1. Refuses to run when a dataset recorded in the manifest
no longer has its recorded SHA-256 checksum.

Flags:
`)
		fs.PrintDefaults()
	}
	return f
}

func cmdReproduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newReproduceFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if f.fs.NArg() != 1 {
		f.fs.Usage()
		return errUsage
	}
	dir := f.fs.Arg(0)
	opt := harness.ReproduceOptions{
		Out:         f.out,
		Overwrite:   f.overwrite,
		DataDir:     datasets.Dir(),
		Report:      reports.Markdown,
		CommandLine: append([]string{"arbench", "reproduce"}, args...),
	}
	if f.rtol >= 0 || f.atol >= 0 {
		opt.Tolerance = &harness.Tolerance{Rel: max(f.rtol, 0), Abs: max(f.atol, 0)}
	}
	if !f.quiet {
		opt.Log = stderr
		opt.Bars = isTerminal(stderr)
	}
	rep, err := harness.Reproduce(ctx, dir, opt)
	if err != nil {
		return err
	}
	compared, skipped := 0, 0
	for _, c := range rep.Checks {
		if c.Status == harness.CheckTiming {
			skipped++
		} else {
			compared++
		}
	}
	what := fmt.Sprintf("%d metric(s) of %d run(s), tolerance %s", compared, len(rep.Stored.Runs), rep.Tolerance)
	if skipped > 0 {
		what += fmt.Sprintf("; %d timing metric(s) not compared", skipped)
	}
	if rep.OK() {
		fmt.Fprintf(stdout, "reproduced %s: all agree\n", what)
		if !rep.Removed {
			fmt.Fprintf(stderr, "rerun results: %s\n", rep.Dir)
		}
		return nil
	}
	drifts := rep.Drifts()
	if len(drifts) > 0 {
		if err := reports.DriftTable(stdout, drifts); err != nil {
			return err
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stdout, "%s\n", p)
	}
	fmt.Fprintf(stderr, "rerun results: %s\n", rep.Dir)
	var names []string
	for _, d := range drifts {
		names = append(names, fmt.Sprintf("%s (%s, %s)", d.Metric, d.Key, d.Status))
	}
	if len(names) == 0 {
		return fmt.Errorf("reproduce: compared %s; metrics agree but %d other difference(s): %s", what, len(rep.Problems), strings.Join(rep.Problems, "; "))
	}
	return fmt.Errorf("reproduce: compared %s; %d metric(s) differ: %s", what, len(drifts), strings.Join(names, ", "))
}
