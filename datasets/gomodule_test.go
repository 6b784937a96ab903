package datasets

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	fakeModule  = "example.com/arbench/fakedata"
	fakeVersion = "v1.0.0"
)

// fakeProxy writes a file-based Go module proxy holding fakeModule at
// fakeVersion with the given files, and points the go command at it with a
// private module cache (GOFLAGS=-modcacherw so the test can remove it, no
// checksum database: the module is not public).
func fakeProxy(t *testing.T, files map[string]string) {
	t.Helper()
	root := t.TempDir()
	v := filepath.Join(root, filepath.FromSlash(fakeModule), "@v")
	if err := os.MkdirAll(v, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files["go.mod"] = "module " + fakeModule + "\n"
	for name, body := range files {
		w, err := zw.Create(fakeModule + "@" + fakeVersion + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"list":                fakeVersion + "\n",
		fakeVersion + ".info": `{"Version":"` + fakeVersion + `","Time":"2020-01-01T00:00:00Z"}`,
		fakeVersion + ".mod":  files["go.mod"],
		fakeVersion + ".zip":  buf.String(),
	} {
		if err := os.WriteFile(filepath.Join(v, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GOPROXY", "file://"+filepath.ToSlash(root))
	t.Setenv("GOMODCACHE", filepath.Join(t.TempDir(), "modcache"))
	t.Setenv("GOFLAGS", "-modcacherw")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GONOSUMDB", "")
	t.Setenv("GOPRIVATE", "")
}

// TestGoModuleFiles fetches files of a module through a file-based proxy
// with the go command, then again with the proxy off (from the module
// cache, as offline), and through Fetch's path into a data directory.
func TestGoModuleFiles(t *testing.T) {
	if _, err := goCommand(); err != nil {
		t.Skip(err)
	}
	fakeProxy(t, map[string]string{"data/a.gz": "file a", "data/b.gz": "file b", "README": "not wanted"})
	src := goModuleFiles(fakeModule, fakeVersion, map[string]string{"a": "data/a.gz", "b": "data/b.gz"})
	var log bytes.Buffer
	got, err := src(context.Background(), t.TempDir(), &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got["a"]) != "file a" || string(got["b"]) != "file b" {
		t.Errorf("files = %q", got)
	}
	if !strings.Contains(log.String(), "go mod download "+fakeModule+"@"+fakeVersion) {
		t.Errorf("log:\n%s", log.String())
	}

	// Offline: the module cache has it.
	t.Setenv("GOPROXY", "off")
	if got, err := src(context.Background(), t.TempDir(), nil); err != nil || string(got["a"]) != "file a" {
		t.Errorf("from the module cache with GOPROXY=off: %q, %v", got, err)
	}

	// The whole fetch, into a data directory.
	c := corpus{name: "fakemod", kind: KindImages, fetch: src, members: []member{
		{file: "a", sha256: hexSHA256([]byte("file a")), size: 6},
		{file: "b", sha256: hexSHA256([]byte("file b")), size: 6},
	}}
	dir := t.TempDir()
	if err := c.fetchTo(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "fakemod", "b")); err != nil || string(b) != "file b" {
		t.Errorf("cached b = %q, %v", b, err)
	}

	// A file the module does not have.
	missing := goModuleFiles(fakeModule, fakeVersion, map[string]string{"a": "data/a.gz", "c": "data/c.gz"})
	if _, err := missing(context.Background(), t.TempDir(), nil); err == nil ||
		!strings.Contains(err.Error(), "module "+fakeModule+"@"+fakeVersion+" has no file data/c.gz") {
		t.Errorf("missing file: %v", err)
	}

	// A version nobody has, offline.
	unknown := goModuleFiles(fakeModule, "v1.0.1", map[string]string{"a": "data/a.gz"})
	if _, err := unknown(context.Background(), t.TempDir(), nil); err == nil ||
		!strings.Contains(err.Error(), "go mod download "+fakeModule+"@v1.0.1") || !strings.Contains(err.Error(), "GOPROXY") {
		t.Errorf("unknown version: %v", err)
	}

	// Cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src(ctx, t.TempDir(), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestGoModuleFilesNoGo: without the go command the error says it is needed.
func TestGoModuleFilesNoGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOROOT", t.TempDir())
	src := goModuleFiles(fakeModule, fakeVersion, map[string]string{"a": "a"})
	if _, err := src(context.Background(), t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "the go command is needed") {
		t.Errorf("without go: %v", err)
	}
}
