//go:build unix

package harness

import (
	"errors"
	"os"
	"syscall"
)

// noFollow makes opening the lock file fail on a symbolic link.
const noFollow = syscall.O_NOFOLLOW

// errLocked says another open file description holds the lock.
var errLocked = errors.New("locked")

// tryLock takes an exclusive, non-blocking flock(2) on f.
func tryLock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		}
		return err
	}
}
