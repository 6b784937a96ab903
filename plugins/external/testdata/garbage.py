"""garbage.py: a plugin that writes a non-JSON line on stdout, for the Go client's tests.

Speaks the protocol by hand (no SDK loop), one request at a time:

- describe: family "garbage", capabilities ["score"], protocol 1.
- init: params = 0.
- score: writes the line "this is not json" to stdout (bypassing any SDK) and nothing else: that
  request gets no real response; the plugin keeps reading requests until end of input.
- shutdown: {} and exit 0.  Any other method: -32601.
"""

import json
import sys


def reply(rid, result=None, error=None):
    msg = {"jsonrpc": "2.0", "id": rid}
    if error is None:
        msg["result"] = result
    else:
        msg["error"] = error
    sys.stdout.write(json.dumps(msg, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        req = json.loads(line)
        rid, method = req.get("id"), req.get("method")
        if method == "describe":
            reply(rid, {"protocol": 1, "family": "garbage", "capabilities": ["score"]})
        elif method == "init":
            reply(rid, {"params": 0})
        elif method == "score":
            sys.stdout.write("this is not json\n")
            sys.stdout.flush()
        elif method == "shutdown":
            reply(rid, {})
            return
        else:
            reply(rid, error={"code": -32601, "message": "method not found: %s" % method})


if __name__ == "__main__":
    main()
