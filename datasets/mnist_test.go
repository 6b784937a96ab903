package datasets

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeMNIST writes a small MNIST-like set (nTrain and nTest images of
// 28×28, gzip'ed like the real files) into dir and returns a corpus whose
// checksums are theirs. edit, if not nil, changes a file's contents before
// they are hashed and written (by member index: train images, train labels,
// test images, test labels).
func fakeMNIST(t *testing.T, dir string, nTrain, nTest int, edit func(i int, b []byte) []byte) corpus {
	t.Helper()
	files := []string{mnistTrainImages, mnistTrainLabels, mnistTestImages, mnistTestLabels}
	contents := [][]byte{
		idxFile(IDXImagesMagic, []uint32{uint32(nTrain), 28, 28}, seq(nTrain*28*28)),
		idxFile(IDXLabelsMagic, []uint32{uint32(nTrain)}, seq(nTrain)),
		idxFile(IDXImagesMagic, []uint32{uint32(nTest), 28, 28}, bytes.Repeat([]byte{255}, nTest*28*28)),
		idxFile(IDXLabelsMagic, []uint32{uint32(nTest)}, bytes.Repeat([]byte{9}, nTest)),
	}
	c := corpus{name: "fake-mnist", kind: KindImages}
	for i, f := range files {
		b := contents[i]
		if edit != nil {
			b = edit(i, b)
		}
		b = gzBytes(t, b)
		if err := os.MkdirAll(filepath.Join(dir, c.name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.name, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
		c.members = append(c.members, member{file: f, sha256: hexSHA256(b), size: int64(len(b))})
	}
	return c
}

func TestLoadMNISTFake(t *testing.T) {
	dir := t.TempDir()
	c := fakeMNIST(t, dir, 5, 3, nil)
	train, test, refs, err := loadMNIST(c, dir, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 5 || train.H != 28 || train.W != 28 || !bytes.Equal(train.Pixels, seq(5*28*28)) ||
		!bytes.Equal(train.Labels, seq(5)) {
		t.Errorf("train = %d×%d×%d, labels %v", train.N, train.H, train.W, train.Labels)
	}
	if test.N != 3 || !bytes.Equal(test.Image(2), bytes.Repeat([]byte{255}, 28*28)) || !bytes.Equal(test.Labels, []byte{9, 9, 9}) {
		t.Errorf("test = %d images, labels %v", test.N, test.Labels)
	}
	if len(refs) != 4 {
		t.Fatalf("%d refs, want 4", len(refs))
	}
	for i, r := range refs {
		m := c.members[i]
		if r.Name != "fake-mnist/"+m.file || r.Path != filepath.Join(dir, "fake-mnist", m.file) || r.SHA256 != m.sha256 || r.Bytes != m.size {
			t.Errorf("ref %d = %+v", i, r)
		}
		// The ref is what reproduce re-hashes: the file on disk.
		b, err := os.ReadFile(r.Path)
		if err != nil || hexSHA256(b) != r.SHA256 {
			t.Errorf("ref %d does not hash its file: %v", i, err)
		}
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	tooMany := func(i int, b []byte) []byte {
		if i == 1 {
			return idxFile(IDXLabelsMagic, []uint32{6}, seq(6))
		}
		return b
	}
	for _, c := range []struct {
		name           string
		nTrain, nTest  int
		edit           func(i int, b []byte) []byte
		remove, garble int // member to remove or garble, -1 for none
		want           []string
	}{
		{"missing file", 5, 3, nil, 2, -1, []string{"fake-mnist is not cached", mnistTestImages, "arbench fetch fake-mnist"}},
		{"corrupted file", 5, 3, nil, -1, 3, []string{"corrupted", mnistTestLabels, "arbench fetch fake-mnist"}},
		{"wrong count", 4, 3, nil, -1, -1, []string{mnistTrainImages, "5 images of 28×28, want 4 of 28×28"}},
		{"wrong side", 5, 3, func(i int, b []byte) []byte {
			if i == 2 {
				return idxFile(IDXImagesMagic, []uint32{3, 28, 27}, seq(3*28*27))
			}
			return b
		}, -1, -1, []string{mnistTestImages, "3 images of 28×27"}},
		{"label count", 5, 3, tooMany, -1, -1, []string{mnistTrainLabels, "6 labels for the 5 images of", mnistTrainImages}},
		{"label value", 5, 3, func(i int, b []byte) []byte {
			if i == 3 {
				return idxFile(IDXLabelsMagic, []uint32{3}, []byte{1, 10, 2})
			}
			return b
		}, -1, -1, []string{mnistTestLabels, "label 1 is 10, want 0–9"}},
		{"labels as images", 5, 3, func(i int, b []byte) []byte {
			if i == 0 {
				return idxFile(IDXLabelsMagic, []uint32{5}, seq(5))
			}
			return b
		}, -1, -1, []string{mnistTrainImages, "not an IDX image file"}},
		{"truncated images", 5, 3, func(i int, b []byte) []byte {
			if i == 0 {
				return b[:len(b)-1]
			}
			return b
		}, -1, -1, []string{mnistTrainImages, "truncated data"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fc := fakeMNIST(t, dir, 5, 3, c.edit)
			if c.remove >= 0 {
				if err := os.Remove(fc.path(dir, fc.members[c.remove])); err != nil {
					t.Fatal(err)
				}
			}
			if c.garble >= 0 {
				p := fc.path(dir, fc.members[c.garble])
				b, _ := os.ReadFile(p)
				b[len(b)/2] ^= 1
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, _, _, err := loadMNIST(fc, dir, c.nTrain, c.nTest)
			if err == nil {
				t.Fatal("loadMNIST succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, _, _, err := loadMNIST(corpus{name: "x", members: make([]member, 3)}, t.TempDir(), 1, 1); err == nil {
		t.Error("loadMNIST of a 3-file corpus succeeded")
	}
}

// TestLoadMNISTMissing: the real loader on an empty directory names the
// file and says how to fetch it.
func TestLoadMNISTMissing(t *testing.T) {
	dir := t.TempDir()
	_, _, _, err := LoadMNIST(dir)
	for _, want := range []string{"mnist is not cached", filepath.Join(dir, "mnist", mnistTrainImages), "make datasets", "arbench fetch mnist"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadMNIST(empty) = %v, want an error saying %q", err, want)
		}
	}
	t.Setenv(EnvDir, dir)
	if _, _, _, err := LoadMNIST(""); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadMNIST(\"\") = %v, want it to read $%s", err, EnvDir)
	}
}

// repoData is the data directory make uses: $ARBENCH_DATA, else the module
// root's data/.
func repoData() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return filepath.Join("..", "data")
}

// TestLoadMNISTReal reads the real MNIST when it is cached (`make datasets`
// fetches it).
func TestLoadMNISTReal(t *testing.T) {
	dir := repoData()
	if !Cached("mnist", dir) {
		t.Skipf("mnist is not cached in %s: `make datasets` fetches it", dir)
	}
	train, test, refs, err := LoadMNIST(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.N != 60000 || test.N != 10000 || train.H != 28 || test.W != 28 ||
		len(train.Pixels) != 60000*784 || len(test.Labels) != 10000 {
		t.Fatalf("train %d×%d×%d, test %d×%d×%d", train.N, train.H, train.W, test.N, test.H, test.W)
	}
	// The first labels of each split, as published.
	if !bytes.Equal(train.Labels[:8], []byte{5, 0, 4, 1, 9, 2, 1, 3}) || !bytes.Equal(test.Labels[:8], []byte{7, 2, 1, 0, 4, 1, 4, 9}) {
		t.Errorf("first labels: train %v, test %v", train.Labels[:8], test.Labels[:8])
	}
	var counts [10]int
	for _, l := range train.Labels {
		counts[l]++
	}
	if counts[1] != 6742 || counts[5] != 5421 {
		t.Errorf("train label counts %v", counts)
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"mnist/" + mnistTrainImages, "mnist/" + mnistTrainLabels, "mnist/" + mnistTestImages, "mnist/" + mnistTestLabels}) {
		t.Errorf("ref names %v", names)
	}
}

func TestMNISTInTable(t *testing.T) {
	if !slices.Equal(Names(), []string{"enwik8", "jargon", "mnist", "text8", "wikitext-103-raw"}) ||
		!slices.Equal(NamesOf(KindText), []string{"enwik8", "jargon", "text8", "wikitext-103-raw"}) || !slices.Equal(NamesOf(KindImages), []string{"mnist"}) {
		t.Errorf("Names %v, text %v, images %v", Names(), NamesOf(KindText), NamesOf(KindImages))
	}
	if d := Describe("mnist"); !strings.Contains(d, mnistModule+"@"+mnistVersion) {
		t.Errorf("Describe(mnist) = %q", d)
	}
	dir := t.TempDir()
	if p, err := Path("mnist", dir); err != nil || p != filepath.Join(dir, "mnist") {
		t.Errorf("Path(mnist) = %q, %v", p, err)
	}
	if p, err := Path("jargon", dir); err != nil || p != filepath.Join(dir, "jargon", "jargon.txt") {
		t.Errorf("Path(jargon) = %q, %v", p, err)
	}
	if _, _, err := Load("mnist", dir); err == nil || !strings.Contains(err.Error(), "not a text corpus") ||
		!strings.Contains(err.Error(), "jargon") {
		t.Errorf("Load(mnist) = %v, want it refused naming the text corpora", err)
	}
	// Cached looks at presence and sizes, not contents.
	c, _ := lookup("mnist")
	if Cached("mnist", dir) || Cached("nope", dir) {
		t.Error("Cached on an empty dir")
	}
	for _, m := range c.members {
		if err := os.MkdirAll(filepath.Join(dir, "mnist"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.path(dir, m), make([]byte, m.size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !Cached("mnist", dir) {
		t.Error("not Cached with every file present at its size")
	}
	if err := os.WriteFile(c.path(dir, c.members[3]), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if Cached("mnist", dir) {
		t.Error("Cached with a file of the wrong size")
	}
	os.Remove(c.path(dir, c.members[3]))
	if Cached("mnist", dir) {
		t.Error("Cached with a file missing")
	}
}

// multiCorpus is a two-file dataset whose source returns files (counting
// calls); its checksums are those of want.
func multiCorpus(want, files map[string]string, calls *int) corpus {
	c := corpus{name: "multi", kind: KindImages}
	for _, f := range []string{"a.bin", "b.bin"} {
		c.members = append(c.members, member{file: f, sha256: hexSHA256([]byte(want[f])), size: int64(len(want[f]))})
	}
	c.fetch = func(context.Context, string, io.Writer) (map[string][]byte, error) {
		*calls++
		out := map[string][]byte{}
		for f, b := range files {
			out[f] = []byte(b)
		}
		return out, nil
	}
	return c
}

func TestFetchMultiFile(t *testing.T) {
	want := map[string]string{"a.bin": "first file", "b.bin": "second file"}
	dir := t.TempDir()
	calls := 0
	c := multiCorpus(want, want, &calls)
	var log bytes.Buffer
	if err := c.fetchTo(context.Background(), dir, &log); err != nil {
		t.Fatal(err)
	}
	for f, b := range want {
		if got, err := os.ReadFile(filepath.Join(dir, "multi", f)); err != nil || string(got) != b {
			t.Errorf("%s = %q, %v", f, got, err)
		}
	}
	if err := c.fetchTo(context.Background(), dir, &log); err != nil || calls != 1 {
		t.Errorf("second fetch: %v, %d source calls, want 1", err, calls)
	}
	if !strings.Contains(log.String(), "multi already cached at "+filepath.Join(dir, "multi")) {
		t.Errorf("log:\n%s", log.String())
	}
	// One file lost: refetched.
	os.Remove(filepath.Join(dir, "multi", "b.bin"))
	if err := c.fetchTo(context.Background(), dir, &log); err != nil || calls != 2 {
		t.Errorf("fetch after a lost file: %v, %d calls", err, calls)
	}
	if _, _, err := c.read(dir); err != nil {
		t.Errorf("after refetch: %v", err)
	}
}

// TestFetchMultiFileCachesNothingOnError: one bad or missing file fails the
// fetch, names the file, and no file is written (not even the good one).
func TestFetchMultiFileCachesNothingOnError(t *testing.T) {
	want := map[string]string{"a.bin": "first file", "b.bin": "second file"}
	for _, c := range []struct {
		name  string
		files map[string]string
		say   []string
	}{
		{"mismatch", map[string]string{"a.bin": "first file", "b.bin": "second fil3"}, []string{"multi", "b.bin", "checksum mismatch", hexSHA256([]byte("second file")), hexSHA256([]byte("second fil3")), "nothing was cached"}},
		{"missing", map[string]string{"a.bin": "first file"}, []string{"multi", "the source has no file b.bin", "nothing was cached"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			calls := 0
			err := multiCorpus(want, c.files, &calls).fetchTo(context.Background(), dir, nil)
			if err == nil {
				t.Fatal("fetch succeeded")
			}
			for _, s := range c.say {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "multi")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("something was cached: %v", err)
			}
		})
	}
}
