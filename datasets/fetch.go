package datasets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Fetch downloads the named built-in dataset, verifies the SHA-256 of each
// of its files and caches them atomically under dir (temporary file +
// rename, per file). If a valid copy is already cached it does nothing. A
// checksum mismatch or a file missing from the source is an error naming
// the dataset and the file (and both hashes), and leaves the cache
// untouched: every file is verified before any is written. Progress goes to
// log (may be nil).
//
// A standard corpus (Large) is downloaded over HTTP as described in the
// package comment: resumable, its archive verified before extraction, and
// cancelling ctx keeps the partial download for the next Fetch.
func Fetch(ctx context.Context, name, dir string, log io.Writer) error {
	c, err := lookup(name)
	if err != nil {
		return err
	}
	return c.fetchTo(ctx, dir, log)
}

func (c corpus) fetchTo(ctx context.Context, dir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	if c.archive != nil {
		return c.fetchArchive(ctx, dir, log, newDownloader())
	}
	if _, refs, err := c.read(dir); err == nil {
		var n int64
		for _, r := range refs {
			n += r.Bytes
		}
		fmt.Fprintf(log, "datasets: %s already cached at %s (%d bytes, sha256 ok)\n", c.name, c.location(dir), n)
		return nil
	} else if c.anyCached(dir) {
		fmt.Fprintf(log, "datasets: %s: cached copy is invalid, refetching: %v\n", c.name, err)
	}

	tmp, err := os.MkdirTemp("", "arbench-fetch-"+c.name+"-")
	if err != nil {
		return fmt.Errorf("datasets: fetch %s: %w", c.name, err)
	}
	defer os.RemoveAll(tmp)

	raw, err := c.fetch(ctx, tmp, log)
	if err != nil {
		return fmt.Errorf("datasets: fetch %s: %w", c.name, err)
	}
	data := make([][]byte, len(c.members))
	for i, m := range c.members {
		b, ok := raw[m.file]
		if !ok {
			return fmt.Errorf("datasets: fetch %s: the source has no file %s; nothing was cached", c.name, m.file)
		}
		if m.gunzip {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("datasets: fetch %s: %s: gunzip: %w", c.name, m.file, err)
			}
			// At most one byte more than the file: a larger stream fails the
			// checksum below without inflating a gzip bomb into memory.
			b, err = io.ReadAll(io.LimitReader(zr, m.size+1))
			if err != nil {
				return fmt.Errorf("datasets: fetch %s: %s: gunzip: %w", c.name, m.file, err)
			}
		}
		if sum := hexSHA256(b); sum != m.sha256 {
			return fmt.Errorf("datasets: fetch %s: %s: checksum mismatch: expected sha256 %s, got %s (%d bytes); nothing was cached",
				c.name, m.file, m.sha256, sum, len(b))
		}
		data[i] = b
	}
	for i, m := range c.members {
		p := c.path(dir, m)
		if err := writeAtomic(p, data[i]); err != nil {
			return fmt.Errorf("datasets: fetch %s: %w", c.name, err)
		}
		fmt.Fprintf(log, "datasets: %s cached at %s (%d bytes, sha256 %s)\n", c.name, p, len(data[i]), m.sha256)
	}
	return nil
}

// anyCached reports whether some file of c exists under dir.
func (c corpus) anyCached(dir string) bool {
	for _, m := range c.members {
		if _, err := os.Stat(c.path(dir, m)); err == nil {
			return true
		}
	}
	return false
}

// writeAtomic writes data to a temporary file in p's directory and renames
// it over p, so readers never see a partial file.
func writeAtomic(p string, data []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// debMember returns a source that downloads Debian package pkg with
// `apt-get download` and extracts member (a path inside the package's data
// archive, without a leading "./") via `dpkg-deb --fsys-tarfile`, as the
// dataset's file named file.
func debMember(pkg, member, file string) source {
	extract := debExtract(pkg, member)
	return func(ctx context.Context, tmp string, log io.Writer) (map[string][]byte, error) {
		b, err := extract(ctx, tmp, log)
		if err != nil {
			return nil, err
		}
		return map[string][]byte{file: b}, nil
	}
}

func debExtract(pkg, member string) func(ctx context.Context, tmp string, log io.Writer) ([]byte, error) {
	return func(ctx context.Context, tmp string, log io.Writer) ([]byte, error) {
		fmt.Fprintf(log, "datasets: apt-get download %s\n", pkg)
		cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
		cmd.Dir = tmp
		out, err := cmd.CombinedOutput()
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return nil, fmt.Errorf("apt-get download %s: %w (fetching needs a Debian-based system with apt)", pkg, err)
			}
			return nil, fmt.Errorf("apt-get download %s: %w\n%s\nIf apt cannot find the package, run `apt-get update` first (`make datasets` does this when needed)",
				pkg, err, strings.TrimSpace(string(out)))
		}
		debs, err := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
		if err != nil {
			return nil, err
		}
		if len(debs) != 1 {
			return nil, fmt.Errorf("apt-get download %s: expected one %s_*.deb in %s, found %d", pkg, pkg, tmp, len(debs))
		}
		fmt.Fprintf(log, "datasets: extracting %s from %s\n", member, filepath.Base(debs[0]))
		tarball, err := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", debs[0]).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", filepath.Base(debs[0]), err, strings.TrimSpace(string(ee.Stderr)))
			}
			return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w", filepath.Base(debs[0]), err)
		}
		b, err := tarMember(bytes.NewReader(tarball), member)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(debs[0]), err)
		}
		return b, nil
	}
}

// tarMember returns the contents of the regular file member in the tar
// stream r. Names are compared after path.Clean, so "./a/b" matches "a/b".
func tarMember(r io.Reader, member string) ([]byte, error) {
	want := path.Clean(member)
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("no member %s in archive", member)
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg || path.Clean(h.Name) != want {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read archive member %s: %w", member, err)
		}
		return b, nil
	}
}
