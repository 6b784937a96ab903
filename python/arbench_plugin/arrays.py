"""Numeric arrays as the protocol carries them.

On the wire an array is a JSON object ``{"dtype": "int32" | "float32", "shape": [...],
"data": base64}``: the row-major, little-endian bytes of the elements in standard base64 with
padding, exactly ``4 * product(shape)`` bytes (see plugins/external/PROTOCOL.md, "Arrays").

:class:`Array` is the decoded form: a ``shape`` tuple, a ``dtype`` string and the elements in a
flat :class:`array.array` (``data``). :func:`decode_array` turns a wire object into an
:class:`Array`; :func:`as_array` turns what a model returns (nested lists, an ``array.array``,
a NumPy array, a PyTorch tensor, an :class:`Array`) into one, checking dtype and shape;
:func:`encode_array` does both steps and returns the wire object. Everything here is the standard
library: no per-element JSON, one base64 pass over the bytes.
"""

from __future__ import annotations

import array as _array
import base64
import binascii
import sys

__all__ = ["Array", "ArrayError", "as_array", "decode_array", "encode_array"]

DTYPES = ("int32", "float32")


class ArrayError(ValueError):
    """An array that breaks the protocol: wrong dtype, shape, byte count or contents."""


def _int32_typecode() -> str:
    for code in ("i", "l"):
        if _array.array(code).itemsize == 4:
            return code
    raise ImportError("arbench_plugin: this platform has no 4-byte integer array typecode")


_TYPECODES = {"int32": _int32_typecode(), "float32": "f"}
if _array.array("f").itemsize != 4:  # pragma: no cover - every supported platform has 4-byte floats
    raise ImportError("arbench_plugin: array typecode 'f' is not 4 bytes on this platform")
_BIG_ENDIAN = sys.byteorder == "big"


def _typecode(dtype: str) -> str:
    try:
        return _TYPECODES[dtype]
    except (KeyError, TypeError):
        raise ArrayError("dtype %r is not supported (want int32 or float32)" % (dtype,)) from None


def _product(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _fmt_shape(shape) -> str:
    return "[" + " ".join(str(d) for d in shape) + "]"


class Array:
    """A row-major numeric array.

    Attributes:
        shape: a tuple of ints, e.g. ``(B, T)``.
        dtype: ``"int32"`` or ``"float32"``.
        data: the ``product(shape)`` elements, flat, in an :class:`array.array` (typecode ``'i'``
            for int32, ``'f'`` for float32). It supports the buffer protocol, so
            ``numpy.frombuffer(a.data, numpy.int32)`` and ``torch.frombuffer(a.data,
            dtype=torch.int32)`` view it without a copy.

    ``Array(data, shape)`` builds one from an ``array.array`` (the dtype follows its typecode) or
    from any flat iterable of numbers with ``dtype`` given; a model may return one.
    """

    __slots__ = ("shape", "dtype", "data")

    def __init__(self, data, shape, dtype: str | None = None):
        if dtype is None:
            if not isinstance(data, _array.array):
                raise ArrayError("Array: give dtype when data is not an array.array")
            dtype = "float32" if data.typecode in ("f", "d") else "int32"
        code = _typecode(dtype)
        if not (isinstance(data, _array.array) and data.typecode == code):
            try:
                data = _array.array(code, data.tolist() if isinstance(data, _array.array) else data)
            except (TypeError, OverflowError) as exc:
                raise ArrayError("Array: data are not %s numbers: %s" % (dtype, exc)) from None
        shape = tuple(_check_dim(d, "Array") for d in shape)
        if len(data) != _product(shape):
            raise ArrayError("Array: %d elements for shape %s (want %d)"
                             % (len(data), _fmt_shape(shape), _product(shape)))
        self.shape = shape
        self.dtype = dtype
        self.data = data

    @property
    def ndim(self) -> int:
        """The number of dimensions, ``len(shape)``."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of elements, ``product(shape)``."""
        return len(self.data)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-dimensional Array")
        return self.shape[0]

    def tolist(self):
        """The elements as nested lists (``shape[0]`` lists of ``shape[1]`` ... of numbers)."""
        flat = self.data.tolist()
        shape = self.shape
        if not shape:
            return flat[0]
        if len(shape) == 1:
            return flat

        def build(offset: int, dim: int):
            if dim == len(shape) - 1:
                return flat[offset:offset + shape[dim]]
            stride = _product(shape[dim + 1:])
            return [build(offset + i * stride, dim + 1) for i in range(shape[dim])]

        return build(0, 0)

    def tobytes(self) -> bytes:
        """The elements' little-endian bytes, as the protocol carries them."""
        if _BIG_ENDIAN:  # pragma: no cover - no big-endian CI machine
            swapped = _array.array(self.data.typecode, self.data)
            swapped.byteswap()
            return swapped.tobytes()
        return self.data.tobytes()

    def numpy(self):
        """A NumPy array of this shape that shares memory with ``data`` (imports numpy)."""
        import numpy  # noqa: PLC0415 - optional dependency, imported on use

        return numpy.frombuffer(self.data, dtype=numpy.dtype(self.dtype)).reshape(self.shape)

    def __eq__(self, other):
        if not isinstance(other, Array):
            return NotImplemented
        return self.dtype == other.dtype and self.shape == other.shape and self.data == other.data

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return "Array(dtype=%s, shape=%s)" % (self.dtype, list(self.shape))


def _check_dim(d, name: str) -> int:
    if isinstance(d, bool) or not isinstance(d, int) or d < 0:
        raise ArrayError("%s: shape entries must be non-negative integers, got %r" % (name, d))
    return d


def decode_array(obj, name: str = "array", dtype: str | None = None, ndim: int | None = None) -> Array:
    """Decode a wire array object into an :class:`Array`.

    ``name`` prefixes error messages (``"inputs: ..."``); ``dtype`` and ``ndim``, when given, are
    required of the array. Raises :class:`ArrayError` for anything that breaks the protocol: not
    an object, an unknown dtype, a bad shape, data that is not base64 or does not decode to
    exactly ``4 * product(shape)`` bytes.
    """
    if not isinstance(obj, dict):
        raise ArrayError("%s: want an array object {dtype, shape, data}, got %s" % (name, type(obj).__name__))
    got = obj.get("dtype")
    if got not in _TYPECODES:
        raise ArrayError("%s: dtype %r is not supported (want int32 or float32)" % (name, got))
    if dtype is not None and got != dtype:
        raise ArrayError("%s: dtype %s, want %s" % (name, got, dtype))
    shape = obj.get("shape")
    if not isinstance(shape, list):
        raise ArrayError("%s: shape must be a list of integers, got %r" % (name, shape))
    shape = tuple(_check_dim(d, name) for d in shape)
    if ndim is not None and len(shape) != ndim:
        raise ArrayError("%s: shape %s has %d dimensions, want %d" % (name, _fmt_shape(shape), len(shape), ndim))
    data = obj.get("data")
    if not isinstance(data, str):
        raise ArrayError("%s: data must be a base64 string, got %s" % (name, type(data).__name__))
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ArrayError("%s: data is not valid base64: %s" % (name, exc)) from None
    n = _product(shape)
    if len(raw) != 4 * n:
        raise ArrayError("%s: data has %d bytes, want %d (4 x %d elements of shape %s)"
                         % (name, len(raw), 4 * n, n, _fmt_shape(shape)))
    arr = _array.array(_TYPECODES[got])
    arr.frombytes(raw)
    if _BIG_ENDIAN:  # pragma: no cover
        arr.byteswap()
    out = Array.__new__(Array)
    out.shape, out.dtype, out.data = shape, got, arr
    return out


def _is_torch_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "numpy")


def _as_seq(value):
    """``value`` as a sequence to iterate, or None when it is a scalar."""
    if isinstance(value, (list, tuple, _array.array)):
        return value
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0 and hasattr(value, "tolist"):
        return value.tolist()  # a NumPy row or a tensor inside a list
    return None


def _from_nested(value, dtype: str, name: str) -> Array:
    code = _TYPECODES[dtype]
    shape = []
    v = value
    while True:
        s = _as_seq(v)
        if s is None:
            break
        shape.append(len(s))
        if len(s) == 0:
            break
        v = s[0]
    last = len(shape) - 1
    out = _array.array(code)

    def walk(v, dim):
        s = _as_seq(v)
        if s is None or len(s) != shape[dim]:
            raise ArrayError("%s: ragged nested sequence (the first elements give shape %s)" % (name, _fmt_shape(shape)))
        if dim == last:
            if isinstance(s, _array.array) and s.typecode != code:
                s = s.tolist()
            try:
                out.extend(s)
            except (TypeError, OverflowError) as exc:
                raise ArrayError("%s: want %s numbers in a nested sequence of shape %s: %s"
                                 % (name, dtype, _fmt_shape(shape), exc)) from None
        else:
            for x in s:
                walk(x, dim + 1)

    walk(value, 0)
    arr = Array.__new__(Array)
    arr.shape, arr.dtype, arr.data = tuple(shape), dtype, out
    return arr


def _from_buffer(value, dtype: str, name: str) -> Array:
    code = _TYPECODES[dtype]
    dt = getattr(value, "dtype", None)
    byteorder = "="
    if dt is None:  # a memoryview: its format names the element type
        fmt = getattr(value, "format", None)
        itemsize = getattr(value, "itemsize", 0)
        ok = (fmt in ("f", "<f", "=f") and dtype == "float32") or \
             (fmt in ("i", "l", "<i", "=i") and itemsize == 4 and dtype == "int32")
        if not ok:
            raise ArrayError("%s: memoryview of format %r, want %s" % (name, fmt, dtype))
    else:
        got = getattr(dt, "name", str(dt))
        if got != dtype:
            kind = getattr(dt, "kind", None)
            convertible = kind == "f" if dtype == "float32" else kind in ("i", "u")
            if convertible and hasattr(value, "astype"):
                value = value.astype(dtype)  # e.g. float64 or float16 log-probabilities
                dt = value.dtype
            else:
                raise ArrayError("%s: dtype %s, want %s" % (name, got, dtype))
        byteorder = getattr(dt, "byteorder", "=")
    shape = tuple(int(d) for d in value.shape)
    raw = value.tobytes()
    n = _product(shape)
    if len(raw) != 4 * n:
        raise ArrayError("%s: %d bytes for shape %s, want %d" % (name, len(raw), _fmt_shape(shape), 4 * n))
    data = _array.array(code)
    data.frombytes(raw)
    if (byteorder == ">" and not _BIG_ENDIAN) or (byteorder == "<" and _BIG_ENDIAN):
        data.byteswap()
    arr = Array.__new__(Array)
    arr.shape, arr.dtype, arr.data = shape, dtype, data
    return arr


def as_array(value, dtype: str = "float32", shape=None, name: str = "array") -> Array:
    """Convert ``value`` to an :class:`Array` of ``dtype``, checking ``shape`` when given.

    Accepted values:

    - nested lists or tuples of numbers (rows may also be ``array.array`` or NumPy rows);
    - a flat ``array.array`` (``'f'``/``'d'`` for float32, an integer typecode for int32): it takes
      the expected ``shape`` when its length matches, else it is one-dimensional;
    - an object with ``tobytes()``, ``shape`` and ``dtype`` (a NumPy array, also one from
      ``tensor.numpy()``); floating dtypes other than float32 are converted with ``astype``,
      any other dtype is an error; a ``memoryview`` of format ``'f'``;
    - a PyTorch tensor (detached, moved to the CPU and converted to float32);
    - an :class:`Array` of the same dtype.

    Raises :class:`ArrayError` (naming ``name``) when the dtype or the shape is wrong or the
    value is none of the above.
    """
    code = _typecode(dtype)
    want = None if shape is None else tuple(int(d) for d in shape)
    if isinstance(value, Array):
        if value.dtype != dtype:
            raise ArrayError("%s: dtype %s, want %s" % (name, value.dtype, dtype))
        arr = value
    elif isinstance(value, _array.array):
        if (value.typecode in ("f", "d")) != (dtype == "float32"):
            raise ArrayError("%s: array.array of typecode %r, want %s" % (name, value.typecode, dtype))
        data = value if value.typecode == code else _array.array(code, value.tolist())
        if want is not None and len(data) != _product(want):
            raise ArrayError("%s: a flat array.array of %d values, want shape %s (%d values)"
                             % (name, len(data), _fmt_shape(want), _product(want)))
        arr = Array.__new__(Array)
        arr.shape, arr.dtype, arr.data = (want if want is not None else (len(data),)), dtype, data
    elif _is_torch_tensor(value):
        t = value.detach().cpu()
        t = t.float() if dtype == "float32" else t.int()
        arr = _from_buffer(t.contiguous().numpy(), dtype, name)
    elif hasattr(value, "tobytes") and hasattr(value, "shape"):
        arr = _from_buffer(value, dtype, name)
    elif isinstance(value, (list, tuple)):
        arr = _from_nested(value, dtype, name)
    else:
        raise ArrayError("%s: cannot make a %s array from %s (want nested lists, an array.array, "
                         "a NumPy array or a tensor)" % (name, dtype, type(value).__name__))
    if want is not None and arr.shape != want:
        raise ArrayError("%s: shape %s, want %s" % (name, _fmt_shape(arr.shape), _fmt_shape(want)))
    return arr


def encode_array(value, dtype: str = "float32", shape=None, name: str = "array") -> dict:
    """The wire object ``{"dtype", "shape", "data"}`` for ``value`` (see :func:`as_array`)."""
    arr = as_array(value, dtype, shape, name)
    return {"dtype": arr.dtype, "shape": list(arr.shape),
            "data": base64.b64encode(arr.tobytes()).decode("ascii")}
