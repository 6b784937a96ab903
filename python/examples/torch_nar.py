#!/usr/bin/env python3
"""The survey's non-autoregressive Transformer as an arbench plugin, in PyTorch:
a conditional masked language model (CMLM) decoded with mask-predict
(Ghazvininejad et al. 2019, "Mask-Predict: Parallel Decoding of Conditional
Masked Language Models").

Architecture, weight names, training loss and decoding are those of arbench's
Go `nar` model (plugins/nar), so a file it saves with `-save-weights` loads
here with `load`, and a file saved here loads there:

    src_embedding = nn.Embedding(V, dim)            # token 0 is the source pad
    src_pos       = nn.Embedding(context, dim)
    encoder.layers[i] = nn.TransformerEncoderLayer(dim, heads, ff or 4*dim, dropout, batch_first=True)
    tgt_embedding = nn.Embedding(V + 1, dim)        # row V is [MASK]
    tgt_pos       = nn.Embedding(context, dim)
    decoder.layers[i] = nn.TransformerDecoderLayer(dim, heads, ff or 4*dim, dropout, batch_first=True)
    fc            = nn.Linear(dim, V)               # [MASK] is never predicted
    length_head   = nn.Linear(dim, 2*max_offset + 1)

state_dict names: src_embedding.weight, src_pos.weight,
encoder.layers.{i}.{self_attn.*,linear1,linear2,norm1,norm2}.*, tgt_embedding.weight,
tgt_pos.weight, decoder.layers.{i}.{self_attn.*,multihead_attn.*,linear1,linear2,
norm1,norm2,norm3}.*, fc.{weight,bias}, length_head.{weight,bias}.

The model. The encoder reads the source (each row's tokens before its first
0, the pad, masked as keys). The decoder sees N target positions, each an
observed token or [MASK], with no causal mask, and predicts every masked one
independently, P(y_j | X, Y_obs). A row's target sequence is its scored
targets: the content tokens and then the task's end token, which the model
predicts as an ordinary token (it never reads the decoder inputs `inputs`,
and `translate` does not use `start`). [MASK] is id V, an extra row of the
target embedding, as in the Go model (the seq2seq tasks also reserve their
token 5 for a mask, but a plugin cannot count on every task doing so).
The length N is predicted before decoding by a linear head over the mean of
the encoder output over the source tokens: it classifies the offset
N - |source|, clipped to [-max_offset, max_offset], into 2*max_offset+1
classes (fairseq's cmlm with pred_length_offset).

train_step (Sec. 2): per row, k is drawn uniformly from 1..N and k of its
N positions uniformly without replacement are replaced by [MASK]; the loss is

    L = mean over the batch's masked positions of -log P(y_j | X, Y_obs)
        + length_loss_weight * mean over rows of -log P(offset | X),

reported before the update (it is the CMLM's training objective; a CMLM
has no left-to-right likelihood, so the plugin does not declare `score`, as
the Go nar model is no Scorer). The masks come from the step's `seed`
(torch.Generator), as does dropout; then global-norm clipping with `clip`
and torch.optim.Adam with `lr`, as in _torchlm.Trainer.

translate (Sec. 3): the length_beam most probable lengths N (|source| +
offset, clipped to [1, min(max_len, context)]), or options.length when it is
positive, are decoded in parallel with mask-predict in T passes: pass 1
predicts every position; after pass t < T the n = floor(N*(T-t)/T) positions
of lowest probability are masked again (ties: the lower position first) and
pass t+1 predicts them. A pass that would re-mask nothing in any row is
skipped, so a row of N < T tokens takes 1 + T - ceil(T/N) passes (as in
the Go decoding.MaskPredict). Among a source's candidates the one of
highest mean log-probability wins (the more probable length on ties). The
output is cut before its first end token (not with a forced length).
`passes` is the number of decoder passes run over the batch (T whenever a
candidate has N >= T; the encoder's single run is not counted), `lengths`
the chosen N per source (end token included), `stats` {"length_candidates":
rows decoded}. T is the setting's ("T=4": 4) or `iterations` for "".

Experiment entry (the command runs in arbench's working directory, here the
repository root):

    models:
      - name: ext
        label: torch-nar
        config:
          command: [/usr/bin/python3, python/examples/torch_nar.py, --sweep-iterations, "1,2,4,10"]
          plugin_config: {dim: 128, heads: 4, layers: 2, context: 128, iterations: 4}

plugin_config (the Go nar Config's yaml names and defaults, plus the
optimiser settings the protocol does not carry):

    dim                 model width                                   default 128
    heads               attention heads, dividing dim                 default 4
    layers              blocks of the encoder and of the decoder each default 2
    ff                  feed-forward width, 0 for 4*dim               default 0
    context             learned positions of the source and of the target:
                        the longest source and the longest output (end
                        token included)                               default 128
    dropout             as in PyTorch's Transformer layers, training only  default 0
    max_offset          M: the predicted offset N - |source| lies in [-M, M]   default 16
    length_loss_weight  the length cross-entropy's weight             default 0.1
    length_beam         lengths decoded per source (<= 2M+1)          default 1
    iterations          mask-predict's T for the setting ""           default 1
    early_stop          freeze a candidate after a pass (the second or
                        later) that changed none of its tokens        default false
    sweep_iterations    the T of the decode settings "T=1", "T=2", ...: see below
    lr, beta1, beta2, eps, weight_decay   as in torch_rnn.py

`describe` comes before `init`, so the plugin declares its decode settings
from the command line: `--sweep-iterations 1,2,4,10` (the default, the Go
model's; "" for none); plugin_config's sweep_iterations, when given, must
be the same list. Each entry k is the setting {"name": "T=k", "params":
{"iterations": k}, "baseline": false}, the Go nar model's names. The Go
model's `semi_ar` and `distill` are not implemented here (refused by name).

What differs from the survey's listing (section 5.1, "非自回归Transformer"),
and why:

- The listing's lines are run together (not valid Python).
- Its forward(x) maps the source through one encoder stack to one output
  token per source position: the output always has the source's length and
  is a position-wise function of the source, and nothing tells the model
  which target it is producing. A translation's length is not its source's
  (seq2seq/copy-noisy's targets are shorter, add's sums can be longer), so
  the target gets its own side: an encoder over the source, a decoder over
  the N target positions with cross-attention to it, and a length head that
  predicts N (trained with weight length_loss_weight = 0.1).
- One pass predicts every position independently (the conditional
  independence that makes one-pass NAR outputs mix several valid targets,
  Gu et al. 2018). The decoder's inputs are the target with [MASK] at the
  positions to predict, trained with the CMLM's random masking, so that
  mask-predict can refine the least confident tokens over T passes; T=1 is
  the survey's single parallel pass.
- It has no positional information: a Transformer without positions is
  permutation-equivariant (it cannot reverse, and an all-[MASK] target
  would be the same token everywhere). Learned positions src_pos and
  tgt_pos are added.
- Its layers use PyTorch's default (sequence, batch, dim) layout while the
  inputs are (batch, sequence) ids, so attention would run across the rows
  of the batch: batch_first=True.
- No padding masks: sources of different lengths attended to their pads.
  The source pads (token 0) and the targets' padding are masked as keys, and
  the length head pools over the source tokens only.
- nhead=8 and num_layers=6 are hard-wired (and embedding_dim must be a
  multiple of 8); they are configurable here (heads, layers, ff, dim, the Go
  model's defaults). nn.TransformerEncoder deep-copies its one layer, so all
  six started with identical weights; every layer is initialised on its own
  here (a ModuleList named encoder.layers / decoder.layers, the names
  nn.TransformerEncoder would give).
- nn.TransformerEncoderLayer's default dropout is 0.1 (the Go model's and
  this plugin's default is 0, configurable).
- No training objective or decoding is given: the CMLM loss and mask-predict
  above.
What the listing gets right and keeps: all positions are predicted in
parallel under no causal mask (the decoder here has none either), and the
shape embedding -> Transformer stack -> linear over the vocabulary.

Needs PyTorch (Debian's python3-torch is /usr/bin/python3's); without it
the script prints one line saying so and exits with status 2.
"""

import argparse
import math
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

DEFAULT_SWEEP = (1, 2, 4, 10)  # the Go nar model's sweep_iterations
MAX_ITERATIONS = 1000          # the Go model's bounds
MAX_OFFSET_CAP = 1 << 16


class _Stack(nn.Module):
    """A list of independently initialised layers (`encoder.layers.{i}`,
    `decoder.layers.{i}` in the state_dict)."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class CMLM(nn.Module):
    """The conditional masked language model (see the module doc): the Go nar
    model's PyTorch twin, with identical state_dict names."""

    def __init__(self, vocab_size, dim, heads, layers, ff, context, max_offset, dropout=0.0):
        super().__init__()
        self.vocab_size, self.mask_id = vocab_size, vocab_size
        self.src_embedding = nn.Embedding(vocab_size, dim)
        self.src_pos = nn.Embedding(context, dim)
        self.encoder = _Stack([
            nn.TransformerEncoderLayer(dim, heads, ff, dropout, batch_first=True) for _ in range(layers)])
        self.tgt_embedding = nn.Embedding(vocab_size + 1, dim)  # row V is [MASK]
        self.tgt_pos = nn.Embedding(context, dim)
        self.decoder = _Stack([
            nn.TransformerDecoderLayer(dim, heads, ff, dropout, batch_first=True) for _ in range(layers)])
        self.fc = nn.Linear(dim, vocab_size)
        self.length_head = nn.Linear(dim, 2 * max_offset + 1)

    def encode(self, src, src_pad):
        """src [B,S] ids, src_pad [B,S] True at padding -> (memory [B,S,d],
        length logits [B,2M+1] over the mean of memory across the source tokens)."""
        S = src.shape[1]
        x = self.src_embedding(src) + self.src_pos(torch.arange(S))
        for layer in self.encoder.layers:
            x = layer(x, src_key_padding_mask=src_pad)
        keep = (~src_pad).to(x.dtype).unsqueeze(-1)
        pooled = (x * keep).sum(1) / keep.sum(1)
        return x, self.length_head(pooled)

    def decode(self, tgt, tgt_pad, memory, src_pad):
        """tgt [R,T] ids ([MASK] = V where masked), tgt_pad [R,T] True at
        padding -> logits [R,T,V]; no causal mask: every position sees every
        other."""
        T = tgt.shape[1]
        y = self.tgt_embedding(tgt) + self.tgt_pos(torch.arange(T))
        for layer in self.decoder.layers:
            y = layer(y, memory, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        return self.fc(y)


def remask_count(N, T, t):
    """The linear schedule: positions masked again after pass t of T in a row
    of N (tensor N), floor(N*(T-t)/T) in integers; 0 after the last pass."""
    return N * (T - t) // T


def mask_predict(predict, lengths, iterations, mask, early_stop=False):
    """Mask-predict over rows of the given lengths (a list of ints >= 0), as
    the Go decoding.MaskPredict does it. predict(tokens [R,L], pad [R,L]) is
    one decoder pass returning (pred [R,L] long, logp [R,L]): the chosen token
    and its log-probability at every position; tokens holds `mask` at the
    masked positions (and at padding). Returns (tokens [R,L], logp [R,L],
    confidence [R] float64, calls): the outputs, their log-probabilities as
    last predicted, their mean (0 for an empty row) and the decoder passes run.
    A pass is run only while some row has a position to predict."""
    if iterations < 1:
        raise ValueError("mask-predict: iterations %d < 1" % iterations)
    R = len(lengths)
    L = max(lengths, default=0)
    n = torch.tensor(lengths, dtype=torch.long).reshape(R)
    pos = torch.arange(L)
    valid = pos.unsqueeze(0) < n.unsqueeze(1)
    tokens = torch.full((R, L), mask, dtype=torch.long)
    logp = torch.zeros(R, L)
    masked = valid.clone()
    calls = 0
    T = iterations
    for t in range(1, T + 1):
        active = masked.any(1)
        if not bool(active.any()):
            break
        pred, lp = predict(torch.where(masked, torch.full_like(tokens, mask), tokens), ~valid)
        calls += 1
        bad = masked & (torch.isnan(lp) | (lp == math.inf))
        if bool(bad.any()):
            r, j = (int(v) for v in bad.nonzero()[0])
            raise ValueError("mask-predict: pass %d: row %d, position %d: log-probability %s"
                             % (t, r, j, float(lp[r, j])))
        changed = ((pred != tokens) & masked).any(1)
        tokens = torch.where(masked, pred, tokens)
        logp = torch.where(masked, lp.to(logp.dtype), logp)
        k = remask_count(n, T, t) if t < T else torch.zeros_like(n)
        if early_stop and t > 1:
            k = torch.where(changed, k, torch.zeros_like(k))
        k = torch.where(active, k, torch.zeros_like(k))
        # Mask the k lowest-probability positions of each row; the stable
        # sort masks the lower position first on ties; padding never.
        order = torch.sort(logp.masked_fill(~valid, math.inf), dim=1, stable=True).indices
        rank = torch.empty_like(order).scatter_(1, order, pos.expand(R, L).contiguous())
        masked = rank < k.unsqueeze(1)
    total = (logp.double() * valid).sum(1)
    confidence = torch.where(n > 0, total / n.clamp(min=1), torch.zeros_like(total))
    return tokens, logp, confidence, calls


def setting_name(T):
    return "T=%d" % T


def decode_settings(sweep):
    return [{"name": setting_name(T), "params": {"iterations": T}, "baseline": False} for T in sweep]


def sweep_errors(field, xs):
    """The first invalid entry of a swept list, as the Go model words it."""
    seen = {}
    for i, x in enumerate(xs):
        if isinstance(x, float) and x.is_integer():
            x = int(x)
        if isinstance(x, bool) or not isinstance(x, int):
            return ConfigError("%s[%d]" % (field, i), "must be an integer, got %r" % (x,))
        if not 1 <= x <= MAX_ITERATIONS:
            return ConfigError("%s[%d]" % (field, i), "must be in [1, %d], got %d" % (MAX_ITERATIONS, x))
        if x in seen:
            return ConfigError("%s[%d]" % (field, i), "%d repeats %s[%d]" % (x, field, seen[x]))
        seen[x] = i
    return None


FIELDS = dict(
    dim=(int, 128),
    heads=(int, 4),
    layers=(int, 2),
    ff=(int, 0),
    context=(int, 128),
    dropout=(float, 0.0),
    max_offset=(int, 16),
    length_loss_weight=(float, 0.1),
    length_beam=(int, 1),
    iterations=(int, 1),
    early_stop=(bool, False),
    sweep_iterations=(list, None),
    **_torchlm.OPTIMISER_FIELDS,
)

# The Go nar model's fields this plugin does not implement.
UNSUPPORTED = {
    "semi_ar": "semi-autoregressive decoding is not implemented by this plugin (the Go nar model has it)",
    "distill": "sequence-level distillation is not implemented by this plugin (the Go nar model has it)",
}


def _option(options, name, default=None):
    if isinstance(options, dict):
        return options.get(name, default)
    return getattr(options, name, default)


class TorchNAR(Model):
    family = "torch-nar"
    runtime = _torchlm.runtime()
    conditional = True
    decode_settings = decode_settings(DEFAULT_SWEEP)  # set from --sweep-iterations before serve()

    def init(self, config, env, seed):
        for name, why in UNSUPPORTED.items():
            if name in config:
                raise ConfigError(name, why)
        cfg = _torchlm.check_config(config, FIELDS)
        declared = [s["params"]["iterations"] for s in type(self).decode_settings]
        if cfg["sweep_iterations"] is None:
            cfg["sweep_iterations"] = declared
        else:
            err = sweep_errors("sweep_iterations", cfg["sweep_iterations"])
            if err is not None:
                raise err
            cfg["sweep_iterations"] = [int(x) for x in cfg["sweep_iterations"]]
            if cfg["sweep_iterations"] != declared:
                raise ConfigError("sweep_iterations", "%s differs from the decode settings %s the plugin declared "
                                  "(its --sweep-iterations, default %s): give both the same list"
                                  % (cfg["sweep_iterations"], declared, ",".join(map(str, DEFAULT_SWEEP))))
        _torchlm.positive(cfg, "dim", "heads", "layers", "context")
        if cfg["dim"] % cfg["heads"]:
            raise ConfigError("heads", "%d does not divide dim %d" % (cfg["heads"], cfg["dim"]))
        if cfg["ff"] < 0:
            raise ConfigError("ff", "must be 0 (4·dim) or positive, got %d" % cfg["ff"])
        _torchlm.dropout_ok(cfg)
        M = cfg["max_offset"]
        if not 0 <= M <= MAX_OFFSET_CAP:
            raise ConfigError("max_offset", "must be in [0, %d], got %d" % (MAX_OFFSET_CAP, M))
        w = cfg["length_loss_weight"]
        if not (w >= 0 and math.isfinite(w)):
            raise ConfigError("length_loss_weight", "must be a finite number >= 0, got %r" % w)
        if cfg["length_beam"] < 1:
            raise ConfigError("length_beam", "must be positive, got %d" % cfg["length_beam"])
        if cfg["length_beam"] > 2 * M + 1:
            raise ConfigError("length_beam", "%d exceeds the %d length classes (2·max_offset+1)"
                              % (cfg["length_beam"], 2 * M + 1))
        if not 1 <= cfg["iterations"] <= MAX_ITERATIONS:
            raise ConfigError("iterations", "must be in [1, %d], got %d" % (MAX_ITERATIONS, cfg["iterations"]))
        _torchlm.check_optimiser(cfg)
        source_len = getattr(env, "source_len", 0)
        target_len = getattr(env, "target_len", 0)
        if source_len <= 0:
            raise ValueError("the task has no source sequence (it is no conditional task: env.source_len is 0); "
                             "torch-nar is a conditional model and needs one")
        if source_len > cfg["context"]:
            raise ConfigError("context", "%d is shorter than the task's sources of %d tokens; set context: >= %d"
                              % (cfg["context"], source_len, source_len))
        if target_len > cfg["context"]:
            raise ConfigError("context", "%d is shorter than the task's targets of %d tokens (end token included); "
                              "set context: >= %d" % (cfg["context"], target_len, target_len))
        self.cfg, self.vocab = cfg, env.vocab
        self.iterations = {s["name"]: s["params"]["iterations"] for s in type(self).decode_settings}
        self.meta = _torchlm.metadata(self.family, cfg, env)
        torch.manual_seed(seed)  # PyTorch's default initialisation, from the run's seed
        self.model = CMLM(env.vocab, cfg["dim"], cfg["heads"], cfg["layers"], cfg["ff"] or 4 * cfg["dim"],
                          cfg["context"], M, cfg["dropout"])
        self.trainer = _torchlm.Trainer(self.model, cfg)  # its Adam and fixed lr; the step is below
        return _torchlm.count_params(self.model)

    # --- inputs ------------------------------------------------------------------------------

    def _sources(self, arr, name):
        """A [B,S] source Array -> (ids [B,S'], pad [B,S'] True at padding, lens [B]): each row
        cut at its first 0, the width the longest row's."""
        src = _torchlm.ids(arr, name, self.vocab)
        B = src.shape[0]
        if B == 0:
            raise ValueError("%s: empty batch" % name)
        is_pad = src == 0
        lens = torch.where(is_pad.any(1), is_pad.int().argmax(1), torch.full((B,), src.shape[1]))
        if bool((lens == 0).any()):
            raise ValueError("%s: row %d is empty (a source needs at least one token before its 0 pad)"
                             % (name, int((lens == 0).nonzero()[0])))
        S = int(lens.max())
        if S > self.cfg["context"]:
            raise ValueError("%s: sources of %d tokens exceed the context of %d positions" % (name, S, self.cfg["context"]))
        pad = torch.arange(S).unsqueeze(0) >= lens.unsqueeze(1)
        return src[:, :S].masked_fill(pad, 0), pad, lens

    def _targets(self, arr):
        """Each row's target sequence, its scored targets (a non-empty prefix of the row):
        (ids [B,T] with -1 after a row's end, lens [B])."""
        y = _torchlm.ids(arr, "targets", self.vocab, targets=True)
        scored = y >= 0
        lens = scored.sum(1)
        prefix = torch.arange(y.shape[1]).unsqueeze(0) < lens.unsqueeze(1)
        if not torch.equal(scored, prefix):
            i = int((scored != prefix).any(1).nonzero()[0])
            raise ValueError("targets: row %d scores a position after an unscored one; a target sequence "
                             "must be a prefix of the row" % i)
        if bool((lens == 0).any()):
            raise ValueError("targets: row %d has no scored target" % int((lens == 0).nonzero()[0]))
        T = int(lens.max())
        if T > self.cfg["context"]:
            raise ValueError("targets: %d tokens exceed the context of %d positions" % (T, self.cfg["context"]))
        return y[:, :T], lens

    def _length_class(self, n, src_len):
        M = self.cfg["max_offset"]
        return (n - src_len).clamp(-M, M) + M

    # --- training ----------------------------------------------------------------------------

    def train_step(self, batch, step, lr, clip, seed):
        src, src_pad, src_len = self._sources(batch.source, "source")
        y, N = self._targets(batch.targets)
        if src.shape[0] != y.shape[0]:
            raise ValueError("%d source rows for %d target rows" % (src.shape[0], y.shape[0]))
        B, T = y.shape
        model = self.model
        model.train()
        gen = torch.Generator().manual_seed(seed)  # this step's masks
        valid = torch.arange(T).unsqueeze(0) < N.unsqueeze(1)
        k = (torch.rand(B, generator=gen, dtype=torch.float64) * N).long().clamp(max=N - 1) + 1  # uniform in 1..N
        scores = torch.rand(B, T, generator=gen).masked_fill(~valid, 2.0)
        rank = scores.argsort(1).argsort(1)
        masked = rank < k.unsqueeze(1)  # k positions uniformly without replacement
        tgt = torch.where(masked | ~valid, torch.full_like(y, model.mask_id), y)
        torch.manual_seed(seed)  # this step's dropout
        self.trainer.opt.zero_grad(set_to_none=False)
        memory, length_logits = model.encode(src, src_pad)
        logp = torch.log_softmax(model.decode(tgt, ~valid, memory, src_pad), dim=-1)
        tok = -(logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1) * masked).sum() / masked.sum()
        length = nn.functional.cross_entropy(length_logits, self._length_class(N, src_len))
        loss = tok + self.cfg["length_loss_weight"] * length
        self.last_losses = (float(tok.detach()), float(length.detach()))
        value = float(loss.detach())
        if not math.isfinite(value):
            return value
        loss.backward()
        if clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
            if not math.isfinite(norm):
                print("gradient norm is %s: diverged, no update" % norm, file=sys.stderr)
                return float("nan")
        for group in self.trainer.opt.param_groups:
            group["lr"] = self.trainer.fixed_lr if self.trainer.fixed_lr is not None else lr
        self.trainer.opt.step()
        return value

    # --- decoding ----------------------------------------------------------------------------

    def _candidates(self, length_logp, src_len, beam, max_n):
        """Up to beam distinct lengths |source| + offset clipped to [1, max_n], most probable
        first (the lower class on ties)."""
        M = self.cfg["max_offset"]
        order = torch.sort(length_logp, descending=True, stable=True).indices.tolist()
        out = []
        for c in order:
            n = min(max(src_len + c - M, 1), max_n)
            if n not in out:
                out.append(n)
                if len(out) == beam:
                    break
        return out

    @torch.no_grad()
    def translate(self, sources, options):
        length = int(_option(options, "length", 0) or 0)
        max_len = int(_option(options, "max_len", 0) or 0)
        end = _option(options, "end", 2)
        setting = _option(options, "setting", "") or ""
        if length < 0:
            raise ValueError("translate: output length %d < 0" % length)
        if length == 0 and max_len < 1:
            raise ValueError("translate: maximum output length %d < 1" % max_len)
        if setting == "":
            T = self.cfg["iterations"]
        elif setting in self.iterations:
            T = self.iterations[setting]
        else:
            raise ConfigError("setting", "no decoding setting %r; known settings: %s"
                              % (setting, ", ".join(self.iterations) or "none (sweep_iterations is empty)"))
        context = self.cfg["context"]
        if length > context:
            raise ValueError("translate: output length %d exceeds the context of %d positions" % (length, context))
        model = self.model
        model.eval()
        src, src_pad, src_len = self._sources(sources, "sources")
        memory, length_logits = model.encode(src, src_pad)
        length_logp = torch.log_softmax(length_logits, dim=-1)
        max_n = min(max_len, context)
        row_src, lengths = [], []
        for i in range(src.shape[0]):
            cands = [length] if length > 0 else self._candidates(
                length_logp[i], int(src_len[i]), self.cfg["length_beam"], max_n)
            row_src += [i] * len(cands)
            lengths += cands
        rows = torch.tensor(row_src, dtype=torch.long)
        mem, mem_pad = memory[rows], src_pad[rows]

        def predict(tokens, pad):
            logp = torch.log_softmax(model.decode(tokens, pad, mem, mem_pad), dim=-1)
            best, tok = logp.max(-1)
            return tok, best

        tokens, _, confidence, calls = mask_predict(predict, lengths, T, model.mask_id, self.cfg["early_stop"])
        outputs, chosen, best = [], [], {}
        for r, i in enumerate(row_src):
            if i not in best or confidence[r] > confidence[best[i]]:
                best[i] = r
        for i in range(src.shape[0]):
            r = best[i]
            toks = tokens[r, :lengths[r]].tolist()
            if length == 0 and end in toks:
                toks = toks[:toks.index(end)]
            outputs.append(toks)
            chosen.append(lengths[r])
        return {"outputs": outputs, "passes": calls, "lengths": chosen,
                "stats": {"length_candidates": len(row_src)}}

    def save(self, path):
        _torchlm.save_weights(self.model, path, self.meta)

    def load(self, path):
        _torchlm.load_weights(self.model, path)


def _sweep_arg(text):
    text = text.strip()
    if not text:
        return []
    try:
        xs = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("want comma-separated integers, got %r" % text) from None
    err = sweep_errors("--sweep-iterations", xs)
    if err is not None:
        raise argparse.ArgumentTypeError(str(err))
    return xs


def main(argv=None):
    ap = argparse.ArgumentParser(description="arbench plugin: a non-autoregressive Transformer (CMLM, mask-predict) in PyTorch")
    ap.add_argument("--sweep-iterations", type=_sweep_arg, default=list(DEFAULT_SWEEP),
                    help="mask-predict iterations of the declared decode settings, comma-separated "
                         "(default %s; '' for none)" % ",".join(map(str, DEFAULT_SWEEP)))
    args = ap.parse_args(argv)
    TorchNAR.decode_settings = decode_settings(args.sweep_iterations)
    serve(TorchNAR())


if __name__ == "__main__":
    main()
