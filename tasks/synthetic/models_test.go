package synthetic

import (
	"context"
	"fmt"
	"math"

	"arbench/harness"
	"arbench/nn"
)

// Fake models for the tests: each computes its next-token distribution at
// position t from row[:t+1] only, as harness.Distributioner requires.

type baseModel struct {
	family string
	vocab  int
}

func (b baseModel) Config() harness.Config                   { return nil }
func (b baseModel) Setup(context.Context, harness.Env) error { return nil }
func (b baseModel) Params() *nn.ParamSet                     { return nil }
func (b baseModel) Info() harness.ModelInfo                  { return harness.ModelInfo{Family: b.family} }

// pointMass returns log-probabilities with (almost) all mass on token v.
func pointMass(vocab, v int) []float32 {
	out := make([]float32, vocab)
	for i := range out {
		out[i] = -40
	}
	out[v] = 0
	return out
}

func uniformLogp(vocab int) []float32 {
	out := make([]float32, vocab)
	for i := range out {
		out[i] = float32(-math.Log(float64(vocab)))
	}
	return out
}

// rowModel applies a per-position rule to every row.
type rowModel struct {
	baseModel
	next     func(row []int, t int) []float32
	maxWidth int // widest row seen
	limit    int // MaxContext when > 0 (see limitedRowModel)
}

func (m *rowModel) NextLogProbs(_ context.Context, inputs [][]int) ([][][]float32, error) {
	out := make([][][]float32, len(inputs))
	for i, row := range inputs {
		m.maxWidth = max(m.maxWidth, len(row))
		if m.limit > 0 && len(row) > m.limit {
			return nil, fmt.Errorf("row of %d tokens exceeds MaxContext %d", len(row), m.limit)
		}
		for t := range row {
			out[i] = append(out[i], m.next(row[:t+1], t))
		}
	}
	return out, nil
}

type limitedRowModel struct{ *rowModel }

func (m limitedRowModel) MaxContext() int { return m.limit }

// steppedModel adds harness.Stepper to a rowModel by re-running its rule on
// the carried prefix (so both generation paths must agree exactly).
type steppedModel struct {
	*rowModel
	steps int
}

type prefixState struct{ rows [][]int }

func (s *prefixState) Len() int { return len(s.rows[0]) }

func (m *steppedModel) last(rows [][]int) [][]float32 {
	out := make([][]float32, len(rows))
	for i, row := range rows {
		out[i] = m.next(row, len(row)-1)
	}
	return out
}

func (m *steppedModel) Start(_ context.Context, prompts [][]int) (harness.State, [][]float32, error) {
	st := &prefixState{}
	for _, p := range prompts {
		st.rows = append(st.rows, append([]int(nil), p...))
	}
	return st, m.last(st.rows), nil
}

func (m *steppedModel) Step(_ context.Context, s harness.State, tokens []int) ([][]float32, error) {
	st := s.(*prefixState)
	for i, tok := range tokens {
		st.rows[i] = append(st.rows[i], tok)
	}
	m.steps++
	return m.last(st.rows), nil
}

// perfectCopy answers copy rows exactly: after the separator at index s, the
// token at t+1 is row[t−s+1].
func perfectCopy(vocab int) func(row []int, t int) []float32 {
	return func(row []int, t int) []float32 {
		s := sepIndex(row)
		if s < 0 || t < s {
			return uniformLogp(vocab)
		}
		return pointMass(vocab, row[t-s+1])
	}
}

func sepIndex(row []int) int {
	for i, x := range row {
		if x == Sep {
			return i
		}
	}
	return -1
}

// confusedCopy copies like perfectCopy but gets answer 3 wrong on purpose,
// and once its input shows a wrong answer (row[t] ≠ the source token it
// should equal) it answers FirstSymbol from then on: under teacher forcing
// it only ever errs at answer 3; free-running, its own mistake derails it.
func confusedCopy(vocab, symbols int) func(row []int, t int) []float32 {
	return func(row []int, t int) []float32 {
		s := sepIndex(row)
		if s < 0 || t < s {
			return uniformLogp(vocab)
		}
		for k := s + 1; k <= t; k++ {
			if row[k] != row[k-s] {
				return pointMass(vocab, FirstSymbol)
			}
		}
		want := row[t-s+1]
		if t-s+1 == 3 {
			want = FirstSymbol + (want-FirstSymbol+1)%symbols
		}
		return pointMass(vocab, want)
	}
}

// oracleRule returns the HMM's exact next-token distribution (over the
// task's vocabulary) after row[:t+1] = [BOS, symbols...]; positions after
// a non-symbol (padding) get a uniform distribution.
func oracleRule(h *HMM, vocab int) func(row []int, t int) []float32 {
	return func(row []int, t int) []float32 {
		b := h.Start()
		for _, tok := range row[1 : t+1] {
			if tok < FirstSymbol {
				return uniformLogp(vocab)
			}
			b = h.Observe(b, tok-FirstSymbol)
		}
		p := h.Next(b, make([]float64, h.Symbols()))
		out := make([]float32, vocab)
		for v := range out {
			out[v] = float32(math.Inf(-1))
		}
		for v, pv := range p {
			out[FirstSymbol+v] = float32(math.Log(pv))
		}
		return out
	}
}

// uniformSymbols spreads the mass evenly over the first K symbols.
func uniformSymbols(vocab, K int) func(row []int, t int) []float32 {
	return func([]int, int) []float32 {
		out := make([]float32, vocab)
		for v := range out {
			out[v] = float32(math.Inf(-1))
		}
		for v := range K {
			out[FirstSymbol+v] = float32(-math.Log(float64(K)))
		}
		return out
	}
}
