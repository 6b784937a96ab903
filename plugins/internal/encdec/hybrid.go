package encdec

import (
	"context"

	"arbench/harness"
)

// Verifier is an autoregressive conditional model (transformer-s2s) as
// speculative decoding uses it: besides one token per row (Step) its
// state takes several tokens per row in one decoder pass and can be
// rolled back, so a rejected draft leaves nothing in the cache.
type Verifier interface {
	harness.SourceStepper
	// StepN feeds k ≥ 1 tokens per row (the same k for every row) at
	// positions Len()..Len()+k−1 in one decoder pass and returns
	// out[i][j][v], the next-token log-probabilities after tokens[i][:j+1];
	// out[i][0] equals what Step(tokens[i][0]) would return.
	StepN(ctx context.Context, s harness.State, tokens [][]int) ([][][]float32, error)
	// Rewind keeps the first n tokens of every row (0 < n ≤ Len()), as if
	// nothing after them had been fed.
	Rewind(s harness.State, n int) error
}

// RowVerifier is a Verifier whose state holds a length per row, so that
// the rows of a batch can advance by different numbers of tokens
// (speculative decoding lets each row keep its own accepted count).
// Len() of its state is the longest row's length; Rewind(s, n) sets every
// row to n tokens (0 < n ≤ the shortest row's length).
type RowVerifier interface {
	Verifier
	// RewindRows keeps the first n[i] tokens of row i (0 < n[i] ≤ row i's
	// length, one entry per row), as if nothing after them had been fed.
	// The next Step or StepN feeds row i's k tokens (the same k for every
	// row) at positions n[i]..n[i]+k−1, every row's within the context.
	RewindRows(s harness.State, n []int) error
}

// DraftState is a non-autoregressive drafter's encoding of a batch of
// sources, made once per decoding.
type DraftState interface {
	// Rows is the number of sources.
	Rows() int
}

// Proposer is a non-autoregressive model (nar) used as a speculative
// drafter: one decoder pass proposes the next gamma tokens of every row.
type Proposer interface {
	// StartDraft encodes the sources (ragged rows of content tokens).
	StartDraft(ctx context.Context, sources [][]int) (DraftState, error)
	// Propose returns q[i][j][v], the log-probabilities of token v at
	// target position len(prefixes[i])+j for j < gamma, given the
	// equal-length prefixes of the target generated so far (content
	// tokens, no start token), from one decoder pass that feeds the
	// prefix and [MASK] at every later position.
	Propose(ctx context.Context, st DraftState, prefixes [][]int, gamma int) ([][][]float32, error)
}
