package pixelcnn

import (
	"fmt"
	"math/rand/v2"

	"arbench/nn"
)

// gatedNet is the "gated-pixelcnn" family: the Gated PixelCNN (van den
// Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders",
// §2.2 and Fig. 2), unconditional, for one binary channel. It has a
// vertical stack v, which sees the rows above the pixel, and a horizontal
// stack h, which sees the pixel's row to its left and, through a 1×1 link
// from v, the rows above. With C = channels, L = layers and the gate
//
//	gate(z) = tanh(z_f) ⊙ σ(z_g),  z = [z_f; z_g] split into halves of C maps,
//
// layer l (l = 0 … L; layer 0 reads the image, v_{−1} = h_{−1} = x) is
//
//	z_v = V_l ∗ v_{l−1}                                  → 2C maps
//	z_h = H_l ∗ h_{l−1} + Link_l(z_v)                    → 2C maps
//	v_l = gate(z_v)
//	h_l = Out_l(gate(z_h)) + h_{l−1}   (no residual in layer 0, whose input is the image)
//
// and the logit is ℓ = O_2(ReLU(O_1(ReLU(h_L)))), C → C → 1, as in plain.go.
// Link_l and Out_l are 1×1 convolutions (2C → 2C and C → C).
//
// V_l and H_l are masked k×k convolutions (k = kernel for layer 0,
// block_kernel after it) with the masks of nn.MaskType: V_0 mask VA (rows
// above the centre, all columns), V_l mask VB (those rows and the whole
// centre row), H_0 mask HA (the centre row left of the centre), H_l mask HB
// (that and the centre). They are the paper's ⌈k/2⌉×k vertical
// convolution with its output shifted down one row, and its 1×⌈k/2⌉
// horizontal one, written as masks on the layers' own k×k kernels.
// Because V_0 excludes the centre row, v_l at (i,j) reads image rows < i
// only, whatever the depth (VB's centre row reads v_{l−1} at row i, which
// itself reads rows < i), so the link from v into h is causal at every
// layer; h_l at (i,j) reads row i left of j and, through the links, the
// rows above.
//
// Receptive field: with c_0 = kernel/2, c_b = block_kernel/2 and
// r_l = c_0 + l·c_b, v_l at (i,j) reads every pixel of rows i−r_l … i−1,
// columns j−r_l … j+r_l, and h_l every pixel of that rectangle and of row
// i, columns j−r_l … j−1. The field is a full rectangle above the pixel
// and a full run left of it: no blind spot (compare plainNet, whose 3×3
// stack never reads (i−1, j+2)).
//
// Its PyTorch twin (state_dict names identical; MaskedConv2d is
// nn.MaskedConv2d's twin with the masks VA/VB/HA/HB of
// nn/testdata/gen_conv.py):
//
//	def gate(z):
//	    f, g = z.chunk(2, 1)
//	    return torch.tanh(f) * torch.sigmoid(g)
//
//	class GatedLayer(nn.Module):
//	    def __init__(self, cin, C, k, first):
//	        super().__init__()
//	        self.first = first
//	        self.v = MaskedConv2d("VA" if first else "VB", cin, 2 * C, k)
//	        self.h = MaskedConv2d("HA" if first else "HB", cin, 2 * C, k)
//	        self.link = nn.Conv2d(2 * C, 2 * C, 1)
//	        self.out = nn.Conv2d(C, C, 1)
//	    def forward(self, v, h):
//	        zv = self.v(v)
//	        zh = self.h(h) + self.link(zv)
//	        ho = self.out(gate(zh))
//	        return gate(zv), ho if self.first else h + ho
//
//	class GatedPixelCNN(nn.Module):
//	    def __init__(self, C, L, k, kb):
//	        super().__init__()
//	        self.layers = nn.ModuleList(
//	            [GatedLayer(1, C, k, True)] + [GatedLayer(C, C, kb, False) for _ in range(L)])
//	        self.out1 = nn.Conv2d(C, C, 1)
//	        self.out2 = nn.Conv2d(C, 1, 1)
//	    def forward(self, x):                        # x [B,1,H,W] in {0,1}
//	        v = h = x
//	        for layer in self.layers:
//	            v, h = layer(v, h)
//	        return self.out2(F.relu(self.out1(F.relu(h))))  # logits [B,1,H,W]
//
// state_dict names: layers.{l}.{v,h,link,out}.{weight,bias} for
// l = 0 … L, out1.{weight,bias}, out2.{weight,bias}. (The last layer's
// v_L is computed by the twin but read by nothing; Forward skips it.)
type gatedNet struct {
	channels int
	layers   []gatedLayer
	head     outputHead
}

type gatedLayer struct {
	v, h      *nn.MaskedConv2d
	link, out *nn.Conv2d
	residual  bool
}

func newGatedNet(ps *nn.ParamSet, rng *rand.Rand, c *Config) *gatedNet {
	C := c.Channels
	n := &gatedNet{channels: C}
	for l := range c.Layers + 1 {
		p := fmt.Sprintf("layers.%d.", l)
		in, k, vt, ht := C, c.BlockKernel, nn.MaskVB, nn.MaskHB
		if l == 0 {
			in, k, vt, ht = 1, c.Kernel, nn.MaskVA, nn.MaskHA
		}
		layer := gatedLayer{
			v:        nn.NewMaskedConv2d(ps, p+"v", vt, in, 2*C, k),
			h:        nn.NewMaskedConv2d(ps, p+"h", ht, in, 2*C, k),
			link:     nn.NewConv2d(ps, p+"link", 2*C, 2*C, 1),
			out:      nn.NewConv2d(ps, p+"out", C, C, 1),
			residual: l > 0,
		}
		layer.v.Init(rng)
		layer.h.Init(rng)
		layer.link.Init(rng)
		layer.out.Init(rng)
		n.layers = append(n.layers, layer)
	}
	n.head = newOutputHead(ps, C, rng)
	return n
}

// gate splits z [B,2C,H,W] into halves f, g on the channel axis and
// returns tanh(f) ⊙ σ(g) [B,C,H,W].
func (n *gatedNet) gate(g nn.Graph, z nn.Tensor) nn.Tensor {
	C := n.channels
	return g.Mul(g.Tanh(g.Slice(z, 1, 0, C)), g.Sigmoid(g.Slice(z, 1, C, 2*C)))
}

func (n *gatedNet) forward(g nn.Graph, x nn.Tensor) nn.Tensor {
	v, h := x, x
	for l, layer := range n.layers {
		zv := layer.v.Forward(g, v)
		zh := g.Add(layer.h.Forward(g, h), layer.link.Forward(g, zv))
		ho := layer.out.Forward(g, n.gate(g, zh))
		if layer.residual {
			ho = g.Add(h, ho)
		}
		h = ho
		if l < len(n.layers)-1 {
			v = n.gate(g, zv)
		}
	}
	return n.head.forward(g, h)
}

// gatedParams is the parameter count of newGatedNet.
func gatedParams(c *Config) float64 {
	C, k, kb, L := float64(c.Channels), float64(c.Kernel), float64(c.BlockKernel), float64(c.Layers)
	link := 4*C*C + 2*C
	out := C*C + C
	first := 2*(2*C*k*k+2*C) + link + out
	later := 2*(2*C*C*kb*kb+2*C) + link + out
	return first + L*later + (C*C + C) + (C + 1)
}
