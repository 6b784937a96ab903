"""The protocol loop: serve() with in-memory streams."""

import array
import base64
import contextlib
import io
import json
import math
import sys
import unittest

from arbench_plugin import MAX_STATES, ConfigError, Model, decode_array, encode_array, serve

ENV = {"vocab": 4, "seq_len": 3, "batch": 2, "eval_batch": 2}
INPUTS = [[0, 1, 2], [3, 2, 1]]
TARGETS = [[1, 2, -1], [2, 1, 0]]


def req(rid, method, params=None):
    msg = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def init_req(rid=1, config=None):
    return req(rid, "init", {"config": config or {}, "env": ENV, "seed": 7})


def batch_params(inputs=INPUTS, targets=TARGETS):
    return {"inputs": encode_array(inputs, "int32"), "targets": encode_array(targets, "int32")}


def run(model, requests, raw_lines=()):
    """Serve ``requests`` (dicts, then raw text lines); return (responses, stderr text)."""
    lines = [json.dumps(r) for r in requests] + list(raw_lines)
    stdin = io.StringIO("".join(line + "\n" for line in lines))
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr):
        serve(model, stdin=stdin, stdout=stdout)
    out = stdout.getvalue()
    assert out == "" or out.endswith("\n"), out
    responses = [json.loads(line) for line in out.splitlines()]
    for r in responses:
        assert r["jsonrpc"] == "2.0", r
        assert ("result" in r) != ("error" in r), r
    return responses, stderr.getvalue()


class Full(Model):
    """Every capability; records its calls."""

    family = "full"
    deterministic = True
    max_context = 8
    flops_per_token = 12
    runtime = "numpy 2.0, 1 thread"

    def init(self, config, env, seed):
        if "bad" in config:
            raise ConfigError("bad: not allowed")
        self.calls = [("init", config, env.vocab, env.seq_len, env.batch, env.eval_batch, seed)]
        self.v = env.vocab
        return 42

    def train_step(self, batch, step, lr, clip, seed):
        self.calls.append(("train_step", batch.inputs.tolist(), batch.targets.tolist(), step, lr, clip, seed))
        return 1.5

    def score(self, batch):
        b, t = batch.targets.shape
        return [[-0.5 * (i + 1) for _ in range(t)] for i in range(b)]

    def next_logprobs(self, inputs):
        b, t = inputs.shape
        return array.array("f", [-math.log(self.v)]) * (b * t * self.v)

    def start(self, prompts):
        state = {"n": prompts.shape[1], "last": [row[-1] for row in prompts.tolist()]}
        return state, [[float(state["n"])] * self.v for _ in range(prompts.shape[0])]

    def step(self, state, tokens):
        state["n"] += 1
        state["last"] = tokens.tolist()
        return [[float(state["n"])] * self.v for _ in state["last"]]

    def save(self, path):
        self.calls.append(("save", path))

    def load(self, path):
        self.calls.append(("load", path))

    def close(self):
        self.closed = True


class ScoreOnly(Model):
    family = "score-only"

    def init(self, config, env, seed):
        return None

    def score(self, batch):
        return [[0.0] * batch.targets.shape[1] for _ in range(batch.targets.shape[0])]


class CapabilitiesTest(unittest.TestCase):
    def test_derived_from_overrides(self):
        self.assertEqual(Full.capabilities(), ["train_step", "score", "next_logprobs", "step", "save", "load"])
        self.assertEqual(ScoreOnly.capabilities(), ["score"])

        class Sub(ScoreOnly):  # inherits score
            def load(self, path):
                pass

        self.assertEqual(Sub.capabilities(), ["score", "load"])

    def test_start_needs_step(self):
        class Half(Model):
            family = "half"

            def init(self, config, env, seed):
                return 0

            def start(self, prompts):
                return None, []

        with self.assertRaisesRegex(TypeError, "defines start but not step"):
            Half.capabilities()
        with self.assertRaisesRegex(TypeError, "defines start but not step"):
            serve(Half(), stdin=io.StringIO(""), stdout=io.StringIO())

    def test_ill_defined_models(self):
        class NoFamily(Model):
            def init(self, config, env, seed):
                return 0

        class NoInit(Model):
            family = "x"

        class BadContext(ScoreOnly):
            max_context = -1

        class MultilineRuntime(ScoreOnly):
            runtime = "torch\n2"

        class LongRuntime(ScoreOnly):
            runtime = "x" * 201

        for cls, msg in ((NoFamily, "family"), (NoInit, "init"), (BadContext, "max_context"),
                         (MultilineRuntime, "runtime"), (LongRuntime, "runtime")):
            with self.subTest(cls=cls.__name__), self.assertRaisesRegex(TypeError, msg):
                serve(cls(), stdin=io.StringIO(""), stdout=io.StringIO())
        with self.assertRaisesRegex(TypeError, "Model subclass"):
            serve(object(), stdin=io.StringIO(""), stdout=io.StringIO())

    def test_describe(self):
        (r,), _ = run(Full(), [req(1, "describe", {})])
        self.assertEqual(r["id"], 1)
        self.assertEqual(r["result"], {
            "protocol": 1, "family": "full",
            "capabilities": ["train_step", "score", "next_logprobs", "step", "save", "load"],
            "deterministic": True, "max_context": 8, "flops_per_token": 12,
            "conditional": False, "decode_settings": [], "runtime": "numpy 2.0, 1 thread"})
        (r,), _ = run(ScoreOnly(), [req(1, "describe")])
        self.assertEqual(r["result"], {"protocol": 1, "family": "score-only", "capabilities": ["score"],
                                       "deterministic": False, "max_context": 0, "flops_per_token": 0,
                                       "conditional": False, "decode_settings": [], "runtime": ""})


class DispatchTest(unittest.TestCase):
    def test_every_method(self):
        m = Full()
        rs, _ = run(m, [
            req(1, "describe", {}),
            init_req(2, {"hidden": 3}),
            req(3, "train_step", dict(batch_params(), step=1, lr=0.01, clip=1.0, seed=99)),
            req(4, "score", batch_params()),
            req(5, "next_logprobs", {"inputs": encode_array(INPUTS, "int32")}),
            req(6, "start", {"prompts": encode_array([[1, 2], [3, 0]], "int32")}),
            req(7, "step", {"state": 1, "tokens": encode_array([2, 3], "int32")}),
            req(8, "save", {"path": "/tmp/w.safetensors"}),
            req(9, "load", {"path": "/tmp/w.safetensors"}),
            req(10, "shutdown", {}),
        ])
        self.assertEqual([r["id"] for r in rs], list(range(1, 11)))
        for r in rs:
            self.assertIn("result", r, r)
        self.assertEqual(rs[1]["result"], {"params": 42})
        self.assertEqual(rs[2]["result"], {"loss": 1.5})
        score = decode_array(rs[3]["result"]["logprobs"], dtype="float32")
        self.assertEqual(score.tolist(), [[-0.5] * 3, [-1.0] * 3])
        nl = decode_array(rs[4]["result"]["logprobs"], dtype="float32")
        self.assertEqual(nl.shape, (2, 3, 4))
        self.assertAlmostEqual(nl.data[0], -math.log(4), places=6)
        self.assertEqual(rs[5]["result"]["state"], 1)
        self.assertEqual(decode_array(rs[5]["result"]["logprobs"]).tolist(), [[2.0] * 4] * 2)
        self.assertEqual(decode_array(rs[6]["result"]["logprobs"]).tolist(), [[3.0] * 4] * 2)
        self.assertEqual(rs[7]["result"], {})
        self.assertEqual(rs[8]["result"], {})
        self.assertEqual(rs[9]["result"], {})
        self.assertEqual(m.calls, [
            ("init", {"hidden": 3}, 4, 3, 2, 2, 7),
            ("train_step", INPUTS, TARGETS, 1, 0.01, 1.0, 99),
            ("save", "/tmp/w.safetensors"),
            ("load", "/tmp/w.safetensors"),
        ])
        self.assertIsInstance(m.calls[1][4], float)
        self.assertTrue(m.closed)
        self.assertEqual(m.env.vocab, 4)

    def test_shutdown_stops_reading(self):
        rs, _ = run(Full(), [init_req(1), req(2, "shutdown"), req(3, "describe")])
        self.assertEqual([r["id"] for r in rs], [1, 2])
        self.assertEqual(rs[1]["result"], {})

    def test_eof_returns(self):
        m = Full()
        rs, _ = run(m, [req(1, "describe")])
        self.assertEqual(len(rs), 1)
        self.assertTrue(m.closed)
        rs, _ = run(Full(), [])
        self.assertEqual(rs, [])

    def test_blank_lines_are_skipped_and_string_ids_echoed(self):
        rs, _ = run(Full(), [], raw_lines=["", "   ", json.dumps(req("a", "describe"))])
        self.assertEqual([r["id"] for r in rs], ["a"])

    def test_bytes_input(self):
        stdin = io.BytesIO((json.dumps(req(1, "describe")) + "\n").encode())
        stdout = io.StringIO()
        serve(Full(), stdin=stdin, stdout=stdout)
        self.assertEqual(json.loads(stdout.getvalue())["result"]["family"], "full")

    def test_defaults_for_optional_scalars(self):
        m = Full()
        rs, _ = run(m, [req(1, "init", {"env": {"vocab": 4}}), req(2, "train_step", batch_params())])
        self.assertEqual(rs[0]["result"], {"params": 42})
        self.assertEqual(m.calls[0], ("init", {}, 4, 0, 0, 0, 0))
        self.assertEqual(m.calls[1][3:], (0, 0.0, 0.0, 0))

    def test_big_seed(self):
        m = Full()
        run(m, [req(1, "init", {"config": {}, "env": ENV, "seed": 2**64 - 1})])
        self.assertEqual(m.calls[0][-1], 2**64 - 1)

    def test_init_none_params_is_zero(self):
        rs, _ = run(ScoreOnly(), [init_req()])
        self.assertEqual(rs[0]["result"], {"params": 0})


class ErrorTest(unittest.TestCase):
    def error(self, model, requests, raw_lines=()):
        rs, err = run(model, requests, raw_lines)
        self.assertIn("error", rs[-1], rs[-1])
        return rs[-1], err

    def test_config_error_is_invalid_params(self):
        r, _ = self.error(Full(), [init_req(1, {"bad": 1})])
        self.assertEqual(r["error"]["code"], -32602)
        self.assertEqual(r["error"]["message"], "bad: not allowed")
        self.assertEqual(ConfigError("hidden", "must be positive").args[0], "hidden: must be positive")
        self.assertEqual(ConfigError("hidden", "must be positive").field, "hidden")
        self.assertEqual(ConfigError("hidden: must be positive").field, "hidden")
        self.assertIsNone(ConfigError("no field").field)

    def test_failed_init_leaves_model_uninitialised(self):
        rs, _ = run(Full(), [init_req(1, {"bad": 1}), req(2, "score", batch_params())])
        self.assertEqual(rs[1]["error"]["code"], -32000)
        self.assertIn("before init", rs[1]["error"]["message"])

    def test_exception_is_model_error_with_traceback(self):
        class Boom(ScoreOnly):
            def score(self, batch):
                return self.helper()

            def helper(self):
                raise RuntimeError("CUDA out of memory")

        r, err = self.error(Boom(), [init_req(), req(2, "score", batch_params())])
        self.assertEqual(r["id"], 2)
        self.assertEqual(r["error"]["code"], -32000)
        self.assertEqual(r["error"]["message"], "CUDA out of memory")
        tb = r["error"]["data"]
        self.assertTrue(tb.startswith("Traceback (most recent call last):"), tb)
        self.assertIn("in helper", tb)
        self.assertIn("RuntimeError: CUDA out of memory", tb)
        self.assertNotIn("_call", tb)  # the SDK's own frame is left out
        self.assertEqual(err, "")  # not also printed to stderr

    def test_exception_without_message(self):
        class Boom(ScoreOnly):
            def score(self, batch):
                raise KeyError

        r, _ = self.error(Boom(), [init_req(), req(2, "score", batch_params())])
        self.assertEqual(r["error"]["message"], "KeyError")

    def test_exception_in_init(self):
        class Boom(ScoreOnly):
            def init(self, config, env, seed):
                raise ValueError("no GPU")

        r, _ = self.error(Boom(), [init_req()])
        self.assertEqual((r["error"]["code"], r["error"]["message"]), (-32000, "no GPU"))

    def test_undeclared_and_unknown_methods(self):
        for method in ("train_step", "next_logprobs", "start", "step", "save", "load"):
            with self.subTest(method=method):
                r, _ = self.error(ScoreOnly(), [init_req(), req(2, method, {})])
                self.assertEqual(r["error"]["code"], -32601)
                self.assertIn("method not found: %s" % method, r["error"]["message"])
        r, _ = self.error(Full(), [req(1, "frobnicate", {})])
        self.assertEqual(r["error"], {"code": -32601, "message": "method not found: frobnicate"})

    def test_bad_params(self):
        bad = [
            req(2, "score", {"inputs": encode_array(INPUTS, "int32")}),  # no targets
            req(2, "score", {"inputs": encode_array(INPUTS, "int32"), "targets": encode_array([[1, 2]], "int32")}),
            req(2, "score", {"inputs": encode_array(INPUTS, "float32"), "targets": encode_array(TARGETS, "int32")}),
            req(2, "score", {"inputs": {"dtype": "int32", "shape": [2, 3], "data": "AAAA"},
                             "targets": encode_array(TARGETS, "int32")}),
            req(2, "next_logprobs", {"inputs": encode_array([1, 2], "int32")}),
            req(2, "next_logprobs", {"inputs": encode_array([[0] * 9], "int32")}),  # > max_context 8
            req(2, "train_step", dict(batch_params(), lr="fast")),
            req(2, "train_step", dict(batch_params(), step=True)),
            req(2, "start", {"prompts": {"dtype": "int32", "shape": [2, 0], "data": ""}}),
            req(2, "step", {"state": 1, "tokens": encode_array([1, 2], "int32")}),  # no such state
            req(2, "save", {}),
            req(2, "load", {"path": 3}),
            req(2, "score", [1, 2]),
        ]
        for r in bad:
            with self.subTest(req=r["method"], params=str(r.get("params"))[:80]):
                resp, _ = self.error(Full(), [init_req(), r])
                self.assertEqual(resp["error"]["code"], -32602, resp)
        for params in ({"config": [], "env": ENV}, {"config": {}}, {"env": {"vocab": 0}},
                       {"env": {"vocab": 4, "batch": -1}}, {"env": ENV, "seed": -1}, {"env": ENV, "seed": "1"}):
            with self.subTest(init=params):
                resp, _ = self.error(Full(), [req(1, "init", params)])
                self.assertEqual(resp["error"]["code"], -32602, resp)

    def test_invalid_requests(self):
        rs, _ = run(Full(), [], raw_lines=[
            "this is not json", "[1, 2]", json.dumps({"jsonrpc": "2.0", "method": "describe"}),
            json.dumps({"jsonrpc": "2.0", "id": 5, "method": 3}), json.dumps(req(6, "describe"))])
        self.assertEqual([r.get("error", {}).get("code") for r in rs], [-32700, -32600, -32600, -32600, None])
        self.assertEqual([r["id"] for r in rs], [None, None, None, 5, 6])

    def test_call_before_init(self):
        r, _ = self.error(Full(), [req(1, "score", batch_params())])
        self.assertEqual(r["error"]["code"], -32000)
        self.assertEqual(r["error"]["message"], "score called before init")


class ResultCheckTest(unittest.TestCase):
    def returning(self, method, value):
        class M(Full):
            pass

        setattr(M, method, lambda self, *args: value)
        return M()

    def test_wrong_shapes(self):
        cases = [
            ("score", [[0.0] * 2] * 2, "score", batch_params(), r"Full\.score returned logprobs: shape \[2 2\], want \[2 3\]"),
            ("score", array.array("f", [0.0] * 5), "score", batch_params(), r"5 values, want shape \[2 3\]"),
            ("next_logprobs", [[0.0] * 3] * 2, "next_logprobs", {"inputs": encode_array(INPUTS, "int32")},
             r"shape \[2 3\], want \[2 3 4\]"),
            ("start", (None, [[0.0] * 3] * 2), "start", {"prompts": encode_array([[1], [2]], "int32")},
             r"shape \[2 3\], want \[2 4\]"),
            ("start", [[0.0] * 4] * 2, "start", {"prompts": encode_array([[1], [2]], "int32")},
             r"start must return \(state, logprobs\)"),
            ("score", "text", "score", batch_params(), "cannot make a float32 array from str"),
        ]
        for attr, value, method, params, msg in cases:
            with self.subTest(attr=attr, msg=msg):
                m = self.returning(attr, value)
                m.__class__.__name__ = "Full"
                rs, _ = run(m, [init_req(), req(2, method, params)])
                self.assertEqual(rs[1]["error"]["code"], -32000, rs[1])
                self.assertRegex(rs[1]["error"]["message"], msg)

    def test_step_shape(self):
        class M(Full):
            def step(self, state, tokens):
                return [[0.0] * 4]

        rs, _ = run(M(), [init_req(), req(2, "start", {"prompts": encode_array([[1], [2]], "int32")}),
                          req(3, "step", {"state": 1, "tokens": encode_array([1, 2], "int32")}),
                          req(4, "step", {"state": 1, "tokens": encode_array([1], "int32")})])
        self.assertEqual(rs[2]["error"]["code"], -32000)
        self.assertRegex(rs[2]["error"]["message"], r"shape \[1 4\], want \[2 4\]")
        self.assertEqual(rs[3]["error"]["code"], -32602)  # tokens for 1 row, the state has 2

    def test_loss(self):
        for value, want in ((2, 2.0), (float("nan"), "NaN"), (float("inf"), "Infinity"), (-float("inf"), "-Infinity")):
            with self.subTest(value=value):
                rs, _ = run(self.returning("train_step", value), [init_req(), req(2, "train_step", batch_params())])
                self.assertEqual(rs[1]["result"], {"loss": want})
        rs, _ = run(self.returning("train_step", [1.0]), [init_req(), req(2, "train_step", batch_params())])
        self.assertEqual(rs[1]["error"]["code"], -32000)
        self.assertIn("must return the loss", rs[1]["error"]["message"])

    def test_bad_init_result(self):
        class M(Full):
            def init(self, config, env, seed):
                return "many"

        rs, _ = run(M(), [init_req()])
        self.assertEqual(rs[0]["error"]["code"], -32000)
        self.assertIn("number of parameters", rs[0]["error"]["message"])


class StdoutTest(unittest.TestCase):
    def test_print_goes_to_stderr(self):
        class Chatty(ScoreOnly):
            def init(self, config, env, seed):
                print("hello from init")
                return 0

            def score(self, batch):
                print("progress 50%")
                sys.stdout.write("raw write\n")
                return super().score(batch)

        saved = sys.stdout
        rs, err = run(Chatty(), [init_req(), req(2, "score", batch_params()), req(3, "shutdown")])
        self.assertIs(sys.stdout, saved)  # restored
        self.assertEqual([r["id"] for r in rs], [1, 2, 3])
        self.assertIn("result", rs[1])
        self.assertEqual(err, "hello from init\nprogress 50%\nraw write\n")

    def test_responses_are_one_compact_line_each(self):
        class Multiline(ScoreOnly):
            def score(self, batch):
                raise ValueError("line one\nline two")

        stdin = io.StringIO(json.dumps(init_req()) + "\n" + json.dumps(req(2, "score", batch_params())) + "\n")
        stdout = io.StringIO()
        serve(Multiline(), stdin=stdin, stdout=stdout)
        lines = stdout.getvalue().split("\n")
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[2], "")
        self.assertNotIn(": ", lines[0])
        self.assertEqual(json.loads(lines[1])["error"]["message"], "line one\nline two")


class StateTest(unittest.TestCase):
    def prompts(self):
        return {"prompts": encode_array([[1, 2]], "int32")}

    def test_ids_and_eviction_after_16(self):
        m = Full()
        n = MAX_STATES + 4
        requests = [init_req()] + [req(2 + i, "start", self.prompts()) for i in range(n)]
        rid = 100
        for state in range(1, n + 1):
            requests.append(req(rid, "step", {"state": state, "tokens": encode_array([0], "int32")}))
            rid += 1
        rs, _ = run(m, requests)
        self.assertEqual(MAX_STATES, 16)
        ids = [r["result"]["state"] for r in rs[1:1 + n]]
        self.assertEqual(ids, list(range(1, n + 1)))
        steps = rs[1 + n:]
        for state, r in zip(range(1, n + 1), steps):
            if state <= n - MAX_STATES:
                self.assertEqual(r["error"]["code"], -32602, r)
                self.assertIn("unknown or forgotten", r["error"]["message"])
            else:
                self.assertEqual(decode_array(r["result"]["logprobs"]).tolist(), [[3.0] * 4], r)

    def test_most_recently_used_are_kept(self):
        requests = [init_req(), req(2, "start", self.prompts())]
        for i in range(MAX_STATES):  # state 1 is stepped between the starts of states 2..17
            requests.append(req(10 + i, "step", {"state": 1, "tokens": encode_array([0], "int32")}))
            requests.append(req(100 + i, "start", self.prompts()))
        requests.append(req(500, "step", {"state": 1, "tokens": encode_array([0], "int32")}))
        requests.append(req(501, "step", {"state": 2, "tokens": encode_array([0], "int32")}))
        rs, _ = run(Full(), requests)
        self.assertIn("result", rs[-2])  # state 1: used recently, kept
        self.assertEqual(rs[-1]["error"]["code"], -32602)  # state 2: the least recently used, gone
        self.assertEqual(decode_array(rs[-2]["result"]["logprobs"]).tolist(), [[float(2 + MAX_STATES + 1)] * 4])

    def test_states_are_separate_and_reset_by_init(self):
        rs, _ = run(Full(), [
            init_req(), req(2, "start", self.prompts()), req(3, "start", {"prompts": encode_array([[1, 2, 3]], "int32")}),
            req(4, "step", {"state": 1, "tokens": encode_array([0], "int32")}),
            req(5, "step", {"state": 2, "tokens": encode_array([0], "int32")}),
            init_req(6), req(7, "step", {"state": 1, "tokens": encode_array([0], "int32")})])
        self.assertEqual(decode_array(rs[3]["result"]["logprobs"]).tolist(), [[3.0] * 4])
        self.assertEqual(decode_array(rs[4]["result"]["logprobs"]).tolist(), [[4.0] * 4])
        self.assertEqual(rs[6]["error"]["code"], -32602)


if __name__ == "__main__":
    unittest.main()


class BytePairs(Model):
    """Its own tokenizer: byte pairs, uniform over their 65536 values."""
    family = "pairs"

    def init(self, config, env, seed):
        return 0

    def score_text(self, texts):
        return [len(t) // 2 * math.log(65536) + len(t) % 2 * math.log(256) for t in texts]


class ScoreTextTest(unittest.TestCase):
    def test_score_text(self):
        self.assertEqual(BytePairs.capabilities(), ["score_text"])
        texts = [base64.b64encode(t).decode() for t in (b"abc", b"", b"\x00\xff")]
        out, _ = run(BytePairs(), [init_req(), req(2, "score_text", {"texts": texts}),
                                   req(3, "score_text", {"texts": ["not base64!"]}),
                                   req(4, "score_text", {"texts": 3})])
        nats = out[1]["result"]["nats"]
        self.assertEqual(len(nats), 3)
        self.assertAlmostEqual(nats[0] / 3 / math.log(2), 8)
        self.assertEqual(nats[1], 0)
        self.assertEqual(out[2]["error"]["code"], -32602)
        self.assertEqual(out[3]["error"]["code"], -32602)

    def test_wrong_count_and_undeclared(self):
        class Short(BytePairs):
            def score_text(self, texts):
                return [1.0]
        out, _ = run(Short(), [init_req(), req(2, "score_text", {"texts": ["", ""]})])
        self.assertEqual(out[1]["error"]["code"], -32000)
        self.assertIn("1 totals for 2 texts", out[1]["error"]["message"])
        out, _ = run(ScoreOnly(), [init_req(), req(2, "score_text", {"texts": []})])
        self.assertEqual(out[1]["error"]["code"], -32601)


class Copier(Model):
    """Conditional: translates a source into itself."""
    family = "copier"
    conditional = True
    decode_settings = ({"name": "T=1", "params": {"iterations": 1}, "baseline": True}, {"name": "T=2"})

    def init(self, config, env, seed):
        self.seen = []
        return 0

    def train_step(self, batch, step, lr, clip, seed):
        self.seen.append(batch.source.tolist())
        return 1.0

    def translate(self, sources, options):
        rows = [[t for t in row if t != 0] for row in sources.tolist()]
        if options.length:
            rows = [(r * options.length)[:options.length] for r in rows]
        return {"outputs": rows, "passes": 2 if options.setting == "T=2" else 1, "lengths": [len(r) + 1 for r in rows]}


class ConditionalTest(unittest.TestCase):
    def test_describe_and_translate(self):
        src = encode_array([[3, 4, 0], [5, 0, 0]], "int32")
        out, _ = run(Copier(), [
            req(1, "describe"), init_req(2),
            req(3, "translate", {"sources": src, "start": 1, "end": 2, "max_len": 8, "setting": "T=2", "length": 0}),
            req(4, "translate", {"sources": src, "start": 1, "end": 2, "max_len": 8, "setting": "", "length": 3}),
            req(5, "translate", {"sources": src, "start": 1, "end": 2, "setting": "T=9"}),
            req(6, "train_step", dict(batch_params(), source=encode_array([[3], [4]], "int32"))),
            req(7, "train_step", batch_params()),
        ])
        d = out[0]["result"]
        self.assertTrue(d["conditional"])
        self.assertEqual(d["capabilities"], ["train_step", "translate"])
        self.assertEqual(d["decode_settings"], [{"name": "T=1", "params": {"iterations": 1}, "baseline": True},
                                                {"name": "T=2", "params": {}, "baseline": False}])
        self.assertEqual(out[2]["result"], {"outputs": [[3, 4], [5]], "passes": 2, "lengths": [3, 2], "stats": None})
        self.assertEqual(out[3]["result"]["outputs"], [[3, 4, 3], [5, 5, 5]])
        self.assertEqual(out[4]["error"]["code"], -32602)
        self.assertIn("result", out[5])
        self.assertEqual(out[6]["error"]["code"], -32602)  # a conditional model's batch needs a source

    def test_source_refused_by_a_language_model(self):
        out, _ = run(ScoreOnly(), [init_req(), req(2, "score", dict(batch_params(), source=encode_array([[3], [4]], "int32")))])
        self.assertEqual(out[1]["error"]["code"], -32602)

    def test_conditional_needs_translate(self):
        class Broken(Model):
            family = "broken"
            conditional = True

            def init(self, config, env, seed):
                return 0
        with self.assertRaises(TypeError):
            Broken.describe()
