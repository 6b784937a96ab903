"""uniform.py: the uniform distribution over env.vocab, for the Go client's tests.

Run from the repository root as `python3 plugins/external/testdata/uniform.py` (imports the SDK
from python/ in this repository).

- describe: family "uniform", capabilities score and next_logprobs only (no train_step: arbench
  evaluates it untrained); deterministic true.
- init: ignores plugin_config; params = 0.
- score: [B, T] log(1/V) at every target >= 0, 0 where the target is -1.
- next_logprobs: [B, T, V] log(1/V) everywhere.
- every other method (train_step, start, step, save, load): -32601 method not found.
"""

import array
import math
import os
import sys

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import Model, serve  # noqa: E402


class Uniform(Model):
    family = "uniform"
    deterministic = True

    def init(self, config, env, seed):
        self.vocab = env.vocab
        self.lp = -math.log(env.vocab)
        return 0

    def score(self, batch):
        lp = self.lp
        return array.array("f", [lp if t >= 0 else 0.0 for t in batch.targets.data])

    def next_logprobs(self, inputs):
        return array.array("f", [self.lp]) * (inputs.size * self.vocab)


if __name__ == "__main__":
    serve(Uniform())
