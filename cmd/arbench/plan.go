package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"arbench/harness"
)

// planFlags are the flags of `arbench plan`: the experiment's (as for
// run), the shard count and the output format.
type planFlags struct {
	*runFlags
	shards int
	json   bool
}

func newPlanFlags(w io.Writer) *planFlags {
	f := &planFlags{runFlags: &runFlags{}}
	f.fs = newFlagSet("plan", w)
	f.addExperimentFlags()
	f.fs.IntVar(&f.shards, "shards", 1, "split the runs into `N` shards (arbench run -shard I/N runs shard I)")
	f.fs.BoolVar(&f.json, "json", false, "print the plan as JSON")
	f.fs.Usage = func() {
		fmt.Fprintf(f.fs.Output(), `Usage: arbench plan (-config FILE | -model LIST -task LIST) [-shards N] [-json] [flags]

Lists the runs of the experiment without running anything: each run's id
(a hash of its task, model, seed and resolved configuration, the same on
every machine), task, model, seed and shard among N. The k-th run in the
order of the sorted ids belongs to shard k mod N; arbench run -shard I/N
(with the same experiment flags) runs shard I into OUT/shards/I-of-N.

Flags:
`)
		f.fs.PrintDefaults()
	}
	return f
}

// planJSON is the output of `arbench plan -json`.
type planJSON struct {
	Experiment string        `json:"experiment"`
	Out        string        `json:"out"`
	Shards     int           `json:"shards"`
	Runs       []planRunJSON `json:"runs"`
}

type planRunJSON struct {
	RunID string `json:"run_id"`
	Task  string `json:"task"`
	Model string `json:"model"`
	Seed  uint64 `json:"seed"`
	Shard int    `json:"shard"`
	// Dir is the shard's results directory (the experiment's out when N
	// is 1).
	Dir string `json:"dir"`
}

func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newPlanFlags(stderr)
	if done, err := parseFlags(f.fs, args); done {
		return err
	}
	if f.shards < 1 || f.shards > harness.MaxShards {
		return usageErrorf("-shards: must be in 1..%d, got %d", harness.MaxShards, f.shards)
	}
	e, err := f.experiment()
	if err != nil {
		return err
	}
	runs, err := harness.PlanRuns(ctx, e, f.shards)
	if err != nil {
		return err
	}
	doc := planJSON{Experiment: e.Name, Out: e.Out, Shards: f.shards, Runs: []planRunJSON{}}
	for _, r := range runs {
		dir := e.Out
		if f.shards > 1 {
			dir = harness.ShardDir(e.Out, harness.Shard{Index: r.Shard, Count: f.shards})
		}
		doc.Runs = append(doc.Runs, planRunJSON{RunID: r.ID, Task: r.Key.Task, Model: r.Key.Model, Seed: r.Key.Seed, Shard: r.Shard, Dir: dir})
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	return printPlan(stdout, doc)
}

// printPlan writes the plan as a table.
func printPlan(w io.Writer, doc planJSON) error {
	fmt.Fprintf(w, "experiment %s: %d run(s) in %d shard(s)\n", doc.Experiment, len(doc.Runs), doc.Shards)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "run id\tshard\ttask\tmodel\tseed\tdirectory")
	for _, r := range doc.Runs {
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%d\t%s\n", r.RunID, r.Shard, doc.Shards, r.Task, r.Model, r.Seed, r.Dir)
	}
	return tw.Flush()
}

// newFlagSet is a flag set that reports to w and returns parse errors.
func newFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}
