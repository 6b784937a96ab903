// Command arbench benchmarks generative sequence models.
//
//	arbench list                          models, tasks, backends, datasets
//	arbench run -model rnn,lstm -task text/jargon [-steps N] ...
//	arbench run -config experiments/quick.yaml [-steps N] [-shard I/N] ...
//	arbench plan -config FILE [-shards N] [-json]   the runs, their ids and shards
//	arbench merge -out DIR SHARD_DIR...   combine shards' results (-status: progress)
//	arbench slurm -config FILE [-shards N] [-parallel K] ...   the shards as a Slurm job array, followed and merged
//	arbench fetch NAME...                 download and verify datasets
//	arbench generate -model M -load-weights FILE -prompt TEXT [...]
//	arbench report DIR                    tables, report.md/.html, CSVs and plots from DIR/results.json
//	arbench reproduce DIR                 rerun DIR's experiment and compare every metric
//	arbench compare DIR_A DIR_B           shared metrics side by side (and for benchstat)
//	arbench bench [flags]                 throughput, latency, memory and FLOPs
//	arbench version
//
// Run `arbench help COMMAND` for a command's flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"arbench/harness"

	// Backends, models and tasks register themselves in init.
	_ "arbench/nn/gorgonia"
	_ "arbench/plugins/all"
	_ "arbench/tasks/all"
)

func main() {
	// Keep the Go heap within the machine's memory, which the experiment
	// check's estimates are measured against (unless GOMEMLIMIT is set).
	harness.LimitHeap()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal cancels ctx (finished results are kept); from
		// then on the default handling is back, so a second Ctrl-C ends a
		// process stuck where it cannot see ctx.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		report(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// Exit statuses besides 0 (success) and 1 (any other failure).
const (
	// exitUsage: a command-line mistake, explained with the usage.
	exitUsage = 2
	// exitDiverged: every run was attempted and some diverged; the others'
	// results were written.
	exitDiverged = 3
)

// exitCode maps run's error to the process's exit status.
func exitCode(err error) int {
	var rp *harness.RunProblems
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.As(err, &rp) && len(rp.Diverged) > 0 && len(rp.Problems) == 0:
		return exitDiverged
	}
	return 1
}

// report describes run's error on w (usage errors were already described).
func report(w io.Writer, err error) {
	var ce harness.ConfigErrors
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(w, "arbench: %v\n", err)
	case errors.Is(err, errUsage):
	case errors.As(err, &ce):
		fmt.Fprintf(w, "arbench: invalid experiment (%d problem(s)):\n%v\n", len(ce), err)
	default:
		fmt.Fprintf(w, "arbench: %v\n", err)
	}
}

// errUsage reports a command-line mistake that was already described on
// stderr together with the usage.
var errUsage = errors.New("usage error")

// usageError is a command-line mistake described by its message; it exits
// with exitUsage like errUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// Is makes errors.Is(err, errUsage) true for a usageError.
func (e *usageError) Is(target error) bool { return target == errUsage }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

const usage = `arbench benchmarks generative sequence models.

Usage:
  arbench list                      list models, tasks, backends and datasets
  arbench run [flags]               train and evaluate models on tasks (-shard I/N: one shard of them)
  arbench plan [flags]              list the runs of an experiment with their ids and shards (-shards N)
  arbench merge -out DIR DIR...     merge the results of an experiment's shards (-status: progress only)
  arbench slurm [flags]             run the shards as a Slurm job array, follow them and merge (-resubmit, -follow)
  arbench fetch NAME...             download and verify datasets into $ARBENCH_DATA (default ./data)
  arbench generate [flags]          generate text with a trained model
  arbench report DIR                print the tables; write report.md, report.html, CSVs and plots into DIR
  arbench reproduce DIR             rerun DIR's experiment from its manifest and compare every metric
  arbench compare DIR_A DIR_B       compare the metrics of two results directories (-benchstat FILE)
  arbench bench [flags]             measure throughput, latency, memory and FLOPs (-config FILE)
  arbench version                   print the version
  arbench help [COMMAND]            show help (flags of COMMAND)
`

// run is the whole program; main only supplies the process's context,
// arguments and streams.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "list":
		return cmdList(rest, stdout, stderr)
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "plan":
		return cmdPlan(ctx, rest, stdout, stderr)
	case "merge":
		return cmdMerge(ctx, rest, stdout, stderr)
	case "slurm":
		return cmdSlurm(ctx, rest, stdout, stderr)
	case "fetch":
		return cmdFetch(ctx, rest, stdout, stderr)
	case "generate":
		return cmdGenerate(ctx, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr)
	case "report":
		return cmdReport(rest, stdout, stderr)
	case "reproduce":
		return cmdReproduce(ctx, rest, stdout, stderr)
	case "compare":
		return cmdCompare(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "-help", "--help":
		return cmdHelp(rest, stdout, stderr)
	}
	fmt.Fprintf(stderr, "arbench: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

func cmdHelp(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	fs, ok := flagSets(stdout)[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "arbench: no help for %q\n\n%s", args[0], usage)
		return errUsage
	}
	fs.SetOutput(stdout)
	fs.Usage()
	return nil
}
