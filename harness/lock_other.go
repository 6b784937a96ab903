//go:build !unix

package harness

import (
	"errors"
	"os"
)

// noFollow: the Lstat check in acquire refuses a link.
const noFollow = 0

// errLocked says another process holds the lock.
var errLocked = errors.New("locked")

// tryLock has no advisory lock to take on this system; the lock file's
// presence is the lock, and a stale one must be removed by hand.
func tryLock(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > 0 {
		return errLocked
	}
	return nil
}
