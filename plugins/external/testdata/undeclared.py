"""undeclared.py: a plugin whose capabilities do not match what it answers, for the Go client's tests.

Speaks the protocol by hand (no SDK loop):

- describe: family "undeclared", capabilities ["score"] (protocol 1, deterministic true).
- init: params = 0.
- score (declared): answers error -32601 "method not found: score" -- a declared capability it
  fails to implement; arbench must report that error.
- next_logprobs (NOT declared): would answer correctly, [B, T, V] log(1/V); arbench must refuse
  before ever calling it (a task that needs next_logprobs cannot use this model).
- shutdown: {} and exit 0.  Any other method: -32601.
"""

import array
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
            reply(rid, {"protocol": 1, "family": "undeclared", "capabilities": ["score"],
                        "deterministic": True, "max_context": 0, "flops_per_token": 0})
        elif method == "init":
            vocab = params["env"]["vocab"]
            reply(rid, {"params": 0})
        elif method == "next_logprobs":
            inputs = decode_array(params["inputs"], "inputs", "int32", 2)
            b, t = inputs.shape
            lp = array.array("f", [-math.log(vocab)]) * (b * t * vocab)
            reply(rid, {"logprobs": encode_array(lp, "float32", (b, t, vocab))})
        elif method == "shutdown":
            reply(rid, {})
            return
        else:  # score included: declared, but "not found"
            reply(rid, error={"code": -32601, "message": "method not found: %s" % method})


if __name__ == "__main__":
    main()
