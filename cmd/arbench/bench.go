package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"

	"arbench/bench"
	"arbench/harness"
	"arbench/nn"
)

// benchFlags are the flags of `arbench bench`.
type benchFlags struct {
	fs                                   *flag.FlagSet
	config, models, out, backend, device string
	cpuProfile                           string
	seed                                 uint64
	repeats, warmup                      int
	minSeconds                           float64
	noCache, quiet                       bool
}

func newBenchFlags(w io.Writer) *benchFlags {
	f := &benchFlags{fs: flag.NewFlagSet("bench", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(w)
	fs.StringVar(&f.config, "config", "", "experiment `FILE` whose models (and bench: section) to measure")
	fs.StringVar(&f.models, "model", "", "comma-separated model `LIST` (default rnn,lstm,transformer; with -config, selects entries by label or family)")
	fs.StringVar(&f.out, "out", "", "output `DIR` (default the experiment's out, or results/bench)")
	fs.StringVar(&f.backend, "backend", "", "backend `NAME` (default the experiment's, or "+harness.DefaultBackend+")")
	fs.StringVar(&f.device, "device", "", "`DEVICE` to run on (default the experiment's, or "+harness.DefaultDevice+")")
	fs.Uint64Var(&f.seed, "seed", 1, "seed `N` for the parameters and the random tokens")
	fs.IntVar(&f.repeats, "repeats", 0, "timed repeats `N` per point (overrides bench.repeats)")
	fs.IntVar(&f.warmup, "warmup", -1, "untimed warm-up runs `N` per point (overrides bench.warmup)")
	fs.Float64Var(&f.minSeconds, "min-seconds", -1, "each training/scoring repeat runs for at least `SECONDS` (overrides bench.min_seconds)")
	fs.BoolVar(&f.noCache, "no-cache", false, "generate with the re-feeding loop (the whole sequence rerun for every token) instead of carried state / key-value cache")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to `FILE` (go tool pprof)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress output")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: arbench bench [-config FILE] [-model LIST] [flags]

Measures training and scoring tokens/s over sequence lengths and batch sizes,
generation latency (time to first token, per-token p50/p90/p99) and tokens/s
over output lengths, peak memory, FLOPs per token, achieved GFLOP/s and their
fraction of a matrix-multiply ceiling measured at startup. The sweeps come
from the experiment's bench: section (defaults without one). Writes
OUT/bench.json, OUT/bench.md (tables), OUT/bench.txt (Go benchmark format,
for benchstat) and OUT/charts/*.{png,svg}.

Flags:
`)
		fs.PrintDefaults()
	}
	return f
}

// benchSetup resolves the flags into bench options and the output directory.
func (f *benchFlags) setup() (bench.Options, string, error) {
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	opt := bench.Options{Name: "bench", Seed: f.seed, NoCache: f.noCache}
	backend, device, out := harness.DefaultBackend, harness.DefaultDevice, "results/bench"
	if f.config != "" {
		e, err := harness.LoadExperiment(f.config)
		if err != nil {
			return opt, "", err
		}
		if set["model"] {
			if err := selectModels(e, f.config, splitList(f.models)); err != nil {
				return opt, "", err
			}
		}
		opt.Name, opt.Models, opt.Config = e.Name, e.Models, e.Bench
		backend, device, out = e.Backend, e.Device, e.Out
	} else {
		names := splitList(f.models)
		if len(names) == 0 {
			names = []string{"rnn", "lstm", "transformer"}
		}
		for _, n := range names {
			m, err := harness.NewModel(n)
			if err != nil {
				return opt, "", fmt.Errorf("-model: %w", err)
			}
			if errs := m.Config().Validate(); len(errs) > 0 {
				return opt, "", fmt.Errorf("model %s: default config: %w", n, errors.Join(errs...))
			}
			opt.Models = append(opt.Models, harness.ModelSpec{Name: n, Label: n, Config: m.Config(), Train: harness.DefaultTrain()})
		}
	}
	if opt.Config == nil {
		opt.Config = harness.DefaultBench()
	}
	if set["repeats"] {
		opt.Config.Repeats = f.repeats
	}
	if set["warmup"] {
		opt.Config.Warmup = f.warmup
	}
	if set["min-seconds"] {
		opt.Config.MinSeconds = f.minSeconds
	}
	if errs := opt.Config.Validate(); len(errs) > 0 {
		return opt, "", fmt.Errorf("bench configuration: %w", errors.Join(errs...))
	}
	if set["backend"] {
		backend = f.backend
	}
	if set["device"] {
		device = f.device
	}
	if set["out"] {
		out = f.out
	}
	b, err := nn.OpenBackend(backend, device)
	if err != nil {
		return opt, "", fmt.Errorf("open backend: %w", err)
	}
	opt.Backend = b
	return opt, out, nil
}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f := newBenchFlags(stderr)
	if done, err := parseFlags(f.fs, args); done {
		return err
	}
	opt, out, err := f.setup()
	if err != nil {
		return err
	}
	if !f.quiet {
		opt.Log = stderr
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, runErr := bench.Run(ctx, opt)
	if rep == nil {
		return runErr
	}
	files, err := bench.Write(out, rep)
	if err != nil {
		return errors.Join(runErr, err)
	}
	if err := bench.WriteMarkdown(stdout, rep); err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(stdout, "\nwrote %s, %s, %s and %d chart files in %s\n", bench.JSONFileName, bench.MarkdownFileName,
		bench.BenchstatFileName, len(files)-3, filepath.Join(out, bench.ChartsDir))
	return runErr
}
