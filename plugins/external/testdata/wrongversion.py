"""wrongversion.py: a plugin that speaks protocol 2, for the Go client's tests.

Speaks the protocol by hand (no SDK loop):

- describe: {"protocol": 2, "family": "wrongversion", "capabilities": ["score"], ...}; arbench
  must refuse it right there ("speaks protocol 2; arbench speaks 1").
- should it be called anyway -- init: params = 0; score: a correct uniform answer [B, T] log(1/V)
  (0 where the target is -1), so that only the version check can fail it.
- shutdown: {} and exit 0.  Any other method: -32601.
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python")))

from arbench_plugin import decode_array, encode_array  # noqa: E402


def reply(rid, result=None, error=None):
    msg = {"jsonrpc": "2.0", "id": rid}
    if error is None:
        msg["result"] = result
    else:
        msg["error"] = error
    sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main():
    vocab = 1
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        req = json.loads(line)
        rid, method, params = req.get("id"), req.get("method"), req.get("params") or {}
        if method == "describe":
            reply(rid, {"protocol": 2, "family": "wrongversion", "capabilities": ["score"],
                        "deterministic": True, "max_context": 0, "flops_per_token": 0})
        elif method == "init":
            vocab = params["env"]["vocab"]
            reply(rid, {"params": 0})
        elif method == "score":
            targets = decode_array(params["targets"], "targets", "int32", 2)
            lp = -math.log(vocab)
            rows = [[lp if t >= 0 else 0.0 for t in row] for row in targets.tolist()]
            reply(rid, {"logprobs": encode_array(rows, "float32", targets.shape)})
        elif method == "shutdown":
            reply(rid, {})
            return
        else:
            reply(rid, error={"code": -32601, "message": "method not found: %s" % method})


if __name__ == "__main__":
    main()
