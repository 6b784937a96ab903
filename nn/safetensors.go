package nn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
// each naming the file and the tensor, and ps is left unchanged on error.
func LoadSafetensors(path string, ps *ParamSet) error {
	st, err := readSafetensors(path)
	if err != nil {
		return err
	}
	var errs []error
	views := make([]safetensors.TensorView, len(ps.List()))
	for i, p := range ps.List() {
		tv, ok := st.Tensor(p.Name)
		if !ok {
			errs = append(errs, fmt.Errorf("load safetensors %s: tensor %s missing", path, p.Name))
			continue
		}
		if !shapeEqual(tv.Shape(), p.Shape) {
			errs = append(errs, fmt.Errorf("load safetensors %s: tensor %s has shape %v, want %v", path, p.Name, tv.Shape(), p.Shape))
			continue
		}
		if !isFloatDType(tv.DType()) {
			errs = append(errs, fmt.Errorf("load safetensors %s: tensor %s has dtype %s, want F32 (or F64, F16, BF16)", path, p.Name, tv.DType()))
			continue
		}
		views[i] = tv
	}
	for _, name := range st.Names() {
		if ps.Get(name) == nil {
			errs = append(errs, fmt.Errorf("load safetensors %s: unexpected tensor %s", path, name))
		}
	}
	if len(errs) > 0 {
		// Names() comes from a map: sort for a stable message.
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return errors.Join(errs...)
	}
	for i, p := range ps.List() {
		decodeFloats(p.Data, views[i])
	}
	return nil
}

// ReadSafetensorsMetadata returns the __metadata__ map of the safetensors
// file at path (empty if it has none), validating the whole file.
func ReadSafetensorsMetadata(path string) (map[string]string, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load safetensors: %w", err)
	}
	_, md, err := safetensors.ReadMetadata(buf)
	if err != nil {
		return nil, fmt.Errorf("load safetensors %s: corrupt or truncated file: %w", path, err)
	}
	meta := map[string]string{}
	for k, v := range md.Metadata() {
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
	out := map[string]Value{}
	for _, nt := range st.Tensors() {
		tv := nt.TensorView
		shape := make([]int, len(tv.Shape()))
		for i, d := range tv.Shape() {
			shape[i] = int(d)
		}
		data := make([]float32, numElements(tv.Shape()))
		if isFloatDType(tv.DType()) {
			decodeFloats(data, tv)
		} else {
			ints, err := decodeInts(tv)
			if err != nil {
				return nil, fmt.Errorf("read safetensors %s: tensor %s: %w", path, nt.Name, err)
			}
			for i, v := range ints {
				data[i] = float32(v)
			}
		}
		out[nt.Name] = Value{Shape: shape, Data: data}
	}
	return out, nil
}

// ReadSafetensorsInts reads the integer tensor name of the file at path (any
// of the I8…U64, U8 and BOOL dtypes) as ints.
func ReadSafetensorsInts(path, name string) ([]int, error) {
	st, err := readSafetensors(path)
	if err != nil {
		return nil, err
	}
	tv, ok := st.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("read safetensors %s: tensor %s missing", path, name)
	}
	ints, err := decodeInts(tv)
	if err != nil {
		return nil, fmt.Errorf("read safetensors %s: tensor %s: %w", path, name, err)
	}
	return ints, nil
}

func readSafetensors(path string) (safetensors.SafeTensors, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return safetensors.SafeTensors{}, fmt.Errorf("load safetensors: %w", err)
	}
	st, err := safetensors.Deserialize(buf)
	if err != nil {
		return safetensors.SafeTensors{}, fmt.Errorf("load safetensors %s: corrupt or truncated file: %w", path, err)
	}
	return st, nil
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

func numElements(shape []uint64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

func isFloatDType(dt safetensors.DType) bool {
	switch dt {
	case safetensors.F32, safetensors.F64, safetensors.F16, safetensors.BF16:
		return true
	}
	return false
}

// decodeFloats converts the little-endian floating-point data of tv into
// dst, which has exactly as many elements (checked by the caller via shape).
func decodeFloats(dst []float32, tv safetensors.TensorView) {
	b := tv.Data()
	switch tv.DType() {
	case safetensors.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case safetensors.F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case safetensors.F16:
		for i := range dst {
			dst[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case safetensors.BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	default:
		panic("nn: decodeFloats: not a float dtype " + tv.DType().String())
	}
}

func decodeInts(tv safetensors.TensorView) ([]int, error) {
	b := tv.Data()
	n := numElements(tv.Shape())
	out := make([]int, n)
	le := binary.LittleEndian
	for i := range out {
		switch tv.DType() {
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
			return nil, fmt.Errorf("dtype %s is not an integer type", tv.DType())
		}
	}
	return out, nil
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
