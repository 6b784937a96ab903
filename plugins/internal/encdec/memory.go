package encdec

import "arbench/plugins/internal/lm"

// Shape is an encoder–decoder's shape for its memory estimate: width D,
// feed-forward width FF, Heads, EncLayers and DecLayers, vocabulary V, and
// rows of S source and T decoder positions. SelfPadded marks a decoder
// self-attention under a target key padding mask (the non-autoregressive
// decoder) rather than a constant causal mask.
type Shape struct {
	D, FF, Heads, EncLayers, DecLayers, V, S, T float64
	SelfPadded, Dropout                         bool
}

// TrainRow is the float values of one row at the peak of a training
// executable (lm.Values, the gorgonia backend's pooled buffers): per
// source position lm.Embedded, the encoder layers (lm.EncoderLayer under
// the source's key padding bias), the memory (saved for every decoder
// layer's key and value projection) and each decoder layer's keys and
// values (lm.MemoryKV); per decoder position lm.Embedded, the decoder
// layers (lm.DecoderLayer over T keys and the S padded memory keys) and
// the output layer (lm.OutputTrain). Both streams hold a zero constant of
// h·S per position for the padding biases (and the decoder one of h·T for
// its own, when padded). Saved and held values add up over the row; the
// peak is the larger stream's, whose stages run one after the other.
func (s Shape) TrainRow() float64 {
	src, tgt := s.trainStreams()
	return s.S*(src.Saved+src.Held) + s.T*(tgt.Saved+tgt.Held) + max(s.S*src.Peak, s.T*tgt.Peak)
}

// trainStreams are TrainRow's per-position values of the source and the
// decoder positions.
func (s Shape) trainStreams() (src, tgt lm.Values) {
	mem := lm.Attention{Heads: s.Heads, Keys: s.S, Padded: true}
	self := lm.Attention{Heads: s.Heads, Keys: s.T, Padded: s.SelfPadded}
	emb, _ := lm.Embedded(s.D)
	enc, _ := lm.EncoderLayer(s.D, s.FF, mem, s.Dropout)
	dec, _ := lm.DecoderLayer(s.D, s.FF, self, mem, s.Dropout)
	kv, _ := lm.MemoryKV(s.D)
	src = emb.Then(enc.Times(s.EncLayers)).Then(lm.Values{Saved: s.D}).Then(kv.Times(s.DecLayers)).Then(s.zeros(false))
	tgt = emb.Then(dec.Times(s.DecLayers)).Then(lm.OutputTrain(s.D, s.V)).Then(s.zeros(true))
	return src, tgt
}

// zeros is the padding biases' zero constants held per position of the
// source stream or, decoder, of the decoder stream.
func (s Shape) zeros(decoder bool) lm.Values {
	v := lm.Values{Held: s.Heads * s.S}
	if decoder && s.SelfPadded {
		v.Held += s.Heads * s.T
	}
	return v
}

// EvalStreams are the largest evaluation stages per position of the
// encoder (lm.Embedded, lm.EncoderLayer) and of the decoder (lm.Embedded,
// lm.DecoderLayer) with the constants each holds; the caller adds the
// output layer and what its executables hold besides. In the decoder's
// stages the memory's keys and values, and the memory, are alive too
// (3d per source position); while a layer projects them, 6d (lm.MemoryKV).
func (s Shape) EvalStreams() (enc, dec lm.Values, memory, projecting float64) {
	mem := lm.Attention{Heads: s.Heads, Keys: s.S, Padded: true}
	self := lm.Attention{Heads: s.Heads, Keys: s.T, Padded: s.SelfPadded}
	_, emb := lm.Embedded(s.D)
	_, e := lm.EncoderLayer(s.D, s.FF, mem, false)
	_, d := lm.DecoderLayer(s.D, s.FF, self, mem, false)
	_, kv := lm.MemoryKV(s.D)
	return emb.Then(e).Then(s.zeros(false)), emb.Then(d).Then(s.zeros(true)), 3 * s.D, kv.Peak
}

// Ops is the graph's ops for lm.Footprint.Ops: lm.EncoderLayerOps and
// lm.PaddingOps per encoder layer, lm.DecoderLayerOps per decoder layer
// (and lm.PaddingOps for a padded self-attention), and extra for the
// embeddings, the output layer, the losses and heads.
func (s Shape) Ops(extra float64) float64 {
	dec := lm.DecoderLayerOps(s.Dropout)
	if s.SelfPadded {
		dec += lm.PaddingOps
	}
	return extra + s.EncLayers*(lm.EncoderLayerOps(s.Dropout)+lm.PaddingOps) + s.DecLayers*dec
}
