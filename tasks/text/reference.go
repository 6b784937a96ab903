package text

import (
	"math"

	"arbench/harness"
	"arbench/internal/fsum"
)

// unigramPseudoCount is the count added to every byte value before the
// unigram reference is normalised: add-½, the Krichevsky–Trofimov estimator
// (Krichevsky & Trofimov 1981, "The performance of universal encoding",
// IEEE Trans. Inf. Theory 27), the Jeffreys-prior estimate used in
// universal coding. Every byte value keeps a finite code length, also one
// the train split never shows. With a train split of 10⁶ bytes the choice
// hardly matters: on the Jargon File add-½ and add-one give 4.85782 and
// 4.85786 bits/byte on the whole test split.
const unigramPseudoCount = 0.5

// Reference names (harness.ReferenceName): the baselines reported with
// every run.
const (
	refUnigram = "unigram"
	refUniform = "uniform"
)

// unigramLogProbs returns log p(v) of the unigram byte model fitted on
// train: p(v) = (count(v) + ½) / (len(train) + 256·½).
func unigramLogProbs(train []byte) [Vocab]float64 {
	var counts [Vocab]int
	for _, b := range train {
		counts[b]++
	}
	var lp [Vocab]float64
	z := math.Log(float64(len(train)) + Vocab*unigramPseudoCount)
	for v, c := range counts {
		lp[v] = math.Log(float64(c)+unigramPseudoCount) - z
	}
	return lp
}

// references returns the reference rows of an evaluation of the targets
// seq[1:], in units (the metrics it reports of models), named
// harness.ReferenceName(metric, reference):
//
//   - unigram: the add-½ unigram byte model fitted on the train split
//     (unigramLogProbs), scored on the same targets as the model, with the
//     bootstrap interval over disjoint windows of seq_len targets, so that
//     it is the same for every model;
//   - uniform: 1/256 for every byte, 8 bits/byte exactly, without
//     interval. It is the uniform distribution over the task's vocabulary,
//     the loss of a model that knows nothing of the text (an untrained one
//     with zero logits), not over the distinct bytes of the corpus: that
//     would be a distribution fitted on data, and one fitted on the train
//     split gives infinite loss to a test byte the train split lacks.
func (t *Task) references(units []lossUnit, seq []byte) []harness.Metric {
	lp := unigramLogProbs(t.train)
	N := len(seq) - 1
	nll := make([]float64, N)
	for j, b := range seq[1:] {
		nll[j] = -lp[b]
	}
	uni := fsum.Sum(nll) / float64(N)
	ci := meanCI(perToken(blockTotals(nll, t.cfg.SeqLen)), ciSeed(t.seed, "test/unigram"), "windows")
	uniParams := map[string]any{"reference": refUnigram, "fitted_on": "train", "smoothing": "add-1/2 (Krichevsky-Trofimov)",
		"tokens": N, "window": t.cfg.SeqLen}
	unifParams := map[string]any{"reference": refUniform, "symbols": Vocab, "tokens": N}
	var out []harness.Metric
	for _, m := range lossMetrics(units, "", uni, ci, uniParams) {
		m.Name = harness.ReferenceName(m.Name, refUnigram)
		out = append(out, m)
	}
	for _, m := range lossMetrics(units, "", math.Log(Vocab), nil, unifParams) {
		m.Name = harness.ReferenceName(m.Name, refUniform)
		out = append(out, m)
	}
	return out
}
