#!/usr/bin/python3
"""Generate PyTorch reference fixtures for the pixelcnn and gated-pixelcnn
plugins (plugins/pixelcnn, checked by TestPixelCNNMatchesPyTorch): the
PyTorch twins of the doc comments (plain.go, gated.go), the language-model
wrapper of Model.Logits, their state_dicts and the next-token
log-probabilities they assign to framed binary images.

Regenerate from the repository root with Debian's CPU PyTorch (torch 1.13):

    apt-get install -y python3-torch
    /usr/bin/python3 plugins/pixelcnn/testdata/gen_reference.py

For each family it writes plugins/pixelcnn/testdata/<family>/
reference.weights.safetensors (the state_dict) and reference.io.safetensors
(ids [B,T] int64: the start token 2 and the first N-1 pixels of B random
5x6 images, and full-length T = N = 30 rows; logp [B,T,3] float32; the
sizes in __metadata__). Weights are PyTorch's default initialisation, whose
masked taps are non-zero too (they must be ignored), with the biases drawn
from U(-0.5, 0.5) so that they matter.
"""

import importlib.util
import os

import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# The safetensors writer of nn/testdata/gen_reference.py and the masked
# convolution (every mask type) of nn/testdata/gen_conv.py.
_ref = _load("gen_reference", os.path.join(ROOT, "nn", "testdata", "gen_reference.py"))
_conv = _load("gen_conv", os.path.join(ROOT, "nn", "testdata", "gen_conv.py"))
MaskedConv2d = _conv.MaskedConv2d

NO_MASS = -1e4  # pixelcnn.NoMass


class Block(nn.Module):
    def __init__(self, C, kb):
        super().__init__()
        self.reduce = nn.Conv2d(C, C // 2, 1)
        self.conv = MaskedConv2d("B", C // 2, C // 2, kb)
        self.expand = nn.Conv2d(C // 2, C, 1)

    def forward(self, y):
        r = self.reduce(F.relu(y))
        return y + self.expand(F.relu(self.conv(F.relu(r))))


class PixelCNN(nn.Module):
    def __init__(self, C, L, k, kb):
        super().__init__()
        self.input = MaskedConv2d("A", 1, C, k)
        self.blocks = nn.ModuleList(Block(C, kb) for _ in range(L))
        self.out1 = nn.Conv2d(C, C, 1)
        self.out2 = nn.Conv2d(C, 1, 1)

    def forward(self, x):
        y = self.input(x)
        for b in self.blocks:
            y = b(y)
        return self.out2(F.relu(self.out1(F.relu(y))))


def gate(z):
    f, g = z.chunk(2, 1)
    return torch.tanh(f) * torch.sigmoid(g)


class GatedLayer(nn.Module):
    def __init__(self, cin, C, k, first):
        super().__init__()
        self.first = first
        self.v = MaskedConv2d("VA" if first else "VB", cin, 2 * C, k)
        self.h = MaskedConv2d("HA" if first else "HB", cin, 2 * C, k)
        self.link = nn.Conv2d(2 * C, 2 * C, 1)
        self.out = nn.Conv2d(C, C, 1)

    def forward(self, v, h):
        zv = self.v(v)
        zh = self.h(h) + self.link(zv)
        ho = self.out(gate(zh))
        return gate(zv), ho if self.first else h + ho


class GatedPixelCNN(nn.Module):
    def __init__(self, C, L, k, kb):
        super().__init__()
        self.layers = nn.ModuleList(
            [GatedLayer(1, C, k, True)] + [GatedLayer(C, C, kb, False) for _ in range(L)])
        self.out1 = nn.Conv2d(C, C, 1)
        self.out2 = nn.Conv2d(C, 1, 1)

    def forward(self, x):
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.out2(F.relu(self.out1(F.relu(h))))


def lm_logits(net, ids, H, W):
    """Model.Logits: ids [B,T] (T <= H*W) -> logits [B,T,3]."""
    B, T = ids.shape
    x = torch.zeros(B, H * W)
    x[:, :T - 1] = (ids[:, 1:] == 1).float()
    l = net(x.view(B, 1, H, W)).view(B, H * W)[:, :T]
    return torch.stack([torch.zeros_like(l), l, torch.full_like(l, NO_MASS)], -1)


def main():
    H, W, C, L, k, kb, B = 5, 6, 6, 2, 5, 3, 3
    for family, seed, net in (("pixelcnn", 1, PixelCNN), ("gated", 2, GatedPixelCNN)):
        torch.manual_seed(20240612 + seed)
        gen = torch.Generator().manual_seed(seed)
        model = net(C, L, k, kb)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(".bias"):
                    p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
        pixels = torch.randint(0, 2, (B, H * W), generator=gen)
        ids = torch.cat([torch.full((B, 1), 2), pixels[:, :-1]], 1)
        with torch.no_grad():
            logp = F.log_softmax(lm_logits(model, ids, H, W), -1)
        out = os.path.join(HERE, family)
        os.makedirs(out, exist_ok=True)
        _ref.OUT = out
        _ref.save("reference.weights.safetensors", dict(model.state_dict()))
        _ref.save("reference.io.safetensors", {"ids": ids.to(torch.int64), "logp": logp},
                  {"vocab": "3", "height": str(H), "width": str(W), "channels": str(C),
                   "layers": str(L), "kernel": str(k), "block_kernel": str(kb)})


if __name__ == "__main__":
    main()
