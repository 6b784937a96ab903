"""reverser.py: a conditional test plugin that solves seq2seq/reverse exactly, for the Go
client's tests of conditional models.

Run from the repository root as `python3 plugins/external/testdata/reverser.py` (imports the SDK
from python/ in this repository).

- describe: family "reverser", conditional, capabilities train_step and translate; decode settings
  "T=1" (the baseline) and "T=2"; deterministic true.
- train_step: checks that the batch has a source with as many rows as the inputs; returns
  1/step (a falling loss); learns nothing.
- translate: outputs each source (pads, token 0, removed) reversed; with length > 0, the reversed
  source cut or repeated to exactly length tokens. passes: 1 for T=1 (and ""), 2 for T=2; lengths:
  each output's length plus the end token.
"""

import os
import sys

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import Model, serve  # noqa: E402


class Reverser(Model):
    family = "reverser"
    deterministic = True
    conditional = True
    decode_settings = ({"name": "T=1", "params": {"iterations": 1}, "baseline": True},
                       {"name": "T=2", "params": {"iterations": 2}})

    def init(self, config, env, seed):
        return 0

    def train_step(self, batch, step, lr, clip, seed):
        if batch.source is None or batch.source.shape[0] != batch.inputs.shape[0]:
            raise ValueError("a batch without its source")
        return 1.0 / step

    def translate(self, sources, options):
        outputs = []
        for row in sources.tolist():
            out = [t for t in row if t != 0][::-1]
            if options.length:
                out = ((out or [3]) * options.length)[:options.length]
            outputs.append(out)
        return {"outputs": outputs, "passes": 2 if options.setting == "T=2" else 1,
                "lengths": [len(o) + 1 for o in outputs]}


serve(Reverser())
