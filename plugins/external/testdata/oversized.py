"""oversized.py: a plugin whose score response is one huge line, for the Go client's tests.

Speaks the protocol by hand (no SDK loop):

- describe: family "oversized", capabilities ["score"], protocol 1.
- init: params = 0.
- score: writes ONE line of exactly N bytes (N = env ARBENCH_TEST_BYTES, default 3000000) plus
  "\n": a well-formed JSON-RPC response {"jsonrpc":"2.0","id":ID,"result":{"logprobs":"xxx...x"}}
  padded with "x" inside the string to N bytes (just N "x" if N is smaller than that envelope).
  It is written in 1 MiB chunks; if arbench closes the pipe meanwhile the plugin exits 0 quietly.
  (As a response it would be wrong anyway: logprobs is not an array.)
- shutdown: {} and exit 0.  Any other method: -32601.
"""

import json
import os
import sys

CHUNK = 1 << 20


def reply(rid, result=None, error=None):
    msg = {"jsonrpc": "2.0", "id": rid}
    if error is None:
        msg["result"] = result
    else:
        msg["error"] = error
    sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def huge_line(rid, n):
    out = sys.stdout.buffer
    head = ('{"jsonrpc":"2.0","id":%s,"result":{"logprobs":"' % json.dumps(rid)).encode()
    tail = b'"}}'
    if n < len(head) + len(tail):
        head, tail = b"", b""
    out.write(head)
    left = n - len(head) - len(tail)
    chunk = b"x" * min(CHUNK, max(left, 0))
    while left > 0:
        out.write(chunk[:left])
        left -= len(chunk)
    out.write(tail + b"\n")
    out.flush()


def main():
    n = int(os.environ.get("ARBENCH_TEST_BYTES", "3000000"))
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        req = json.loads(line)
        rid, method = req.get("id"), req.get("method")
        if method == "describe":
            reply(rid, {"protocol": 1, "family": "oversized", "capabilities": ["score"]})
        elif method == "init":
            reply(rid, {"params": 0})
        elif method == "score":
            try:
                huge_line(rid, n)
            except BrokenPipeError:
                os._exit(0)
        elif method == "shutdown":
            reply(rid, {})
            return
        else:
            reply(rid, error={"code": -32601, "message": "method not found: %s" % method})


if __name__ == "__main__":
    main()
