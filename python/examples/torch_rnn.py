#!/usr/bin/env python3
"""The survey's RNN generator as an arbench plugin, in PyTorch.

Architecture and weight names are those of arbench's Go `rnn` and `lstm`
models (plugins/internal/recurrent), so a file they save with
`-save-weights` loads here with `load`, and a file saved here loads there:

    embedding = nn.Embedding(V, embed)
    rnn       = nn.RNN(embed, hidden, num_layers=layers, batch_first=True)  # or nn.LSTM (gates i,f,g,o)
    fc        = nn.Linear(hidden, V)

state_dict names: embedding.weight, rnn.{weight_ih,weight_hh,bias_ih,bias_hh}_l{k}, fc.{weight,bias}.

Experiment entry (the command runs in arbench's working directory, here the repository root):

    models:
      - name: ext
        label: torch-lstm
        config:
          command: [/usr/bin/python3, python/examples/torch_rnn.py]
          plugin_config: {cell: lstm, embed: 64, hidden: 256, layers: 1}

plugin_config (the Go rnn/lstm Config's yaml names and defaults, plus the
optimiser settings the protocol does not carry):

    cell     rnn | lstm                  default rnn
    embed    embedding width E           default 64
    hidden   hidden width H              default 256
    layers   stacked recurrent layers    default 1
    dropout  between layers and on the last layer's outputs, training only
             (Zaremba et al. 2014, as the Go model)   default 0
    lr       a constant learning rate instead of arbench's schedule (the lr
             each train_step sends)      default: arbench's
    beta1, beta2, eps, weight_decay      torch.optim.Adam's, default 0.9, 0.999, 1e-8, 0

train_step is arbench's own step: mean cross-entropy over the targets >= 0,
global-norm clipping with `clip`, then Adam with `lr` (see _torchlm.Trainer).
start/step carry the recurrent state (h, or (h, c) for the LSTM), one token
per step, so generation costs one position per token as in the Go model.

What differs from the survey's listing (section 2.1), and why:

- The listing is printed with its lines run together (`import torch.nn as
  nnclass RNNGenerator...`), which is not valid Python; the class below
  restores them, otherwise keeping the survey's names and structure
  (embedding -> rnn -> fc, forward(x, hidden) -> (logits, hidden)).
- forward's `hidden` had no default, so every caller had to pass None
  explicitly to start from the zero state; it now defaults to None.
- The survey has one nn.RNN layer only; `cell` and `num_layers` add the
  LSTM and stacking of arbench's rnn/lstm models, and `dropout` their
  between-layer/output dropout. With cell="rnn", num_layers=1, dropout=0
  the module is exactly the survey's.
The survey's model itself is right: the module's logits are turned into
log-probabilities with log_softmax here, as a language model's should be.
"""

import sys

try:
    import torch
except Exception as exc:  # noqa: BLE001 - any failure to import torch means "no PyTorch here"
    msg = "this example needs PyTorch: apt-get install python3-torch (or pip install torch)"
    if not isinstance(exc, ModuleNotFoundError):
        msg += " (import torch failed: %s)" % " ".join(str(exc).split())
    sys.stderr.write(msg + "\n")
    sys.exit(2)

from torch import nn

import _torchlm
from _torchlm import ConfigError
from arbench_plugin import Model, serve


class RNNGenerator(nn.Module):
    """The survey's RNNGenerator: embedding -> RNN (or LSTM) -> linear.

    Fixed relative to the survey (see the module doc): the line breaks its
    listing lost, and `hidden` defaults to None (the zero state). Added: the
    cell, layers and dropout of arbench's Go rnn/lstm models."""

    def __init__(self, vocab_size, embedding_dim, hidden_dim, cell="rnn", num_layers=1, dropout=0.0):
        super(RNNGenerator, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        rnn = {"rnn": nn.RNN, "lstm": nn.LSTM}[cell]
        # nn.RNN's dropout acts between layers only (and warns with one layer).
        self.rnn = rnn(embedding_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                       dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)  # on the last layer's outputs; no parameters
        self.fc = nn.Linear(hidden_dim, vocab_size)

    def forward(self, x, hidden=None):  # fixed: the survey's `hidden` had no default
        embeds = self.embedding(x)
        out, hidden = self.rnn(embeds, hidden)
        out = self.fc(self.drop(out))
        return out, hidden


FIELDS = dict(
    cell=(str, "rnn"),
    embed=(int, 64),
    hidden=(int, 256),
    layers=(int, 1),
    dropout=(float, 0.0),
    **_torchlm.OPTIMISER_FIELDS,
)


class _State:
    """A generation state: the recurrent state after the tokens seen so far."""

    __slots__ = ("hidden",)

    def __init__(self, hidden):
        self.hidden = hidden


class TorchRNN(Model):
    family = "torch-rnn"
    runtime = _torchlm.runtime()

    def init(self, config, env, seed):
        cfg = _torchlm.check_config(config, FIELDS)
        if cfg["cell"] not in ("rnn", "lstm"):
            raise ConfigError("cell", "must be rnn or lstm, got %r" % cfg["cell"])
        _torchlm.positive(cfg, "embed", "hidden", "layers")
        _torchlm.dropout_ok(cfg)
        _torchlm.check_optimiser(cfg)
        self.cfg, self.vocab = cfg, env.vocab
        self.meta = _torchlm.metadata(self.family, cfg, env)
        torch.manual_seed(seed)  # PyTorch's default initialisation, from the run's seed
        self.model = RNNGenerator(env.vocab, cfg["embed"], cfg["hidden"], cfg["cell"],
                                  cfg["layers"], cfg["dropout"])
        self.trainer = _torchlm.Trainer(self.model, cfg)
        return _torchlm.count_params(self.model)

    def _logits(self, x):
        return self.model(x)[0]

    def train_step(self, batch, step, lr, clip, seed):
        x = _torchlm.ids(batch.inputs, "inputs", self.vocab)
        y = _torchlm.ids(batch.targets, "targets", self.vocab, targets=True)
        if x.shape[1] == 0:
            return 0.0
        return self.trainer.step(self._logits, x, y, lr, clip, seed)

    @torch.no_grad()
    def _logprobs(self, x):
        self.model.eval()
        B, T = x.shape
        if T == 0:
            return torch.zeros(B, 0, self.vocab)
        return torch.log_softmax(self._logits(x), dim=-1)

    def score(self, batch):
        x = _torchlm.ids(batch.inputs, "inputs", self.vocab)
        y = _torchlm.ids(batch.targets, "targets", self.vocab, targets=True)
        return _torchlm.pick(self._logprobs(x), y)

    def next_logprobs(self, inputs):
        return self._logprobs(_torchlm.ids(inputs, "inputs", self.vocab))

    @torch.no_grad()
    def start(self, prompts):
        self.model.eval()
        logits, hidden = self.model(_torchlm.ids(prompts, "prompts", self.vocab))
        return _State(hidden), torch.log_softmax(logits[:, -1], dim=-1)

    @torch.no_grad()
    def step(self, state, tokens):
        self.model.eval()
        x = _torchlm.ids(tokens, "tokens", self.vocab).unsqueeze(1)  # [B, 1]
        logits, state.hidden = self.model(x, state.hidden)
        return torch.log_softmax(logits[:, -1], dim=-1)

    def save(self, path):
        _torchlm.save_weights(self.model, path, self.meta)

    def load(self, path):
        _torchlm.load_weights(self.model, path)


if __name__ == "__main__":
    serve(TorchRNN())
