package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
)

// TaskEnv is what a task learns about the run before it loads data.
type TaskEnv struct {
	// Variant is the part of the task name after the slash ("jargon" in
	// "text/jargon"); empty when none was given.
	Variant string
	// DataFile is a local file given with -data (overrides Variant's corpus).
	DataFile string
	// DataDir is the dataset cache directory ($ARBENCH_DATA or ./data).
	DataDir string
	// Seed makes generated tasks and batch sampling deterministic.
	Seed uint64
}

// TaskInfo describes a prepared task.
type TaskInfo struct {
	// Name is the full task name, e.g. "text/jargon".
	Name string `json:"name"`
	// Kind is "text", "synthetic", "seq2seq" or "image".
	Kind string `json:"kind"`
	// Vocab is the vocabulary size models must cover.
	Vocab int `json:"vocab"`
	// SeqLen is the window length used for training and evaluation.
	SeqLen int `json:"seq_len"`
	// HeadlineMetric names the metric tables lead with (e.g. "bits_per_byte").
	HeadlineMetric string `json:"headline_metric"`
	// Needs lists what the task's training and evaluation need of a model
	// beyond Model; the experiment check refuses a model that lacks one.
	Needs []Capability `json:"needs,omitempty"`
	// EvalBatch is the largest number of rows the task's validation and
	// evaluation give a model at once (its eval_batch), for memory
	// estimates; 0 when the task does not say.
	EvalBatch int `json:"eval_batch,omitempty"`
	// SourceLen and TargetLen are a conditional task's longest source and
	// longest decoder row (target and end token); 0 otherwise.
	SourceLen int `json:"source_len,omitempty"`
	TargetLen int `json:"target_len,omitempty"`
}

// DatasetRef identifies data a task read, for the manifest and reproduce.
type DatasetRef struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// Metric is one measured value.
type Metric struct {
	Name  string  `json:"metric"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Split is the data split ("test", "valid").
	Split string `json:"split,omitempty"`
	// Params records how the value was measured (window, stride, ...).
	Params map[string]any `json:"params,omitempty"`
	// CI is the value's confidence interval over what the task counted
	// (rows, pairs), nil when the task computes none. Reports combine
	// seeds themselves (Student t over the seeds' values).
	CI *Interval `json:"ci,omitempty"`
}

// ReferenceName is the name of a reference value of metric: a baseline the
// task computes rather than measures of a model ("bits_per_byte~unigram",
// "accuracy~chance"). Tasks report it as a Metric of every run, with the
// same unit as metric; reports draw it as a line next to the models' values
// instead of a model's result. The separator is '~' because '@' already
// names decoding settings ("exact_match@it4", tasks/seq2seq). Neither part
// may be empty or contain '~' (a programmer error).
func ReferenceName(metric, reference string) string {
	if metric == "" || reference == "" || strings.Contains(reference, "~") || strings.Contains(metric, "~") {
		panic(fmt.Sprintf("harness: ReferenceName(%q, %q): an empty name or '~' in one", metric, reference))
	}
	return metric + "~" + reference
}

// SplitReference reports whether name is a ReferenceName and returns its
// parts.
func SplitReference(name string) (metric, reference string, ok bool) {
	metric, reference, ok = strings.Cut(name, "~")
	return metric, reference, ok && metric != "" && reference != ""
}

// Interval is a confidence interval a task measured around a value.
type Interval struct {
	Lo Number `json:"lo"`
	Hi Number `json:"hi"`
	// Level is the confidence level (0.95).
	Level float64 `json:"level"`
	// Method names the estimate: "wilson" (a proportion over rows),
	// "bootstrap" (percentile bootstrap of a mean), "paired-bootstrap" (of
	// a mean paired difference), "t" (Student t).
	Method string `json:"method"`
	// N is the number of observations and Of says what they are ("rows",
	// "pairs", "tokens").
	N  int    `json:"n"`
	Of string `json:"of"`
}

// Interval methods.
const (
	CIWilson          = "wilson"
	CIBootstrap       = "bootstrap"
	CIPairedBootstrap = "paired-bootstrap"
	CIStudentT        = "t"
	// CINormal is mean ± z·s/√n over independent observations.
	CINormal = "normal"
	// CIDelta is a ratio estimator's normal interval with the
	// delta-method variance.
	CIDelta = "delta"
)

// IntervalOf returns the 95% interval [lo, hi] of n observations of kind
// of ("rows", "images"), computed by method; nil when a bound is NaN (too
// few observations for an interval).
func IntervalOf(lo, hi float64, method string, n int, of string) *Interval {
	if lo != lo || hi != hi {
		return nil
	}
	return &Interval{Lo: Number(lo), Hi: Number(hi), Level: 0.95, Method: method, N: n, Of: of}
}

// Sample is one per-sample record written to samples.jsonl.
type Sample map[string]any

// Series is a curve a task measures over an axis other than the training
// step: error rate versus position, accuracy versus dependency distance,
// loss versus context size. Reports plot every series with the same Name in
// one chart, one line per model (and per Label).
type Series struct {
	// Name identifies the chart, e.g. "token_error_vs_position".
	Name string `json:"name"`
	// Label distinguishes variants within a chart for one model, e.g.
	// "teacher_forced" and "free_running"; empty when there is one.
	Label string `json:"label,omitempty"`
	// XName and XUnit describe the x axis ("position", "distance", "context").
	XName string `json:"x_name"`
	XUnit string `json:"x_unit,omitempty"`
	// Unit is the unit of the y values.
	Unit string `json:"unit"`
	// Split is the data split measured ("test").
	Split string `json:"split,omitempty"`
	// X and Y are the points, X increasing; N optionally gives the number of
	// observations behind each point (for confidence intervals).
	X []float64 `json:"x"`
	Y []float64 `json:"y"`
	N []int     `json:"n,omitempty"`
	// Params records how the series was measured.
	Params map[string]any `json:"params,omitempty"`
	// Lo and Hi, when set (both, one per point), are each point's
	// confidence interval over the N observations, computed by CIMethod
	// (an Interval method) at level 0.95.
	Lo       []float64 `json:"lo,omitempty"`
	Hi       []float64 `json:"hi,omitempty"`
	CIMethod string    `json:"ci_method,omitempty"`
}

// seriesJSON is Series with NaN/±Inf-safe numbers.
type seriesJSON struct {
	Name   string         `json:"name"`
	Label  string         `json:"label,omitempty"`
	XName  string         `json:"x_name"`
	XUnit  string         `json:"x_unit,omitempty"`
	Unit   string         `json:"unit"`
	Split  string         `json:"split,omitempty"`
	X      []Number       `json:"x"`
	Y      []Number       `json:"y"`
	N      []int          `json:"n,omitempty"`
	Params map[string]any `json:"params,omitempty"`
	Lo     []Number       `json:"lo,omitempty"`
	Hi     []Number       `json:"hi,omitempty"`
	Method string         `json:"ci_method,omitempty"`
}

func toNumbers(v []float64) []Number {
	if v == nil {
		return nil
	}
	out := make([]Number, len(v))
	for i, x := range v {
		out[i] = Number(x)
	}
	return out
}

func fromNumbers(v []Number) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// MarshalJSON writes non-finite values as the strings Number uses.
func (s Series) MarshalJSON() ([]byte, error) {
	x, y := toNumbers(s.X), toNumbers(s.Y)
	if x == nil {
		x = []Number{}
	}
	if y == nil {
		y = []Number{}
	}
	return json.Marshal(seriesJSON{s.Name, s.Label, s.XName, s.XUnit, s.Unit, s.Split, x, y, s.N, s.Params,
		toNumbers(s.Lo), toNumbers(s.Hi), s.CIMethod})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Series) UnmarshalJSON(b []byte) error {
	var j seriesJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Series{j.Name, j.Label, j.XName, j.XUnit, j.Unit, j.Split, fromNumbers(j.X), fromNumbers(j.Y), j.N, j.Params,
		fromNumbersOrNil(j.Lo), fromNumbersOrNil(j.Hi), j.Method}
	return nil
}

func fromNumbersOrNil(v []Number) []float64 {
	if v == nil {
		return nil
	}
	return fromNumbers(v)
}

// Evaluation is what a task's evaluation produces.
type Evaluation struct {
	Metrics []Metric
	Samples []Sample
	Series  []Series
}

// Task is the interface every task family implements.
type Task interface {
	// Config returns a pointer to the task's typed configuration with defaults.
	Config() Config
	// Prepare loads or generates the data.
	Prepare(ctx context.Context, env TaskEnv) error
	// Info describes the prepared task.
	Info() TaskInfo
	// Datasets lists the files read, with checksums.
	Datasets() []DatasetRef
	// TrainBatch samples a training batch of the given size.
	TrainBatch(rng *rand.Rand, batch int) Batch
	// ValidLoss returns the mean nats/token on (a bounded part of) the
	// validation split, for the validation curve. It returns an error
	// wrapping ErrNoValidLoss when m defines no such loss (a model without
	// Scorer): the run then records no validation curve.
	ValidLoss(ctx context.Context, m Model) (float64, error)
	// Evaluate measures the model on the test split.
	Evaluate(ctx context.Context, m Model) (*Evaluation, error)
}

// InitialEvaluator is a Task that also measures the model before training
// (see the package comment). The runner calls EvaluateInitial once per run,
// after Setup (and -load-weights) and before the first training step, also
// for a model without Trainer; the task names what it returns so it is
// told apart from Evaluate's (a series label "init", a metric suffix).
type InitialEvaluator interface {
	EvaluateInitial(ctx context.Context, m Model) (*Evaluation, error)
}

// ErrNoValidLoss says a task cannot measure a validation loss of a model
// (it defines no likelihood of the targets, such as a non-autoregressive
// model without Scorer); the runner then skips the validation curve.
var ErrNoValidLoss = errors.New("no validation loss for this model")

// VariantValidator is a task Config whose validity depends on the variant
// named after the slash ("copy" in "synthetic/copy"). Experiments check it
// with the rest of the configuration, before any work starts.
type VariantValidator interface {
	ValidateVariant(variant string) []error
}

// ConfigProblems is what a task's Prepare checks of its configuration
// before loading anything: cfg.Validate(), and when that finds nothing and
// cfg is a VariantValidator, its problems for variant — the order the
// experiment check reports them in (config.go, checkConfig).
func ConfigProblems(cfg Config, variant string) []error {
	errs := cfg.Validate()
	if vv, ok := cfg.(VariantValidator); ok && len(errs) == 0 {
		errs = vv.ValidateVariant(variant)
	}
	return errs
}

// TaskFactory returns a fresh, unconfigured task instance.
type TaskFactory func() Task
