package nar

import (
	"context"
	"slices"
	"strconv"

	"arbench/harness"
	"arbench/internal/decoding"
)

// Semi-autoregressive decoding (Wang et al. 2018, "Semi-Autoregressive
// Neural Machine Translation"; here with the CMLM as the model, as in
// Ghazvininejad et al.'s left-to-right baseline, Sec. 4.4): the target of
// the predicted length N is produced k tokens per decoder pass, left to
// right. Pass p feeds the p·k tokens decoded so far and [MASK] at every
// later position and keeps the greedy tokens of the next k positions, so
// a row takes ⌈N/k⌉ passes: k = 1 is autoregressive decoding with the
// CMLM (N passes), k ≥ N is one-pass non-autoregressive decoding (the
// output of iterations T = 1 with length_beam 1, tested). The settings of
// `semi_ar` are DecodeSettings "k=K" with Params {"tokens_per_pass": K}.

// semiName is the setting name of k tokens per pass.
func semiName(k int) string { return "k=" + strconv.Itoa(k) }

// semiAR decodes sources k tokens per pass: each source's most probable
// length (or opt.Length), rows decoded together, a row's pass covering
// exactly its N positions. Passes counts the passes over the batch.
func (m *Model) semiAR(ctx context.Context, sources [][]int, k int, opt harness.TranslateOptions) (*harness.Translation, error) {
	e, err := m.encode(ctx, sources)
	if err != nil {
		return nil, err
	}
	B := len(sources)
	lengths := make([]int, B)
	rows := make([][]int, B)
	rowSrc := make([]int, B)
	for i := range B {
		lengths[i] = opt.Length
		if opt.Length == 0 {
			lengths[i] = e.lengths(i, m.cfg.MaxOffset, 1, min(opt.MaxLen, m.cfg.Context))[0]
		}
		rows[i] = slices.Repeat([]int{m.vocab}, lengths[i])
		rowSrc[i] = i
	}
	out := &harness.Translation{Outputs: make([][]int, B), Lengths: lengths}
	for done := 0; done < slices.Max(lengths); done += k {
		v, T, err := m.decode(ctx, e, rowSrc, rows)
		if err != nil {
			return nil, err
		}
		out.Passes++
		for i, row := range rows {
			for j := done; j < min(done+k, len(row)); j++ {
				row[j] = decoding.Argmax(v.Data[(i*T+j)*m.vocab : (i*T+j+1)*m.vocab])
			}
		}
	}
	for i, row := range rows {
		if n := slices.Index(row, opt.End); n >= 0 && opt.Length == 0 {
			row = row[:n]
		}
		out.Outputs[i] = row
	}
	return out, nil
}

// semiK returns the tokens per pass of a semi-autoregressive setting.
func (m *Model) semiK(setting string) int {
	for _, k := range m.cfg.SemiAR {
		if semiName(k) == setting {
			return k
		}
	}
	return 0
}
