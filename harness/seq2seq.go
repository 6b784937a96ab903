package harness

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// Conditional (sequence-to-sequence) tasks give a model a source and score
// or generate a target. A task's batches set Batch.Source (right-padded
// with SourcePad); a model reads them in one of two ways:
//
//   - a Conditioner (an encoder–decoder, a non-autoregressive model) reads
//     Batch.Source itself and generates through Translator or
//     SourceStepper;
//   - a language model that is a SourceJoiner reads one joined sequence,
//     the source then the decoder input (JoinSource), and generates the
//     target as the continuation of the source and the start token.
//
// BatchFor, ScoreBatch and Translate are the one place that decides
// between them; tasks and the runner call these and never look at the
// model's type themselves.

// SourcePad pads the rows of Batch.Source: a conditional task never uses
// token 0 as source content, so a source's length is the number of tokens
// before its first SourcePad (SourceLen).
const SourcePad = 0

// SourceLen returns the length of a padded source row.
func SourceLen(row []int) int {
	for i, t := range row {
		if t == SourcePad {
			return i
		}
	}
	return len(row)
}

// SourceJoiner is a language model that runs conditional tasks by reading
// the source and the target as one sequence (the "source-aware mode" of a
// decoder-only model): JoinsSource reports whether its configuration
// allows it. A language model without it is refused by a task that
// declares NeedSource, before any work.
type SourceJoiner interface {
	JoinsSource() bool
}

// SourceStepper is a conditional autoregressive model that generates with
// carried state: StartSource encodes the sources (ragged rows of content
// tokens, no padding) once and consumes the equal-length prompts (the
// decoder's first inputs), returning the next-token log-probabilities;
// Step continues as Stepper.Step does.
type SourceStepper interface {
	StartSource(ctx context.Context, sources, prompts [][]int) (State, [][]float32, error)
	Step(ctx context.Context, s State, tokens []int) ([][]float32, error)
}

// TranslateOptions configure one call of Translate.
type TranslateOptions struct {
	// Start is the decoder's first input (the task's BOS), End the token
	// that ends an output (its EOS).
	Start, End int
	// MaxLen bounds an output's length in tokens, End included: a row that
	// has not produced End after MaxLen tokens is cut there.
	MaxLen int
	// Setting selects one of the model's DecodeSettings by name; empty is
	// the model's configured decoding.
	Setting string
	// Length, when positive, makes every output exactly Length tokens
	// long, for timing at controlled lengths (package bench): an
	// autoregressive decoder ignores End and stops at Length, a model that
	// predicts the target length uses Length instead. MaxLen is then
	// ignored.
	Length int
}

// Fixed returns o as greedy decoders apply it: with Length set, End is
// −1 (no token ends an output) and MaxLen is Length.
func (o TranslateOptions) Fixed() TranslateOptions {
	if o.Length > 0 {
		o.End, o.MaxLen = -1, o.Length
	}
	return o
}

// Validate reports an unusable option.
func (o TranslateOptions) Validate() error {
	if o.Length < 0 {
		return fmt.Errorf("translate: output length %d < 0", o.Length)
	}
	if o.Length == 0 && o.MaxLen < 1 {
		return fmt.Errorf("translate: maximum output length %d < 1", o.MaxLen)
	}
	return nil
}

// Translation is what decoding a batch of sources produced.
type Translation struct {
	// Outputs[i] is the output for source i, without the End token.
	Outputs [][]int
	// Passes is the number of decoder passes over the batch: a step of an
	// autoregressive decoder, an iteration of mask-predict, a verifier
	// call of speculative decoding (its drafts are counted in Stats).
	Passes int
	// Lengths, when the model predicts the target length before decoding
	// (a non-autoregressive model), holds the length chosen per row, End
	// included; nil otherwise.
	Lengths []int
	// Stats are model-specific counts summed over the batch (a speculative
	// decoder's "drafted", "accepted", "verify_calls", "draft_seconds",
	// "verify_seconds"); nil when none.
	Stats map[string]float64
}

// Translator is a conditional model with its own decoding (mask-predict,
// speculative decoding). sources are ragged rows of content tokens.
type Translator interface {
	Translate(ctx context.Context, sources [][]int, opt TranslateOptions) (*Translation, error)
}

// DecodeSetting is one decoding configuration of a trained model that an
// evaluation sweeps (mask-predict's iterations T, speculative decoding's
// draft length γ), passed back as TranslateOptions.Setting.
type DecodeSetting struct {
	// Name identifies the setting in metric names ("T=4", "gamma=4").
	Name string
	// Params records the setting ({"iterations": 4}).
	Params map[string]any
	// Baseline marks the setting others' speed-ups are measured against
	// (speculative decoding's verifier alone); at most one.
	Baseline bool
}

// DecodeSweeper is a Translator whose decoding has settings to sweep.
type DecodeSweeper interface {
	Translator
	DecodeSettings() []DecodeSetting
}

// SourceMode says how m reads a source: "conditioner" (a Conditioner that
// decodes as a Translator or SourceStepper), "joined" (a SourceJoiner
// language model that decodes) or "" when it cannot run a conditional
// task.
func SourceMode(m Model) string {
	if c, ok := m.(Conditioner); ok && c.Conditional() {
		_, tr := m.(Translator)
		_, ss := m.(SourceStepper)
		if tr || ss {
			return "conditioner"
		}
		return ""
	}
	if j, ok := m.(SourceJoiner); ok && j.JoinsSource() {
		if NeedDecoding.Has(m) {
			return "joined"
		}
	}
	return ""
}

// JoinSource returns the language-model batch of a conditional batch: row
// i reads the source (without padding), then the decoder input, and is
// scored on the same targets,
//
//	Inputs[i]  = source, Inputs_b[i] up to its last scored target, then SourcePad
//	Targets[i] = −1 × len(source), Targets_b[i] likewise, then −1,
//
// right-padded to the longest row. Offsets[i] is where row i's decoder
// input starts (its source length).
func JoinSource(b Batch) (joined Batch, offsets []int) {
	rows := len(b.Inputs)
	offsets = make([]int, rows)
	lens := make([]int, rows)
	width := 0
	for i := range rows {
		offsets[i] = SourceLen(b.Source[i])
		lens[i] = scoredLen(b.Targets[i])
		width = max(width, offsets[i]+lens[i])
	}
	joined = Batch{Inputs: make([][]int, rows), Targets: make([][]int, rows)}
	for i := range rows {
		in, tg := make([]int, width), make([]int, width)
		for j := range tg {
			tg[j] = -1
		}
		n := copy(in, b.Source[i][:offsets[i]])
		copy(in[n:], b.Inputs[i][:lens[i]])
		copy(tg[n:], b.Targets[i][:lens[i]])
		joined.Inputs[i], joined.Targets[i] = in, tg
	}
	return joined, offsets
}

// scoredLen is one past the last non-negative target of row.
func scoredLen(row []int) int {
	for j := len(row) - 1; j >= 0; j-- {
		if row[j] >= 0 {
			return j + 1
		}
	}
	return 0
}

// BatchFor returns b as m reads it: b itself for a batch without a source
// or a Conditioner, the joined batch (JoinSource) for a SourceJoiner, and
// an error for a model that cannot read a source.
func BatchFor(m Model, b Batch) (Batch, error) {
	if b.Source == nil {
		return b, nil
	}
	switch SourceMode(m) {
	case "conditioner":
		return b, nil
	case "joined":
		j, _ := JoinSource(b)
		return j, nil
	}
	return Batch{}, fmt.Errorf("model %s cannot read a source sequence: it is neither a Conditioner nor a SourceJoiner language model", m.Info().Family)
}

// ScoreBatch returns log p(Targets[i][t]) under teacher forcing for a
// batch that may have a source, in the shape of b.Targets (0 where the
// target is negative), whichever way m reads the source.
func ScoreBatch(ctx context.Context, m Model, b Batch) ([][]float64, error) {
	sc, ok := ScorerOf(m)
	if !ok {
		return nil, fmt.Errorf("model %s cannot score targets (no Scorer)", m.Info().Family)
	}
	if b.Source == nil || SourceMode(m) == "conditioner" {
		return sc.LogProbs(ctx, b)
	}
	if SourceMode(m) != "joined" {
		return nil, fmt.Errorf("model %s cannot read a source sequence", m.Info().Family)
	}
	j, offsets := JoinSource(b)
	lp, err := sc.LogProbs(ctx, j)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(b.Targets))
	for i, row := range b.Targets {
		out[i] = make([]float64, len(row))
		for t := range scoredLen(row) {
			if row[t] >= 0 {
				out[i][t] = lp[i][offsets[i]+t]
			}
		}
	}
	return out, nil
}

// Translate decodes sources (ragged rows of content tokens) with m: the
// model's own decoding when it is a Translator, else greedy decoding
// (the lowest token on ties, Argmax) through a SourceStepper, else, for a
// SourceJoiner language model, greedy continuation of source + Start
// through a Decoder (rows grouped by source length, so every group's
// prompts have equal length). Greedy decoding stops a row at End or
// MaxLen; Passes counts the decoder steps of the longest group.
func Translate(ctx context.Context, m Model, sources [][]int, opt TranslateOptions) (*Translation, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, errors.New("translate: no sources")
	}
	if tr, ok := m.(Translator); ok {
		// The model's own decoding applies Length itself.
		out, err := tr.Translate(ctx, sources, opt)
		if err == nil && len(out.Outputs) != len(sources) {
			err = fmt.Errorf("model %s translated %d of %d sources", m.Info().Family, len(out.Outputs), len(sources))
		}
		return out, err
	}
	if opt.Setting != "" {
		return nil, fmt.Errorf("model %s has no decoding setting %q (it is no DecodeSweeper)", m.Info().Family, opt.Setting)
	}
	opt = opt.Fixed()
	if ss, ok := m.(SourceStepper); ok && SourceMode(m) == "conditioner" {
		return greedySource(ctx, ss, sources, opt)
	}
	if SourceMode(m) == "joined" {
		return greedyJoined(ctx, m, sources, opt)
	}
	return nil, fmt.Errorf("model %s cannot translate: it is no Translator, SourceStepper or SourceJoiner language model", m.Info().Family)
}

// greedySource is Translate's greedy loop over a SourceStepper.
func greedySource(ctx context.Context, ss SourceStepper, sources [][]int, opt TranslateOptions) (*Translation, error) {
	prompts := make([][]int, len(sources))
	for i := range prompts {
		prompts[i] = []int{opt.Start}
	}
	st, logp, err := ss.StartSource(ctx, sources, prompts)
	if err != nil {
		return nil, fmt.Errorf("translate: %w", err)
	}
	outs, passes, err := greedyLoop(ctx, logp, opt, func(tokens []int) ([][]float32, error) {
		return ss.Step(ctx, st, tokens)
	})
	if err != nil {
		return nil, err
	}
	return &Translation{Outputs: outs, Passes: passes}, nil
}

// greedyJoined is Translate's loop for a SourceJoiner language model.
func greedyJoined(ctx context.Context, m Model, sources [][]int, opt TranslateOptions) (*Translation, error) {
	groups := map[int][]int{}
	for i, s := range sources {
		groups[len(s)] = append(groups[len(s)], i)
	}
	lens := make([]int, 0, len(groups))
	for l := range groups {
		lens = append(lens, l)
	}
	sort.Ints(lens)
	res := &Translation{Outputs: make([][]int, len(sources))}
	for _, l := range lens {
		rows := groups[l]
		dec, err := NewDecoder(m, l+opt.MaxLen, DecodeOptions{})
		if err != nil {
			return nil, fmt.Errorf("translate: %w", err)
		}
		prompts := make([][]int, len(rows))
		for k, i := range rows {
			prompts[k] = append(append(make([]int, 0, l+1), sources[i]...), opt.Start)
		}
		logp, err := dec.Start(ctx, prompts)
		if err != nil {
			return nil, fmt.Errorf("translate: sources of %d tokens: %w", l, err)
		}
		outs, passes, err := greedyLoop(ctx, logp, opt, func(tokens []int) ([][]float32, error) {
			return dec.Step(ctx, tokens)
		})
		if err != nil {
			return nil, fmt.Errorf("translate: sources of %d tokens: %w", l, err)
		}
		for k, i := range rows {
			res.Outputs[i] = outs[k]
		}
		res.Passes = max(res.Passes, passes)
	}
	return res, nil
}

// greedyLoop picks Argmax tokens from logp, feeding them back through step
// until every row has produced opt.End or opt.MaxLen tokens. It returns the
// outputs without End and the number of decoder passes (the first
// distribution, from the caller's start, counts as one).
func greedyLoop(ctx context.Context, logp [][]float32, opt TranslateOptions, step func([]int) ([][]float32, error)) ([][]int, int, error) {
	rows := len(logp)
	outs := make([][]int, rows)
	done := make([]bool, rows)
	tokens := make([]int, rows)
	passes := 1
	for n := 1; ; n++ {
		left := 0
		for i := range rows {
			tokens[i] = opt.End
			if done[i] {
				continue
			}
			if tok := Argmax(logp[i]); tok == opt.End {
				done[i] = true
			} else {
				outs[i] = append(outs[i], tok)
				tokens[i] = tok
				if n >= opt.MaxLen {
					done[i] = true
				} else {
					left++
				}
			}
		}
		if left == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		var err error
		if logp, err = step(tokens); err != nil {
			return nil, 0, fmt.Errorf("translate: step %d: %w", n, err)
		}
		passes++
	}
	for i := range outs {
		if outs[i] == nil {
			outs[i] = []int{}
		}
	}
	return outs, passes, nil
}
