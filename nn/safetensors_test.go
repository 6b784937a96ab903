package nn_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
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
