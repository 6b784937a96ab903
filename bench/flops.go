package bench

// FLOP formulas of arbench's models, per position, counting the matrix
// products only (2 FLOPs per multiply-accumulate; see CountBackend for why
// element-wise work is left out). They document what `arbench bench`
// measures with CountBackend, which counts the products a model actually
// executes, and the tests check the two agree.
//
// Recurrent models (embedding E, hidden H, L layers, vocabulary V; g = 1
// for the tanh RNN, 4 for the LSTM's gates):
//
//	forward per position = Σ_l 2·g·H·(in_l + H) + 2·H·V,  in_0 = E, in_l = H
//
// (the input projection W_ih x_t, the recurrence W_hh h_{t-1} and the
// output layer). A training step on B rows of T tokens costs three times
// its forward pass (the backward pass has two products per forward one,
// ∂x = ∂y·W and ∂W = ∂yᵀ·x) less the gradient of the zero initial state,
// which is a constant: 3·B·T·forward − L·2·g·B·H².
//
// Decoder-only Transformer (width d, feed-forward width f, L layers,
// vocabulary V), one position attending to n positions:
//
//	forward per position = L·(8d² + 4·d·f + 4·d·n) + 2·d·V
//
// (query/key/value projections 6d², output projection 2d², feed-forward
// 4df, scores q·kᵀ over n keys 2dn summed over heads, and the weighted sum
// of n values 2dn). In training and scoring every position computes all T
// scores of its row (the causal mask is applied to them, not skipped), so
// n = T for each of the T positions; training costs 3·B·T·forward(T). A
// generation step with the key/value cache attends to the capacity C of
// the cache (a power of two ≥ the position + 1, see plugins/transformer),
// which CountBackend counts as executed.

// RecurrentForward returns the forward FLOPs per position of an RNN
// (gates 1) or LSTM (gates 4) language model.
func RecurrentForward(gates, embed, hidden, layers, vocab int) float64 {
	f := 0.0
	for l := range layers {
		in := hidden
		if l == 0 {
			in = embed
		}
		f += 2 * float64(gates*hidden) * float64(in+hidden)
	}
	return f + 2*float64(hidden)*float64(vocab)
}

// RecurrentTrainStep returns the FLOPs of one training step on B rows of
// T tokens.
func RecurrentTrainStep(gates, embed, hidden, layers, vocab, B, T int) float64 {
	h := float64(hidden)
	return 3*float64(B*T)*RecurrentForward(gates, embed, hidden, layers, vocab) -
		float64(layers)*2*float64(gates)*float64(B)*h*h
}

// TransformerForward returns the forward FLOPs of one position attending
// to n positions.
func TransformerForward(dim, ff, layers, vocab, n int) float64 {
	d, f := float64(dim), float64(ff)
	return float64(layers)*(8*d*d+4*d*f+4*d*float64(n)) + 2*d*float64(vocab)
}

// TransformerTrainStep returns the FLOPs of one training step on B rows of
// T tokens.
func TransformerTrainStep(dim, ff, layers, vocab, B, T int) float64 {
	return 3 * float64(B*T) * TransformerForward(dim, ff, layers, vocab, T)
}
