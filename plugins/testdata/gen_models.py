#!/usr/bin/python3
"""Generate PyTorch reference fixtures for the rnn, lstm and transformer
plugins: the documented PyTorch modules, their state_dicts and the
log-probabilities they assign, so the Go tests prove that the same weights
give the same log-probabilities in arbench and in PyTorch.

The Go tests read only the committed files. Regenerate from the repository
root with Debian's CPU PyTorch (torch 1.13):

    apt-get install -y python3-torch
    /usr/bin/python3 plugins/testdata/gen_models.py

For each plugin <p> it writes plugins/<p>/testdata/reference.weights.safetensors
(the state_dict, exactly as safetensors.torch.save_file would store it) and
plugins/<p>/testdata/reference.io.safetensors (ids [B,T] int64, logp [B,T,V]
float32 = log_softmax of the logits, plus the model sizes in __metadata__).
"""

import importlib.util
import os

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Reuse the pure-Python safetensors writer of nn/testdata/gen_reference.py.
_spec = importlib.util.spec_from_file_location(
    "gen_reference", os.path.join(ROOT, "..", "nn", "testdata", "gen_reference.py"))
_ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ref)


def save(plugin, name, tensors, metadata=None):
    out = os.path.join(ROOT, plugin, "testdata")
    os.makedirs(out, exist_ok=True)
    _ref.OUT = out
    _ref.save(name, tensors, metadata)


class RecurrentLM(nn.Module):
    """The survey's RNNGenerator (embedding -> RNN/LSTM -> linear)."""

    def __init__(self, cell, V, E, H, layers):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        self.rnn = cell(E, H, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(H, V)

    def forward(self, ids):
        out, _ = self.rnn(self.embedding(ids))
        return self.fc(out)


class TransformerLM(nn.Module):
    """Decoder-only Transformer as documented in plugins/transformer."""

    def __init__(self, V, d, heads, layers, ctx):
        super().__init__()
        self.embedding = nn.Embedding(V, d)
        self.pos = nn.Embedding(ctx, d)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0, batch_first=True),
            layers, enable_nested_tensor=False)
        self.fc = nn.Linear(d, V)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embedding(ids) + self.pos(torch.arange(T))
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        return self.fc(self.encoder(x, mask=mask))


def randomize(module, gen):
    # Larger-than-default weights so that every term matters in the check.
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)


def emit(plugin, model, V, B, T, meta, gen):
    randomize(model, gen)
    model.eval()
    ids = torch.randint(0, V, (B, T), generator=gen)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids), dim=-1)
    save(plugin, "reference.weights.safetensors", dict(model.state_dict()))
    save(plugin, "reference.io.safetensors", {"ids": ids, "logp": logp},
         {k: str(v) for k, v in meta.items()})


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    V, B, T = 11, 3, 7
    emit("rnn", RecurrentLM(nn.RNN, V, 5, 6, 1), V, B, T,
         dict(vocab=V, embed=5, hidden=6, layers=1), gen)
    emit("lstm", RecurrentLM(nn.LSTM, V, 5, 6, 2), V, B, T,
         dict(vocab=V, embed=5, hidden=6, layers=2), gen)
    emit("transformer", TransformerLM(V, 8, 2, 2, 10), V, B, T,
         dict(vocab=V, dim=8, heads=2, layers=2, context=10), gen)


if __name__ == "__main__":
    main()
