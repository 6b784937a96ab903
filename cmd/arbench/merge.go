package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"arbench/harness"
	"arbench/reports"
)

// mergeFlags are the flags of `arbench merge`.
type mergeFlags struct {
	fs                *flag.FlagSet
	out               string
	overwrite, status bool
}

func newMergeFlags(w io.Writer) *mergeFlags {
	f := &mergeFlags{fs: newFlagSet("merge", w)}
	f.fs.StringVar(&f.out, "out", "", "write the merged results to `DIR` (an ordinary results directory)")
	f.fs.BoolVar(&f.overwrite, "overwrite", false, "replace results in -out DIR that are not an earlier merge's")
	f.fs.BoolVar(&f.status, "status", false, "only report the progress of the sweep; write nothing")
	f.fs.Usage = func() {
		fmt.Fprintf(f.fs.Output(), `Usage: arbench merge -out DIR [-overwrite] SHARD_DIR...
       arbench merge -status SHARD_DIR...

Combines the results directories of an experiment's shards (arbench run
-shard I/N writes OUT/shards/I-of-N) into DIR, an ordinary results directory
(results.json, samples.jsonl, the report) that report, compare and
reproduce read like any other. Refuses, naming the directory and what
differs, shards of another experiment (name or resolved configuration),
another arbench version or other data, runs that are not the experiment's
or not their shard's, and a run found twice with different metrics (time
and speed metrics aside); a run found twice with equal metrics is kept
once. DIR is written atomically under its lock; it may hold an earlier
merge, which is replaced. Prints runs done out of total, every shard's
done/failed/missing runs and every run's status (done, diverged, failed:
recorded as failed by its shard, missing: in no directory). Exits 1 when
runs are failed or missing (DIR is written all the same: rerun those
shards with -resume and merge again). -status prints the same and writes
nothing; a shard still running is then reported, not refused.

Flags:
`)
		f.fs.PrintDefaults()
	}
	return f
}

func cmdMerge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newMergeFlags(stderr)
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	switch {
	case f.fs.NArg() == 0:
		f.fs.Usage()
		return errUsage
	case f.status && f.out != "":
		return usageErrorf("merge: -status writes nothing; drop -out (or -status)")
	case !f.status && f.out == "":
		return usageErrorf("merge: -out DIR is required (or -status to only report the progress)")
	}
	opt := harness.MergeOptions{
		Out:         f.out,
		Overwrite:   f.overwrite,
		Report:      reports.Markdown,
		CommandLine: append([]string{"arbench", "merge"}, args...),
		Finish: func(dir string, rf *harness.ResultsFile) error {
			_, err := reports.WriteReport(dir, rf)
			return err
		},
	}
	m, err := harness.Merge(ctx, f.fs.Args(), opt)
	if m != nil {
		for _, w := range m.Warnings {
			fmt.Fprintf(stderr, "arbench merge: warning: %s\n", w)
		}
		if perr := printMerge(stdout, m); perr != nil {
			return perr
		}
	}
	if err != nil || f.status {
		return err
	}
	return mergeOutcome(stderr, m)
}

// mergeOutcome says where the merge went and fails when it is incomplete.
func mergeOutcome(stderr io.Writer, m *harness.Merged) error {
	fmt.Fprintf(stderr, "merged %d run(s) of %s into %s\n", len(m.Results.Runs), m.Name, m.Dir)
	if m.Complete() {
		return nil
	}
	return fmt.Errorf("merge: %s is incomplete: %d of %d run(s) failed and %d missing; rerun their shards (arbench run -shard I/N -resume) and merge again",
		m.Dir, m.Count(harness.RunFailed), len(m.Runs), m.Count(harness.RunMissing))
}

// printMerge writes the progress of the sweep: the totals, a table of the
// shards and one of the runs, and the failures.
func printMerge(w io.Writer, m *harness.Merged) error {
	done := m.Count(harness.RunDone) + m.Count(harness.RunDiverged)
	fmt.Fprintf(w, "experiment %s: %d of %d run(s) done (%d diverged), %d failed, %d missing", m.Name, done, len(m.Runs),
		m.Count(harness.RunDiverged), m.Count(harness.RunFailed), m.Count(harness.RunMissing))
	if m.Duplicates > 0 {
		fmt.Fprintf(w, "; %d found in several directories, kept once", m.Duplicates)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nshard\tstate\truns\tdone\tfailed\tmissing\tdirectories")
	for _, p := range m.Shards {
		dirs := strings.Join(p.Dirs, ", ")
		if dirs == "" {
			dirs = "-"
		}
		if p.Running != "" {
			dirs += " (being written by " + p.Running + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", p.Shard, p.State(), p.Runs, p.Done, p.Failed, p.Missing, dirs)
	}
	fmt.Fprintln(tw, "\nrun id\tshard\tstatus\ttask\tmodel\tseed\tfrom")
	for _, r := range m.Runs {
		from := r.Dir
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Shard, m.ShardCount, r.Status, r.Key.Task, r.Key.Model, r.Key.Seed, from)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range m.Runs {
		if r.Status == harness.RunFailed {
			fmt.Fprintf(w, "failed: %s (%s): %s\n", r.ID, r.Key, r.Error)
		}
	}
	return nil
}
