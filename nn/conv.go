package nn

import (
	"fmt"
	"math/rand/v2"
)

// This file holds the 2-D convolutions of image models (PixelCNN). They are
// compositions of existing Graph operations, so every backend runs them
// without a convolution kernel of its own.

// Conv2d is torch.nn.Conv2d(in, out, k, padding=p) with stride 1, no
// dilation, one group and a bias, on NCHW inputs:
//
//	y[b,o,i,j] = bias[o] + Σ_{c,u,v} weight[o,c,u,v] · x̃[b,c,i+u-p,j+v-p]
//
// where x̃ is x with zeros outside the image (a cross-correlation, as in
// PyTorch). The output is [B,out,H+2p-k+1,W+2p-k+1], so the default
// padding p = k/2 keeps H and W for odd k.
//
// Forward is im2col without integer indices: the input goes to
// channels-last rows, is padded with zero constants (Concat), and each
// kernel tap (u,v) is the window Slice [u,u+H') × [v,v+W') of the padded
// image; the k·k windows side by side (Concat on the channel axis) are the
// [B·H'·W', k·k·in] patch matrix, which one MatMul multiplies by the
// weight rearranged inside the graph (Transpose, Reshape) to tap-major
// [out, k·k·in], so gradients reach the [out,in,k,k] parameter directly.
// (A Gather of precomputed patch indices would need an Ints feed, since a
// Const holds only float32 values; the windows need nothing fed.) The
// patch matrix holds k·k copies of the input, B·H'·W'·k·k·in floats, and
// its gradient as many.
type Conv2d struct {
	// Weight is [out,in,k,k] (prefix.weight), Bias [out] (prefix.bias).
	Weight, Bias *Param
	In, Out      int
	// Kernel is k; Padding is p, the zero border on every side (NewConv2d
	// sets k/2; set it before building a graph to change it).
	Kernel, Padding int
}

// NewConv2d adds prefix.weight [out,in,k,k] and prefix.bias [out] to ps,
// with padding k/2.
func NewConv2d(ps *ParamSet, prefix string, in, out, k int) *Conv2d {
	if in <= 0 || out <= 0 || k <= 0 {
		panic(fmt.Sprintf("nn: Conv2d(%s): in %d, out %d, kernel %d must be positive", prefix, in, out, k))
	}
	return &Conv2d{
		Weight:  ps.Add(joinName(prefix, "weight"), out, in, k, k),
		Bias:    ps.Add(joinName(prefix, "bias"), out),
		In:      in,
		Out:     out,
		Kernel:  k,
		Padding: k / 2,
	}
}

// FanIn is in·k·k, the fan-in of each output unit.
func (c *Conv2d) FanIn() int { return c.In * c.Kernel * c.Kernel }

// Init applies PyTorch's default (_ConvNd.reset_parameters): weight
// kaiming_uniform(a=√5), which is U(±1/√fan_in), and bias U(±1/√fan_in),
// with fan_in = in·k·k.
func (c *Conv2d) Init(rng *rand.Rand) {
	InitUniform(c.Weight, rng, Bound(c.FanIn()))
	InitUniform(c.Bias, rng, Bound(c.FanIn()))
}

// OutputSize returns the spatial size H+2p-k+1, W+2p-k+1 of the output
// for an h×w input.
func (c *Conv2d) OutputSize(h, w int) (int, int) {
	return h + 2*c.Padding - c.Kernel + 1, w + 2*c.Padding - c.Kernel + 1
}

// Forward convolves x [B,in,H,W] and returns [B,out,H',W'] (OutputSize).
func (c *Conv2d) Forward(g Graph, x Tensor) Tensor {
	return c.forward(g, "Conv2d", x, g.Param(c.Weight), 0, c.Kernel*c.Kernel)
}

// forward convolves x with weight [out,in,k,k] using only the kernel
// positions lo ≤ u·k+v < hi in raster order; the others are taken to be
// zero and build no ops.
func (c *Conv2d) forward(g Graph, op string, x, weight Tensor, lo, hi int) Tensor {
	s := checkRank(op, x, 4)
	b, cin, h, w := s[0], s[1], s[2], s[3]
	if cin != c.In {
		panic(fmt.Sprintf("nn: %s(%s): want input [B %d H W], got %v", op, c.Weight.Name, c.In, s))
	}
	if c.Padding < 0 {
		panic(fmt.Sprintf("nn: %s(%s): negative padding %d", op, c.Weight.Name, c.Padding))
	}
	ho, wo := c.OutputSize(h, w)
	if ho < 1 || wo < 1 {
		panic(fmt.Sprintf("nn: %s(%s): %dx%d input is smaller than the %dx%d kernel with padding %d",
			op, c.Weight.Name, h, w, c.Kernel, c.Kernel, c.Padding))
	}
	k, p := c.Kernel, c.Padding

	// Channels-last [B,H,W,C]; with one channel that is the same order.
	var rows Tensor
	if cin == 1 {
		rows = g.Reshape(x, b, h, w, 1)
	} else {
		rows = g.Transpose(x, 0, 2, 3, 1)
	}
	if p > 0 {
		zr := g.Const(make([]float32, b*p*w*cin), b, p, w, cin)
		rows = g.Concat(1, zr, rows, zr)
		zc := g.Const(make([]float32, b*(h+2*p)*p*cin), b, h+2*p, p, cin)
		rows = g.Concat(2, zc, rows, zc)
	}
	// Tap (u,v) is the window of rows u..u+H'-1 of column window v.
	cols := make([]Tensor, k)
	taps := hi - lo
	patches := make([]Tensor, 0, taps)
	for t := lo; t < hi; t++ {
		u, v := t/k, t%k
		if cols[v] == nil {
			cols[v] = g.Slice(rows, 2, v, v+wo)
		}
		patches = append(patches, g.Slice(cols[v], 1, u, u+ho))
	}
	patch := patches[0]
	if len(patches) > 1 {
		patch = g.Concat(3, patches...)
	}
	patch = g.Reshape(patch, b*ho*wo, taps*cin)

	// The weight in the same tap-major order: [out, k·k·in], the columns
	// of taps lo..hi-1.
	wt := g.Reshape(g.Transpose(weight, 0, 2, 3, 1), c.Out, k*k*cin)
	if taps < k*k {
		wt = g.Slice(wt, 1, lo*cin, hi*cin)
	}
	y := g.Add(g.MatMul(patch, wt, false, true), g.Param(c.Bias)) // [B·H'·W', out]
	if c.Out == 1 {
		return g.Reshape(y, b, 1, ho, wo)
	}
	y = g.Transpose(g.Reshape(y, b, ho*wo, c.Out), 0, 2, 1)
	return g.Reshape(y, b, c.Out, ho, wo)
}

// MaskType selects the spatial mask of a MaskedConv2d. Every mask keeps
// one contiguous run of taps in raster order (row by row), so a masked
// layer builds ops for those taps only. With c = k/2 the centre tap is
// (c,c); the six masks, drawn for k = 3 (1 = kept, · = masked, the centre
// in brackets):
//
//	A      B      VA     VB     HA     HB
//	1 1 1  1 1 1  1 1 1  1 1 1  · · ·  · · ·
//	1[·]·  1[1]·  ·[·]·  1[1]1  1[·]·  1[1]·
//	· · ·  · · ·  · · ·  · · ·  · · ·  · · ·
//
// A and B are PixelCNN's masks (van den Oord et al. 2016, "Pixel Recurrent
// Neural Networks", Fig. 2). VA, VB, HA and HB are the vertical and
// horizontal stacks of the Gated PixelCNN (van den Oord et al. 2016,
// "Conditional Image Generation with PixelCNN Decoders", §2.2, Fig. 2),
// written as masked k×k convolutions instead of the paper's
// ⌈k/2⌉×k-plus-shift and 1×⌈k/2⌉ convolutions (the same receptive fields
// with the same padding as every other layer).
type MaskType byte

const (
	// MaskA excludes the centre tap: the first layer, which must not see
	// the pixel it predicts.
	MaskA MaskType = 'A'
	// MaskB includes the centre tap: every later layer, whose centre input
	// already depends only on earlier pixels.
	MaskB MaskType = 'B'
	// MaskVA keeps every row strictly above the centre row, all columns:
	// the first layer of a vertical stack, whose output at (i,j) then
	// depends on input rows < i only.
	MaskVA MaskType = 'v'
	// MaskVB keeps the rows above the centre row and the whole centre row:
	// the later layers of a vertical stack. Their input at row i already
	// depends on rows < i only, so the output at (i,j) still does, while
	// the stack's field grows by c rows and c columns each side per layer.
	MaskVB MaskType = 'V'
	// MaskHA keeps the centre row left of the centre: the first layer of a
	// horizontal stack, output (i,j) reading input (i, j-c … j-1).
	MaskHA MaskType = 'h'
	// MaskHB keeps the centre row up to and including the centre: the later
	// layers of a horizontal stack.
	MaskHB MaskType = 'H'
)

// String returns the mask's name: A, B, VA, VB, HA or HB.
func (m MaskType) String() string {
	switch m {
	case MaskVA:
		return "VA"
	case MaskVB:
		return "VB"
	case MaskHA:
		return "HA"
	case MaskHB:
		return "HB"
	}
	return string(rune(m))
}

// PixelCNNMask returns the k×k spatial mask (row-major, k odd) of a masked
// convolution of the given type (see MaskType). For MaskA it has 1 at
// every tap above the centre row and left of the centre in the centre row,
// 0 below the centre row and right of the centre, and 0 at the centre
// itself, which MaskB keeps; in raster order the ones are exactly the
// first k·k/2 taps (A) or the first k·k/2+1 (B). MaskVA keeps the first
// c·k taps (c = k/2), MaskVB the first (c+1)·k, MaskHA the c taps of the
// centre row before the centre, MaskHB those and the centre.
func PixelCNNMask(t MaskType, k int) []float32 {
	lo, hi := maskRange(t, k)
	m := make([]float32, k*k)
	for i := lo; i < hi; i++ {
		m[i] = 1
	}
	return m
}

// maskRange returns the run [lo, hi) of taps (raster order) a mask keeps.
func maskRange(t MaskType, k int) (lo, hi int) {
	if k <= 0 || k%2 == 0 {
		panic(fmt.Sprintf("nn: PixelCNN mask needs an odd kernel size, got %d", k))
	}
	c := k / 2
	switch t {
	case MaskA:
		return 0, c*k + c
	case MaskB:
		return 0, c*k + c + 1
	case MaskVA:
		return 0, c * k
	case MaskVB:
		return 0, (c + 1) * k
	case MaskHA:
		return c * k, c*k + c
	case MaskHB:
		return c * k, c*k + c + 1
	}
	panic(fmt.Sprintf("nn: unknown PixelCNN mask type %q (want A, B, VA, VB, HA or HB)", rune(t)))
}

// MaskedConv2d is the masked convolution of PixelCNN (van den Oord et al.
// 2016, "Pixel Recurrent Neural Networks", §3.4 and Fig. 2): a Conv2d
// whose weight is multiplied by the constant PixelCNNMask on every forward
// pass, so that output (i,j) depends only on inputs at raster positions
// before (i,j) (mask A) or up to and including it (mask B). Stacking one
// mask-A layer and any number of mask-B layers keeps every output strictly
// causal in raster order. There is one channel group: the mask is the
// same for every (out, in) channel pair (no R/G/B split), as for binary or
// grey-scale images. The Gated PixelCNN's vertical and horizontal stacks
// use the masks VA/VB and HA/HB the same way (see MaskType).
//
// Its PyTorch twin is
//
//	class MaskedConv2d(nn.Conv2d):
//	    def __init__(self, mask_type, cin, cout, k):
//	        super().__init__(cin, cout, k, padding=k // 2)
//	        self.register_buffer("mask", pixelcnn_mask(mask_type, k), persistent=False)
//	    def forward(self, x):
//	        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
//
// with state_dict names prefix.weight and prefix.bias only: the mask is a
// constant rebuilt from the type, never saved (a persistent buffer would
// add prefix.mask, which LoadSafetensors rejects as unknown). Multiplying
// on every pass (rather than `self.weight.data *= mask` once at
// initialisation) means masked weights never reach the output whatever the
// optimiser or a loaded file puts in them, and their gradient is exactly 0.
//
// Forward builds no ops for the masked taps at all (every mask keeps one
// run of taps in raster order), so a masked layer costs about half a
// Conv2d (A, B, VA, VB), or one kernel row's share of it at most (HA,
// HB). The only difference from
// PyTorch's product with a zero weight is that a non-finite input at a
// masked tap does not turn the output into NaN.
//
// Padding must stay k/2 (as NewMaskedConv2d sets it) for the mask's centre
// to be output (i,j)'s own position. The embedded m.Conv2d.Forward is the
// unmasked convolution with the same parameters.
type MaskedConv2d struct {
	Conv2d
	Type MaskType
}

// NewMaskedConv2d adds prefix.weight [out,in,k,k] and prefix.bias [out] to
// ps for a mask of type t; k must be odd, and at least 3 for the masks A,
// VA and HA, which keep no tap of a 1×1 kernel.
func NewMaskedConv2d(ps *ParamSet, prefix string, t MaskType, in, out, k int) *MaskedConv2d {
	if lo, hi := maskRange(t, k); lo == hi { // also validates t and k
		panic(fmt.Sprintf("nn: MaskedConv2d(%s): mask %v of a %dx%d kernel keeps no tap", prefix, t, k, k))
	}
	return &MaskedConv2d{Conv2d: *NewConv2d(ps, prefix, in, out, k), Type: t}
}

// Mask returns the layer's k×k spatial mask (PixelCNNMask).
func (m *MaskedConv2d) Mask() []float32 { return PixelCNNMask(m.Type, m.Kernel) }

// Forward convolves x [B,in,H,W] with weight ⊙ mask and returns
// [B,out,H,W].
func (m *MaskedConv2d) Forward(g Graph, x Tensor) Tensor {
	if m.Padding != m.Kernel/2 {
		panic(fmt.Sprintf("nn: MaskedConv2d(%s): padding %d, want k/2 = %d", m.Weight.Name, m.Padding, m.Kernel/2))
	}
	k := m.Kernel
	w := g.Mul(g.Param(m.Weight), g.Const(m.Mask(), k, k))
	lo, hi := maskRange(m.Type, k)
	return m.forward(g, "MaskedConv2d", x, w, lo, hi)
}
