package datasets

import (
	"archive/zip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// fetchArchive fetches a corpus published as a zip archive: unless a valid
// copy is cached, it downloads the archive into DIR/NAME/.partial-ARCHIVE
// (resuming a partial download), checks the archive's size and SHA-256,
// extracts and verifies every member, renames them into place and removes
// the archive. A wrong archive is removed and reported with the URL and
// both hashes; an archive that verified but could not be extracted is kept,
// so the next fetch does not download it again.
func (c corpus) fetchArchive(ctx context.Context, dir string, log io.Writer, d downloader) (err error) {
	if n, err := c.verify(dir); err == nil {
		fmt.Fprintf(log, "datasets: %s already cached at %s (%d bytes, checksums ok)\n", c.name, c.location(dir), n)
		return nil
	} else if c.anyCached(dir) {
		fmt.Fprintf(log, "datasets: %s: cached copy is invalid, refetching: %v\n", c.name, err)
	}
	src, err := c.archive.location()
	if err != nil {
		return fmt.Errorf("datasets: fetch %s: %w", c.name, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, c.name), 0o755); err != nil {
		return fmt.Errorf("datasets: fetch %s: %w", c.name, err)
	}
	defer func() {
		if err != nil {
			os.Remove(filepath.Join(dir, c.name)) // only if nothing is kept there
		}
	}()
	part := c.partialPath(dir)
	if have := partSize(part); have > 0 {
		fmt.Fprintf(log, "datasets: %s: resuming %s at %d of %d bytes\n", c.name, src, have, c.archive.size)
	} else {
		fmt.Fprintf(log, "datasets: %s: downloading %s (%d bytes)\n", c.name, src, c.archive.size)
	}
	if err := d.get(ctx, src, part, c.archive.size, d.progress(log, c.name, c.archive.size)); err != nil {
		return fmt.Errorf("datasets: fetch %s: %w", c.name, err)
	}
	if err := c.checkArchive(part, src); err != nil {
		return err
	}
	if err := c.extract(ctx, part, dir, log); err != nil {
		return fmt.Errorf("datasets: fetch %s: %w (the verified archive is kept at %s)", c.name, err, part)
	}
	return os.Remove(part)
}

// partialPath is where the archive is downloaded to.
func (c corpus) partialPath(dir string) string {
	return filepath.Join(dir, c.name, ".partial-"+c.archive.file)
}

// checkArchive verifies the downloaded archive's size and SHA-256 and
// removes it when either is wrong.
func (c corpus) checkArchive(part, src string) error {
	n, sum256, _, err := hashFile(part, c.archive.size)
	if err != nil {
		return fmt.Errorf("datasets: fetch %s: %w", c.name, err)
	}
	if n != c.archive.size || sum256 != c.archive.sha256 {
		os.Remove(part)
		return fmt.Errorf("datasets: fetch %s: %s: checksum mismatch: expected %d bytes with sha256 %s, got %d bytes with sha256 %s; the download was removed",
			c.name, src, c.archive.size, c.archive.sha256, n, sum256)
	}
	return nil
}

// verify checks every cached member of c under dir (size and checksums,
// streaming, so a large corpus is not held in memory) and returns their
// total size.
func (c corpus) verify(dir string) (int64, error) {
	var total int64
	for _, m := range c.members {
		p := c.path(dir, m)
		n, sum256, sum1, err := hashFile(p, m.limit())
		if err != nil {
			return 0, err
		}
		if bad := m.mismatch(n, sum256, sum1); bad != "" {
			return 0, fmt.Errorf("%s: %s", p, bad)
		}
		total += n
	}
	return total, nil
}

// hashFile returns the size and the hex SHA-256 and SHA-1 of the file at
// p, reading at most limit+1 bytes (a longer file reads as limit+1 bytes).
func hashFile(p string, limit int64) (n int64, sum256, sum1 string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", "", err
	}
	defer f.Close()
	h256, h1 := sha256.New(), sha1.New()
	n, err = io.Copy(io.MultiWriter(h256, h1), io.LimitReader(f, limit+1))
	if err != nil {
		return 0, "", "", fmt.Errorf("%s: %w", p, err)
	}
	return n, hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h1.Sum(nil)), nil
}

// extract extracts every member of c from the zip file at zipPath into
// temporary files in DIR/NAME, verifies them all, then renames each into
// place: a bad member leaves the cache as it was.
func (c corpus) extract(ctx context.Context, zipPath, dir string, log io.Writer) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer zr.Close()
	return c.extractFrom(ctx, &zr.Reader, dir, log)
}

// extractFrom is extract reading the archive from zr.
func (c corpus) extractFrom(ctx context.Context, zr *zip.Reader, dir string, log io.Writer) error {
	entries, err := zipEntries(zr)
	if err != nil {
		return err
	}
	tmps := make([]string, len(c.members))
	defer func() {
		for _, t := range tmps {
			if t != "" {
				os.Remove(t)
			}
		}
	}()
	for i, m := range c.members {
		f, ok := entries[m.zipName]
		if !ok {
			return fmt.Errorf("the archive has no member %s; nothing was cached", m.zipName)
		}
		if tmps[i], err = extractMember(ctx, f, m, filepath.Join(dir, c.name)); err != nil {
			return err
		}
	}
	for i, m := range c.members {
		if err := os.Rename(tmps[i], c.path(dir, m)); err != nil {
			return err
		}
		tmps[i] = ""
		fmt.Fprintf(log, "datasets: %s cached at %s\n", c.name, c.path(dir, m))
	}
	return nil
}

// zipEntries indexes the regular files of a zip archive by name, refusing
// the whole archive if any entry's name is unsafe to extract (absolute,
// with "..", a backslash or a drive letter) or appears twice.
func zipEntries(zr *zip.Reader) (map[string]*zip.File, error) {
	entries := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if !safeZipName(f.Name) {
			return nil, fmt.Errorf("the archive has a member named %q (absolute, or leading outside the directory): refused; nothing was cached", f.Name)
		}
		if f.FileInfo().IsDir() {
			continue
		}
		if _, dup := entries[f.Name]; dup {
			return nil, fmt.Errorf("the archive has two members named %q: refused; nothing was cached", f.Name)
		}
		entries[f.Name] = f
	}
	return entries, nil
}

// safeZipName reports whether a zip entry's name is a relative,
// slash-separated path that stays inside the extraction directory.
func safeZipName(name string) bool {
	if name == "" || strings.ContainsAny(name, "\\\x00") || path.IsAbs(name) ||
		(len(name) >= 2 && name[1] == ':') {
		return false
	}
	for _, el := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if el == ".." || el == "" || el == "." {
			return false
		}
	}
	return true
}

// extractMember copies zip entry f into a new temporary file in dir,
// reading at most the member's size limit (the header's size is checked
// first, the bytes read decide), verifies size and checksums, and returns
// the temporary file's path.
func extractMember(ctx context.Context, f *zip.File, m member, dir string) (tmp string, err error) {
	limit := m.limit()
	if f.UncompressedSize64 > uint64(limit) {
		return "", fmt.Errorf("archive member %s: %d bytes, more than the %d it may have; nothing was cached", f.Name, f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("archive member %s: %w", f.Name, err)
	}
	defer rc.Close()
	out, err := os.CreateTemp(dir, "."+m.file+".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		out.Close()
		if err != nil {
			os.Remove(out.Name())
		}
	}()
	h256, h1 := sha256.New(), sha1.New()
	n, err := io.Copy(io.MultiWriter(out, h256, h1), io.LimitReader(ctxReader{ctx, rc}, limit+1))
	if err != nil {
		return "", fmt.Errorf("archive member %s: %w", f.Name, err)
	}
	if bad := m.mismatch(n, hex.EncodeToString(h256.Sum(nil)), hex.EncodeToString(h1.Sum(nil))); bad != "" {
		return "", fmt.Errorf("archive member %s: checksum mismatch: %s; nothing was cached", f.Name, bad)
	}
	if err = out.Sync(); err != nil {
		return "", err
	}
	if err = out.Close(); err != nil {
		return "", err
	}
	return out.Name(), os.Chmod(out.Name(), 0o644)
}

// ctxReader stops a long extraction when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
