package nn

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

// rawSafetensors builds a file from a header and a data section.
func rawSafetensors(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// FuzzReadSafetensors feeds arbitrary bytes to the safetensors reader (the
// header check of CheckSafetensors and LoadSafetensors, and the decoding of
// every tensor). It must never panic, and a file it accepts must be one
// the reference library accepts with the same tensors.
func FuzzReadSafetensors(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.safetensors"))
	plugins, _ := filepath.Glob(filepath.Join("..", "plugins", "*", "testdata", "*.safetensors"))
	for _, path := range append(seeds, plugins...) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(rawSafetensors(`{}`, nil))
	f.Add(rawSafetensors(`{"__metadata__":{"a":"b"}}  `, nil))
	f.Add(rawSafetensors(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"y":{"dtype":"BF16","shape":[],"data_offsets":[2,4]}}`, []byte{1, 2, 3, 4}))
	f.Add(rawSafetensors(`{"x":{"dtype":"I64","shape":[0,3],"data_offsets":[0,0]}}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseSafetensors(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		values := st.floats()
		ps := NewParamSet()
		for _, tn := range st.tensors {
			if isFloatDType(tn.dtype) && !slices.Contains(tn.shape, 0) {
				ps.Add(tn.name, values[tn.name].Shape...)
			}
		}
		if err := matchParams("", &st.stHeader, ps); err != nil && len(ps.List()) == len(st.tensors) {
			t.Fatalf("the file's own float tensors do not match it: %v", err)
		}
		lib, err := safetensors.Deserialize(b)
		if err != nil {
			t.Fatalf("accepted a file the reference library refuses: %v", err)
		}
		if lib.Len() != len(st.tensors) {
			t.Fatalf("%d tensors, the library finds %d", len(st.tensors), lib.Len())
		}
		for _, tn := range st.tensors {
			tv, ok := lib.Tensor(tn.name)
			if !ok || tv.DType() != tn.dtype || !slices.Equal(tv.Shape(), tn.shape) || !bytes.Equal(tv.Data(), st.bytes(&tn)) {
				t.Fatalf("tensor %q differs from the library's reading", tn.name)
			}
		}
	})
}

// countingReader counts the bytes read through ReadAt.
type countingReader struct {
	r    *bytes.Reader
	read int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.read += n
	return n, err
}

// TestCheckSafetensorsReadsOnlyHeader: the check of a file reads its
// length and header, not its tensor data.
func TestCheckSafetensorsReadsOnlyHeader(t *testing.T) {
	header := `{"w":{"dtype":"F32","shape":[256,256],"data_offsets":[0,262144]}}`
	b := rawSafetensors(header, make([]byte, 262144))
	r := &countingReader{r: bytes.NewReader(b)}
	if _, err := checkSafetensors(r, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if r.read != 8+len(header) {
		t.Errorf("read %d bytes of a %d-byte file, want the %d of the header", r.read, len(b), 8+len(header))
	}
}
