#!/usr/bin/env python3
"""Same weights, same numbers: the PyTorch examples against reference log-probabilities.

Given a weights file (safetensors with PyTorch state_dict names, as arbench's Go rnn, lstm and
transformer models save them and as plugins/testdata/gen_models.py writes its fixtures) and an
io file holding `ids` (int [B, T]) and `logp` (float32 [B, T, V], the next-token
log-distribution after each prefix), this starts the matching example as a plugin process,
talks the protocol to it (describe, init, load, next_logprobs, score, start/step) and reports
the largest absolute difference of each path from `logp`:

    /usr/bin/python3 python/examples/check_weights.py                  # the committed fixtures
    /usr/bin/python3 python/examples/check_weights.py MODEL WEIGHTS IO [--heads N] [--tol 1e-5] [--json]

MODEL is rnn, lstm or transformer. The configuration is read off the weights' shapes; a
transformer's heads (which no shape shows) come from --heads, else the io file's or the
weights' metadata (`heads`, or the `config` JSON arbench writes with saved weights). Exit
status 0 when every difference is within --tol, 1 when one is not, 2 for a usage error or a
missing PyTorch. Nothing here needs Go, so a Go test can write the two files from its own model
and run this script.
"""

import argparse
import json
import os
import re
import select
import subprocess
import sys
import tempfile

try:
    import torch
except Exception as exc:  # noqa: BLE001
    msg = "this example needs PyTorch: apt-get install python3-torch (or pip install torch)"
    if not isinstance(exc, ModuleNotFoundError):
        msg += " (import torch failed: %s)" % " ".join(str(exc).split())
    sys.stderr.write(msg + "\n")
    sys.exit(2)

import _safetensors
import _torchlm  # noqa: F401 - puts the SDK on sys.path when run from a checkout
from arbench_plugin import decode_array, encode_array

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPTS = {"rnn": "torch_rnn.py", "lstm": "torch_rnn.py", "transformer": "torch_transformer.py"}


class PluginError(Exception):
    """An error response: code, message and the plugin's data (a traceback)."""

    def __init__(self, code, message, data=None):
        super().__init__("%s (code %d)%s" % (message, code, "\n" + data if isinstance(data, str) else ""))
        self.code, self.message, self.data = code, message, data


class Plugin:
    """A plugin process driven over the protocol, one request at a time, as arbench does.

    Arrays go in as anything arbench_plugin.encode_array takes and come back as torch
    tensors. stderr goes to a temporary file (`stderr()` reads it)."""

    def __init__(self, argv, env=None):
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, env=env, cwd=HERE)
        self.next_id = 1

    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    def call(self, method, timeout=120, **params):
        """Send one request and return its result; an error response raises PluginError, a
        plugin that exits or stays silent for timeout seconds (then killed) RuntimeError."""
        rid = self.next_id
        self.next_id += 1
        req = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self.proc.stdin.write((json.dumps(req, separators=(",", ":")) + "\n").encode())
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            self.proc.kill()
            raise RuntimeError("%s: no response after %ss (killed); stderr:\n%s" % (method, timeout, self.stderr()))
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("plugin exited (status %s) during %s; stderr:\n%s"
                               % (self.proc.wait(), method, self.stderr()))
        resp = json.loads(line)
        if resp.get("id") != rid or resp.get("jsonrpc") != "2.0":
            raise RuntimeError("%s: malformed response %r" % (method, line[:200]))
        if "error" in resp:
            e = resp["error"]
            raise PluginError(e["code"], e["message"], e.get("data"))
        return resp["result"]

    @staticmethod
    def arr(value, dtype="int32"):
        if isinstance(value, torch.Tensor):
            value = value.detach().to(torch.int32 if dtype == "int32" else torch.float32).numpy()
        return encode_array(value, dtype)

    @staticmethod
    def tensor(obj):
        a = decode_array(obj)
        if a.size == 0:
            return torch.zeros(a.shape)
        return torch.frombuffer(a.data, dtype=torch.float32 if a.dtype == "float32" else torch.int32).reshape(a.shape)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("shutdown")
            except Exception:  # noqa: BLE001
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._err.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def example_argv(model, context=None):
    argv = [sys.executable, os.path.join(HERE, SCRIPTS[model])]
    if context is not None:
        argv += ["--context", str(context)]
    return argv


def _heads_from_meta(meta):
    if "heads" in meta:
        return int(meta["heads"])
    try:  # arbench's saved weights: config = {"model": {"config": {"heads": ...}}, ...}
        cfg = json.loads(meta.get("config", ""))
    except ValueError:
        return None
    for path in (("model", "config"), ("config",), ()):
        d = cfg
        for k in path:
            d = d.get(k, {}) if isinstance(d, dict) else {}
        if isinstance(d, dict) and "heads" in d:
            return int(d["heads"])
    return None


def infer_config(model, weights, heads=None, io_meta=None):
    """The example's plugin_config for a weights file (a dict name -> tensor), and the
    --context to start it with (None for the recurrent models)."""
    if "embedding.weight" not in weights:
        raise ValueError("no embedding.weight: not weights of arbench's %s" % model)
    vocab, width = weights["embedding.weight"].shape
    if model in ("rnn", "lstm"):
        layers = len([k for k in weights if re.fullmatch(r"rnn\.weight_ih_l\d+", k)])
        if "rnn.weight_hh_l0" not in weights:
            raise ValueError("no rnn.weight_hh_l0: not weights of arbench's %s" % model)
        rows, hidden = weights["rnn.weight_hh_l0"].shape
        gates = {"rnn": 1, "lstm": 4}[model]
        if rows != gates * hidden:
            other = "lstm" if model == "rnn" else "rnn"
            raise ValueError("rnn.weight_hh_l0 is [%d, %d], want [%d, %d] for %s: are these %s weights?"
                             % (rows, hidden, gates * hidden, hidden, model, other))
        return {"cell": model, "embed": int(width), "hidden": int(hidden), "layers": layers}, None, int(vocab)
    layers = len([k for k in weights if re.fullmatch(r"encoder\.layers\.\d+\.norm1\.weight", k)])
    if "pos.weight" not in weights or "encoder.layers.0.linear1.weight" not in weights:
        raise ValueError("no pos.weight or encoder.layers.0.linear1.weight: not weights of arbench's transformer")
    context = int(weights["pos.weight"].shape[0])
    ff = int(weights["encoder.layers.0.linear1.weight"].shape[0])
    if heads is None:
        heads = _heads_from_meta(io_meta or {})
    if heads is None:
        raise ValueError("the number of heads is in no metadata: give --heads")
    return ({"dim": int(width), "heads": heads, "layers": layers, "ff": ff, "context": context},
            context, int(vocab))


def compare(model, weights_path, io_path, heads=None):
    """Run the example on the io file's ids with the weights loaded; return a dict of the
    largest absolute differences from the io file's logp: next_logprobs, score (at the next
    ids) and step (start on the first token, then one step per token)."""
    weights = _safetensors.load_file(weights_path)
    io = _safetensors.load_file(io_path)
    meta = dict(_safetensors.read_metadata(weights_path))
    meta.update(_safetensors.read_metadata(io_path))
    config, context, vocab = infer_config(model, weights, heads, meta)
    ids, want = io["ids"].long(), io["logp"].float()
    B, T = ids.shape
    if tuple(want.shape) != (B, T, vocab):
        raise ValueError("%s: logp has shape %s, want [%d, %d, %d]" % (io_path, list(want.shape), B, T, vocab))
    targets = torch.full_like(ids, -1)
    targets[:, :-1] = ids[:, 1:]
    with Plugin(example_argv(model, context)) as p:
        p.call("describe")
        p.call("init", config=config, env={"vocab": vocab, "seq_len": T, "batch": 0, "eval_batch": B}, seed=1)
        p.call("load", path=os.path.abspath(weights_path))
        nlp = p.tensor(p.call("next_logprobs", inputs=p.arr(ids))["logprobs"])
        sc = p.tensor(p.call("score", inputs=p.arr(ids), targets=p.arr(targets))["logprobs"])
        r = p.call("start", prompts=p.arr(ids[:, :1]))
        steps = [p.tensor(r["logprobs"])]
        for t in range(1, T):
            steps.append(p.tensor(p.call("step", state=r["state"], tokens=p.arr(ids[:, t]))["logprobs"]))
    want_score = _torchlm.pick(want, targets)
    return {
        "config": config,
        "next_logprobs": float((nlp - want).abs().max()),
        "score": float((sc - want_score).abs().max()),
        "step": float((torch.stack(steps, dim=1) - want).abs().max()),
    }


def fixtures():
    """The committed PyTorch fixtures: (model, weights, io) per Go plugin."""
    out = []
    for model in ("rnn", "lstm", "transformer"):
        d = os.path.join(REPO, "plugins", model, "testdata")
        out.append((model, os.path.join(d, "reference.weights.safetensors"),
                    os.path.join(d, "reference.io.safetensors")))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", metavar="MODEL WEIGHTS IO",
                    help="rnn|lstm|transformer, the weights and the io file (default: the committed fixtures)")
    ap.add_argument("--heads", type=int, help="a transformer's attention heads, if no metadata says")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest allowed |difference| (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per model instead of text")
    args = ap.parse_args(argv)
    if args.files and (len(args.files) != 3 or args.files[0] not in SCRIPTS):
        ap.error("want MODEL WEIGHTS IO with MODEL one of %s" % ", ".join(SCRIPTS))
    cases = [tuple(args.files)] if args.files else fixtures()
    ok = True
    for model, wpath, iopath in cases:
        try:
            d = compare(model, wpath, iopath, args.heads)
        except (OSError, ValueError, RuntimeError, PluginError) as exc:
            print("%s: %s" % (model, exc), file=sys.stderr)
            ok = False
            continue
        worst = max(d["next_logprobs"], d["score"], d["step"])
        good = worst <= args.tol
        ok = ok and good
        if args.json:
            print(json.dumps(dict(d, model=model, weights=wpath, tol=args.tol, ok=good)))
        else:
            print("%-11s max |diff|: next_logprobs %.3g, score %.3g, start/step %.3g (tol %g) %s"
                  % (model, d["next_logprobs"], d["score"], d["step"], args.tol, "ok" if good else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
