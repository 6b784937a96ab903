package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"arbench/nn"
)

// Experiment is a fully resolved benchmark run: every task and model config
// is decoded into its typed struct with defaults filled in. Build one with
// LoadExperiment / ParseExperiment (YAML) or NewExperiment (command-line
// flags); both check it completely before any work starts.
//
// In YAML (see experiments/*.yaml):
//
//	name: quick                # required
//	seed: 1                    # or seeds: [1, 2, 3] (mutually exclusive)
//	backend: gorgonia          # default gorgonia; device: cpu (default)
//	out: results/quick         # default results/<name>
//	train: {steps: 300, batch: 32, lr: 0.003, clip: 1.0, eval_every: 50}
//	# optional: choose lr per (task, model) by a recorded sweep (LRSweep)
//	#   train: {..., lr_sweep: {lrs: [0.001, 0.003, 0.01], steps: 75}}
//	tasks:
//	  - name: text/jargon      # family/variant; optional data: FILE
//	    config: {seq_len: 64}  # decoded strictly into the task's Config()
//	models:
//	  - name: rnn              # optional label: NAME to tell two entries apart
//	    config: {hidden: 256}  # decoded strictly into the model's Config()
//	    train: {lr: 0.01}      # optional per-model override of train fields
//
// An integer field takes only an integer literal in its range (5.9, 2.0 and
// 1e3 are refused, not truncated); a float field takes only a finite number
// unless tagged NonFiniteTag; a data file must be a readable regular file;
// an experiment file is at most MaxExperimentSize bytes.
type Experiment struct {
	Name    string   `json:"name"`
	Seeds   []uint64 `json:"seeds"`
	Backend string   `json:"backend"`
	Device  string   `json:"device"`
	Out     string   `json:"out"`
	// Train is the experiment-wide training configuration; each model's
	// effective one (with its overrides) is ModelSpec.Train.
	Train  TrainConfig `json:"train"`
	Tasks  []TaskSpec  `json:"tasks"`
	Models []ModelSpec `json:"models"`
	// Bench is the optional `bench:` section (see BenchConfig), with
	// defaults for the fields it omits; nil when the file has none.
	Bench *BenchConfig `json:"bench,omitempty"`
	// Claims are the survey's claims the experiment tests (ClaimSpec); the
	// report judges them from the results.
	Claims []ClaimSpec `json:"claims,omitempty"`
}

// TrainConfig holds the optimisation settings of a run. The optimiser is
// Adam (nn.Adam, Kingma & Ba 2015) with global gradient-norm clipping and an
// optional linear learning-rate warmup.
type TrainConfig struct {
	// Steps is the number of optimiser steps; 0 evaluates without training
	// (e.g. weights loaded with -load-weights).
	Steps int `yaml:"steps" json:"steps"`
	// Batch is the number of training windows per step.
	Batch int `yaml:"batch" json:"batch"`
	// LR is Adam's learning rate after warmup.
	LR float64 `yaml:"lr" json:"lr"`
	// Clip is the maximum global gradient L2 norm; 0 disables clipping.
	Clip float64 `yaml:"clip" json:"clip"`
	// EvalEvery is the validation-curve period in steps; the validation loss
	// is also measured after the last step. 0 measures it only at the end.
	EvalEvery int `yaml:"eval_every" json:"eval_every"`
	// LogEvery is the training-curve period: each point is the mean training
	// loss of the LogEvery steps ending at it.
	LogEvery int `yaml:"log_every" json:"log_every"`
	// WeightDecay is Adam's L2 penalty (torch.optim.Adam's weight_decay).
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"`
	// WarmupSteps ramps the learning rate linearly: lr·min(1, step/WarmupSteps).
	WarmupSteps int     `yaml:"warmup_steps" json:"warmup_steps"`
	Beta1       float64 `yaml:"beta1" json:"beta1"`
	Beta2       float64 `yaml:"beta2" json:"beta2"`
	Eps         float64 `yaml:"eps" json:"eps"`
	// LRSweep, when set, chooses LR per (task, model) by a short recorded
	// sweep on the validation split before the model's runs (see LRSweep);
	// LR then only applies where no sweep runs (a model without a Trainer,
	// or train.steps 0). A model's `lr_sweep: null` turns an experiment-wide
	// sweep off for it.
	LRSweep *LRSweep `yaml:"lr_sweep" json:"lr_sweep,omitempty"`
}

// DefaultTrain returns the default training configuration.
func DefaultTrain() TrainConfig {
	return TrainConfig{
		Steps: 1000, Batch: 32, LR: 3e-3, Clip: 1, EvalEvery: 100, LogEvery: 1,
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
	}
}

// LRAt returns the learning rate of the given 1-based step.
func (c TrainConfig) LRAt(step int) float64 {
	if c.WarmupSteps > 0 && step < c.WarmupSteps {
		return c.LR * float64(step) / float64(c.WarmupSteps)
	}
	return c.LR
}

// Adam returns the optimiser configuration.
func (c TrainConfig) Adam() nn.AdamConfig {
	return nn.AdamConfig{LR: c.LRAt(1), Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay}
}

// fieldProblem is one invalid training field.
type fieldProblem struct{ field, msg string }

// problems reports every invalid field: the non-finite numbers, then the
// range of every other field.
func (c TrainConfig) problems() []fieldProblem {
	ps := nonFiniteProblems(c)
	nonFinite := map[string]bool{}
	for _, p := range ps {
		nonFinite[p.field] = true
	}
	add := func(bad bool, field, format string, args ...any) {
		if bad && !nonFinite[field] {
			ps = append(ps, fieldProblem{field, fmt.Sprintf(format, args...)})
		}
	}
	add(c.Steps < 0, "steps", "must be >= 0, got %d", c.Steps)
	add(c.Batch < 1, "batch", "must be >= 1, got %d", c.Batch)
	add(!(c.LR > 0), "lr", "must be a positive number, got %v", c.LR)
	add(!(c.Clip >= 0), "clip", "must be >= 0 (0 disables clipping), got %v", c.Clip)
	add(c.EvalEvery < 0, "eval_every", "must be >= 0, got %d", c.EvalEvery)
	add(c.LogEvery < 1, "log_every", "must be >= 1, got %d", c.LogEvery)
	add(!(c.WeightDecay >= 0), "weight_decay", "must be >= 0, got %v", c.WeightDecay)
	add(c.WarmupSteps < 0, "warmup_steps", "must be >= 0, got %d", c.WarmupSteps)
	add(!(c.Beta1 >= 0 && c.Beta1 < 1), "beta1", "must be in [0, 1), got %v", c.Beta1)
	add(!(c.Beta2 >= 0 && c.Beta2 < 1), "beta2", "must be in [0, 1), got %v", c.Beta2)
	add(!(c.Eps > 0), "eps", "must be a positive number, got %v", c.Eps)
	if c.LRSweep != nil {
		c.LRSweep.check(c, add)
	}
	return ps
}

// TaskSpec is one resolved task entry.
type TaskSpec struct {
	// Name is the full task name, "family/variant".
	Name string
	// Data is a local data file that replaces the variant's corpus.
	Data string
	// Config is the task's typed configuration (a pointer, as returned by
	// Task.Config) with defaults and the experiment's values.
	Config Config
	// origin is where the entry was written, for errors found later.
	origin origin
}

// origin locates an entry of an experiment file: the file, the line and
// the entry's path there ("models[2]"); zero for entries made from flags.
type origin struct {
	file string
	line int
	path string
}

// locate returns the error location of a problem with an entry: its file,
// line and path when it came from a file, else path alone.
func (o origin) locate(path string) *ConfigError {
	if o.path == "" {
		return &ConfigError{Path: path}
	}
	return &ConfigError{File: o.file, Line: o.line, Path: o.path}
}

// Label is the task's name in results: Name, or for a task that reads the
// local file Data, DataTaskName of Name's family and Data ("text/notes" for
// text/jargon on notes.txt). It is a method, not a field, so that Data set
// after loading (the command line's -data) renames the task too.
func (s TaskSpec) Label() string {
	if s.Data == "" {
		return s.Name
	}
	family, _, _ := strings.Cut(s.Name, "/")
	return DataTaskName(family, s.Data)
}

// ModelSpec is one resolved model entry.
type ModelSpec struct {
	// Name is the model family in the registry.
	Name string
	// Label names the entry in results and weight files; it defaults to
	// Name and must be unique within the experiment.
	Label string
	// Config is the model's typed configuration (a pointer, as returned by
	// Model.Config).
	Config Config
	// Train is the effective training configuration (experiment-wide values
	// with this model's overrides).
	Train TrainConfig
	// origin is where the entry was written, for errors found later.
	origin origin
}

// MarshalJSON writes the spec with its config as a JSON object keyed by the
// config's YAML field names.
func (s TaskSpec) MarshalJSON() ([]byte, error) {
	cfg, err := configMap(s.Config)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", s.Name, err)
	}
	return json.Marshal(struct {
		Name   string         `json:"name"`
		Data   string         `json:"data,omitempty"`
		Config map[string]any `json:"config"`
	}{s.Name, s.Data, cfg})
}

// MarshalJSON writes the spec with its config as a JSON object keyed by the
// config's YAML field names.
func (s ModelSpec) MarshalJSON() ([]byte, error) {
	cfg, err := configMap(s.Config)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", s.Label, err)
	}
	return json.Marshal(struct {
		Name   string         `json:"name"`
		Label  string         `json:"label"`
		Config map[string]any `json:"config"`
		Train  TrainConfig    `json:"train"`
	}{s.Name, s.Label, cfg, s.Train})
}

// configMap converts a typed config into a generic map with its YAML field
// names (through a YAML round trip), so configs of any plugin serialise the
// way they are written in experiment files.
func configMap(c Config) (map[string]any, error) {
	if c == nil {
		return map[string]any{}, nil
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("serialise config: %w", err)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("serialise config: %w", err)
	}
	return sanitize(m).(map[string]any), nil
}

// copyConfig sets *dst = *src; both must be pointers to the same struct type
// (a fresh instance's Config and a resolved one).
func copyConfig(dst, src Config) error {
	dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
	if dv.Kind() != reflect.Pointer || sv.Kind() != reflect.Pointer || dv.IsNil() || sv.IsNil() || dv.Type() != sv.Type() {
		return fmt.Errorf("config types %T and %T are not the same non-nil pointer type", dst, src)
	}
	dv.Elem().Set(sv.Elem())
	return nil
}

// ConfigError is one problem in an experiment, located in its file when it
// came from one.
type ConfigError struct {
	File string
	Line int
	// Path is the field path, e.g. "models[1].config.hidden".
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is every problem found in an experiment, in file order.
type ConfigErrors []*ConfigError

// MaxShownProblems is how many problems ConfigErrors.Error lists; the
// rest are counted ("... and 12 more problems"), so that a runaway file
// does not bury the first problems. The slice itself holds them all.
const MaxShownProblems = 50

func (es ConfigErrors) Error() string {
	n := min(len(es), MaxShownProblems)
	lines := make([]string, n, n+1)
	for i, e := range es[:n] {
		lines[i] = e.Error()
	}
	if len(es) > n {
		lines = append(lines, fmt.Sprintf("... and %d more problems", len(es)-n))
	}
	return strings.Join(lines, "\n")
}

// errorsOrNil returns es as an error, or nil when empty.
func (es ConfigErrors) errorsOrNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// fileExperiment is the YAML schema of an experiment file. Config sections
// stay yaml.Nodes until the named plugin's typed config is known.
type fileExperiment struct {
	Name    string      `yaml:"name"`
	Seed    *uint64     `yaml:"seed"`
	Seeds   []uint64    `yaml:"seeds"`
	Backend string      `yaml:"backend"`
	Device  string      `yaml:"device"`
	Out     string      `yaml:"out"`
	Train   TrainConfig `yaml:"train"`
	Tasks   []fileTask  `yaml:"tasks"`
	Models  []fileModel `yaml:"models"`
	Bench   yaml.Node   `yaml:"bench"`
	Claims  []ClaimSpec `yaml:"claims"`
}

type fileTask struct {
	Name   string    `yaml:"name"`
	Data   string    `yaml:"data"`
	Config yaml.Node `yaml:"config"`
}

type fileModel struct {
	Name   string    `yaml:"name"`
	Label  string    `yaml:"label"`
	Config yaml.Node `yaml:"config"`
	Train  yaml.Node `yaml:"train"`
}

// Default backend and device.
const (
	DefaultBackend = "gorgonia"
	DefaultDevice  = "cpu"
)

// MaxExperimentSize is the largest experiment file accepted, 1 MiB (real
// ones are a few kilobytes): LoadExperiment reads no further (it refuses
// what is not a regular file, such as /dev/zero or a named pipe, before
// opening it), and ParseExperiment refuses larger data.
const MaxExperimentSize = 1 << 20

// LoadExperiment reads and checks an experiment file (see Experiment),
// which must be a regular file (see readExperiment).
func LoadExperiment(path string) (*Experiment, error) {
	data, err := readExperiment(path)
	if err != nil {
		return nil, err
	}
	return ParseExperiment(path, data)
}

// readExperiment reads path, at most MaxExperimentSize bytes of it. It
// refuses a path that is not a regular file before opening it: opening a
// named pipe waits for a writer (deaf to Ctrl-C), and a device such as
// /dev/zero has no end.
func readExperiment(path string) ([]byte, error) {
	f, _, err := openRegular(path)
	var nr *notRegularError
	if errors.As(err, &nr) {
		msg := fmt.Sprintf("%s, not a regular file; an experiment must be a regular file", describeMode(nr.Mode))
		return nil, ConfigErrors{{File: path, Msg: msg}}
	}
	if err != nil {
		return nil, fmt.Errorf("read experiment: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxExperimentSize+1))
	if err != nil {
		return nil, fmt.Errorf("read experiment %s: %w", path, err)
	}
	if len(data) > MaxExperimentSize {
		size := fmt.Sprintf("more than %d", MaxExperimentSize)
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = fmt.Sprint(st.Size())
		}
		return nil, ConfigErrors{sizeError(path, size)}
	}
	return data, nil
}

// describeMode names the kind of a file that is not a regular file.
func describeMode(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

func sizeError(file, size string) *ConfigError {
	return &ConfigError{File: file, Msg: fmt.Sprintf("the experiment file is %s bytes, over the limit of %d bytes (1 MiB)", size, MaxExperimentSize)}
}

// ParseExperiment decodes an experiment strictly: unknown fields at any
// level (including inside each task's and model's config), type errors,
// non-integers in integer fields, non-finite numbers, unknown
// task/model/backend names, missing data files, null list entries, a
// second YAML document and every Config.Validate problem are all reported
// at once as ConfigErrors, each located as FILE:LINE: path (a list entry by
// its index as written). Decoding takes time linear in len(data), which
// must not exceed MaxExperimentSize.
func ParseExperiment(file string, data []byte) (*Experiment, error) {
	if len(data) > MaxExperimentSize {
		return nil, ConfigErrors{sizeError(file, fmt.Sprint(len(data)))}
	}
	w := newWalker(file)
	doc := w.experimentRoot(data)
	if doc == nil {
		return nil, w.sorted()
	}
	// A field with a problem keeps its default and the rest is decoded,
	// so the well-formed parts are still checked below.
	fe := fileExperiment{Train: DefaultTrain()}
	w.decode(doc, reflect.ValueOf(&fe).Elem(), "")
	e := w.resolve(&fe)
	e.fillDefaults()
	w.errs = append(w.errs, e.check(file, w.lineOf)...)
	if len(w.errs) > 0 {
		return nil, w.sorted()
	}
	return e, nil
}

// experimentRoot parses data and returns its root mapping, or nil with
// the problem recorded. A second document is recorded but the first is
// still decoded, so that its problems are reported too.
func (w *walker) experimentRoot(data []byte) *yaml.Node {
	doc := w.parse(data)
	switch {
	case doc == nil && len(w.errs) > 0: // a syntax error
	case doc == nil || (doc.Kind == yaml.ScalarNode && doc.ShortTag() == "!!null"):
		w.add(1, "", "empty experiment file")
	case doc.Kind != yaml.MappingNode:
		w.add(doc.Line, "", "expected a mapping, got %s", describeNode(doc))
	default:
		w.lines[""] = doc.Line
		return doc
	}
	return nil
}

// resolve builds the experiment of a decoded file, decoding each task's
// and model's sections into the named plugin's typed config.
func (w *walker) resolve(fe *fileExperiment) *Experiment {
	e := &Experiment{Name: fe.Name, Backend: fe.Backend, Device: fe.Device, Out: fe.Out, Train: fe.Train, Claims: fe.Claims}
	switch {
	case fe.Seed != nil && fe.Seeds != nil:
		w.add(w.lineOf("seeds"), "seeds", "seed and seeds are mutually exclusive")
	case fe.Seed != nil:
		e.Seeds = []uint64{*fe.Seed}
	case fe.Seeds != nil:
		// The problems of seeds name no index: leave out the seeds
		// not decoded (reported already).
		e.Seeds = make([]uint64, 0, len(fe.Seeds))
		for i, s := range fe.Seeds {
			if !w.unset[fmt.Sprintf("seeds[%d]", i)] {
				e.Seeds = append(e.Seeds, s)
			}
		}
	}
	for i, ft := range fe.Tasks {
		e.Tasks = append(e.Tasks, w.resolveTask(ft, fmt.Sprintf("tasks[%d]", i)))
	}
	for i, fm := range fe.Models {
		e.Models = append(e.Models, w.resolveModel(fm, fmt.Sprintf("models[%d]", i), e.Train))
	}
	if fe.Bench.Kind != 0 {
		e.Bench = DefaultBench()
		w.decodeSection(&fe.Bench, e.Bench, "bench")
	}
	return e
}

// resolveTask resolves the entry at path. An entry that was not decoded
// (its problem reported already) stays empty at its index, so that every
// later problem names its entry as written: the checks skip an entry
// without a name or a config.
func (w *walker) resolveTask(ft fileTask, path string) TaskSpec {
	spec := TaskSpec{Name: ft.Name, Data: ft.Data, origin: origin{w.file, w.lineOf(path), path}}
	switch {
	case w.unset[path]:
	case ft.Name == "":
		w.add(w.lineOf(path), path+".name", "required")
	default:
		if t, _, err := NewTask(ft.Name); err != nil {
			w.add(w.lineOf(path+".name"), path+".name", "%v", err)
		} else {
			spec.Config = t.Config()
			w.decodeSection(&ft.Config, spec.Config, path+".config")
		}
	}
	return spec
}

// resolveModel resolves the entry at path, one not decoded as resolveTask
// does.
func (w *walker) resolveModel(fm fileModel, path string, train TrainConfig) ModelSpec {
	spec := ModelSpec{Name: fm.Name, Label: fm.Label, Train: train, origin: origin{w.file, w.lineOf(path), path}}
	if spec.Label == "" {
		spec.Label = DefaultLabel(fm.Name)
	}
	if w.unset[path] {
		return spec
	}
	if fm.Name == "" {
		w.add(w.lineOf(path), path+".name", "required")
	} else if m, err := NewModel(fm.Name); err != nil {
		w.add(w.lineOf(path+".name"), path+".name", "%v", err)
	} else {
		spec.Config = m.Config()
		w.decodeSection(&fm.Config, spec.Config, path+".config")
	}
	w.decodeSection(&fm.Train, &spec.Train, path+".train")
	return spec
}

// NewExperiment builds an experiment from names, as the command line does:
// every task and model gets its default configuration and tasks get data as
// their data file. Unknown names and a data file that cannot be read are
// reported at once, attributed to the -task, -model and -data flags; the
// caller applies its other settings and then calls Check (Run checks again
// anyway).
func NewExperiment(name string, taskNames, modelNames []string, data string) (*Experiment, error) {
	e := &Experiment{Name: name, Train: DefaultTrain()}
	var errs ConfigErrors
	for _, n := range taskNames {
		spec := TaskSpec{Name: n, Data: data}
		if t, variant, err := NewTask(n); err != nil {
			errs = append(errs, &ConfigError{Path: "-task", Msg: err.Error()})
		} else {
			spec.Config = t.Config()
			if vv, ok := spec.Config.(VariantValidator); ok {
				for _, err := range vv.ValidateVariant(variant) {
					errs = append(errs, &ConfigError{Path: "-task", Msg: fmt.Sprintf("%s: %v", n, err)})
				}
			}
		}
		e.Tasks = append(e.Tasks, spec)
	}
	for _, n := range modelNames {
		spec := ModelSpec{Name: n, Label: DefaultLabel(n), Train: e.Train}
		if m, err := NewModel(n); err != nil {
			errs = append(errs, &ConfigError{Path: "-model", Msg: err.Error()})
		} else {
			spec.Config = m.Config()
		}
		e.Models = append(e.Models, spec)
	}
	if data != "" {
		if err := CheckDataFile(data); err != nil {
			errs = append(errs, &ConfigError{Path: "-data", Msg: err.Error()})
		}
	}
	e.fillDefaults()
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// SetTrain applies f to the experiment-wide training configuration and to
// every model's effective one (command-line overrides win over the file).
func (e *Experiment) SetTrain(f func(*TrainConfig)) {
	f(&e.Train)
	for i := range e.Models {
		f(&e.Models[i].Train)
	}
}

// fillDefaults fills the defaulted top-level fields.
func (e *Experiment) fillDefaults() {
	if e.Seeds == nil {
		e.Seeds = []uint64{1}
	}
	if e.Backend == "" {
		e.Backend = DefaultBackend
	}
	if e.Device == "" {
		e.Device = DefaultDevice
	}
	if e.Out == "" && e.Name != "" {
		e.Out = "results/" + e.Name
	}
}

// Check reports every problem of the experiment (after command-line
// overrides, for instance) as ConfigErrors, or nil.
func (e *Experiment) Check() error {
	return e.check("", func(string) int { return 0 }).errorsOrNil()
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// addFunc records a problem at a field path.
type addFunc func(path, format string, args ...any)

// check validates a resolved experiment; line locates a field path.
func (e *Experiment) check(file string, line func(path string) int) ConfigErrors {
	var errs ConfigErrors
	add := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{File: file, Line: line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	e.checkTop(add)
	e.checkTasks(add)
	e.checkModels(add)
	if e.Bench != nil {
		nonFinite := nonFiniteProblems(e.Bench)
		for _, p := range nonFinite {
			add("bench."+p.field, "%s", p.msg)
		}
		for _, err := range validate(e.Bench, nonFinite) {
			add("bench", "%v", err)
		}
		e.checkBenchLabels(add)
	}
	e.checkClaims(add)
	return errs
}

// checkBenchLabels reports a bench baseline or peer that names no model.
func (e *Experiment) checkBenchLabels(add addFunc) {
	labels := map[string]bool{}
	for _, m := range e.Models {
		labels[m.Label] = true
	}
	missing := func(path, l string) {
		if l != "" && !labels[l] {
			add(path, "no model labelled %q", l)
		}
	}
	missing("bench.baseline", e.Bench.Baseline)
	for i, pr := range e.Bench.Peers {
		missing(fmt.Sprintf("bench.peers[%d].model", i), pr.Model)
		missing(fmt.Sprintf("bench.peers[%d].peer", i), pr.Peer)
	}
}

// checkTop checks the top-level fields and the experiment-wide training.
func (e *Experiment) checkTop(add addFunc) {
	switch {
	case e.Name == "":
		add("name", "required")
	case !safeName.MatchString(e.Name):
		add("name", "%q must use only letters, digits, '.', '_' and '-'", e.Name)
	}
	if len(e.Seeds) == 0 {
		add("seeds", "at least one seed is required")
	}
	seen := map[uint64]bool{}
	for _, s := range e.Seeds {
		if seen[s] {
			add("seeds", "duplicate seed %d", s)
		}
		seen[s] = true
	}
	if !contains(nn.Backends(), e.Backend) {
		add("backend", "unknown backend %q (available: %s)", e.Backend, strings.Join(nn.Backends(), ", "))
	}
	if e.Device == "" {
		add("device", "required")
	}
	if e.Out == "" {
		add("out", "required")
	}
	for _, p := range e.Train.problems() {
		add("train."+p.field, "%s", p.msg)
	}
}

// checkTasks checks each task: unique labels (results are keyed by them),
// a readable data file, its config.
func (e *Experiment) checkTasks(add addFunc) {
	if len(e.Tasks) == 0 {
		add("tasks", "at least one task is required")
	}
	seen := map[string]int{}
	for i, t := range e.Tasks {
		path := fmt.Sprintf("tasks[%d]", i)
		label := t.Label()
		if j, dup := seen[label]; dup && t.Name != "" {
			if t.Data != "" {
				add(path+".data", "duplicate of tasks[%d] (%s, named after the data file %s); results are keyed by task name", j, label, t.Data)
			} else {
				add(path+".name", "duplicate of tasks[%d] (%s); results are keyed by task name", j, label)
			}
		}
		seen[label] = i
		if t.Data != "" {
			if err := CheckDataFile(t.Data); err != nil {
				add(path+".data", "%v", err)
			}
		}
		if t.Config != nil {
			_, variant, _ := strings.Cut(t.Name, "/")
			checkConfig(add, path+".config", t.Config, variant)
		}
	}
}

// checkModels checks each model: unique labels, its training (problems
// inherited from the experiment-wide training are reported once, there),
// its config.
func (e *Experiment) checkModels(add addFunc) {
	if len(e.Models) == 0 {
		add("models", "at least one model is required")
	}
	global := map[fieldProblem]bool{}
	for _, p := range e.Train.problems() {
		global[p] = true
	}
	labelSeen := map[string]int{}
	for i, m := range e.Models {
		path := fmt.Sprintf("models[%d]", i)
		if m.Label != "" {
			if j, dup := labelSeen[m.Label]; dup {
				add(path, "duplicate model label %q (also models[%d]); give one of them a distinct label", m.Label, j)
			} else if !safeName.MatchString(m.Label) {
				add(path+".label", "%q must use only letters, digits, '.', '_' and '-'", m.Label)
			}
			labelSeen[m.Label] = i
		}
		for _, p := range m.Train.problems() {
			if !global[p] {
				add(path+".train."+p.field, "%s", p.msg)
			}
		}
		if m.Config != nil {
			checkConfig(add, path+".config", m.Config, "")
		}
	}
}

// checkConfig reports the non-finite numbers of a plugin's config and its
// Validate problems, then (for a task's config without any, given its
// variant) its ValidateVariant problems.
func checkConfig(add addFunc, path string, cfg Config, variant string) {
	nonFinite := nonFiniteProblems(cfg)
	for _, p := range nonFinite {
		add(joinPath(path, p.field), "%s", p.msg)
	}
	errs := validate(cfg, nonFinite)
	for _, err := range errs {
		add(path, "%v", err)
	}
	if vv, ok := cfg.(VariantValidator); ok && variant != "" && len(nonFinite) == 0 && len(errs) == 0 {
		for _, err := range vv.ValidateVariant(variant) {
			add(path, "%v", err)
		}
	}
}

// validate returns cfg.Validate(), or nothing when the config holds a
// non-finite number: range checks are written for numbers (x < 0 is false
// for NaN), and would only repeat the finite-number problem in other words.
func validate(cfg interface{ Validate() []error }, nonFinite []fieldProblem) []error {
	if len(nonFinite) > 0 {
		return nil
	}
	return cfg.Validate()
}

// CheckDataFile reports why path cannot be a task's data file: it does not
// exist, cannot be opened, or is a directory or another non-regular file
// (a device or a pipe would be read without end).
func CheckDataFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	switch {
	case st.IsDir():
		return fmt.Errorf("%s is a directory, not a data file", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (a device or a pipe?)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// NonFiniteTag is the value of the struct tag `arbench:"nonfinite"`, which
// marks a float field of a configuration for which NaN or ±Inf means
// something. Every other float of every configuration (each task's and
// model's Config, the training and bench sections), in nested structs,
// pointers, slices, arrays and maps included, must be a finite number. One
// reflect walk refuses NaN and ±Inf everywhere (in the experiment check and
// in DecodeConfig), naming the field; a config holding one is not passed to
// its Validate, whose range checks would only repeat the problem (x < 0 is
// false for NaN). No field of arbench's own configs needs the tag.
const NonFiniteTag = "nonfinite"

// nonFiniteProblems reports every float reachable from v (a struct or a
// pointer to one) that is NaN or ±Inf and not tagged NonFiniteTag, named
// by its YAML path relative to v.
func nonFiniteProblems(v any) []fieldProblem {
	var ps []fieldProblem
	walkFloats(reflect.ValueOf(v), "", func(path string, x float64) {
		ps = append(ps, fieldProblem{path, fmt.Sprintf("must be a finite number, got %v", x)})
	})
	return ps
}

func walkFloats(v reflect.Value, path string, visit func(path string, x float64)) {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if x := v.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
			visit(path, x)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkFloats(v.Elem(), path, visit)
		}
	case reflect.Struct:
		eachYAMLField(v.Type(), func(name string, index []int, f reflect.StructField) {
			if !slices.Contains(strings.Split(f.Tag.Get("arbench"), ","), NonFiniteTag) {
				walkFloats(fieldValue(v, index), joinPath(path, name), visit)
			}
		})
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkFloats(v.Index(i), fmt.Sprintf("%s[%d]", path, i), visit)
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			walkFloats(v.MapIndex(k), joinPath(path, fmt.Sprint(k)), visit)
		}
	}
}

// fieldValue is v.FieldByIndex, or the zero Value through a nil pointer.
func fieldValue(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// DecodeConfig strictly decodes a YAML (or JSON) mapping into cfg, a
// pointer returned by Model.Config or Task.Config that holds the defaults,
// and validates the result (finite numbers, then Validate). Problems are
// ConfigErrors located in file.
func DecodeConfig(file string, data []byte, cfg Config) error {
	w := newWalker(file)
	if doc := w.parse(data); doc != nil {
		w.decodeSection(doc, cfg, "")
	}
	if len(w.errs) == 0 {
		nonFinite := nonFiniteProblems(cfg)
		for _, p := range nonFinite {
			w.add(w.lineOf(p.field), p.field, "%s", p.msg)
		}
		for _, err := range validate(cfg, nonFinite) {
			w.add(0, "", "%v", err)
		}
	}
	return w.sorted().errorsOrNil()
}
