"""crash.py: a plugin that crashes in its 3rd train_step, for the Go client's tests.

- describe: family "crash", capabilities train_step and score.
- init: params = 0.
- train_step, calls 1 and 2: loss log(V) (a uniform model).
- train_step, call 3: prints the traceback of a raised ValueError("boom at step 3") to stderr and
  exits at once with status 3 (os._exit(3): no response is written).
- score: [B, T] log(1/V), 0 where the target is -1.
"""

import math
import os
import sys
import traceback

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import Model, serve  # noqa: E402


class Crash(Model):
    family = "crash"

    def init(self, config, env, seed):
        self.lp = -math.log(env.vocab)
        self.calls = 0
        return 0

    def train_step(self, batch, step, lr, clip, seed):
        self.calls += 1
        if self.calls == 3:
            try:
                raise ValueError("boom at step 3")
            except ValueError:
                traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            os._exit(3)
        return -self.lp

    def score(self, batch):
        return [[self.lp if t >= 0 else 0.0 for t in row] for row in batch.targets.tolist()]


if __name__ == "__main__":
    serve(Crash())
