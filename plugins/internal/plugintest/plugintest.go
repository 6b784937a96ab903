// Package plugintest holds the checks every language-model plugin must pass:
// agreement with PyTorch on the same weights, carried-state generation equal
// to teacher forcing, learning, and determinism.
package plugintest

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"arbench/harness"
	"arbench/nn"
	nngorgonia "arbench/nn/gorgonia"
	"arbench/plugins/internal/recurrent"
)

// Backend returns the default CPU backend used by plugin tests.
func Backend(t testing.TB) nn.Backend {
	t.Helper()
	return nngorgonia.New()
}

// Meta reads an integer from the reference file's metadata.
func Meta(t testing.TB, dir, key string) int {
	t.Helper()
	meta, err := nn.ReadSafetensorsMetadata(filepath.Join(dir, "reference.io.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(meta[key])
	if err != nil {
		t.Fatalf("reference metadata %q: %v", key, err)
	}
	return v
}

// CheckReference loads testdata/reference.weights.safetensors (a PyTorch
// state_dict) into m, which must already have its config set to the sizes
// in the metadata, and compares every next-token distribution with the
// log-probabilities PyTorch computed, within tol.
func CheckReference(t *testing.T, m harness.Model, dir string, tol float64) {
	t.Helper()
	io := filepath.Join(dir, "reference.io.safetensors")
	vocab := Meta(t, dir, "vocab")
	floats, err := nn.ReadSafetensorsFloats(io)
	if err != nil {
		t.Fatal(err)
	}
	want := floats["logp"]
	ids, err := nn.ReadSafetensorsInts(io, "ids")
	if err != nil {
		t.Fatal(err)
	}
	B, T := want.Shape[0], want.Shape[1]
	if err := m.Setup(context.Background(), harness.Env{Backend: Backend(t), Vocab: vocab, SeqLen: T, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := nn.LoadSafetensors(filepath.Join(dir, "reference.weights.safetensors"), m.Params()); err != nil {
		t.Fatal(err)
	}
	rows := make([][]int, B)
	for b := range rows {
		rows[b] = ids[b*T : (b+1)*T]
	}
	got, err := m.(harness.Distributioner).NextLogProbs(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for b := range B {
		for p := range T {
			for v := range vocab {
				w := float64(want.Data[(b*T+p)*vocab+v])
				d := math.Abs(float64(got[b][p][v]) - w)
				worst = max(worst, d)
				if d > tol {
					t.Fatalf("row %d position %d token %d: log p = %.7f, PyTorch %.7f", b, p, v, got[b][p][v], w)
				}
			}
		}
	}
	t.Logf("max |Δ log p| vs PyTorch = %.2e", worst)

	// Teacher-forced scoring of the realised next tokens agrees too.
	targets := make([][]int, B)
	for b := range targets {
		targets[b] = make([]int, T)
		for p := range T {
			targets[b][p] = -1
			if p+1 < T {
				targets[b][p] = rows[b][p+1]
			}
		}
	}
	lp, err := m.(harness.Scorer).LogProbs(context.Background(), harness.Batch{Inputs: rows, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	for b := range B {
		for p := range T - 1 {
			if d := math.Abs(lp[b][p] - float64(got[b][p][targets[b][p]])); d > 1e-6 {
				t.Fatalf("LogProbs row %d position %d differs from NextLogProbs by %g", b, p, d)
			}
		}
		if lp[b][T-1] != 0 {
			t.Fatalf("ignored target scored %g, want 0", lp[b][T-1])
		}
	}
}

// CheckStepper verifies that carried-state generation gives the same
// next-token distributions as teacher forcing on the whole sequence.
func CheckStepper(t *testing.T, m harness.Model, rows [][]int, prompt int, tol float64) {
	t.Helper()
	st, ok := m.(harness.Stepper)
	if !ok {
		t.Fatalf("%s does not implement harness.Stepper", m.Info().Family)
	}
	ctx := context.Background()
	full, err := m.(harness.Distributioner).NextLogProbs(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	prompts := make([][]int, len(rows))
	for i, r := range rows {
		prompts[i] = r[:prompt]
	}
	s, logp, err := st.Start(ctx, prompts)
	if err != nil {
		t.Fatal(err)
	}
	T := len(rows[0])
	for p := prompt - 1; ; p++ {
		for b := range rows {
			for v := range logp[b] {
				if d := math.Abs(float64(logp[b][v] - full[b][p][v])); d > tol {
					t.Fatalf("position %d row %d token %d: stepped %g, teacher-forced %g", p, b, v, logp[b][v], full[b][p][v])
				}
			}
		}
		if p+1 >= T {
			break
		}
		if s.Len() != p+1 {
			t.Fatalf("state length %d, want %d", s.Len(), p+1)
		}
		next := make([]int, len(rows))
		for b := range rows {
			next[b] = rows[b][p+1]
		}
		if logp, err = st.Step(ctx, s, next); err != nil {
			t.Fatal(err)
		}
	}
}

// Pattern returns B rows of T tokens of a deterministic, learnable sequence.
func Pattern(B, T, vocab int) harness.Batch {
	var b harness.Batch
	for i := range B {
		in := make([]int, T)
		tg := make([]int, T)
		for p := range T {
			in[p] = (i + p*3) % vocab
			tg[p] = (i + (p+1)*3) % vocab
		}
		b.Inputs = append(b.Inputs, in)
		b.Targets = append(b.Targets, tg)
	}
	return b
}

// Train runs steps of Adam on batch and returns the losses.
func Train(t *testing.T, m harness.Model, b harness.Batch, steps int, lr float64) []float64 {
	t.Helper()
	cfg := nn.DefaultAdamConfig()
	cfg.LR = lr
	opt := nn.NewAdam(m.Params(), cfg)
	var losses []float64
	for s := range steps {
		loss, err := m.(harness.Trainer).Gradients(context.Background(), b, uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		nn.ClipGradNorm(m.Params(), 1)
		opt.Step()
		losses = append(losses, loss)
	}
	return losses
}

// CheckLearns trains a freshly set-up model on a fixed pattern and requires
// the loss to fall well below its starting value, and two runs with the same
// seed to give identical losses and parameters.
func CheckLearns(t *testing.T, newModel func() harness.Model, vocab, steps int, lr float64) {
	t.Helper()
	batch := Pattern(4, 12, vocab)
	run := func() ([]float64, *nn.ParamSet) {
		m := newModel()
		if err := m.Setup(context.Background(), harness.Env{Backend: Backend(t), Vocab: vocab, SeqLen: 12, Seed: 7}); err != nil {
			t.Fatal(err)
		}
		return Train(t, m, batch, steps, lr), m.Params()
	}
	l1, p1 := run()
	if !(l1[len(l1)-1] < 0.5*l1[0]) {
		t.Fatalf("loss went from %.4f to %.4f in %d steps; want it halved", l1[0], l1[len(l1)-1], steps)
	}
	l2, p2 := run()
	for i := range l1 {
		if l1[i] != l2[i] {
			t.Fatalf("same seed, step %d: loss %v vs %v", i, l1[i], l2[i])
		}
	}
	for i, p := range p1.List() {
		q := p2.List()[i]
		for j := range p.Data {
			if p.Data[j] != q.Data[j] {
				t.Fatalf("same seed, %s[%d] differs: %v vs %v", p.Name, j, p.Data[j], q.Data[j])
			}
		}
	}
}

// CheckRecurrentPlugin runs every plugin check on a recurrent family
// (rnn, lstm): agreement with PyTorch on testdata's reference weights,
// carried-state generation equal to teacher forcing, learning and
// determinism, the hardening checks of hardening.go and the memory
// estimate. cfg returns the model's recurrent configuration to fill in.
func CheckRecurrentPlugin(t *testing.T, newModel func() harness.Model, cfg func(harness.Model) *recurrent.Config) {
	t.Run("MatchesPyTorch", func(t *testing.T) {
		m := newModel()
		c := cfg(m)
		c.Embed, c.Hidden, c.Layers = Meta(t, "testdata", "embed"), Meta(t, "testdata", "hidden"), Meta(t, "testdata", "layers")
		CheckReference(t, m, "testdata", 1e-5)
		CheckStepper(t, m, Pattern(2, 9, 11).Inputs, 3, 1e-5)
	})
	t.Run("LearnsAndIsDeterministic", func(t *testing.T) {
		CheckLearns(t, func() harness.Model {
			m := newModel()
			c := cfg(m)
			c.Embed, c.Hidden = 8, 16
			return m
		}, 13, 60, 0.02)
	})
	t.Run("BeforeSetup", func(t *testing.T) { CheckBeforeSetup(t, newModel()) })
	t.Run("SetUp", func(t *testing.T) {
		m := newModel()
		c := cfg(m)
		c.Embed, c.Hidden = 8, 16
		if err := m.Setup(context.Background(), harness.Env{Backend: Backend(t), Vocab: 5, SeqLen: 4, Seed: 1}); err != nil {
			t.Fatal(err)
		}
		CheckRefusesSource(t, m)
		CheckDivergedLoss(t, m)
	})
	t.Run("MemoryEstimate", func(t *testing.T) { checkRecurrentMemory(t, newModel, cfg) })
	t.Run("RefusesHuge", func(t *testing.T) {
		m := newModel()
		cfg(m).Hidden = 100000000
		CheckRefusesHuge(t, m, harness.Env{Vocab: 256, SeqLen: 64, Batch: 32})
	})
}

// checkRecurrentMemory runs CheckMemoryEstimate on shapes where different
// values dominate a recurrent model's pooled buffers: the default (the
// gates' pre-activations; the LSTM's saved cell activations), with
// dropout, two layers under a vocabulary of 2048 (the logits) and a wide
// embedding over a long batch of 128 rows (the embedding and the inputs
// saved for the projection's gradient, and no transposed W_hh). An embed
// of 0 keeps the family's default sizes.
func checkRecurrentMemory(t *testing.T, newModel func() harness.Model, cfg func(harness.Model) *recurrent.Config) {
	for _, c := range []struct {
		name                        string
		embed, hidden, layers       int
		dropout                     float64
		vocab, seqLen, batch, evalB int
	}{
		{"default", 0, 0, 0, 0, 256, 64, 32, 0},
		{"dropout", 0, 0, 0, 0.2, 256, 64, 32, 0},
		{"logits", 64, 128, 2, 0, 2048, 32, 16, 16},
		{"wide embedding", 256, 64, 1, 0, 16, 64, 128, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := harness.Env{Backend: Backend(t), Vocab: c.vocab, SeqLen: c.seqLen, Batch: c.batch, EvalBatch: c.evalB, Seed: 1}
			CheckMemoryEstimate(t, func() harness.Model {
				m := newModel()
				rc := cfg(m)
				if c.embed > 0 {
					rc.Embed, rc.Hidden, rc.Layers = c.embed, c.hidden, c.layers
				}
				rc.Dropout = c.dropout
				return m
			}, env)
		})
	}
}
