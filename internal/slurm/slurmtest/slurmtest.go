// Package slurmtest is what the tests against a real Slurm cluster share
// (internal/slurm's integration tests, cmd/arbench's end-to-end test). It
// does not import package slurm, so slurm's own tests can use it.
package slurmtest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

var (
	pingOnce sync.Once
	pingErr  error
)

// Need skips the test unless a Slurm controller answers ping (slurm.Ping),
// or fails it when ARBENCH_REQUIRE_SLURM=1 (CI, after `make slurm-up`). The
// cluster is asked once per test binary: with a slurm.conf but no
// controller, sinfo takes about 9 s to give up.
func Need(t testing.TB, ping func(context.Context) error) {
	t.Helper()
	pingOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		pingErr = ping(ctx)
	})
	if pingErr == nil {
		return
	}
	if os.Getenv("ARBENCH_REQUIRE_SLURM") == "1" {
		t.Fatalf("ARBENCH_REQUIRE_SLURM=1 but no Slurm cluster answers (%v); start one with `make slurm-up` (as root)", pingErr)
	}
	t.Skipf("no Slurm cluster answers (%v); start one with `make slurm-up` (as root), or set ARBENCH_REQUIRE_SLURM=1 to fail instead of skipping", pingErr)
}
