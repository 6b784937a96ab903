//go:build unix

package datasets

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadFileNamedPipe: a named pipe without a writer does not hang, and
// a pipe whose writer never writes is stopped by the context.
func TestLoadFileNamedPipe(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("no named pipes:", err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := LoadFile(context.Background(), p, 0); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no writer") {
			t.Errorf("LoadFile of a pipe without a writer = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadFile of a named pipe without a writer hangs")
	}

	w, err := os.OpenFile(p, os.O_RDWR, 0) // a writer that never writes
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	go func() { _, _, err := LoadFile(ctx, p, 0); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("LoadFile of a silent pipe after its context expired = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadFile of a silent pipe ignores its context")
	}
}
