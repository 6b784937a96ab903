package pixelcnn

import (
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

// Memory estimates count the float32 values the gorgonia backend keeps per
// position (one pixel of one row), as lm.Footprint wants them; rows are
// whole images (T = N = H·W, the task's SeqLen), so positions and pixels
// are the same. They are approximate: checked against measurement within
// a factor of 2 (plugintest.CheckMemoryEstimate, TestPixelCNNMemoryEstimate).
//
// A convolution with c inputs, o outputs, a k×k kernel of which τ taps in
// κ columns are kept (all k² and k for Conv2d, see nn.MaskType for the
// masks), on an h×w image with padding p = k/2, keeps per pixel
//
//	channels-last copy (c > 1)                  c
//	zero border, rows then columns              c·(ρ + 2π − 1)
//	column windows                              κ·c·ρ
//	tap windows and the patch matrix            2·τ·c  (τ·c for one tap)
//	product, bias sum, layout back (o > 1)      3·o    (2·o for one output)
//
// with ρ = (h+2p)/h and π = (h+2p)(w+2p)/(h·w), the padded image's share;
// training keeps a gradient of about the same size per value, so twice.
// Element-wise steps add their outputs: a ReLU or a residual sum c per
// pixel, a gate of 2C maps 5·C (two half slices, tanh, σ, product). The
// language-model wrapper adds the logits (lm.LogitValues(3)) and a few
// values for the pixel map.

// convValues is the evaluation values per pixel of one convolution.
func convValues(c, o, k, taps, cols int, h, w int) float64 {
	C, O := float64(c), float64(o)
	p := float64(k / 2)
	H, W := float64(max(h, 1)), float64(max(w, 1))
	rho, pi := (H+2*p)/H, (H+2*p)*(W+2*p)/(H*W)
	v := 0.0
	if c > 1 {
		v += C
	}
	if k > 1 {
		v += C * (rho + 2*pi - 1)
	}
	v += float64(cols) * C * rho
	if taps > 1 {
		v += 2 * float64(taps) * C
	} else {
		v += C
	}
	if o > 1 {
		v += 3 * O
	} else {
		v += 2 * O
	}
	return v
}

// maskedValues is convValues for a masked convolution of type t.
func maskedValues(t nn.MaskType, c, o, k, h, w int) float64 {
	mask := nn.PixelCNNMask(t, k)
	taps, cols := 0, make(map[int]bool)
	for i, m := range mask {
		if m != 0 {
			taps++
			cols[i%k] = true
		}
	}
	return convValues(c, o, k, taps, len(cols), h, w)
}

// conv1x1 is convValues for a 1×1 convolution.
func conv1x1(c, o int) float64 { return convValues(c, o, 1, 1, 1, 1, 1) }

// wrapperValues is the per-position share of Model.Logits outside the
// network: the token values and the padded image (3), and the logits.
func wrapperValues() float64 { return 3 + lm.LogitValues(Vocab) }

// networkValues is the evaluation values per pixel of the network of c
// on an h×w image.
func networkValues(c *Config, h, w int) float64 {
	C := c.Channels
	head := float64(C) + conv1x1(C, C) + float64(C) + conv1x1(C, 1)
	if !c.gated {
		hc := C / 2
		v := maskedValues(nn.MaskA, 1, C, c.Kernel, h, w)
		block := float64(C) + conv1x1(C, hc) + float64(hc) + maskedValues(nn.MaskB, hc, hc, c.BlockKernel, h, w) +
			float64(hc) + conv1x1(hc, C) + float64(C)
		return v + float64(c.Layers)*block + head
	}
	gate := 5 * float64(C) // two half slices, tanh, σ, product
	layer := func(first bool) float64 {
		in, k, vt, ht := C, c.BlockKernel, nn.MaskVB, nn.MaskHB
		if first {
			in, k, vt, ht = 1, c.Kernel, nn.MaskVA, nn.MaskHA
		}
		v := maskedValues(vt, in, 2*C, k, h, w) + maskedValues(ht, in, 2*C, k, h, w) +
			conv1x1(2*C, 2*C) + 2*float64(C) + // link and its sum
			2*gate + conv1x1(C, C)
		if !first {
			v += float64(C) // residual sum
		}
		return v
	}
	return layer(true) + float64(c.Layers)*layer(false) + head
}

// footprint is the model's lm.Footprint for an h×w image: the exact
// parameter count, and per position twice the network's evaluation values
// in training (values and gradients) plus the wrapper's.
func footprint(c *Config, h, w int) lm.Footprint {
	params := plainParams(c)
	if c.gated {
		params = gatedParams(c)
	}
	net := networkValues(c, h, w)
	return lm.Footprint{Params: params, Train: 2*net + wrapperValues(), Eval: net + wrapperValues()}
}
