#!/usr/bin/python3
"""Generate PyTorch reference fixtures for arbench/nn's layer, optimiser and
weight tests.

The Go tests (nn/reference_test.go, nn/optim_test.go) read only the files
written here; they never run Python, and they fail if a file is missing. Regenerate after changing this script, from the repository
root, with the system Python that Debian's CPU PyTorch installs into:

    apt-get install -y python3-torch      # torch 1.13 for /usr/bin/python3
    /usr/bin/python3 nn/testdata/gen_reference.py

and commit the resulting nn/testdata/*.safetensors. The output is
deterministic for a given torch version (fixed seed, CPU, float32).

For each layer case <name> two files are written:

  <name>.weights.safetensors  the module's state_dict, every key prefixed
                              with "<name>." (loaded by nn.LoadSafetensors,
                              so it must hold exactly the layer's parameters)
  <name>.io.safetensors       inputs (x, h0, ...), the random cotangents
                              r.<output> defining the scalar
                              L = sum_k sum(output_k * r.<output_k>),
                              the expected outputs and grad.<param> = dL/dparam,
                              and for the cases that ask for them
                              grad.input.<input> = dL/dinput

Masks are stored as 0/1 floats (1 where PyTorch's boolean mask is True,
i.e. the key is dropped); PyTorch gets the boolean masks, the Go tests turn
the stored ones into additive masks with CausalMaskValue.

plus adam.safetensors (three torch.optim.Adam steps per configuration, the
configurations in __metadata__) and clip.safetensors
(torch.nn.utils.clip_grad_norm_). Files are written by the small pure-Python
safetensors writer below, so the `safetensors` package is not needed.
"""

import json
import os
import struct

import torch
from torch import nn

OUT = os.path.dirname(os.path.abspath(__file__))

DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
}


def save(name, tensors, metadata=None):
    """Write tensors (dict name -> tensor) in the safetensors format: an
    8-byte little-endian header length, a JSON header (dtype, shape,
    data_offsets, optional __metadata__) padded with spaces to a multiple of
    8, then the row-major little-endian data in header order."""
    header = {}
    blobs = []
    offset = 0
    for key in sorted(tensors):
        t = tensors[key].detach().contiguous().cpu()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[key] = {
            "dtype": DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    hdr = json.dumps(header, separators=(",", ":")).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def randomize(module, gen):
    """Overwrite every parameter with U(-0.5, 0.5) so that biases and norm
    affine parameters are non-trivial (PyTorch initialises some to 0/1)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 1.0 - 0.5)


def run_case(name, module, inputs, forward, gen, input_grads=()):
    """Run forward(module, **inputs) -> dict of outputs, backpropagate
    L = sum_k sum(out_k * r_k) and save weights and io files, with the
    gradients of the inputs named in input_grads."""
    for k in input_grads:
        inputs[k].requires_grad_(True)
    outs = forward(module, **inputs)
    cot = {k: torch.randn(v.shape, generator=gen) for k, v in outs.items()}
    module.zero_grad()
    loss = sum((outs[k] * cot[k]).sum() for k in outs)
    loss.backward()
    weights = {f"{name}.{k}": v for k, v in module.state_dict().items()}
    io = dict(inputs)
    io.update({f"r.{k}": v for k, v in cot.items()})
    io.update({k: v for k, v in outs.items()})
    for k, p in module.named_parameters():
        io[f"grad.{name}.{k}"] = p.grad
    for k in input_grads:
        io[f"grad.input.{k}"] = inputs[k].grad
    save(f"{name}.weights.safetensors", weights)
    save(f"{name}.io.safetensors", io, {"loss": repr(loss.item())})


def main():
    torch.manual_seed(20240601)
    gen = torch.Generator().manual_seed(1234)
    B, T = 2, 5

    # nn.Linear on [N, in].
    lin = nn.Linear(4, 3)
    randomize(lin, gen)
    run_case("linear", lin, {"x": torch.randn(5, 4, generator=gen)},
             lambda m, x: {"out": m(x)}, gen)

    # nn.RNN, one layer, tanh, batch_first.
    rnn = nn.RNN(3, 4, batch_first=True)
    run_case("rnn", rnn,
             {"x": torch.randn(B, T, 3, generator=gen), "h0": torch.randn(B, 4, generator=gen)},
             lambda m, x, h0: dict(zip(("out", "hT"), (lambda o, h: (o, h[0]))(*m(x, h0.unsqueeze(0))))),
             gen)

    # nn.RNN with two layers: checks the _l1 names and the stacking.
    rnn2 = nn.RNN(3, 4, num_layers=2, batch_first=True)
    run_case("rnn2", rnn2,
             {"x": torch.randn(B, T, 3, generator=gen), "h0": torch.randn(2, B, 4, generator=gen)},
             lambda m, x, h0: dict(zip(("out", "hT"), m(x, h0))),
             gen)

    # nn.LSTM, one layer, batch_first.
    lstm = nn.LSTM(3, 4, batch_first=True)

    def lstm_fwd(m, x, h0, c0):
        out, (h, c) = m(x, (h0.unsqueeze(0), c0.unsqueeze(0)))
        return {"out": out, "hT": h[0], "cT": c[0]}

    run_case("lstm", lstm,
             {"x": torch.randn(B, T, 3, generator=gen), "h0": torch.randn(B, 4, generator=gen),
              "c0": torch.randn(B, 4, generator=gen)},
             lstm_fwd, gen)

    # nn.LayerNorm on a rank-3 input.
    ln = nn.LayerNorm(6)
    randomize(ln, gen)
    run_case("layernorm", ln, {"x": torch.randn(B, 3, 6, generator=gen) * 2 + 0.5},
             lambda m, x: {"out": m(x)}, gen)

    # nn.MultiheadAttention self-attention with PyTorch's -inf causal mask,
    # and without a mask.
    d, heads = 8, 2
    mha = nn.MultiheadAttention(d, heads, batch_first=True)
    randomize(mha, gen)
    mask = nn.Transformer.generate_square_subsequent_mask(T)

    def mha_fwd(m, x):
        causal, _ = m(x, x, x, attn_mask=mask, need_weights=False)
        plain, _ = m(x, x, x, need_weights=False)
        return {"out_causal": causal, "out_nomask": plain}

    run_case("mha", mha, {"x": torch.randn(B, T, d, generator=gen)}, mha_fwd, gen)

    # nn.TransformerEncoderLayer(d, h, 4d, dropout=0, batch_first=True),
    # post-norm, ReLU, causal mask. Train mode (with p = 0) keeps PyTorch off
    # its fused inference fast path.
    enc = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True)
    randomize(enc, gen)
    enc.train()
    run_case("encoder", enc, {"x": torch.randn(B, T, d, generator=gen)},
             lambda m, x: {"out": m(x, src_mask=mask)}, gen)

    # nn.CrossEntropyLoss (mean over non-ignored targets, ignore_index -100).
    logits = torch.randn(6, 5, generator=gen, requires_grad=True)
    targets = torch.tensor([1, 4, -100, 0, 2, 4], dtype=torch.int64)
    loss = nn.CrossEntropyLoss()(logits, targets)
    loss.backward()
    save("crossentropy.safetensors",
         {"logits": logits, "targets": targets, "loss": loss.reshape(1), "grad.logits": logits.grad})

    # torch.optim.Adam: three steps with given gradients, two configurations.
    adam = {}
    configs = {
        "plain": dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
        "decay": dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    }
    shapes = {"a": (3, 4), "b": (5,)}
    for cname, cfg in configs.items():
        params = {k: torch.randn(s, generator=gen, requires_grad=True) for k, s in shapes.items()}
        for k, p in params.items():
            adam[f"{cname}.init.{k}"] = p.detach().clone()
        opt = torch.optim.Adam(list(params.values()), **cfg)
        for step in range(1, 4):
            for k, p in params.items():
                g = torch.randn(p.shape, generator=gen)
                if step == 2:
                    g = g * 1e-3  # small gradients exercise eps
                p.grad = g
                adam[f"{cname}.grad{step}.{k}"] = g.clone()
            opt.step()
            for k, p in params.items():
                adam[f"{cname}.param{step}.{k}"] = p.detach().clone()
    meta = {f"{c}.{k}": json.dumps(v) for c, cfg in configs.items() for k, v in cfg.items()}
    save("adam.safetensors", adam, meta)

    # torch.nn.utils.clip_grad_norm_: one clipping and one non-clipping case.
    clip = {}
    clip_meta = {}
    for cname, max_norm in (("clip", 0.5), ("noclip", 100.0)):
        params = [torch.zeros(s, requires_grad=True) for s in shapes.values()]
        for (k, _), p in zip(shapes.items(), params):
            p.grad = torch.randn(p.shape, generator=gen)
            clip[f"{cname}.grad.{k}"] = p.grad.clone()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        for (k, _), p in zip(shapes.items(), params):
            clip[f"{cname}.clipped.{k}"] = p.grad.clone()
        clip[f"{cname}.norm"] = norm.reshape(1)
        clip_meta[f"{cname}.max_norm"] = repr(max_norm)
    save("clip.safetensors", clip, clip_meta)

    # Cases added after the ones above draw from gen only after them, so
    # the earlier fixtures stay byte-identical.
    seq2seq_cases(gen, d, heads, B, T, mask)


def seq2seq_cases(gen, d, heads, B, T, causal):
    """Cross-attention and nn.TransformerDecoderLayer: queries of length T
    over a memory of length S != T, with and without masks, and the
    gradients of both inputs."""
    S = 7
    # Row 1 of the memory is padded after 4 positions and row 1 of the
    # target after 3; the attention mask drops random keys but never key 0,
    # so every query keeps at least one key (PyTorch gives NaN otherwise).
    mem_pad = torch.zeros(B, S, dtype=torch.bool)
    mem_pad[1, 4:] = True
    tgt_pad = torch.zeros(B, T, dtype=torch.bool)
    tgt_pad[1, 3:] = True
    mem_mask = torch.rand(T, S, generator=gen) < 0.4
    mem_mask[:, 0] = False

    def flags(m):
        return m.to(torch.float32)

    # nn.MultiheadAttention as cross-attention, attn(x, memory, memory).
    xattn = nn.MultiheadAttention(d, heads, batch_first=True)
    randomize(xattn, gen)

    def xattn_fwd(m, x, memory, memory_key_padding_mask, memory_mask):
        def attn(**kw):
            return m(x, memory, memory, need_weights=False, **kw)[0]
        return {
            "out_plain": attn(),
            "out_pad": attn(key_padding_mask=mem_pad),
            "out_mask": attn(attn_mask=mem_mask),
            "out_both": attn(attn_mask=mem_mask, key_padding_mask=mem_pad),
        }

    run_case("xattn", xattn,
             {"x": torch.randn(B, T, d, generator=gen), "memory": torch.randn(B, S, d, generator=gen),
              "memory_key_padding_mask": flags(mem_pad), "memory_mask": flags(mem_mask)},
             xattn_fwd, gen, input_grads=("x", "memory"))

    # nn.TransformerDecoderLayer(d, h, 4d, dropout=0, batch_first=True),
    # post-norm, ReLU, in train mode like the encoder case: causal
    # (autoregressive) and unmasked or padding-only (non-autoregressive)
    # self-attention, cross-attention with and without masks.
    dec = nn.TransformerDecoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True)
    randomize(dec, gen)
    dec.train()

    def dec_fwd(m, x, memory, tgt_key_padding_mask, memory_key_padding_mask, memory_mask):
        return {
            "out_causal": m(x, memory, tgt_mask=causal, memory_key_padding_mask=mem_pad),
            "out_nomask": m(x, memory),
            "out_nar": m(x, memory, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=mem_pad),
            "out_all": m(x, memory, tgt_mask=causal, memory_mask=mem_mask,
                         tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=mem_pad),
        }

    run_case("decoder", dec,
             {"x": torch.randn(B, T, d, generator=gen), "memory": torch.randn(B, S, d, generator=gen),
              "tgt_key_padding_mask": flags(tgt_pad), "memory_key_padding_mask": flags(mem_pad),
              "memory_mask": flags(mem_mask)},
             dec_fwd, gen, input_grads=("x", "memory"))


if __name__ == "__main__":
    main()
