// Package external is the "ext" model family: a model that lives in
// another process, in any language, driven over the JSON-RPC protocol of
// PROTOCOL.md (Python SDK: python/arbench_plugin). The process is started
// at Setup, one per run, and stopped at Close; every call has a timeout,
// and every failure (a crash, a hang, garbage or an oversized response, a
// wrong protocol version, an error the plugin reports) is an error naming
// the plugin and quoting the tail of its stderr, which fails that run only.
//
// The model implements every capability interface and declares, through
// harness.CapabilityDeclarer, only those the plugin's describe lists; the
// experiment check asks the plugin (one short-lived process per command,
// cached) before any run starts. It owns its training step
// (harness.StepTrainer) and weights (harness.WeightsIO), reports whether
// it is deterministic (harness.DeterminismReporter) and its FLOPs as the
// plugin declares them (harness.FLOPsDeclarer). It reads no source: it is
// a language model.
package external

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"arbench/harness"
	"arbench/nn"
)

func init() {
	harness.RegisterModel("ext", "a model in another process (any language; Python SDK in python/), driven over JSON-RPC: config command: [...]", New)
}

// Defaults of Config.
const (
	DefaultTimeout        = 600.0 // seconds per call
	DefaultStartupTimeout = 120.0 // seconds for describe
	DefaultMaxResponse    = 1 << 30
)

// Config is the "ext" family's configuration.
type Config struct {
	// Command starts the plugin: the program and its arguments (no shell).
	Command []string `yaml:"command"`
	// TimeoutS bounds every call in seconds; StartupTimeoutS bounds
	// describe, which includes the interpreter's start and imports.
	TimeoutS        float64 `yaml:"timeout_s"`
	StartupTimeoutS float64 `yaml:"startup_timeout_s"`
	// MaxResponseBytes bounds one response line.
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// PluginConfig is passed to the plugin's init as its "config".
	PluginConfig map[string]any `yaml:"plugin_config"`
}

// Validate reports every problem at once.
func (c *Config) Validate() []error {
	var errs []error
	if len(c.Command) == 0 || c.Command[0] == "" {
		errs = append(errs, errors.New("command: the plugin's program and arguments are required, e.g. [python3, my_model.py]"))
	}
	if !(c.TimeoutS > 0) || math.IsInf(c.TimeoutS, 0) {
		errs = append(errs, fmt.Errorf("timeout_s: must be a positive number of seconds, got %v", c.TimeoutS))
	}
	if !(c.StartupTimeoutS > 0) || math.IsInf(c.StartupTimeoutS, 0) {
		errs = append(errs, fmt.Errorf("startup_timeout_s: must be a positive number of seconds, got %v", c.StartupTimeoutS))
	}
	if c.MaxResponseBytes < 1024 || c.MaxResponseBytes > DefaultMaxResponse {
		errs = append(errs, fmt.Errorf("max_response_bytes: must be in [1024, %d], got %d", DefaultMaxResponse, c.MaxResponseBytes))
	}
	return errs
}

func (c *Config) timeout() time.Duration        { return seconds(c.TimeoutS) }
func (c *Config) startupTimeout() time.Duration { return seconds(c.StartupTimeoutS) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// name is the plugin's name in messages: its script or program.
func (c *Config) name() string {
	if len(c.Command) == 0 {
		return "plugin"
	}
	return "plugin " + filepath.Base(c.Command[len(c.Command)-1])
}

// Model is an external plugin behind harness's interfaces.
type Model struct {
	cfg    Config
	p      *proc
	desc   *Description // the running process's, after Setup
	env    harness.Env
	params int
}

// New returns an unconfigured external model.
func New() harness.Model {
	return &Model{cfg: Config{TimeoutS: DefaultTimeout, StartupTimeoutS: DefaultStartupTimeout, MaxResponseBytes: DefaultMaxResponse}}
}

var (
	_ harness.StepTrainer         = (*Model)(nil)
	_ harness.Scorer              = (*Model)(nil)
	_ harness.Distributioner      = (*Model)(nil)
	_ harness.Stepper             = (*Model)(nil)
	_ harness.ContextLimiter      = (*Model)(nil)
	_ harness.EnvChecker          = (*Model)(nil)
	_ harness.CapabilityDeclarer  = (*Model)(nil)
	_ harness.WeightsIO           = (*Model)(nil)
	_ harness.DeterminismReporter = (*Model)(nil)
	_ harness.FLOPsDeclarer       = (*Model)(nil)
	_ harness.TextScorer          = (*Model)(nil)
	_ harness.Conditioner         = (*Model)(nil)
	_ harness.DecodeSweeper       = (*Model)(nil)
	_ harness.ProcessReporter     = (*Model)(nil)
)

// Config returns the model's configuration.
func (m *Model) Config() harness.Config { return &m.cfg }

// Params is nil: the weights live in the plugin.
func (m *Model) Params() *nn.ParamSet { return nil }

// Info names the family "ext", the plugin's parameter count and the
// runtime its description names.
func (m *Model) Info() harness.ModelInfo {
	info := harness.ModelInfo{Family: "ext", Params: m.params}
	if d, err := m.description(); err == nil {
		info.Runtime = d.Runtime
	}
	return info
}

// ProcessID is the plugin process's id while it runs, else 0.
func (m *Model) ProcessID() int {
	if m.p == nil || m.p.cmd.Process == nil {
		return 0
	}
	return m.p.cmd.Process.Pid
}

// description is the running process's description after Setup, else the
// command's (described once per command by a short-lived process).
func (m *Model) description() (*Description, error) {
	if m.desc != nil {
		return m.desc, nil
	}
	return describeCommand(&m.cfg)
}

// CheckEnv describes the plugin (before any run) and reports a plugin that
// does not start or speak the protocol, and rows longer than its context.
func (m *Model) CheckEnv(env harness.Env) []error {
	d, err := m.description()
	if err != nil {
		return []error{err}
	}
	if d.MaxContext > 0 && env.SeqLen > d.MaxContext {
		return []error{fmt.Errorf("%s: the task's rows have %d tokens, the plugin's max_context is %d", m.cfg.name(), env.SeqLen, d.MaxContext)}
	}
	return nil
}

// Declares reports the capabilities the plugin's describe lists (every
// one while the plugin cannot be described: CheckEnv reports why).
func (m *Model) Declares(c harness.Capability) bool {
	d, err := m.description()
	if err != nil {
		return true
	}
	switch c {
	case harness.NeedTrainer:
		return d.Has(CapTrainStep)
	case harness.NeedScorer:
		return d.Has(CapScore)
	case harness.NeedDistributions:
		return d.Has(CapNextLogProbs)
	case harness.NeedStepper:
		return d.Has(CapStep)
	case harness.NeedTextScorer:
		return d.Has(CapScoreText)
	}
	return false
}

// MaxContext is the plugin's max_context (0: unbounded).
func (m *Model) MaxContext() int {
	if d, err := m.description(); err == nil {
		return d.MaxContext
	}
	return 0
}

// Deterministic is the plugin's own claim.
func (m *Model) Deterministic() bool {
	d, err := m.description()
	return err == nil && d.Deterministic
}

// FLOPsPerToken is the plugin's flops_per_token (0: unknown).
func (m *Model) FLOPsPerToken() (float64, bool) {
	d, err := m.description()
	if err != nil || d.FLOPsPerToken == 0 {
		return 0, false
	}
	return d.FLOPsPerToken, true
}

// Setup starts the plugin, checks its description and initialises it.
func (m *Model) Setup(ctx context.Context, env harness.Env) error {
	if errs := m.cfg.Validate(); len(errs) > 0 {
		return fmt.Errorf("ext: %w", errors.Join(errs...))
	}
	if m.p != nil {
		if err := m.Close(); err != nil {
			return err
		}
	}
	p, d, err := launch(ctx, &m.cfg, os.Stderr)
	if err != nil {
		return err
	}
	m.p, m.desc, m.env = p, d, env
	params := map[string]any{
		"config": pluginConfig(m.cfg.PluginConfig),
		"env": map[string]int{"vocab": env.Vocab, "seq_len": env.SeqLen, "batch": env.Batch, "eval_batch": env.EvalBatch,
			"source_len": env.SourceLen, "target_len": env.TargetLen},
		"seed": env.Seed,
	}
	var res struct {
		Params int `json:"params"`
	}
	if err := p.call(ctx, "init", params, &res, m.cfg.timeout()); err != nil {
		return err
	}
	m.params = res.Params
	return nil
}

func pluginConfig(c map[string]any) map[string]any {
	if c == nil {
		return map[string]any{}
	}
	return c
}

// launch starts the plugin and describes it.
func launch(ctx context.Context, c *Config, stderr io.Writer) (*proc, *Description, error) {
	p, err := start(procOptions{name: c.name(), command: c.Command, maxLine: c.MaxResponseBytes, stderr: stderr})
	if err != nil {
		return nil, nil, err
	}
	var d Description
	if err := p.call(ctx, "describe", nil, &d, c.startupTimeout()); err != nil {
		p.kill()
		return nil, nil, err
	}
	if err := d.check(); err != nil {
		p.kill()
		return nil, nil, fmt.Errorf("%s %w", c.name(), err)
	}
	return p, &d, nil
}

// described caches describe results per command, so that the experiment
// check starts each plugin once.
var described = struct {
	sync.Mutex
	m map[string]*describeResult
}{m: map[string]*describeResult{}}

type describeResult struct {
	once sync.Once
	d    *Description
	err  error
}

// describeCommand describes c's plugin with a process of its own, once
// per command.
func describeCommand(c *Config) (*Description, error) {
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("ext: no command")
	}
	key := strings.Join(c.Command, "\x00")
	described.Lock()
	r := described.m[key]
	if r == nil {
		r = &describeResult{}
		described.m[key] = r
	}
	described.Unlock()
	r.once.Do(func() {
		p, d, err := launch(context.Background(), c, nil)
		if err != nil {
			r.err = err
			return
		}
		r.d = d
		if err := p.shutdown(context.Background()); err != nil {
			r.err = err
		}
	})
	return r.d, r.err
}

// Close shuts the plugin down (killing it if it does not exit).
func (m *Model) Close() error {
	if m.p == nil {
		return nil
	}
	p := m.p
	m.p = nil
	return p.shutdown(context.Background())
}

// ready checks that the model is set up and declared capability c.
func (m *Model) ready(c string) error {
	if m.p == nil {
		return fmt.Errorf("%s: not set up", m.cfg.name())
	}
	if !m.desc.Has(c) {
		return fmt.Errorf("%s (%s) did not declare capability %q (it declares %v)", m.cfg.name(), m.desc.Family, c, m.desc.Capabilities)
	}
	return nil
}

// batchParams encodes a batch: its source too for a conditional plugin,
// which needs one; a language model refuses a source.
func (m *Model) batchParams(b harness.Batch) (map[string]any, error) {
	if (b.Source != nil) != m.desc.Conditional {
		if m.desc.Conditional {
			return nil, fmt.Errorf("%s: a conditional model needs a source", m.cfg.name())
		}
		return nil, fmt.Errorf("%s: a language model reads no source", m.cfg.name())
	}
	in, err := ints(b.Inputs)
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	tg, err := ints(b.Targets)
	if err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	params := map[string]any{"inputs": in, "targets": tg}
	if b.Source != nil {
		src, err := ints(b.Source)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		params["source"] = src
	}
	return params, nil
}

// TrainStep runs one of the plugin's own optimiser steps.
func (m *Model) TrainStep(ctx context.Context, b harness.Batch, s harness.StepInfo) (float64, error) {
	if err := m.ready(CapTrainStep); err != nil {
		return 0, err
	}
	params, err := m.batchParams(b)
	if err != nil {
		return 0, err
	}
	params["step"], params["lr"], params["clip"], params["seed"] = s.Step, s.LR, s.Clip, s.Seed
	var res struct {
		Loss json.RawMessage `json:"loss"`
	}
	if err := m.p.call(ctx, "train_step", params, &res, m.cfg.timeout()); err != nil {
		return 0, err
	}
	loss, err := number(res.Loss)
	if err != nil {
		return 0, fmt.Errorf("%s: train_step: loss: %w", m.cfg.name(), err)
	}
	return loss, nil
}

// number reads a JSON number, or one of the strings "NaN", "Infinity" and
// "-Infinity" that stand for the values JSON cannot hold (PROTOCOL.md).
func number(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("missing")
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err == nil {
		return v, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, fmt.Errorf("%s is not a number", truncate(string(raw), 40))
}

// LogProbs scores the targets.
func (m *Model) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	if err := m.ready(CapScore); err != nil {
		return nil, err
	}
	params, err := m.batchParams(b)
	if err != nil {
		return nil, err
	}
	var res struct {
		LogProbs *Array `json:"logprobs"`
	}
	if err := m.p.call(ctx, "score", params, &res, m.cfg.timeout()); err != nil {
		return nil, err
	}
	B, T := len(b.Targets), rowLen(b.Targets)
	v, err := floats("logprobs", res.LogProbs, B, T)
	if err != nil {
		return nil, fmt.Errorf("%s: score: %w", m.cfg.name(), err)
	}
	out := make([][]float64, B)
	for i := range out {
		out[i] = make([]float64, T)
		for t := range T {
			if b.Targets[i][t] >= 0 {
				out[i][t] = float64(v[i*T+t])
			}
		}
	}
	return out, nil
}

func rowLen(rows [][]int) int {
	if len(rows) == 0 {
		return 0
	}
	return len(rows[0])
}

// NextLogProbs returns the full next-token distributions.
func (m *Model) NextLogProbs(ctx context.Context, inputs [][]int) ([][][]float32, error) {
	if err := m.ready(CapNextLogProbs); err != nil {
		return nil, err
	}
	in, err := ints(inputs)
	if err != nil {
		return nil, fmt.Errorf("%s: inputs: %w", m.cfg.name(), err)
	}
	var res struct {
		LogProbs *Array `json:"logprobs"`
	}
	if err := m.p.call(ctx, "next_logprobs", map[string]any{"inputs": in}, &res, m.cfg.timeout()); err != nil {
		return nil, err
	}
	B, T, V := len(inputs), rowLen(inputs), m.env.Vocab
	v, err := floats("logprobs", res.LogProbs, B, T, V)
	if err != nil {
		return nil, fmt.Errorf("%s: next_logprobs: %w", m.cfg.name(), err)
	}
	out := make([][][]float32, B)
	for i := range out {
		out[i] = make([][]float32, T)
		for t := range T {
			out[i][t] = v[(i*T+t)*V : (i*T+t+1)*V : (i*T+t+1)*V]
		}
	}
	return out, nil
}

// state is a plugin's generation state: its id and the tokens consumed.
type state struct {
	id  any
	len int
}

func (s *state) Len() int { return s.len }

// Start feeds the prompts and returns the plugin's state.
func (m *Model) Start(ctx context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	if err := m.ready(CapStep); err != nil {
		return nil, nil, err
	}
	in, err := ints(prompts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: prompts: %w", m.cfg.name(), err)
	}
	var res struct {
		State    any    `json:"state"`
		LogProbs *Array `json:"logprobs"`
	}
	if err := m.p.call(ctx, "start", map[string]any{"prompts": in}, &res, m.cfg.timeout()); err != nil {
		return nil, nil, err
	}
	lp, err := m.rowDists("start", res.LogProbs, len(prompts))
	if err != nil {
		return nil, nil, err
	}
	return &state{id: res.State, len: rowLen(prompts)}, lp, nil
}

// Step feeds one token per row.
func (m *Model) Step(ctx context.Context, s harness.State, tokens []int) ([][]float32, error) {
	if err := m.ready(CapStep); err != nil {
		return nil, err
	}
	st, ok := s.(*state)
	if !ok {
		return nil, fmt.Errorf("%s: step: a state of %T, not from Start", m.cfg.name(), s)
	}
	tk, err := ints1(tokens)
	if err != nil {
		return nil, fmt.Errorf("%s: tokens: %w", m.cfg.name(), err)
	}
	var res struct {
		LogProbs *Array `json:"logprobs"`
	}
	if err := m.p.call(ctx, "step", map[string]any{"state": st.id, "tokens": tk}, &res, m.cfg.timeout()); err != nil {
		return nil, err
	}
	st.len++
	return m.rowDists("step", res.LogProbs, len(tokens))
}

// rowDists decodes [B, V] log-distributions.
func (m *Model) rowDists(method string, a *Array, B int) ([][]float32, error) {
	V := m.env.Vocab
	v, err := floats("logprobs", a, B, V)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", m.cfg.name(), method, err)
	}
	out := make([][]float32, B)
	for i := range out {
		out[i] = v[i*V : (i+1)*V : (i+1)*V]
	}
	return out, nil
}

// SaveWeights asks the plugin to write its weights at path (meta is
// arbench's metadata, which the plugin's own format need not hold).
func (m *Model) SaveWeights(ctx context.Context, path string, _ map[string]string) error {
	if err := m.ready(CapSave); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return m.p.call(ctx, "save", map[string]any{"path": abs}, nil, m.cfg.timeout())
}

// LoadWeights asks the plugin to read its weights from path.
func (m *Model) LoadWeights(ctx context.Context, path string) error {
	if err := m.ready(CapLoad); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return m.p.call(ctx, "load", map[string]any{"path": abs}, nil, m.cfg.timeout())
}

// ScoreText asks the plugin for each text's total nats under its own
// tokenizer (score_text).
func (m *Model) ScoreText(ctx context.Context, texts [][]byte) ([]float64, error) {
	if err := m.ready(CapScoreText); err != nil {
		return nil, err
	}
	enc := make([]string, len(texts))
	for i, t := range texts {
		enc[i] = base64.StdEncoding.EncodeToString(t)
	}
	var res struct {
		Nats []json.RawMessage `json:"nats"`
	}
	if err := m.p.call(ctx, "score_text", map[string]any{"texts": enc}, &res, m.cfg.timeout()); err != nil {
		return nil, err
	}
	if len(res.Nats) != len(texts) {
		return nil, fmt.Errorf("%s: score_text: %d totals for %d texts", m.cfg.name(), len(res.Nats), len(texts))
	}
	out := make([]float64, len(texts))
	for i, raw := range res.Nats {
		v, err := number(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: score_text: nats[%d]: %w", m.cfg.name(), i, err)
		}
		out[i] = v
	}
	return out, nil
}

// Conditional reports a plugin that reads a source (describe's
// conditional).
func (m *Model) Conditional() bool {
	d, err := m.description()
	return err == nil && d.Conditional
}

// DecodeSettings are the plugin's decode_settings.
func (m *Model) DecodeSettings() []harness.DecodeSetting {
	d, err := m.description()
	if err != nil {
		return nil
	}
	return d.DecodeSettings
}

// Translate runs the plugin's own decoding (translate) of ragged sources,
// sent padded with harness.SourcePad.
func (m *Model) Translate(ctx context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	if err := m.ready(CapTranslate); err != nil {
		return nil, err
	}
	src, err := ints(padRows(sources))
	if err != nil {
		return nil, fmt.Errorf("%s: sources: %w", m.cfg.name(), err)
	}
	params := map[string]any{"sources": src, "start": opt.Start, "end": opt.End, "max_len": opt.MaxLen, "setting": opt.Setting, "length": opt.Length}
	var res struct {
		Outputs [][]int            `json:"outputs"`
		Passes  *int               `json:"passes"`
		Lengths []int              `json:"lengths"`
		Stats   map[string]float64 `json:"stats"`
	}
	if err := m.p.call(ctx, "translate", params, &res, m.cfg.timeout()); err != nil {
		return nil, err
	}
	switch {
	case len(res.Outputs) != len(sources):
		return nil, fmt.Errorf("%s: translate: %d outputs for %d sources", m.cfg.name(), len(res.Outputs), len(sources))
	case res.Passes == nil || *res.Passes < 0:
		return nil, fmt.Errorf("%s: translate: passes missing or negative", m.cfg.name())
	case res.Lengths != nil && len(res.Lengths) != len(sources):
		return nil, fmt.Errorf("%s: translate: %d lengths for %d sources", m.cfg.name(), len(res.Lengths), len(sources))
	}
	return &harness.Translation{Outputs: res.Outputs, Passes: *res.Passes, Lengths: res.Lengths, Stats: res.Stats}, nil
}

// padRows pads ragged rows at the end with harness.SourcePad.
func padRows(rows [][]int) [][]int {
	S := 0
	for _, r := range rows {
		S = max(S, len(r))
	}
	out := make([][]int, len(rows))
	for i, r := range rows {
		out[i] = append(make([]int, 0, S), r...)
		for len(out[i]) < S {
			out[i] = append(out[i], harness.SourcePad)
		}
	}
	return out
}
