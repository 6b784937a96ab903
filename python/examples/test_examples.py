"""Tests of the PyTorch example plugins, driven over the protocol as arbench drives them.

    /usr/bin/python3 -m unittest discover -s python/examples -p 'test_*.py'

Each example runs as a child process (one per model for most tests) and gets JSON-RPC lines
on its stdin. The tests need PyTorch for the interpreter that runs them (Debian's
python3-torch is /usr/bin/python3's) and skip otherwise, except the one that checks the
message an example gives when PyTorch is missing.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
NEEDS_TORCH = "this example needs PyTorch: apt-get install python3-torch (or pip install torch)"

try:
    import torch
except ImportError:  # the torch-missing test still runs
    torch = None

if torch is not None:
    import check_weights
    from check_weights import Plugin, PluginError

    torch.set_num_threads(1)


def pattern(B, T, period=5, vocab=8):
    """[B, T+1] rows of a repeated pattern, each row starting at another phase."""
    base = torch.tensor([3, 1, 4, 1, 5, 0, 2, 6][:period]) % vocab
    t = torch.arange(T + 1)
    return torch.stack([base[(t + i) % period] for i in range(B)])


@unittest.skipIf(torch is None, "PyTorch is not installed for %s" % sys.executable)
class _ExampleTest:
    """Mixed into one TestCase per model; the class attributes say which."""

    model = ""           # check_weights.SCRIPTS key
    config = {}          # a small plugin_config
    context = None       # --context for the transformer
    vocab, seq_len = 8, 12

    @classmethod
    def setUpClass(cls):
        cls.p = Plugin(check_weights.example_argv(cls.model, cls.context))

    @classmethod
    def tearDownClass(cls):
        cls.p.close()

    def init(self, seed=1, **override):
        cfg = dict(self.config, **override)
        env = {"vocab": self.vocab, "seq_len": self.seq_len, "batch": 4, "eval_batch": 4}
        return self.p.call("init", config=cfg, env=env, seed=seed)["params"]

    def next_logprobs(self, x, p=None):
        p = p or self.p
        return p.tensor(p.call("next_logprobs", inputs=p.arr(x))["logprobs"])

    def test_describe(self):
        d = self.p.call("describe")
        self.assertEqual(d["protocol"], 1)
        self.assertEqual(sorted(d["capabilities"]),
                         sorted(["train_step", "score", "next_logprobs", "step", "save", "load"]))
        self.assertEqual(d["max_context"], self.context or 0)
        self.assertRegex(d["runtime"], r"^PyTorch [0-9][^,]*, [0-9]+ threads")

    def test_loss_falls_on_a_repeated_pattern(self):
        n = self.init()
        self.assertGreater(n, 0)
        rows = pattern(4, self.seq_len)
        x, y = self.p.arr(rows[:, :-1]), self.p.arr(rows[:, 1:])
        losses = [self.p.call("train_step", inputs=x, targets=y, step=s, lr=3e-2, clip=1.0, seed=s)["loss"]
                  for s in range(1, 31)]
        self.assertAlmostEqual(losses[0], torch.log(torch.tensor(float(self.vocab))).item(), delta=0.5)
        self.assertLess(losses[-1], 0.5 * losses[0], losses)

    def test_train_step_masks_unscored_targets(self):
        self.init(dropout=0.0)  # so that the training loss is the evaluation one
        rows = pattern(2, 6)
        x, y = rows[:, :-1], rows[:, 1:].clone()
        y[0, 2:] = -1
        loss = self.p.call("train_step", inputs=self.p.arr(x), targets=self.p.arr(y), step=1, lr=0.0,
                           clip=0.0, seed=1)["loss"]
        self.init(dropout=0.0)  # the same weights again (same seed): the loss is the mean over scored targets
        lp = self.next_logprobs(x)
        keep = y >= 0
        want = -check_weights._torchlm.pick(lp, y)[keep].mean().item()
        self.assertAlmostEqual(loss, want, places=5)
        none = torch.full_like(y, -1)
        self.assertEqual(self.p.call("train_step", inputs=self.p.arr(x), targets=self.p.arr(none), step=1,
                                     lr=1e-2, clip=1.0, seed=1)["loss"], 0.0)

    def test_train_step_is_torch_adam_with_clipping(self):
        # Two steps of the plugin against the textbook PyTorch loop on the same weights:
        # F.cross_entropy(ignore_index=-1), clip_grad_norm_, torch.optim.Adam with each step's lr.
        self.init(seed=2, dropout=0.0)
        rows = pattern(3, 8)
        x, y = rows[:, :-1], rows[:, 1:].clone()
        y[2, :3] = -1
        steps = [(1, 2e-2, 0.25), (2, 5e-3, 0.25)]  # clip 0.25: the gradients are clipped
        with tempfile.TemporaryDirectory() as d:
            w0, w2 = os.path.join(d, "w0.safetensors"), os.path.join(d, "w2.safetensors")
            self.p.call("save", path=w0)
            losses = [self.p.call("train_step", inputs=self.p.arr(x), targets=self.p.arr(y), step=s, lr=lr,
                                  clip=clip, seed=s)["loss"] for s, lr, clip in steps]
            self.p.call("save", path=w2)
            ref = self.build()
            ref.load_state_dict(check_weights._safetensors.load_file(w0))
            want = check_weights._safetensors.load_file(w2)
        opt = torch.optim.Adam(ref.parameters(), lr=1.0, betas=(0.9, 0.999), eps=1e-8)
        for (s, lr, clip), got in zip(steps, losses):
            opt.zero_grad()
            logits = ref(x)
            logits = logits[0] if isinstance(logits, tuple) else logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, self.vocab), y.reshape(-1), ignore_index=-1)
            self.assertAlmostEqual(got, loss.item(), places=5)
            loss.backward()
            self.assertGreater(torch.nn.utils.clip_grad_norm_(ref.parameters(), clip).item(), clip)
            opt.param_groups[0]["lr"] = lr
            opt.step()
        for name, t in ref.state_dict().items():
            self.assertLessEqual((t - want[name]).abs().max().item(), 1e-6, name)

    def test_score_is_next_logprobs_at_the_targets(self):
        self.init(seed=7)
        rows = torch.randint(0, self.vocab, (3, 9), generator=torch.Generator().manual_seed(3))
        x, y = rows[:, :-1], rows[:, 1:].clone()
        y[1, -3:] = -1
        sc = self.p.tensor(self.p.call("score", inputs=self.p.arr(x), targets=self.p.arr(y))["logprobs"])
        lp = self.next_logprobs(x)
        self.assertEqual(tuple(lp.shape), (3, 8, self.vocab))
        self.assertTrue(torch.allclose(lp.exp().sum(-1), torch.ones(3, 8), atol=1e-5))
        want = lp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        want[y < 0] = 0
        self.assertLessEqual((sc - want).abs().max().item(), 1e-6)
        self.assertTrue((sc[1, -3:] == 0).all())

    def test_start_step_equals_next_logprobs(self):
        self.init(seed=5)
        rows = torch.randint(0, self.vocab, (3, self.seq_len), generator=torch.Generator().manual_seed(4))
        lp = self.next_logprobs(rows)
        P = 3
        r = self.p.call("start", prompts=self.p.arr(rows[:, :P]))
        got = [self.p.tensor(r["logprobs"])]
        for t in range(P, self.seq_len):
            got.append(self.p.tensor(self.p.call("step", state=r["state"], tokens=self.p.arr(rows[:, t]))["logprobs"]))
        diff = (torch.stack(got, 1) - lp[:, P - 1:]).abs().max().item()
        self.assertLessEqual(diff, 1e-5)

    def test_save_load_round_trip(self):
        self.init(seed=11)
        rows = pattern(2, self.seq_len)
        self.p.call("train_step", inputs=self.p.arr(rows[:, :-1]), targets=self.p.arr(rows[:, 1:]), step=1,
                    lr=1e-2, clip=1.0, seed=1)
        want = self.next_logprobs(rows[:, :-1])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.safetensors")
            self.p.call("save", path=path)
            names = set(check_weights._safetensors.load_file(path))
            self.assertEqual(names, self.state_dict_names())
            self.init(seed=12)  # other weights ...
            self.assertGreater((self.next_logprobs(rows[:, :-1]) - want).abs().max().item(), 1e-3)
            self.p.call("load", path=path)  # ... until the saved ones are back
            self.assertTrue(torch.equal(self.next_logprobs(rows[:, :-1]), want))
            with self.assertRaises(PluginError) as cm:  # another configuration is refused, by name
                self.init(**self.other_shape)
                self.p.call("load", path=path)
            self.assertIn("do not fit", cm.exception.message)

    def test_bad_config_is_invalid_params(self):
        for bad, field in self.bad_configs + [({"hiden": 3}, "hiden"), ({"lr": -1}, "lr")]:
            with self.subTest(bad=bad):
                with self.assertRaises(PluginError) as cm:
                    self.init(**bad)
                self.assertEqual(cm.exception.code, -32602)
                self.assertTrue(cm.exception.message.startswith(field + ":"), cm.exception.message)

    def test_reference_fixture(self):
        # Same weights, same numbers: the Go plugin's PyTorch fixture (the Go tests check the Go
        # model against the same file with tolerance 1e-5).
        model, wpath, iopath = [c for c in check_weights.fixtures() if c[0] == self.model][0]
        d = check_weights.compare(model, wpath, iopath)
        for k in ("next_logprobs", "score", "step"):
            self.assertLessEqual(d[k], 1e-5, (k, d))


class RNNTest(_ExampleTest, unittest.TestCase):
    model = "rnn"
    config = {"cell": "rnn", "embed": 8, "hidden": 16, "layers": 2}
    other_shape = {"hidden": 12}
    bad_configs = [({"cell": "gru"}, "cell"), ({"hidden": 0}, "hidden"), ({"layers": 1.5}, "layers"),
                   ({"dropout": 1.0}, "dropout")]

    def build(self):
        import torch_rnn
        c = self.config
        return torch_rnn.RNNGenerator(self.vocab, c["embed"], c["hidden"], c["cell"], c["layers"])

    def state_dict_names(self):
        return {"embedding.weight", "fc.weight", "fc.bias"} | {
            "rnn.%s_l%d" % (w, k) for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for k in range(2)}


class LSTMTest(RNNTest):
    model = "lstm"
    config = {"cell": "lstm", "embed": 8, "hidden": 16, "layers": 2, "dropout": 0.1}


class TransformerTest(_ExampleTest, unittest.TestCase):
    model = "transformer"
    context = 16
    config = {"dim": 16, "heads": 2, "layers": 2, "context": 16}
    other_shape = {"dim": 8}
    bad_configs = [({"heads": 3}, "heads"), ({"context": 32}, "context"), ({"ff": -1}, "ff"),
                   ({"dim": "16"}, "dim")]

    def build(self):
        import torch_transformer
        c = self.config
        return torch_transformer.TransformerDecoder(self.vocab, c["dim"], c["heads"], c["layers"], c["context"])

    def state_dict_names(self):
        names = {"embedding.weight", "pos.weight", "fc.weight", "fc.bias"}
        for i in range(2):
            pre = "encoder.layers.%d." % i
            names |= {pre + "self_attn." + n for n in ("in_proj_weight", "in_proj_bias", "out_proj.weight",
                                                       "out_proj.bias")}
            names |= {pre + m + "." + n for m in ("linear1", "linear2", "norm1", "norm2") for n in ("weight", "bias")}
        return names

    def test_rows_beyond_the_context_are_refused(self):
        self.init()
        with self.assertRaises(PluginError) as cm:
            self.next_logprobs(torch.zeros(1, 17, dtype=torch.long))
        self.assertEqual(cm.exception.code, -32602)

    def test_the_mask_is_causal(self):
        # Changing a later token must not change any earlier position's distribution.
        self.init(seed=3)
        a = torch.randint(0, self.vocab, (1, 10), generator=torch.Generator().manual_seed(9))
        b = a.clone()
        b[0, 6] = (b[0, 6] + 1) % self.vocab
        la, lb = self.next_logprobs(a), self.next_logprobs(b)
        self.assertTrue(torch.equal(la[:, :6], lb[:, :6]))
        self.assertFalse(torch.equal(la[:, 6:], lb[:, 6:]))


# Runs the example with an interpreter where `import torch` fails, as it does without PyTorch.
_NO_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = [sys.argv[1]]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")


class TorchMissingTest(unittest.TestCase):
    def test_message_and_status(self):
        for script in ("torch_rnn.py", "torch_transformer.py", "check_weights.py"):
            with self.subTest(script=script):
                r = subprocess.run([sys.executable, "-c", _NO_TORCH, os.path.join(HERE, script)],
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, b"")
                self.assertEqual(r.stderr.decode(), NEEDS_TORCH + "\n")

    def test_an_interpreter_without_torch(self):
        # The python3 first on PATH, when it is another interpreter that really lacks torch
        # (as the pyenv one on arbench's CI machines does).
        other = shutil.which("python3")
        if not other or os.path.realpath(other) == os.path.realpath(sys.executable):
            self.skipTest("no second python3 on PATH")
        if subprocess.run([other, "-c", "import torch"], capture_output=True, timeout=60).returncode == 0:
            self.skipTest("%s has torch" % other)
        r = subprocess.run([other, os.path.join(HERE, "torch_rnn.py")], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout, r.stderr.decode()), (2, b"", NEEDS_TORCH + "\n"))


if __name__ == "__main__":
    unittest.main()
