package harness

import (
	"fmt"
	"io/fs"
	"os"
)

// Every reader of outside input in harness (experiment and results files)
// opens it with openRegular: opening a FIFO without a writer blocks, and a
// device such as /dev/zero streams forever. (nn keeps its own twin for
// weights files, since nn imports nothing else of arbench.)

// notRegularError says a path names something other than a regular file.
type notRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *notRegularError) Error() string {
	return fmt.Sprintf("%s: not a regular file (%s)", e.Path, e.Mode.Type())
}

// openRegular opens path for reading when it is a regular file, checking
// before opening (so a FIFO is never opened) and again after (so a path
// replaced in between is refused). It returns the open file's FileInfo.
func openRegular(path string) (*os.File, fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &notRegularError{path, fi.Mode()}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	now, err := f.Stat()
	if err == nil && !os.SameFile(fi, now) {
		err = fmt.Errorf("%s: replaced while being opened", path)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, now, nil
}
