//go:build unix

package harness

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOpenRegular(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, fi, err := openRegular(file)
	if err != nil || fi.Size() != 3 {
		t.Fatalf("regular file: %v, %v", fi, err)
	}
	f.Close()
	fifo := filepath.Join(dir, "p")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	var nr *notRegularError
	for _, p := range []string{fifo, dir, "/dev/zero"} {
		if _, _, err := openRegular(p); !errors.As(err, &nr) || nr.Path != p {
			t.Errorf("%s: err = %v, want notRegularError", p, err)
		}
	}
	if _, _, err := openRegular(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
