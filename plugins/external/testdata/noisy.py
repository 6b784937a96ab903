"""noisy.py: a working uniform model that writes to stdout and stderr, for the Go client's tests.

The SDK must keep the protocol stream clean: everything below that targets standard output ends
up on standard error.

- describe: family "noisy", capabilities score and next_logprobs; deterministic true.
- init: print("noisy: init ...") to stdout; two lines to stderr; params = 0.
- score: print("noisy: score ...") and sys.stdout.write(...) to stdout, os.write(1, ...) to file
  descriptor 1 (as a C extension would), one line to stderr; result [B, T] log(1/V), 0 where the
  target is -1.
- next_logprobs: print(...) to stdout; result [B, T, V] log(1/V).
"""

import math
import os
import sys

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import Model, serve  # noqa: E402


class Noisy(Model):
    family = "noisy"
    deterministic = True

    def init(self, config, env, seed):
        print("noisy: init vocab=%d (print to stdout)" % env.vocab)
        sys.stderr.write("noisy: stderr line 1\n")
        sys.stderr.write("noisy: stderr line 2\n")
        self.vocab = env.vocab
        self.lp = -math.log(env.vocab)
        return 0

    def score(self, batch):
        print("noisy: score %s (print to stdout)" % (list(batch.inputs.shape),))
        sys.stdout.write("noisy: sys.stdout.write\n")
        sys.stdout.flush()
        os.write(1, b"noisy: os.write(1)\n")
        sys.stderr.write("noisy: scoring\n")
        return [[self.lp if t >= 0 else 0.0 for t in row] for row in batch.targets.tolist()]

    def next_logprobs(self, inputs):
        print("noisy: next_logprobs (print to stdout)")
        b, t = inputs.shape
        return [[[self.lp] * self.vocab for _ in range(t)] for _ in range(b)]


if __name__ == "__main__":
    serve(Noisy())
