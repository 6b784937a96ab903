package pixelcnn

import (
	"fmt"
	"math/rand/v2"

	"arbench/nn"
)

// plainNet is the "pixelcnn" family: PixelCNN (van den Oord et al. 2016,
// "Pixel Recurrent Neural Networks", §3.4, §4 and Fig. 5) for one binary
// channel. With C = channels, h = C/2, k = kernel, k_b = block_kernel and
// L = layers:
//
//	y_0     = MaskA_{k×k}(x)                                  1 → C
//	y_{l+1} = y_l + E_l(ReLU(M_l(ReLU(R_l(ReLU(y_l))))))       l = 0 … L−1
//	ℓ       = O_2(ReLU(O_1(ReLU(y_L))))                        C → C → 1
//
// where R_l is a 1×1 convolution C → h, M_l a k_b×k_b mask-B convolution
// h → h and E_l a 1×1 convolution h → C: the paper's residual block of
// Fig. 5 (2h → h → h → 2h), whose channels are halved inside as there. The
// head is the paper's two ReLU + 1×1 layers, ending in one channel, the
// pixel's Bernoulli logit (the paper's 256-way softmax per colour is a
// single logit for binary pixels).
//
// Output (i,j) reads only pixels before (i,j) in raster order, but not all
// of them: a mask-B convolution reaches up-right only by moving up as far,
// so with 3×3 kernels the pixels (i−1, j+2), (i−1, j+3) … right of the
// field's edge are never read, however deep the stack (the "blind spot"
// the Gated PixelCNN removes; TestPixelCNNBlindSpot measures it).
//
// Its PyTorch twin (state_dict names identical; MaskedConv2d is
// nn.MaskedConv2d's twin, the mask a non-persistent buffer):
//
//	class Block(nn.Module):
//	    def __init__(self, C, kb):
//	        super().__init__()
//	        self.reduce = nn.Conv2d(C, C // 2, 1)
//	        self.conv = MaskedConv2d("B", C // 2, C // 2, kb)
//	        self.expand = nn.Conv2d(C // 2, C, 1)
//	    def forward(self, y):
//	        r = self.reduce(F.relu(y))
//	        return y + self.expand(F.relu(self.conv(F.relu(r))))
//
//	class PixelCNN(nn.Module):
//	    def __init__(self, C, L, k, kb):
//	        super().__init__()
//	        self.input = MaskedConv2d("A", 1, C, k)
//	        self.blocks = nn.ModuleList(Block(C, kb) for _ in range(L))
//	        self.out1 = nn.Conv2d(C, C, 1)
//	        self.out2 = nn.Conv2d(C, 1, 1)
//	    def forward(self, x):                        # x [B,1,H,W] in {0,1}
//	        y = self.input(x)
//	        for b in self.blocks:
//	            y = b(y)
//	        return self.out2(F.relu(self.out1(F.relu(y))))  # logits [B,1,H,W]
//
// state_dict names: input.{weight,bias},
// blocks.{l}.{reduce,conv,expand}.{weight,bias}, out1.{weight,bias},
// out2.{weight,bias}. The language-model wrapper (Model.Logits) adds no
// parameters.
type plainNet struct {
	input  *nn.MaskedConv2d
	blocks []plainBlock
	head   outputHead
}

type plainBlock struct {
	reduce *nn.Conv2d
	conv   *nn.MaskedConv2d
	expand *nn.Conv2d
}

func newPlainNet(ps *nn.ParamSet, rng *rand.Rand, c *Config) *plainNet {
	C, h := c.Channels, c.Channels/2
	n := &plainNet{input: nn.NewMaskedConv2d(ps, "input", nn.MaskA, 1, C, c.Kernel)}
	n.input.Init(rng)
	for l := range c.Layers {
		p := fmt.Sprintf("blocks.%d.", l)
		b := plainBlock{
			reduce: nn.NewConv2d(ps, p+"reduce", C, h, 1),
			conv:   nn.NewMaskedConv2d(ps, p+"conv", nn.MaskB, h, h, c.BlockKernel),
			expand: nn.NewConv2d(ps, p+"expand", h, C, 1),
		}
		b.reduce.Init(rng)
		b.conv.Init(rng)
		b.expand.Init(rng)
		n.blocks = append(n.blocks, b)
	}
	n.head = newOutputHead(ps, C, rng)
	return n
}

func (n *plainNet) forward(g nn.Graph, x nn.Tensor) nn.Tensor {
	y := n.input.Forward(g, x)
	for _, b := range n.blocks {
		r := b.reduce.Forward(g, g.ReLU(y))
		r = b.conv.Forward(g, g.ReLU(r))
		y = g.Add(y, b.expand.Forward(g, g.ReLU(r)))
	}
	return n.head.forward(g, y)
}

// plainParams is the parameter count of newPlainNet.
func plainParams(c *Config) float64 {
	C, h := float64(c.Channels), float64(c.Channels/2)
	k, kb, L := float64(c.Kernel), float64(c.BlockKernel), float64(c.Layers)
	block := (C*h + h) + (h*h*kb*kb + h) + (h*C + C)
	return C*k*k + C + L*block + (C*C + C) + (C + 1)
}
