"""Encoding and decoding of protocol arrays (arbench_plugin.arrays)."""

import array
import base64
import struct
import unittest

from arbench_plugin import Array, ArrayError, as_array, decode_array, encode_array


def wire(dtype, shape, values):
    code = "<%d%s" % (len(values), "i" if dtype == "int32" else "f")
    return {"dtype": dtype, "shape": list(shape), "data": base64.b64encode(struct.pack(code, *values)).decode()}


class FakeNumpyArray:
    """Quacks like a NumPy array: tobytes(), shape and a dtype with name/kind/byteorder."""

    class DType:
        def __init__(self, name, kind, byteorder="="):
            self.name, self.kind, self.byteorder = name, kind, byteorder

    def __init__(self, values, shape, name="float32", byteorder="="):
        self.values, self.shape = list(values), tuple(shape)
        self.dtype = self.DType(name, "f" if name.startswith("float") else "i", byteorder)

    def tobytes(self):
        n = len(self.values)
        if self.dtype.name == "float32":
            return struct.pack("%s%df" % (">" if self.dtype.byteorder == ">" else "<", n), *self.values)
        if self.dtype.name == "float64":
            return struct.pack("<%dd" % n, *self.values)
        return struct.pack("<%dq" % n, *self.values)

    def astype(self, dtype):
        assert dtype == "float32"
        return FakeNumpyArray(self.values, self.shape, "float32")


class DecodeTest(unittest.TestCase):
    def test_example_from_protocol(self):
        a = decode_array({"dtype": "int32", "shape": [2, 3], "data": "AQAAAAIAAAADAAAABAAAAAUAAAAGAAAA"})
        self.assertEqual(a.shape, (2, 3))
        self.assertEqual(a.dtype, "int32")
        self.assertEqual(a.tolist(), [[1, 2, 3], [4, 5, 6]])
        self.assertEqual(list(a.data), [1, 2, 3, 4, 5, 6])
        self.assertEqual(len(a), 2)
        self.assertEqual(a.size, 6)
        self.assertEqual(a.ndim, 2)

    def test_negative_and_extreme_int32(self):
        vals = [-1, 0, 2**31 - 1, -2**31]
        a = decode_array(wire("int32", [4], vals))
        self.assertEqual(a.tolist(), vals)

    def test_float32(self):
        a = decode_array(wire("float32", [1, 2, 2], [0.5, -1.25, float("-inf"), 3.0]))
        self.assertEqual(a.tolist(), [[[0.5, -1.25], [float("-inf"), 3.0]]])

    def test_zero_sized(self):
        self.assertEqual(decode_array({"dtype": "int32", "shape": [2, 0], "data": ""}).tolist(), [[], []])
        self.assertEqual(decode_array({"dtype": "int32", "shape": [0, 3], "data": ""}).tolist(), [])

    def test_scalar_shape(self):
        self.assertEqual(decode_array(wire("int32", [], [7])).tolist(), 7)

    def test_wrong_byte_count(self):
        obj = wire("int32", [2, 3], [1, 2, 3, 4, 5])
        with self.assertRaisesRegex(ArrayError, r"inputs: data has 20 bytes, want 24"):
            decode_array(obj, "inputs")
        obj = wire("int32", [2], [1, 2, 3])
        with self.assertRaisesRegex(ArrayError, r"12 bytes, want 8"):
            decode_array(obj)

    def test_bad_base64(self):
        for data in ("not base64!", "AQAAAA", "AQAAAA=\n", "\u00e9"):
            with self.subTest(data=data), self.assertRaisesRegex(ArrayError, "base64"):
                decode_array({"dtype": "int32", "shape": [1], "data": data})

    def test_dtype(self):
        with self.assertRaisesRegex(ArrayError, "dtype 'int64' is not supported"):
            decode_array({"dtype": "int64", "shape": [1], "data": "AQAAAA=="})
        with self.assertRaisesRegex(ArrayError, "targets: dtype float32, want int32"):
            decode_array(wire("float32", [1], [1.0]), "targets", dtype="int32")

    def test_ndim_and_shape(self):
        with self.assertRaisesRegex(ArrayError, r"shape \[6\] has 1 dimensions, want 2"):
            decode_array(wire("int32", [6], list(range(6))), ndim=2)
        for shape in ([-1], [1.5], "2", [True], None):
            with self.subTest(shape=shape), self.assertRaises(ArrayError):
                decode_array({"dtype": "int32", "shape": shape, "data": ""})

    def test_not_an_object(self):
        for obj in (None, [1, 2], "AQAAAA==", {"dtype": "int32", "shape": [1]}):
            with self.subTest(obj=obj), self.assertRaises(ArrayError):
                decode_array(obj)


class EncodeTest(unittest.TestCase):
    def test_nested_lists_round_trip(self):
        rows = [[0.5, -1.0, 0.0], [2.0, -0.25, float("-inf")]]
        obj = encode_array(rows)
        self.assertEqual(obj["dtype"], "float32")
        self.assertEqual(obj["shape"], [2, 3])
        self.assertEqual(base64.b64decode(obj["data"]), struct.pack("<6f", *[x for r in rows for x in r]))
        self.assertEqual(decode_array(obj).tolist(), rows)

    def test_int32_round_trip(self):
        vals = [[1, -1], [2**31 - 1, 0]]
        self.assertEqual(decode_array(encode_array(vals, "int32")).tolist(), vals)

    def test_tuples_ints_and_array_rows(self):
        a = as_array(((1, 2), array.array("f", [3.0, 4.0])))
        self.assertEqual(a.shape, (2, 2))
        self.assertEqual(a.tolist(), [[1.0, 2.0], [3.0, 4.0]])

    def test_flat_array_takes_the_known_shape(self):
        a = as_array(array.array("f", range(6)), shape=(2, 3))
        self.assertEqual(a.shape, (2, 3))
        self.assertEqual(a.tolist(), [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
        self.assertEqual(as_array(array.array("d", [1.5, 2.5])).shape, (2,))
        with self.assertRaisesRegex(ArrayError, r"flat array.array of 5 values, want shape \[2 3\] \(6 values\)"):
            as_array(array.array("f", range(5)), shape=(2, 3))
        with self.assertRaisesRegex(ArrayError, "typecode 'i', want float32"):
            as_array(array.array("i", [1, 2]))

    def test_numpy_like(self):
        a = as_array(FakeNumpyArray([1.0, 2.0, 3.0, 4.0], (2, 2)), shape=(2, 2))
        self.assertEqual(a.tolist(), [[1.0, 2.0], [3.0, 4.0]])
        big = as_array(FakeNumpyArray([1.0, -2.0], (2,), byteorder=">"))
        self.assertEqual(big.tolist(), [1.0, -2.0])
        f64 = as_array(FakeNumpyArray([0.5, 0.25], (1, 2), "float64"))
        self.assertEqual(f64.tolist(), [[0.5, 0.25]])
        with self.assertRaisesRegex(ArrayError, "logprobs: dtype int64, want float32"):
            as_array(FakeNumpyArray([1, 2], (2,), "int64"), name="logprobs")

    def test_torch_like_tensor(self):
        class FakeTensor:  # the methods as_array calls on a torch.Tensor, in order
            __module__ = "torch"

            def __init__(self, values, shape, log):
                self.values, self.shape, self.log = values, shape, log

            def detach(self):
                self.log.append("detach")
                return self

            def cpu(self):
                self.log.append("cpu")
                return self

            def float(self):
                self.log.append("float")
                return self

            def contiguous(self):
                self.log.append("contiguous")
                return self

            def numpy(self):
                self.log.append("numpy")
                return FakeNumpyArray(self.values, self.shape)

        log = []
        a = as_array(FakeTensor([1.0, 2.0, 3.0, 4.0], (2, 2), log), shape=(2, 2))
        self.assertEqual(a.tolist(), [[1.0, 2.0], [3.0, 4.0]])
        self.assertEqual(log, ["detach", "cpu", "float", "contiguous", "numpy"])

    def test_memoryview(self):
        mv = memoryview(array.array("f", [1.0, 2.0, 3.0, 4.0])).cast("B").cast("f", (2, 2))
        self.assertEqual(as_array(mv).tolist(), [[1.0, 2.0], [3.0, 4.0]])

    def test_array_object(self):
        a = Array(array.array("f", [1.0, 2.0]), (1, 2))
        self.assertIs(as_array(a, shape=(1, 2)), a)
        self.assertEqual(Array([1, 2, 3], (3,), "int32").data, array.array("i", [1, 2, 3]))
        with self.assertRaisesRegex(ArrayError, "dtype int32, want float32"):
            as_array(Array([1], (1,), "int32"))
        with self.assertRaisesRegex(ArrayError, "3 elements for shape"):
            Array([1, 2, 3], (2, 2), "int32")

    def test_shape_check(self):
        with self.assertRaisesRegex(ArrayError, r"logprobs: shape \[2 3\], want \[2 4\]"):
            as_array([[0.0] * 3] * 2, shape=(2, 4), name="logprobs")

    def test_ragged_and_non_numbers(self):
        with self.assertRaisesRegex(ArrayError, "ragged"):
            as_array([[1.0, 2.0], [3.0]])
        with self.assertRaisesRegex(ArrayError, "ragged"):
            as_array([[1.0], 2.0])
        with self.assertRaises(ArrayError):
            as_array([[1.0, [2.0]], [3.0, 4.0]])
        with self.assertRaisesRegex(ArrayError, "float32 numbers"):
            as_array([["a", "b"]])
        with self.assertRaisesRegex(ArrayError, "cannot make a float32 array from dict"):
            as_array({"a": 1})
        with self.assertRaises(ArrayError):
            as_array([1.5], "int32")

    def test_unsupported_dtype(self):
        with self.assertRaisesRegex(ArrayError, "not supported"):
            encode_array([1.0], "float64")

    def test_equality_and_repr(self):
        a = Array([1, 2], (2,), "int32")
        self.assertEqual(a, Array(array.array("i", [1, 2]), (2,)))
        self.assertNotEqual(a, Array([1, 2], (1, 2), "int32"))
        self.assertEqual(repr(a), "Array(dtype=int32, shape=[2])")

    def test_large_round_trip_is_fast_enough(self):
        b, t, v = 8, 64, 256
        flat = array.array("f", [(-i % 97) / 7.0 for i in range(b * t * v)])
        obj = encode_array(flat, shape=(b, t, v))
        back = decode_array(obj, dtype="float32", ndim=3)
        self.assertEqual(back.shape, (b, t, v))
        self.assertEqual(back.data, flat)


try:
    import numpy  # noqa: F401
except ImportError:  # the SDK needs no numpy; these run where it is installed
    numpy = None


@unittest.skipIf(numpy is None, "numpy not installed")
class NumpyTest(unittest.TestCase):
    def test_numpy(self):
        x = numpy.arange(6, dtype=numpy.float32).reshape(2, 3)
        self.assertEqual(as_array(x, shape=(2, 3)).tolist(), x.tolist())
        self.assertEqual(as_array(x.T).tolist(), x.T.tolist())  # not C-contiguous
        self.assertEqual(as_array(x.astype(">f4")).tolist(), x.tolist())
        self.assertEqual(as_array(x.astype(numpy.float64)).tolist(), x.tolist())
        with self.assertRaises(ArrayError):
            as_array(x.astype(numpy.int64))
        a = decode_array(wire("int32", [2, 2], [1, 2, 3, 4]))
        self.assertEqual(a.numpy().tolist(), [[1, 2], [3, 4]])


if __name__ == "__main__":
    unittest.main()
