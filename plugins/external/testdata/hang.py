"""hang.py: a plugin whose score never answers, for the Go client's timeout tests.

- describe: family "hang", capabilities score only.
- init: params = 0 (answers at once).
- score: sleeps forever (time.sleep in a loop); it must be killed.
"""

import os
import sys
import time

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import Model, serve  # noqa: E402


class Hang(Model):
    family = "hang"

    def init(self, config, env, seed):
        return 0

    def score(self, batch):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    serve(Hang())
