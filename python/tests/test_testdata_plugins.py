"""The plugin scripts in plugins/external/testdata, driven over real pipes.

Each test starts one script as arbench would (``python3 plugins/external/testdata/NAME.py`` from
the repository root), writes requests to its stdin and reads its stdout line by line with a
timeout. The whole file takes about two seconds.
"""

import json
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from arbench_plugin import decode_array, encode_array

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TESTDATA = os.path.join(REPO, "plugins", "external", "testdata")
ENV = {"vocab": 5, "seq_len": 4, "batch": 2, "eval_batch": 2}


class Plugin:
    """One running plugin process."""

    def __init__(self, name, env=None):
        full_env = dict(os.environ, ARBENCH_PROTOCOL="1", PYTHONDONTWRITEBYTECODE="1")
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join("plugins", "external", "testdata", name)], cwd=REPO,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        self.lines = queue.Queue()
        self.err = []
        self.next_id = 1
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put, True), daemon=True),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err.append, False), daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _pump(stream, put, mark_end):
        for line in iter(stream.readline, b""):
            put(line)
        if mark_end:
            put(None)

    def send(self, method, params=None):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": {} if params is None else params}
        self.proc.stdin.write((json.dumps(msg, separators=(",", ":")) + "\n").encode())
        self.proc.stdin.flush()
        return rid

    def line(self, timeout=5.0):
        """The next stdout line (bytes, newline stripped); None at end of output or timeout."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if line is None else line.rstrip(b"\n")

    def call(self, method, params=None, timeout=5.0):
        rid = self.send(method, params)
        line = self.line(timeout)
        if line is None:
            raise AssertionError("%s: no response; stderr: %s" % (method, self.stderr()))
        resp = json.loads(line)
        assert resp.get("jsonrpc") == "2.0" and resp.get("id") == rid, resp
        assert ("result" in resp) != ("error" in resp), resp
        return resp

    def result(self, method, params=None, timeout=5.0):
        resp = self.call(method, params, timeout)
        if "error" in resp:
            raise AssertionError("%s: %s" % (method, resp["error"]))
        return resp["result"]

    def stderr(self):
        """What the plugin wrote to stderr so far (all of it once the process has exited)."""
        if self.proc.poll() is not None:
            self.threads[1].join(timeout=5)
        return b"".join(self.err).decode(errors="replace")

    def close(self, shutdown=True):
        """Shut down (or just close stdin) and return the exit status."""
        if self.proc.poll() is None:
            try:
                if shutdown:
                    assert self.result("shutdown") == {}
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        try:
            return self.proc.wait(timeout=5)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def batch(inputs, targets):
    return {"inputs": encode_array(inputs, "int32"), "targets": encode_array(targets, "int32")}


INPUTS = [[0, 1, 2, 3], [4, 3, 2, 1]]
TARGETS = [[1, 2, 3, -1], [3, 2, 1, 0]]


class TestdataPluginsTest(unittest.TestCase):
    def start(self, name, env=None):
        p = Plugin(name, env)
        self.addCleanup(p.kill)
        return p

    def init(self, p, config=None):
        return p.result("init", {"config": config or {}, "env": ENV, "seed": 1})

    def test_unigram(self):
        p = self.start("unigram.py")
        d = p.result("describe")
        self.assertEqual(d, {"protocol": 1, "family": "unigram",
                             "capabilities": ["train_step", "score", "next_logprobs", "step", "save", "load"],
                             "deterministic": True, "max_context": 0, "flops_per_token": 0,
                             "conditional": False, "decode_settings": [], "runtime": "pure Python"})
        r = p.call("init", {"config": {"hidden": 3}, "env": ENV, "seed": 1})
        self.assertEqual(r["error"]["code"], -32602)
        self.assertTrue(r["error"]["message"].startswith("hidden: unknown field"), r)
        r = p.call("init", {"config": {"smoothing": -1}, "env": ENV, "seed": 1})
        self.assertEqual(r["error"]["code"], -32602)
        self.assertTrue(r["error"]["message"].startswith("smoothing: "), r)
        self.assertEqual(self.init(p, {"smoothing": 0.5}), {"params": 5})

        skewed = [[0, 0, 0, 1], [0, 0, 2, -1]]  # mostly token 0
        losses = [p.result("train_step", dict(batch(skewed, skewed), step=s, lr=0.1, clip=1.0, seed=s))["loss"]
                  for s in range(1, 6)]
        self.assertAlmostEqual(losses[0], math.log(5), places=6)
        self.assertTrue(all(a > b for a, b in zip(losses, losses[1:])), losses)

        score = decode_array(p.result("score", batch(INPUTS, TARGETS))["logprobs"], dtype="float32", ndim=2)
        self.assertEqual(score.shape, (2, 4))
        self.assertEqual(score.tolist()[0][3], 0.0)
        nl = decode_array(p.result("next_logprobs", {"inputs": encode_array(INPUTS, "int32")})["logprobs"], ndim=3)
        self.assertEqual(nl.shape, (2, 4, 5))
        rows = nl.tolist()
        self.assertAlmostEqual(sum(math.exp(x) for x in rows[1][2]), 1.0, places=5)
        self.assertAlmostEqual(rows[0][1][2], score.tolist()[0][1], places=6)  # target 2 at [0][1]
        self.assertGreater(rows[0][0][0], rows[0][0][4])  # token 0 is the frequent one

        st = p.result("start", {"prompts": encode_array([[1, 2], [3, 4]], "int32")})
        self.assertEqual(decode_array(st["logprobs"]).tolist(), rows[0][:2])
        stepped = p.result("step", {"state": st["state"], "tokens": encode_array([0, 1], "int32")})
        self.assertEqual(decode_array(stepped["logprobs"]).shape, (2, 5))

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "w.safetensors")
            self.assertEqual(p.result("save", {"path": path}), {})
            with open(path, "rb") as f:
                header_len = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(header_len))
            self.assertEqual(header["counts"]["shape"], [5])
            p.result("train_step", dict(batch(skewed, skewed), step=6, lr=0.1, clip=1.0, seed=6))
            changed = p.result("score", batch(INPUTS, TARGETS))["logprobs"]
            self.assertNotEqual(changed, encode_array(score))
            self.assertEqual(p.result("load", {"path": path}), {})
            self.assertEqual(p.result("score", batch(INPUTS, TARGETS))["logprobs"], encode_array(score))

        r = p.call("score", batch([[0]], [[7]]))  # target out of range
        self.assertEqual(r["error"]["code"], -32000)
        self.assertIn("out of range", r["error"]["message"])
        self.assertIn("Traceback", r["error"]["data"])
        self.assertEqual(p.close(), 0)
        self.assertEqual(p.stderr(), "")

    def test_unigram_is_deterministic(self):
        outs = []
        for _ in range(2):
            p = self.start("unigram.py")
            self.init(p)
            loss = p.result("train_step", dict(batch(INPUTS, TARGETS), step=1, lr=0.1, clip=0, seed=1))
            outs.append((loss, p.result("score", batch(INPUTS, TARGETS))))
            p.close()
        self.assertEqual(outs[0], outs[1])

    def test_uniform(self):
        p = self.start("uniform.py")
        d = p.result("describe")
        self.assertEqual(d["capabilities"], ["score", "next_logprobs"])
        self.assertEqual(self.init(p, {"ignored": True}), {"params": 0})
        score = decode_array(p.result("score", batch(INPUTS, TARGETS))["logprobs"]).tolist()
        lp = -math.log(5)
        for got, want in zip(sum(score, []), [lp, lp, lp, 0.0, lp, lp, lp, lp]):
            self.assertAlmostEqual(got, want, places=6)
        nl = decode_array(p.result("next_logprobs", {"inputs": encode_array(INPUTS, "int32")})["logprobs"])
        self.assertEqual(nl.shape, (2, 4, 5))
        self.assertTrue(all(abs(x - lp) < 1e-6 for x in nl.data))
        self.assertEqual(p.call("train_step", dict(batch(INPUTS, TARGETS), step=1, lr=0.1))["error"]["code"], -32601)
        self.assertEqual(p.close(shutdown=False), 0)  # end of input: exits 0

    def test_crash(self):
        p = self.start("crash.py")
        self.assertEqual(p.result("describe")["capabilities"], ["train_step", "score"])
        self.init(p)
        for step in (1, 2):
            self.assertAlmostEqual(p.result("train_step", dict(batch(INPUTS, TARGETS), step=step, lr=0.1))["loss"],
                                   math.log(5))
        p.send("train_step", dict(batch(INPUTS, TARGETS), step=3, lr=0.1))
        self.assertIsNone(p.line())
        self.assertEqual(p.proc.wait(timeout=5), 3)
        err = p.stderr()
        self.assertIn("Traceback (most recent call last):", err)
        self.assertIn("ValueError: boom at step 3", err)

    def test_hang(self):
        p = self.start("hang.py")
        self.assertEqual(p.result("describe")["capabilities"], ["score"])
        self.init(p)
        p.send("score", batch(INPUTS, TARGETS))
        self.assertIsNone(p.line(timeout=0.5))
        self.assertIsNone(p.proc.poll())  # still running: the caller must kill it

    def test_garbage(self):
        p = self.start("garbage.py")
        self.assertEqual(p.result("describe")["capabilities"], ["score"])
        self.init(p)
        p.send("score", batch(INPUTS, TARGETS))
        self.assertEqual(p.line(), b"this is not json")

    def test_oversized(self):
        n = 200000
        p = self.start("oversized.py", {"ARBENCH_TEST_BYTES": str(n)})
        self.assertEqual(p.result("describe")["capabilities"], ["score"])
        self.init(p)
        rid = p.send("score", batch(INPUTS, TARGETS))
        line = p.line()
        self.assertEqual(len(line), n)
        resp = json.loads(line)
        self.assertEqual(resp["id"], rid)
        self.assertEqual(set(resp["result"]["logprobs"]), {"x"})
        p.close()
        p = self.start("oversized.py", {"ARBENCH_TEST_BYTES": "10"})
        p.result("describe")
        p.send("score", {})
        self.assertEqual(p.line(), b"x" * 10)

    def test_default_oversized_size(self):
        p = self.start("oversized.py")
        p.result("describe")
        p.send("score", {})
        self.assertEqual(len(p.line()), 3000000)

    def test_wrongversion(self):
        p = self.start("wrongversion.py")
        d = p.result("describe")
        self.assertEqual(d["protocol"], 2)
        self.init(p)
        score = decode_array(p.result("score", batch(INPUTS, TARGETS))["logprobs"])
        self.assertEqual(score.shape, (2, 4))
        self.assertEqual(p.close(), 0)

    def test_undeclared(self):
        p = self.start("undeclared.py")
        self.assertEqual(p.result("describe")["capabilities"], ["score"])
        self.init(p)
        r = p.call("score", batch(INPUTS, TARGETS))
        self.assertEqual(r["error"], {"code": -32601, "message": "method not found: score"})
        nl = decode_array(p.result("next_logprobs", {"inputs": encode_array(INPUTS, "int32")})["logprobs"])
        self.assertEqual(nl.shape, (2, 4, 5))
        self.assertAlmostEqual(nl.data[7], -math.log(5), places=6)
        self.assertEqual(p.close(), 0)

    def test_noisy(self):
        p = self.start("noisy.py")
        self.assertEqual(p.result("describe")["capabilities"], ["score", "next_logprobs"])
        self.init(p)
        score = decode_array(p.result("score", batch(INPUTS, TARGETS))["logprobs"])  # the next line is the response
        self.assertEqual(score.shape, (2, 4))
        nl = decode_array(p.result("next_logprobs", {"inputs": encode_array(INPUTS, "int32")})["logprobs"])
        self.assertEqual(nl.shape, (2, 4, 5))
        self.assertEqual(p.close(), 0)
        self.assertIsNone(p.line(timeout=1))  # nothing else was written to stdout
        err = p.stderr()
        for text in ("noisy: init vocab=5 (print to stdout)", "noisy: stderr line 1", "noisy: stderr line 2",
                     "noisy: score [2, 4] (print to stdout)", "noisy: sys.stdout.write", "noisy: os.write(1)",
                     "noisy: scoring", "noisy: next_logprobs (print to stdout)"):
            self.assertIn(text + "\n", err)

    def test_readme_example(self):
        # the README's ten-line model, run as `pip install ./python` would make it importable
        p = self.start("readme_example.py", {"PYTHONPATH": os.path.join(REPO, "python")})
        d = p.result("describe")
        self.assertEqual((d["family"], d["capabilities"], d["deterministic"]), ("unigram", ["train_step", "score"], False))
        self.assertEqual(p.result("init", {"config": {}, "env": dict(ENV, vocab=256), "seed": 1}), {"params": 256})
        text = [list(b"the quick "), list(b"brown fox ")]
        inputs, targets = [r[:-1] for r in text], [r[1:] for r in text]
        losses = [p.result("train_step", dict(batch(inputs, targets), step=s, lr=0.5, clip=0.0, seed=s))["loss"]
                  for s in range(1, 4)]
        self.assertAlmostEqual(losses[0], math.log(256), places=6)
        self.assertTrue(losses[0] > losses[1] > losses[2], losses)
        score = decode_array(p.result("score", batch(inputs, targets))["logprobs"])
        self.assertEqual(score.shape, (2, 9))
        self.assertTrue(all(x < 0 for x in score.data))
        self.assertEqual(p.close(), 0)

    def test_slowstart(self):
        t0 = time.monotonic()
        p = self.start("slowstart.py", {"ARBENCH_TEST_SLEEP": "0.3"})
        self.assertEqual(p.result("describe")["family"], "slowstart")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.init(p)
        self.assertEqual(decode_array(p.result("score", batch(INPUTS, TARGETS))["logprobs"]).shape, (2, 4))
        self.assertEqual(p.close(), 0)

    def test_slowstart_default_is_slow(self):
        p = self.start("slowstart.py", {})
        p.send("describe")
        self.assertIsNone(p.line(timeout=0.5))  # default 5 s: nothing yet


if __name__ == "__main__":
    unittest.main()
