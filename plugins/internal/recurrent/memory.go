package recurrent

import (
	"arbench/harness"
	"arbench/plugins/internal/lm"
)

// smallProductRows is the gorgonia backend's largest batch for which a
// training executable holds W_hhᵀ (g·H² values per layer), which the
// backward pass's per-step products with the recurrent weight read
// unpacked (nn/gorgonia's smallProductRows).
const smallProductRows = 64

// EstimateMemory estimates the model's memory for env without allocating
// it (see lm.Footprint.Estimate for the bytes, lm.Values for what the
// gorgonia backend's pooled buffers hold). With V = env.Vocab and g = 1
// gate for the RNN, 4 for the LSTM, the parameters are
//
//	P = V·E + Σ_l g·H·(in_l + H + 2) + H·V + V,   in_0 = E, in_l = H,
//
// and the values per position, counted from the graph and checked by
// measuring (plugintest.CheckMemoryEstimate), are lm.Embedded(E), the
// layers (layerValues) and the output layer (lm.OutputTrain(H, V),
// lm.OutputEval(V)): in training Σ_l (in_l + H) + H + V saved and the
// largest of 2V and a layer's 2·g·H − H or g·H + H in flight. The
// training executable's workspace is lm.GemmWorkspace over B·T rows of
// the input projections (E or H to g·H; the recurrent weight's gradient
// has the same shape, H to g·H) and the output layer (H to V), and, for
// batches of at most 64 rows, W_hhᵀ. The graph has about 16 ops for the
// embedding, the output layer and the loss and 16 per layer (the
// projection's 8 with its parameters, the recurrence's node, views and
// initial states, the transposition back; 2 more with dropout), for
// lm.Footprint.Ops.
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	E, H, L, V := float64(m.cfg.Embed), float64(m.cfg.Hidden), float64(m.cfg.Layers), float64(env.Vocab)
	gates := 1.0
	if m.family == "lstm" {
		gates = 4
	}
	train, eval := lm.Embedded(E)
	for l := range m.cfg.Layers {
		in := H
		if l == 0 {
			in = E
		}
		t, e := m.layerValues(in, H, gates)
		train, eval = train.Then(t), eval.Then(e)
	}
	G := gates * H
	workspace := lm.GemmWorkspace(float64(max(env.Batch, 0)*max(env.SeqLen, 0)),
		lm.Linear{In: E, Out: G}, lm.Linear{In: H, Out: G}, lm.Linear{In: H, Out: V})
	if env.Batch <= smallProductRows {
		workspace += L * G * H
	}
	layerOps := 16.0
	if m.cfg.Dropout > 0 {
		layerOps += 2
	}
	f := lm.Footprint{
		Params:    V*E + gates*H*(E+H+2) + (L-1)*gates*H*(2*H+2) + H*V + V,
		Train:     train.Then(lm.OutputTrain(H, V)).Total(),
		Eval:      eval.Then(lm.OutputEval(V)).Total(),
		Workspace: workspace,
		Ops:       16 + L*layerOps,
	}
	return f.Estimate(env)
}

// layerValues is one recurrent layer of in inputs and G = gates·H
// pre-activations per position, as the gorgonia backend runs it
// (nn.SequenceRecurrer: the input projection, one node for the recurrence,
// the time-major state transposed back):
//
//	training, saved: the time-major input (the projection's weight
//	  gradient reads it) and the hidden states (the recurrence's backward
//	  node), in + H;
//	training, peak: the projection's product and bias sum before the layer's
//	  states exist (2G − H), or the backward node's output [dproj | dW_hh |
//	  d state] with the states' gradient (G + H);
//	evaluation, peak: the product with its input (in + G), the product and
//	  its bias sum (2G), the sum and the states (G + H);
//	held, LSTM: the fused cells' activations and cell states (6H, fused ops'
//	  scratch, in both executables); with dropout, its mask (H, training).
func (m *Model) layerValues(in, H, gates float64) (train, eval lm.Values) {
	G := gates * H
	train = lm.Values{Saved: in + H, Peak: max(2*G-H, G+H)}
	eval = lm.Values{Peak: max(in+G, 2*G, G+H)}
	if gates == 4 {
		train.Held, eval.Held = 6*H, 6*H
	}
	if m.cfg.Dropout > 0 {
		train.Held += H
	}
	return train, eval
}
