package nn_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"arbench/nn"
	"arbench/nn/nntest"
)

// Tests of Conv2d and MaskedConv2d: finite differences, the PyTorch
// fixtures of testdata/gen_conv.py, a direct loop over the definition, and
// the raster-order causality of stacked masked layers.

func TestConv2dGradients(t *testing.T) {
	for _, pad := range []int{1, 0, 2} {
		t.Run(fmt.Sprintf("padding=%d", pad), func(t *testing.T) {
			ps := nn.NewParamSet()
			conv := nn.NewConv2d(ps, "conv", 2, 3, 3)
			conv.Padding = pad
			initAll(ps, 1)
			b, h, w := 2, 5, 4
			ho, wo := conv.OutputSize(h, w)
			feeds := nn.Feeds{Floats: map[string][]float32{
				"x": randFeed(2, size(b, 2, h, w)), "r": randFeed(3, size(b, 3, ho, wo)),
			}}
			opts := nntest.Options{RelTol: gradTol, AbsTol: gradTol, MaxPerParam: -1, Inputs: []string{"x"}}
			nntest.CheckGradientsWith(t, testBackend(t), ps, feeds, func(g nn.Graph) error {
				g.Loss(weightedSum(g, conv.Forward(g, g.Floats("x", b, 2, h, w)), "r"))
				return nil
			}, opts)
		})
	}
}

// TestMaskedConv2dGradients checks a mask-A layer followed by a mask-B
// layer, and that the masked taps of both weights get exactly zero
// gradient.
func TestMaskedConv2dGradients(t *testing.T) {
	ps := nn.NewParamSet()
	a := nn.NewMaskedConv2d(ps, "a", nn.MaskA, 1, 3, 5)
	bl := nn.NewMaskedConv2d(ps, "b", nn.MaskB, 3, 2, 3)
	initAll(ps, 1)
	b, h, w := 2, 5, 4
	feeds := nn.Feeds{Floats: map[string][]float32{
		"x": randFeed(2, size(b, 1, h, w)), "r": randFeed(3, size(b, 3, h, w)), "r2": randFeed(4, size(b, 2, h, w)),
	}}
	build := func(g nn.Graph) error {
		ya := a.Forward(g, g.Floats("x", b, 1, h, w))
		yb := bl.Forward(g, g.Tanh(ya))
		g.Loss(g.Add(weightedSum(g, ya, "r"), weightedSum(g, yb, "r2")))
		return nil
	}
	opts := nntest.Options{RelTol: gradTol, AbsTol: gradTol, MaxPerParam: -1, Inputs: []string{"x"}}
	nntest.CheckGradientsWith(t, testBackend(t), ps, feeds, build, opts)
	for _, m := range []*nn.MaskedConv2d{a, bl} {
		mask, kk := m.Mask(), m.Kernel*m.Kernel
		for i, g := range m.Weight.Grad {
			if mask[i%kk] == 0 && g != 0 {
				t.Fatalf("%s[%d] is masked but has gradient %v", m.Weight.Name, i, g)
			}
		}
	}
}

// TestConv2dMatchesTorch compares nn.Conv2d with padding 1, 0 and 2 and
// the two masked layers, alone and stacked, with PyTorch (outputs, weight,
// bias and input gradients). The fixture's weights are non-zero at the
// masked taps too, so they must be ignored, not assumed zero.
func TestConv2dMatchesTorch(t *testing.T) {
	ps := nn.NewParamSet()
	plain := nn.NewConv2d(ps, "conv.plain", 2, 3, 3)
	pad0 := nn.NewConv2d(ps, "conv.pad0", 2, 3, 3)
	pad0.Padding = 0
	pad2 := nn.NewConv2d(ps, "conv.pad2", 2, 3, 3)
	pad2.Padding = 2
	maskA := nn.NewMaskedConv2d(ps, "conv.maskA", nn.MaskA, 1, 4, 7)
	maskB := nn.NewMaskedConv2d(ps, "conv.maskB", nn.MaskB, 4, 3, 5)
	runReference(t, "conv", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		a := maskA.Forward(g, in["xa"])
		return map[string]nn.Tensor{
			"out":      plain.Forward(g, in["x"]),
			"out_pad0": pad0.Forward(g, in["x"]),
			"out_pad2": pad2.Forward(g, in["x"]),
			"out_a":    a,
			"out_b":    maskB.Forward(g, in["xb"]),
			"out_ab":   maskB.Forward(g, a),
		}
	})
}

// TestMaskedConv2dStacksMatchTorch compares the Gated PixelCNN's vertical
// (VA, VB) and horizontal (HA, HB) masked layers, alone and stacked, with
// PyTorch (testdata/gen_conv.py's convstack case).
func TestMaskedConv2dStacksMatchTorch(t *testing.T) {
	ps := nn.NewParamSet()
	va := nn.NewMaskedConv2d(ps, "convstack.va", nn.MaskVA, 1, 4, 5)
	ha := nn.NewMaskedConv2d(ps, "convstack.ha", nn.MaskHA, 1, 4, 5)
	vb := nn.NewMaskedConv2d(ps, "convstack.vb", nn.MaskVB, 4, 3, 3)
	hb := nn.NewMaskedConv2d(ps, "convstack.hb", nn.MaskHB, 4, 3, 3)
	runReference(t, "convstack", ps, func(g nn.Graph, in map[string]nn.Tensor) map[string]nn.Tensor {
		v, h := va.Forward(g, in["xa"]), ha.Forward(g, in["xa"])
		return map[string]nn.Tensor{
			"out_va": v,
			"out_ha": h,
			"out_vb": vb.Forward(g, in["xb"]),
			"out_hb": hb.Forward(g, in["xb"]),
			"out_vv": vb.Forward(g, v),
			"out_hh": hb.Forward(g, h),
		}
	})
}

var allMasks = []nn.MaskType{nn.MaskA, nn.MaskB, nn.MaskVA, nn.MaskVB, nn.MaskHA, nn.MaskHB}

func TestPixelCNNMask(t *testing.T) {
	for _, c := range []struct {
		typ  nn.MaskType
		want []float32
	}{
		{nn.MaskA, []float32{1, 1, 1, 1, 0, 0, 0, 0, 0}},
		{nn.MaskB, []float32{1, 1, 1, 1, 1, 0, 0, 0, 0}},
		{nn.MaskVA, []float32{1, 1, 1, 0, 0, 0, 0, 0, 0}},
		{nn.MaskVB, []float32{1, 1, 1, 1, 1, 1, 0, 0, 0}},
		{nn.MaskHA, []float32{0, 0, 0, 1, 0, 0, 0, 0, 0}},
		{nn.MaskHB, []float32{0, 0, 0, 1, 1, 0, 0, 0, 0}},
	} {
		assertClose(t, c.typ.String()+"3", nn.PixelCNNMask(c.typ, 3), c.want, 0)
	}
	names := map[nn.MaskType]string{nn.MaskA: "A", nn.MaskB: "B", nn.MaskVA: "VA", nn.MaskVB: "VB", nn.MaskHA: "HA", nn.MaskHB: "HB"}
	for typ, name := range names {
		if typ.String() != name {
			t.Errorf("mask %q is named %q, want %q", rune(typ), typ.String(), name)
		}
	}
	// A 1×1 kernel: A, VA and HA keep nothing, B, VB and HB the centre.
	for _, typ := range allMasks {
		want := float32(0)
		if typ == nn.MaskB || typ == nn.MaskVB || typ == nn.MaskHB {
			want = 1
		}
		assertClose(t, typ.String()+"1", nn.PixelCNNMask(typ, 1), []float32{want}, 0)
	}
	ref := fixture(t, "conv.masks.safetensors")
	for _, typ := range allMasks {
		for _, k := range []int{3, 5, 7} {
			name := fmt.Sprintf("%v%d", typ, k)
			want := get(t, ref, name)
			if !intsEqual(want.Shape, []int{k, k}) {
				t.Fatalf("fixture %s has shape %v", name, want.Shape)
			}
			assertClose(t, name, nn.PixelCNNMask(typ, k), want.Data, 0)
		}
	}
}

// directConv evaluates the definition of Conv2d with loops in float64.
func directConv(c *nn.Conv2d, weight []float32, x []float32, b, h, w int) []float32 {
	k, p := c.Kernel, c.Padding
	ho, wo := c.OutputSize(h, w)
	out := make([]float32, b*c.Out*ho*wo)
	for n := range b {
		for o := range c.Out {
			for i := range ho {
				for j := range wo {
					sum := float64(c.Bias.Data[o])
					for ci := range c.In {
						for u := range k {
							for v := range k {
								y, z := i+u-p, j+v-p
								if y < 0 || y >= h || z < 0 || z >= w {
									continue
								}
								sum += float64(weight[((o*c.In+ci)*k+u)*k+v]) * float64(x[((n*c.In+ci)*h+y)*w+z])
							}
						}
					}
					out[((n*c.Out+o)*ho+i)*wo+j] = float32(sum)
				}
			}
		}
	}
	return out
}

// TestConv2dMatchesDefinition covers the shapes the fixtures do not: one
// image, one output channel, 1×1 and 5×5 kernels, padding beyond k-1, and
// a masked layer against the direct loop with the masked weight.
func TestConv2dMatchesDefinition(t *testing.T) {
	cases := []struct {
		in, out, k, pad, b, h, w int
		mask                     nn.MaskType
	}{
		{1, 1, 3, 1, 1, 4, 6, 0},
		{3, 1, 1, 0, 2, 3, 3, 0},
		{2, 4, 5, 2, 1, 6, 7, 0},
		{2, 2, 3, 3, 2, 2, 3, 0},
		{3, 2, 2, 0, 2, 4, 3, 0},
		{1, 3, 5, 2, 2, 5, 6, nn.MaskA},
		{3, 1, 3, 1, 1, 4, 4, nn.MaskB},
		{1, 2, 3, 1, 2, 4, 5, nn.MaskVA},
		{2, 3, 5, 2, 1, 5, 4, nn.MaskVB},
		{1, 2, 5, 2, 2, 3, 6, nn.MaskHA},
		{3, 2, 3, 1, 1, 4, 4, nn.MaskHB},
		{2, 1, 1, 0, 2, 3, 3, nn.MaskVB},
		{2, 2, 1, 0, 1, 3, 2, nn.MaskHB},
	}
	for _, c := range cases {
		mask := "-"
		if c.mask != 0 {
			mask = c.mask.String()
		}
		name := fmt.Sprintf("in=%d/out=%d/k=%d/p=%d/b=%d/%dx%d/mask=%s", c.in, c.out, c.k, c.pad, c.b, c.h, c.w, mask)
		t.Run(name, func(t *testing.T) {
			ps := nn.NewParamSet()
			var conv *nn.Conv2d
			var fwd func(g nn.Graph, x nn.Tensor) nn.Tensor
			if c.mask != 0 {
				m := nn.NewMaskedConv2d(ps, "conv", c.mask, c.in, c.out, c.k)
				conv, fwd = &m.Conv2d, m.Forward
			} else {
				conv = nn.NewConv2d(ps, "conv", c.in, c.out, c.k)
				conv.Padding = c.pad
				fwd = conv.Forward
			}
			initAll(ps, 5)
			x := randFeed(6, size(c.b, c.in, c.h, c.w))
			res := compileRun(t, nn.Spec{Key: "conv/direct", Params: ps}, func(g nn.Graph) error {
				g.Output("y", fwd(g, g.Floats("x", c.b, c.in, c.h, c.w)))
				return nil
			}, nn.Feeds{Floats: map[string][]float32{"x": x}})
			weight := append([]float32(nil), conv.Weight.Data...)
			if c.mask != 0 {
				mask, kk := nn.PixelCNNMask(c.mask, c.k), c.k*c.k
				for i := range weight {
					weight[i] *= mask[i%kk]
				}
			}
			ho, wo := conv.OutputSize(c.h, c.w)
			if got, want := res.Outputs["y"].Shape, []int{c.b, c.out, ho, wo}; !intsEqual(got, want) {
				t.Fatalf("output shape %v, want %v", got, want)
			}
			assertClose(t, "output", res.Outputs["y"].Data, directConv(conv, weight, x, c.b, c.h, c.w), 1e-5)
		})
	}
}

// causalStack builds PixelCNN's stack: a 7×7 mask-A layer then two 3×3
// mask-B layers, with ReLUs between them. firstType lets a test break it.
func causalStack(ps *nn.ParamSet, firstType nn.MaskType) func(g nn.Graph, x nn.Tensor) nn.Tensor {
	l0 := nn.NewMaskedConv2d(ps, "l0", firstType, 1, 4, 7)
	l1 := nn.NewMaskedConv2d(ps, "l1", nn.MaskB, 4, 4, 3)
	l2 := nn.NewMaskedConv2d(ps, "l2", nn.MaskB, 4, 2, 3)
	return func(g nn.Graph, x nn.Tensor) nn.Tensor {
		return l2.Forward(g, g.ReLU(l1.Forward(g, g.ReLU(l0.Forward(g, x)))))
	}
}

// perturbations runs the stack on a random image and on one copy per
// pixel with that pixel changed, and calls check(i, j, base, perturbed)
// with outputs [B,C,H,W].
func perturbations(t *testing.T, firstType nn.MaskType, b, h, w int, check func(i, j int, base, pert []float32)) {
	t.Helper()
	ps := nn.NewParamSet()
	stack := causalStack(ps, firstType)
	initAll(ps, 9) // every weight non-zero, masked taps included
	exe, err := testBackend(t).Compile(nn.Spec{Key: "conv/causal", Params: ps}, func(g nn.Graph) error {
		g.Output("y", stack(g, g.Floats("x", b, 1, h, w)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	run := func(x []float32) []float32 {
		res, err := exe.Run(context.Background(), nn.Feeds{Floats: map[string][]float32{"x": x}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Outputs["y"].Data
	}
	x := randFeed(10, b*h*w)
	base := run(x)
	noise := randFeed(11, b*h*w)
	for i := range h {
		for j := range w {
			px := append([]float32(nil), x...)
			for n := range b {
				px[(n*h+i)*w+j] += 1 + float32(math.Abs(float64(noise[n*h*w+i*w+j])))
			}
			check(i, j, base, run(px))
		}
	}
}

// TestMaskedConv2dCausal perturbs each input pixel (i,j) of a mask-A,
// mask-B, mask-B stack and requires every output at raster positions up
// to and including (i,j) to stay bit-identical, in every channel and
// batch row, while some later output changes.
func TestMaskedConv2dCausal(t *testing.T) {
	const b, h, w, c = 2, 6, 5, 2
	perturbations(t, nn.MaskA, b, h, w, func(i, j int, base, pert []float32) {
		changedLater := false
		for n := range b {
			for ch := range c {
				for y := range h {
					for z := range w {
						at := ((n*c+ch)*h+y)*w + z
						same := math.Float32bits(base[at]) == math.Float32bits(pert[at])
						if y*w+z <= i*w+j && !same {
							t.Fatalf("pixel (%d,%d) changed output (%d,%d) channel %d row %d: %v -> %v",
								i, j, y, z, ch, n, base[at], pert[at])
						}
						changedLater = changedLater || !same
					}
				}
			}
		}
		if !changedLater && i*w+j < h*w-1 {
			t.Errorf("pixel (%d,%d) changed no later output", i, j)
		}
	})
}

// TestMaskedConv2dCausalDetectsLeak is the control: with mask B in the
// first layer each output sees its own pixel, which the causality check
// must catch.
func TestMaskedConv2dCausalDetectsLeak(t *testing.T) {
	const b, h, w, c = 1, 4, 4, 2
	leaks := 0
	perturbations(t, nn.MaskB, b, h, w, func(i, j int, base, pert []float32) {
		for ch := range c {
			at := (ch*h+i)*w + j
			if base[at] != pert[at] {
				leaks++
				return
			}
		}
	})
	if leaks == 0 {
		t.Fatal("no output changed with its own pixel under a first mask-B layer")
	}
}

// offset is an input position relative to the output that reads it.
type offset struct{ di, dj int }

// fieldOf returns the receptive field of a stack of masked layers by
// definition: the Minkowski sum over layers of each mask's kept taps
// (u,v) as offsets (u-k/2, v-k/2).
func fieldOf(layers []nn.MaskType, kernels []int) map[offset]bool {
	field := map[offset]bool{{0, 0}: true}
	for l, typ := range layers {
		k := kernels[l]
		next := map[offset]bool{}
		for tap, on := range nn.PixelCNNMask(typ, k) {
			if on == 0 {
				continue
			}
			for o := range field {
				next[offset{o.di + tap/k - k/2, o.dj + tap%k - k/2}] = true
			}
		}
		field = next
	}
	return field
}

// TestMaskedConv2dReceptiveFields measures, by perturbing every input
// pixel, which inputs reach each output of a stack of masked layers (tanh
// between them, all weights non-zero), and requires exactly the field the
// masks define (fieldOf). It also checks what each stack is for: PixelCNN's
// A-then-B stack reads only earlier raster positions but has a blind spot
// (the offset (-1,+2) of a 3x3 stack is never read); the vertical stack
// (VA then VB) reads only rows above the output, across the field's full
// width; the horizontal stack (HA then HB) only its own row, left of it.
func TestMaskedConv2dReceptiveFields(t *testing.T) {
	const h, w = 7, 7
	cases := []struct {
		name    string
		layers  []nn.MaskType
		kernels []int
		check   func(o offset) bool // every offset of the field satisfies it
	}{
		{"pixelcnn", []nn.MaskType{nn.MaskA, nn.MaskB, nn.MaskB}, []int{3, 3, 3},
			func(o offset) bool { return o.di < 0 || o.di == 0 && o.dj < 0 }},
		{"vertical", []nn.MaskType{nn.MaskVA, nn.MaskVB, nn.MaskVB}, []int{3, 3, 3},
			func(o offset) bool { return o.di < 0 }},
		{"vertical5", []nn.MaskType{nn.MaskVA, nn.MaskVB}, []int{5, 3},
			func(o offset) bool { return o.di < 0 }},
		{"horizontal", []nn.MaskType{nn.MaskHA, nn.MaskHB, nn.MaskHB}, []int{3, 3, 3},
			func(o offset) bool { return o.di == 0 && o.dj < 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := nn.NewParamSet()
			var layers []*nn.MaskedConv2d
			in := 1
			for l, typ := range c.layers {
				layers = append(layers, nn.NewMaskedConv2d(ps, fmt.Sprintf("l%d", l), typ, in, 2, c.kernels[l]))
				in = 2
			}
			initAll(ps, 21)
			exe, err := testBackend(t).Compile(nn.Spec{Key: "conv/field", Params: ps}, func(g nn.Graph) error {
				y := g.Floats("x", 1, 1, h, w)
				for l, m := range layers {
					if l > 0 {
						y = g.Tanh(y)
					}
					y = m.Forward(g, y)
				}
				g.Output("y", y)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer exe.Close()
			run := func(x []float32) []float32 {
				res, err := exe.Run(context.Background(), nn.Feeds{Floats: map[string][]float32{"x": x}})
				if err != nil {
					t.Fatal(err)
				}
				return res.Outputs["y"].Data
			}
			x := randFeed(22, h*w)
			base := run(x)
			want := fieldOf(c.layers, c.kernels)
			for o := range want {
				if !c.check(o) {
					t.Fatalf("the masks' field holds offset %v, which the stack must not read", o)
				}
			}
			for i := range h {
				for j := range w {
					px := append([]float32(nil), x...)
					px[i*w+j] += 1.5
					pert := run(px)
					for y := range h {
						for z := range w {
							changed := false
							for ch := range 2 {
								at := (ch*h+y)*w + z
								changed = changed || base[at] != pert[at]
							}
							if o := (offset{i - y, j - z}); changed != want[o] {
								t.Fatalf("input (%d,%d) changed output (%d,%d): %v; the masks' field holds offset %v: %v", i, j, y, z, changed, o, want[o])
							}
						}
					}
				}
			}
			switch c.name {
			case "pixelcnn":
				if want[offset{-1, 2}] || !want[offset{-1, 1}] || !want[offset{-2, 2}] {
					t.Errorf("3x3 A-B-B field: (-1,+2) %v, (-1,+1) %v, (-2,+2) %v; want the blind spot at (-1,+2) only",
						want[offset{-1, 2}], want[offset{-1, 1}], want[offset{-2, 2}])
				}
			case "vertical":
				// Rows -1..-3, columns -3..+3 in every row: no blind spot.
				for di := -3; di <= -1; di++ {
					for dj := -3; dj <= 3; dj++ {
						if !want[offset{di, dj}] {
							t.Errorf("vertical field lacks offset (%d,%d)", di, dj)
						}
					}
				}
			}
		})
	}
}

func TestConv2dParams(t *testing.T) {
	ps := nn.NewParamSet()
	conv := nn.NewConv2d(ps, "net.0", 16, 32, 3)
	masked := nn.NewMaskedConv2d(ps, "net.1", nn.MaskA, 32, 8, 7)
	want := []struct {
		name  string
		shape []int
	}{{"net.0.weight", []int{32, 16, 3, 3}}, {"net.0.bias", []int{32}}, {"net.1.weight", []int{8, 32, 7, 7}}, {"net.1.bias", []int{8}}}
	got := ps.List()
	if len(got) != len(want) {
		t.Fatalf("%d parameters, want %d", len(got), len(want))
	}
	for i, p := range got {
		if p.Name != want[i].name || !intsEqual(p.Shape, want[i].shape) {
			t.Errorf("parameter %d is %s %v, want %s %v", i, p.Name, p.Shape, want[i].name, want[i].shape)
		}
	}
	if conv.Padding != 1 || masked.Padding != 3 {
		t.Errorf("padding %d and %d, want k/2 = 1 and 3", conv.Padding, masked.Padding)
	}
	rng := nn.NewRNG(3)
	conv.Init(rng)
	masked.Init(rng)
	for _, c := range []struct {
		p     *nn.Param
		bound float64
	}{{conv.Weight, 1 / 12.0}, {conv.Bias, 1 / 12.0}, {masked.Weight, 1 / math.Sqrt(32*49)}} {
		maxAbs := 0.0
		for _, v := range c.p.Data {
			maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
		}
		if maxAbs > c.bound || maxAbs < 0.8*c.bound {
			t.Errorf("%s: max |value| %v, want U(±%v)", c.p.Name, maxAbs, c.bound)
		}
	}
}

func TestConv2dPanics(t *testing.T) {
	mustPanic := func(what string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", what)
			}
		}()
		f()
	}
	ps := nn.NewParamSet()
	mustPanic("even masked kernel", func() { nn.NewMaskedConv2d(ps, "m", nn.MaskA, 1, 1, 4) })
	mustPanic("unknown mask type", func() { nn.PixelCNNMask('C', 3) })
	for _, typ := range []nn.MaskType{nn.MaskA, nn.MaskVA, nn.MaskHA} {
		mustPanic("1x1 mask "+typ.String()+" keeps no tap", func() { nn.NewMaskedConv2d(ps, "m1", typ, 1, 1, 1) })
	}
	mustPanic("zero channels", func() { nn.NewConv2d(ps, "z", 0, 1, 3) })
	conv := nn.NewConv2d(ps, "c", 2, 3, 3)
	conv.Padding = 0
	masked := nn.NewMaskedConv2d(ps, "mb", nn.MaskB, 1, 1, 3)
	masked.Padding = 0
	build := func(f func(g nn.Graph)) func() {
		return func() {
			exe, err := testBackend(t).Compile(nn.Spec{Key: "conv/panic", Params: ps}, func(g nn.Graph) error {
				f(g)
				return nil
			})
			if err == nil {
				exe.Close()
			}
		}
	}
	mustPanic("wrong channel count", build(func(g nn.Graph) { conv.Forward(g, g.Floats("x", 1, 3, 4, 4)) }))
	mustPanic("image smaller than the kernel", build(func(g nn.Graph) { conv.Forward(g, g.Floats("x", 1, 2, 2, 4)) }))
	mustPanic("rank-3 input", build(func(g nn.Graph) { conv.Forward(g, g.Floats("x", 2, 4, 4)) }))
	mustPanic("masked padding changed", build(func(g nn.Graph) { masked.Forward(g, g.Floats("x", 1, 1, 4, 4)) }))
}
