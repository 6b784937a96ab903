package nar

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"arbench/harness"
	"arbench/internal/decoding"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
)

// encoded is a batch of sources run through the encoder once: the memory
// and the length head's log-probabilities stay on the host and are fed to
// every decoder pass, so mask-predict's T passes and a drafter's Propose
// calls never re-encode.
type encoded struct {
	src encdec.Sources
	// memory is the encoder output [B,S,d], row-major.
	memory []float32
	// lengthLogp[i] are the log-probabilities of row i's 2M+1 length
	// classes.
	lengthLogp [][]float32
}

// encode runs the encoder and the length head over sources (ragged rows of
// content tokens).
func (m *Model) encode(ctx context.Context, sources [][]int) (*encoded, error) {
	src, err := encdec.PadSources(sources, m.vocab, encdec.Bucket(sources, m.cfg.Context))
	if err != nil {
		return nil, fmt.Errorf("nar: %w", err)
	}
	if src.S > m.cfg.Context {
		return nil, fmt.Errorf("nar: sources of %d tokens exceed the context of %d positions", src.S, m.cfg.Context)
	}
	B, S, K := src.B, src.S, m.cfg.classes()
	e, err := m.exec(fmt.Sprintf("encode/b%d/s%d", B, S), false, func(g nn.Graph) error {
		in := encdec.Declare(g, B, S)
		memory := m.enc.Forward(g, in)
		g.Output(outMemory, memory)
		g.Output(outLenLogProbs, g.LogSoftmax(m.lengthLogits(g, in, memory)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	var feeds nn.Feeds
	src.Feeds(&feeds)
	res, err := e.Run(ctx, feeds)
	if err != nil {
		return nil, fmt.Errorf("nar: encode: %w", err)
	}
	lp := res.Outputs[outLenLogProbs].Data
	out := &encoded{src: src, memory: res.Outputs[outMemory].Data, lengthLogp: make([][]float32, B)}
	for i := range B {
		out.lengthLogp[i] = lp[i*K : (i+1)*K]
	}
	return out, nil
}

// lengths returns up to beam distinct target lengths for source row i, in
// the order of the length head's probability (the lower class first on
// ties): srcLen + offset clipped to [1, maxN]. Offsets that clip to a
// length already taken are skipped, so fewer than beam lengths come back
// only when fewer than beam lengths exist in [1, maxN].
func (e *encoded) lengths(i, M, beam, maxN int) []int {
	lp := e.lengthLogp[i]
	order := make([]int, len(lp))
	for c := range order {
		order[c] = c
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(lp[b], lp[a]) })
	var out []int
	for _, c := range order {
		n := min(max(e.src.Lens[i]+c-M, 1), maxN)
		if !slices.Contains(out, n) {
			out = append(out, n)
			if len(out) == beam {
				break
			}
		}
	}
	return out
}

// decode is one decoder pass over target rows (ragged: row r has
// len(tokens[r]) positions, the [MASK] id V where masked), row r reading
// the memory of source rowSrc[r]. It returns the log-probabilities
// [R*T, V] with T the longest row; position j of row r is at r*T+j.
func (m *Model) decode(ctx context.Context, e *encoded, rowSrc []int, tokens [][]int) (nn.Value, int, error) {
	R, S, d := len(tokens), e.src.S, m.cfg.Dim
	T := 1
	for _, r := range tokens {
		T = max(T, len(r))
	}
	if T > m.cfg.Context {
		return nn.Value{}, 0, fmt.Errorf("nar: targets of %d positions exceed the context of %d", T, m.cfg.Context)
	}
	ids := make([]int, R*T)
	lens := make([]int, R)
	srcLens := make([]int, R)
	memory := make([]float32, R*S*d)
	for r, row := range tokens {
		for j := range T {
			ids[r*T+j] = m.vocab
		}
		for j, t := range row {
			if t < 0 || t > m.vocab {
				return nn.Value{}, 0, fmt.Errorf("nar: target token %d at row %d position %d is outside [0,%d] (%d is [MASK])", t, r, j, m.vocab, m.vocab)
			}
			ids[r*T+j] = t
		}
		lens[r] = len(row)
		s := rowSrc[r]
		srcLens[r] = e.src.Lens[s]
		copy(memory[r*S*d:(r+1)*S*d], e.memory[s*S*d:(s+1)*S*d])
	}
	ex, err := m.exec(fmt.Sprintf("decode/b%d/s%d/t%d", R, S, T), false, func(g nn.Graph) error {
		logits := m.decoderLogits(g, g.Ints(feedTarget, R*T), g.Floats(feedTargetPad, R, T),
			g.Floats(feedMemory, R, S, d), g.Floats(encdec.FeedSourcePad, R, S), R, T)
		g.Output(outLogProbs, g.LogSoftmax(logits))
		return nil
	})
	if err != nil {
		return nn.Value{}, 0, err
	}
	res, err := ex.Run(ctx, nn.Feeds{
		Ints: map[string][]int{feedTarget: ids},
		Floats: map[string][]float32{
			feedTargetPad:        nn.KeyPaddingMask(lens, T),
			feedMemory:           memory,
			encdec.FeedSourcePad: nn.KeyPaddingMask(srcLens, S),
		},
	})
	if err != nil {
		return nn.Value{}, 0, fmt.Errorf("nar: decoder pass: %w", err)
	}
	m.decoderPasses++
	return res.Outputs[outLogProbs], T, nil
}

// predictor is mask-predict's decoder pass (decoding.Predictor) over the
// candidates rowSrc: the greedy token (decoding.Argmax, the lowest on
// ties) and its log-probability at every position.
func (m *Model) predictor(e *encoded, rowSrc []int) decoding.Predictor {
	return func(ctx context.Context, tokens [][]int, _ [][]bool) ([][]int, [][]float32, error) {
		v, T, err := m.decode(ctx, e, rowSrc, tokens)
		if err != nil {
			return nil, nil, err
		}
		V := m.vocab
		pred := make([][]int, len(tokens))
		logp := make([][]float32, len(tokens))
		for r, row := range tokens {
			pred[r] = make([]int, len(row))
			logp[r] = make([]float32, len(row))
			for j := range row {
				dist := v.Data[(r*T+j)*V : (r*T+j+1)*V]
				k := decoding.Argmax(dist)
				pred[r][j], logp[r][j] = k, dist[k]
			}
		}
		return pred, logp, nil
	}
}

// settingName is the DecodeSetting name of T iterations.
func settingName(T int) string { return "T=" + strconv.Itoa(T) }

// DecodeSettings returns one setting per entry of sweep_iterations,
// "T=<iterations>" with Params {"iterations": T}, then one per entry of
// semi_ar, "k=<tokens per pass>" with Params {"tokens_per_pass": k}; none
// is a baseline.
func (m *Model) DecodeSettings() []harness.DecodeSetting {
	var out []harness.DecodeSetting
	for _, T := range m.cfg.SweepIterations {
		out = append(out, harness.DecodeSetting{Name: settingName(T), Params: map[string]any{"iterations": T}})
	}
	for _, k := range m.cfg.SemiAR {
		out = append(out, harness.DecodeSetting{Name: semiName(k), Params: map[string]any{"tokens_per_pass": k}})
	}
	return out
}

// iterations returns the T of a decoding setting: the configured
// iterations for "", else the sweep entry of that name; 0 for a
// semi-autoregressive setting (semiK).
func (m *Model) iterations(setting string) (int, error) {
	if setting == "" {
		return m.cfg.Iterations, nil
	}
	var known []string
	for _, s := range m.DecodeSettings() {
		if s.Name == setting {
			if T, ok := s.Params["iterations"].(int); ok {
				return T, nil
			}
			return 0, nil // semi-autoregressive: semiK
		}
		known = append(known, s.Name)
	}
	if len(known) == 0 {
		return 0, fmt.Errorf("nar: no decoding setting %q: sweep_iterations and semi_ar are empty", setting)
	}
	return 0, fmt.Errorf("nar: no decoding setting %q; known settings: %s", setting, strings.Join(known, ", "))
}

// Translate decodes sources with mask-predict: the length_beam most
// probable lengths N = |source| + offset, clipped to [1, min(MaxLen,
// context)], are decoded in parallel (one batch of B·ℓ rows per pass) in T
// passes (opt.Setting's, or the configured iterations), and the candidate
// of highest mean log-probability (decoding.MaskResult.Confidence; the
// more probable length on ties) is kept. Its output is cut before its
// first opt.End. opt.Start is not used: the model has no decoder input.
// With opt.Length set, every source gets that one length (no prediction,
// no cut at End).
//
// Passes is the number of decoder passes over the batch (MaskResult.Calls;
// the encoder's one run is not counted), Lengths the chosen N per source
// and Stats["length_candidates"] the number of candidates decoded.
func (m *Model) Translate(ctx context.Context, sources [][]int, opt harness.TranslateOptions) (*harness.Translation, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("nar: %w", err)
	}
	T, err := m.iterations(opt.Setting)
	if err != nil {
		return nil, err
	}
	if opt.Length > m.cfg.Context {
		return nil, fmt.Errorf("nar: output length %d exceeds the context of %d positions", opt.Length, m.cfg.Context)
	}
	if T == 0 {
		return m.semiAR(ctx, sources, m.semiK(opt.Setting), opt)
	}
	e, err := m.encode(ctx, sources)
	if err != nil {
		return nil, err
	}
	maxN := min(opt.MaxLen, m.cfg.Context)
	var rowSrc, lengths []int
	for i := range sources {
		cands := []int{opt.Length} // a fixed length replaces the prediction
		if opt.Length == 0 {
			cands = e.lengths(i, m.cfg.MaxOffset, m.cfg.LengthBeam, maxN)
		}
		for _, n := range cands {
			rowSrc = append(rowSrc, i)
			lengths = append(lengths, n)
		}
	}
	res, err := decoding.MaskPredict(ctx, lengths, decoding.MaskOptions{Iterations: T, Mask: m.vocab, EarlyStop: m.cfg.EarlyStop}, m.predictor(e, rowSrc))
	if err != nil {
		return nil, fmt.Errorf("nar: %w", err)
	}
	best := make([]int, len(sources))
	for i := range best {
		best[i] = -1
	}
	for r, i := range rowSrc {
		if best[i] < 0 || res.Confidence[r] > res.Confidence[best[i]] {
			best[i] = r
		}
	}
	out := &harness.Translation{
		Outputs: make([][]int, len(sources)),
		Passes:  res.Calls,
		Lengths: make([]int, len(sources)),
		Stats:   map[string]float64{"length_candidates": float64(len(rowSrc))},
	}
	for i, r := range best {
		toks := res.Tokens[r]
		if k := slices.Index(toks, opt.End); k >= 0 && opt.Length == 0 {
			toks = toks[:k]
		}
		out.Outputs[i] = slices.Clone(toks)
		out.Lengths[i] = lengths[r]
	}
	return out, nil
}

// draft is the DraftState of StartDraft: the encoded sources and each
// row's most probable target length (clipped to [1, context]).
type draft struct {
	enc     *encoded
	lengths []int
}

// Rows is the number of sources.
func (d *draft) Rows() int { return len(d.lengths) }

// StartDraft encodes the sources once for the Propose calls of one
// speculative decoding.
func (m *Model) StartDraft(ctx context.Context, sources [][]int) (encdec.DraftState, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	e, err := m.encode(ctx, sources)
	if err != nil {
		return nil, err
	}
	d := &draft{enc: e, lengths: make([]int, len(sources))}
	for i := range sources {
		d.lengths[i] = e.lengths(i, m.cfg.MaxOffset, 1, m.cfg.Context)[0]
	}
	return d, nil
}

// Propose runs one decoder pass over each row's target of L positions, the
// prefix at positions 0..P−1 (P = len(prefixes[i]), equal for every row)
// and [MASK] after it, with L = max(predicted length, P+γ′) and
// γ′ = min(gamma, context − P): it returns the log-softmax distributions
// at positions P..P+γ′−1, out[i][j][v]. So when the prefix and γ fit the
// context, exactly gamma distributions come back; when P+gamma would pass
// the context, only the γ′ < gamma that fit (the drafter cannot see past
// its learned positions), and an error when none does (P ≥ context).
func (m *Model) Propose(ctx context.Context, st encdec.DraftState, prefixes [][]int, gamma int) ([][][]float32, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	d, ok := st.(*draft)
	if !ok || d == nil {
		return nil, fmt.Errorf("nar: Propose: draft state %T is not from this model's StartDraft", st)
	}
	if len(prefixes) != d.Rows() {
		return nil, fmt.Errorf("nar: Propose: %d prefixes for %d sources", len(prefixes), d.Rows())
	}
	if gamma < 1 {
		return nil, fmt.Errorf("nar: Propose: gamma %d < 1", gamma)
	}
	P := len(prefixes[0])
	for i, p := range prefixes {
		if len(p) != P {
			return nil, fmt.Errorf("nar: Propose: prefix %d has %d tokens, prefix 0 has %d; prefixes must have equal length", i, len(p), P)
		}
		for j, t := range p {
			if t < 0 || t >= m.vocab {
				return nil, fmt.Errorf("nar: Propose: token %d at prefix %d position %d is outside the vocabulary [0,%d)", t, i, j, m.vocab)
			}
		}
	}
	g := min(gamma, m.cfg.Context-P)
	if g < 1 {
		return nil, fmt.Errorf("nar: Propose: the prefix of %d tokens fills the context of %d positions; nothing is left to propose", P, m.cfg.Context)
	}
	rows := make([][]int, len(prefixes))
	rowSrc := make([]int, len(prefixes))
	for i, p := range prefixes {
		L := max(d.lengths[i], P+g)
		rows[i] = make([]int, L)
		for j := range rows[i] {
			rows[i][j] = m.vocab
		}
		copy(rows[i], p)
		rowSrc[i] = i
	}
	v, T, err := m.decode(ctx, d.enc, rowSrc, rows)
	if err != nil {
		return nil, err
	}
	V := m.vocab
	out := make([][][]float32, len(prefixes))
	for i := range out {
		out[i] = make([][]float32, g)
		for j := range g {
			off := (i*T + P + j) * V
			out[i][j] = slices.Clone(v.Data[off : off+V])
		}
	}
	return out, nil
}
