#!/usr/bin/python3
"""Generate PyTorch reference fixtures for arbench/nn's Conv2d and
MaskedConv2d with every mask type (nn/conv.go, checked by
nn/conv_test.go).

Run from the repository root with the system Python that Debian's CPU
PyTorch installs into (see gen_reference.py, whose writer and run_case this
script reuses):

    apt-get install -y python3-torch      # torch 1.13 for /usr/bin/python3
    /usr/bin/python3 nn/testdata/gen_conv.py

and commit the resulting nn/testdata/conv.*.safetensors. The output is
deterministic for a given torch version (fixed seed, CPU, float32).

Files:

  conv.weights.safetensors  the state_dict of five layers, keys
                            conv.<layer>.weight and conv.<layer>.bias:
                              plain  nn.Conv2d(2, 3, 3, padding=1)
                              pad0   nn.Conv2d(2, 3, 3, padding=0)
                              pad2   nn.Conv2d(2, 3, 3, padding=2)
                              maskA  MaskedConv2d("A", 1, 4, 7)
                              maskB  MaskedConv2d("B", 4, 3, 5)
  conv.io.safetensors       inputs x [2,2,5,4], xa [2,1,7,6], xb [2,4,6,5];
                            outputs out (plain on x), out_pad0, out_pad2
                            (on x), out_a (maskA on xa), out_b (maskB on
                            xb), out_ab (maskB on maskA's output on xa);
                            cotangents r.<output>; grad.conv.<layer>.<param>
                            and grad.input.<input> of
                            L = sum_k sum(out_k * r.<out_k>)
  conv.masks.safetensors    the masks <type><k> [k,k] for the types A, B,
                            VA, VB, HA, HB and k = 3, 5, 7 (A3, ..., HB7)
  convstack.weights.safetensors
                            the Gated PixelCNN's stacks (Stacks below), keys
                            convstack.<layer>.weight and .bias:
                              va  MaskedConv2d("VA", 1, 4, 5)
                              ha  MaskedConv2d("HA", 1, 4, 5)
                              vb  MaskedConv2d("VB", 4, 3, 3)
                              hb  MaskedConv2d("HB", 4, 3, 3)
  convstack.io.safetensors  inputs xa [2,1,6,5], xb [2,4,5,6]; outputs
                            out_va, out_ha (on xa), out_vb, out_hb (on xb),
                            out_vv (vb on va's output), out_hh (hb on ha's
                            output); cotangents and gradients as for conv

Every weight is drawn from U(-0.5, 0.5), the masked taps included (they
must be ignored, not assumed zero), then maskA's weight is scaled by 0.5
and maskB's by 0.25 (the stacks': va and ha by 0.5, vb and hb by 0.25).
The stacks are drawn from their own generator after the conv case, so
adding them left the conv fixtures unchanged.
"""

import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.dont_write_bytecode = True  # no __pycache__ next to the fixtures
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_reference import randomize, run_case, save  # noqa: E402


def pixelcnn_mask(mask_type, k):
    """The k x k mask of a masked convolution, written from each mask's
    definition (not as a run of taps, as nn/conv.go computes it).

    A, B: PixelCNN (van den Oord et al. 2016, Fig. 2): ones above the
    centre row and left of the centre in it; the centre is 1 for B only.
    VA, VB: the Gated PixelCNN's vertical stack: every row above the
    centre row, all columns; VB adds the whole centre row.
    HA, HB: its horizontal stack: the centre row left of the centre; HB
    adds the centre."""
    c = k // 2
    mask = torch.zeros(k, k)
    if mask_type in ("A", "B"):
        mask[:c, :] = 1
        mask[c, :c + (mask_type == "B")] = 1
    elif mask_type in ("VA", "VB"):
        mask[:c + (mask_type == "VB"), :] = 1
    elif mask_type in ("HA", "HB"):
        mask[c, :c + (mask_type == "HB")] = 1
    else:
        raise ValueError(mask_type)
    return mask


class MaskedConv2d(nn.Conv2d):
    """The PyTorch twin of nn.MaskedConv2d: the mask multiplies the weight
    on every forward pass and is a non-persistent buffer, so the state_dict
    holds only weight and bias."""

    def __init__(self, mask_type, cin, cout, k):
        super().__init__(cin, cout, k, padding=k // 2)
        self.register_buffer("mask", pixelcnn_mask(mask_type, k), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class Layers(nn.Module):
    def __init__(self):
        super().__init__()
        self.plain = nn.Conv2d(2, 3, 3, padding=1)
        self.pad0 = nn.Conv2d(2, 3, 3, padding=0)
        self.pad2 = nn.Conv2d(2, 3, 3, padding=2)
        self.maskA = MaskedConv2d("A", 1, 4, 7)
        self.maskB = MaskedConv2d("B", 4, 3, 5)


class Stacks(nn.Module):
    def __init__(self):
        super().__init__()
        self.va = MaskedConv2d("VA", 1, 4, 5)
        self.ha = MaskedConv2d("HA", 1, 4, 5)
        self.vb = MaskedConv2d("VB", 4, 3, 3)
        self.hb = MaskedConv2d("HB", 4, 3, 3)


def forward_stacks(m, xa, xb):
    va, ha = m.va(xa), m.ha(xa)
    return {
        "out_va": va,
        "out_ha": ha,
        "out_vb": m.vb(xb),
        "out_hb": m.hb(xb),
        "out_vv": m.vb(va),
        "out_hh": m.hb(ha),
    }


def forward(m, x, xa, xb):
    a = m.maskA(xa)
    return {
        "out": m.plain(x),
        "out_pad0": m.pad0(x),
        "out_pad2": m.pad2(x),
        "out_a": a,
        "out_b": m.maskB(xb),
        "out_ab": m.maskB(a),
    }


def main():
    torch.manual_seed(20240611)
    gen = torch.Generator().manual_seed(4321)
    layers = Layers()
    assert list(layers.state_dict()) == [
        f"{n}.{p}" for n in ("plain", "pad0", "pad2", "maskA", "maskB") for p in ("weight", "bias")]
    # U(-0.5, 0.5) everywhere, masked taps included: they must not matter.
    randomize(layers, gen)
    # Smaller masked weights and xb keep the gradients of the masked layers
    # (sums over every position and tap, out_ab adding to both) near 10, so
    # that float32 rounding in another summation order stays well inside
    # the Go tests' absolute 1e-5.
    with torch.no_grad():
        layers.maskA.weight.mul_(0.5)
        layers.maskB.weight.mul_(0.25)
    inputs = {
        "x": torch.randn(2, 2, 5, 4, generator=gen),
        "xa": torch.randn(2, 1, 7, 6, generator=gen),
        "xb": 0.5 * torch.randn(2, 4, 6, 5, generator=gen),
    }
    run_case("conv", layers, inputs, forward, gen, input_grads=("x", "xa", "xb"))
    save("conv.masks.safetensors",
         {f"{t}{k}": pixelcnn_mask(t, k) for t in ("A", "B", "VA", "VB", "HA", "HB") for k in (3, 5, 7)})

    gen = torch.Generator().manual_seed(8765)
    stacks = Stacks()
    assert list(stacks.state_dict()) == [f"{n}.{p}" for n in ("va", "ha", "vb", "hb") for p in ("weight", "bias")]
    randomize(stacks, gen)
    with torch.no_grad():
        stacks.va.weight.mul_(0.5)
        stacks.ha.weight.mul_(0.5)
        stacks.vb.weight.mul_(0.25)
        stacks.hb.weight.mul_(0.25)
    inputs = {
        "xa": torch.randn(2, 1, 6, 5, generator=gen),
        "xb": 0.5 * torch.randn(2, 4, 5, 6, generator=gen),
    }
    run_case("convstack", stacks, inputs, forward_stacks, gen, input_grads=("xa", "xb"))


if __name__ == "__main__":
    main()
