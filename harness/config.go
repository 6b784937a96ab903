package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"regexp"
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
//	tasks:
//	  - name: text/jargon      # family/variant; optional data: FILE
//	    config: {seq_len: 64}  # decoded strictly into the task's Config()
//	models:
//	  - name: rnn              # optional label: NAME to tell two entries apart
//	    config: {hidden: 256}  # decoded strictly into the model's Config()
//	    train: {lr: 0.01}      # optional per-model override of train fields
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

func (c TrainConfig) problems() []fieldProblem {
	var ps []fieldProblem
	add := func(bad bool, field, format string, args ...any) {
		if bad {
			ps = append(ps, fieldProblem{field, fmt.Sprintf(format, args...)})
		}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	add(c.Steps < 0, "steps", "must be >= 0, got %d", c.Steps)
	add(c.Batch < 1, "batch", "must be >= 1, got %d", c.Batch)
	add(!(c.LR > 0) || !finite(c.LR), "lr", "must be a positive number, got %v", c.LR)
	add(!(c.Clip >= 0) || !finite(c.Clip), "clip", "must be >= 0 (0 disables clipping), got %v", c.Clip)
	add(c.EvalEvery < 0, "eval_every", "must be >= 0, got %d", c.EvalEvery)
	add(c.LogEvery < 1, "log_every", "must be >= 1, got %d", c.LogEvery)
	add(!(c.WeightDecay >= 0) || !finite(c.WeightDecay), "weight_decay", "must be >= 0, got %v", c.WeightDecay)
	add(c.WarmupSteps < 0, "warmup_steps", "must be >= 0, got %d", c.WarmupSteps)
	add(!(c.Beta1 >= 0 && c.Beta1 < 1), "beta1", "must be in [0, 1), got %v", c.Beta1)
	add(!(c.Beta2 >= 0 && c.Beta2 < 1), "beta2", "must be in [0, 1), got %v", c.Beta2)
	add(!(c.Eps > 0) || !finite(c.Eps), "eps", "must be a positive number, got %v", c.Eps)
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

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
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

// LoadExperiment reads and checks an experiment file (see Experiment).
func LoadExperiment(path string) (*Experiment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read experiment: %w", err)
	}
	return ParseExperiment(path, data)
}

// ParseExperiment decodes an experiment strictly: unknown fields at any
// level (including inside each task's and model's config), type errors,
// unknown task/model/backend names and every Config.Validate problem are
// all reported at once as ConfigErrors, each located as FILE:LINE: path.
func ParseExperiment(file string, data []byte) (*Experiment, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, ConfigErrors{{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	w := &walker{file: file, lines: map[string]int{}}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind == 0 || (doc.Kind == yaml.ScalarNode && doc.Tag == "!!null") {
		return nil, ConfigErrors{{File: file, Line: 1, Msg: "empty experiment file"}}
	}
	w.lines[""] = doc.Line
	if doc.Kind != yaml.MappingNode {
		return nil, ConfigErrors{{File: file, Line: doc.Line, Msg: "expected a mapping, got " + describeNode(doc)}}
	}
	w.walk(doc, reflect.TypeFor[fileExperiment](), "")
	fe := fileExperiment{Train: DefaultTrain()}
	// Type errors were all reported by the walk, and Decode keeps decoding
	// past them, so the well-typed parts are still checked below. Other
	// decoding failures (duplicate keys) stop here.
	if err := doc.Decode(&fe); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) || w.duplicates {
			if len(w.errs) == 0 {
				w.add(doc.Line, "", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			}
			return nil, w.sorted()
		}
	}

	e := &Experiment{Name: fe.Name, Backend: fe.Backend, Device: fe.Device, Out: fe.Out, Train: fe.Train}
	switch {
	case fe.Seed != nil && fe.Seeds != nil:
		w.add(w.lineOf("seeds"), "seeds", "seed and seeds are mutually exclusive")
	case fe.Seed != nil:
		e.Seeds = []uint64{*fe.Seed}
	case fe.Seeds != nil:
		e.Seeds = fe.Seeds
	}
	for i, ft := range fe.Tasks {
		path := fmt.Sprintf("tasks[%d]", i)
		spec := TaskSpec{Name: ft.Name, Data: ft.Data}
		if ft.Name == "" {
			w.add(w.lineOf(path), path+".name", "required")
		} else if t, _, err := NewTask(ft.Name); err != nil {
			w.add(w.lineOf(path+".name"), path+".name", "%v", err)
		} else {
			spec.Config = t.Config()
			w.decodeSection(&ft.Config, spec.Config, path+".config")
		}
		e.Tasks = append(e.Tasks, spec)
	}
	for i, fm := range fe.Models {
		path := fmt.Sprintf("models[%d]", i)
		spec := ModelSpec{Name: fm.Name, Label: fm.Label, Train: e.Train}
		if spec.Label == "" {
			spec.Label = fm.Name
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
		e.Models = append(e.Models, spec)
	}
	if fe.Bench.Kind != 0 {
		e.Bench = DefaultBench()
		w.decodeSection(&fe.Bench, e.Bench, "bench")
	}
	e.fillDefaults()
	w.errs = append(w.errs, e.check(file, w.lineOf)...)
	if len(w.errs) > 0 {
		return nil, w.sorted()
	}
	return e, nil
}

// NewExperiment builds an experiment from names, as the command line does:
// every task and model gets its default configuration and tasks get data as
// their data file. Unknown names are reported at once, attributed to the
// -task and -model flags; the caller applies its other settings and then
// calls Check (Run checks again anyway).
func NewExperiment(name string, taskNames, modelNames []string, data string) (*Experiment, error) {
	e := &Experiment{Name: name, Train: DefaultTrain()}
	var errs ConfigErrors
	for _, n := range taskNames {
		spec := TaskSpec{Name: n, Data: data}
		if t, _, err := NewTask(n); err != nil {
			errs = append(errs, &ConfigError{Path: "-task", Msg: err.Error()})
		} else {
			spec.Config = t.Config()
		}
		e.Tasks = append(e.Tasks, spec)
	}
	for _, n := range modelNames {
		spec := ModelSpec{Name: n, Label: n, Train: e.Train}
		if m, err := NewModel(n); err != nil {
			errs = append(errs, &ConfigError{Path: "-model", Msg: err.Error()})
		} else {
			spec.Config = m.Config()
		}
		e.Models = append(e.Models, spec)
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

// check validates a resolved experiment; line locates a field path.
func (e *Experiment) check(file string, line func(path string) int) ConfigErrors {
	var errs ConfigErrors
	add := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{File: file, Line: line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}
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
	if len(e.Tasks) == 0 {
		add("tasks", "at least one task is required")
	}
	taskSeen := map[string]int{}
	for i, t := range e.Tasks {
		path := fmt.Sprintf("tasks[%d]", i)
		if j, dup := taskSeen[t.Name]; dup && t.Name != "" {
			add(path+".name", "duplicate of tasks[%d] (%s); results are keyed by task name", j, t.Name)
		}
		taskSeen[t.Name] = i
		if t.Config != nil {
			errs := t.Config.Validate()
			for _, err := range errs {
				add(path+".config", "%v", err)
			}
			if vv, ok := t.Config.(VariantValidator); ok && len(errs) == 0 {
				_, variant, _ := strings.Cut(t.Name, "/")
				for _, err := range vv.ValidateVariant(variant) {
					add(path+".config", "%v", err)
				}
			}
		}
	}
	if len(e.Models) == 0 {
		add("models", "at least one model is required")
	}
	if e.Bench != nil {
		for _, err := range e.Bench.Validate() {
			add("bench", "%v", err)
		}
	}
	labelSeen := map[string]int{}
	global := map[fieldProblem]bool{}
	for _, p := range e.Train.problems() {
		global[p] = true
	}
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
			if !global[p] { // inherited problems are reported once, under train
				add(path+".train."+p.field, "%s", p.msg)
			}
		}
		if m.Config != nil {
			for _, err := range m.Config.Validate() {
				add(path+".config", "%v", err)
			}
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// walker checks a YAML node tree against a Go type (through its yaml tags)
// and records every problem with its line, plus the line of every path.
type walker struct {
	file  string
	errs  ConfigErrors
	lines map[string]int
	// duplicates says a mapping repeats a key, which makes yaml.v3 skip
	// the whole mapping when decoding.
	duplicates bool
}

func (w *walker) add(line int, path, format string, args ...any) {
	w.errs = append(w.errs, &ConfigError{File: w.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// sorted returns the errors in line order (stable).
func (w *walker) sorted() ConfigErrors {
	sort.SliceStable(w.errs, func(i, j int) bool { return w.errs[i].Line < w.errs[j].Line })
	return w.errs
}

// lineOf returns the line of path, or of its nearest recorded ancestor.
func (w *walker) lineOf(path string) int {
	for {
		if l, ok := w.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
	}
}

// decodeSection checks n against target's type and, when it is clean,
// decodes it into target (a pointer holding defaults).
func (w *walker) decodeSection(n *yaml.Node, target any, path string) {
	if n.Kind == 0 { // absent
		return
	}
	before := len(w.errs)
	w.walk(n, reflect.TypeOf(target), path)
	if len(w.errs) > before {
		return
	}
	if err := n.Decode(target); err != nil {
		w.add(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
}

var (
	nodeType        = reflect.TypeFor[yaml.Node]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		w.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null keeps the default
	}
	if t == nodeType {
		return
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) || t.String() == "time.Time" {
		w.checkScalar(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.walk(n, t.Elem(), path)
	case reflect.Interface:
		// Any value is accepted.
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.add(n.Line, path, "expected a mapping, got %s", describeNode(n))
			return
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				w.add(k.Line, p, "duplicate field (first at line %d)", first)
				w.duplicates = true
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				w.add(k.Line, p, "unknown field (known: %s)", strings.Join(sortedKeys(fields), ", "))
				continue
			}
			w.walk(v, ft, p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.add(n.Line, path, "expected a mapping, got %s", describeNode(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			w.checkScalar(k, t.Key(), p)
			w.walk(v, t.Elem(), p)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			w.add(n.Line, path, "expected a list, got %s", describeNode(n))
			return
		}
		if t.Kind() == reflect.Array && len(n.Content) != t.Len() {
			w.add(n.Line, path, "expected a list of %d elements, got %d", t.Len(), len(n.Content))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		w.checkScalar(n, t, path)
	}
}

// checkScalar decodes n into a fresh value of type t and reports failures.
func (w *walker) checkScalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode && !t.Implements(unmarshalerType) && !reflect.PointerTo(t).Implements(unmarshalerType) {
		w.add(n.Line, path, "expected %s, got %s", describeType(t), describeNode(n))
		return
	}
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		isUint := t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr
		if n.Tag == "!!int" && isNumberKind(t.Kind()) && !(isUint && strings.HasPrefix(n.Value, "-")) {
			w.add(n.Line, path, "%s is out of range for %s", n.Value, describeType(t))
		} else {
			w.add(n.Line, path, "expected %s, got %s", describeType(t), describeNode(n))
		}
		return
	}
	w.add(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
}

func isNumberKind(k reflect.Kind) bool {
	return (k >= reflect.Int && k <= reflect.Uint64) || k == reflect.Float32 || k == reflect.Float64
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t.String() == "time.Duration" {
			return "a duration (e.g. 1m30s)"
		}
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return fmt.Sprintf("string %q", n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "an unsupported node"
}

// yamlFields maps the YAML keys of struct type t (as yaml.v3 names them:
// the tag name, else the lower-cased field name; ",inline" structs merged;
// "-" skipped) to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DecodeConfig strictly decodes a YAML (or JSON) mapping into cfg, a
// pointer returned by Model.Config or Task.Config that holds the defaults,
// and validates the result. Problems are ConfigErrors located in file.
func DecodeConfig(file string, data []byte, cfg Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return ConfigErrors{{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	w := &walker{file: file, lines: map[string]int{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		w.decodeSection(root.Content[0], cfg, "")
	}
	if len(w.errs) == 0 {
		for _, err := range cfg.Validate() {
			w.add(0, "", "%v", err)
		}
	}
	return w.sorted().errorsOrNil()
}
