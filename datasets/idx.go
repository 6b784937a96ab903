package datasets

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// IDX is the format of the MNIST files (LeCun et al.): a big-endian header
// of magic number and dimensions, then the elements in row-major order.
//
//	magic   uint32  0x0000TTDD: two zero bytes, element type TT, DD dimensions
//	dims    DD × uint32, each > 0
//	data    dims[0]·dims[1]·…·dims[DD-1] elements
//
// Only unsigned bytes (TT = 0x08) are read: images are 0x00000803
// ([N, H, W]), labels 0x00000801 ([N]).
const (
	IDXImagesMagic = 0x00000803
	IDXLabelsMagic = 0x00000801
)

// MaxIDXBytes is the most data an IDX file may declare: 1 GiB. A header
// declaring more is refused before anything is allocated (MNIST's largest
// file holds 47 MB).
const MaxIDXBytes = 1 << 30

// IDX is a parsed IDX file of unsigned bytes.
type IDX struct {
	// Dims are the dimensions, outermost first; each is > 0.
	Dims []int
	// Data holds the product of Dims elements, row-major.
	Data []uint8
}

// Magic returns the file's magic number (0x0000_08_DD).
func (x IDX) Magic() uint32 { return 0x0800 | uint32(len(x.Dims)) }

// Images is a stack of N grey images of H×W pixels.
type Images struct {
	N, H, W int
	// Pixels holds N·H·W bytes: image i row-major at Pixels[i·H·W:(i+1)·H·W].
	Pixels []uint8
	// Labels holds N class labels, or is nil (ReadImages leaves it nil;
	// LoadMNIST fills it).
	Labels []uint8
}

// Image returns the H·W pixels of image i (a slice of Pixels, not a copy).
func (im Images) Image(i int) []uint8 {
	n := im.H * im.W
	return im.Pixels[i*n : (i+1)*n : (i+1)*n]
}

// IDXError is an invalid or unreadable IDX file.
type IDXError struct {
	// File names the file (as the caller passed it).
	File string
	// Reason says what is wrong.
	Reason string
	// Err is the underlying read or decompression error, if any.
	Err error
}

func (e *IDXError) Error() string {
	s := e.File + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *IDXError) Unwrap() error { return e.Err }

// ReadIDX parses an IDX file of unsigned bytes from r, gunzipping it first
// when it starts with the gzip magic (0x1f 0x8b; an IDX file starts with
// zeros). name names the file in errors.
//
// Validation is strict; each failure is an *IDXError naming the file and
// what is wrong: an empty or truncated header, a magic number whose first
// two bytes are not zero, an element type other than unsigned bytes, no
// dimensions, a dimension of 0, data larger than MaxIDXBytes (refused from
// the header, before allocating), fewer data bytes than the dimensions
// give (truncated), bytes after them (trailing data), and an unreadable or
// corrupted gzip stream (its CRC is checked). Memory grows with the data
// actually read, so a header that lies costs nothing.
func ReadIDX(r io.Reader, name string) (IDX, error) {
	fail := func(err error, format string, args ...any) (IDX, error) {
		return IDX{}, &IDXError{File: name, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	br := bufio.NewReader(r)
	var src io.Reader = br
	gzipped := false
	if head, err := br.Peek(2); err == nil && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fail(err, "gzip header")
		}
		src, gzipped = zr, true
	} else if err != nil && !errors.Is(err, io.EOF) {
		return fail(err, "read")
	}
	what := "file"
	if gzipped {
		what = "decompressed file"
	}

	var magic [4]byte
	if n, err := io.ReadFull(src, magic[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return fail(nil, "empty %s (an IDX file starts with a 4-byte magic number)", what)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(nil, "truncated header: %d of the 4 bytes of the magic number", n)
		}
		return fail(err, "read header")
	}
	if magic[0] != 0 || magic[1] != 0 {
		return fail(nil, "not an IDX file: magic number 0x%08x does not start with two zero bytes", binary.BigEndian.Uint32(magic[:]))
	}
	if magic[2] != 0x08 {
		return fail(nil, "unsupported IDX element type 0x%02x (%s) in magic number 0x%08x; only unsigned bytes (0x08) are read",
			magic[2], idxTypeName(magic[2]), binary.BigEndian.Uint32(magic[:]))
	}
	nd := int(magic[3])
	if nd == 0 {
		return fail(nil, "magic number 0x00000800 declares no dimensions")
	}

	raw := make([]byte, 4*nd)
	if n, err := io.ReadFull(src, raw); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail(nil, "truncated header: %d of the %d bytes of %d dimensions", n, len(raw), nd)
		}
		return fail(err, "read header")
	}
	dims := make([]int, nd)
	total := int64(1)
	tooLarge := false
	for i := range dims {
		d := binary.BigEndian.Uint32(raw[4*i:])
		if d == 0 {
			return fail(nil, "dimension %d of %d is 0", i, nd)
		}
		dims[i] = int(d)
		if !tooLarge && total > MaxIDXBytes/int64(d) {
			tooLarge = true
		}
		if !tooLarge {
			total *= int64(d)
		}
	}
	if tooLarge {
		return fail(nil, "dimensions %v declare more than the limit of %s of data", dims, formatLimit(MaxIDXBytes))
	}

	data, err := readUpTo(src, total)
	if err != nil && int64(len(data)) < total {
		return fail(err, "read data after %d of %d bytes", len(data), total)
	}
	if err != nil {
		// The last read brought the rest of the data and an error, as a
		// gzip stream does that is corrupted at its end (CRC, size).
		return fail(err, "read past the data")
	}
	if int64(len(data)) < total {
		return fail(nil, "truncated data: %d of the %d bytes the dimensions %v give", len(data), total, dims)
	}
	var one [1]byte
	if n, err := io.ReadFull(src, one[:]); n > 0 {
		return fail(nil, "trailing data after the %d bytes the dimensions %v give", total, dims)
	} else if !errors.Is(err, io.EOF) {
		// A gzip stream is checked (CRC, size) at its end.
		return fail(err, "read past the data")
	}
	return IDX{Dims: dims, Data: data}, nil
}

// readUpTo reads up to n bytes from r, growing its buffer as data arrives
// (never past n), and stops early at EOF.
func readUpTo(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, 0, min(n, 1<<20))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(int64(cap(buf)), n-int64(len(buf)))))
		}
		k, err := r.Read(buf[len(buf):min(int64(cap(buf)), n)])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// idxTypeName names an IDX element type.
func idxTypeName(t byte) string {
	switch t {
	case 0x08:
		return "unsigned byte"
	case 0x09:
		return "signed byte"
	case 0x0b:
		return "int16"
	case 0x0c:
		return "int32"
	case 0x0d:
		return "float32"
	case 0x0e:
		return "float64"
	}
	return "unknown"
}

// ReadImages parses an IDX image file (magic 0x00000803, dimensions
// [N, H, W]) from r, gzip'ed or not; see ReadIDX. Labels is left nil.
func ReadImages(r io.Reader, name string) (Images, error) {
	x, err := ReadIDX(r, name)
	if err != nil {
		return Images{}, err
	}
	if x.Magic() != IDXImagesMagic {
		return Images{}, &IDXError{File: name, Reason: fmt.Sprintf(
			"not an IDX image file: magic number 0x%08x with dimensions %v, want 0x%08x with 3 dimensions [N, H, W]",
			x.Magic(), x.Dims, IDXImagesMagic)}
	}
	return Images{N: x.Dims[0], H: x.Dims[1], W: x.Dims[2], Pixels: x.Data}, nil
}

// ReadLabels parses an IDX label file (magic 0x00000801, dimensions [N])
// from r, gzip'ed or not; see ReadIDX.
func ReadLabels(r io.Reader, name string) ([]uint8, error) {
	x, err := ReadIDX(r, name)
	if err != nil {
		return nil, err
	}
	if x.Magic() != IDXLabelsMagic {
		return nil, &IDXError{File: name, Reason: fmt.Sprintf(
			"not an IDX label file: magic number 0x%08x with dimensions %v, want 0x%08x with 1 dimension [N]",
			x.Magic(), x.Dims, IDXLabelsMagic)}
	}
	return x.Data, nil
}

// WriteIDX writes x as an uncompressed IDX file of unsigned bytes, the
// inverse of ReadIDX (for fixtures and tests). x must have 1 to 255
// dimensions, each in 1..2^32-1, and as many data bytes as they give.
func WriteIDX(w io.Writer, x IDX) error {
	if len(x.Dims) == 0 || len(x.Dims) > 255 {
		return fmt.Errorf("idx: %d dimensions, want 1 to 255", len(x.Dims))
	}
	hdr := binary.BigEndian.AppendUint32(nil, x.Magic())
	n := 1
	for i, d := range x.Dims {
		if d <= 0 || int64(d) > 1<<32-1 {
			return fmt.Errorf("idx: dimension %d is %d, want 1 to 2^32-1", i, d)
		}
		if n > len(x.Data)/d { // then n·d > len(x.Data); also keeps n·d from overflowing
			return fmt.Errorf("idx: dimensions %v give more than the %d data bytes", x.Dims, len(x.Data))
		}
		n *= d
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
	}
	if n != len(x.Data) {
		return fmt.Errorf("idx: dimensions %v give %d bytes, data has %d", x.Dims, n, len(x.Data))
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(x.Data)
	return err
}
