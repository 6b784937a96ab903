package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/term"

	"arbench/datasets"
	"arbench/harness"
	"arbench/reports"
)

// runFlags are the flags of `arbench run`; `arbench plan` shares those
// that shape the experiment (addExperimentFlags).
type runFlags struct {
	fs                                *flag.FlagSet
	config, name, models, tasks, data string
	out, backend, device, seeds       string
	saveWeights, loadWeights, shard   string
	steps, batch                      int
	lr                                float64
	seed                              uint64
	quiet, resume, overwrite          bool
}

func newRunFlags(w io.Writer) *runFlags {
	f := &runFlags{fs: flag.NewFlagSet("run", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(w)
	f.addExperimentFlags()
	fs.BoolVar(&f.quiet, "quiet", false, "no progress output")
	fs.StringVar(&f.saveWeights, "save-weights", "", "save each trained model to `DIR`/<task>-<model>-seed<N>.safetensors")
	fs.StringVar(&f.loadWeights, "load-weights", "", "initialise models from `PATH`: a .safetensors file, or a directory holding "+
		"<task>-<model>-seed<N>.safetensors or <model>.safetensors")
	fs.BoolVar(&f.resume, "resume", false, "skip the runs already in OUT/results.json (their configuration must be unchanged)")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace the results already in OUT (without it, or -resume, an OUT holding results is refused)")
	fs.StringVar(&f.shard, "shard", "", "run only shard `I/N` (0-based) of the experiment's runs, into OUT/shards/I-of-N (see arbench plan, arbench merge)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: arbench run (-config FILE | -model LIST -task LIST) [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return f
}

// addExperimentFlags registers the flags that make the experiment.
func (f *runFlags) addExperimentFlags() {
	fs := f.fs
	fs.StringVar(&f.config, "config", "", "experiment `FILE` (YAML); other flags given explicitly override it")
	fs.StringVar(&f.name, "name", "cli", "experiment `NAME` (without -config); the default output is results/NAME")
	fs.StringVar(&f.models, "model", "", "comma-separated model `LIST`; with -config, selects entries by label or family")
	fs.StringVar(&f.tasks, "task", "", "comma-separated task `LIST` (family/variant, e.g. text/jargon); with -config, selects tasks")
	fs.StringVar(&f.data, "data", "", "local data `FILE` used by every task instead of its built-in corpus")
	fs.IntVar(&f.steps, "steps", 0, "training steps `N` (0 evaluates without training)")
	fs.IntVar(&f.batch, "batch", 0, "training batch size `N`")
	fs.Float64Var(&f.lr, "lr", 0, "learning `RATE`")
	fs.Uint64Var(&f.seed, "seed", 0, "run with the single seed `N`")
	fs.StringVar(&f.seeds, "seeds", "", "run with each seed of the comma-separated `LIST`")
	fs.StringVar(&f.out, "out", "", "output `DIR` (default results/NAME)")
	fs.StringVar(&f.backend, "backend", "", "backend `NAME` (default "+harness.DefaultBackend+")")
	fs.StringVar(&f.device, "device", "", "`DEVICE` to run on (default "+harness.DefaultDevice+")")
}

// parseFlags parses args; -h prints the usage and is not an error.
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return true, errUsage
	}
	return false, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// experiment builds the experiment of `arbench run` from the flags.
func (f *runFlags) experiment() (*harness.Experiment, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var e *harness.Experiment
	var err error
	if f.config != "" {
		if e, err = harness.LoadExperiment(f.config); err != nil {
			return nil, err
		}
		if set["model"] {
			if err := selectModels(e, f.config, splitList(f.models)); err != nil {
				return nil, err
			}
		}
		if set["task"] {
			if err := selectTasks(e, f.config, splitList(f.tasks)); err != nil {
				return nil, err
			}
		}
		if set["data"] {
			for i := range e.Tasks {
				e.Tasks[i].Data = f.data
			}
		}
		if set["name"] {
			if e.Out == "results/"+e.Name {
				e.Out = "results/" + f.name
			}
			e.Name = f.name
		}
	} else {
		if f.models == "" || f.tasks == "" {
			return nil, usageErrorf("run needs -config FILE, or -model LIST and -task LIST (see arbench help run)")
		}
		if e, err = harness.NewExperiment(f.name, splitList(f.tasks), splitList(f.models), f.data); err != nil {
			return nil, err
		}
	}
	if set["steps"] {
		e.SetTrain(func(c *harness.TrainConfig) { c.Steps = f.steps })
	}
	if set["batch"] {
		e.SetTrain(func(c *harness.TrainConfig) { c.Batch = f.batch })
	}
	if set["lr"] {
		e.SetTrain(func(c *harness.TrainConfig) { c.LR = f.lr })
	}
	switch {
	case set["seed"] && set["seeds"]:
		return nil, usageErrorf("-seed and -seeds are mutually exclusive")
	case set["seed"]:
		e.Seeds = []uint64{f.seed}
	case set["seeds"]:
		e.Seeds = nil
		for _, s := range splitList(f.seeds) {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, usageErrorf("-seeds: %q is not a non-negative integer", s)
			}
			e.Seeds = append(e.Seeds, v)
		}
	}
	if set["out"] {
		e.Out = f.out
	}
	if set["backend"] {
		e.Backend = f.backend
	}
	if set["device"] {
		e.Device = f.device
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return e, nil
}

// selectModels keeps the entries named (by label, else by family).
func selectModels(e *harness.Experiment, file string, names []string) error {
	keep, err := selectByName("-model", "model", file, e.Models, names,
		func(m harness.ModelSpec) string { return m.Label }, func(m harness.ModelSpec) string { return m.Name })
	if err == nil {
		e.Models = keep
	}
	return err
}

// selectTasks keeps the tasks named.
func selectTasks(e *harness.Experiment, file string, names []string) error {
	keep, err := selectByName("-task", "task", file, e.Tasks, names, func(t harness.TaskSpec) string { return t.Name })
	if err == nil {
		e.Tasks = keep
	}
	return err
}

// selectByName keeps, for each name in order, the entries whose first key
// equals it, or failing that those whose next key does; a name that matches
// nothing is an error attributed to flag, listing the entries' first keys.
func selectByName[T any](flag, kind, file string, entries []T, names []string, keys ...func(T) string) ([]T, error) {
	var keep []T
	for _, n := range names {
		found := false
		for _, key := range keys {
			for _, e := range entries {
				if key(e) == n {
					keep, found = append(keep, e), true
				}
			}
			if found {
				break
			}
		}
		if !found {
			have := make([]string, len(entries))
			for i, e := range entries {
				have[i] = keys[0](e)
			}
			return nil, fmt.Errorf("%s: %q is not a %s of %s (it has: %s)", flag, n, kind, file, strings.Join(have, ", "))
		}
	}
	return keep, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newRunFlags(stderr)
	if done, err := parseFlags(f.fs, args); done {
		return err
	}
	if f.resume && f.overwrite {
		return usageErrorf("-resume and -overwrite are mutually exclusive")
	}
	var shard *harness.Shard
	if f.shard != "" {
		sh, err := harness.ParseShard(f.shard)
		if err != nil {
			return usageErrorf("-shard: %v", err)
		}
		shard = &sh
	}
	e, err := f.experiment()
	if err != nil {
		return err
	}
	out := e.Out
	if shard != nil {
		out = harness.ShardDir(e.Out, *shard)
	}
	opt := harness.RunOptions{
		SaveWeights: f.saveWeights,
		LoadWeights: f.loadWeights,
		Resume:      f.resume,
		Overwrite:   f.overwrite,
		Shard:       shard,
		DataDir:     datasets.Dir(),
		Report:      reports.Markdown,
		CommandLine: append([]string{"arbench", "run"}, args...),
		// The full report, as `arbench report` renders it (figures,
		// report.html and the CSVs besides report.md), written while the
		// output directory is still locked.
		Finish: func(dir string, rf *harness.ResultsFile) error {
			_, err := reports.WriteReport(dir, rf)
			return err
		},
	}
	if !f.quiet {
		opt.Log = stderr
		opt.Bars = isTerminal(stderr)
	}
	rf, err := harness.Run(ctx, e, opt)
	if rf != nil {
		if terr := reports.Table(stdout, rf, reports.TableOptions{Width: reports.TerminalWidth(stdout)}); terr != nil {
			err = errors.Join(err, terr)
		}
		if !f.quiet {
			fmt.Fprintf(stderr, "results: %s (report: %s, %s)\n", filepath.Join(out, harness.ResultsFileName),
				filepath.Join(out, harness.ReportFileName), filepath.Join(out, reports.HTMLFileName))
		}
	}
	return err
}
