package s2s

import (
	"context"
	"errors"
	"fmt"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/encdec"
	"arbench/plugins/internal/lm"
)

// Teacher forcing: training and scoring run the encoder and the whole
// decoder under the causal mask in one executable per (B, S, T).

// errNoSource refuses a batch a conditional model cannot read.
var errNoSource = errors.New("the batch has no source sequence; an encoder–decoder reads Batch.Source (run it on a sequence-to-sequence task)")

// batchFeeds returns the feeds of a conditional batch, its sources padded
// to the batch's width and its decoder rows as lm.LMFeeds makes them,
// with the batch's rows B, source width S and decoder length T.
func (m *Model) batchFeeds(b harness.Batch, seed uint64) (f nn.Feeds, B, S, T int, err error) {
	if err := m.ready(); err != nil {
		return nn.Feeds{}, 0, 0, 0, err
	}
	if b.Source == nil {
		return nn.Feeds{}, 0, 0, 0, fmt.Errorf("%s: %w", Family, errNoSource)
	}
	if f, B, T, err = lm.LMFeeds(b, m.vocab, seed); err != nil {
		return nn.Feeds{}, 0, 0, 0, fmt.Errorf("%s: %w", Family, err)
	}
	if len(b.Source) != B {
		return nn.Feeds{}, 0, 0, 0, fmt.Errorf("%s: the batch has %d sources for %d decoder rows", Family, len(b.Source), B)
	}
	width := 0
	for _, row := range b.Source {
		width = max(width, len(row))
	}
	src, err := encdec.PadSources(encdec.FromBatch(b.Source), m.vocab, width)
	if err != nil {
		return nn.Feeds{}, 0, 0, 0, fmt.Errorf("%s: %w", Family, err)
	}
	if err := m.checkLengths(src.S, T); err != nil {
		return nn.Feeds{}, 0, 0, 0, err
	}
	src.Feeds(&f)
	return f, B, src.S, T, nil
}

// checkLengths refuses sources of S positions or decoder rows of T
// positions beyond the learned positions.
func (m *Model) checkLengths(S, T int) error {
	if S > m.cfg.Context {
		return fmt.Errorf("%s: sources of %d tokens exceed the context of %d positions", Family, S, m.cfg.Context)
	}
	if T > m.cfg.Context {
		return fmt.Errorf("%s: decoder rows of %d tokens exceed the context of %d positions", Family, T, m.cfg.Context)
	}
	return nil
}

// Gradients computes the mean cross-entropy of b's scored targets and its
// gradient. A non-finite loss is returned with a nil error; the runner
// records the run as diverged.
func (m *Model) Gradients(ctx context.Context, b harness.Batch, seed uint64) (float64, error) {
	f, B, S, T, err := m.batchFeeds(b, seed)
	if err != nil {
		return 0, err
	}
	e, err := m.exec(fmt.Sprintf("train/b%d/s%d/t%d", B, S, T), true, func(g nn.Graph) {
		logits := m.logits(g, B, S, T)
		g.Loss(nn.CrossEntropy(g, logits, g.Ints(lm.FeedTargets, B*T), g.Floats(lm.FeedWeights, B*T)))
	})
	if err != nil {
		return 0, err
	}
	res, err := e.Run(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("%s: train step: %w", Family, err)
	}
	return res.Loss, nil
}

// LogProbs returns log p(Targets[i][t] | Source[i], Inputs[i][:t+1]) per
// position under teacher forcing, 0 where the target is negative.
func (m *Model) LogProbs(ctx context.Context, b harness.Batch) ([][]float64, error) {
	f, B, S, T, err := m.batchFeeds(b, 0)
	if err != nil {
		return nil, err
	}
	e, err := m.exec(fmt.Sprintf("eval/b%d/s%d/t%d", B, S, T), false, func(g nn.Graph) {
		g.Output(lm.OutLogProbs, g.LogSoftmax(m.logits(g, B, S, T)))
	})
	if err != nil {
		return nil, err
	}
	res, err := e.Run(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("%s: score: %w", Family, err)
	}
	return lm.PickLogProbs(res.Outputs[lm.OutLogProbs], b.Targets)
}

// logits builds the teacher-forced logits [B*T, V] of B decoder rows of T
// inputs (feed lm.FeedIDs) given their sources of S positions (the
// encdec feeds): the encoder, then every decoder layer under the causal
// mask with the sources' padding masked in the cross-attention.
func (m *Model) logits(g nn.Graph, B, S, T int) nn.Tensor {
	src := encdec.Declare(g, B, S)
	memory := m.enc.Forward(g, src)
	y := m.embed(g, g.Ints(lm.FeedIDs, B*T), g.Slice(g.Param(m.tgtPos.Weight), 0, 0, T), B, T)
	masks := nn.DecoderMasks{Tgt: g.Const(nn.CausalMask(T), T, T), MemoryKeyPadding: src.Padding}
	for _, l := range m.dec {
		y = l.Forward(g, y, memory, masks)
	}
	return m.fc.Forward(g, g.Reshape(y, B*T, m.cfg.Dim))
}

// embed returns the decoder's input E_tgt[ids] + pos, [B,T,d], for ids
// [B*T] and the positions' embeddings pos [T,d].
func (m *Model) embed(g nn.Graph, ids, pos nn.Tensor, B, T int) nn.Tensor {
	return g.Add(g.Reshape(m.tgtEmb.Forward(g, ids), B, T, m.cfg.Dim), pos)
}
