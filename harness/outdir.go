package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockFileName is the lock an `arbench run` holds in its output directory
// while it writes there. It holds the owner's pid, host and start time.
const LockFileName = ".arbench.lock"

// ErrOutputInUse is returned (wrapped) when another process holds the
// output directory's lock.
var ErrOutputInUse = errors.New("output directory is in use")

// outputLock is an exclusive lock on an output directory: an advisory
// flock(2) on OUT/.arbench.lock (see lock_unix.go), which the kernel drops
// when its holder dies, so a lock file left by a killed run is stale by
// construction and simply taken over.
type outputLock struct {
	dir  string
	path string
	f    *os.File
	// created is the topmost directory this lock created (removed again by
	// release(true) when it is empty), or "".
	created string
}

// lockOutput creates dir (and its parents) if needed and takes its lock.
// A directory held by a live process is refused with ErrOutputInUse naming
// the holder.
func lockOutput(dir string) (*outputLock, error) {
	created, err := mkdirAllTop(dir)
	if err != nil {
		return nil, fmt.Errorf("create output directory %s: %w", dir, err)
	}
	l := &outputLock{dir: dir, path: filepath.Join(dir, LockFileName), created: created}
	if err := l.acquire(); err != nil {
		l.removeCreated()
		return nil, err
	}
	return l, nil
}

// acquire opens and locks the lock file, retrying when the file it locked
// was replaced meanwhile (a previous holder removing it on release).
func (l *outputLock) acquire() error {
	for attempt := 0; attempt < 10; attempt++ {
		if st, err := os.Lstat(l.path); err == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("lock %s: not a regular file (%s); remove it", l.path, st.Mode().Type())
		}
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|noFollow, 0o644)
		if err != nil {
			return fmt.Errorf("output directory %s is not writable: %w", l.dir, err)
		}
		if err := tryLock(f); err != nil {
			holder := readHolder(f)
			f.Close()
			if errors.Is(err, errLocked) {
				return fmt.Errorf("%w: %s is being written by %s (lock file %s); wait for it, or choose another -out",
					ErrOutputInUse, l.dir, holder, l.path)
			}
			return fmt.Errorf("lock %s: %w", l.path, err)
		}
		if !sameFile(f, l.path) {
			f.Close()
			continue
		}
		host, _ := os.Hostname()
		info := fmt.Sprintf("pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
		if err := f.Truncate(0); err != nil {
			f.Close()
			return fmt.Errorf("lock %s: %w", l.path, err)
		}
		if _, err := f.WriteAt([]byte(info), 0); err != nil {
			f.Close()
			return fmt.Errorf("lock %s: %w", l.path, err)
		}
		l.f = f
		return nil
	}
	return fmt.Errorf("lock %s: the lock file keeps being replaced", l.path)
}

// LockOutput takes the lock of an existing output directory, as a run
// holds it, for a command that writes there outside a run (`arbench
// report`); it fails with ErrOutputInUse while a run writes. Call the
// returned function to release it.
func LockOutput(dir string) (release func(), err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("lock %s: not a directory", dir)
	}
	l := &outputLock{dir: dir, path: filepath.Join(dir, LockFileName)}
	if err := l.acquire(); err != nil {
		return nil, err
	}
	return func() { l.release(false) }, nil
}

// readHolder describes the process recorded in a lock file.
func readHolder(f *os.File) string {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	s := strings.TrimSpace(string(b[:n]))
	if s == "" {
		return "another process"
	}
	if pid, _, ok := strings.Cut(strings.TrimPrefix(s, "pid "), " "); ok {
		if _, err := strconv.Atoi(pid); err == nil {
			return "arbench " + s
		}
	}
	return s
}

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// release removes the lock file and drops the lock. With clean set (a run
// that stopped before writing anything), directories lockOutput created are
// removed again when empty.
func (l *outputLock) release(clean bool) {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
	if clean {
		l.removeCreated()
	}
}

// removeCreated removes the directories lockOutput created, deepest first,
// as long as they are empty.
func (l *outputLock) removeCreated() {
	if l.created == "" {
		return
	}
	for d := filepath.Clean(l.dir); ; d = filepath.Dir(d) {
		if os.Remove(d) != nil || d == filepath.Clean(l.created) {
			return
		}
	}
}

// mkdirAllTop is os.MkdirAll that also returns the topmost directory it
// created ("" when dir existed). A path component that is a file is
// reported by name.
func mkdirAllTop(dir string) (string, error) {
	dir = filepath.Clean(dir)
	top := ""
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return "", fmt.Errorf("%s is a file, not a directory", d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", err
		}
		top = d
		if filepath.Dir(d) == d {
			break
		}
	}
	if top == "" {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return top, nil
}

// checkWritableDir reports whether dir could be created and written: its
// nearest existing ancestor must be a directory in which a file can be
// created (tried with a temporary file, so the answer is right for root
// too). Nothing is left behind.
func checkWritableDir(dir string) error {
	d := filepath.Clean(dir)
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s is a file, not a directory", d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		if filepath.Dir(d) == d {
			return err
		}
		d = filepath.Dir(d)
	}
	f, err := os.CreateTemp(d, ".arbench-probe-*")
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", d, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// removeStaleTemps deletes the temporary files WriteFileAtomic leaves when
// a process is killed between creating and renaming them: in OUT those of
// the files arbench writes there (results, samples, reports, CSVs), in
// OUT/plots those of the charts. Only called by the holder of OUT's lock,
// so no live writer owns them; other files that merely look alike are left
// alone. (A -save-weights directory is not locked, as runs with different
// outputs may share it, so its temporaries are left.)
func removeStaleTemps(out string) error {
	return errors.Join(
		removeTemps(out, func(target string) bool {
			switch target {
			case ResultsFileName, SamplesFileName, ReportFileName, "report.html":
				return true
			}
			return strings.HasSuffix(target, ".csv")
		}),
		removeTemps(filepath.Join(out, "plots"), func(target string) bool {
			return strings.HasSuffix(target, ".png") || strings.HasSuffix(target, ".svg")
		}),
	)
}

// removeTemps removes the temporary files in dir whose target file name
// satisfies ours; a missing dir holds none.
func removeTemps(dir string, ours func(target string) bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		if target, ok := atomicTempTarget(e.Name()); ok && ours(target) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// atomicTempTarget returns the file a temporary file of WriteFileAtomic
// stands for: "." + target + ".tmp-" + random digits.
func atomicTempTarget(name string) (string, bool) {
	i := strings.LastIndex(name, ".tmp-")
	if !strings.HasPrefix(name, ".") || i < 2 {
		return "", false
	}
	if _, err := strconv.ParseUint(name[i+len(".tmp-"):], 10, 64); err != nil {
		return "", false
	}
	return name[1:i], true
}
