//go:build unix

package harness_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"arbench/harness"
)

// Case 14 of issue 9 (review): opening a named pipe waits for a writer,
// deaf to Ctrl-C, so `-config FIFO` hung. It is refused before opening.
func TestLoadExperimentNamedPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo.yaml")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := harness.LoadExperiment(path)
		done <- err
	}()
	select {
	case err := <-done:
		want := path + ": a named pipe, not a regular file; an experiment must be a regular file"
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	case <-time.After(10 * time.Second):
		// Release the blocked open: a writer's open succeeds now that
		// a reader waits.
		if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("LoadExperiment blocked on a named pipe for 10 s")
	}
}
