#!/usr/bin/env python3
"""The survey's causal Transformer decoder as an arbench plugin, in PyTorch.

Architecture and weight names are those of arbench's Go `transformer` model
(plugins/transformer): a decoder-only stack of post-norm self-attention +
feed-forward blocks (nn.TransformerEncoderLayer, ReLU, LayerNorm eps 1e-5)
under a causal mask, with learned positions:

    embedding = nn.Embedding(V, dim)
    pos       = nn.Embedding(context, dim)
    encoder.layers[i] = nn.TransformerEncoderLayer(dim, heads, ff or 4*dim, dropout, batch_first=True)
    fc        = nn.Linear(dim, V)

state_dict names: embedding.weight, pos.weight,
encoder.layers.{i}.self_attn.{in_proj_weight,in_proj_bias,out_proj.weight,out_proj.bias},
encoder.layers.{i}.{linear1,linear2,norm1,norm2}.{weight,bias}, fc.weight, fc.bias;
so weights saved by the Go model load here with `load`, and back.

Experiment entry (the command runs in arbench's working directory, here the repository root):

    models:
      - name: ext
        label: torch-transformer
        config:
          command: [/usr/bin/python3, python/examples/torch_transformer.py, --context, "128"]
          plugin_config: {dim: 128, heads: 4, layers: 2, context: 128}

plugin_config (the Go transformer Config's yaml names and defaults, plus the
optimiser settings the protocol does not carry):

    dim      model width                             default 128
    heads    attention heads, dividing dim           default 4
    layers   blocks                                  default 2
    ff       feed-forward width, 0 for 4*dim         default 0
    context  learned positions: the longest row      default: --context
    dropout  as in nn.TransformerEncoderLayer, training only   default 0
    lr, beta1, beta2, eps, weight_decay              as in torch_rnn.py

`describe` comes before `init`, so the plugin declares its max_context
(= context) from the command line: `--context N` (default 128, the Go
model's); plugin_config's context, when given, must equal it.

start/step keep the tokens seen so far and re-run the whole prefix under the
causal mask for every new token: the survey's generation loop (there is no
key/value cache here, unlike the Go model's default), so a token costs the
whole prefix.

What differs from the survey's listing (section 2.2), and why:

- It stacks nn.TransformerDecoderLayer, whose forward needs `memory` (the
  output of an encoder, for cross-attention); a language model has none,
  and its generate_text passes memory=None, which fails in PyTorch. A
  decoder-only model is a stack of self-attention + feed-forward blocks
  under the causal mask, i.e. nn.TransformerEncoderLayer, as in the Go
  model. The survey's nn.ModuleList of independently initialised layers is
  kept (nn.TransformerEncoder would deep-copy one layer, so that every
  layer started with the same weights); it sits in `encoder` to get the
  Go model's names.
- Its layers use PyTorch's default layout (sequence, batch, dim) while the
  inputs are (batch, sequence) ids, so attention would run across the rows
  of the batch instead of along each row: batch_first=True.
- It has no positional information: besides the causal mask nothing tells
  the model where a token is. Learned positions `pos` are added.
- nn.TransformerDecoderLayer's default dropout is 0.1 (the Go model's and
  this plugin's default is 0, configurable).
- Its generate_text takes logits.argmax(-1).item() over the logits of every
  position ([1, T]; .item() fails once T > 1): the next token comes from the
  last position, logits[:, -1] (see start/step below).
- The listing's lines are run together (not valid Python) and imports F
  without using it.
The survey's mask, generate_tgt_mask, is right and is used unchanged: -inf
above the diagonal, 0 on and below it, added to QK^T/sqrt(d_k) before the
softmax, so position t attends to positions <= t only.
"""

import argparse
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

DEFAULT_CONTEXT = 128


def generate_tgt_mask(size):
    """The survey's causal mask (unchanged): [size, size], -inf where j > i."""
    mask = torch.triu(torch.ones(size, size), diagonal=1)
    mask = mask.masked_fill(mask == 1, float('-inf'))
    return mask


class _Blocks(nn.Module):
    """The survey's layer list; `encoder.layers.{i}` in the state_dict."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, mask):
        for layer in self.layers:
            x = layer(x, src_mask=mask)
        return x


class TransformerDecoder(nn.Module):
    """The survey's TransformerDecoder, decoder-only (see the module doc)."""

    def __init__(self, vocab_size, embedding_dim, num_heads, num_layers, context, ff=0, dropout=0.0):
        super(TransformerDecoder, self).__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        # Fixed: the survey has no positions; learned ones, as the Go model.
        self.pos = nn.Embedding(context, embedding_dim)
        # Fixed: encoder layers (self-attention + feed-forward), not decoder
        # layers that need an encoder's memory; batch_first=True for [B, T]
        # inputs; dropout configurable, default 0 (not PyTorch's 0.1).
        self.encoder = _Blocks([
            nn.TransformerEncoderLayer(d_model=embedding_dim, nhead=num_heads,
                                       dim_feedforward=ff or 4 * embedding_dim,
                                       dropout=dropout, batch_first=True)
            for _ in range(num_layers)])
        self.fc = nn.Linear(embedding_dim, vocab_size)

    def forward(self, x, tgt_mask=None):  # fixed: no `memory` argument (there is no encoder)
        T = x.shape[1]
        if tgt_mask is None:
            tgt_mask = generate_tgt_mask(T)
        x = self.embedding(x) + self.pos(torch.arange(T))
        return self.fc(self.encoder(x, tgt_mask))


FIELDS = dict(
    dim=(int, 128),
    heads=(int, 4),
    layers=(int, 2),
    ff=(int, 0),
    context=(int, None),
    dropout=(float, 0.0),
    **_torchlm.OPTIMISER_FIELDS,
)


class _State:
    """A generation state: the tokens so far, [B, t]."""

    __slots__ = ("ids",)

    def __init__(self, ids):
        self.ids = ids


class TorchTransformer(Model):
    family = "torch-transformer"
    runtime = _torchlm.runtime()
    max_context = DEFAULT_CONTEXT  # set from --context before serve()

    def init(self, config, env, seed):
        cfg = _torchlm.check_config(config, FIELDS)
        if cfg["context"] is None:
            cfg["context"] = self.max_context
        _torchlm.positive(cfg, "dim", "heads", "layers", "context")
        if cfg["dim"] % cfg["heads"]:
            raise ConfigError("heads", "%d does not divide dim %d" % (cfg["heads"], cfg["dim"]))
        if cfg["ff"] < 0:
            raise ConfigError("ff", "must be 0 (4·dim) or positive, got %d" % cfg["ff"])
        if cfg["context"] != self.max_context:
            raise ConfigError("context", "%d differs from the max_context %d the plugin declared (its "
                              "--context, default %d): give both the same value"
                              % (cfg["context"], self.max_context, DEFAULT_CONTEXT))
        if env.seq_len > cfg["context"]:
            raise ConfigError("context", "%d is shorter than the task's rows of %d; set context: >= %d"
                              % (cfg["context"], env.seq_len, env.seq_len))
        _torchlm.dropout_ok(cfg)
        _torchlm.check_optimiser(cfg)
        self.cfg, self.vocab = cfg, env.vocab
        self.meta = _torchlm.metadata(self.family, cfg, env)
        torch.manual_seed(seed)  # PyTorch's default initialisation, from the run's seed
        self.model = TransformerDecoder(env.vocab, cfg["dim"], cfg["heads"], cfg["layers"],
                                        cfg["context"], cfg["ff"], cfg["dropout"])
        self.trainer = _torchlm.Trainer(self.model, cfg)
        return _torchlm.count_params(self.model)

    def train_step(self, batch, step, lr, clip, seed):
        x = _torchlm.ids(batch.inputs, "inputs", self.vocab)
        y = _torchlm.ids(batch.targets, "targets", self.vocab, targets=True)
        if x.shape[1] == 0:
            return 0.0
        return self.trainer.step(self.model, x, y, lr, clip, seed)

    @torch.no_grad()
    def _logprobs(self, x):
        self.model.eval()
        B, T = x.shape
        if T == 0:
            return torch.zeros(B, 0, self.vocab)
        return torch.log_softmax(self.model(x), dim=-1)

    def score(self, batch):
        x = _torchlm.ids(batch.inputs, "inputs", self.vocab)
        y = _torchlm.ids(batch.targets, "targets", self.vocab, targets=True)
        return _torchlm.pick(self._logprobs(x), y)

    def next_logprobs(self, inputs):
        return self._logprobs(_torchlm.ids(inputs, "inputs", self.vocab))

    # The survey's generate_text loop, re-feeding the prefix under the mask; fixed: the next
    # token's distribution is the last position's ([:, -1]), not argmax over every position.
    def start(self, prompts):
        state = _State(_torchlm.ids(prompts, "prompts", self.vocab))
        return state, self._logprobs(state.ids)[:, -1]

    def step(self, state, tokens):
        x = _torchlm.ids(tokens, "tokens", self.vocab).unsqueeze(1)
        if state.ids.shape[1] + 1 > self.cfg["context"]:
            raise ValueError("step: the state already holds %d tokens, the context of %d positions"
                             % (state.ids.shape[1], self.cfg["context"]))
        state.ids = torch.cat([state.ids, x], dim=1)
        return self._logprobs(state.ids)[:, -1]

    def save(self, path):
        _torchlm.save_weights(self.model, path, self.meta)

    def load(self, path):
        _torchlm.load_weights(self.model, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="arbench plugin: the survey's causal Transformer decoder (PyTorch)")
    ap.add_argument("--context", type=int, default=DEFAULT_CONTEXT,
                    help="learned positions, declared as max_context (default %(default)s)")
    args = ap.parse_args(argv)
    if args.context <= 0:
        ap.error("--context must be positive")
    TorchTransformer.max_context = args.context
    serve(TorchTransformer())


if __name__ == "__main__":
    main()
