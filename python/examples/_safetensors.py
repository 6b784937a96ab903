"""A small safetensors reader and writer for the examples (PyTorch, no
`safetensors` package needed).

The format (https://github.com/huggingface/safetensors): an 8-byte
little-endian unsigned header length N, N bytes of JSON header

    {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
     ..., "__metadata__": {"key": "value", ...}}

(padded with spaces), then the tensors' row-major little-endian bytes, the
offsets counting from the end of the header. arbench's Go models write every
parameter as F32 under its PyTorch state_dict name (nn.SaveSafetensors), so
`load_file` followed by `module.load_state_dict` reads their weights, and
`save_file(module.state_dict(), path)` writes a file they read back.
"""

import json
import os
import struct
import sys
import tempfile

import torch

# safetensors dtype name <-> torch dtype (the ones arbench and its fixtures use).
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}

# A header larger than this is refused (the reference implementation's limit).
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A file that is not valid safetensors; the message names the file."""


def _read_header(f, path, size):
    raw = f.read(8)
    if len(raw) != 8:
        raise SafetensorsError(f"{path}: too short for a safetensors file ({size} bytes)")
    (n,) = struct.unpack("<Q", raw)
    if n > _MAX_HEADER or 8 + n > size:
        raise SafetensorsError(f"{path}: header length {n} does not fit the file of {size} bytes")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    return header, 8 + n


def read_metadata(path):
    """Return the file's __metadata__ (a dict of strings; {} when absent)."""
    with open(path, "rb") as f:
        header, _ = _read_header(f, path, os.fstat(f.fileno()).st_size)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise SafetensorsError(f"{path}: __metadata__ is not an object")
    return meta


def load_file(path):
    """Read every tensor of the file: a dict name -> torch.Tensor (CPU, a
    copy that owns its memory)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        header, start = _read_header(f, path, size)
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: tensor {name}: bad header entry {info!r}") from None
        count = 1
        for d in shape:
            if d < 0:
                raise SafetensorsError(f"{path}: tensor {name}: negative dimension in {shape}")
            count *= d
        itemsize = torch.empty((), dtype=dtype).element_size()
        if not (0 <= begin <= end <= len(data)) or end - begin != count * itemsize:
            raise SafetensorsError(
                f"{path}: tensor {name}: offsets [{begin}, {end}] do not hold {shape} {info['dtype']} "
                f"in {len(data)} data bytes")
        if count == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
            if sys.byteorder != "little" and itemsize > 1:
                t = _byteswap(t)
        out[name] = t
    return out


def _byteswap(t):
    """Reverse the bytes of every element (for big-endian hosts)."""
    b = t.contiguous().view(torch.uint8).reshape(-1, t.element_size()).flip(1)
    return b.contiguous().view(t.dtype).reshape(t.shape)


def save_file(tensors, path, metadata=None):
    """Write tensors (dict name -> torch.Tensor) to path, names sorted, with
    metadata (a dict, values turned into strings) as __metadata__. The file
    is replaced atomically (a temporary file renamed over path), like
    arbench's own writer."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _NAMES:
            raise SafetensorsError(f"{path}: tensor {name}: dtype {t.dtype} is not supported")
        if sys.byteorder != "little" and t.element_size() > 1:
            t = _byteswap(t)
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
