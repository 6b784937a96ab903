//go:build unix

package nn_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"arbench/nn"
)

// TestSafetensorsRefusesFIFO: opening a FIFO for reading blocks until
// something writes to it, so a weights path naming one used to hang
// arbench. Every reader must refuse it at once, saying what it is.
func TestSafetensorsRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo.safetensors")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for name, read := range map[string]func() error{
		"LoadSafetensors":         func() error { return nn.LoadSafetensors(path, sampleParams(1)) },
		"CheckSafetensors":        func() error { return nn.CheckSafetensors(path) },
		"CheckSafetensorsParams":  func() error { return nn.CheckSafetensorsParams(path, sampleParams(1)) },
		"ReadSafetensorsMetadata": func() error { _, err := nn.ReadSafetensorsMetadata(path); return err },
		"ReadSafetensorsFloats":   func() error { _, err := nn.ReadSafetensorsFloats(path); return err },
	} {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: err = %v, want %s refused as not a regular file", name, err, path)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s blocked on a FIFO", name)
			// Unblock the reader's open by opening the other end.
			if w, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
				w.Close()
			}
			<-done
		}
	}
}
