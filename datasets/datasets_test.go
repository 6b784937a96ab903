package datasets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arbench/harness"
)

const fakeText = "a tiny corpus for testing the cache\n"

func gz(t *testing.T, b []byte) []byte {
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

// fakeCorpus is a table entry whose source returns payload (gzip-compressed)
// and counts its calls; its checksum is that of want.
func fakeCorpus(t *testing.T, want, payload string, calls *int) corpus {
	z := gz(t, []byte(payload))
	return corpus{
		name: "fake",
		kind: KindText,
		members: []member{{
			file:   "fake.txt",
			sha256: hexSHA256([]byte(want)),
			size:   int64(len(want)),
			gunzip: true,
		}},
		fetch: func(ctx context.Context, tmp string, log io.Writer) (map[string][]byte, error) {
			*calls++
			if _, err := os.Stat(tmp); err != nil {
				t.Errorf("scratch dir: %v", err)
			}
			return map[string][]byte{"fake.txt": z}, nil
		},
	}
}

// loadText reads the one file of a text corpus c from dir.
func loadText(t *testing.T, c corpus, dir string) ([]byte, harness.DatasetRef, error) {
	t.Helper()
	data, refs, err := c.read(dir)
	if err != nil {
		return nil, harness.DatasetRef{}, err
	}
	if len(data) != 1 || len(refs) != 1 {
		t.Fatalf("read %d files, %d refs, want 1", len(data), len(refs))
	}
	return data[0], refs[0], nil
}

func TestDir(t *testing.T) {
	t.Setenv(EnvDir, "")
	if got := Dir(); got != "data" {
		t.Errorf("Dir() = %q, want data", got)
	}
	t.Setenv(EnvDir, "/x/y")
	if got := Dir(); got != "/x/y" {
		t.Errorf("Dir() = %q, want /x/y", got)
	}
}

func TestTable(t *testing.T) {
	names := Names()
	if !slices.Contains(names, "jargon") || !slices.IsSorted(names) {
		t.Fatalf("Names() = %v, want jargon among them, sorted", names)
	}
	if d := Describe("jargon"); !strings.Contains(d, "jargon-text") {
		t.Errorf("Describe(jargon) = %q", d)
	}
	if d := Describe("nope"); d != "" {
		t.Errorf("Describe(nope) = %q, want empty", d)
	}
	seen := map[string]bool{}
	for _, c := range corpora() {
		if seen[c.name] {
			t.Errorf("duplicate corpus %s", c.name)
		}
		seen[c.name] = true
		if (c.fetch == nil) == (c.archive == nil) || c.desc == "" || len(c.members) == 0 || (c.kind != KindText && c.kind != KindImages) {
			t.Errorf("incomplete table entry %+v", c)
		}
		files := map[string]bool{}
		for _, m := range c.members {
			if !wellFormedMember(m, c.archive != nil) || files[m.file] {
				t.Errorf("%s: incomplete or duplicate member %+v", c.name, m)
			}
			files[m.file] = true
		}
		wantFiles := 1
		if c.splitFiles {
			wantFiles = 3
		}
		if c.kind == KindText && len(c.members) != wantFiles {
			t.Errorf("%s: a text corpus has %d files, want %d", c.name, len(c.members), wantFiles)
		}
	}
	if _, _, err := Load("nope", t.TempDir()); err == nil || !strings.Contains(err.Error(), "jargon") {
		t.Errorf("Load(nope) error = %v, want one listing built-in corpora", err)
	}
	if err := Fetch(context.Background(), "nope", t.TempDir(), nil); err == nil {
		t.Error("Fetch(nope) succeeded")
	}
}

// wellFormedMember: a file name without a directory, a SHA-256 (or, for a
// member extracted from an archive whose SHA-256 is not published, a SHA-1)
// in lowercase hex, and a size or a bound on it; an archive member has its
// name inside the archive.
func wellFormedMember(m member, fromArchive bool) bool {
	hexOf := func(s string, n int) bool {
		_, err := hex.DecodeString(s)
		return len(s) == n && err == nil && strings.ToLower(s) == s
	}
	hashed := hexOf(m.sha256, 64) || (m.sha256 == "" && fromArchive && hexOf(m.sha1, 40))
	if m.sha1 != "" && !hexOf(m.sha1, 40) {
		return false
	}
	sized := (m.size > 0 && m.maxSize == 0) || (m.size == 0 && m.maxSize > 0)
	named := m.file != "" && filepath.Base(m.file) == m.file && (!fromArchive || safeZipName(m.zipName))
	return hashed && sized && named && (fromArchive || m.zipName == "")
}

func TestLoadMissingSaysHowToFetch(t *testing.T) {
	_, _, err := Load("jargon", t.TempDir())
	if err == nil {
		t.Fatal("Load on an empty dir succeeded")
	}
	for _, want := range []string{"jargon", "make datasets", "arbench fetch jargon"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestFetchVerifyCacheLoad(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	c := fakeCorpus(t, fakeText, fakeText, &calls)
	var log bytes.Buffer
	if err := c.fetchTo(context.Background(), dir, &log); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("source called %d times, want 1", calls)
	}
	data, ref, err := loadText(t, c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != fakeText {
		t.Errorf("loaded %q", data)
	}
	wantPath := filepath.Join(dir, "fake", "fake.txt")
	if ref.Name != "fake" || ref.Path != wantPath || ref.SHA256 != c.members[0].sha256 || ref.Bytes != int64(len(fakeText)) {
		t.Errorf("ref = %+v", ref)
	}
	// No temporary files are left next to the cached file.
	entries, err := os.ReadDir(filepath.Join(dir, "fake"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("cache dir holds %d entries, want 1", len(entries))
	}
	// Already cached and valid: no work.
	if err := c.fetchTo(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("source called again for a valid cache (%d calls)", calls)
	}
}

func TestFetchChecksumMismatchCachesNothing(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	c := fakeCorpus(t, fakeText, "something else entirely\n", &calls)
	err := c.fetchTo(context.Background(), dir, nil)
	if err == nil {
		t.Fatal("fetch with a wrong checksum succeeded")
	}
	got := hexSHA256([]byte("something else entirely\n"))
	for _, want := range []string{"fake", "fake.txt", c.members[0].sha256, got} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fake")); !errors.Is(err, os.ErrNotExist) {
		entries, _ := os.ReadDir(filepath.Join(dir, "fake"))
		t.Errorf("something was cached after a mismatch: %v", entries)
	}
}

func TestCorruptedCache(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	c := fakeCorpus(t, fakeText, fakeText, &calls)
	if err := c.fetchTo(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "fake", "fake.txt")
	if err := os.WriteFile(p, []byte("a tiny corpus for testing the cachE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadText(t, c, dir)
	if err == nil {
		t.Fatal("load of a corrupted cache succeeded")
	}
	for _, want := range []string{"fake", "corrupted", "make datasets", "arbench fetch fake"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// Fetch repairs it.
	if err := c.fetchTo(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("source called %d times, want 2 (refetch after corruption)", calls)
	}
	if data, _, err := loadText(t, c, dir); err != nil || string(data) != fakeText {
		t.Errorf("after refetch: %q, %v", data, err)
	}
}

func TestSourceErrorIsWrapped(t *testing.T) {
	boom := errors.New("boom")
	c := corpus{name: "fake", members: []member{{file: "f", sha256: hexSHA256(nil)}},
		fetch: func(context.Context, string, io.Writer) (map[string][]byte, error) { return nil, boom }}
	err := c.fetchTo(context.Background(), t.TempDir(), nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "fake") {
		t.Errorf("error = %v, want wrapped boom naming the dataset", err)
	}
}

func TestTarMember(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, typ byte, body string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("./usr/", tar.TypeDir, "")
	add("./usr/share/doc/x/other.txt", tar.TypeReg, "no")
	add("./usr/share/doc/x/want.txt.gz", tar.TypeReg, "yes")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := tarMember(bytes.NewReader(buf.Bytes()), "usr/share/doc/x/want.txt.gz")
	if err != nil || string(b) != "yes" {
		t.Errorf("tarMember = %q, %v", b, err)
	}
	if _, err := tarMember(bytes.NewReader(buf.Bytes()), "usr/missing"); err == nil || !strings.Contains(err.Error(), "usr/missing") {
		t.Errorf("missing member error = %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(p, []byte(fakeText), 0o644); err != nil {
		t.Fatal(err)
	}
	data, ref, err := LoadFile(context.Background(), p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != fakeText || ref.Name != "corpus.txt" || ref.Path != p ||
		ref.SHA256 != hexSHA256([]byte(fakeText)) || ref.Bytes != int64(len(fakeText)) {
		t.Errorf("LoadFile = %q, %+v", data, ref)
	}
	if _, _, err := LoadFile(context.Background(), filepath.Join(t.TempDir(), "missing"), 0); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
	if _, _, err := LoadFile(context.Background(), t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("LoadFile of a directory = %v", err)
	}
	if data, _, err := LoadFile(context.Background(), p, int64(len(fakeText))); err != nil || string(data) != fakeText {
		t.Errorf("LoadFile at exactly the limit = %q, %v", data, err)
	}
	var tooLarge *TooLargeError
	if _, _, err := LoadFile(context.Background(), p, 10); !errors.As(err, &tooLarge) || tooLarge.Limit != 10 ||
		!strings.Contains(err.Error(), p+": larger than the limit of 10 bytes") {
		t.Errorf("LoadFile over the limit = %v, want a TooLargeError", err)
	}
}

// TestLoadFileStreams: a stream without end fails at the limit instead of
// exhausting memory (issue 9, case 3: -data /dev/zero ended in "fatal
// error: out of memory").
func TestLoadFileStreams(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	_, _, err := LoadFile(context.Background(), "/dev/zero", 1<<20)
	if err == nil || !strings.Contains(err.Error(), "/dev/zero: larger than the limit of 1 MiB") {
		t.Errorf("LoadFile(/dev/zero) = %v", err)
	}
	if got := (&TooLargeError{Path: "f", Limit: DefaultMaxBytes}).Error(); got != "f: larger than the limit of 256 MiB" {
		t.Errorf("default limit reads %q", got)
	}
}

// TestCachedFileLargerThanCorpus: a cached file longer than the corpus is
// reported as corrupted without reading it all.
func TestCachedFileLargerThanCorpus(t *testing.T) {
	dir := t.TempDir()
	calls := 0
	c := fakeCorpus(t, fakeText, fakeText, &calls)
	if err := os.MkdirAll(filepath.Join(dir, "fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fake", "fake.txt"), []byte(fakeText+fakeText), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadText(t, c, dir); err == nil || !strings.Contains(err.Error(), "corrupted (larger than") {
		t.Errorf("load of an oversized cache = %v", err)
	}
}
