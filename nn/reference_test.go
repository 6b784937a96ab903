package nn_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// The tests in this file compare the layers, run on the gorgonia backend,
// with PyTorch 1.13 on the fixtures written by testdata/gen_reference.py:
// the weights are loaded with LoadSafetensors (which also proves that the
// parameter names and shapes are exactly PyTorch's), and both the outputs
// and the parameter gradients of L = Σ_k sum(out_k ⊙ r_k) must agree, as
// must the gradients of the inputs for which a fixture holds
// grad.input.<name>.

// refTol is the absolute tolerance for outputs and gradients; observed
// differences are below 1e-6 (float32 rounding order).
const refTol = 1e-5

// refForward builds a layer's computation from its declared inputs and
// returns its named outputs.
type refForward func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor

// runReference loads <name>.weights/io fixtures into ps, runs fwd in
// training mode and checks outputs and gradients against PyTorch. Inputs
// with a grad.input.<name> entry become parameters input.<name>
// (nntest.InputsAsParams), so their gradients are checked with the rest.
func runReference(t *testing.T, name string, ps *nn.ParamSet, fwd refForward) {
	t.Helper()
	if err := nn.LoadSafetensors(filepath.Join("testdata", name+".weights.safetensors"), ps); err != nil {
		t.Fatalf("reference weights (regenerate with nn/testdata/gen_reference.py): %v", err)
	}
	io := fixture(t, name+".io.safetensors")
	var inputs, outputs []string
	for k := range io {
		switch {
		case strings.HasPrefix(k, "r."):
			outputs = append(outputs, strings.TrimPrefix(k, "r."))
		case strings.HasPrefix(k, "grad."):
		default:
			if _, isOut := io["r."+k]; !isOut {
				inputs = append(inputs, k)
			}
		}
	}
	sort.Strings(inputs)
	sort.Strings(outputs)
	if len(outputs) == 0 {
		t.Fatalf("%s fixture has no outputs", name)
	}

	feeds := nn.Feeds{Floats: map[string][]float32{}}
	for _, k := range inputs {
		feeds.Floats[k] = io[k].Data
	}
	for _, k := range outputs {
		feeds.Floats["r."+k] = io["r."+k].Data
	}
	build := func(g nn.Graph) error {
		in := map[string]nn.Tensor{}
		for _, k := range inputs {
			in[k] = g.Floats(k, io[k].Shape...)
		}
		outs := fwd(g, in)
		var loss nn.Tensor
		for _, k := range outputs {
			o, ok := outs[k]
			if !ok {
				return fmt.Errorf("%s: layer produced no output %s", name, k)
			}
			g.Output(k, o)
			term := g.Sum(g.Mul(o, g.Floats("r."+k, io["r."+k].Shape...)))
			if loss == nil {
				loss = term
			} else {
				loss = g.Add(loss, term)
			}
		}
		g.Loss(loss)
		return nil
	}
	var gradInputs []string
	for _, k := range inputs {
		if _, ok := io["grad.input."+k]; ok {
			gradInputs = append(gradInputs, k)
		}
	}
	if len(gradInputs) > 0 {
		var err error
		if ps, build, err = nntest.InputsAsParams(ps, feeds, build, gradInputs...); err != nil {
			t.Fatal(err)
		}
	}
	res := compileRun(t, nn.Spec{Key: "reference/" + name, Params: ps, Train: true}, build, feeds)
	for _, k := range outputs {
		got := res.Outputs[k]
		if !intsEqual(got.Shape, io[k].Shape) {
			t.Errorf("%s: output %s has shape %v, PyTorch %v", name, k, got.Shape, io[k].Shape)
			continue
		}
		assertClose(t, name+" output "+k, got.Data, io[k].Data, refTol)
	}
	for _, p := range ps.List() {
		want := get(t, io, "grad."+p.Name)
		assertClose(t, name+" grad "+p.Name, p.Grad, want.Data, refTol)
	}
}

func compileRun(t *testing.T, spec nn.Spec, build nn.BuildFunc, feeds nn.Feeds) *nn.Result {
	t.Helper()
	exe, err := testBackend(t).Compile(spec, build)
	if err != nil {
		t.Fatalf("compile %s: %v", spec.Key, err)
	}
	defer exe.Close()
	res, err := exe.Run(context.Background(), feeds)
	if err != nil {
		t.Fatalf("run %s: %v", spec.Key, err)
	}
	return res
}

func intsEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLinearMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	lin := nn.NewLinear(ps, "linear", 4, 3)
	runReference(t, "linear", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		return map[string]nn.Tensor{"out": lin.Forward(g, in["x"])}
	})
}

func TestRNNMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	rnn := nn.NewRNN(ps, "rnn", 0, 3, 4)
	runReference(t, "rnn", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		out, hT := rnn.Forward(g, in["x"], in["h0"])
		return map[string]nn.Tensor{"out": out, "hT": hT}
	})
}

func TestTwoLayerRNNMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	l0 := nn.NewRNN(ps, "rnn2", 0, 3, 4)
	l1 := nn.NewRNN(ps, "rnn2", 1, 4, 4)
	runReference(t, "rnn2", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		h0 := in["h0"] // [layers,B,H] as in PyTorch
		s := h0.Shape()
		layerState := func(l int) nn.Tensor { return g.Reshape(g.Slice(h0, 0, l, l+1), s[1], s[2]) }
		out0, hT0 := l0.Forward(g, in["x"], layerState(0))
		out1, hT1 := l1.Forward(g, out0, layerState(1))
		hT := g.Concat(0, g.Reshape(hT0, 1, s[1], s[2]), g.Reshape(hT1, 1, s[1], s[2]))
		return map[string]nn.Tensor{"out": out1, "hT": hT}
	})
}

func TestLSTMMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	lstm := nn.NewLSTM(ps, "lstm", 0, 3, 4)
	runReference(t, "lstm", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		out, hT, cT := lstm.Forward(g, in["x"], in["h0"], in["c0"])
		return map[string]nn.Tensor{"out": out, "hT": hT, "cT": cT}
	})
}

func TestLayerNormMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	ln := nn.NewLayerNorm(ps, "layernorm", 6)
	runReference(t, "layernorm", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		return map[string]nn.Tensor{"out": ln.Forward(g, in["x"])}
	})
}

func TestMultiheadAttentionMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	mha := nn.NewMultiheadAttention(ps, "mha", 8, 2)
	runReference(t, "mha", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		T := in["x"].Shape()[1]
		mask := g.Const(nn.CausalMask(T), T, T)
		return map[string]nn.Tensor{
			"out_causal": mha.Forward(g, in["x"], mask),
			"out_nomask": mha.Forward(g, in["x"], nil),
		}
	})
}

func TestTransformerEncoderLayerMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	enc := nn.NewTransformerEncoderLayer(ps, "encoder", 8, 2, 32, 0)
	runReference(t, "encoder", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		T := in["x"].Shape()[1]
		return map[string]nn.Tensor{"out": enc.Forward(g, in["x"], g.Const(nn.CausalMask(T), T, T))}
	})
}

func TestCrossEntropyMatchesTorch(t *testing.T) {
	ref := fixture(t, "crossentropy.safetensors")
	logits := get(t, ref, "logits")
	tf := get(t, ref, "targets").Data
	targets := make([]int, len(tf))
	for i, v := range tf {
		targets[i] = int(v)
	}
	ps := nn.NewParamSet()
	p := ps.Add("logits", logits.Shape...)
	copy(p.Data, logits.Data)
	n := logits.Shape[0]
	build := func(g nn.Graph) error {
		loss := nn.CrossEntropy(g, g.Param(p), g.Ints("targets", n), g.Floats("weights", n))
		g.Output("loss", loss)
		g.Loss(loss)
		return nil
	}
	feeds := nn.Feeds{
		Ints:   map[string][]int{"targets": targets},
		Floats: map[string][]float32{"weights": nn.CrossEntropyWeights(targets)},
	}
	res := compileRun(t, nn.Spec{Key: "reference/crossentropy", Params: ps, Train: true}, build, feeds)
	want := get(t, ref, "loss").Data
	assertClose(t, "loss", []float32{float32(res.Loss)}, want, refTol)
	assertClose(t, "loss output", res.Outputs["loss"].Data, want, refTol)
	assertClose(t, "grad logits", p.Grad, get(t, ref, "grad.logits").Data, refTol)
}

// stepRun runs a one-step executable T times, carrying its state between
// Runs as generation does, and returns the hidden state after each step.
func stepRun(t *testing.T, name string, ps *nn.ParamSet, states []string, build nn.BuildFunc) [][]float32 {
	t.Helper()
	io := fixture(t, name+".io.safetensors")
	x := get(t, io, "x")
	b, T, e := x.Shape[0], x.Shape[1], x.Shape[2]
	exe, err := testBackend(t).Compile(nn.Spec{Key: name + "/step", Params: ps}, build)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	defer exe.Close()
	carried := map[string][]float32{}
	for _, s := range states {
		carried[s] = get(t, io, s+"0").Data
	}
	var hs [][]float32
	for step := range T {
		xt := make([]float32, 0, b*e)
		for i := range b {
			xt = append(xt, x.Data[(i*T+step)*e:(i*T+step+1)*e]...)
		}
		feeds := nn.Feeds{Floats: map[string][]float32{"x": xt}}
		for _, s := range states {
			feeds.Floats[s] = carried[s]
		}
		res, err := exe.Run(context.Background(), feeds)
		if err != nil {
			t.Fatalf("run step %d: %v", step, err)
		}
		for _, s := range states {
			carried[s] = res.Outputs[s].Data
		}
		hs = append(hs, carried["h"])
	}
	return hs
}

// checkSteps compares per-step hidden states with PyTorch's out [B,T,H].
func checkSteps(t *testing.T, name string, hs [][]float32) {
	t.Helper()
	out := get(t, fixture(t, name+".io.safetensors"), "out")
	b, T, h := out.Shape[0], out.Shape[1], out.Shape[2]
	for step := range T {
		want := make([]float32, 0, b*h)
		for i := range b {
			want = append(want, out.Data[(i*T+step)*h:(i*T+step+1)*h]...)
		}
		assertClose(t, name+" step", hs[step], want, refTol)
	}
}

func TestRNNStepMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	rnn := nn.NewRNN(ps, "rnn", 0, 3, 4)
	if err := nn.LoadSafetensors(filepath.Join("testdata", "rnn.weights.safetensors"), ps); err != nil {
		t.Fatal(err)
	}
	hs := stepRun(t, "rnn", ps, []string{"h"}, func(g nn.Graph) error {
		g.Output("h", rnn.Step(g, g.Floats("x", 2, 3), g.Floats("h", 2, 4)))
		return nil
	})
	checkSteps(t, "rnn", hs)
}

func TestLSTMStepMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	lstm := nn.NewLSTM(ps, "lstm", 0, 3, 4)
	if err := nn.LoadSafetensors(filepath.Join("testdata", "lstm.weights.safetensors"), ps); err != nil {
		t.Fatal(err)
	}
	hs := stepRun(t, "lstm", ps, []string{"h", "c"}, func(g nn.Graph) error {
		h, c := lstm.Step(g, g.Floats("x", 2, 3), g.Floats("h", 2, 4), g.Floats("c", 2, 4))
		g.Output("h", h)
		g.Output("c", c)
		return nil
	})
	checkSteps(t, "lstm", hs)
}

// TestTransformerEncoderLayerEvalIgnoresDropout checks that a layer built
// with dropout p > 0 computes PyTorch's p = 0 output in evaluation mode.
func TestTransformerEncoderLayerEvalIgnoresDropout(t *testing.T) {
	ps := nn.NewParamSet()
	enc := nn.NewTransformerEncoderLayer(ps, "encoder", 8, 2, 32, 0.3)
	if err := nn.LoadSafetensors(filepath.Join("testdata", "encoder.weights.safetensors"), ps); err != nil {
		t.Fatal(err)
	}
	io := fixture(t, "encoder.io.safetensors")
	x := get(t, io, "x")
	T := x.Shape[1]
	res := compileRun(t, nn.Spec{Key: "encoder/eval", Params: ps}, func(g nn.Graph) error {
		g.Output("out", enc.Forward(g, g.Floats("x", x.Shape...), g.Const(nn.CausalMask(T), T, T)))
		return nil
	}, nn.Feeds{Floats: map[string][]float32{"x": x.Data}, Seed: 1})
	assertClose(t, "eval output", res.Outputs["out"].Data, get(t, io, "out").Data, refTol)
}

// maskOf turns a fixture's 0/1 mask (1 where PyTorch's boolean mask drops
// the key) into the additive form the layers take.
func maskOf(g nn.Graph, flags nn.Tensor) nn.Tensor { return g.Scale(flags, nn.CausalMaskValue) }

// TestCrossAttentionMatchesTorch checks attn(x, memory, memory) with T = 5
// queries over S = 7 memory positions, without masks, with a key padding
// mask, an attention mask and both, including the gradients of x and
// memory.
func TestCrossAttentionMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	mha := nn.NewMultiheadAttention(ps, "xattn", 8, 2)
	runReference(t, "xattn", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		x, mem := in["x"], in["memory"]
		pad, mask := maskOf(g, in["memory_key_padding_mask"]), maskOf(g, in["memory_mask"])
		return map[string]nn.Tensor{
			"out_plain": mha.CrossAttention(g, x, mem, nil, nil),
			"out_pad":   mha.CrossAttention(g, x, mem, nil, pad),
			"out_mask":  mha.CrossAttention(g, x, mem, mask, nil),
			"out_both":  mha.CrossAttention(g, x, mem, mask, pad),
		}
	})
}

// decoderCases builds the four decoder outputs of the decoder fixture:
// causal self-attention (autoregressive), no mask at all, target and
// memory padding only (non-autoregressive), and every mask.
func decoderCases(g nn.Graph, dec *nn.TransformerDecoderLayer, in map[string]nn.Tensor) map[string]nn.Tensor {
	x, mem := in["x"], in["memory"]
	T := x.Shape()[1]
	causal := g.Const(nn.CausalMask(T), T, T)
	tgtPad, memPad := maskOf(g, in["tgt_key_padding_mask"]), maskOf(g, in["memory_key_padding_mask"])
	memMask := maskOf(g, in["memory_mask"])
	return map[string]nn.Tensor{
		"out_causal": dec.Forward(g, x, mem, nn.DecoderMasks{Tgt: causal, MemoryKeyPadding: memPad}),
		"out_nomask": dec.Forward(g, x, mem, nn.DecoderMasks{}),
		"out_nar":    dec.Forward(g, x, mem, nn.DecoderMasks{TgtKeyPadding: tgtPad, MemoryKeyPadding: memPad}),
		"out_all": dec.Forward(g, x, mem, nn.DecoderMasks{
			Tgt: causal, Memory: memMask, TgtKeyPadding: tgtPad, MemoryKeyPadding: memPad,
		}),
	}
}

func TestTransformerDecoderLayerMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	dec := nn.NewTransformerDecoderLayer(ps, "decoder", 8, 2, 32, 0)
	runReference(t, "decoder", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		return decoderCases(g, dec, in)
	})
}

// TestTransformerDecoderLayerEvalIgnoresDropout checks that a layer built
// with dropout p > 0 computes PyTorch's p = 0 outputs in evaluation mode.
func TestTransformerDecoderLayerEvalIgnoresDropout(t *testing.T) {
	ps := nn.NewParamSet()
	dec := nn.NewTransformerDecoderLayer(ps, "decoder", 8, 2, 32, 0.3)
	if err := nn.LoadSafetensors(filepath.Join("testdata", "decoder.weights.safetensors"), ps); err != nil {
		t.Fatal(err)
	}
	io := fixture(t, "decoder.io.safetensors")
	names := []string{"x", "memory", "tgt_key_padding_mask", "memory_key_padding_mask", "memory_mask"}
	feeds := nn.Feeds{Floats: map[string][]float32{}, Seed: 1}
	res := compileRun(t, nn.Spec{Key: "decoder/eval", Params: ps}, func(g nn.Graph) error {
		in := map[string]nn.Tensor{}
		for _, k := range names {
			v := get(t, io, k)
			in[k] = g.Floats(k, v.Shape...)
			feeds.Floats[k] = v.Data
		}
		for k, out := range decoderCases(g, dec, in) {
			g.Output(k, out)
		}
		return nil
	}, feeds)
	for _, k := range []string{"out_causal", "out_nomask", "out_nar", "out_all"} {
		assertClose(t, "eval "+k, res.Outputs[k].Data, get(t, io, k).Data, refTol)
	}
}

// TestTransformerDecoderLayerCachedMatchesTorch decodes the fixture's
// target one position at a time with ForwardCached (the memory projected
// once, each step's self-attention keys and values appended to a cache)
// and compares every step with PyTorch's causal output.
func TestTransformerDecoderLayerCachedMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	dec := nn.NewTransformerDecoderLayer(ps, "decoder", 8, 2, 32, 0)
	if err := nn.LoadSafetensors(filepath.Join("testdata", "decoder.weights.safetensors"), ps); err != nil {
		t.Fatal(err)
	}
	io := fixture(t, "decoder.io.safetensors")
	x, mem, pad := get(t, io, "x"), get(t, io, "memory"), get(t, io, "memory_key_padding_mask")
	B, T, d := x.Shape[0], x.Shape[1], x.Shape[2]
	res := compileRun(t, nn.Spec{Key: "decoder/cached", Params: ps}, func(g nn.Graph) error {
		xs := g.Floats("x", x.Shape...)
		memK, memV := dec.MemoryKV(g, g.Floats("memory", mem.Shape...))
		masks := nn.DecoderMasks{MemoryKeyPadding: maskOf(g, g.Floats("pad", pad.Shape...))}
		var pastK, pastV nn.Tensor
		steps := make([]nn.Tensor, T)
		for i := range T {
			out, k, v := dec.ForwardCached(g, g.Slice(xs, 1, i, i+1), pastK, pastV, memK, memV, masks)
			if pastK == nil {
				pastK, pastV = k, v
			} else {
				pastK, pastV = g.Concat(1, pastK, k), g.Concat(1, pastV, v)
			}
			steps[i] = out
		}
		g.Output("out", g.Concat(1, steps...))
		g.Output("k", pastK)
		return nil
	}, nn.Feeds{Floats: map[string][]float32{"x": x.Data, "memory": mem.Data, "pad": pad.Data}})
	assertClose(t, "cached decoding", res.Outputs["out"].Data, get(t, io, "out_causal").Data, refTol)
	if got, want := res.Outputs["k"].Shape, []int{B * 2, T, d / 2}; !intsEqual(got, want) {
		t.Errorf("cached keys have shape %v, want %v", got, want)
	}
}
