package bench

import (
	"context"
	"testing"

	"arbench/harness"
	_ "arbench/plugins/all"
)

// TestFLOPFormulasHandCount checks the formulas against products counted
// by hand for tiny models.
func TestFLOPFormulasHandCount(t *testing.T) {
	// RNN E=3, H=4, 2 layers, V=5: layer 0 2·4·(3+4) = 56 (W_ih x: 24,
	// W_hh h: 32), layer 1 2·4·(4+4) = 64, output 2·4·5 = 40.
	if got := RecurrentForward(1, 3, 4, 2, 5); got != 56+64+40 {
		t.Errorf("rnn forward = %v, want 160", got)
	}
	// LSTM: four gates, 4·56 + 4·64 + 40.
	if got := RecurrentForward(4, 3, 4, 2, 5); got != 224+256+40 {
		t.Errorf("lstm forward = %v, want 520", got)
	}
	// Training on 2 rows of 3: 3·6·160, less the unneeded ∂h0 product
	// (2·2·4·4 = 64) in each of the 2 layers.
	if got := RecurrentTrainStep(1, 3, 4, 2, 5, 2, 3); got != 3*6*160-2*64 {
		t.Errorf("rnn train step = %v, want 2752", got)
	}
	// Transformer d=4, f=8, 1 layer, V=5, 3 attended positions:
	// q,k,v 2·4·12 = 96; output projection 2·4·4 = 32; feed-forward
	// 2·4·8 + 2·8·4 = 128; scores 2·4·3 = 24; weighted values 2·3·4 = 24;
	// output layer 2·4·5 = 40.
	if got := TransformerForward(4, 8, 1, 5, 3); got != 96+32+128+24+24+40 {
		t.Errorf("transformer forward = %v, want 344", got)
	}
	if got := TransformerTrainStep(4, 8, 1, 5, 2, 3); got != 3*6*344 {
		t.Errorf("transformer train step = %v, want %v", got, 3*6*344)
	}
}

func countingModel(t *testing.T, name, cfg string, cb *CountBackend, vocab, seqLen int) harness.Model {
	t.Helper()
	m, err := harness.NewModel(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := harness.DecodeConfig(name+".yaml", []byte(cfg), m.Config()); err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(context.Background(), harness.Env{Backend: cb, Vocab: vocab, SeqLen: seqLen, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return m
}

func zeroBatch(B, T int) harness.Batch {
	b := harness.Batch{Inputs: make([][]int, B), Targets: make([][]int, B)}
	for i := range B {
		b.Inputs[i], b.Targets[i] = make([]int, T), make([]int, T)
	}
	return b
}

// TestCountBackendMatchesFormulas: the products the real plugins execute,
// counted by CountBackend, are what the formulas say.
func TestCountBackendMatchesFormulas(t *testing.T) {
	ctx := context.Background()
	const V, B, T = 11, 3, 5
	cases := []struct {
		name, cfg     string
		forward, step float64
	}{
		{"rnn", "{embed: 6, hidden: 7, layers: 2}", RecurrentForward(1, 6, 7, 2, V), RecurrentTrainStep(1, 6, 7, 2, V, B, T)},
		{"lstm", "{embed: 6, hidden: 7, layers: 2}", RecurrentForward(4, 6, 7, 2, V), RecurrentTrainStep(4, 6, 7, 2, V, B, T)},
		{"transformer", "{dim: 8, heads: 2, layers: 2, ff: 12, context: 16}", TransformerForward(8, 12, 2, V, T), TransformerTrainStep(8, 12, 2, V, B, T)},
	}
	for _, c := range cases {
		cb := &CountBackend{}
		m := countingModel(t, c.name, c.cfg, cb, V, T)
		if _, err := m.(harness.Trainer).Gradients(ctx, zeroBatch(B, T), 1); err != nil {
			t.Fatal(err)
		}
		if got := cb.FLOPs(); got != c.step {
			t.Errorf("%s: training step counted %v FLOPs, formula %v", c.name, got, c.step)
		}
		cb.Reset()
		if _, err := m.(harness.Scorer).LogProbs(ctx, zeroBatch(B, T)); err != nil {
			t.Fatal(err)
		}
		if got, want := cb.FLOPs(), float64(B*T)*c.forward; got != want {
			t.Errorf("%s: scoring counted %v FLOPs, formula %v", c.name, got, want)
		}
	}
}

// TestCountBackendKVDecode: a cached generation step of the transformer
// costs one position attending to the filled slots of the cache.
func TestCountBackendKVDecode(t *testing.T) {
	ctx := context.Background()
	const V, B, P = 11, 2, 5
	cb := &CountBackend{}
	m := countingModel(t, "transformer", "{dim: 8, heads: 2, layers: 2, ff: 12, context: 40}", cb, V, P)
	st := m.(harness.Stepper)
	s, _, err := st.Start(ctx, make([][]int, B))
	if err == nil {
		t.Fatal("Start accepted empty prompts")
	}
	prompts := [][]int{make([]int, P), make([]int, P)}
	if s, _, err = st.Start(ctx, prompts); err != nil {
		t.Fatal(err)
	}
	// Prefill: P positions attending to P, the output layer on the last.
	body := TransformerForward(8, 12, 2, V, P) - 2*8*V
	if got, want := cb.FLOPs(), float64(B)*(float64(P)*body+2*8*V); got != want {
		t.Errorf("prefill counted %v, want %v", got, want)
	}
	for pos := P; pos < 20; pos++ {
		cb.Reset()
		if _, err := st.Step(ctx, s, []int{1, 2}); err != nil {
			t.Fatal(err)
		}
		// The cache holds 16 or 32 slots; the step attends to the pos+1
		// filled ones (nn.CacheAttention).
		if got, want := cb.FLOPs(), float64(B)*TransformerForward(8, 12, 2, V, pos+1); got != want {
			t.Errorf("decode at position %d counted %v, want %v", pos, got, want)
		}
	}
}
