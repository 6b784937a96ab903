package s2s

import (
	"context"
	"fmt"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/internal/lm"
)

// Incremental decoding with a key/value cache (Vaswani et al. 2017's
// decoder at inference; Pope et al. 2022, §2). StartSource encodes the
// sources once and keeps every decoder layer's cross-attention keys and
// values of them (MemoryKV); the decoder's self-attention keys and values
// of the positions fed so far are cached per layer, so a pass over k new
// positions costs k positions, not the whole prefix.
//
// The cache of a batch of B rows is one host array [B·heads, C, d/heads]
// per layer and kind (key, value), whose capacity C is a power of two (at
// least 16, at most the context) that grows by copying. One executable per
// (B, C, k, S) runs k new positions of every row. Each row has its own
// length n_i (RewindRows, encdec.RowVerifier): the executable takes the
// cached keys and values as float inputs, the positions n_i..n_i+k−1 of
// every row (ints [B·k]), the key padding mask [B, C+k] that drops row i's
// slots n_i..C−1 (CausalMaskValue) and the additive mask [k, C+k] that is
// causal among the k new positions (0 over the C cached slots), and
// returns the log-probabilities [B·k, V] and each layer's new keys and
// values [B·heads, k, d/heads], which the host writes into row i's slots
// n_i..n_i+k−1. A masked slot gets weight exactly 0, so stale slots past
// n_i (after a rewind) change nothing. The first pass of a state (the
// prompts) has no cache (C = 0) and no key padding; nor has a batch of one
// row, whose mask [k, C+k] drops its slots n..C−1 itself (one row cannot
// be ragged, and the key padding costs a batch-1 pass more than it does a
// large batch). Step is StepN with k = 1.

var (
	_ harness.State      = (*decodeState)(nil)
	_ encdec.RowVerifier = (*Model)(nil)
)

// Feed and output names of the decoding executables.
const (
	feedPos    = "pos"     // int [B·k]: the positions of the new tokens, row by row
	feedMask   = "mask"    // float [k, C+k]: the causal mask among the new positions (B = 1: and the stale slots)
	feedKeyPad = "key_pad" // float [B, C+k]: each row's stale cache slots (C > 0 and B > 1 only)
)

func layerName(kind string, layer int) string { return fmt.Sprintf("%s%d", kind, layer) }

// capacityFor returns the cache capacity that holds n positions.
func (m *Model) capacityFor(n int) int { return lm.CacheCapacity(n, m.cfg.Context) }

// decodeState is the generation state of a batch of sources.
type decodeState struct {
	owner *Model
	// b rows; row i has consumed n[i] decoder positions (all 0 before the
	// first pass, all ≥ 1 after it).
	b int
	n []int
	// s is the sources' padded width, srcPad their key padding mask [B,S].
	s      int
	srcPad []float32
	// memK[l], memV[l] are decoder layer l's cross-attention keys and
	// values of the sources, [B·heads, S, d/heads].
	memK, memV [][]float32
	// capacity is the number of slots per row of k and v; k[l], v[l] are
	// layer l's self-attention cache [B·heads, capacity, d/heads].
	capacity int
	k, v     [][]float32
}

// Len is the longest row's length (every row's, unless RewindRows made
// them differ).
func (s *decodeState) Len() int { return maxLen(s.n) }

// minLen and maxLen are the shortest and longest of n (0 for none).
func minLen(n []int) int {
	if len(n) == 0 {
		return 0
	}
	m := n[0]
	for _, x := range n[1:] {
		m = min(m, x)
	}
	return m
}

func maxLen(n []int) int {
	m := 0
	for _, x := range n {
		m = max(m, x)
	}
	return m
}

// StartSource encodes the sources (ragged rows of content tokens) once and
// feeds the equal-length prompts in one decoder pass, returning the state
// and the next-token log-probabilities after each prompt.
func (m *Model) StartSource(ctx context.Context, sources, prompts [][]int) (harness.State, [][]float32, error) {
	if err := m.ready(); err != nil {
		return nil, nil, err
	}
	if len(prompts) != len(sources) {
		return nil, nil, fmt.Errorf("%s: %d prompts for %d sources", Family, len(prompts), len(sources))
	}
	src, err := encdec.PadSources(sources, m.vocab, encdec.Bucket(sources, m.cfg.Context))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", Family, err)
	}
	if err := m.checkLengths(src.S, 0); err != nil {
		return nil, nil, err
	}
	st, err := m.encode(ctx, src)
	if err != nil {
		return nil, nil, err
	}
	out, err := m.StepN(ctx, st, prompts)
	if err != nil {
		return nil, nil, err
	}
	last := make([][]float32, len(out))
	for i, row := range out {
		last[i] = row[len(row)-1]
	}
	return st, last, nil
}

// encode runs the encoder over src and returns a state holding every
// decoder layer's cross-attention keys and values, with an empty cache.
func (m *Model) encode(ctx context.Context, src encdec.Sources) (*decodeState, error) {
	B, S := src.B, src.S
	e, err := m.exec(fmt.Sprintf("encode/b%d/s%d", B, S), false, func(g nn.Graph) {
		memory := m.enc.Forward(g, encdec.Declare(g, B, S))
		for l, layer := range m.dec {
			k, v := layer.MemoryKV(g, memory)
			g.Output(layerName("mem_k", l), k)
			g.Output(layerName("mem_v", l), v)
		}
	})
	if err != nil {
		return nil, err
	}
	var f nn.Feeds
	src.Feeds(&f)
	res, err := e.Run(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", Family, err)
	}
	L := len(m.dec)
	st := &decodeState{owner: m, b: B, n: make([]int, B), s: S, srcPad: f.Floats[encdec.FeedSourcePad],
		memK: make([][]float32, L), memV: make([][]float32, L), k: make([][]float32, L), v: make([][]float32, L)}
	for l := range L {
		st.memK[l], st.memV[l] = res.Outputs[layerName("mem_k", l)].Data, res.Outputs[layerName("mem_v", l)].Data
	}
	return st, nil
}

// Step feeds one token per row at position Len() and returns the
// next-token log-probabilities.
func (m *Model) Step(ctx context.Context, s harness.State, tokens []int) ([][]float32, error) {
	rows := make([][]int, len(tokens))
	for i, t := range tokens {
		rows[i] = []int{t}
	}
	out, err := m.StepN(ctx, s, rows)
	if err != nil {
		return nil, err
	}
	next := make([][]float32, len(out))
	for i, row := range out {
		next[i] = row[0]
	}
	return next, nil
}

// StepN feeds k ≥ 1 tokens per row, row i's at positions n_i..n_i+k−1
// after its n_i cached ones (Len()..Len()+k−1 unless RewindRows made the
// rows differ), in one decoder pass and returns out[i][j], the next-token
// log-probabilities after tokens[i][:j+1] (encdec.Verifier).
func (m *Model) StepN(ctx context.Context, s harness.State, tokens [][]int) ([][][]float32, error) {
	st, err := m.state(s, "StepN")
	if err != nil {
		return nil, err
	}
	K, ids, err := m.checkTokens(st, tokens)
	if err != nil {
		return nil, err
	}
	B, C := st.b, st.capacity
	if st.Len() == 0 {
		C = 0
	}
	e, err := m.exec(fmt.Sprintf("step/b%d/c%d/k%d/s%d", B, C, K, st.s), false, func(g nn.Graph) {
		m.buildStep(g, B, C, K, st.s)
	})
	if err != nil {
		return nil, err
	}
	res, err := e.Run(ctx, st.feeds(ids, C, K))
	if err != nil {
		return nil, fmt.Errorf("%s: decode positions %d..%d: %w", Family, minLen(st.n), st.Len()+K-1, err)
	}
	st.store(res.Outputs, K)
	return lm.SplitRows(res.Outputs[lm.OutLogProbs], B, K), nil
}

// Rewind keeps the first n tokens of every row (0 < n ≤ the shortest
// row's length, Len() unless RewindRows made the rows differ); the cache
// slots after them are masked from then on and overwritten by the next
// pass.
func (m *Model) Rewind(s harness.State, n int) error {
	st, err := m.state(s, "Rewind")
	if err != nil {
		return err
	}
	if lo := minLen(st.n); n <= 0 || n > lo {
		return fmt.Errorf("%s: Rewind to %d tokens, want 1..%d", Family, n, lo)
	}
	for i := range st.n {
		st.n[i] = n
	}
	return nil
}

// RewindRows keeps the first n[i] tokens of row i (0 < n[i] ≤ its
// length); the next pass feeds row i at positions n[i]… and masks its
// slots from n[i] on (encdec.RowVerifier).
func (m *Model) RewindRows(s harness.State, n []int) error {
	st, err := m.state(s, "RewindRows")
	if err != nil {
		return err
	}
	if len(n) != st.b {
		return fmt.Errorf("%s: RewindRows given %d lengths for %d rows", Family, len(n), st.b)
	}
	for i, x := range n {
		if x <= 0 || x > st.n[i] {
			return fmt.Errorf("%s: RewindRows: row %d to %d tokens, want 1..%d", Family, i, x, st.n[i])
		}
	}
	copy(st.n, n)
	return nil
}

// state returns s as this model's decoding state.
func (m *Model) state(s harness.State, op string) (*decodeState, error) {
	if err := m.ready(); err != nil {
		return nil, err
	}
	st, ok := s.(*decodeState)
	if !ok || st.owner != m {
		return nil, fmt.Errorf("%s: %s given a state of type %T not made by this model's StartSource", Family, op, s)
	}
	return st, nil
}

// checkTokens checks that tokens has one row of k ≥ 1 tokens of the
// vocabulary per row of st and that they fit the context, and flattens
// them.
func (m *Model) checkTokens(st *decodeState, tokens [][]int) (int, []int, error) {
	if len(tokens) != st.b {
		return 0, nil, fmt.Errorf("%s: %d rows of tokens for %d sources", Family, len(tokens), st.b)
	}
	_, K, err := lm.Shape("tokens", tokens)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", Family, err)
	}
	ids, err := lm.Flatten("tokens", tokens, m.vocab, false)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", Family, err)
	}
	for i, n := range st.n {
		if n+K > m.cfg.Context {
			return 0, nil, fmt.Errorf("%s: row %d: positions %d..%d are past the context of %d positions", Family, i, n, n+K-1, m.cfg.Context)
		}
	}
	return K, ids, nil
}

// feeds returns the inputs of a pass over K new positions of every row
// after its st.n[i] cached ones, with C cache slots per row (0: no cache
// input).
func (st *decodeState) feeds(ids []int, C, K int) nn.Feeds {
	pos := make([]int, st.b*K)
	for i, n := range st.n {
		for j := range K {
			pos[i*K+j] = n + j
		}
	}
	stale := C // the first cache slot the mask drops
	if st.b == 1 {
		stale = st.n[0]
	}
	f := nn.Feeds{
		Ints:   map[string][]int{lm.FeedIDs: ids, feedPos: pos},
		Floats: map[string][]float32{feedMask: stepMask(stale, C, K), encdec.FeedSourcePad: st.srcPad},
	}
	if keyPadded(st.b, C) {
		f.Floats[feedKeyPad] = stepKeyPadding(st.n, C, K)
	}
	for l := range st.memK {
		f.Floats[layerName("mem_k", l)], f.Floats[layerName("mem_v", l)] = st.memK[l], st.memV[l]
		if C > 0 {
			f.Floats[layerName("past_k", l)], f.Floats[layerName("past_v", l)] = st.k[l], st.v[l]
		}
	}
	return f
}

// keyPadded reports whether the pass of B rows after a cache of C slots
// drops the rows' stale slots by key padding (else the mask does, or there
// are none).
func keyPadded(B, C int) bool { return C > 0 && B > 1 }

// stepMask is the additive self-attention mask [K, C+K] of K new positions
// after a cache of C slots: it drops the slots stale..C−1 (stale = C: none;
// the key padding drops each row's), and new position i sees the new
// positions 0..i.
func stepMask(stale, C, K int) []float32 {
	w := C + K
	mask := make([]float32, K*w)
	for i := range K {
		for j := stale; j < C; j++ {
			mask[i*w+j] = nn.CausalMaskValue
		}
		for j := i + 1; j < K; j++ {
			mask[i*w+C+j] = nn.CausalMaskValue
		}
	}
	return mask
}

// stepKeyPadding is the additive key padding mask [B, C+K] of K new
// positions after a cache of C slots of which row i holds n[i] valid
// ones: it drops row i's slots n[i]..C−1 and keeps the K new ones.
func stepKeyPadding(n []int, C, K int) []float32 {
	w := C + K
	pad := make([]float32, len(n)*w)
	for i, ni := range n {
		for j := ni; j < C; j++ {
			pad[i*w+j] = nn.CausalMaskValue
		}
	}
	return pad
}

// store writes row i's new keys and values of K positions into its slots
// n[i]..n[i]+K−1 of every layer's cache, growing it first when needed.
func (st *decodeState) store(out map[string]nn.Value, K int) {
	m := st.owner
	H, hd := m.cfg.Heads, m.cfg.Dim/m.cfg.Heads
	bh := st.b * H
	if need := st.Len() + K; need > st.capacity {
		c := m.capacityFor(need)
		for l := range st.k {
			st.k[l] = relayout(st.k[l], bh, st.capacity, c, hd)
			st.v[l] = relayout(st.v[l], bh, st.capacity, c, hd)
		}
		st.capacity = c
	}
	C := st.capacity
	for l := range st.k {
		kn, vn := out[layerName("k", l)].Data, out[layerName("v", l)].Data
		for i := range bh {
			n := st.n[i/H]
			copy(st.k[l][(i*C+n)*hd:(i*C+n+K)*hd], kn[i*K*hd:(i+1)*K*hd])
			copy(st.v[l][(i*C+n)*hd:(i*C+n+K)*hd], vn[i*K*hd:(i+1)*K*hd])
		}
	}
	for i := range st.n {
		st.n[i] += K
	}
}

// relayout copies src [bh, from, hd] into a zeroed [bh, to, hd] (to ≥ from).
func relayout(src []float32, bh, from, to, hd int) []float32 {
	dst := make([]float32, bh*to*hd)
	for i := range bh {
		copy(dst[i*to*hd:i*to*hd+from*hd], src[i*from*hd:(i+1)*from*hd])
	}
	return dst
}

// buildStep is the decoder pass over K new positions of B rows after a
// cache of C slots (C = 0: none) given sources of S positions: it outputs
// the log-probabilities [B·K, V] and each layer's new keys and values.
func (m *Model) buildStep(g nn.Graph, B, C, K, S int) {
	H, hd := m.cfg.Heads, m.cfg.Dim/m.cfg.Heads
	pos := g.Reshape(g.Gather(g.Param(m.tgtPos.Weight), g.Ints(feedPos, B*K)), B, K, m.cfg.Dim)
	y := m.embed(g, g.Ints(lm.FeedIDs, B*K), pos, B, K)
	masks := nn.DecoderMasks{Tgt: g.Floats(feedMask, K, C+K), MemoryKeyPadding: g.Floats(encdec.FeedSourcePad, B, S)}
	if keyPadded(B, C) {
		masks.TgtKeyPadding = g.Floats(feedKeyPad, B, C+K)
	}
	for l, layer := range m.dec {
		var pastK, pastV nn.Tensor
		if C > 0 {
			pastK, pastV = g.Floats(layerName("past_k", l), B*H, C, hd), g.Floats(layerName("past_v", l), B*H, C, hd)
		}
		memK, memV := g.Floats(layerName("mem_k", l), B*H, S, hd), g.Floats(layerName("mem_v", l), B*H, S, hd)
		var k, v nn.Tensor
		y, k, v = layer.ForwardCached(g, y, pastK, pastV, memK, memV, masks)
		g.Output(layerName("k", l), k)
		g.Output(layerName("v", l), v)
	}
	g.Output(lm.OutLogProbs, g.LogSoftmax(m.fc.Forward(g, g.Reshape(y, B*K, m.cfg.Dim))))
}
