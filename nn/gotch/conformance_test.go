//go:build gotch

package gotch_test

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"arbench/harness"
	"arbench/nn"
	"arbench/nn/gorgonia"
	_ "arbench/plugins/all"
)

// Cross-backend conformance: every registered model plugin, given the same
// safetensors weights, computes the same next-token log-probabilities on
// gorgonia and gotch, and one training step (gradients with dropout, then
// nn.Adam) leaves the same parameters.

// families lists each plugin with a small configuration (decoded into the
// plugin's own config, as an experiment file would be) that keeps the test
// fast while exercising several layers and dropout.
var families = []struct {
	name, config string
}{
	{"rnn", "embed: 16\nhidden: 24\nlayers: 2\ndropout: 0.2\n"},
	{"lstm", "embed: 16\nhidden: 24\nlayers: 2\ndropout: 0.2\n"},
	{"transformer", "dim: 16\nheads: 4\nlayers: 2\ncontext: 16\ndropout: 0.1\n"},
}

const (
	confVocab = 37
	confB     = 3
	confT     = 12
	// logProbTol bounds |Δ log p| between the backends (the 1e-4).
	logProbTol = 1e-4
	// adamTol bounds |Δθ| after one Adam step (the 1e-5).
	adamTol = 1e-5
	// gradTol bounds |Δ gradient| of the training step.
	gradTol = 1e-6
)

// newModel sets up family on b with the given seed.
func newModel(t *testing.T, family, config string, b nn.Backend, seed uint64) harness.Model {
	t.Helper()
	m, err := harness.NewModel(family)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(config), m.Config()); err != nil {
		t.Fatalf("%s config: %v", family, err)
	}
	env := harness.Env{Backend: b, Vocab: confVocab, SeqLen: confT, Seed: seed}
	if err := m.Setup(context.Background(), env); err != nil {
		t.Fatalf("%s on %s: setup: %v", family, b.Name(), err)
	}
	return m
}

// tokens returns B rows of T pseudo-random token ids.
func tokens(seed uint64, b, t int) [][]int {
	rng := nn.NewRNG(seed)
	rows := make([][]int, b)
	for i := range rows {
		rows[i] = make([]int, t)
		for j := range rows[i] {
			rows[i][j] = rng.IntN(confVocab)
		}
	}
	return rows
}

// pair returns the family set up on gorgonia and on gotch, the gotch model
// loaded from a safetensors file of the gorgonia model's weights. The gotch
// model is initialised from another seed first, so every value it uses
// must come from the file.
func pair(t *testing.T, family, config string) (ref, got harness.Model) {
	t.Helper()
	ref = newModel(t, family, config, gorgonia.New(), 11)
	got = newModel(t, family, config, openGotch(t), 12)
	path := filepath.Join(t.TempDir(), family+".safetensors")
	if err := nn.SaveSafetensors(path, ref.Params(), nil); err != nil {
		t.Fatal(err)
	}
	if err := nn.LoadSafetensors(path, got.Params()); err != nil {
		t.Fatal(err)
	}
	for i, p := range got.Params().List() {
		if !slices.Equal(p.Data, ref.Params().List()[i].Data) {
			t.Fatalf("%s: parameter %s differs after loading", family, p.Name)
		}
	}
	return ref, got
}

func TestPluginsLogProbsMatchGorgonia(t *testing.T) {
	ctx := context.Background()
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			ref, got := pair(t, f.name, f.config)
			inputs := tokens(3, confB, confT)
			want, err := ref.(harness.Distributioner).NextLogProbs(ctx, inputs)
			if err != nil {
				t.Fatal(err)
			}
			have, err := got.(harness.Distributioner).NextLogProbs(ctx, inputs)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for b := range want {
				for p := range want[b] {
					for v := range want[b][p] {
						d := math.Abs(float64(have[b][p][v]) - float64(want[b][p][v]))
						worst = max(worst, d)
						if !(d <= logProbTol) {
							t.Fatalf("row %d position %d token %d: gotch log p %.7f, gorgonia %.7f", b, p, v, have[b][p][v], want[b][p][v])
						}
					}
				}
			}
			t.Logf("max |Δ log p| = %.2e over %d×%d×%d", worst, confB, confT, confVocab)
		})
	}
}

func TestPluginsAdamStepMatchesGorgonia(t *testing.T) {
	ctx := context.Background()
	inputs := tokens(5, confB, confT+1)
	batch := harness.Batch{Inputs: make([][]int, confB), Targets: make([][]int, confB)}
	for i, row := range inputs {
		batch.Inputs[i] = row[:confT]
		batch.Targets[i] = slices.Clone(row[1:])
	}
	batch.Targets[1][4] = -1 // an ignored position
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			ref, got := pair(t, f.name, f.config)
			const seed = 99 // dropout masks
			wantLoss, err := ref.(harness.Trainer).Gradients(ctx, batch, seed)
			if err != nil {
				t.Fatal(err)
			}
			gotLoss, err := got.(harness.Trainer).Gradients(ctx, batch, seed)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(gotLoss - wantLoss); d > 1e-5 {
				t.Fatalf("loss: gotch %.7f, gorgonia %.7f", gotLoss, wantLoss)
			}
			worstGrad := 0.0
			for i, p := range got.Params().List() {
				q := ref.Params().List()[i]
				for j := range p.Grad {
					worstGrad = max(worstGrad, math.Abs(float64(p.Grad[j])-float64(q.Grad[j])))
				}
			}
			if worstGrad > gradTol {
				t.Fatalf("gradients differ by up to %.2e (tolerance %.0e)", worstGrad, gradTol)
			}
			// Adam's first step moves each θ by lr·g/(|g|+eps), about lr
			// whatever |g| is once |g| ≫ eps. The key bias of every attention
			// layer has a gradient that is mathematically zero (softmax is
			// invariant to adding q·b_k to a whole row of scores) and
			// numerically ~1e-9 rounding noise of either sign, so with
			// torch's default eps 1e-8 each backend steps it by a different
			// ±0.1·lr. eps 1e-6 keeps such noise below 1e-3·lr while real
			// gradients (≥1e-4 here) still take full steps.
			cfg := nn.DefaultAdamConfig()
			cfg.Eps = 1e-6
			nn.NewAdam(ref.Params(), cfg).Step()
			nn.NewAdam(got.Params(), cfg).Step()
			worst := 0.0
			for i, p := range got.Params().List() {
				q := ref.Params().List()[i]
				for j := range p.Data {
					d := math.Abs(float64(p.Data[j]) - float64(q.Data[j]))
					worst = max(worst, d)
					if !(d <= adamTol) {
						t.Fatalf("%s[%d] after one Adam step: gotch %.8f, gorgonia %.8f (gradients %.3g and %.3g)",
							p.Name, j, p.Data[j], q.Data[j], p.Grad[j], q.Grad[j])
					}
				}
			}
			t.Logf("loss %.6f; max |Δ grad| = %.2e; max |Δθ| after Adam = %.2e", gotLoss, worstGrad, worst)
		})
	}
}
