package datasets

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cachedText writes files into dir as the cached members of a text corpus
// and returns the corpus.
func cachedText(t *testing.T, dir string, c corpus, files ...string) corpus {
	t.Helper()
	c.kind = KindText
	for i, body := range files {
		m := member{file: filepath.Base(t.Name()) + string(rune('a'+i)), size: int64(len(body)), sha256: hexSHA256([]byte(body))}
		c.members = append(c.members, m)
		if err := os.MkdirAll(filepath.Join(dir, c.name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.path(dir, m), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestLoadSplits(t *testing.T) {
	dir := t.TempDir()
	text := strings.Repeat("0123456789", 20) // 200 bytes

	plain := cachedText(t, dir, corpus{name: "plain"}, text)
	sp, err := plain.loadSplits(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(sp.Train) != text[:180] || string(sp.Valid) != text[180:190] || string(sp.Test) != text[190:] ||
		sp.Scheme != "90/5/5 split of 200 bytes" || len(sp.Refs) != 1 {
		t.Errorf("90/5/5 split: %d/%d/%d bytes, %q, %d refs", len(sp.Train), len(sp.Valid), len(sp.Test), sp.Scheme, len(sp.Refs))
	}

	std := cachedText(t, dir, corpus{name: "std", splitSizes: [3]int64{150, 30, 20}}, text)
	sp, err = std.loadSplits(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(sp.Train) != text[:150] || string(sp.Valid) != text[150:180] || string(sp.Test) != text[180:] ||
		sp.Scheme != "standard split 150/30/20 bytes" {
		t.Errorf("standard split: %d/%d/%d bytes, %q", len(sp.Train), len(sp.Valid), len(sp.Test), sp.Scheme)
	}
	short := cachedText(t, dir, corpus{name: "short", splitSizes: [3]int64{150, 30, 30}}, text)
	if _, err := short.loadSplits(dir); err == nil || !strings.Contains(err.Error(), "has 200 bytes, but its standard split needs 210") {
		t.Errorf("split of the wrong size: %v", err)
	}

	files := cachedText(t, dir, corpus{name: "files", splitFiles: true}, "train bytes", "valid bytes", "test bytes")
	sp, err = files.loadSplits(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(sp.Train) != "train bytes" || string(sp.Valid) != "valid bytes" || string(sp.Test) != "test bytes" ||
		sp.Scheme != "published train/valid/test files" || len(sp.Refs) != 3 || sp.Refs[2].Name != "files/"+files.members[2].file {
		t.Errorf("published files: %q/%q/%q, %q, %+v", sp.Train, sp.Valid, sp.Test, sp.Scheme, sp.Refs)
	}
}

func TestLoadSplitsErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadSplits("mnist", dir); err == nil || !strings.Contains(err.Error(), "not a text corpus") {
		t.Errorf("LoadSplits(mnist) = %v", err)
	}
	if _, err := LoadSplits("nope", dir); err == nil || !strings.Contains(err.Error(), "unknown dataset") {
		t.Errorf("LoadSplits(nope) = %v", err)
	}
	_, err := LoadSplits("enwik8", dir)
	for _, want := range []string{"not cached", "make datasets DATASETS=enwik8", "arbench fetch enwik8"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadSplits(enwik8) on an empty cache = %v, want %q", err, want)
		}
	}
	if _, _, err := Load("wikitext-103-raw", dir); err == nil || !strings.Contains(err.Error(), "LoadSplits") {
		t.Errorf("Load(wikitext-103-raw) = %v, want a pointer to LoadSplits", err)
	}
}

// TestSplitFractions: the 90/5/5 rule, and on 100,000,000 bytes the
// standard split of enwik8 and text8.
func TestSplitFractions(t *testing.T) {
	for _, tc := range []struct{ n, train, valid, test int }{
		{100_000_000, 90_000_000, 5_000_000, 5_000_000},
		{1681817, 1513635, 84090, 84092},
		{19, 17, 0, 2},
		{0, 0, 0, 0},
	} {
		tr, va, te := SplitFractions(tc.n)
		if tr != tc.train || va != tc.valid || te != tc.test {
			t.Errorf("SplitFractions(%d) = %d/%d/%d, want %d/%d/%d", tc.n, tr, va, te, tc.train, tc.valid, tc.test)
		}
	}
}

// TestStandardCorpora checks the real table entries: names, kinds, the
// published sizes and well-formed hashes, member names inside the
// archives, and the splits.
func TestStandardCorpora(t *testing.T) {
	want := map[string]struct {
		url   string
		size  int64
		files []string
	}{
		"enwik8":           {"http://mattmahoney.net/dc/enwik8.zip", 36445475, []string{"enwik8"}},
		"text8":            {"http://mattmahoney.net/dc/text8.zip", 31344016, []string{"text8"}},
		"wikitext-103-raw": {"https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-raw-v1.zip", 191984949, []string{"wiki.train.raw", "wiki.valid.raw", "wiki.test.raw"}},
	}
	var large []string
	for _, n := range Names() {
		if Large(n) {
			large = append(large, n)
		}
	}
	if !slices.Equal(large, []string{"enwik8", "text8", "wikitext-103-raw"}) || !slices.Equal(DefaultNames(), []string{"jargon", "mnist"}) {
		t.Errorf("large %v, default %v", large, DefaultNames())
	}
	for _, c := range standardCorpora() {
		w, ok := want[c.name]
		if !ok {
			t.Errorf("unexpected standard corpus %s", c.name)
			continue
		}
		a := c.archive
		if a == nil || c.fetch != nil || a.url != w.url || a.size != w.size || !wellFormedMember(member{file: a.file, sha256: a.sha256, size: a.size}, false) ||
			!strings.HasSuffix(a.url, "/"+a.file) {
			t.Errorf("%s: archive %+v", c.name, a)
		}
		if c.kind != KindText || !c.large || !strings.Contains(c.desc, a.file) {
			t.Errorf("%s: kind %s, large %v, desc %q", c.name, c.kind, c.large, c.desc)
		}
		var files []string
		for _, m := range c.members {
			files = append(files, m.file)
			if !wellFormedMember(m, true) || filepath.Base(m.zipName) != m.file {
				t.Errorf("%s: member %+v", c.name, m)
			}
		}
		if !slices.Equal(files, w.files) {
			t.Errorf("%s: files %v, want %v", c.name, files, w.files)
		}
		if c.splitFiles != (len(files) == 3) {
			t.Errorf("%s: splitFiles %v with %d files", c.name, c.splitFiles, len(files))
		}
		if len(files) == 1 {
			if c.members[0].size != 100_000_000 || c.splitSizes != [3]int64{90_000_000, 5_000_000, 5_000_000} {
				t.Errorf("%s: %d bytes split %v, want 100000000 split 90M/5M/5M", c.name, c.members[0].size, c.splitSizes)
			}
		}
	}
}

// TestFetchStandardCorpusThroughMirror: the real table entry of text8,
// fetched from a mirror that serves the wrong file, fails on the archive's
// published size before reading it (no host of the real corpora is
// reachable from the tests).
func TestFetchStandardCorpusThroughMirror(t *testing.T) {
	z := smallZip(t)
	s, srv := newServer(t, z, ignoringRanges)
	t.Setenv(EnvMirror, srv.URL+"/mirror")
	c, err := lookup("text8")
	if err != nil {
		t.Fatal(err)
	}
	c.archive = &archive{file: "small.zip", url: c.archive.url, size: c.archive.size, sha256: c.archive.sha256}
	err = c.fetchArchive(context.Background(), t.TempDir(), io.Discard, quiet(srv, 1))
	if err == nil || !strings.Contains(err.Error(), "expected 31344016") || len(s.ranges()) != 1 {
		t.Errorf("fetch of text8 from a wrong mirror = %v", err)
	}
}

func TestPublished(t *testing.T) {
	headline := map[string]map[string]float64{
		"enwik8": {"Transformer-XL, 24 layers (large)": 0.99, "64-layer character Transformer (T64)": 1.06, "Large mLSTM": 1.24},
		"text8":  {"Transformer-XL (large)": 1.08, "64-layer character Transformer (T64)": 1.13, "Large mLSTM": 1.27},
	}
	for name, want := range headline {
		rs := Published(name)
		if len(rs) < 4 {
			t.Fatalf("Published(%s) has %d rows", name, len(rs))
		}
		got := map[string]float64{}
		for i, r := range rs {
			got[r.Model] = r.BPC
			if r.Model == "" || !strings.Contains(r.Paper, "arXiv:") || r.Where == "" || r.Year < 2013 || r.Year > 2019 ||
				r.BPC < 0.5 || r.BPC > 2 || r.Params < 0 {
				t.Errorf("%s: row %+v", name, r)
			}
			if r.Params == 0 && !strings.Contains(r.Note, "parameter count not confirmed") {
				t.Errorf("%s: %s has no parameter count and no note saying so", name, r.Model)
			}
			if i > 0 && r.BPC > rs[i-1].BPC {
				t.Errorf("%s: not ordered from the simplest to the best at %s", name, r.Model)
			}
		}
		for m, bpc := range want {
			if got[m] != bpc {
				t.Errorf("%s: %s = %v, want %v", name, m, got[m], bpc)
			}
		}
		rs[0].BPC = 9
		if Published(name)[0].BPC == 9 {
			t.Errorf("Published(%s) returns the table itself", name)
		}
	}
	for _, name := range []string{"jargon", "wikitext-103-raw", "nope"} {
		if rs := Published(name); rs != nil {
			t.Errorf("Published(%s) = %v, want none", name, rs)
		}
	}
}
