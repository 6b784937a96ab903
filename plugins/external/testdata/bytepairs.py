"""bytepairs.py: a model with a tokenizer of its own, for the Go client's tests of
tokenizer-independent scoring.

Run from the repository root as `python3 plugins/external/testdata/bytepairs.py` (imports the SDK
from python/ in this repository).

- describe: family "bytepairs", capabilities score_text only; deterministic true.
- init: ignores plugin_config; params = 0.
- score_text: tokenizes each text into byte pairs (a trailing odd byte is a token of its own) and
  scores every token uniformly over its 65536 (or 256) values: total nats = pairs·ln 65536 +
  odd·ln 256, exactly 8 bits per byte whatever the text.
"""

import math
import os
import sys

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import Model, serve  # noqa: E402


class BytePairs(Model):
    family = "bytepairs"
    deterministic = True

    def init(self, config, env, seed):
        return 0

    def score_text(self, texts):
        return [len(t) // 2 * math.log(65536) + len(t) % 2 * math.log(256) for t in texts]


serve(BytePairs())
