package harness

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSamplesRoundTrip: what the runner writes (encodeSamples) reads back
// as the same samples with their run, the key fields removed, numbers as
// float64; a missing file is no samples.
func TestSamplesRoundTrip(t *testing.T) {
	k1 := RunKey{Task: "image/shapes", Model: "pixelcnn", Seed: 1<<64 - 1}
	k2 := RunKey{Task: "text/jargon", Model: "lstm", Seed: 2}
	a, err := encodeSamples(k1, []Sample{{"image": "sample", "index": 0, "pixels": "0101"}, {"index": 1, "model": "shadowed"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := encodeSamples(k2, []Sample{{"text": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, SamplesFileName), append(append(a, '\n'), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSamples(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []SampleRecord{
		{k1, Sample{"image": "sample", "index": 0.0, "pixels": "0101"}},
		{k1, Sample{"index": 1.0}},
		{k2, Sample{"text": "hello"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%v\nwant\n%v", got, want)
	}
	if got, err := LoadSamples(t.TempDir()); got != nil || err != nil {
		t.Errorf("no samples.jsonl: %v, %v; want nil, nil", got, err)
	}
}

// TestParseSamplesErrors: every malformed line is refused with its line
// number and what is wrong.
func TestParseSamplesErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"model":"m","task":"t","seed":1}` + "\n" + `[1]`, "s.jsonl:2: not a sample"},
		{`{"model":"m","task":"t","seed":1}` + "\n\n" + `null`, "s.jsonl:3: not a sample"},
		{`{"task":"t","seed":1}`, `s.jsonl:1: sample without "model"`},
		{`{"model":"m","task":"","seed":1}`, `s.jsonl:1: sample without "task"`},
		{`{"model":"m","task":"t"}`, `s.jsonl:1: sample without "seed"`},
		{`{"model":"m","task":"t","seed":-1}`, "s.jsonl:1: not a sample"},
		{`{"model":"m","task":"t","seed":1.5}`, "s.jsonl:1: not a sample"},
		{`{"model":"m","task":"t","seed":1`, "s.jsonl:1: not a sample"},
	} {
		got, err := ParseSamples("s.jsonl", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || got != nil {
			t.Errorf("%q: %v, %v; want an error containing %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseSamples feeds arbitrary bytes to the samples.jsonl reader: it
// never panics, and what it accepts, written again by the runner's
// encoder, reads back the same.
func FuzzParseSamples(f *testing.F) {
	f.Add([]byte(`{"model":"m","task":"image/shapes","seed":1,"image":"sample","height":2,"width":2,"pixels":"0110"}` + "\n"))
	f.Add([]byte("\n\n" + `{"model":"m","task":"t","seed":18446744073709551615,"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"model":"m","task":"t","seed":0}{"model":"m"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParseSamples("samples.jsonl", b)
		if err != nil {
			if recs != nil {
				t.Fatalf("records %v with error %v", recs, err)
			}
			return
		}
		var again []byte
		for _, r := range recs {
			line, err := encodeSamples(r.Run, []Sample{r.Sample})
			if err != nil {
				t.Fatalf("an accepted sample cannot be written again: %v", err)
			}
			again = append(again, line...)
		}
		recs2, err := ParseSamples("samples.jsonl", again)
		if err != nil || !reflect.DeepEqual(recs, recs2) {
			t.Fatalf("writing and reading again changed the samples (%v):\n%v\n%v", err, recs, recs2)
		}
	})
}
