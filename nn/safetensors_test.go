package nn_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"arbench/nn"
)

func sampleParams(seed uint64) *nn.ParamSet {
	ps := nn.NewParamSet()
	nn.NewLinear(ps, "enc.proj", 3, 2)
	nn.NewEmbedding(ps, "emb", 4, 3)
	ps.Add("scalarish", 1)
	rng := nn.NewRNG(seed)
	for _, p := range ps.List() {
		nn.InitNormal(p, rng, 1)
	}
	return ps
}

func TestSafetensorsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	src := sampleParams(1)
	meta := map[string]string{"model": "test", "step": "42"}
	if err := nn.SaveSafetensors(path, src, meta); err != nil {
		t.Fatal(err)
	}
	// Overwriting an existing file works and leaves no temporary behind.
	if err := nn.SaveSafetensors(path, src, meta); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after save, want 1", len(entries))
	}

	dst := sampleParams(2)
	if err := nn.LoadSafetensors(path, dst); err != nil {
		t.Fatal(err)
	}
	for i, p := range src.List() {
		q := dst.List()[i]
		for j := range p.Data {
			if p.Data[j] != q.Data[j] {
				t.Fatalf("%s[%d] = %v after round trip, want %v", p.Name, j, q.Data[j], p.Data[j])
			}
		}
	}
	got, err := nn.ReadSafetensorsMetadata(path)
	if err != nil {
		t.Fatal(err)
	}
	if got["model"] != "test" || got["step"] != "42" || len(got) != 2 {
		t.Errorf("metadata %v, want %v", got, meta)
	}
}

// TestSafetensorsHeader checks the on-disk layout against the format
// specification independently of the library used to write it.
func TestSafetensorsHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	ps := nn.NewParamSet()
	p := ps.Add("x", 2, 3)
	for i := range p.Data {
		p.Data[i] = float32(i) - 2.5
	}
	if err := nn.SaveSafetensors(path, ps, nil); err != nil {
		t.Fatal(err)
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(buf)
	var hdr map[string]struct {
		DType       string   `json:"dtype"`
		Shape       []int    `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(buf[8:8+n], &hdr); err != nil {
		t.Fatalf("header: %v", err)
	}
	h := hdr["x"]
	if h.DType != "F32" || len(h.Shape) != 2 || h.Shape[0] != 2 || h.Shape[1] != 3 || h.DataOffsets != [2]int64{0, 24} {
		t.Fatalf("header entry %+v", h)
	}
	data := buf[8+n:]
	if len(data) != 24 {
		t.Fatalf("%d data bytes, want 24", len(data))
	}
	for i := range 6 {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:])); v != p.Data[i] {
			t.Errorf("element %d = %v, want %v", i, v, p.Data[i])
		}
	}
}

func TestLoadSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := nn.SaveSafetensors(path, sampleParams(1), nil); err != nil {
		t.Fatal(err)
	}
	wantErr := func(t *testing.T, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error, want one mentioning %q", parts)
		}
		for _, s := range parts {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	}

	t.Run("missing", func(t *testing.T) {
		ps := sampleParams(3)
		ps.Add("extra.weight", 2)
		before := append([]float32(nil), ps.Get("emb.weight").Data...)
		wantErr(t, nn.LoadSafetensors(path, ps), path, "extra.weight", "missing")
		if ps.Get("emb.weight").Data[0] != before[0] {
			t.Error("failed load modified the parameters")
		}
	})
	t.Run("unexpected", func(t *testing.T) {
		ps := nn.NewParamSet()
		nn.NewLinear(ps, "enc.proj", 3, 2)
		ps.Add("scalarish", 1)
		wantErr(t, nn.LoadSafetensors(path, ps), path, "emb.weight", "unexpected")
	})
	t.Run("shape", func(t *testing.T) {
		ps := nn.NewParamSet()
		nn.NewLinear(ps, "enc.proj", 2, 3) // transposed weight
		nn.NewEmbedding(ps, "emb", 4, 3)
		ps.Add("scalarish", 1)
		wantErr(t, nn.LoadSafetensors(path, ps), path, "enc.proj.weight", "shape [2 3]", "want [3 2]")
	})
	t.Run("truncated", func(t *testing.T) {
		buf, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		short := filepath.Join(dir, "short.safetensors")
		for _, n := range []int{len(buf) - 4, 20, 4, 0} {
			if err := os.WriteFile(short, buf[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			wantErr(t, nn.LoadSafetensors(short, sampleParams(1)), short, "truncated")
		}
	})
	t.Run("nofile", func(t *testing.T) {
		err := nn.LoadSafetensors(filepath.Join(dir, "absent.safetensors"), sampleParams(1))
		wantErr(t, err, "absent.safetensors")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v does not wrap fs.ErrNotExist", err)
		}
	})
}

// writeRaw writes a one-tensor safetensors file by hand.
func writeRaw(t *testing.T, path, name, dtype string, shape []int, data []byte) {
	t.Helper()
	hdr, err := json.Marshal(map[string]any{name: map[string]any{"dtype": dtype, "shape": shape, "data_offsets": []int{0, len(data)}}})
	if err != nil {
		t.Fatal(err)
	}
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	buf = append(append(buf, hdr...), data...)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSafetensorsConvertsDTypes(t *testing.T) {
	want := []float32{1, -2.5, 0.375, 65504}
	dir := t.TempDir()
	var f64, f16, bf16 []byte
	for _, v := range want {
		f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(float64(v)))
		bf16 = binary.LittleEndian.AppendUint16(bf16, uint16(math.Float32bits(v)>>16))
	}
	// binary16 encodings of 1, -2.5, 0.375, 65504 (the largest finite half).
	for _, h := range []uint16{0x3c00, 0xc100, 0x3600, 0x7bff} {
		f16 = binary.LittleEndian.AppendUint16(f16, h)
	}
	cases := []struct {
		dtype string
		data  []byte
		want  []float32
	}{
		{"F64", f64, want},
		{"F16", f16, want},
		// bf16 truncation of 65504 keeps 8 mantissa bits: 65280.
		{"BF16", bf16, []float32{1, -2.5, 0.375, 65280}},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.dtype+".safetensors")
		writeRaw(t, path, "w", c.dtype, []int{2, 2}, c.data)
		ps := nn.NewParamSet()
		p := ps.Add("w", 2, 2)
		if err := nn.LoadSafetensors(path, ps); err != nil {
			t.Fatalf("%s: %v", c.dtype, err)
		}
		for i := range p.Data {
			if p.Data[i] != c.want[i] {
				t.Errorf("%s: element %d = %v, want %v", c.dtype, i, p.Data[i], c.want[i])
			}
		}
	}
	// Integer tensors are not parameters.
	path := filepath.Join(dir, "i32.safetensors")
	writeRaw(t, path, "w", "I32", []int{2, 2}, make([]byte, 16))
	ps := nn.NewParamSet()
	ps.Add("w", 2, 2)
	if err := nn.LoadSafetensors(path, ps); err == nil || !strings.Contains(err.Error(), "dtype I32") {
		t.Errorf("loading an I32 tensor: error %v, want one naming the dtype", err)
	}
}

// rawFile writes a safetensors file from a header and a data section.
func rawFile(t *testing.T, path, header string, data []byte) {
	t.Helper()
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	if err := os.WriteFile(path, append(append(buf, header...), data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckSafetensors checks complete files (every safetensors file of the
// repository, written by PyTorch or by SaveSafetensors) and refuses
// truncated, padded and inconsistent ones, naming the file and the problem.
func TestCheckSafetensors(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.safetensors"))
	plugins, _ := filepath.Glob(filepath.Join("..", "plugins", "*", "testdata", "*.safetensors"))
	if len(files) < 10 || len(plugins) < 6 {
		t.Fatalf("found %d + %d safetensors fixtures", len(files), len(plugins))
	}
	for _, f := range append(files, plugins...) {
		if err := nn.CheckSafetensors(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := nn.SaveSafetensors(path, sampleParams(1), map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := nn.CheckSafetensors(path); err != nil {
		t.Fatal(err)
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	n := int(binary.LittleEndian.Uint64(buf))
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"last byte", buf[:len(buf)-1], "truncated: the header describes 84 bytes of tensor data, the file holds 83 (1 bytes missing)"},
		{"header only", buf[:8+n], "the file holds 0 (84 bytes missing)"},
		{"inside the header", buf[:8+n/2], fmt.Sprintf("truncated: the header is %d bytes long but only %d bytes follow its length", n, n/2)},
		{"inside the length", buf[:5], "truncated: 5 bytes, too short for the 8-byte header length"},
		{"empty", nil, "truncated: 0 bytes"},
		{"padded", append(slices.Clone(buf), 0), "1 bytes follow the last tensor's data"},
		{"garbage", []byte("PK\x03\x04 this is a zip file"), "exceeds the limit of 100000000 bytes (not a safetensors file?)"},
	} {
		if err := os.WriteFile(bad, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		err := nn.CheckSafetensors(bad)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %s and %q", c.name, err, bad, c.want)
		}
		// LoadSafetensors refuses the same files with the same message.
		if lerr := nn.LoadSafetensors(bad, sampleParams(1)); lerr == nil || err == nil || lerr.Error() != err.Error() {
			t.Errorf("%s: LoadSafetensors: %v", c.name, lerr)
		}
	}
	if err := nn.CheckSafetensors(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if err := nn.CheckSafetensors(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// TestCheckSafetensorsHeader refuses every kind of inconsistent header,
// each problem of a file reported at once with the tensor it concerns.
func TestCheckSafetensorsHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.safetensors")
	f32 := func(name string, shape string, begin, end int) string {
		return fmt.Sprintf(`%q:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, name, shape, begin, end)
	}
	for _, c := range []struct {
		name, header string
		data         int
		want         []string
	}{
		{"ok", "{" + f32("a", "[2]", 0, 8) + "," + f32("b", "[]", 8, 12) + "}", 12, nil},
		{"no tensors", `{"__metadata__":{"x":"y"}}    `, 0, nil},
		{"zero-sized", `{"e":{"dtype":"U8","shape":[0,4],"data_offsets":[0,0]}}`, 0, nil},
		{"overlap", "{" + f32("a", "[2]", 0, 8) + "," + f32("b", "[2]", 4, 12) + "}", 12,
			[]string{`tensor "b" (bytes 4 to 12) overlaps tensor "a", which ends at 8`}},
		{"gap", "{" + f32("a", "[1]", 0, 4) + "," + f32("b", "[1]", 8, 12) + "}", 12,
			[]string{`bytes 4 to 8 of the data belong to no tensor (next: "b")`}},
		{"not at 0", "{" + f32("a", "[1]", 4, 8) + "}", 8, []string{`bytes 0 to 4 of the data belong to no tensor (next: "a")`}},
		{"size", "{" + f32("a", "[3]", 0, 8) + "}", 8, []string{`tensor "a": shape [3] of F32 needs 12 bytes, data_offsets [0, 8] span 8`}},
		{"overflow", `{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0, []string{`tensor "a": shape [4294967296 4294967296] is too large`}},
		{"bytes overflow", `{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}`, 0, []string{`tensor "a": shape [4611686018427387904] of F64 is too large`}},
		{"several", `{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]},"b":{"shape":[1],"data_offsets":[4,8]},` +
			`"c":{"dtype":"F32","shape":[-1],"data_offsets":[8,12]},"d":{"dtype":"F32","shape":[1],"data_offsets":[12,16],"extra":1},` +
			`"e":{"dtype":"F32","shape":[1],"data_offsets":[20,16]},"f":[1],"__metadata__":{"n":1}}`, 16,
			[]string{`tensor "a": unknown dtype "F31"`, `tensor "b": dtype is missing`, `tensor "c": shape [-1] is not a list of natural numbers`,
				`tensor "d": unknown key "extra"`, `tensor "e": data_offsets [20 16] is not [begin, end] with begin <= end`,
				`tensor "f": expected an object {dtype, shape, data_offsets}, got [1]`, `__metadata__ must be an object of strings`}},
		{"duplicate", "{" + f32("a", "[1]", 0, 4) + "," + f32("a", "[1]", 4, 8) + "}", 8, []string{`header: "a" appears twice`}},
		{"not an object", `[1, 2]`, 0, []string{"the header is not a JSON object"}},
		{"trailing", `{} {}`, 0, []string{"data after the header object"}},
		{"bad JSON", `{"a": }`, 0, []string{"header: "}},
	} {
		rawFile(t, path, c.header, make([]byte, c.data))
		err := nn.CheckSafetensors(path)
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
	}
}

// TestCheckSafetensorsParams finds, from the header alone, what
// LoadSafetensors would refuse about the parameters.
func TestCheckSafetensorsParams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := nn.SaveSafetensors(path, sampleParams(1), nil); err != nil {
		t.Fatal(err)
	}
	if err := nn.CheckSafetensorsParams(path, sampleParams(2)); err != nil {
		t.Fatal(err)
	}
	ps := nn.NewParamSet()
	nn.NewLinear(ps, "enc.proj", 2, 3) // transposed weight
	ps.Add("scalarish", 1)
	ps.Add("extra", 2)
	err := nn.CheckSafetensorsParams(path, ps)
	want := "check safetensors " + path + ": tensor enc.proj.bias has shape [2], want [3]\n" +
		"check safetensors " + path + ": tensor enc.proj.weight has shape [2 3], want [3 2]\n" +
		"check safetensors " + path + ": tensor extra missing\n" +
		"check safetensors " + path + ": unexpected tensor emb.weight"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if lerr := nn.LoadSafetensors(path, ps); lerr == nil || lerr.Error() != strings.ReplaceAll(want, "check safetensors", "load safetensors") {
		t.Errorf("LoadSafetensors: %v", lerr)
	}
	if err := nn.CheckSafetensorsParams(path+".absent", ps); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// TestLoadSafetensorsHugeFile is issue 9's review finding 1: a sparse file
// whose header describes 100 GB of data (one F32 tensor of 25e9 elements)
// used to be read whole before its header was matched against the
// parameters, a fatal out-of-memory error. It must be refused from the
// header, allocating almost nothing.
func TestLoadSafetensorsHugeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.safetensors")
	const bytes = 100_000_000_000
	header := fmt.Sprintf(`{"huge":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}`, bytes/4, bytes)
	rawFile(t, path, header, nil)
	if err := os.Truncate(path, int64(8+len(header)+bytes)); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	if err := nn.CheckSafetensors(path); err != nil {
		t.Fatalf("the file is a complete safetensors file, but: %v", err)
	}
	ps := sampleParams(1)
	before := slices.Clone(ps.Get("emb.weight").Data)
	var start, end runtime.MemStats
	runtime.ReadMemStats(&start)
	err := nn.LoadSafetensors(path, ps)
	runtime.ReadMemStats(&end)
	if err == nil || !strings.Contains(err.Error(), "unexpected tensor huge") || !strings.Contains(err.Error(), "tensor emb.weight missing") {
		t.Errorf("err = %v, want the mismatch with the parameters", err)
	}
	if alloc := end.TotalAlloc - start.TotalAlloc; alloc > 10<<20 {
		t.Errorf("LoadSafetensors allocated %d bytes to refuse a mismatched header", alloc)
	}
	if !slices.Equal(before, ps.Get("emb.weight").Data) {
		t.Error("a refused file changed the parameters")
	}
}

// TestLoadSafetensorsLargeTensors loads tensors larger than the read
// buffer, in F32 and converted from F16, across its chunk boundaries.
func TestLoadSafetensorsLargeTensors(t *testing.T) {
	dir := t.TempDir()
	src := nn.NewParamSet()
	big := src.Add("big", 3, 100_003) // 1.2 MB, more than one buffer
	small := src.Add("small", 5)
	for i := range big.Data {
		big.Data[i] = float32(i%1000) - 500
	}
	for i := range small.Data {
		small.Data[i] = float32(i) / 4
	}
	path := filepath.Join(dir, "f32.safetensors")
	if err := nn.SaveSafetensors(path, src, nil); err != nil {
		t.Fatal(err)
	}
	// The same values as F16 (exact: integers below 2048, quarters).
	half := func(v float32) []byte {
		bits := math.Float32bits(v)
		sign, exp, frac := uint16(bits>>16)&0x8000, int(bits>>23&0xff), bits&0x7fffff
		if exp == 0 {
			return []byte{0, byte(sign >> 8)}
		}
		h := sign | uint16(exp-127+15)<<10 | uint16(frac>>13)
		return binary.LittleEndian.AppendUint16(nil, h)
	}
	var data []byte
	for _, v := range append(slices.Clone(big.Data), small.Data...) {
		data = append(data, half(v)...)
	}
	n := 2 * len(big.Data)
	f16 := filepath.Join(dir, "f16.safetensors")
	rawFile(t, f16, fmt.Sprintf(`{"big":{"dtype":"F16","shape":[3,100003],"data_offsets":[0,%d]},"small":{"dtype":"F16","shape":[5],"data_offsets":[%d,%d]}}`,
		n, n, n+10), data)
	for _, file := range []string{path, f16} {
		dst := nn.NewParamSet()
		dst.Add("big", 3, 100_003)
		dst.Add("small", 5)
		if err := nn.LoadSafetensors(file, dst); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"big", "small"} {
			if got, want := dst.Get(name).Data, src.Get(name).Data; !slices.Equal(got, want) {
				i := 0
				for i < len(got) && got[i] == want[i] {
					i++
				}
				t.Errorf("%s: %s[%d] = %v, want %v", filepath.Base(file), name, i, got[i], want[i])
			}
		}
	}
}
