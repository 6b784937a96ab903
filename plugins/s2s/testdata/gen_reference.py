#!/usr/bin/python3
"""Generate the PyTorch reference fixture of the transformer-s2s plugin: the
PyTorch twin documented in plugins/s2s/s2s.go with random weights, its
state_dict and the log-probabilities it assigns to a padded batch, so the Go
test (reference_test.go) proves that the same weights give the same
log-probabilities in arbench and in PyTorch.

The Go test reads only the committed files. Regenerate from the repository
root with Debian's CPU PyTorch (torch 1.13):

    apt-get install -y python3-torch
    /usr/bin/python3 plugins/s2s/testdata/gen_reference.py

It writes plugins/s2s/testdata/reference.weights.safetensors (the state_dict)
and reference.io.safetensors: src [B,S] int64 (0 pads), tgt_in [B,T] and
targets [B,T] int64 (-1: not scored) framed as tasks/seq2seq.PadBatch frames
them, logp [B,T,V] float32 = log_softmax of the logits, and the model sizes
in __metadata__.
"""

import importlib.util
import os

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))

# Reuse the pure-Python safetensors writer of nn/testdata/gen_reference.py.
_spec = importlib.util.spec_from_file_location(
    "gen_reference", os.path.join(ROOT, "nn", "testdata", "gen_reference.py"))
_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ref)
_ref.OUT = HERE


class TransformerS2S(nn.Module):
    """The encoder-decoder Transformer as documented in plugins/s2s."""

    def __init__(self, V, d, heads, enc_layers, dec_layers, ff, ctx, dropout=0.0):
        super().__init__()
        self.src_embedding = nn.Embedding(V, d)
        self.src_pos = nn.Embedding(ctx, d)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, heads, ff, dropout, batch_first=True),
            enc_layers, enable_nested_tensor=False)
        self.tgt_embedding = nn.Embedding(V, d)
        self.tgt_pos = nn.Embedding(ctx, d)
        self.decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, heads, ff, dropout, batch_first=True), dec_layers)
        self.fc = nn.Linear(d, V)

    def forward(self, src, tgt_in):
        S, T = src.shape[1], tgt_in.shape[1]
        pad = src == 0
        memory = self.encoder(self.src_embedding(src) + self.src_pos(torch.arange(S)),
                              src_key_padding_mask=pad)
        y = self.tgt_embedding(tgt_in) + self.tgt_pos(torch.arange(T))
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        h = self.decoder(y, memory, tgt_mask=mask, memory_key_padding_mask=pad)
        return self.fc(h)


def main():
    torch.manual_seed(20240610)
    gen = torch.Generator().manual_seed(4321)
    V, d, heads, enc_layers, dec_layers, ff, ctx = 12, 16, 2, 1, 2, 32, 10
    model = TransformerS2S(V, d, heads, enc_layers, dec_layers, ff, ctx)
    # Larger-than-default weights so that every term matters in the check.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
    # Training mode with dropout 0 keeps PyTorch off its fused inference
    # path (which returns 0 at padded encoder positions); the function is
    # the same.
    model.train()

    BOS, EOS = 1, 2
    sources = [[6, 7, 8, 9, 10, 11], [9, 6], [11, 7, 7, 8]]
    targets = [[7, 8, 9, 10], [6], [8, 7, 7]]
    B, S, T = len(sources), max(map(len, sources)), max(map(len, targets)) + 1
    src = torch.zeros(B, S, dtype=torch.int64)
    tgt_in = torch.zeros(B, T, dtype=torch.int64)
    tgt = torch.full((B, T), -1, dtype=torch.int64)
    for i, (s, t) in enumerate(zip(sources, targets)):
        src[i, :len(s)] = torch.tensor(s)
        tgt_in[i, :len(t) + 1] = torch.tensor([BOS] + t)
        tgt[i, :len(t) + 1] = torch.tensor(t + [EOS])
    with torch.no_grad():
        logp = torch.log_softmax(model(src, tgt_in), dim=-1)

    _ref.save("reference.weights.safetensors", dict(model.state_dict()))
    _ref.save("reference.io.safetensors",
              {"src": src, "tgt_in": tgt_in, "targets": tgt, "logp": logp},
              {"vocab": V, "dim": d, "heads": heads, "enc_layers": enc_layers,
               "dec_layers": dec_layers, "ff": ff, "context": ctx,
               "torch": torch.__version__})


if __name__ == "__main__":
    main()
