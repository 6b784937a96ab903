package pixelcnn

import (
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

// Memory estimates count the float32 values the gorgonia backend's pooled
// buffers hold per position (one pixel of one row) at an executable's peak
// (lm.Values), as lm.Footprint wants them; rows are whole images (T = N =
// H·W, the task's SeqLen), so positions and pixels are the same. They are
// counted from nn.Conv2d's im2col graph and the gorgonia backend's gradient
// rules, and checked against measurement within a factor of 2
// (plugintest.CheckMemoryEstimate, TestPixelCNNMemoryEstimate).
//
// A convolution with c inputs, o outputs and a k×k kernel of which τ taps
// in κ columns are kept (all k² and k for Conv2d, see nn.MaskType for the
// masks), on an h×w image with padding p = k/2, computes per pixel a
// channels-last copy (c, when c > 1), the zero border rows then columns
// (c·ρ, c·π), κ column windows (c·ρ each), τ tap windows (c each), the
// patch matrix (τ·c, when τ > 1), the product and its bias sum (o each) and
// the layout back (o, when o > 1), with ρ = (h+2p)/h and
// π = (h+2p)(w+2p)/(h·w), the padded image's share. Pooled, it holds at
// once only one stage's values (conv.values). Training saves the patch
// matrix, which the weight's gradient reads; its backward pass runs the
// stages in reverse (the patch matrix's gradient and its τ slices, the
// windows' sums, the border's), after the weight's gradient has freed the
// patch matrix. Element-wise steps save what their gradients read: a
// ReLU's, tanh's or σ's output (c per pixel), nothing for a sum, nor for a
// product of two maps saved already. The zero borders are constants, held
// once per shape (c·(π − 1)); the weights' masked, transposed copies and
// their gradients are parameter-sized and left out.

// conv is one convolution's shape: c inputs, o outputs, a k×k kernel of
// which taps taps in cols columns are kept.
type conv struct{ c, o, k, taps, cols int }

// masked is the convolution of a mask of type t.
func masked(t nn.MaskType, c, o, k int) conv {
	mask := nn.PixelCNNMask(t, k)
	taps, cols := 0, make(map[int]bool)
	for i, m := range mask {
		if m != 0 {
			taps++
			cols[i%k] = true
		}
	}
	return conv{c: c, o: o, k: k, taps: taps, cols: len(cols)}
}

// conv1x1 is a 1×1 convolution.
func conv1x1(c, o int) conv { return conv{c: c, o: o, k: 1, taps: 1, cols: 1} }

// shares returns ρ and π of the convolution's zero border on an h×w image.
func (v conv) shares(h, w int) (rho, pi float64) {
	p := float64(v.k / 2)
	H, W := float64(max(h, 1)), float64(max(w, 1))
	return (H + 2*p) / H, (H + 2*p) * (W + 2*p) / (H * W)
}

// values returns the convolution's saved values (the patch matrix, τ·c)
// and its largest stages per pixel. Up to the product they are: the
// channels-last copy with its input (2c), the row border with the copy
// (c + c·ρ), the column border with the row border (c·ρ + c·π), the
// padded image with the column windows and the first row of tap windows
// (c·π + κ·c·ρ + (κ−1)·c), the column windows with every tap window
// (κ·c·ρ + τ·c), the tap windows with the patch matrix (2·τ·c, in training
// also its gradient and slices), the product with its operand (τ·c + o);
// after it, the bias sum and the layout back (2o). In training the patch
// matrix is saved and counted there, so the stages up to the product hold
// τ·c less on top of the saved values; after it they hold 2o.
func (v conv) values(h, w int) (saved, trainPeak, evalPeak float64) {
	C, O, taps, cols := float64(v.c), float64(v.o), float64(v.taps), float64(v.cols)
	rho, pi := v.shares(h, w)
	padded := C
	before := taps*C + O
	if v.c > 1 {
		before = max(before, 2*C)
	}
	if v.k > 1 {
		padded = C * pi
		before = max(before, C+C*rho, C*rho+C*pi)
	}
	before = max(before, padded+cols*C*rho+(cols-1)*C, cols*C*rho+taps*C)
	if v.taps > 1 {
		before = max(before, 2*taps*C)
	}
	saved = taps * C
	return saved, max(before-saved, 2*O), max(before, 2*O)
}

// ops is the convolution's ops: the channels-last copy, the border's
// constants and concatenations, the column and tap windows, the patch
// matrix and its reshape, the weight's mask, transposition and slice, the
// product, the bias and its sum, the layout back: at most κ + τ + 14.
func (v conv) ops() float64 { return float64(v.cols + v.taps + 14) }

// border is the zero constants of the convolution's padding per pixel,
// held by the executable (one per shape: equal constants share a buffer).
func (v conv) border(h, w int) float64 {
	_, pi := v.shares(h, w)
	return float64(v.c) * (pi - 1)
}

// tally accumulates a network's values per pixel: what its convolutions
// and element-wise steps save, its largest stage with the maps alive
// around it in training and in evaluation, what it holds, its ops, and its
// convolutions as the products x·Wᵀ of their patch matrices (τ·c inputs,
// o outputs) for lm.GemmWorkspace.
type tally struct {
	h, w                       int
	saved, trainPeak, evalPeak float64
	held, ops                  float64
	linears                    []lm.Linear
}

// conv adds v with carried values alive around it (the residual stream,
// maps read later; in training their gradients).
func (n *tally) conv(v conv, carried float64) {
	s, tp, ep := v.values(n.h, n.w)
	n.saved += s
	n.trainPeak = max(n.trainPeak, tp+carried)
	n.evalPeak = max(n.evalPeak, ep+carried)
	n.ops += v.ops()
	n.linears = append(n.linears, lm.Linear{In: float64(v.taps * v.c), Out: float64(v.o)})
}

// pointwise adds element-wise ops saving saved values per pixel.
func (n *tally) pointwise(ops int, saved float64) {
	n.ops += float64(ops)
	n.saved += saved
}

// stage adds a stage of element-wise ops holding values at once.
func (n *tally) stage(values float64) {
	n.trainPeak = max(n.trainPeak, values)
	n.evalPeak = max(n.evalPeak, values)
}

// plain is pixelcnn's network (plainNet): the mask-A input convolution,
// per block ReLU → 1×1 reduce → ReLU → mask-B conv → ReLU → 1×1 expand,
// summed into the residual stream y (C, alive across the block), and the
// output head. Saved per block: the three ReLU outputs (C + 2·C/2) and
// the convolutions' patch matrices.
func (n *tally) plain(c *Config) {
	C, hc := c.Channels, c.Channels/2
	first, block := masked(nn.MaskA, 1, C, c.Kernel), masked(nn.MaskB, hc, hc, c.BlockKernel)
	n.conv(first, 0)
	n.held = first.border(n.h, n.w)
	if c.Layers > 0 {
		n.held += block.border(n.h, n.w)
	}
	for range c.Layers {
		n.pointwise(4, float64(C+2*hc)) // three ReLUs and the residual sum
		n.conv(conv1x1(C, hc), float64(C))
		n.conv(block, float64(C))
		n.conv(conv1x1(hc, C), float64(C))
	}
	n.head(C)
}

// gated is gated-pixelcnn's network (gatedNet): per layer the vertical
// and horizontal convolutions of in maps (1, then C), the 1×1 link of the
// vertical output zv (2C) summed into the horizontal one, the gate (two
// half slices, tanh, σ, their product: the sum, its halves, tanh and σ
// alive at once) and the 1×1 output convolution, and, but for the last
// layer, the vertical gate. Saved per layer: the gates' tanh and σ
// outputs (2C each) and the patch matrices. Carried: the horizontal input
// (in) until the horizontal convolution, and after it for the residual
// sum (layers after the first); zv until the vertical gate (2C, layers
// before the last); the horizontal output (2C) through the link.
func (n *tally) gated(c *Config) {
	C := float64(c.Channels)
	for l := range c.Layers + 1 {
		in, k, vt, ht := c.Channels, c.BlockKernel, nn.MaskVB, nn.MaskHB
		if l == 0 {
			in, k, vt, ht = 1, c.Kernel, nn.MaskVA, nn.MaskHA
		}
		v, h := masked(vt, in, 2*c.Channels, k), masked(ht, in, 2*c.Channels, k)
		var residual, zv float64 // carried after the horizontal convolution
		if l > 0 {
			residual = float64(in)
		}
		if l < c.Layers {
			zv = 2 * C
		}
		if l <= 1 {
			n.held += v.border(n.h, n.w) // the first layer's and the later layers' shape
		}
		n.conv(v, float64(in))
		n.conv(h, float64(in)+2*C)
		n.conv(conv1x1(2*c.Channels, 2*c.Channels), residual+zv+2*C)
		n.stage(residual + zv + 6*C)
		n.pointwise(7, 2*C) // the link's sum, the gate, the residual sum
		n.conv(conv1x1(c.Channels, c.Channels), residual+zv)
		if l < c.Layers {
			n.pointwise(5, 2*C) // the vertical gate
		}
	}
	n.head(c.Channels)
}

// head adds outputHead: ReLU → 1×1 (C→C) → ReLU → 1×1 (C→1), the two ReLU
// outputs saved.
func (n *tally) head(C int) {
	n.pointwise(2, 2*float64(C))
	n.conv(conv1x1(C, C), 0)
	n.conv(conv1x1(C, 1), 0)
}

// wrapperOps is Model.Logits's ops around the network (the token values,
// the shifted and padded pixel map, the logits' constant columns and their
// concatenation, reshapes) and the loss's (the feeds, log-softmax, Pick,
// weighting, sum).
const wrapperOps = 20

// wrapper is Model.Logits around the network and the loss over the 3
// logits (0, ℓ, NoMass) per pixel: in training the log-softmax saved (3)
// and its gradient with the Pick's in flight (6); in evaluation the logits
// and their log-softmax (6) and the distributions NextLogProbs hands out
// (3); both hold the logits' two constant columns and the pixel map's
// value, alive until the first convolution (3).
func wrapper() (train, eval lm.Values) {
	train, eval = lm.OutputTrain(0, Vocab), lm.OutputEval(Vocab)
	train.Held += 3
	eval.Held += 3
	return train, eval
}

// footprint is the model's lm.Footprint for an h×w image and training
// batches of batch rows: the exact parameter count, the network's and the
// wrapper's values and ops, and the packing buffers of the training
// products (lm.GemmWorkspace of the convolutions over the batch's
// pixels).
func footprint(c *Config, h, w, batch int) lm.Footprint {
	n := &tally{h: h, w: w}
	params := plainParams(c)
	if c.gated {
		params = gatedParams(c)
		n.gated(c)
	} else {
		n.plain(c)
	}
	wrapTrain, wrapEval := wrapper()
	train := lm.Values{Saved: n.saved, Peak: n.trainPeak, Held: n.held}
	eval := lm.Values{Peak: n.evalPeak, Held: n.held}
	return lm.Footprint{
		Params:    params,
		Train:     train.Then(wrapTrain).Total(),
		Eval:      eval.Then(wrapEval).Total(),
		Workspace: lm.GemmWorkspace(float64(max(batch, 0)*h*w), n.linears...),
		Ops:       n.ops + wrapperOps,
	}
}
