package image_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gopkg.in/yaml.v3"

	"arbench/harness"
	"arbench/nn"
	nngorgonia "arbench/nn/gorgonia"
	"arbench/plugins/rnn"
	"arbench/tasks/image"
)

// TestEvaluateRealRNN trains a small rnn a few steps on 8×8 shapes and
// evaluates it: finite bits/dim with an interval, below the untrained
// model's, the speed metrics on the Stepper path, the training-step
// timing of a Trainer, and both completion metrics.
func TestEvaluateRealRNN(t *testing.T) {
	ctx := context.Background()
	task := image.New().(*image.Task)
	c := task.Config().(*image.Config)
	c.Size, c.ValidImages, c.TestImages, c.EvalBatch = 8, 16, 32, 32
	c.SampleImages, c.LatencyImages, c.CompletionImages = 8, 1, 8
	if err := task.Prepare(ctx, harness.TaskEnv{Variant: "shapes", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	info := task.Info()
	m := rnn.New()
	if err := yaml.Unmarshal([]byte("embed: 8\nhidden: 16\n"), m.Config()); err != nil {
		t.Fatal(err)
	}
	if err := m.Setup(ctx, harness.Env{Backend: nngorgonia.New(), Vocab: info.Vocab, SeqLen: info.SeqLen, Seed: 2, EvalBatch: info.EvalBatch}); err != nil {
		t.Fatal(err)
	}
	before, err := task.ValidLoss(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nn.DefaultAdamConfig()
	cfg.LR = 0.01
	opt := nn.NewAdam(m.Params(), cfg)
	rng := rand.New(rand.NewPCG(1, 2))
	for s := range 30 {
		if _, err := m.(harness.Trainer).Gradients(ctx, task.TrainBatch(rng, 16), uint64(s)); err != nil {
			t.Fatal(err)
		}
		nn.ClipGradNorm(m.Params(), 1)
		opt.Step()
	}
	after, err := task.ValidLoss(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if !(after < before) {
		t.Errorf("validation loss %v nats/pixel after training, %v before", after, before)
	}
	ev, err := task.Evaluate(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]harness.Metric{}
	for _, mt := range ev.Metrics {
		got[mt.Name] = mt
	}
	for _, mt := range ev.Metrics {
		t.Logf("%s = %.4g %s", mt.Name, mt.Value, mt.Unit)
	}
	t.Logf("valid loss %.4f -> %.4f nats/pixel", before, after)
	bpd := got["bits_per_dim"]
	if bpd.CI == nil || !(float64(bpd.CI.Lo) <= bpd.Value && bpd.Value <= float64(bpd.CI.Hi)) || math.IsInf(bpd.Value, 0) || !(bpd.Value > 0 && bpd.Value < 1) {
		t.Errorf("bits_per_dim %v %+v", bpd.Value, bpd.CI)
	}
	for _, name := range []string{"completion_bits_per_dim_teacher_forced", "completion_bits_per_dim_free_running", "sample_bits_per_dim",
		"pixels_per_s_b1", "pixels_per_s_large", "train_step_ms_per_image", "generation_over_train_step"} {
		mt, ok := got[name]
		if !ok || !(mt.Value > 0) || math.IsInf(mt.Value, 0) {
			t.Errorf("%s = %v (present %v)", name, mt.Value, ok)
		}
	}
	if p := got["pixels_per_s_large"].Params["decode_path"]; p != "cached" {
		t.Errorf("decode path %v, want cached (the rnn's Stepper)", p)
	}
	if n := len(ev.Samples); n != 16 {
		t.Errorf("%d samples, want 8 samples and 8 completions", n)
	}
}
