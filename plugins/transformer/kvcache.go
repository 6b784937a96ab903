package transformer

import (
	"context"
	"fmt"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

// Incremental decoding with a key/value cache (as in Vaswani et al. 2017's
// decoder at inference; e.g. Pope et al. 2022, "Efficiently Scaling
// Transformer Inference", §2). Under the causal mask the keys and values of
// position j depend only on tokens 0..j, so a generated token needs one new
// query, key and value per layer and attention over the cached ones: each
// step costs one position instead of a forward pass over the whole prefix.
//
// The cache of a batch is one [B·heads, C, d/heads] array per layer and
// tensor kind, owned by the generation state, where the capacity C is a
// power of two (at least 16, at most the context), so one set of
// executables per (batch, capacity) serves every position. The arrays are
// bound to the step's executables as parameters, which backends read in
// place, so the cache is never copied into a graph. A step runs one
// executable per layer: the previous one outputs the layer's new key and
// value, the host writes them into slot pos, and the layer's attention then
// runs over slots 0..C-1 with the slots past pos masked by the same
// additive -1e9 as the causal mask. The masked weights are exactly zero and
// the valid keys sit at the same indices as in a full forward pass, so with
// this repository's gorgonia backend a step computes bit for bit the
// log-probabilities of the re-feeding loop (its GEMM keeps every dot
// product's order independent of the matrix sizes).
//
// The model is a harness.KVCacher: with Config.KVCache false the Stepper
// is unchanged, but harness.Decoder re-feeds instead of using it (the
// survey's generate_text loop: every step runs the model over the whole
// sequence so far and keeps the last position's distribution), so there
// is one re-feeding loop for every model. NextLogProbsAt makes that loop's
// steps compute the log-softmax at the one position it keeps.

var (
	_ harness.KVCacher               = (*Model)(nil)
	_ harness.PositionDistributioner = (*Model)(nil)
	_ harness.State                  = (*kvState)(nil)
)

// Feed and output names of the incremental-decoding executables.
const (
	feedPos  = "pos"  // int [B]: the position of the fed token
	feedMask = "mask" // float [1, C]: 0 for slots 0..pos, -1e9 after
	feedFill = "fill" // int [1]: pos+1, the filled slots (nn.CacheAttention)
	feedX    = "x"    // float [B, 1, d]: a layer's input
	feedQ    = "q"    // float [B·heads, 1, d/heads]: a layer's query
	feedRows = "rows" // int [B]: the logits row of each sequence's position at (NextLogProbsAt)
)

func cacheName(kind string, layer int) string { return fmt.Sprintf("%s%d", kind, layer) }

// capacityFor returns the cache capacity that holds n positions.
func (m *Model) capacityFor(n int) int { return lm.CacheCapacity(n, m.cfg.Context) }

// kvState is the generation state of a batch: the key/value cache.
type kvState struct {
	owner *Model
	b, n  int
	// capacity is the number of slots per row in k and v.
	capacity int
	// k[l] and v[l] are layer l's cache, [B·heads, capacity, d/heads].
	k, v [][]float32
	// steps holds what every Step at this capacity reuses.
	steps *decodeSteps
}

// decodeSteps is what the Steps of a state at one capacity share: the
// executables' keys, the output names of each layer's keys and values, and
// the feeds, whose values Step updates in place (the mask gains slot pos
// each step), so that a step formats and allocates none of them.
type decodeSteps struct {
	capacity         int
	inKey            string
	layerKeys        []string
	kNames, vNames   []string
	mask             []float32
	pos, fill        []int
	inFeeds, lyFeeds nn.Feeds
	// inRes and lyRes[l] are the results of the input's and layer l's
	// executables, whose arrays each step reuses (nn.RunInto).
	inRes nn.Result
	lyRes []nn.Result
}

// stepsFor returns st's decodeSteps for capacity C with the mask of
// position pos: 0 on slots 0..pos, CausalMaskValue after.
func (m *Model) stepsFor(st *kvState, C, pos int) *decodeSteps {
	if d := st.steps; d != nil && d.capacity == C {
		d.mask[pos] = 0
		return d
	}
	B := st.b
	d := &decodeSteps{capacity: C, inKey: fmt.Sprintf("decode/in/b%d", B), mask: make([]float32, C), pos: make([]int, B), fill: make([]int, 1)}
	for l := range m.layers {
		d.layerKeys = append(d.layerKeys, fmt.Sprintf("decode/l%d/b%d/c%d", l, B, C))
		d.kNames, d.vNames = append(d.kNames, cacheName("k", l)), append(d.vNames, cacheName("v", l))
	}
	d.lyRes = make([]nn.Result, len(m.layers))
	for j := pos + 1; j < C; j++ {
		d.mask[j] = nn.CausalMaskValue
	}
	d.inFeeds = nn.Feeds{Ints: map[string][]int{feedPos: d.pos}}
	d.lyFeeds = nn.Feeds{Floats: map[string][]float32{feedMask: d.mask}, Ints: map[string][]int{feedFill: d.fill}}
	st.steps = d
	return d
}

func (s *kvState) Len() int { return s.n }

// KVCacheEnabled reports Config.KVCache: whether harness.Decoder may use
// the Stepper (true) or re-feeds (false).
func (m *Model) KVCacheEnabled() bool { return m.cfg.KVCache }

func (m *Model) checkRows(what string, rows [][]int) (B, T int, ids []int, err error) {
	if m.Base == nil {
		return 0, 0, nil, fmt.Errorf("transformer: model used before Setup")
	}
	if B, T, err = lm.Shape(what, rows); err != nil {
		return 0, 0, nil, fmt.Errorf("transformer: %w", err)
	}
	if T > m.cfg.Context {
		return 0, 0, nil, fmt.Errorf("transformer: %s of %d tokens exceed the context of %d positions", what, T, m.cfg.Context)
	}
	if ids, err = lm.Flatten(what, rows, m.Vocab(), false); err != nil {
		return 0, 0, nil, fmt.Errorf("transformer: %w", err)
	}
	return B, T, ids, nil
}

// Start consumes the prompts: one forward pass over them that also returns
// every layer's keys and values.
func (m *Model) Start(ctx context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	B, T, ids, err := m.checkRows("prompts", prompts)
	if err != nil {
		return nil, nil, err
	}
	st := &kvState{owner: m, b: B, n: T}
	e, err := m.Exec(fmt.Sprintf("prefill/b%d/t%d", B, T), false, func(g nn.Graph) error {
		m.buildPrefill(g, B, T)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	res, err := e.Run(ctx, nn.Feeds{Ints: map[string][]int{lm.FeedIDs: ids}})
	if err != nil {
		return nil, nil, fmt.Errorf("transformer: prefill: %w", err)
	}
	st.capacity = m.capacityFor(T + 1)
	bh, hd := B*m.cfg.Heads, m.cfg.Dim/m.cfg.Heads
	for l := range m.layers {
		st.k = append(st.k, relayout(res.Outputs[cacheName("k", l)].Data, bh, T, st.capacity, hd))
		st.v = append(st.v, relayout(res.Outputs[cacheName("v", l)].Data, bh, T, st.capacity, hd))
	}
	return st, lm.LastRows(res.Outputs[lm.OutLogProbs], B, 1), nil
}

// relayout copies src [bh, t, hd] into a zeroed [bh, capacity, hd].
func relayout(src []float32, bh, t, capacity, hd int) []float32 {
	dst := make([]float32, bh*capacity*hd)
	for i := range bh {
		copy(dst[i*capacity*hd:i*capacity*hd+t*hd], src[i*t*hd:(i+1)*t*hd])
	}
	return dst
}

// Step feeds one token per row at position Len().
func (m *Model) Step(ctx context.Context, s harness.State, tokens []int) ([][]float32, error) {
	st, ok := s.(*kvState)
	if !ok || st.owner != m {
		return nil, fmt.Errorf("transformer: Step given a state of type %T not made by this model's Start", s)
	}
	if len(tokens) != st.b {
		return nil, fmt.Errorf("transformer: Step given %d tokens for %d rows", len(tokens), st.b)
	}
	for i, t := range tokens {
		if t < 0 || t >= m.Vocab() {
			return nil, fmt.Errorf("transformer: Step token %d of row %d is outside the vocabulary [0,%d)", t, i, m.Vocab())
		}
	}
	pos := st.n
	if pos >= m.cfg.Context {
		return nil, fmt.Errorf("transformer: position %d is past the context of %d positions", pos, m.cfg.Context)
	}
	B, H, hd := st.b, m.cfg.Heads, m.cfg.Dim/m.cfg.Heads
	if pos >= st.capacity {
		c := m.capacityFor(pos + 1)
		for l := range st.k {
			st.k[l] = relayout(st.k[l], B*H, st.capacity, c, hd)
			st.v[l] = relayout(st.v[l], B*H, st.capacity, c, hd)
		}
		st.capacity = c
	}
	C := st.capacity
	params := m.cacheParams(B, C)
	for l := range st.k {
		params[2*l].Data, params[2*l+1].Data = st.k[l], st.v[l]
	}
	d := m.stepsFor(st, C, pos)
	for i := range d.pos {
		d.pos[i] = pos
	}
	d.fill[0] = pos + 1
	d.inFeeds.Ints[lm.FeedIDs] = tokens
	// store writes a layer's new keys and values into slot pos.
	store := func(l int, out map[string]nn.Value) {
		kn, vn := out[d.kNames[l]].Data, out[d.vNames[l]].Data
		for i := range B * H {
			copy(st.k[l][(i*C+pos)*hd:(i*C+pos+1)*hd], kn[i*hd:(i+1)*hd])
			copy(st.v[l][(i*C+pos)*hd:(i*C+pos+1)*hd], vn[i*hd:(i+1)*hd])
		}
	}
	e, err := m.ExecUnbound(d.inKey, func(g nn.Graph) error {
		m.buildDecodeInput(g, B)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := nn.RunInto(ctx, e, d.inFeeds, &d.inRes); err != nil {
		return nil, fmt.Errorf("transformer: decode position %d: %w", pos, err)
	}
	res := &d.inRes
	for l := range m.layers {
		store(l, res.Outputs)
		e, err := m.ExecUnbound(d.layerKeys[l], func(g nn.Graph) error {
			m.buildDecodeLayer(g, l, B, C, params[2*l], params[2*l+1])
			return nil
		})
		if err != nil {
			return nil, err
		}
		d.lyFeeds.Floats[feedX], d.lyFeeds.Floats[feedQ] = res.Outputs[feedX].Data, res.Outputs[feedQ].Data
		if err := nn.RunInto(ctx, e, d.lyFeeds, &d.lyRes[l]); err != nil {
			return nil, fmt.Errorf("transformer: decode position %d layer %d: %w", pos, l, err)
		}
		res = &d.lyRes[l]
	}
	st.n++
	return lm.LastRows(res.Outputs[lm.OutLogProbs], B, 1), nil
}

// cacheParams returns the parameters the decoding executables of batch B
// and capacity C bind each layer's key and value caches to (k0, v0, k1,
// ...); Step points their Data at the running state's arrays.
func (m *Model) cacheParams(B, C int) []*nn.Param {
	key := [2]int{B, C}
	if ps, ok := m.kv[key]; ok {
		return ps
	}
	H, hd := m.cfg.Heads, m.cfg.Dim/m.cfg.Heads
	ps := make([]*nn.Param, 0, 2*len(m.layers))
	for l := range m.layers {
		for _, kind := range []string{"k", "v"} {
			shape := []int{B * H, C, hd}
			ps = append(ps, &nn.Param{Name: fmt.Sprintf("kv_cache.b%d.c%d.%s", B, C, cacheName(kind, l)), Shape: shape})
		}
	}
	if m.kv == nil {
		m.kv = map[[2]int][]*nn.Param{}
	}
	m.kv[key] = ps
	return ps
}

// NextLogProbsAt runs the whole model over equal-length rows and returns
// the next-token log-probabilities at position at of each row: the
// survey's generate_text step, which computes logits for every position
// and keeps one (harness.PositionDistributioner).
func (m *Model) NextLogProbsAt(ctx context.Context, inputs [][]int, at int) ([][]float32, error) {
	B, T, ids, err := m.checkRows("inputs", inputs)
	if err != nil {
		return nil, err
	}
	if at < 0 || at >= T {
		return nil, fmt.Errorf("transformer: position %d is outside rows of %d tokens", at, T)
	}
	e, err := m.Exec(fmt.Sprintf("at/b%d/t%d", B, T), false, func(g nn.Graph) error {
		logits := m.Logits(g, g.Ints(lm.FeedIDs, B*T), B, T, false)
		g.Output(lm.OutLogProbs, g.LogSoftmax(g.Gather(logits, g.Ints(feedRows, B))))
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([]int, B)
	for b := range rows {
		rows[b] = b*T + at
	}
	res, err := e.Run(ctx, nn.Feeds{Ints: map[string][]int{lm.FeedIDs: ids, feedRows: rows}})
	if err != nil {
		return nil, fmt.Errorf("transformer: %d positions: %w", T, err)
	}
	return lm.LastRows(res.Outputs[lm.OutLogProbs], B, 1), nil
}

// block applies decoder layer l to x [B,Tq,d] given the output of its
// attention heads ctx [B·heads,Tq,d/heads], exactly as
// nn.TransformerEncoderLayer.Forward in evaluation (dropout is the
// identity): x = norm1(x + attn), x = norm2(x + linear2(relu(linear1(x)))).
func (m *Model) block(g nn.Graph, l int, x, ctx nn.Tensor) nn.Tensor {
	layer := m.layers[l]
	attn := layer.SelfAttn.Combine(g, ctx)
	x = layer.Norm1.Forward(g, g.Add(x, attn))
	ff := layer.Linear2.Forward(g, g.ReLU(layer.Linear1.Forward(g, x)))
	return layer.Norm2.Forward(g, g.Add(x, ff))
}

// buildPrefill is the forward pass over prompts [B,T] with the causal mask
// that outputs the last position's log-probabilities and every layer's
// keys and values ([B·heads, T, d/heads]).
func (m *Model) buildPrefill(g nn.Graph, B, T int) {
	d := m.cfg.Dim
	x := g.Reshape(m.emb.Forward(g, g.Ints(lm.FeedIDs, B*T)), B, T, d)
	x = g.Add(x, g.Slice(g.Param(m.pos), 0, 0, T))
	mask := g.Const(nn.CausalMask(T), T, T)
	for l, layer := range m.layers {
		q, k, v := layer.SelfAttn.Project(g, x)
		g.Output(cacheName("k", l), k)
		g.Output(cacheName("v", l), v)
		x = m.block(g, l, x, nn.ScaledDotProductAttention(g, q, k, v, mask, layer.SelfAttn.Dropout))
	}
	last := g.Reshape(g.Slice(x, 1, T-1, T), B, d)
	g.Output(lm.OutLogProbs, g.LogSoftmax(m.fc.Forward(g, last)))
}

// buildDecodeInput embeds the fed tokens at their position and projects
// them for layer 0: outputs x [B,1,d] and the queries, keys and values
// [B·heads, 1, d/heads].
func (m *Model) buildDecodeInput(g nn.Graph, B int) {
	x := g.Add(m.emb.Forward(g, g.Ints(lm.FeedIDs, B)), g.Gather(g.Param(m.pos), g.Ints(feedPos, B)))
	m.projectOutputs(g, 0, g.Reshape(x, B, 1, m.cfg.Dim))
}

// projectOutputs outputs x and layer l's projection of it.
func (m *Model) projectOutputs(g nn.Graph, l int, x nn.Tensor) {
	q, k, v := m.layers[l].SelfAttn.Project(g, x)
	g.Output(feedX, x)
	g.Output(feedQ, q)
	g.Output(cacheName("k", l), k)
	g.Output(cacheName("v", l), v)
}

// buildDecodeLayer runs layer l for one position of B rows against the
// caches kc and vc of capacity C (slot pos already holding the position's
// key and value); it outputs the next layer's input and projection, or,
// after the last layer, the next-token log-probabilities.
func (m *Model) buildDecodeLayer(g nn.Graph, l, B, C int, kc, vc *nn.Param) {
	d, H := m.cfg.Dim, m.cfg.Heads
	x := g.Floats(feedX, B, 1, d)
	q := g.Floats(feedQ, B*H, 1, d/H)
	ctx := nn.CacheAttention(g, q, g.Param(kc), g.Param(vc), g.Floats(feedMask, 1, C), g.Ints(feedFill, 1))
	x = m.block(g, l, x, ctx)
	if l+1 < len(m.layers) {
		m.projectOutputs(g, l+1, x)
		return
	}
	g.Output(lm.OutLogProbs, g.LogSoftmax(m.fc.Forward(g, g.Reshape(x, B, d))))
}
