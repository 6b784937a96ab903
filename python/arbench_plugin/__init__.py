"""arbench_plugin: write an arbench model plugin in Python.

arbench starts the plugin as a child process and talks JSON-RPC 2.0 over its standard input and
output, one message per line (plugins/external/PROTOCOL.md). This package runs that loop; a
model is a :class:`Model` subclass and one call to :func:`serve`::

    import math
    from arbench_plugin import Model, serve

    class Unigram(Model):
        family = "unigram"

        def init(self, config, env, seed):
            self.counts = [1.0] * env.vocab
            return env.vocab                                  # number of parameters

        def train_step(self, batch, step, lr, clip, seed):
            targets = [t for t in batch.targets.data if t >= 0]
            loss = sum(-self.logp(t) for t in targets) / max(len(targets), 1)
            for t in targets:
                self.counts[t] += 1
            return loss                                       # mean NLL before the update

        def score(self, batch):
            return [[self.logp(t) if t >= 0 else 0.0 for t in row] for row in batch.targets.tolist()]

        def logp(self, t):
            return math.log(self.counts[t] / sum(self.counts))

    serve(Unigram())

Standard library only; Python 3.9 or later.
"""

from .arrays import Array, ArrayError, as_array, decode_array, encode_array
from .model import Batch, ConfigError, Env, Model
from .server import MAX_STATES, PROTOCOL_VERSION, serve

__version__ = "0.1.0"

__all__ = [
    "Array", "ArrayError", "Batch", "ConfigError", "Env", "MAX_STATES", "Model", "PROTOCOL_VERSION",
    "as_array", "decode_array", "encode_array", "serve", "__version__",
]
