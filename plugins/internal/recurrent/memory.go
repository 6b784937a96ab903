package recurrent

import (
	"arbench/harness"
	"arbench/plugins/internal/lm"
)

// EstimateMemory estimates the model's memory for env without allocating
// it (see lm.Footprint.Estimate for the bytes). With V = env.Vocab and
// g = 1 gate for the RNN, 4 for the LSTM, the parameters are
//
//	P = V·E + Σ_l g·H·(in_l + H + 2) + H·V + V,   in_0 = E, in_l = H,
//
// and the values kept per position, counted from the graph and checked by
// measuring (plugintest.CheckMemoryEstimate), are the logits (see
// lm.LogitValues) plus:
//
//	embedding (gathered rows, time-major copy)   train 4·E, eval 2·E
//	per layer, RNN  (input projection, product, sum and tanh per step,
//	                 outputs; gradients of each)  train 14·H, eval 7·H
//	per layer, LSTM (the same over 4H gates, the fused cell's h, c and
//	                 saved activations)          train 42·H, eval 25·H
//	per layer with dropout (mask, output, gradient)  train 3·H
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	E, H, L, V := float64(m.cfg.Embed), float64(m.cfg.Hidden), float64(m.cfg.Layers), float64(env.Vocab)
	gates, trainLayer, evalLayer := 1.0, 14.0, 7.0
	if m.family == "lstm" {
		gates, trainLayer, evalLayer = 4, 42, 25
	}
	if m.cfg.Dropout > 0 {
		trainLayer += 3
	}
	f := lm.Footprint{
		Params: V*E + gates*H*(E+H+2) + (L-1)*gates*H*(2*H+2) + H*V + V,
		Train:  lm.LogitValues(env.Vocab) + 4*E + trainLayer*H*L,
		Eval:   lm.LogitValues(env.Vocab) + 2*E + evalLayer*H*L,
	}
	return f.Estimate(env)
}
