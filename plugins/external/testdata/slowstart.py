"""slowstart.py: a uniform plugin that is slow to start, for the Go client's startup_timeout tests.

- before reading any request: sleeps ARBENCH_TEST_SLEEP seconds (a float, default 5), as a slow
  interpreter start or heavy imports would; describe is answered only after that.
- then like uniform.py: describe family "slowstart", capabilities score and next_logprobs,
  deterministic true; init params 0; score [B, T] log(1/V) (0 where the target is -1);
  next_logprobs [B, T, V] log(1/V).
"""

import array
import math
import os
import sys
import time

time.sleep(float(os.environ.get("ARBENCH_TEST_SLEEP", "5")))

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import Model, serve  # noqa: E402


class SlowStart(Model):
    family = "slowstart"
    deterministic = True

    def init(self, config, env, seed):
        self.vocab = env.vocab
        self.lp = -math.log(env.vocab)
        return 0

    def score(self, batch):
        return array.array("f", [self.lp if t >= 0 else 0.0 for t in batch.targets.data])

    def next_logprobs(self, inputs):
        return array.array("f", [self.lp]) * (inputs.size * self.vocab)


if __name__ == "__main__":
    serve(SlowStart())
