package nn

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nlpodyssey/safetensors"
)

// SaveSafetensors writes every parameter of ps as an F32 tensor, named and
// shaped as the parameter, to path in the safetensors format
// (https://github.com/huggingface/safetensors), with meta as the header's
// __metadata__ (may be nil). The file is readable by PyTorch
// (safetensors.torch.load_file) and replaced atomically: the data goes to a
// temporary file in the same directory, which is synced and renamed over
// path.
func SaveSafetensors(path string, ps *ParamSet, meta map[string]string) (err error) {
	views := make(map[string]safetensors.TensorView, len(ps.List()))
	for _, p := range ps.List() {
		shape := make([]uint64, len(p.Shape))
		for i, d := range p.Shape {
			shape[i] = uint64(d)
		}
		data := make([]byte, 4*len(p.Data))
		for i, v := range p.Data {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
		tv, err := safetensors.NewTensorView(safetensors.F32, shape, data)
		if err != nil {
			return fmt.Errorf("save safetensors %s: tensor %s: %w", path, p.Name, err)
		}
		views[p.Name] = tv
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("save safetensors %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err = safetensors.SerializeToWriter(views, meta, w); err != nil {
		return fmt.Errorf("save safetensors %s: %w", path, err)
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("save safetensors %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("save safetensors %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("save safetensors %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save safetensors %s: %w", path, err)
	}
	// Make the rename itself durable; not every platform can sync a
	// directory, so a failure here is not reported.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadSafetensors reads the safetensors file at path into ps. The file must
// hold exactly the parameters of ps, each with its shape; F32 tensors are
// copied, F64, F16 and BF16 ones converted to float32. All problems
// (missing, extra, mis-shaped or non-float tensors) are reported together,
// each naming the file and the tensor.
//
// Everything is checked from the header before any tensor data is read,
// and the data is then decoded straight into the parameters through a
// buffer of at most 1 MiB, so a file whose header describes more data than
// ps holds (a sparse file of terabytes) is refused without allocating it.
// ps is unchanged when the file is refused; only a read error after the
// header was checked (the file shrank or failed while being read) can
// leave it partly overwritten.
func LoadSafetensors(path string, ps *ParamSet) error {
	f, h, err := openSafetensors(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := matchParams("load safetensors "+path, h, ps); err != nil {
		return err
	}
	if err := readParams(io.NewSectionReader(f, h.start, int64(h.dataLen())), h, ps); err != nil {
		return fmt.Errorf("load safetensors %s: read data: %w", path, err)
	}
	return nil
}

// readBufferSize bounds the buffer readParams decodes through.
const readBufferSize = 1 << 20

// readParams reads the data section r, which h describes and whose
// tensors match ps (matchParams), into the parameters. The tensors cover
// the data in offset order (layoutProblems), so r is read once, in order.
func readParams(r io.Reader, h *stHeader, ps *ParamSet) error {
	buf := make([]byte, min(readBufferSize, h.dataLen()))
	for i := range h.tensors {
		t := &h.tensors[i]
		dst := ps.Get(t.name).Data
		size := int(t.dtype.Size())
		per := len(buf) / size
		for lo := 0; lo < len(dst); lo += per {
			hi := min(lo+per, len(dst))
			b := buf[:(hi-lo)*size]
			if _, err := io.ReadFull(r, b); err != nil {
				return fmt.Errorf("tensor %s: %w", t.name, err)
			}
			decodeFloats(dst[lo:hi], t.dtype, b)
		}
	}
	return nil
}

// CheckSafetensors checks that the file at path is a complete, consistent
// safetensors file without reading its tensor data: the header is valid
// JSON, every tensor's dtype, shape and data offsets agree, the tensors
// cover the data section without gap or overlap, and the file is exactly
// as long as the header says. LoadSafetensors finds the same problems; this
// finds them before any work, in the time it takes to read the header.
func CheckSafetensors(path string) error {
	_, err := readSafetensorsHeader(path)
	return err
}

// CheckSafetensorsParams is CheckSafetensors followed by the checks of
// LoadSafetensors against ps (every parameter present with its shape and a
// floating-point dtype, no other tensor), still without reading the data.
func CheckSafetensorsParams(path string, ps *ParamSet) error {
	h, err := readSafetensorsHeader(path)
	if err != nil {
		return err
	}
	return matchParams("check safetensors "+path, h, ps)
}

// matchParams reports, sorted and joined, every tensor of h that ps does not
// expect and every parameter of ps that h lacks or holds with another shape
// or a non-float dtype; each line starts with prefix.
func matchParams(prefix string, h *stHeader, ps *ParamSet) error {
	var problems []string
	for _, p := range ps.List() {
		t := h.tensor(p.Name)
		switch {
		case t == nil:
			problems = append(problems, fmt.Sprintf("tensor %s missing", p.Name))
		case !shapeEqual(t.shape, p.Shape):
			problems = append(problems, fmt.Sprintf("tensor %s has shape %v, want %v", p.Name, t.shape, p.Shape))
		case !isFloatDType(t.dtype):
			problems = append(problems, fmt.Sprintf("tensor %s has dtype %s, want F32 (or F64, F16, BF16)", p.Name, t.dtype))
		}
	}
	for _, t := range h.tensors {
		if ps.Get(t.name) == nil {
			problems = append(problems, fmt.Sprintf("unexpected tensor %s", t.name))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = fmt.Errorf("%s: %s", prefix, p)
	}
	return errors.Join(errs...)
}

// ReadSafetensorsMetadata returns the __metadata__ map of the safetensors
// file at path (empty if it has none), checking the file as
// CheckSafetensors does.
func ReadSafetensorsMetadata(path string) (map[string]string, error) {
	h, err := readSafetensorsHeader(path)
	if err != nil {
		return nil, err
	}
	meta := make(map[string]string, len(h.meta))
	for k, v := range h.meta {
		meta[k] = v
	}
	return meta, nil
}

// ReadSafetensorsFloats reads every floating-point tensor of the file at
// path as float32 values with their shapes (integer tensors are converted
// too; booleans become 0 or 1). It suits inputs and reference outputs that
// are not parameters.
func ReadSafetensorsFloats(path string) (map[string]Value, error) {
	st, err := readSafetensors(path)
	if err != nil {
		return nil, err
	}
	return st.floats(), nil
}

// floats decodes every tensor as float32 values (see ReadSafetensorsFloats).
func (st *stFile) floats() map[string]Value {
	out := make(map[string]Value, len(st.tensors))
	for i := range st.tensors {
		t := &st.tensors[i]
		shape := make([]int, len(t.shape))
		for i, d := range t.shape {
			shape[i] = int(d)
		}
		data := make([]float32, t.elements)
		if isFloatDType(t.dtype) {
			decodeFloats(data, t.dtype, st.bytes(t))
		} else {
			for i, v := range decodeInts(t.dtype, st.bytes(t), t.elements) {
				data[i] = float32(v)
			}
		}
		out[t.name] = Value{Shape: shape, Data: data}
	}
	return out
}

// ReadSafetensorsInts reads the integer tensor name of the file at path (any
// of the I8…U64, U8 and BOOL dtypes) as ints.
func ReadSafetensorsInts(path, name string) ([]int, error) {
	st, err := readSafetensors(path)
	if err != nil {
		return nil, err
	}
	t := st.tensor(name)
	if t == nil {
		return nil, fmt.Errorf("read safetensors %s: tensor %s missing", path, name)
	}
	if isFloatDType(t.dtype) {
		return nil, fmt.Errorf("read safetensors %s: tensor %s: dtype %s is not an integer type", path, name, t.dtype)
	}
	return decodeInts(t.dtype, st.bytes(t), t.elements), nil
}

// The safetensors layout (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length N, N bytes of JSON header (an object
// mapping each tensor name to {"dtype", "shape", "data_offsets"}, plus an
// optional "__metadata__" object of strings; padded with spaces), then the
// data section, which the tensors' [begin, end) offsets cover exactly,
// without gap or overlap.

// maxSafetensorsHeader bounds the JSON header, as the reference
// implementation does (100 MB).
const maxSafetensorsHeader = 100_000_000

// maxHeaderProblems bounds how many header problems one error lists.
const maxHeaderProblems = 10

// stTensor is one validated tensor entry of a safetensors header.
type stTensor struct {
	name  string
	dtype safetensors.DType
	shape []uint64
	// elements is the product of shape; begin and end are offsets into the
	// data section.
	elements   int
	begin, end uint64
}

// stHeader is a validated safetensors header.
type stHeader struct {
	// start is the offset of the data section (8 + header length).
	start int64
	// tensors are sorted by offset; index maps names to positions.
	tensors []stTensor
	index   map[string]int
	meta    map[string]string
}

func (h *stHeader) tensor(name string) *stTensor {
	if i, ok := h.index[name]; ok {
		return &h.tensors[i]
	}
	return nil
}

// dataLen is the length of the data section the tensors describe.
func (h *stHeader) dataLen() uint64 {
	if len(h.tensors) == 0 {
		return 0
	}
	return h.tensors[len(h.tensors)-1].end
}

// stFile is a validated safetensors file with its data section.
type stFile struct {
	stHeader
	data []byte
}

// bytes returns the data of t.
func (st *stFile) bytes(t *stTensor) []byte { return st.data[t.begin:t.end] }

// readSafetensorsHeader reads and checks the header of the file at path
// (see CheckSafetensors).
func readSafetensorsHeader(path string) (*stHeader, error) {
	f, h, err := openSafetensors(path)
	if err != nil {
		return nil, err
	}
	f.Close()
	return h, nil
}

// readSafetensors reads and checks the whole file at path. Its length comes
// from the checked header, so a file that is not what its header says
// (truncated, padded) is refused before its data is read.
func readSafetensors(path string) (*stFile, error) {
	f, h, err := openSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &stFile{stHeader: *h, data: make([]byte, h.dataLen())}
	if _, err := io.ReadFull(io.NewSectionReader(f, h.start, int64(h.dataLen())), st.data); err != nil {
		return nil, fmt.Errorf("load safetensors %s: read data: %w", path, err)
	}
	return st, nil
}

// openSafetensors opens the regular file at path and checks its header;
// the caller closes the file.
func openSafetensors(path string) (*os.File, *stHeader, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load safetensors: %w", err)
	}
	h, err := checkSafetensors(f, size)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("load safetensors %s: %w", path, err)
	}
	return f, h, nil
}

// openRegular opens path for reading, after checking without opening it
// that it is a regular file: opening a FIFO blocks until something writes
// to it, and a device may never end. It returns the file's size.
func openRegular(path string) (*os.File, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	// The path may have been replaced between Stat and Open.
	now, err := f.Stat()
	if err == nil && !os.SameFile(fi, now) {
		err = fmt.Errorf("%s: replaced while being opened", path)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, now.Size(), nil
}

// parseSafetensors checks a whole safetensors file held in memory.
func parseSafetensors(buf []byte) (*stFile, error) {
	h, err := checkSafetensors(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		return nil, err
	}
	return &stFile{stHeader: *h, data: buf[h.start:]}, nil
}

// checkSafetensors reads the header of a safetensors file of size bytes
// from r and checks it against the file's size; it reads no tensor data.
func checkSafetensors(r io.ReaderAt, size int64) (*stHeader, error) {
	if size < 8 {
		return nil, fmt.Errorf("truncated: %d bytes, too short for the 8-byte header length", size)
	}
	var pre [8]byte
	if _, err := r.ReadAt(pre[:], 0); err != nil {
		return nil, fmt.Errorf("read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(pre[:])
	if n > maxSafetensorsHeader {
		return nil, fmt.Errorf("header length %d exceeds the limit of %d bytes (not a safetensors file?)", n, maxSafetensorsHeader)
	}
	if avail := uint64(size - 8); n > avail {
		return nil, fmt.Errorf("truncated: the header is %d bytes long but only %d bytes follow its length", n, avail)
	}
	raw := make([]byte, n)
	if _, err := r.ReadAt(raw, 8); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	h, err := parseSafetensorsHeader(raw)
	if err != nil {
		return nil, err
	}
	h.start = 8 + int64(n)
	want, have := h.dataLen(), uint64(size-h.start)
	switch {
	case have < want:
		return nil, fmt.Errorf("truncated: the header describes %d bytes of tensor data, the file holds %d (%d bytes missing)", want, have, want-have)
	case have > want:
		return nil, fmt.Errorf("%d bytes follow the last tensor's data (the header describes %d bytes of data)", have-want, want)
	}
	return h, nil
}

// parseSafetensorsHeader decodes and checks the JSON header; every problem
// (up to maxHeaderProblems) is reported.
func parseSafetensorsHeader(raw []byte) (*stHeader, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("the header is not a JSON object")
	}
	entries, err := headerEntries(raw)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	h := &stHeader{index: map[string]int{}}
	var problems []string
	for _, e := range entries {
		if e.name == "__metadata__" {
			if err := json.Unmarshal(e.value, &h.meta); err != nil {
				problems = append(problems, "__metadata__ must be an object of strings")
			}
			continue
		}
		t, err := parseTensorEntry(e.name, e.value)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		h.tensors = append(h.tensors, t)
	}
	slices.SortStableFunc(h.tensors, func(a, b stTensor) int {
		if c := cmp.Compare(a.begin, b.begin); c != 0 {
			return c
		}
		return cmp.Compare(a.end, b.end)
	})
	if len(problems) == 0 {
		problems = layoutProblems(h.tensors)
	}
	if len(problems) > 0 {
		if len(problems) > maxHeaderProblems {
			problems = append(problems[:maxHeaderProblems], fmt.Sprintf("and %d more problems", len(problems)-maxHeaderProblems))
		}
		return nil, errors.New("header: " + strings.Join(problems, "; "))
	}
	for i, t := range h.tensors {
		h.index[t.name] = i
	}
	return h, nil
}

type headerEntry struct {
	name  string
	value json.RawMessage
}

// headerEntries splits the header object into its entries, in order,
// refusing duplicate names and anything after the object but spaces.
func headerEntries(raw []byte) ([]headerEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{', checked by the caller
		return nil, err
	}
	seen := map[string]bool{}
	var entries []headerEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("unexpected %v", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("%q appears twice", name)
		}
		seen[name] = true
		entries = append(entries, headerEntry{name, v})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the header object")
	}
	return entries, nil
}

// parseTensorEntry checks one tensor entry: exactly the keys dtype, shape
// and data_offsets, a known dtype, and offsets that span the bytes its
// shape needs.
func parseTensorEntry(name string, value json.RawMessage) (stTensor, error) {
	fail := func(format string, args ...any) (stTensor, error) {
		return stTensor{}, fmt.Errorf("tensor %q: %s", name, fmt.Sprintf(format, args...))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(value, &fields); err != nil || fields == nil {
		return fail("expected an object {dtype, shape, data_offsets}, got %.40s", value)
	}
	for k := range fields {
		if k != "dtype" && k != "shape" && k != "data_offsets" {
			return fail("unknown key %q (known: dtype, shape, data_offsets)", k)
		}
	}
	var (
		dtype          string
		shape, offsets []uint64
	)
	for _, f := range []struct {
		key, want string
		dst       any
	}{
		{"dtype", "a string", &dtype},
		{"shape", "a list of natural numbers", &shape},
		{"data_offsets", "a list of two natural numbers", &offsets},
	} {
		v, ok := fields[f.key]
		if !ok {
			return fail("%s is missing", f.key)
		}
		if err := json.Unmarshal(v, f.dst); err != nil || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return fail("%s %.40s is not %s", f.key, v, f.want)
		}
	}
	dt, err := safetensors.ParseDType(dtype)
	if err != nil {
		return fail("unknown dtype %q", dtype)
	}
	if len(offsets) != 2 || offsets[0] > offsets[1] {
		return fail("data_offsets %v is not [begin, end] with begin <= end", offsets)
	}
	elements, ok := shapeElements(shape)
	if !ok {
		return fail("shape %v is too large", shape)
	}
	t := stTensor{name: name, dtype: dt, shape: shape, elements: elements, begin: offsets[0], end: offsets[1]}
	hi, need := bits.Mul64(uint64(elements), dt.Size())
	if hi != 0 {
		return fail("shape %v of %s is too large", shape, dt)
	}
	if need != t.end-t.begin {
		return fail("shape %v of %s needs %d bytes, data_offsets [%d, %d] span %d", shape, dt, need, t.begin, t.end, t.end-t.begin)
	}
	return t, nil
}

// shapeElements returns the number of elements of shape (1 for a scalar);
// ok is false when it, or a dimension, does not fit in an int.
func shapeElements(shape []uint64) (n int, ok bool) {
	elements := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(elements, d)
		if hi != 0 || lo > math.MaxInt || d > math.MaxInt {
			return 0, false
		}
		elements = lo
	}
	return int(elements), true
}

// layoutProblems checks that tensors, sorted by offset, cover the data
// section from 0 without gap or overlap.
func layoutProblems(tensors []stTensor) []string {
	var problems []string
	next, prev := uint64(0), ""
	for _, t := range tensors {
		switch {
		case t.begin < next:
			problems = append(problems, fmt.Sprintf("tensor %q (bytes %d to %d) overlaps tensor %q, which ends at %d", t.name, t.begin, t.end, prev, next))
		case t.begin > next:
			problems = append(problems, fmt.Sprintf("bytes %d to %d of the data belong to no tensor (next: %q)", next, t.begin, t.name))
		}
		if t.end > next {
			next, prev = t.end, t.name
		}
	}
	return problems
}

func shapeEqual(a []uint64, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != uint64(b[i]) {
			return false
		}
	}
	return true
}

func isFloatDType(dt safetensors.DType) bool {
	switch dt {
	case safetensors.F32, safetensors.F64, safetensors.F16, safetensors.BF16:
		return true
	}
	return false
}

// decodeFloats converts the little-endian floating-point data b of dtype
// into dst, which has exactly as many elements (checked by the header).
func decodeFloats(dst []float32, dtype safetensors.DType, b []byte) {
	le := binary.LittleEndian
	switch dtype {
	case safetensors.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case safetensors.F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	case safetensors.F16:
		for i := range dst {
			dst[i] = halfToFloat32(le.Uint16(b[2*i:]))
		}
	case safetensors.BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(le.Uint16(b[2*i:])) << 16)
		}
	default:
		panic("nn: decodeFloats: not a float dtype " + dtype.String())
	}
}

// decodeInts converts the n little-endian integers (or booleans) b of
// dtype to ints.
func decodeInts(dtype safetensors.DType, b []byte, n int) []int {
	out := make([]int, n)
	le := binary.LittleEndian
	for i := range out {
		switch dtype {
		case safetensors.BOOL, safetensors.U8:
			out[i] = int(b[i])
		case safetensors.I8:
			out[i] = int(int8(b[i]))
		case safetensors.I16:
			out[i] = int(int16(le.Uint16(b[2*i:])))
		case safetensors.U16:
			out[i] = int(le.Uint16(b[2*i:]))
		case safetensors.I32:
			out[i] = int(int32(le.Uint32(b[4*i:])))
		case safetensors.U32:
			out[i] = int(le.Uint32(b[4*i:]))
		case safetensors.I64:
			out[i] = int(int64(le.Uint64(b[8*i:])))
		case safetensors.U64:
			out[i] = int(le.Uint64(b[8*i:]))
		default:
			panic("nn: decodeInts: not an integer dtype " + dtype.String())
		}
	}
	return out
}

// halfToFloat32 converts an IEEE 754 binary16 value to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal half: value = frac · 2^-24, normal in float32.
	f := float32(frac) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}
