package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"arbench/harness"
	"arbench/nn"
)

// genFlags are the flags of `arbench generate`.
type genFlags struct {
	fs                             *flag.FlagSet
	model, weights, prompt, config string
	backend, device                string
	max, topK, seqLen, stop        int
	temperature, topP              float64
	seed                           uint64
}

func newGenFlags(w io.Writer) *genFlags {
	f := &genFlags{fs: flag.NewFlagSet("generate", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(w)
	fs.StringVar(&f.model, "model", "", "model family, or a model label of -config (default: the family stored in the weights)")
	fs.StringVar(&f.weights, "load-weights", "", "weights `FILE` (.safetensors, as written by run -save-weights)")
	fs.StringVar(&f.prompt, "prompt", "", "prompt `TEXT` (bytes are tokens)")
	fs.StringVar(&f.config, "config", "", "experiment `FILE` whose model entry configures the model "+
		"(default: the configuration stored in the weights, else the model's defaults)")
	fs.IntVar(&f.max, "max", 200, "generate at most `N` bytes")
	fs.Float64Var(&f.temperature, "temperature", 1, "sampling temperature `T`; 0 is greedy decoding")
	fs.IntVar(&f.topK, "top-k", 0, "sample from the `K` most probable bytes only (0: all)")
	fs.Float64Var(&f.topP, "top-p", 1, "nucleus sampling: the smallest set of bytes with probability mass >= `P`")
	fs.Uint64Var(&f.seed, "seed", 1, "sampling seed `S`")
	fs.IntVar(&f.stop, "stop", -1, "stop after generating byte value `B` (-1: never)")
	fs.IntVar(&f.seqLen, "seq-len", 0, "window length `N` the model is set up for (default: stored in the weights, else 64)")
	fs.StringVar(&f.backend, "backend", harness.DefaultBackend, "backend `NAME`")
	fs.StringVar(&f.device, "device", harness.DefaultDevice, "`DEVICE` to run on")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: arbench generate -load-weights FILE -prompt TEXT [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return f
}

// options returns the generation options of the flags, or their mistakes
// at once as a usage error (harness.GenOptions.Validate, and -stop, which
// must be a byte of the byte-level models generate runs).
func (f *genFlags) options() (harness.GenOptions, error) {
	opt := harness.GenOptions{
		MaxNew: f.max, Temperature: f.temperature, TopK: f.topK, TopP: f.topP, StopToken: f.stop, Seed: f.seed,
	}
	errs := []error{opt.Validate()}
	if f.stop < -1 || f.stop > 255 {
		errs = append(errs, fmt.Errorf("-stop must be a byte value or -1, got %d", f.stop))
	}
	if err := errors.Join(errs...); err != nil {
		return opt, usageErrorf("generate: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return opt, nil
}

func cmdGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f := newGenFlags(stderr)
	if done, err := parseFlags(f.fs, args); done {
		return err
	}
	if f.weights == "" || f.prompt == "" {
		return usageErrorf("generate needs -load-weights FILE and a non-empty -prompt TEXT (see arbench help generate)")
	}
	opt, err := f.options()
	if err != nil {
		return err
	}
	meta, err := nn.ReadSafetensorsMetadata(f.weights)
	if err != nil {
		return fmt.Errorf("generate: read %s: %w", f.weights, err)
	}
	m, err := f.newModel(meta)
	if err != nil {
		return err
	}
	defer func() {
		if c, ok := m.(io.Closer); ok {
			if cerr := c.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("generate: close %s: %w", m.Info().Family, cerr))
			}
		}
	}()
	vocab, err := f.setup(ctx, m, meta)
	if err != nil {
		return err
	}
	prompt := make([]int, len(f.prompt))
	for i := range len(f.prompt) {
		prompt[i] = int(f.prompt[i])
		if prompt[i] >= vocab {
			return fmt.Errorf("generate: prompt byte %d (%q) is outside the model's vocabulary of %d", i, f.prompt[i], vocab)
		}
	}
	out, err := harness.Generate(ctx, m, [][]int{prompt}, opt)
	if err != nil {
		return err
	}
	text := []byte(f.prompt)
	for _, t := range out[0] {
		text = append(text, byte(t))
	}
	text = append(text, '\n')
	_, err = stdout.Write(text)
	return err
}

// setup checks the model for its environment (harness.CheckModel: the
// plugin's own check and its memory estimate, before anything the size of
// the model is allocated), sets it up and loads the weights; it returns
// the vocabulary size.
func (f *genFlags) setup(ctx context.Context, m harness.Model, meta map[string]string) (int, error) {
	vocab, seqLen := 256, 64
	if v, err := strconv.Atoi(meta["vocab"]); err == nil && v > 0 {
		vocab = v
	}
	if v, err := strconv.Atoi(meta["seq_len"]); err == nil && v > 0 {
		seqLen = v
	}
	if f.seqLen > 0 {
		seqLen = f.seqLen
	}
	backend, err := nn.OpenBackend(f.backend, f.device)
	if err != nil {
		return 0, fmt.Errorf("generate: %w", err)
	}
	// One prompt: the model scores one row at a time.
	env := harness.Env{Backend: backend, Vocab: vocab, SeqLen: seqLen, Seed: f.seed, EvalBatch: 1}
	if err := harness.CheckModel(m, env); err != nil {
		return 0, fmt.Errorf("generate: check model: %w", err)
	}
	if err := m.Setup(ctx, env); err != nil {
		return 0, fmt.Errorf("generate: setup %s: %w", m.Info().Family, err)
	}
	if m.Params() == nil {
		return 0, fmt.Errorf("generate: model %s has no parameters to load", m.Info().Family)
	}
	if err := nn.LoadSafetensors(f.weights, m.Params()); err != nil {
		return 0, fmt.Errorf("generate: load weights %s: %w", f.weights, err)
	}
	return vocab, nil
}

// newModel instantiates the model and decodes its configuration from
// -config, else from the weights' metadata, else keeps the defaults.
func (f *genFlags) newModel(meta map[string]string) (harness.Model, error) {
	family := f.model
	var cfgJSON []byte
	source := ""
	if f.config != "" {
		e, err := harness.LoadExperiment(f.config)
		if err != nil {
			return nil, err
		}
		spec := pickModel(e, f.model, meta["family"])
		if spec == nil {
			return nil, fmt.Errorf("generate: cannot tell which model of %s to use (-model %q, weights of %q)", f.config, f.model, meta["family"])
		}
		family = spec.Name
		b, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		var s struct {
			Config json.RawMessage `json:"config"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		cfgJSON, source = s.Config, f.config
	} else if stored := meta["config"]; stored != "" {
		var s struct {
			Model struct {
				Name   string          `json:"name"`
				Config json.RawMessage `json:"config"`
			} `json:"model"`
		}
		if err := json.Unmarshal([]byte(stored), &s); err != nil {
			return nil, fmt.Errorf("generate: %s: stored configuration: %w", f.weights, err)
		}
		if family == "" || family == s.Model.Name {
			family, cfgJSON, source = s.Model.Name, s.Model.Config, f.weights+" (stored configuration)"
		}
	}
	if family == "" {
		family = meta["family"]
	}
	if family == "" {
		return nil, fmt.Errorf("generate: %s does not say which model it holds; give -model", f.weights)
	}
	m, err := harness.NewModel(family)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if cfgJSON != nil {
		if err := harness.DecodeConfig(source, cfgJSON, m.Config()); err != nil {
			return nil, err
		}
	} else if errs := m.Config().Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("generate: default configuration of %s: %w", family, errors.Join(errs...))
	}
	return m, nil
}

// pickModel finds the experiment's model entry: by label, else by family
// (name, or the weights' family when name is empty), else the only one.
func pickModel(e *harness.Experiment, name, family string) *harness.ModelSpec {
	for i, m := range e.Models {
		if name != "" && m.Label == name {
			return &e.Models[i]
		}
	}
	if name != "" {
		family = name
	}
	for i, m := range e.Models {
		if m.Name == family {
			return &e.Models[i]
		}
	}
	if name == "" && len(e.Models) == 1 {
		return &e.Models[0]
	}
	return nil
}
