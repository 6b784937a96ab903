package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// idxFile builds an IDX file: the magic number, the dimensions and data as
// given (not checked against each other).
func idxFile(magic uint32, dims []uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

// seq returns n bytes 0, 1, 2, ... (mod 256).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// tinyImages is a valid image file of 3 images of 2×4 pixels.
func tinyImages() []byte { return idxFile(IDXImagesMagic, []uint32{3, 2, 4}, seq(24)) }

// tinyLabels is a valid label file of 3 labels.
func tinyLabels() []byte { return idxFile(IDXLabelsMagic, []uint32{3}, []byte{7, 0, 9}) }

func gzBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadIDXValid(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		img, lbl := tinyImages(), tinyLabels()
		if gzipped {
			img, lbl = gzBytes(t, img), gzBytes(t, lbl)
		}
		x, err := ReadIDX(bytes.NewReader(img), "img")
		if err != nil {
			t.Fatalf("gzip %v: %v", gzipped, err)
		}
		if !slices.Equal(x.Dims, []int{3, 2, 4}) || !bytes.Equal(x.Data, seq(24)) || x.Magic() != IDXImagesMagic {
			t.Errorf("gzip %v: ReadIDX = %v, %v, magic %#x", gzipped, x.Dims, x.Data, x.Magic())
		}
		im, err := ReadImages(bytes.NewReader(img), "img")
		if err != nil {
			t.Fatal(err)
		}
		if im.N != 3 || im.H != 2 || im.W != 4 || len(im.Pixels) != 24 || im.Labels != nil {
			t.Errorf("gzip %v: ReadImages = %+v", gzipped, im)
		}
		if got := im.Image(1); !bytes.Equal(got, seq(24)[8:16]) || cap(got) != 8 {
			t.Errorf("Image(1) = %v (cap %d)", got, cap(got))
		}
		labels, err := ReadLabels(bytes.NewReader(lbl), "lbl")
		if err != nil || !bytes.Equal(labels, []byte{7, 0, 9}) {
			t.Errorf("gzip %v: ReadLabels = %v, %v", gzipped, labels, err)
		}
	}
	// A file of one element, and WriteIDX's output read back.
	x, err := ReadIDX(bytes.NewReader(idxFile(0x0801, []uint32{1}, []byte{42})), "one")
	if err != nil || !slices.Equal(x.Dims, []int{1}) || !bytes.Equal(x.Data, []byte{42}) {
		t.Errorf("one element: %+v, %v", x, err)
	}
	var buf bytes.Buffer
	if err := WriteIDX(&buf, IDX{Dims: []int{3, 2, 4}, Data: seq(24)}); err != nil || !bytes.Equal(buf.Bytes(), tinyImages()) {
		t.Errorf("WriteIDX = % x, %v", buf.Bytes(), err)
	}
}

func TestWriteIDXRefuses(t *testing.T) {
	for _, x := range []IDX{
		{},
		{Dims: make([]int, 256), Data: nil},
		{Dims: []int{0}, Data: nil},
		{Dims: []int{-1}, Data: []byte{1}},
		{Dims: []int{2, 2}, Data: seq(3)},
		{Dims: []int{2, 2}, Data: seq(5)},
		{Dims: []int{1 << 31, 1 << 31, 1 << 31}, Data: seq(8)},
	} {
		if err := WriteIDX(io.Discard, x); err == nil {
			t.Errorf("WriteIDX(dims %v, %d bytes) succeeded", x.Dims, len(x.Data))
		}
	}
}

// idxErrorCases are invalid files and what their error must say. They also
// seed FuzzReadIDX.
func idxErrorCases(t testing.TB) []struct {
	name, in, want string
	cause          error
} {
	valid := gzBytes(t, tinyImages())
	badCRC := slices.Clone(valid)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 in the gzip trailer
	return []struct {
		name, in, want string
		cause          error
	}{
		{"empty", "", "empty file", nil},
		{"empty gzip", string(gzBytes(t, nil)), "empty decompressed file", nil},
		{"short magic", "\x00\x00\x08", "truncated header: 3 of the 4 bytes of the magic number", nil},
		{"not idx", "\x12\x34\x08\x01\x00\x00\x00\x01x", "not an IDX file: magic number 0x12340801", nil},
		{"text", "hello, world\n", "not an IDX file", nil},
		{"float32", string(idxFile(0x0d01, []uint32{1}, []byte{0, 0, 0, 0})), "unsupported IDX element type 0x0d (float32)", nil},
		{"unknown type", string(idxFile(0x4201, []uint32{1}, []byte{0})), "element type 0x42 (unknown)", nil},
		{"no dims", string(idxFile(0x0800, nil, []byte{1})), "declares no dimensions", nil},
		{"short dims", "\x00\x00\x08\x03\x00\x00\x00\x02\x00", "truncated header: 5 of the 12 bytes of 3 dimensions", nil},
		{"zero dim", string(idxFile(IDXImagesMagic, []uint32{2, 0, 3}, nil)), "dimension 1 of 3 is 0", nil},
		{"too large", string(idxFile(0x0802, []uint32{1 << 16, 1 << 16}, seq(10))), "declare more than the limit of 1024 MiB", nil},
		{"overflow", string(idxFile(IDXImagesMagic, []uint32{1<<32 - 1, 1<<32 - 1, 1<<32 - 1}, nil)), "declare more than the limit", nil},
		{"truncated data", string(idxFile(0x0802, []uint32{2, 2}, seq(3))), "truncated data: 3 of the 4 bytes the dimensions [2 2] give", nil},
		{"no data", string(idxFile(0x0801, []uint32{5}, nil)), "truncated data: 0 of the 5 bytes", nil},
		{"trailing data", string(idxFile(0x0802, []uint32{2, 2}, seq(5))), "trailing data after the 4 bytes the dimensions [2 2] give", nil},
		{"gzip trailing data", string(gzBytes(t, idxFile(0x0801, []uint32{2}, seq(3)))), "trailing data", nil},
		{"bad gzip header", "\x1f\x8b\x00\x00junk and more junk", "gzip header", gzip.ErrHeader},
		{"gzip truncated", string(valid[:len(valid)/2]), "read data after", io.ErrUnexpectedEOF},
		{"gzip bad crc", string(badCRC), "read past the data", gzip.ErrChecksum},
		{"gzip then garbage", string(valid) + "garbage after the stream", "read past the data", gzip.ErrHeader},
	}
}

func TestReadIDXErrors(t *testing.T) {
	for _, c := range idxErrorCases(t) {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadIDX(strings.NewReader(c.in), "dir/file.idx")
			checkIDXError(t, err, "dir/file.idx", c.want)
			if c.cause != nil && !errors.Is(err, c.cause) {
				t.Errorf("error %v does not wrap %v", err, c.cause)
			}
		})
	}
}

func checkIDXError(t *testing.T, err error, file, want string) {
	t.Helper()
	var e *IDXError
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want an *IDXError", err, err)
	}
	if e.File != file || !strings.HasPrefix(err.Error(), file+": ") || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want one naming %s and saying %q", err, file, want)
	}
}

func TestReadIDXReadErrors(t *testing.T) {
	boom := errors.New("boom")
	hdr := idxFile(0x0802, []uint32{2, 2}, nil)
	for _, c := range []struct {
		name string
		r    io.Reader
		want string
	}{
		{"at once", iotest.ErrReader(boom), "read: boom"},
		{"in the magic", io.MultiReader(bytes.NewReader(hdr[:2]), iotest.ErrReader(boom)), "read header: boom"},
		{"in the dims", io.MultiReader(bytes.NewReader(hdr[:6]), iotest.ErrReader(boom)), "read header: boom"},
		{"in the data", io.MultiReader(bytes.NewReader(hdr), bytes.NewReader([]byte{1}), iotest.ErrReader(boom)), "read data after 1 of 4 bytes: boom"},
		{"after the data", io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(seq(4)), iotest.ErrReader(boom)), "read past the data: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadIDX(c.r, "f")
			checkIDXError(t, err, "f", c.want)
			if !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap boom", err)
			}
		})
	}
	// One byte at a time reads the same as all at once.
	x, err := ReadIDX(iotest.OneByteReader(bytes.NewReader(gzBytes(t, tinyImages()))), "f")
	if err != nil || !bytes.Equal(x.Data, seq(24)) {
		t.Errorf("one byte at a time: %v, %v", x.Data, err)
	}
}

// TestReadIDXWrongKind: an image file is not a label file and vice versa.
func TestReadIDXWrongKind(t *testing.T) {
	_, err := ReadImages(bytes.NewReader(tinyLabels()), "labels.idx")
	checkIDXError(t, err, "labels.idx", "not an IDX image file: magic number 0x00000801 with dimensions [3]")
	_, err = ReadImages(bytes.NewReader(idxFile(0x0802, []uint32{2, 2}, seq(4))), "m.idx")
	checkIDXError(t, err, "m.idx", "not an IDX image file")
	_, err = ReadLabels(bytes.NewReader(tinyImages()), "images.idx")
	checkIDXError(t, err, "images.idx", "not an IDX label file: magic number 0x00000803 with dimensions [3 2 4]")
	// Errors of ReadIDX pass through.
	_, err = ReadImages(strings.NewReader(""), "e")
	checkIDXError(t, err, "e", "empty file")
	_, err = ReadLabels(strings.NewReader(""), "e")
	checkIDXError(t, err, "e", "empty file")
}

// TestReadIDXHeaderLies: a header declaring 512 MiB (under the limit) with
// ten bytes behind it is reported as truncated without allocating the
// 512 MiB.
func TestReadIDXHeaderLies(t *testing.T) {
	in := idxFile(0x0801, []uint32{1 << 29}, seq(10))
	for _, b := range [][]byte{in, gzBytes(t, in)} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ReadIDX(bytes.NewReader(b), "liar")
		runtime.ReadMemStats(&after)
		checkIDXError(t, err, "liar", "truncated data: 10 of the 536870912 bytes")
		if d := after.TotalAlloc - before.TotalAlloc; d > 8<<20 {
			t.Errorf("reading a lying header allocated %d bytes", d)
		}
	}
}

func FuzzReadIDX(f *testing.F) {
	f.Add(tinyImages())
	f.Add(tinyLabels())
	f.Add(gzBytes(f, tinyImages()))
	f.Add(gzBytes(f, tinyLabels()))
	f.Add(idxFile(0x0802, []uint32{2, 2}, seq(4)))
	for _, c := range idxErrorCases(f) {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := ReadIDX(bytes.NewReader(in), "fuzz.idx")
		if err != nil {
			var e *IDXError
			if !errors.As(err, &e) || e.File != "fuzz.idx" || !strings.HasPrefix(err.Error(), "fuzz.idx: ") {
				t.Fatalf("error %q (%T) is not an *IDXError naming the file", err, err)
			}
			if _, err2 := ReadImages(bytes.NewReader(in), "fuzz.idx"); err2 == nil {
				t.Fatal("ReadImages accepted what ReadIDX refused")
			}
			if _, err2 := ReadLabels(bytes.NewReader(in), "fuzz.idx"); err2 == nil {
				t.Fatal("ReadLabels accepted what ReadIDX refused")
			}
			return
		}
		n := 1
		for _, d := range x.Dims {
			if d <= 0 {
				t.Fatalf("dimension %d in %v", d, x.Dims)
			}
			n *= d
		}
		if len(x.Dims) == 0 || len(x.Dims) > 255 || n != len(x.Data) || n > MaxIDXBytes {
			t.Fatalf("dims %v with %d data bytes", x.Dims, len(x.Data))
		}
		// Written back and read again, it is the same.
		var buf bytes.Buffer
		if err := WriteIDX(&buf, x); err != nil {
			t.Fatal(err)
		}
		y, err := ReadIDX(&buf, "again")
		if err != nil || !slices.Equal(x.Dims, y.Dims) || !bytes.Equal(x.Data, y.Data) {
			t.Fatalf("round trip: %v, %v", y.Dims, err)
		}
		// ReadImages and ReadLabels accept exactly their kind.
		im, err := ReadImages(bytes.NewReader(in), "fuzz.idx")
		if (err == nil) != (x.Magic() == IDXImagesMagic) {
			t.Fatalf("ReadImages on magic %#x: %v", x.Magic(), err)
		}
		if err == nil && (im.N*im.H*im.W != len(im.Pixels) || !bytes.Equal(im.Pixels, x.Data)) {
			t.Fatalf("ReadImages = %d×%d×%d, %d pixels", im.N, im.H, im.W, len(im.Pixels))
		}
		labels, err := ReadLabels(bytes.NewReader(in), "fuzz.idx")
		if (err == nil) != (x.Magic() == IDXLabelsMagic) {
			t.Fatalf("ReadLabels on magic %#x: %v", x.Magic(), err)
		}
		if err == nil && !bytes.Equal(labels, x.Data) {
			t.Fatal("ReadLabels differs from ReadIDX")
		}
	})
}
