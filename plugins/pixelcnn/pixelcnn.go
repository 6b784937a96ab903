// Package pixelcnn registers two convolutional autoregressive models of
// binary images: "pixelcnn" (van den Oord et al. 2016, "Pixel Recurrent
// Neural Networks", §3.4 and §4; plain.go) and "gated-pixelcnn" (van den
// Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders",
// §2.2 and Fig. 2; gated.go).
//
// # Framing
//
// Both are language models over the image task's framing (tasks/image): an
// H×W binary image p_0 … p_{N−1} (raster order, N = H·W) is one row over the
// vocabulary {0, 1, 2}, where 0 and 1 are pixel values and 2 is the start
// token; Inputs = [2, p_0 … p_{N−2}], Targets = [p_0 … p_{N−1}]. Logits reads
// ids [B,T] with T ≤ N (training and scoring feed T = N, re-fed generation
// any prefix length) and rebuilds the image x [B,1,H,W]: pixel j is the
// value of token j+1 for j < T−1 (token 1 → 1, tokens 0 and 2 → 0: a
// Gather from the constant table {0, 1, 0}) and 0 at every position not yet
// known. The network maps x to one Bernoulli logit ℓ per pixel, and the
// logits of position t over the vocabulary are (0, ℓ_t, NoMass), so that
//
//	log p(p_t = 1) = ℓ_t − log(1 + e^{ℓ_t}),  log p(p_t = 0) = −log(1 + e^{ℓ_t}),
//
// and the start token, which is never a target, gets no probability
// (e^NoMass is 0 in float32). The first layer's mask makes ℓ_t depend on
// the pixels before t only, i.e. on inputs[:t+1], which is the
// Distributioner's contract; the unknown pixels set to 0 are never read.
// Since no output reads a later row than its own, the network runs only on
// the ⌈T/W⌉ rows that hold positions 0 … T−1 (the result is the same).
//
// In PyTorch, with net one of the twins of plain.go and gated.go (x
// [B,1,H,W] → logits [B,1,H,W]; the wrapper has no parameters):
//
//	def lm_logits(net, ids, H, W):                   # ids [B,T], T <= H*W
//	    B, T = ids.shape
//	    x = torch.zeros(B, H * W)
//	    x[:, :T - 1] = (ids[:, 1:] == 1).float()
//	    l = net(x.view(B, 1, H, W)).view(B, H * W)[:, :T]
//	    return torch.stack([torch.zeros_like(l), l, torch.full_like(l, -1e4)], -1)
//
// testdata/gen_reference.py builds both twins and the wrapper, and
// TestPixelCNNMatchesPyTorch loads their state_dicts and agrees with their
// log-probabilities to 1.2e-7.
//
// The image shape comes from the configuration (height, width) or, when
// both are 0, from the task's rows: a square of side √SeqLen. CheckEnv
// reports a vocabulary other than 3 and rows that do not make the image.
//
// # Capabilities
//
// Both families embed lm.Base (harness.Trainer, Scorer, Distributioner),
// compute one position's distribution (harness.PositionDistributioner,
// position.go), check the task (harness.EnvChecker), estimate their memory
// (harness.MemoryEstimator), limit the context to the image's N positions
// (harness.ContextLimiter) and release their executables (io.Closer). They
// are no harness.Stepper: a PixelCNN carries no state from pixel to pixel,
// so generation re-feeds the prefix (harness.Decoder's re-feeding path) and
// every new pixel reruns the network on the rows up to its own, the
// sequential cost of sampling a PixelCNN (H·W passes, on H·(W+1)/2 rows on
// average) that the image task measures.
//
// # The survey's bug
//
// The survey's PixelCNN is two nn.Conv2d(k, padding=k//2) layers and a 1×1
// output with no masks, so every output reads its own pixel and the ones
// after it: trained on images it learns to copy its input and is no
// autoregressive model at all (its likelihood is meaningless and it cannot
// sample). Both models here mask every spatial convolution (nn.MaskedConv2d,
// the mask applied on every forward pass), and the tests check by
// perturbation that no prediction reads its own or a later pixel.
package pixelcnn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"arbench/harness"
	"arbench/nn"
	"arbench/plugins/internal/lm"
)

// Family names, as registered.
const (
	FamilyPixelCNN = "pixelcnn"
	FamilyGated    = "gated-pixelcnn"
)

func init() {
	harness.RegisterModel(FamilyPixelCNN, "PixelCNN over binary images in raster order (mask-A conv, residual mask-B blocks; has a blind spot)", NewPixelCNN)
	harness.RegisterModel(FamilyGated, "Gated PixelCNN over binary images (vertical and horizontal stacks, gated units, no blind spot)", NewGated)
}

// The image framing's vocabulary (tasks/image): the pixel values and the
// start token.
const (
	// Vocab is the vocabulary size both models need.
	Vocab = 3
	// Start is the start token, never predicted.
	Start = 2
)

// NoMass is the logit of the start token: a finite stand-in for −∞ whose
// probability, e^−10000, is 0 in float32 (as the bernoulli baseline's).
const NoMass = -1e4

// tokenValues maps tokens to pixel values: 0 → 0, 1 → 1, Start → 0.
var tokenValues = []float32{0, 1, 0}

// Config is the configuration of both families.
type Config struct {
	// Height and Width are the image shape H×W; both 0 (the default) make
	// the image square with side √SeqLen of the task's rows.
	Height int `yaml:"height"`
	Width  int `yaml:"width"`
	// Channels is the width of the hidden feature maps: the residual
	// stream of pixelcnn (2h in the paper's Fig. 5; its blocks work at
	// channels/2, so it must be even) and of each stack of gated-pixelcnn
	// (p in the paper's Fig. 2; its gates read 2p maps).
	Channels int `yaml:"channels"`
	// Layers is the number of residual blocks after the first layer (0
	// allowed): mask-B blocks for pixelcnn, gated layers for gated-pixelcnn.
	Layers int `yaml:"layers"`
	// Kernel is the first layer's k×k kernel (odd, at least 3; the paper
	// uses 7).
	Kernel int `yaml:"kernel"`
	// BlockKernel is the kernel of every later layer's masked convolution
	// (odd; the paper uses 3).
	BlockKernel int `yaml:"block_kernel"`

	// gated selects the family's rules (gated-pixelcnn's channels may be odd).
	gated bool
}

// Validate reports every invalid field, named by its YAML key.
func (c *Config) Validate() []error {
	var errs []error
	if c.Height < 0 {
		errs = append(errs, fmt.Errorf("height: must be 0 (square, from the task's rows) or positive, got %d", c.Height))
	}
	if c.Width < 0 {
		errs = append(errs, fmt.Errorf("width: must be 0 (square, from the task's rows) or positive, got %d", c.Width))
	}
	if (c.Height == 0) != (c.Width == 0) {
		errs = append(errs, fmt.Errorf("height and width: set both (an H×W image) or neither (a square image of the task's rows), got %d×%d", c.Height, c.Width))
	}
	switch {
	case c.Channels <= 0:
		errs = append(errs, fmt.Errorf("channels: must be positive, got %d", c.Channels))
	case !c.gated && c.Channels%2 != 0:
		errs = append(errs, fmt.Errorf("channels: must be even (the residual blocks work at channels/2), got %d", c.Channels))
	}
	if c.Layers < 0 {
		errs = append(errs, fmt.Errorf("layers: must be 0 or positive, got %d", c.Layers))
	}
	if c.Kernel < 3 || c.Kernel%2 == 0 {
		errs = append(errs, fmt.Errorf("kernel: must be odd and at least 3 (a masked first layer keeps no tap of a 1×1 kernel), got %d", c.Kernel))
	}
	if c.BlockKernel < 1 || c.BlockKernel%2 == 0 {
		errs = append(errs, fmt.Errorf("block_kernel: must be odd and positive, got %d", c.BlockKernel))
	}
	return errs
}

// FieldRows is the number of rows above a pixel that its prediction reads
// (the receptive field's height above the pixel's row): kernel/2 for the
// first layer and block_kernel/2 for each later one, in both families (see
// gatedNet's receptive field; plainNet's 1×1 layers add none).
func (c *Config) FieldRows() int { return c.Kernel/2 + c.Layers*(c.BlockKernel/2) }

// shape returns the image shape for rows of seqLen pixels, or an error
// saying why they make no image.
func (c *Config) shape(seqLen int) (h, w int, err error) {
	if c.Height > 0 && c.Width > 0 {
		if c.Height > seqLen || c.Width > seqLen || c.Height*c.Width != seqLen {
			return 0, 0, fmt.Errorf("height and width: a %d×%d image has %d pixels, but the task's rows have %d", c.Height, c.Width, c.Height*c.Width, seqLen)
		}
		return c.Height, c.Width, nil
	}
	if c.Height != 0 || c.Width != 0 {
		return 0, 0, errors.New("height and width: set both or neither") // Validate says more
	}
	side := int(math.Sqrt(float64(seqLen)))
	for side*side > seqLen {
		side--
	}
	for (side+1)*(side+1) <= seqLen {
		side++
	}
	if seqLen <= 0 || side*side != seqLen {
		return 0, 0, fmt.Errorf("the task's rows of %d pixels are no square image (√%d is not an integer); set height and width", seqLen, seqLen)
	}
	return side, side, nil
}

// network is what the two families differ in: a map from images x
// [B,1,H,W] to one logit per pixel [B,1,H,W], every output (i,j) reading
// only pixels before (i,j) in raster order.
type network interface {
	forward(g nn.Graph, x nn.Tensor) nn.Tensor
}

// Model is a PixelCNN of either family.
type Model struct {
	*lm.Base
	family string
	cfg    Config
	// h and w are the image shape, set by Setup.
	h, w int
	net  network
	// gen holds NextLogProbsAt's executables (position.go).
	gen *positionExecs
}

var (
	_ harness.Model           = (*Model)(nil)
	_ harness.Trainer         = (*Model)(nil)
	_ harness.Scorer          = (*Model)(nil)
	_ harness.Distributioner  = (*Model)(nil)
	_ harness.ContextLimiter  = (*Model)(nil)
	_ harness.EnvChecker      = (*Model)(nil)
	_ harness.MemoryEstimator = (*Model)(nil)
	_ io.Closer               = (*Model)(nil)
	_ harness.Config          = (*Config)(nil)
	_ lm.Net                  = (*Model)(nil)
)

// NewPixelCNN returns a fresh, unconfigured pixelcnn: 32 channels, 4
// residual blocks, a 7×7 first layer and 3×3 blocks.
func NewPixelCNN() harness.Model {
	return &Model{family: FamilyPixelCNN, cfg: Config{Channels: 32, Layers: 4, Kernel: 7, BlockKernel: 3}}
}

// NewGated returns a fresh, unconfigured gated-pixelcnn: 16 channels per
// stack, 4 gated layers after the first, a 7×7 first layer and 3×3 later
// ones. (Its convolutions have 2·channels outputs, so with half
// pixelcnn's channels it costs about as much per pixel: on 28×28 images,
// two CPU cores, a sampled image at batch 1 takes about 0.7 s with
// pixelcnn's defaults and 1.5 s with these.)
func NewGated() harness.Model {
	return &Model{family: FamilyGated, cfg: Config{Channels: 16, Layers: 4, Kernel: 7, BlockKernel: 3, gated: true}}
}

// Config returns the configuration to decode into.
func (m *Model) Config() harness.Config { return &m.cfg }

// Info describes the model.
func (m *Model) Info() harness.ModelInfo {
	return harness.ModelInfo{Family: m.family, Params: m.Params().Count()}
}

// ImageShape returns the image's height and width (0, 0 before Setup).
func (m *Model) ImageShape() (h, w int) { return m.h, m.w }

// MaxContext is the number of pixels, H·W: rows are at most one image.
// Before Setup it is the configured height·width, or 0 (unbounded) when
// the image is square and not yet known.
func (m *Model) MaxContext() int {
	if m.h > 0 {
		return m.h * m.w
	}
	return max(m.cfg.Height, 0) * max(m.cfg.Width, 0)
}

// CheckEnv reports what env asks that the model cannot do: besides
// lm.CheckEnv, a vocabulary other than the image framing's 3 tokens, and
// rows that are not an image of the configured (or a square) shape. Setup
// checks the same.
func (m *Model) CheckEnv(env harness.Env) []error {
	errs := lm.CheckEnv(env)
	if env.Vocab != Vocab && env.Vocab > 0 {
		errs = append(errs, fmt.Errorf("the task's vocabulary has %d tokens, but %s models binary images framed as tokens 0 and 1 (pixel values) and 2 (the start token), a vocabulary of %d, as the image task frames them", env.Vocab, m.family, Vocab))
	}
	// An invalid height or width is Validate's to report.
	c := &m.cfg
	if env.SeqLen >= 0 && c.Height >= 0 && c.Width >= 0 && (c.Height == 0) == (c.Width == 0) {
		if _, _, err := c.shape(env.SeqLen); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Setup allocates the parameters with PyTorch's default initialisation
// (nn.Conv2d.Init) for the image shape of env.
func (m *Model) Setup(_ context.Context, env harness.Env) error {
	if err := lm.CheckSetup(m.family, m.cfg.Validate(), m.CheckEnv(env), env.Backend != nil); err != nil {
		return err
	}
	h, w, err := m.cfg.shape(env.SeqLen)
	if err != nil {
		return fmt.Errorf("%s: %w", m.family, err)
	}
	ps := nn.NewParamSet()
	rng := nn.NewRNG(env.Seed)
	if m.cfg.gated {
		m.net = newGatedNet(ps, rng, &m.cfg)
	} else {
		m.net = newPlainNet(ps, rng, &m.cfg)
	}
	m.h, m.w = h, w
	if m.gen != nil {
		m.gen.close()
	}
	m.gen = &positionExecs{backend: env.Backend, params: ps, execs: map[[2]int]*positionExec{}}
	m.Base = &lm.Base{}
	m.Base.Init(m.family, env.Backend, ps, Vocab, m)
	return nil
}

// Logits maps ids [B·T] to the image, runs the network on the first
// ⌈T/W⌉ rows and returns the logits (0, ℓ_t, NoMass) of positions
// 0 … T−1, [B·T, 3] (see the package comment).
func (m *Model) Logits(g nn.Graph, ids nn.Tensor, B, T int, _ bool) nn.Tensor {
	W := m.w
	N := m.h * W
	if T < 1 || T > N {
		panic(fmt.Sprintf("%s: %d positions, want 1 … %d (a %d×%d image)", m.family, T, N, m.h, W))
	}
	rows := (T + W - 1) / W
	n := rows * W // pixels the network reads
	vals := g.Reshape(g.Gather(g.Const(tokenValues, Vocab, 1), ids), B, T)
	// Pixel j is token j+1. With T = 1 there is no pixel yet; token 0's
	// value stands at pixel 0, which position 0 does not read.
	px := vals
	if T > 1 {
		px = g.Slice(vals, 1, 1, T)
	}
	if k := px.Shape()[1]; k < n {
		px = g.Concat(1, px, g.Const(make([]float32, B*(n-k)), B, n-k))
	}
	l := g.Reshape(m.net.forward(g, g.Reshape(px, B, 1, rows, W)), B, n)
	if T < n {
		l = g.Slice(l, 1, 0, T)
	}
	l = g.Reshape(l, B*T, 1)
	noMass := make([]float32, B*T)
	for i := range noMass {
		noMass[i] = NoMass
	}
	return g.Concat(1, g.Const(make([]float32, B*T), B*T, 1), l, g.Const(noMass, B*T, 1))
}

// EstimateMemory estimates the model's memory for env without allocating
// it (see lm.Footprint.Estimate for the bytes; memory.go for the counts).
func (m *Model) EstimateMemory(env harness.Env) harness.MemoryEstimate {
	h, w := m.cfg.Height, m.cfg.Width
	if hh, ww, err := m.cfg.shape(max(env.SeqLen, 0)); err == nil {
		h, w = hh, ww
	}
	return footprint(&m.cfg, h, w, env.Batch).Estimate(env)
}

// outputHead is both families' last stage: ReLU → 1×1 conv (out1, C→C) →
// ReLU → 1×1 conv (out2, C→1), the per-pixel Bernoulli logit.
type outputHead struct{ out1, out2 *nn.Conv2d }

// newOutputHead adds out1.* and out2.* to ps, initialised from rng.
func newOutputHead(ps *nn.ParamSet, C int, rng *rand.Rand) outputHead {
	h := outputHead{nn.NewConv2d(ps, "out1", C, C, 1), nn.NewConv2d(ps, "out2", C, 1, 1)}
	h.out1.Init(rng)
	h.out2.Init(rng)
	return h
}

// forward returns the logits [B,1,H,W] of the features x [B,C,H,W].
func (h outputHead) forward(g nn.Graph, x nn.Tensor) nn.Tensor {
	return h.out2.Forward(g, g.ReLU(h.out1.Forward(g, g.ReLU(x))))
}
