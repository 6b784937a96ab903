"""unigram.py: a working plugin with every capability, for the Go client's tests.

Run from the repository root as `python3 plugins/external/testdata/unigram.py`; it imports the SDK
from python/ in this repository (no install needed).

A unigram model: p(t) = counts[t] / sum(counts), the same distribution at every position.

- describe: family "unigram", capabilities train_step, score, next_logprobs, step, save, load;
  deterministic true, max_context 0, flops_per_token 0.
- init: plugin_config {"smoothing": float > 0} (default 1.0; any other key, or a smoothing that
  is not a positive number, is refused with -32602 naming the field); counts start at smoothing
  for every token; params = vocab.
- train_step: loss = mean -log p(target) over targets >= 0 *before* the update, then every scored
  target's count grows by 1 (lr, clip and seed are ignored), so the loss goes down on a skewed
  distribution from the second step on. A target >= vocab fails with -32000.
- score: [B, T] log p(target), 0 where the target is -1 (returned as nested lists).
- next_logprobs: [B, T, V] the same log-distribution at every position (a flat array.array).
- start: state = {"rows": B, "length": P}; logprobs [B, V] = the distribution in every row.
  step: the state's length grows by one; logprobs [B, V] as for start.
- save: a safetensors file at path with one F64 tensor "counts" [V] (metadata family=unigram);
  load: reads it back (exact round trip); a file of another vocab fails with -32000.
"""

import array
import json
import math
import os
import struct
import sys

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import ConfigError, Model, serve  # noqa: E402


class Unigram(Model):
    family = "unigram"
    runtime = "pure Python"
    deterministic = True

    def init(self, config, env, seed):
        for key in config:
            if key != "smoothing":
                raise ConfigError(key, "unknown field (unigram accepts: smoothing)")
        smoothing = config.get("smoothing", 1.0)
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not smoothing > 0 \
                or math.isinf(smoothing):
            raise ConfigError("smoothing", "want a positive number, got %r" % (smoothing,))
        self.vocab = env.vocab
        self.counts = [float(smoothing)] * env.vocab
        self._refresh()
        return env.vocab

    def _refresh(self):
        total = math.fsum(self.counts)
        self.logp = [math.log(c / total) for c in self.counts]

    def _check(self, tokens):
        for t in tokens:
            if t >= self.vocab:
                raise ValueError("token %d out of range (vocab %d)" % (t, self.vocab))

    def train_step(self, batch, step, lr, clip, seed):
        targets = [t for t in batch.targets.data if t >= 0]
        self._check(targets)
        if not targets:
            return 0.0
        loss = -math.fsum(self.logp[t] for t in targets) / len(targets)
        for t in targets:
            self.counts[t] += 1.0
        self._refresh()
        return loss

    def score(self, batch):
        self._check(batch.targets.data)
        lp = self.logp
        return [[lp[t] if t >= 0 else 0.0 for t in row] for row in batch.targets.tolist()]

    def next_logprobs(self, inputs):
        b, t = inputs.shape
        return array.array("f", self.logp) * (b * t)

    def start(self, prompts):
        self._check(prompts.data)
        rows, length = prompts.shape
        return {"rows": rows, "length": length}, [self.logp] * rows

    def step(self, state, tokens):
        self._check(tokens.data)
        state["length"] += 1
        return [self.logp] * state["rows"]

    def save(self, path):
        data = struct.pack("<%dd" % self.vocab, *self.counts)
        header = json.dumps({
            "__metadata__": {"family": "unigram"},
            "counts": {"dtype": "F64", "shape": [self.vocab], "data_offsets": [0, len(data)]},
        }, separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + data)

    def load(self, path):
        with open(path, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        info = json.loads(raw[8:8 + n])["counts"]
        if info["dtype"] != "F64" or info["shape"] != [self.vocab]:
            raise ValueError("%s: counts %s %s, want F64 [%d]" % (path, info["dtype"], info["shape"], self.vocab))
        lo, hi = info["data_offsets"]
        self.counts = list(struct.unpack("<%dd" % self.vocab, raw[8 + n + lo:8 + n + hi]))
        self._refresh()


if __name__ == "__main__":
    serve(Unigram())
