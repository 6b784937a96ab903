package bernoulli_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/bernoulli"
	"arbench/plugins/internal/plugintest"
	"arbench/tasks/image"
)

// shapes returns a prepared image/shapes task of size×size images.
func shapes(t *testing.T, size int) *image.Task {
	t.Helper()
	task := image.New().(*image.Task)
	c := task.Config().(*image.Config)
	c.Size, c.ValidImages, c.TestImages, c.EvalBatch = size, 32, 128, 64
	c.SampleImages, c.LatencyImages, c.CompletionImages = 16, 2, 16
	if err := task.Prepare(context.Background(), harness.TaskEnv{Variant: "shapes", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return task
}

// setup returns the model set up for task.
func setup(t *testing.T, task *image.Task) *bernoulli.Model {
	t.Helper()
	info := task.Info()
	m := bernoulli.New().(*bernoulli.Model)
	if err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: info.Vocab, SeqLen: info.SeqLen, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return m
}

// train runs steps of Adam on the task's training stream, as the runner
// does (clipping at 1), and returns the losses.
func train(t *testing.T, m *bernoulli.Model, task *image.Task, steps int, lr float64) []float64 {
	t.Helper()
	cfg := nn.DefaultAdamConfig()
	cfg.LR = lr
	opt := nn.NewAdam(m.Params(), cfg)
	rng := rand.New(rand.NewPCG(1, 1))
	var losses []float64
	for s := range steps {
		loss, err := m.Gradients(context.Background(), task.TrainBatch(rng, 32), uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		nn.ClipGradNorm(m.Params(), 1)
		opt.Step()
		losses = append(losses, loss)
	}
	return losses
}

func metrics(t *testing.T, task *image.Task, m harness.Model) map[string]harness.Metric {
	t.Helper()
	ev, err := task.Evaluate(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]harness.Metric{}
	for _, mt := range ev.Metrics {
		out[mt.Name] = mt
	}
	return out
}

func TestRegistered(t *testing.T) {
	m, err := harness.NewModel("bernoulli")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(*bernoulli.Model); !ok {
		t.Fatalf("bernoulli is a %T", m)
	}
	if err := harness.DecodeConfig("x.yaml", []byte("{}"), m.Config()); err != nil {
		t.Errorf("empty config: %v", err)
	}
	if err := harness.DecodeConfig("x.yaml", []byte("hidden: 3\n"), m.Config()); err == nil {
		t.Error("unknown field accepted")
	}
}

// TestUntrainedIsOneBitPerDim: θ = 0 gives every pixel probability 1/2,
// exactly 1 bit/dim on the task (up to float32 rounding of ln 2).
func TestUntrainedIsOneBitPerDim(t *testing.T) {
	task := shapes(t, 8)
	m := setup(t, task)
	got := metrics(t, task, m)
	for _, name := range []string{"bits_per_dim", "completion_bits_per_dim_teacher_forced", "completion_bits_per_dim_free_running", "sample_bits_per_dim"} {
		if v := got[name].Value; math.Abs(v-1) > 1e-6 {
			t.Errorf("%s = %.9f, want 1", name, v)
		}
	}
	if m.Info().Params != 64 || m.Params().Get(bernoulli.ParamName) == nil {
		t.Errorf("parameters: %d, %v", m.Info().Params, m.Params().List())
	}
}

// TestNLLIsCrossEntropyOfMarginals trains the baseline and checks the
// task's test NLL against Σ_t −[x_t log p_t + (1−x_t) log(1−p_t)] over the
// test images, computed here from θ, and the logits against the formula.
func TestNLLIsCrossEntropyOfMarginals(t *testing.T) {
	task := shapes(t, 8)
	m := setup(t, task)
	train(t, m, task, 40, 0.1)
	theta := m.Params().Get(bernoulli.ParamName).Data
	test := task.Images("test")
	var want float64
	for _, img := range test {
		for k, x := range img {
			p := 1 / (1 + math.Exp(-float64(theta[k])))
			if x == 1 {
				want -= math.Log(p)
			} else {
				want -= math.Log(1 - p)
			}
		}
	}
	want /= float64(len(test))
	got := metrics(t, task, m)["nats_per_image"].Value
	if math.Abs(got-want) > 1e-5*want {
		t.Errorf("nats_per_image %.7f, cross-entropy of the marginals %.7f", got, want)
	}
	// The distributions are the formula's, identical in every row and
	// independent of the inputs.
	rows := [][]int{{2, 0, 1, 1, 0}, {2, 1, 1, 0, 0}}
	dist, err := m.NextLogProbs(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 5 {
		th := float64(theta[k])
		lp := []float64{-math.Log1p(math.Exp(th)), th - math.Log1p(math.Exp(th))}
		for b := range rows {
			for v := range 2 {
				if d := math.Abs(float64(dist[b][k][v]) - lp[v]); d > 1e-6 {
					t.Fatalf("row %d position %d token %d: %v, want %v", b, k, v, dist[b][k][v], lp[v])
				}
			}
			if dist[b][k][2] > -9000 {
				t.Fatalf("start token log p %v", dist[b][k][2])
			}
		}
	}
	at, err := m.NextLogProbsAt(context.Background(), rows, 3)
	if err != nil {
		t.Fatal(err)
	}
	for b := range rows {
		for v := range 3 {
			if d := math.Abs(float64(at[b][v] - dist[b][3][v])); d > 1e-5*max(1, math.Abs(float64(dist[b][3][v]))) {
				t.Fatalf("NextLogProbsAt row %d token %d: %v, NextLogProbs %v", b, v, at[b][v], dist[b][3][v])
			}
		}
	}
	plugintest.CheckStepper(t, m, rows, 1, 1e-5)
}

// TestTrainingBeatsOneBit trains the baseline on shapes: its loss falls
// and its test bits/dim ends well below the untrained 1 bit/dim, with an
// interval, and its samples are as likely as the test images.
func TestTrainingBeatsOneBit(t *testing.T) {
	task := shapes(t, 12)
	m := setup(t, task)
	losses := train(t, m, task, 150, 0.1)
	if !(losses[len(losses)-1] < 0.8*losses[0]) {
		t.Errorf("loss %.4f → %.4f", losses[0], losses[len(losses)-1])
	}
	got := metrics(t, task, m)
	bpd := got["bits_per_dim"]
	t.Logf("bits/dim %.4f %+v, samples %.4f, loss %.4f → %.4f nats/pixel", bpd.Value, bpd.CI,
		got["sample_bits_per_dim"].Value, losses[0], losses[len(losses)-1])
	if !(bpd.Value < 0.9) || bpd.CI == nil || !(bpd.CI.Hi < 1) {
		t.Errorf("bits_per_dim %v %+v, want below 1", bpd.Value, bpd.CI)
	}
	if p := got["pixels_per_s_large"].Params["decode_path"]; p != "cached" {
		t.Errorf("decode path %v, want cached", p)
	}
	// Two runs with the same seed are identical.
	m2 := setup(t, task)
	train(t, m2, task, 150, 0.1)
	if !slices.Equal(m.Params().Get(bernoulli.ParamName).Data, m2.Params().Get(bernoulli.ParamName).Data) {
		t.Error("same seed, different parameters")
	}
}

func TestCheckEnv(t *testing.T) {
	m := bernoulli.New().(*bernoulli.Model)
	if errs := m.CheckEnv(harness.Env{Vocab: 3, SeqLen: 64}); len(errs) != 0 {
		t.Errorf("image env refused: %v", errs)
	}
	if errs := m.CheckEnv(harness.Env{Vocab: 2, SeqLen: 1}); len(errs) != 0 {
		t.Errorf("binary env refused: %v", errs)
	}
	errs := m.CheckEnv(harness.Env{Vocab: 256, SeqLen: 0})
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "vocabulary 2 or 3") {
		t.Errorf("text env: %v", errs)
	}
	err := m.Setup(context.Background(), harness.Env{Backend: plugintest.Backend(t), Vocab: 256, SeqLen: 64})
	if err == nil || !strings.HasPrefix(err.Error(), "bernoulli:") {
		t.Errorf("Setup for text: %v", err)
	}
}

func TestHardening(t *testing.T) {
	plugintest.CheckBeforeSetup(t, bernoulli.New())
	task := shapes(t, 8)
	m := setup(t, task)
	plugintest.CheckRefusesSource(t, m)
	if m.MaxContext() != 64 {
		t.Errorf("MaxContext %d", m.MaxContext())
	}
	if _, err := m.LogProbs(context.Background(), image.Frame([][]uint8{make([]uint8, 65)})); err == nil {
		t.Error("rows longer than the learned positions accepted")
	}
	// Diverged parameters give a NaN loss and no error.
	for i := range m.Params().Get(bernoulli.ParamName).Data {
		m.Params().Get(bernoulli.ParamName).Data[i] = float32(math.NaN())
	}
	loss, err := m.Gradients(context.Background(), task.TrainBatch(rand.New(rand.NewPCG(1, 1)), 2), 1)
	if err != nil || !math.IsNaN(loss) {
		t.Errorf("Gradients with NaN θ = %v, %v", loss, err)
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	task := shapes(t, 8)
	m := setup(t, task)
	train(t, m, task, 5, 0.1)
	path := filepath.Join(t.TempDir(), "b.safetensors")
	if err := nn.SaveSafetensors(path, m.Params(), nil); err != nil {
		t.Fatal(err)
	}
	m2 := setup(t, task)
	if err := nn.LoadSafetensors(path, m2.Params()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Params().Get("logit").Data, m2.Params().Get("logit").Data) {
		t.Error("weights differ after a round trip")
	}
}

// TestMemoryEstimate compares the estimate with the live heap measured
// after a training step and an evaluation batch (plugintest.
// CheckMemoryEstimate) on binarised 28×28 images with a start token (V 3)
// and on long binary rows without one (V 2, a training batch of 128 rows
// larger than the evaluation batch).
func TestMemoryEstimate(t *testing.T) {
	for _, env := range []harness.Env{
		{Backend: plugintest.Backend(t), Vocab: 3, SeqLen: 784, Batch: 64, EvalBatch: 64, Seed: 1},
		{Backend: plugintest.Backend(t), Vocab: 2, SeqLen: 1024, Batch: 128, EvalBatch: 32, Seed: 1},
	} {
		plugintest.CheckMemoryEstimate(t, bernoulli.New, env)
	}
}
