package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"

	"arbench/datasets"
	"arbench/harness"
	"arbench/nn"
)

func versionString() string {
	return fmt.Sprintf("arbench %s (%s %s/%s)", harness.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// flagSets returns the flag set of each command, for `arbench help COMMAND`.
func flagSets(w io.Writer) map[string]*flag.FlagSet {
	simple := func(name, text string) *flag.FlagSet {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(w)
		fs.Usage = func() { fmt.Fprint(fs.Output(), text) }
		return fs
	}
	return map[string]*flag.FlagSet{
		"run":       newRunFlags(w).fs,
		"plan":      newPlanFlags(w).fs,
		"merge":     newMergeFlags(w).fs,
		"slurm":     newSlurmFlags(w).fs,
		"generate":  newGenFlags(w).fs,
		"report":    reportFlags(w),
		"bench":     newBenchFlags(w).fs,
		"reproduce": newReproduceFlags(w).fs,
		"compare":   compareFlagSet(w),
		"list":      simple("list", "Usage: arbench list\n\nLists the registered models, tasks and backends and the built-in datasets.\n"),
		"fetch":     fetchFlags(w),
		"version":   simple("version", "Usage: arbench version\n"),
	}
}

func cmdList(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "Usage: arbench list")
		return errUsage
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	section := func(title string, items []harness.Registered) {
		fmt.Fprintf(tw, "%s:\n", title)
		for _, it := range items {
			fmt.Fprintf(tw, "  %s\t%s\n", it.Name, it.Description)
		}
	}
	section("Models", harness.Models())
	named, errs := harness.NamedConfigs()
	for _, err := range errs {
		named = append(named, harness.Registered{Name: "(error)", Description: err.Error()})
	}
	if len(named) > 0 {
		section("Configured models (FAMILY:NAME)", named)
	}
	section("Tasks", harness.Tasks())
	var backends []harness.Registered
	for _, b := range nn.Backends() {
		backends = append(backends, harness.Registered{Name: b})
	}
	section("Backends", backends)
	var sets []harness.Registered
	dir := datasets.Dir()
	for _, n := range datasets.Names() {
		desc := datasets.Describe(n)
		if datasets.Cached(n, dir) {
			desc += " [cached]"
		} else {
			desc += " [not fetched: arbench fetch " + n + "]"
		}
		sets = append(sets, harness.Registered{Name: n, Description: desc})
	}
	section("Datasets", sets)
	return tw.Flush()
}

func fetchFlags(w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: arbench fetch NAME...\n\nDownloads, verifies (SHA-256) and caches datasets in $%s (default ./data).\nDatasets: %s\n",
			datasets.EnvDir, strings.Join(datasets.Names(), ", "))
	}
	return fs
}

func cmdFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := fetchFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	dir := datasets.Dir()
	for _, name := range fs.Args() {
		if err := datasets.Fetch(ctx, name, dir, stderr); err != nil {
			return fmt.Errorf("fetch %s: %w", name, err)
		}
		p, err := datasets.Path(name, dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s\n", name, p)
	}
	return nil
}
