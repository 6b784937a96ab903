"""What the PyTorch examples share: plugin_config checking, protocol arrays as
tensors, arbench's training step (Adam + global-norm clipping, as the Go
runner does it) and safetensors weights with PyTorch state_dict names.

The examples import this module only after `import torch` succeeded (see
their first lines), so it imports torch at the top.
"""

import json
import math
import os
import sys

import torch

import _safetensors

try:
    import arbench_plugin
except ImportError:  # run from a checkout: the SDK is python/arbench_plugin
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import arbench_plugin

from arbench_plugin import ConfigError

def runtime():
    """What computes the model, for arbench's tables (describe's runtime):
    the PyTorch version, its intra-op threads and its CPU math libraries."""
    libs = [name for name, on in (("MKL", torch.backends.mkl.is_available()),
                                  ("oneDNN", torch.backends.mkldnn.is_available())) if on]
    return "PyTorch %s, %d threads%s" % (torch.__version__, torch.get_num_threads(),
                                         "".join(", " + x for x in libs))


# torch.optim.Adam's defaults, which are also arbench's (nn.DefaultAdamConfig
# and harness.DefaultTrain: betas (0.9, 0.999), eps 1e-8, no weight decay).
# The protocol sends only lr and clip, so a run that changes beta1, beta2,
# eps or weight_decay in arbench's `train:` section must repeat them in
# plugin_config.
OPTIMISER_FIELDS = {
    "lr": (float, None),          # None: use the lr arbench sends each step
    "beta1": (float, 0.9),
    "beta2": (float, 0.999),
    "eps": (float, 1e-8),
    "weight_decay": (float, 0.0),
}


def check_config(config, fields):
    """Return config with defaults filled in, checked against fields
    (name -> (type, default)): unknown fields and values of the wrong type
    raise ConfigError naming the field. Range checks are the caller's."""
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise ConfigError(unknown[0], "unknown field (known: %s)" % ", ".join(sorted(fields)))
    out = {}
    for name, (typ, default) in fields.items():
        v = config.get(name, default)
        if v is None:
            out[name] = None
            continue
        if typ is int:
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(name, "must be an integer, got %r" % (v,))
        elif typ is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(name, "must be a number, got %r" % (v,))
            v = float(v)
        elif not isinstance(v, typ):
            raise ConfigError(name, "must be a %s, got %r" % (typ.__name__, v))
        out[name] = v
    return out


def check_optimiser(cfg):
    """Range checks of OPTIMISER_FIELDS (those of nn.AdamConfig.Validate)."""
    if cfg["lr"] is not None and not (cfg["lr"] > 0 and math.isfinite(cfg["lr"])):
        raise ConfigError("lr", "must be a positive number, got %r" % cfg["lr"])
    for b in ("beta1", "beta2"):
        if not (0 <= cfg[b] < 1):
            raise ConfigError(b, "must be in [0,1), got %r" % cfg[b])
    for k in ("eps", "weight_decay"):
        if not (cfg[k] >= 0 and math.isfinite(cfg[k])):
            raise ConfigError(k, "must be >= 0, got %r" % cfg[k])


def positive(cfg, *names):
    for name in names:
        if cfg[name] <= 0:
            raise ConfigError(name, "must be positive, got %d" % cfg[name])


def dropout_ok(cfg):
    if not (0 <= cfg["dropout"] < 1):  # NaN fails too
        raise ConfigError("dropout", "must be in [0,1), got %r" % cfg["dropout"])


def ids(arr, name, vocab, targets=False):
    """A protocol int32 Array as an int64 tensor of its shape, checking that
    every entry is a token id (or -1 for targets)."""
    if arr.size == 0:
        return torch.zeros(arr.shape, dtype=torch.long)
    t = torch.frombuffer(arr.data, dtype=torch.int32).reshape(arr.shape).long()
    lo = -1 if targets else 0
    bad = (t < lo) | (t >= vocab)
    if bad.any():
        i = int(bad.reshape(-1).nonzero()[0])
        raise ConfigError(name, "entry %d is %d, outside [%d, %d)" % (i, int(t.reshape(-1)[i]), lo, vocab))
    return t


def pick(logp, targets):
    """logp [B,T,V] gathered at targets [B,T]; 0 where the target is -1."""
    keep = targets >= 0
    got = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(keep, got, torch.zeros((), dtype=got.dtype))


class Trainer:
    """arbench's training step for a module whose forward is logits_fn.

    It mirrors the Go runner (harness/runner.go trainState.loop with
    lm.Base.Gradients): the loss is the mean cross-entropy over the targets
    >= 0 (weights 1/n, so a batch with no scored target has loss 0, where
    PyTorch's mean would be NaN); a non-finite loss is returned before any
    update; then torch.nn.utils.clip_grad_norm_(clip) when clip > 0 (a
    non-finite gradient norm stops the run as diverged: returned as a NaN
    loss, no update); then torch.optim.Adam with this step's lr.
    """

    def __init__(self, module, opt_cfg):
        self.module = module
        self.fixed_lr = opt_cfg["lr"]
        self.opt = torch.optim.Adam(
            module.parameters(), lr=self.fixed_lr or 1e-3,
            betas=(opt_cfg["beta1"], opt_cfg["beta2"]), eps=opt_cfg["eps"],
            weight_decay=opt_cfg["weight_decay"])

    def step(self, logits_fn, inputs, targets, lr, clip, seed):
        self.module.train()
        torch.manual_seed(seed)  # this step's dropout masks
        self.opt.zero_grad(set_to_none=False)
        logp = torch.log_softmax(logits_fn(inputs), dim=-1)
        n = int((targets >= 0).sum())
        loss = -pick(logp, targets).sum() * (1.0 / n if n else 0.0)
        value = float(loss.detach()) + 0.0  # not -0.0 when nothing is scored
        if not math.isfinite(value):
            return value
        loss.backward()
        if clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.module.parameters(), clip))
            if not math.isfinite(norm):
                print("gradient norm is %s: diverged, no update" % norm, file=sys.stderr)
                return float("nan")
        for group in self.opt.param_groups:
            group["lr"] = self.fixed_lr if self.fixed_lr is not None else lr
        self.opt.step()
        return value


def save_weights(module, path, meta):
    """Write module.state_dict() as safetensors (the names arbench's Go
    models use), with meta as __metadata__."""
    _safetensors.save_file(dict(module.state_dict()), path, meta)


def load_weights(module, path):
    """Read a safetensors file written by save_weights or by arbench's Go
    model into module: the names and shapes must match exactly (an error
    lists every difference, so a file of another configuration is refused
    clearly, not half-loaded)."""
    tensors = _safetensors.load_file(path)
    want = module.state_dict()
    problems = []
    for name in sorted(set(want) - set(tensors)):
        problems.append("%s missing (want %s)" % (name, list(want[name].shape)))
    for name in sorted(set(tensors) - set(want)):
        problems.append("%s unexpected" % name)
    for name in sorted(set(want) & set(tensors)):
        if tuple(tensors[name].shape) != tuple(want[name].shape):
            problems.append("%s has shape %s, want %s"
                            % (name, list(tensors[name].shape), list(want[name].shape)))
        elif not tensors[name].is_floating_point():
            problems.append("%s has dtype %s, want a float" % (name, tensors[name].dtype))
    if problems:
        raise ValueError("load %s: the weights do not fit this model's configuration: %s"
                         % (path, "; ".join(problems)))
    module.load_state_dict({k: v.to(want[k].dtype) for k, v in tensors.items()})


def metadata(family, cfg, env):
    return {"family": family, "config": json.dumps(cfg, sort_keys=True), "vocab": env.vocab,
            "seq_len": env.seq_len}


def count_params(module):
    return sum(p.numel() for p in module.parameters())
