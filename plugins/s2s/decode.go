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
// (B, C, k, S) runs k new positions of every row: it takes the cached keys
// and values as float inputs, with the additive mask [k, C+k] that drops
// the slots at and after the state's length n (CausalMaskValue, as the
// causal mask) and is causal among the k new positions, and returns the
// log-probabilities [B·k, V] and each layer's new keys and values
// [B·heads, k, d/heads], which the host writes into slots n..n+k−1. A
// masked slot gets weight exactly 0, so stale slots past n (after Rewind)
// change nothing. The first pass of a state (the prompts) has no cache
// (C = 0). Step is StepN with k = 1.

var _ harness.State = (*decodeState)(nil)

// Feed and output names of the decoding executables.
const (
	feedPos  = "pos"  // int [k]: the positions of the new tokens
	feedMask = "mask" // float [k, C+k]: the self-attention mask
)

func layerName(kind string, layer int) string { return fmt.Sprintf("%s%d", kind, layer) }

// capacityFor returns the cache capacity that holds n positions.
func (m *Model) capacityFor(n int) int { return lm.CacheCapacity(n, m.cfg.Context) }

// decodeState is the generation state of a batch of sources.
type decodeState struct {
	owner *Model
	// b rows have consumed n decoder positions each.
	b, n int
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

func (s *decodeState) Len() int { return s.n }

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
	st := &decodeState{owner: m, b: B, s: S, srcPad: f.Floats[encdec.FeedSourcePad],
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

// StepN feeds k ≥ 1 tokens per row at positions Len()..Len()+k−1 in one
// decoder pass and returns out[i][j], the next-token log-probabilities
// after tokens[i][:j+1] (encdec.Verifier).
func (m *Model) StepN(ctx context.Context, s harness.State, tokens [][]int) ([][][]float32, error) {
	st, err := m.state(s, "StepN")
	if err != nil {
		return nil, err
	}
	K, ids, err := m.checkTokens(st, tokens)
	if err != nil {
		return nil, err
	}
	B, n, C := st.b, st.n, st.capacity
	if n == 0 {
		C = 0
	}
	e, err := m.exec(fmt.Sprintf("step/b%d/c%d/k%d/s%d", B, C, K, st.s), false, func(g nn.Graph) {
		m.buildStep(g, B, C, K, st.s)
	})
	if err != nil {
		return nil, err
	}
	res, err := e.Run(ctx, st.feeds(ids, n, C, K))
	if err != nil {
		return nil, fmt.Errorf("%s: decode positions %d..%d: %w", Family, n, n+K-1, err)
	}
	st.store(res.Outputs, K)
	return lm.SplitRows(res.Outputs[lm.OutLogProbs], B, K), nil
}

// Rewind keeps the first n tokens of every row (0 < n ≤ Len()); the
// cache slots after them are masked from then on and overwritten by the
// next pass.
func (m *Model) Rewind(s harness.State, n int) error {
	st, err := m.state(s, "Rewind")
	if err != nil {
		return err
	}
	if n <= 0 || n > st.n {
		return fmt.Errorf("%s: Rewind to %d tokens, want 1..%d", Family, n, st.n)
	}
	st.n = n
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
	if st.n+K > m.cfg.Context {
		return 0, nil, fmt.Errorf("%s: positions %d..%d are past the context of %d positions", Family, st.n, st.n+K-1, m.cfg.Context)
	}
	return K, ids, nil
}

// feeds returns the inputs of a pass over K new positions after n cached
// ones, with C cache slots per row (0: no cache input).
func (st *decodeState) feeds(ids []int, n, C, K int) nn.Feeds {
	pos := make([]int, K)
	for j := range pos {
		pos[j] = n + j
	}
	f := nn.Feeds{
		Ints:   map[string][]int{lm.FeedIDs: ids, feedPos: pos},
		Floats: map[string][]float32{feedMask: stepMask(n, C, K), encdec.FeedSourcePad: st.srcPad},
	}
	for l := range st.memK {
		f.Floats[layerName("mem_k", l)], f.Floats[layerName("mem_v", l)] = st.memK[l], st.memV[l]
		if C > 0 {
			f.Floats[layerName("past_k", l)], f.Floats[layerName("past_v", l)] = st.k[l], st.v[l]
		}
	}
	return f
}

// stepMask is the additive self-attention mask [K, C+K] of K new positions
// after n valid slots of a cache of C: the slots n..C−1 are dropped, and
// new position i sees the new positions 0..i.
func stepMask(n, C, K int) []float32 {
	w := C + K
	mask := make([]float32, K*w)
	for i := range K {
		for j := n; j < C; j++ {
			mask[i*w+j] = nn.CausalMaskValue
		}
		for j := i + 1; j < K; j++ {
			mask[i*w+C+j] = nn.CausalMaskValue
		}
	}
	return mask
}

// store writes the new keys and values of K positions into slots
// n..n+K−1 of every layer's cache, growing it first when needed.
func (st *decodeState) store(out map[string]nn.Value, K int) {
	m := st.owner
	bh, hd := st.b*m.cfg.Heads, m.cfg.Dim/m.cfg.Heads
	if need := st.n + K; need > st.capacity {
		c := m.capacityFor(need)
		for l := range st.k {
			st.k[l] = relayout(st.k[l], bh, st.capacity, c, hd)
			st.v[l] = relayout(st.v[l], bh, st.capacity, c, hd)
		}
		st.capacity = c
	}
	C, n := st.capacity, st.n
	for l := range st.k {
		kn, vn := out[layerName("k", l)].Data, out[layerName("v", l)].Data
		for i := range bh {
			copy(st.k[l][(i*C+n)*hd:(i*C+n+K)*hd], kn[i*K*hd:(i+1)*K*hd])
			copy(st.v[l][(i*C+n)*hd:(i*C+n+K)*hd], vn[i*K*hd:(i+1)*K*hd])
		}
	}
	st.n += K
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
	pos := g.Gather(g.Param(m.tgtPos.Weight), g.Ints(feedPos, K))
	y := m.embed(g, g.Ints(lm.FeedIDs, B*K), pos, B, K)
	masks := nn.DecoderMasks{Tgt: g.Floats(feedMask, K, C+K), MemoryKeyPadding: g.Floats(encdec.FeedSourcePad, B, S)}
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
