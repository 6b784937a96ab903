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
