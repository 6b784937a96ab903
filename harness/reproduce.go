package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"arbench/nn"
)

// Tolerance bounds how far a reproduced metric may differ from the stored
// one: |rerun − stored| <= Abs + Rel·|stored|. The zero Tolerance is exact:
// the values must be bitwise equal (NaN agrees with NaN).
type Tolerance struct {
	Rel, Abs float64
}

// Exact reports whether t demands bitwise equality.
func (t Tolerance) Exact() bool { return t.Rel == 0 && t.Abs == 0 }

// Agree reports whether rerun is within t of stored.
func (t Tolerance) Agree(stored, rerun float64) bool {
	if math.IsNaN(stored) || math.IsNaN(rerun) {
		return math.IsNaN(stored) && math.IsNaN(rerun)
	}
	if t.Exact() || math.IsInf(stored, 0) || math.IsInf(rerun, 0) {
		return math.Float64bits(stored) == math.Float64bits(rerun) || stored == rerun
	}
	return math.Abs(rerun-stored) <= t.Abs+t.Rel*math.Abs(stored)
}

func (t Tolerance) String() string {
	if t.Exact() {
		return "exact"
	}
	return fmt.Sprintf("rel %g, abs %g", t.Rel, t.Abs)
}

// Deterministic is an optional interface of nn.Backend: a backend that
// returns true promises bitwise identical results for identical programs,
// inputs and seeds on the same machine, and reproduce then demands exact
// agreement.
type Deterministic interface {
	Deterministic() bool
}

// NondeterministicTolerance is the default tolerance for backends not known
// to be deterministic (GPU reductions with atomics, multi-threaded BLAS):
// 0.1% relative, which float32 training noise of a few hundred steps stays
// within while real regressions do not.
func NondeterministicTolerance() Tolerance { return Tolerance{Rel: 1e-3} }

// DefaultTolerance is exact for backends that implement Deterministic and
// report true (the gorgonia backend: fixed reduction order, seeded dropout;
// the end-to-end tests check same seed ⇒ identical metrics), and
// NondeterministicTolerance otherwise.
func DefaultTolerance(b nn.Backend) Tolerance {
	if d, ok := b.(Deterministic); ok {
		if d.Deterministic() {
			return Tolerance{}
		}
		return NondeterministicTolerance()
	}
	return NondeterministicTolerance()
}

// IsTimingUnit reports whether a metric with this unit measures time or
// speed (seconds, ".../s"), which no rerun reproduces; reproduce skips such
// metrics.
func IsTimingUnit(unit string) bool {
	switch strings.TrimSpace(unit) {
	case "s", "sec", "seconds", "ms", "us", "µs", "ns", "ns/op", "sec/op":
		return true
	}
	return strings.HasSuffix(unit, "/s") || strings.HasSuffix(unit, "/sec")
}

// DatasetError reports a dataset whose file no longer matches the checksum
// recorded in the manifest.
type DatasetError struct {
	Dataset DatasetRef
	// Got is the file's SHA-256 now; empty when it could not be read.
	Got string
	// Err is the read error, if any.
	Err error
}

func (e *DatasetError) Error() string {
	d := e.Dataset
	if e.Got == "" {
		return fmt.Sprintf("dataset %q: cannot read %s, recorded in the manifest: %v; refusing to reproduce (run from the directory the experiment ran in, or restore the file)",
			d.Name, d.Path, e.Err)
	}
	return fmt.Sprintf("dataset %q (%s) differs from the one the results were produced with: sha256 %s, manifest records %s; refusing to reproduce (restore the original data; built-in corpora: arbench fetch %s)",
		d.Name, d.Path, e.Got, d.SHA256, d.Name)
}

func (e *DatasetError) Unwrap() error { return e.Err }

// fileSHA256 returns the hex SHA-256 of a file's content.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CheckDatasets re-hashes every dataset file of refs that exists and
// returns a *DatasetError for the first whose SHA-256 differs. Files that
// are missing are left to the rerun (a task may find its data elsewhere,
// e.g. under another $ARBENCH_DATA); Reproduce compares the checksums the
// rerun records with the stored ones by dataset name.
func CheckDatasets(refs []DatasetRef) error {
	for _, d := range refs {
		got, err := fileSHA256(d.Path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return &DatasetError{Dataset: d, Err: err}
		}
		if got != d.SHA256 {
			return &DatasetError{Dataset: d, Got: got}
		}
	}
	return nil
}

// ReproduceOptions configure Reproduce.
type ReproduceOptions struct {
	// Out is the directory the rerun writes its results to. Empty uses a
	// new temporary directory, removed again when everything agrees. It may
	// not be the directory being reproduced, and results already in it are
	// refused unless Overwrite is set.
	Out string
	// Overwrite replaces results already in Out.
	Overwrite bool
	// DataDir is the dataset cache directory passed to tasks.
	DataDir string
	// Tolerance overrides DefaultTolerance of the stored backend.
	Tolerance *Tolerance
	// Log, Bars and Report are passed to Run (see RunOptions).
	Log    io.Writer
	Bars   bool
	Report func(w io.Writer, rf *ResultsFile) error
	// CommandLine is recorded in the rerun's manifest.
	CommandLine []string
}

// Check statuses.
const (
	CheckOK      = "ok"
	CheckDrift   = "drift"
	CheckMissing = "missing"
	// CheckTiming marks a time or speed metric, which is not compared.
	CheckTiming = "not compared (timing)"
)

// MetricCheck is the comparison of one stored metric with its rerun.
type MetricCheck struct {
	Key    RunKey
	Metric string
	// Split and Params (canonical JSON, "" when none) tell apart the
	// results of one metric measured several ways.
	Split, Params string
	Unit          string
	Stored        float64
	// Rerun is NaN when Status is CheckMissing.
	Rerun  float64
	Status string
}

// Reproduction is the outcome of Reproduce.
type Reproduction struct {
	// Dir holds the rerun's results; Removed says it was a temporary
	// directory that was deleted because everything agreed.
	Dir     string
	Removed bool
	Stored  *ResultsFile
	Rerun   *ResultsFile
	// Tolerance is the one the metrics were compared with; a run whose
	// model was recorded as nondeterministic (ModelInfo.Nondeterministic)
	// is compared with NondeterministicTolerance when Tolerance is the
	// backend's default and exact.
	Tolerance Tolerance
	// explicit: Tolerance was given (ReproduceOptions.Tolerance), not the
	// backend's default.
	explicit bool
	Checks   []MetricCheck
	// Problems are differences other than metric values: run notes
	// (divergence) or resolved configurations that differ.
	Problems []string
}

// Drifts returns the checks that failed (drift or missing).
func (r *Reproduction) Drifts() []MetricCheck {
	var out []MetricCheck
	for _, c := range r.Checks {
		if c.Status == CheckDrift || c.Status == CheckMissing {
			out = append(out, c)
		}
	}
	return out
}

// OK reports whether every metric agreed and nothing else differed.
func (r *Reproduction) OK() bool { return len(r.Drifts()) == 0 && len(r.Problems) == 0 }

// Reproduce reruns the experiment stored in dir (DIR/results.json) from its
// manifest: the same resolved configuration (manifest.config), seeds,
// backend and device, restricted to the (task, model, seed) runs the file
// holds (LoadResults refuses a file without runs). It refuses, with a
// *DatasetError naming the dataset, when a data file recorded in the
// manifest no longer has its recorded SHA-256 (before running) or when the
// rerun read a dataset with a different checksum (after). Every stored
// metric is then compared with the rerun's within the tolerance (see
// DefaultTolerance); metrics in time units are not compared. The error is non-nil only when the reproduction could not be
// carried out; drifts are reported in the Reproduction (see OK).
func Reproduce(ctx context.Context, dir string, opt ReproduceOptions) (*Reproduction, error) {
	stored, err := LoadResults(dir)
	if err != nil {
		return nil, fmt.Errorf("reproduce: %w", err)
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		dir = filepath.Dir(dir)
	}
	if len(stored.Manifest.Config) == 0 {
		return nil, fmt.Errorf("reproduce: the manifest of %s has no resolved configuration", dir)
	}
	e, err := ParseExperiment(filepath.Join(dir, ResultsFileName)+" (manifest.config)", stored.Manifest.Config)
	if err != nil {
		if stored.Manifest.Version != Version {
			return nil, fmt.Errorf("reproduce: the stored configuration (arbench %s) does not load in arbench %s: %w", stored.Manifest.Version, Version, err)
		}
		return nil, fmt.Errorf("reproduce: the stored configuration does not load: %w", err)
	}
	if err := CheckDatasets(stored.Manifest.Datasets); err != nil {
		return nil, err
	}
	restrictToRuns(e, stored.Runs)
	loadWeights, err := storedWeights(stored.Runs)
	if err != nil {
		return nil, err
	}
	backend, err := nn.OpenBackend(e.Backend, e.Device)
	if err != nil {
		return nil, fmt.Errorf("reproduce: open backend: %w", err)
	}
	tol := DefaultTolerance(backend)
	if opt.Tolerance != nil {
		tol = *opt.Tolerance
	}

	out, temp := opt.Out, false
	if out == "" {
		if out, err = os.MkdirTemp("", "arbench-reproduce-"); err != nil {
			return nil, fmt.Errorf("reproduce: %w", err)
		}
		temp = true
	} else if same, err := sameDir(out, dir); err != nil {
		return nil, fmt.Errorf("reproduce: %w", err)
	} else if same {
		return nil, fmt.Errorf("reproduce: the output directory %s is the directory being reproduced; choose another", out)
	} else if _, err := os.Stat(filepath.Join(out, ResultsFileName)); err == nil && !opt.Overwrite {
		return nil, fmt.Errorf("reproduce: %s already holds results; use -overwrite to replace them, or choose another -out", out)
	}
	e.Out = out
	rerun, err := Run(ctx, e, RunOptions{LoadWeights: loadWeights, DataDir: opt.DataDir, Log: opt.Log, Bars: opt.Bars,
		Report: opt.Report, CommandLine: opt.CommandLine, Overwrite: temp || opt.Overwrite})
	// Runs that diverged or finished with a problem are compared like the
	// others (a stored divergence must diverge again); any other failure
	// ends the reproduction.
	var rp *RunProblems
	if err != nil && !(errors.As(err, &rp) && rerun != nil) {
		if temp && rerun == nil {
			// Nothing finished: the temporary directory holds nothing.
			os.RemoveAll(out)
			return nil, fmt.Errorf("reproduce: rerun: %w", err)
		}
		return nil, fmt.Errorf("reproduce: rerun (output in %s): %w", out, err)
	}
	rep := &Reproduction{Dir: out, Stored: stored, Rerun: rerun, Tolerance: tol, explicit: opt.Tolerance != nil}
	if err := compareDatasets(stored.Manifest.Datasets, rerun.Manifest.Datasets); err != nil {
		return rep, err
	}
	rep.compare()
	if rp != nil {
		rep.Problems = append(rep.Problems, rp.Problems...)
	}
	if rep.OK() && temp {
		if err := os.RemoveAll(out); err == nil {
			rep.Removed = true
		}
	}
	return rep, nil
}

// sameDir reports whether a and b name the same existing directory.
func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// restrictToRuns keeps the tasks, models and seeds of e that stored runs
// use (an interrupted experiment reruns what finished, not more).
func restrictToRuns(e *Experiment, runs []RunRecord) {
	tasks, models, seeds := map[string]bool{}, map[string]bool{}, map[uint64]bool{}
	for _, r := range runs {
		tasks[r.Task], models[r.Model], seeds[r.Seed] = true, true, true
	}
	var ts []TaskSpec
	for _, t := range e.Tasks {
		if tasks[t.Label()] {
			ts = append(ts, t)
		}
	}
	var ms []ModelSpec
	for _, m := range e.Models {
		if models[m.Label] {
			ms = append(ms, m)
		}
	}
	var ss []uint64
	for _, s := range e.Seeds {
		if seeds[s] {
			ss = append(ss, s)
		}
	}
	e.Tasks, e.Models, e.Seeds = ts, ms, ss
}

// storedWeights returns the -load-weights path the stored runs used: "" if
// none, the file when all loaded the same one, else their common directory.
func storedWeights(runs []RunRecord) (string, error) {
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, r := range runs {
		if r.WeightsIn != "" {
			files[r.WeightsIn] = true
			dirs[filepath.Dir(r.WeightsIn)] = true
		}
	}
	switch {
	case len(files) == 0:
		return "", nil
	case len(files) == 1:
		for f := range files {
			return f, nil
		}
	case len(dirs) == 1:
		for d := range dirs {
			return d, nil
		}
	}
	return "", fmt.Errorf("reproduce: the runs loaded weights from several directories (%s); reproduce them separately",
		strings.Join(sortedKeys(dirs), ", "))
}

// compareDatasets checks that the rerun read the same data as the stored
// runs, matching datasets by name.
func compareDatasets(stored, rerun []DatasetRef) error {
	byName := map[string]DatasetRef{}
	for _, d := range stored {
		byName[d.Name] = d
	}
	for _, d := range rerun {
		s, ok := byName[d.Name]
		if !ok {
			return fmt.Errorf("reproduce: the rerun read dataset %q (%s), which the manifest does not record; the results were produced with other data", d.Name, d.Path)
		}
		if s.SHA256 != d.SHA256 {
			return &DatasetError{Dataset: s, Got: d.SHA256}
		}
	}
	return nil
}

// compare fills Checks and Problems.
func (r *Reproduction) compare() {
	// A metric is identified as LoadResults keeps it unique.
	type mkey struct {
		run                   RunKey
		metric, split, params string
	}
	keyOf := func(res Result) mkey {
		return mkey{RunKey{res.Task, res.Model, res.Seed}, res.Metric, res.Split, canonical(res.Params)}
	}
	rerun := map[mkey]Result{}
	for _, res := range r.Rerun.Results {
		rerun[keyOf(res)] = res
	}
	tolerance := func(k RunKey) Tolerance { return r.Tolerance }
	if !r.explicit && r.Tolerance.Exact() {
		nondet := map[RunKey]bool{}
		for _, run := range r.Stored.Runs {
			nondet[run.Key()] = run.Info.Nondeterministic
		}
		tolerance = func(k RunKey) Tolerance {
			if nondet[k] {
				return NondeterministicTolerance()
			}
			return r.Tolerance
		}
	}
	for _, res := range r.Stored.Results {
		k := keyOf(res)
		c := MetricCheck{Key: k.run, Metric: res.Metric, Split: res.Split, Params: k.params, Unit: res.Unit,
			Stored: float64(res.Value), Rerun: math.NaN()}
		nr, ok := rerun[k]
		switch {
		case IsTimingUnit(res.Unit):
			c.Status = CheckTiming
			if ok {
				c.Rerun = float64(nr.Value)
			}
		case !ok:
			c.Status = CheckMissing
		default:
			c.Rerun = float64(nr.Value)
			c.Status = CheckOK
			if !tolerance(k.run).Agree(c.Stored, c.Rerun) {
				c.Status = CheckDrift
			}
		}
		r.Checks = append(r.Checks, c)
	}
	runs := map[RunKey]RunRecord{}
	for _, run := range r.Rerun.Runs {
		runs[run.Key()] = run
	}
	for _, s := range r.Stored.Runs {
		n, ok := runs[s.Key()]
		if !ok {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: not rerun", s.Key()))
			continue
		}
		if s.Note != n.Note {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: stored note %q, rerun note %q", s.Key(), s.Note, n.Note))
		}
		if len(s.Config) > 0 {
			if diff, err := configDiff(s.Config, n.Config); err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("%s: %v", s.Key(), err))
			} else if diff != "" {
				r.Problems = append(r.Problems, fmt.Sprintf("%s: resolved configuration differs (%s)", s.Key(), diff))
			}
		}
	}
	sort.Strings(r.Problems)
}
