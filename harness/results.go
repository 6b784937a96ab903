package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Version is the arbench version recorded in every manifest.
const Version = "0.1.0"

// Result file names inside an experiment's output directory.
const (
	ResultsFileName = "results.json"
	SamplesFileName = "samples.jsonl"
	ReportFileName  = "report.md"
)

// ResultsFile is the content of DIR/results.json.
type ResultsFile struct {
	Manifest Manifest `json:"manifest"`
	Results  []Result `json:"results"`
	Curves   []Curve  `json:"curves"`
	// Series holds the curves tasks measure during evaluation.
	Series []SeriesRecord `json:"series,omitempty"`
	Runs   []RunRecord    `json:"runs"`
	// LRSweeps are the learning-rate sweeps the runs' lr was chosen by
	// (see LRSweep), one per (task, model) that has one.
	LRSweeps []LRSweepRecord `json:"lr_sweeps,omitempty"`
}

// SeriesRecord is a task's Series for one (task, model, seed) run. In JSON
// the series' fields sit beside model, task and seed.
type SeriesRecord struct {
	Model string `json:"model"`
	Task  string `json:"task"`
	Seed  uint64 `json:"seed"`
	Series
}

type seriesRecordKey struct {
	Model string `json:"model"`
	Task  string `json:"task"`
	Seed  uint64 `json:"seed"`
}

// MarshalJSON merges the record's key with the series' own encoding (an
// embedded Series would otherwise promote its MarshalJSON and drop the key).
func (r SeriesRecord) MarshalJSON() ([]byte, error) {
	key, err := json.Marshal(seriesRecordKey{r.Model, r.Task, r.Seed})
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(r.Series)
	if err != nil {
		return nil, err
	}
	// {"model":...,"seed":N} + {"name":...} -> {"model":...,"seed":N,"name":...}
	return append(append(key[:len(key)-1:len(key)-1], ','), body[1:]...), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *SeriesRecord) UnmarshalJSON(b []byte) error {
	var key seriesRecordKey
	if err := json.Unmarshal(b, &key); err != nil {
		return err
	}
	var s Series
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*r = SeriesRecord{Model: key.Model, Task: key.Task, Seed: key.Seed, Series: s}
	return nil
}

// Manifest records what was run, where and with which code and data.
type Manifest struct {
	Version    string   `json:"arbench_version"`
	Name       string   `json:"name"`
	GitSHA     string   `json:"git_sha"`
	GitDirty   bool     `json:"git_dirty"`
	GoVersion  string   `json:"go_version"`
	GOOS       string   `json:"goos"`
	GOARCH     string   `json:"goarch"`
	Backend    string   `json:"backend"`
	Device     string   `json:"device"`
	CPU        string   `json:"cpu"`
	NumCPU     int      `json:"num_cpu"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	Seeds      []uint64 `json:"seeds"`
	// Config is the fully resolved experiment (see Experiment), every task
	// and model config with its defaults.
	Config   json.RawMessage `json:"config"`
	Datasets []DatasetRef    `json:"datasets"`
	Start    time.Time       `json:"start"`
	End      time.Time       `json:"end"`
	// CommandLine is os.Args of the (last) invocation.
	CommandLine []string `json:"command_line"`
	// Resumed says earlier invocations contributed runs (see -resume).
	Resumed bool `json:"resumed,omitempty"`
	// Complete says every (task, model, seed) of the experiment finished
	// (of the shard, for a shard's results).
	Complete bool `json:"complete"`
	// Shard is the part of the experiment these results hold (`arbench run
	// -shard I/N`); nil when they hold the whole experiment.
	Shard *Shard `json:"shard,omitempty"`
	// Failed lists the runs that failed, with their errors: they are not
	// in Runs, and -resume runs them again (an entry is removed once its
	// run is recorded).
	Failed []FailedRun `json:"failed,omitempty"`
	// MergedFrom lists the results directories `arbench merge` combined
	// into these results; empty for the results of a run.
	MergedFrom []MergedSource `json:"merged_from,omitempty"`
}

// FailedRun is a run that failed (see Manifest.Failed).
type FailedRun struct {
	RunID string `json:"run_id"`
	Task  string `json:"task"`
	Model string `json:"model"`
	Seed  uint64 `json:"seed"`
	Error string `json:"error"`
}

// Key identifies the (task, model, seed) of the failed run.
func (f FailedRun) Key() RunKey { return RunKey{f.Task, f.Model, f.Seed} }

// Number is a float64 that survives JSON when it is not finite: NaN and
// ±Inf are written as the strings "NaN", "+Inf" and "-Inf".
type Number float64

// MarshalJSON implements json.Marshaler.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Number) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("number %q: %w", s, err)
		}
		*n = Number(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Number(f)
	return nil
}

// Result is one measured metric of one (task, model, seed).
type Result struct {
	Model  string         `json:"model"`
	Task   string         `json:"task"`
	Metric string         `json:"metric"`
	Value  Number         `json:"value"`
	Unit   string         `json:"unit"`
	Seed   uint64         `json:"seed"`
	Split  string         `json:"split,omitempty"`
	Params map[string]any `json:"params,omitempty"`
	// CI is the task's interval of Value (Metric.CI), nil when none.
	CI *Interval `json:"ci,omitempty"`
}

// Curve names.
const (
	CurveTrainLoss = "train_loss"
	CurveValidLoss = "valid_loss"
)

// Curve is a training or validation loss curve.
type Curve struct {
	Model  string   `json:"model"`
	Task   string   `json:"task"`
	Seed   uint64   `json:"seed"`
	Name   string   `json:"name"`
	Unit   string   `json:"unit"`
	Steps  []int    `json:"steps"`
	Values []Number `json:"values"`
}

// RunRecord describes one finished (task, model, seed).
type RunRecord struct {
	// RunID is the run's stable id (RunID). Files written before run ids
	// existed lack it; LoadResults then computes it from the run's key
	// and Config (and leaves it empty for a run without Config).
	RunID string    `json:"run_id,omitempty"`
	Model string    `json:"model"`
	Task  string    `json:"task"`
	Seed  uint64    `json:"seed"`
	Info  ModelInfo `json:"info"`
	// Params is the number of scalar parameters.
	Params   int      `json:"params"`
	TaskInfo TaskInfo `json:"task_info"`
	// Trained is false for models without a Trainer (evaluated untrained)
	// and for zero-step runs.
	Trained bool `json:"trained"`
	Steps   int  `json:"steps"`
	// TrainTokens is the number of token positions processed in training
	// (source and input positions, scored or not; see Batch.Positions).
	TrainTokens  int64   `json:"train_tokens"`
	TrainSeconds float64 `json:"train_seconds"`
	// TokensPerSec is TrainTokens/TrainSeconds (training throughput,
	// including gradient computation, clipping and the optimiser).
	TokensPerSec float64 `json:"tokens_per_sec"`
	EvalSeconds  float64 `json:"eval_seconds"`
	WeightsIn    string  `json:"weights_loaded,omitempty"`
	WeightsOut   string  `json:"weights_saved,omitempty"`
	Note         string  `json:"note,omitempty"`
	// LR is the learning rate the run trained with (after warmup): its
	// train.lr, or the one its lr_sweep chose (ResultsFile.LRSweep); 0
	// when it did not train.
	LR float64 `json:"lr,omitempty"`
	// ValidSlope is the trend of the validation loss at the end of
	// training (see ValidSlope and Convergence); nil when the run did not
	// train or diverged.
	ValidSlope *ValidSlope `json:"valid_slope,omitempty"`
	// Config is the resolved configuration of this combination; -resume
	// compares it with the experiment's.
	Config   json.RawMessage `json:"config"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
}

// Key identifies the (task, model, seed) of a record.
func (r RunRecord) Key() RunKey { return RunKey{r.Task, r.Model, r.Seed} }

// RunKey identifies one (task, model label, seed) combination.
type RunKey struct {
	Task  string
	Model string
	Seed  uint64
}

func (k RunKey) String() string { return fmt.Sprintf("%s on %s seed %d", k.Model, k.Task, k.Seed) }

// MaxResultsBytes bounds the size of a results file LoadResults reads.
const MaxResultsBytes = 1 << 30

// LoadResults reads DIR/results.json (path may be the file or its
// directory) and checks it (see ParseResults). Only a regular file of at
// most MaxResultsBytes is read.
func LoadResults(path string) (*ResultsFile, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ResultsFileName)
	}
	b, err := readBounded(path, "results")
	if err != nil {
		return nil, err
	}
	return ParseResults(path, b)
}

// readBounded reads path, a regular file of at most MaxResultsBytes; its
// errors name what (results, samples) and path, and wrap the file
// system's (os.ErrNotExist stays detectable).
func readBounded(path, what string) ([]byte, error) {
	f, _, err := openRegular(path)
	var nr *notRegularError
	if errors.As(err, &nr) {
		return nil, fmt.Errorf("load %s %s: not a regular file (%s)", what, path, nr.Mode.Type())
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxResultsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", what, err)
	}
	if len(b) > MaxResultsBytes {
		return nil, fmt.Errorf("load %s %s: larger than %d MiB; not a %s file?", what, path, MaxResultsBytes>>20, what)
	}
	return b, nil
}

// readRegular reads path when it is a regular file (openRegular: a FIFO
// would block).
func readRegular(path string) ([]byte, error) {
	f, _, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Write atomically writes rf as indented JSON to path.
func (rf *ResultsFile) Write(path string) error {
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	b = append(b, '\n')
	return WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// WriteFileAtomic writes path through a temporary file in the same
// directory that is fsynced and renamed over path, so readers see either the
// old or the new content and a crash leaves no partial file.
func WriteFileAtomic(path string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriter(f)
	if err = write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Make the rename durable; not every file system supports syncing a
	// directory, so failures here are not errors.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// sampleLine is the identifying part of a samples.jsonl line.
type sampleLine struct {
	Model string `json:"model"`
	Task  string `json:"task"`
	Seed  uint64 `json:"seed"`
}

// encodeSamples renders a run's samples as JSON lines, each the task's
// sample plus model, task and seed (which win over same-named sample keys).
func encodeSamples(k RunKey, samples []Sample) ([]byte, error) {
	var buf bytes.Buffer
	for i, s := range samples {
		m := make(map[string]any, len(s)+3)
		for key, v := range s {
			m[key] = sanitize(v)
		}
		m["model"], m["task"], m["seed"] = k.Model, k.Task, k.Seed
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode sample %d of %s: %w", i, k, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// appendSamples atomically rewrites path as its current lines for which keep
// returns true (all lines when keep is nil; none when fresh) followed by add.
func appendSamples(path string, fresh bool, keep func(RunKey) bool, add []byte) error {
	var old []byte
	if !fresh {
		b, err := readRegular(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read samples: %w", err)
		}
		old = b
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		for len(old) > 0 {
			line, rest, _ := bytes.Cut(old, []byte{'\n'})
			old = rest
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if keep != nil {
				var sl sampleLine
				if json.Unmarshal(line, &sl) != nil || !keep(RunKey{sl.Task, sl.Model, sl.Seed}) {
					continue
				}
			}
			if _, err := w.Write(line); err != nil {
				return err
			}
			if _, err := w.Write([]byte{'\n'}); err != nil {
				return err
			}
		}
		_, err := w.Write(add)
		return err
	})
}

// sanitize replaces non-finite floats (which JSON cannot hold) by Numbers,
// recursively through maps and slices.
func sanitize(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return Number(x)
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return Number(x)
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = sanitize(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = sanitize(e)
		}
		return s
	case []float64:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = sanitize(e)
		}
		return s
	}
	return v
}

// collectManifest fills the environment part of a manifest.
func collectManifest(ctx context.Context, e *Experiment) Manifest {
	sha, dirty := gitState(ctx)
	return Manifest{
		Version:    Version,
		Name:       e.Name,
		GitSHA:     sha,
		GitDirty:   dirty,
		GoVersion:  runtime.Version(),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		Backend:    e.Backend,
		Device:     e.Device,
		CPU:        cpuModel(),
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Seeds:      append([]uint64(nil), e.Seeds...),
		// Binaries are built with -buildvcs=false, so the revision comes
		// from git at run time.
		CommandLine: append([]string(nil), os.Args...),
	}
}

// gitState returns `git rev-parse HEAD` ("unknown" when it fails) and
// whether `git status --porcelain` lists anything.
func gitState(ctx context.Context) (sha string, dirty bool) {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	sha = strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain").Output()
	return sha, err == nil && len(bytes.TrimSpace(st)) > 0
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
