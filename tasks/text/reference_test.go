package text

import (
	"context"
	"math"
	"testing"

	"arbench/harness"
)

func TestUnigramLogProbs(t *testing.T) {
	lp := unigramLogProbs([]byte("aab"))
	z := 3 + 256*0.5
	for v, want := range map[byte]float64{'a': 2.5 / z, 'b': 1.5 / z, 'z': 0.5 / z} {
		if got := math.Exp(lp[v]); !approx(got, want, 1e-12) {
			t.Errorf("p(%q) = %v, want %v (add-1/2)", v, got, want)
		}
	}
	var sum float64
	for _, l := range lp {
		sum += math.Exp(l)
	}
	if !approx(sum, 1, 1e-12) {
		t.Errorf("probabilities sum to %v", sum)
	}
}

// TestReferences: every run reports the unigram (fitted on train, scored
// on the model's test targets) and uniform references in each unit, the
// same whatever the model and its context.
func TestReferences(t *testing.T) {
	// Train and test drawn from different distributions: the reference
	// must be fitted on train, not on what it scores.
	data := randomBytes(13, 20000)
	for i := range data[:18000] {
		data[i] %= 16
	}
	task := prepared(t, data, Config{SeqLen: 32, ValidTokens: 100, EvalBatch: 16, MaxEvalTokens: 500})
	seq := task.test[:501]
	var counts [256]float64
	for _, b := range task.train {
		counts[b]++
	}
	want := 0.0
	for _, b := range seq[1:] {
		want -= math.Log((counts[b] + 0.5) / (float64(len(task.train)) + 128))
	}
	want /= 500
	var first map[string]harness.Metric
	for _, m := range []harness.Model{uniformModel{}, limitedModel{maxCtx: 8, maxWidth: new(int)}} {
		ev, err := task.Evaluate(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		got := metrics(ev)
		for name, w := range map[string]struct {
			v    float64
			unit string
		}{
			harness.ReferenceName("nats_per_token", refUnigram): {want, "nats/token"},
			harness.ReferenceName("bits_per_byte", refUnigram):  {want / math.Ln2, "bits/byte"},
			harness.ReferenceName("perplexity", refUnigram):     {math.Exp(want), ""},
			harness.ReferenceName("nats_per_token", refUniform): {math.Log(256), "nats/token"},
			harness.ReferenceName("bits_per_byte", refUniform):  {8, "bits/byte"},
			harness.ReferenceName("perplexity", refUniform):     {256, ""},
		} {
			r, ok := got[name]
			if !ok || !approx(r.Value, w.v, 1e-12) || r.Unit != w.unit || r.Split != "test" || r.Params["tokens"] != 500 {
				t.Errorf("%s = %+v, want %v %q over 500 tokens", name, r, w.v, w.unit)
			}
			if first != nil && (r.Value != first[name].Value || (r.CI == nil) != (first[name].CI == nil) ||
				(r.CI != nil && *r.CI != *first[name].CI)) {
				t.Errorf("%s differs between models: %+v and %+v", name, r, first[name])
			}
		}
		first = got
		uni := got[harness.ReferenceName("bits_per_byte", refUnigram)].CI
		if uni == nil || uni.N != 16 || uni.Of != "windows" || !(float64(uni.Lo) < want/math.Ln2 && want/math.Ln2 < float64(uni.Hi)) {
			t.Errorf("unigram interval %+v, want one around %v over 16 windows of 32", uni, want/math.Ln2)
		}
		if ci := got[harness.ReferenceName("bits_per_byte", refUniform)].CI; ci != nil {
			t.Errorf("uniform reference has an interval %+v; it is exact", ci)
		}
	}
	// The test split is uniform over 256 values, the train split over 16:
	// the unigram is far worse than uniform here.
	if want < math.Log(256)+1 {
		t.Errorf("unigram %v nats: the corpus does not separate train from test", want)
	}
}
