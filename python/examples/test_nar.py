"""Tests of torch_nar.py (the CMLM plugin), driven over the protocol as arbench drives it.

    /usr/bin/python3 -m unittest discover -s python/examples -p 'test_*.py'

The plugin runs as a child process (check_weights.Plugin, as in test_examples.py) and gets
JSON-RPC lines on its stdin; a copy task (source: 3 to 6 tokens from 3..9, target: the same) is
trained once per run and its weights reused. The mask-predict schedule and the Go model's
PyTorch twin are checked in this process. The tests need PyTorch for the interpreter that runs
them (Debian's python3-torch is /usr/bin/python3's) and skip otherwise, except the one that checks
the message the plugin gives when PyTorch is missing.
"""

import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "torch_nar.py")
NEEDS_TORCH = "this example needs PyTorch: apt-get install python3-torch (or pip install torch)"

try:
    import torch
except ImportError:  # the torch-missing test still runs
    torch = None

if torch is not None:
    import _safetensors
    import torch_nar
    from check_weights import Plugin, PluginError

    torch.set_num_threads(1)

V = 10                      # 0 pad, 1 start, 2 end, content 3..9
START, END = 1, 2
MIN_LEN, MAX_LEN = 3, 6
ENV = {"vocab": V, "seq_len": MAX_LEN + 1, "batch": 32, "eval_batch": 64,
       "source_len": MAX_LEN, "target_len": MAX_LEN + 1}
CONFIG = {"dim": 32, "heads": 2, "layers": 1, "ff": 64, "context": 8, "max_offset": 2}
STEPS, BATCH, LR, CLIP = 150, 32, 3e-3, 1.0
TEST_ROWS = 128


def copy_batch(B, gen):
    """B copy examples framed as seq2seq.PadBatch frames them: (source [B,S] 0-padded,
    inputs [B,T] = start, target, 0s; targets [B,T] = target, end, -1s; the contents)."""
    lens = torch.randint(MIN_LEN, MAX_LEN + 1, (B,), generator=gen).tolist()
    contents = [torch.randint(3, V, (n,), generator=gen).tolist() for n in lens]
    S, T = max(lens), max(lens) + 1
    src = torch.zeros(B, S, dtype=torch.long)
    inp = torch.zeros(B, T, dtype=torch.long)
    tgt = torch.full((B, T), -1, dtype=torch.long)
    for i, c in enumerate(contents):
        n = len(c)
        src[i, :n] = torch.tensor(c)
        inp[i, 0] = START
        inp[i, 1:n + 1] = torch.tensor(c)
        tgt[i, :n] = torch.tensor(c)
        tgt[i, n] = END
    return src, inp, tgt, contents


@unittest.skipIf(torch is None, "PyTorch is not installed for %s" % sys.executable)
class NARTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.p = Plugin([sys.executable, SCRIPT])
        cls.dir = tempfile.mkdtemp(prefix="test_nar.")
        cls.trained_path = os.path.join(cls.dir, "trained.safetensors")
        cls.p.call("init", config=CONFIG, env=ENV, seed=1)
        gen = torch.Generator().manual_seed(5)
        cls.losses = []
        for s in range(1, STEPS + 1):
            src, inp, tgt, _ = copy_batch(BATCH, gen)
            cls.losses.append(cls.p.call("train_step", source=cls.p.arr(src), inputs=cls.p.arr(inp),
                                         targets=cls.p.arr(tgt), step=s, lr=LR, clip=CLIP, seed=s)["loss"])
        cls.p.call("save", path=cls.trained_path)
        src, _, _, contents = copy_batch(TEST_ROWS, torch.Generator().manual_seed(99))
        cls.test_src, cls.test_contents = src, contents

    @classmethod
    def tearDownClass(cls):
        cls.p.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def init(self, seed=1, p=None, **override):
        p = p or self.p
        return p.call("init", config=dict(CONFIG, **override), env=ENV, seed=seed)["params"]

    def trained(self, **override):
        self.init(**override)
        self.p.call("load", path=self.trained_path)

    def translate(self, src=None, setting="T=4", length=0, max_len=MAX_LEN + 2, p=None):
        p = p or self.p
        src = self.test_src if src is None else src
        return p.call("translate", sources=p.arr(src), start=START, end=END, max_len=max_len,
                      setting=setting, length=length)

    def exact(self, r):
        return sum(o == c for o, c in zip(r["outputs"], self.test_contents)) / len(self.test_contents)

    def test_describe(self):
        d = self.p.call("describe")
        self.assertEqual((d["protocol"], d["family"], d["conditional"]), (1, "torch-nar", True))
        self.assertRegex(d["runtime"], r"^PyTorch [0-9][^,]*, [0-9]+ threads")
        self.assertEqual(sorted(d["capabilities"]), ["load", "save", "train_step", "translate"])
        self.assertEqual(d["decode_settings"], [{"name": "T=%d" % T, "params": {"iterations": T}, "baseline": False}
                                                for T in (1, 2, 4, 10)])

    def test_score_is_not_declared(self):
        # A CMLM has no left-to-right likelihood; like the Go nar model (no Scorer) it has no score.
        self.trained()
        src, inp, tgt, _ = copy_batch(2, torch.Generator().manual_seed(1))
        with self.assertRaises(PluginError) as cm:
            self.p.call("score", source=self.p.arr(src), inputs=self.p.arr(inp), targets=self.p.arr(tgt))
        self.assertEqual(cm.exception.code, -32601)

    def test_copy_task_learns(self):
        # Untrained: ln V for the masked tokens + 0.1 × ln(2M+1) for the length.
        start = math.log(V) + 0.1 * math.log(2 * CONFIG["max_offset"] + 1)
        end = sum(self.losses[-10:]) / 10
        self.assertAlmostEqual(self.losses[0], start, delta=0.3)
        self.assertLess(end, 0.1 * self.losses[0], self.losses[-10:])
        self.trained()
        exact = {}
        for setting, passes in (("T=1", 1), ("T=4", 4), ("", 1)):  # "": iterations, default 1
            r = self.translate(setting=setting)
            exact[setting] = self.exact(r)
            self.assertEqual(r["passes"], passes, setting)  # every N = |source| + 1 >= 4
            self.assertEqual(r["stats"], {"length_candidates": TEST_ROWS})
            right = sum(n == len(c) + 1 for n, c in zip(r["lengths"], self.test_contents))
            self.assertGreaterEqual(right, 0.95 * TEST_ROWS, setting)
        # Measured (seeds as here): loss 2.418 -> 0.006, exact match 1.000 at T=1 and at T=4.
        self.assertGreaterEqual(exact["T=4"], 0.7, "loss %.3f -> %.3f (mean of the last 10 of %d steps), exact match "
                                "T=1 %.3f, T=4 %.3f" % (self.losses[0], end, STEPS, exact["T=1"], exact["T=4"]))

    def test_forced_length(self):
        self.trained()
        for k in (1, 4, 8):  # 8: the whole context; max_len is ignored
            with self.subTest(length=k):
                r = self.translate(length=k, max_len=1)
                self.assertEqual([len(o) for o in r["outputs"]], [k] * TEST_ROWS)
                self.assertEqual(r["lengths"], [k] * TEST_ROWS)
                self.assertEqual(r["passes"], min(4, k))  # N < T: fewer passes
        with self.assertRaises(PluginError) as cm:
            self.translate(length=9)
        self.assertIn("exceeds the context", cm.exception.message)

    def test_length_beam(self):
        self.trained(length_beam=3)
        r = self.translate()
        self.assertEqual(r["stats"], {"length_candidates": 3 * TEST_ROWS})
        self.assertGreaterEqual(self.exact(r), 0.7)
        for n, o in zip(r["lengths"], r["outputs"]):
            self.assertLessEqual(len(o), n)

    def test_save_load_round_trip(self):
        self.trained()
        want = self.translate()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "w.safetensors")
            self.p.call("save", path=path)
            tensors = _safetensors.load_file(path)
            self.assertEqual(set(tensors), go_nar_names(CONFIG["layers"]))
            self.assertEqual(list(tensors["tgt_embedding.weight"].shape), [V + 1, CONFIG["dim"]])  # row V: [MASK]
            self.assertEqual(list(tensors["length_head.weight"].shape), [2 * CONFIG["max_offset"] + 1, CONFIG["dim"]])
            self.init(seed=2)  # other weights ...
            self.assertNotEqual(self.translate()["outputs"], want["outputs"])
            self.p.call("load", path=path)  # ... until the saved ones are back
            self.assertEqual(self.translate(), want)
            with self.assertRaises(PluginError) as cm:  # another configuration is refused, by name
                self.init(dim=16)
                self.p.call("load", path=path)
            self.assertIn("do not fit", cm.exception.message)

    def test_bad_config_is_invalid_params(self):
        for bad, field in [({"hiden": 3}, "hiden"), ({"heads": 3}, "heads"), ({"iterations": 0}, "iterations"),
                           ({"length_beam": 6}, "length_beam"), ({"max_offset": -1}, "max_offset"),
                           ({"sweep_iterations": [1, 2]}, "sweep_iterations"),
                           ({"sweep_iterations": [1, 1]}, "sweep_iterations[1]"),
                           ({"semi_ar": [2]}, "semi_ar"), ({"distill": {}}, "distill"),
                           ({"context": 5}, "context"), ({"early_stop": 1}, "early_stop"),
                           ({"length_loss_weight": -1}, "length_loss_weight"), ({"lr": -1}, "lr")]:
            with self.subTest(bad=bad):
                with self.assertRaises(PluginError) as cm:
                    self.init(**bad)
                self.assertEqual(cm.exception.code, -32602)
                self.assertTrue(cm.exception.message.startswith(field + ":"), cm.exception.message)
        self.init(sweep_iterations=[1, 2, 4, 10])  # the declared list is accepted

    def test_bad_requests(self):
        self.trained()
        with self.assertRaises(PluginError) as cm:  # not among the declared settings
            self.translate(setting="T=3")
        self.assertEqual(cm.exception.code, -32602)
        with self.assertRaises(PluginError) as cm:
            self.translate(src=torch.tensor([[3, 4], [0, 0]]))
        self.assertIn("row 1 is empty", cm.exception.message)
        with self.assertRaises(PluginError) as cm:
            self.p.call("init", config=CONFIG, env=dict(ENV, source_len=0, target_len=0), seed=1)
        self.assertIn("conditional model", cm.exception.message)

    def test_sweep_iterations_flag(self):
        with Plugin([sys.executable, SCRIPT, "--sweep-iterations", "3,1"]) as p:
            names = [s["name"] for s in p.call("describe")["decode_settings"]]
            self.assertEqual(names, ["T=3", "T=1"])
            self.init(p=p, sweep_iterations=[3, 1], iterations=2)
            self.assertEqual(self.translate(setting="T=3", p=p)["passes"], 3)
            self.assertEqual(self.translate(setting="", p=p)["passes"], 2)


@unittest.skipIf(torch is None, "PyTorch is not installed for %s" % sys.executable)
class MaskPredictTest(unittest.TestCase):
    """torch_nar.mask_predict follows the Go decoding.MaskPredict schedule."""

    def test_schedule(self):
        seen = []  # per call: the masked count of each row

        def predict(tokens, pad):
            masked = (tokens == 99) & ~pad
            seen.append(masked.sum(1).tolist())
            R, L = tokens.shape
            # Confidence rises with the position, ties between positions 0 and 1.
            lp = -1.0 / (1 + torch.arange(L, dtype=torch.float32)).expand(R, L).clone()
            lp[:, 0] = lp[:, 1]
            return torch.full((R, L), 7), lp

        tokens, logp, conf, calls = torch_nar.mask_predict(predict, [5, 2, 0], 5, mask=99)
        # floor(N·(T−t)/T): N=5: 5,4,3,2,1; N=2: 2,1,1 then nothing (1 + T − ⌈T/N⌉ = 3 passes).
        self.assertEqual(seen, [[5, 2, 0], [4, 1, 0], [3, 1, 0], [2, 0, 0], [1, 0, 0]])
        self.assertEqual(calls, 5)
        self.assertEqual(tokens[0].tolist(), [7] * 5)
        self.assertEqual(conf[2].item(), 0.0)
        self.assertAlmostEqual(conf[0].item(), logp[0].mean().item(), places=6)

        masks = []

        def record(tokens, pad):
            masks.append((tokens[0] == 99).tolist())
            return predict(tokens, pad)

        torch_nar.mask_predict(record, [4], 2, mask=99)
        # After pass 1 of 2, floor(4/2) = 2 are masked again: the least confident, the lower
        # position first on the tie.
        self.assertEqual(masks, [[True] * 4, [True, True, False, False]])
        seen.clear()
        _, _, _, calls = torch_nar.mask_predict(predict, [5], 5, mask=99, early_stop=True)
        self.assertEqual(calls, 2)  # pass 2 changed nothing: frozen

    def test_one_pass_is_the_argmax(self):
        torch.manual_seed(0)
        m = torch_nar.CMLM(V, 16, 2, 1, 32, 8, 2).eval()
        src = torch.tensor([[3, 4, 5, 0], [6, 7, 8, 9]])
        pad = src == 0
        with torch.no_grad():
            mem, _ = m.encode(src, pad)
            all_mask = torch.full((2, 5), V)
            want = m.decode(all_mask, torch.zeros(2, 5, dtype=torch.bool), mem, pad).argmax(-1)

            def predict(tokens, tpad):
                lp = torch.log_softmax(m.decode(tokens, tpad, mem, pad), -1)
                best, tok = lp.max(-1)
                return tok, best

            tokens, _, _, calls = torch_nar.mask_predict(predict, [5, 5], 1, mask=V)
        self.assertEqual(calls, 1)
        self.assertTrue(torch.equal(tokens, want))


def go_nar_names(layers):
    """The state_dict names of the Go nar model's PyTorch twin (plugins/nar/nar.go)."""
    attn = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
    names = {"src_embedding.weight", "src_pos.weight", "tgt_embedding.weight", "tgt_pos.weight",
             "fc.weight", "fc.bias", "length_head.weight", "length_head.bias"}
    for i in range(layers):
        e, d = "encoder.layers.%d." % i, "decoder.layers.%d." % i
        names |= {e + "self_attn." + n for n in attn} | {d + "self_attn." + n for n in attn}
        names |= {d + "multihead_attn." + n for n in attn}
        names |= {e + m + "." + n for m in ("linear1", "linear2", "norm1", "norm2") for n in ("weight", "bias")}
        names |= {d + m + "." + n for m in ("linear1", "linear2", "norm1", "norm2", "norm3") for n in ("weight", "bias")}
    return names


if torch is not None:
    class GoTwin(torch.nn.Module):
        """The Go nar model's PyTorch twin, as its package comment writes it."""

        def __init__(self, V, d, heads, layers, ff, ctx, M, p=0.0):
            super().__init__()
            nn = torch.nn
            self.src_embedding = nn.Embedding(V, d)
            self.src_pos = nn.Embedding(ctx, d)
            self.encoder = nn.TransformerEncoder(
                nn.TransformerEncoderLayer(d, heads, ff, p, batch_first=True), layers, enable_nested_tensor=False)
            self.tgt_embedding = nn.Embedding(V + 1, d)
            self.tgt_pos = nn.Embedding(ctx, d)
            self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, heads, ff, p, batch_first=True), layers)
            self.fc = nn.Linear(d, V)
            self.length_head = nn.Linear(d, 2 * M + 1)

        def forward(self, src, src_pad, tgt, tgt_pad):
            S, T = src.shape[1], tgt.shape[1]
            x = self.src_embedding(src) + self.src_pos(torch.arange(S))
            memory = self.encoder(x, src_key_padding_mask=src_pad)
            keep = (~src_pad).float().unsqueeze(-1)
            length_logits = self.length_head((memory * keep).sum(1) / keep.sum(1))
            y = self.tgt_embedding(tgt) + self.tgt_pos(torch.arange(T))
            h = self.decoder(y, memory, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
            return self.fc(h), length_logits


@unittest.skipIf(torch is None, "PyTorch is not installed for %s" % sys.executable)
class GoTwinTest(unittest.TestCase):
    def test_same_names_same_numbers(self):
        torch.manual_seed(3)
        ours = torch_nar.CMLM(V, 16, 2, 2, 32, 8, 2)
        twin = GoTwin(V, 16, 2, 2, 32, 8, 2)
        twin.load_state_dict(ours.state_dict())  # strict: the same names and shapes
        self.assertEqual(set(ours.state_dict()), go_nar_names(2))
        src = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 3]])
        tgt = torch.tensor([[3, V, 5, 2, V, V], [V, V, V, V, V, 2]])
        src_pad, tgt_pad = src == 0, torch.tensor([[False] * 4 + [True] * 2, [False] * 6])
        for train in (False, True):  # eval takes PyTorch's fast path, training the plain one
            ours.train(train)
            twin.train(train)
            with torch.no_grad():
                mem, len_ours = ours.encode(src, src_pad)
                got = ours.decode(tgt, tgt_pad, mem, src_pad)
                want, len_twin = twin(src, src_pad, tgt, tgt_pad)
            keep = ~tgt_pad
            self.assertLessEqual((got - want)[keep].abs().max().item(), 1e-5, train)
            self.assertLessEqual((len_ours - len_twin).abs().max().item(), 1e-5, train)


# Runs the plugin with an interpreter where `import torch` fails, as it does without PyTorch.
_NO_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = [sys.argv[1]]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")


class TorchMissingTest(unittest.TestCase):
    def test_message_and_status(self):
        r = subprocess.run([sys.executable, "-c", _NO_TORCH, SCRIPT], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, cwd=HERE)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(r.stderr.decode(), NEEDS_TORCH + "\n")


if __name__ == "__main__":
    unittest.main()
