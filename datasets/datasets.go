// Package datasets fetches, caches and verifies the corpora arbench trains
// and evaluates on.
//
// Built-in corpora live in a fixed table (see Names). Each is obtained from a
// reproducible source (a Debian package fetched with apt), verified against a
// SHA-256 checksum stored in this package, and cached atomically as
// DIR/NAME/FILE, where DIR is Dir() unless the caller chooses otherwise. Every
// Load re-verifies the checksum, so a corrupted cache is reported instead of
// silently changing results.
package datasets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"arbench/harness"
)

// EnvDir is the environment variable that overrides the data directory.
const EnvDir = "ARBENCH_DATA"

// Dir returns the dataset cache directory: $ARBENCH_DATA if set and
// non-empty, else "data" relative to the current directory (the repository
// root when run through make).
func Dir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return "data"
}

// source produces the raw bytes of a corpus member (possibly gzip-compressed,
// see corpus.gzipped). tmp is a private scratch directory removed afterwards.
type source func(ctx context.Context, tmp string, log io.Writer) ([]byte, error)

// corpus is one entry of the built-in table.
type corpus struct {
	name string
	desc string
	// file is the cached file name inside DIR/name.
	file string
	// sha256 is the hex SHA-256 of the decompressed text.
	sha256 string
	// size is the decompressed size in bytes: the hash decides, but no more
	// than size bytes are read (a larger cached file is corrupted).
	size int64
	// gzipped says the source yields gzip-compressed data.
	gzipped bool
	fetch   source
}

// corpora returns the fixed table of built-in corpora. It is a function, not
// a package variable, so the table cannot be mutated at run time.
func corpora() []corpus {
	return []corpus{
		{
			name: "jargon",
			desc: "The Jargon File 4.4.7 (plain text, UTF-8) from Debian package jargon-text 4.4.7-4.1, " +
				"member usr/share/doc/jargon-text/jargon.txt.gz, 1681817 bytes",
			file:    "jargon.txt",
			sha256:  "40dfb4b98191a670a09a183d5798d50f243d23fdbd1495dcc0aca2ce5895ba97",
			size:    1681817,
			gzipped: true,
			fetch:   debMember("jargon-text", "usr/share/doc/jargon-text/jargon.txt.gz"),
		},
	}
}

func lookup(name string) (corpus, error) {
	for _, c := range corpora() {
		if c.name == name {
			return c, nil
		}
	}
	return corpus{}, fmt.Errorf("datasets: unknown dataset %q (built-in: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the built-in corpora, sorted.
func Names() []string {
	var names []string
	for _, c := range corpora() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}

// Describe returns a one-line description of a built-in corpus, or "" if
// name is unknown.
func Describe(name string) string {
	c, err := lookup(name)
	if err != nil {
		return ""
	}
	return c.desc
}

// Path returns where the named built-in corpus is cached under dir.
func Path(name, dir string) (string, error) {
	c, err := lookup(name)
	if err != nil {
		return "", err
	}
	return c.path(dir), nil
}

func (c corpus) path(dir string) string { return filepath.Join(dir, c.name, c.file) }

func (c corpus) fetchHint() string {
	return fmt.Sprintf("`make datasets` or `arbench fetch %s`", c.name)
}

// Load reads the named built-in corpus from dir and re-verifies its SHA-256.
// A missing file or a checksum mismatch is an error saying how to (re)fetch.
func Load(name, dir string) ([]byte, harness.DatasetRef, error) {
	c, err := lookup(name)
	if err != nil {
		return nil, harness.DatasetRef{}, err
	}
	return c.load(dir)
}

func (c corpus) load(dir string) ([]byte, harness.DatasetRef, error) {
	p := c.path(dir)
	data, err := readFile(context.Background(), p, c.size)
	var tooLarge *TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s: cached file %s is corrupted (larger than the %d bytes of the corpus): refetch it with %s",
			c.name, p, c.size, c.fetchHint())
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s is not cached at %s: fetch it with %s (with ARBENCH_DATA=%s if that is not the default)",
			c.name, p, c.fetchHint(), dir)
	}
	if err != nil {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: load %s: %w", c.name, err)
	}
	sum := hexSHA256(data)
	if sum != c.sha256 {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s: cached file %s is corrupted (sha256 %s, want %s): refetch it with %s",
			c.name, p, sum, c.sha256, c.fetchHint())
	}
	return data, harness.DatasetRef{Name: c.name, Path: p, SHA256: sum, Bytes: int64(len(data))}, nil
}

// DefaultMaxBytes is the largest corpus LoadFile reads unless told
// otherwise: 256 MiB. A corpus is held in memory whole (one byte per
// token; training and evaluation batches convert windows of it to ints),
// so the limit keeps `-data /dev/zero` or a mistaken multi-gigabyte file
// from exhausting the machine's memory.
const DefaultMaxBytes = 256 << 20

// TooLargeError reports a file larger than the limit it was read with.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s: larger than the limit of %s", e.Path, formatLimit(e.Limit))
}

// formatLimit writes a limit in MiB when it is a whole number of them.
func formatLimit(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// LoadFile reads any local file as a corpus, at most maxBytes of it (a
// larger file is a *TooLargeError; maxBytes <= 0 means DefaultMaxBytes).
// The reference is named after the file's base name and carries its
// SHA-256 and size.
//
// Files that are not regular are read too (a pipe such as bash's
// <(zcat corpus.gz), a character device), under the same limit, so a
// stream without end such as /dev/zero fails at the limit. A named pipe is
// opened without waiting for a writer: with none it reads as empty and
// the error says so. Cancelling ctx stops a read that waits on a pipe.
func LoadFile(ctx context.Context, path string, maxBytes int64) ([]byte, harness.DatasetRef, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	data, err := readFile(ctx, path, maxBytes)
	if err != nil {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: load file: %w", err)
	}
	return data, harness.DatasetRef{
		Name:   filepath.Base(path),
		Path:   path,
		SHA256: hexSHA256(data),
		Bytes:  int64(len(data)),
	}, nil
}

// readFile reads at most limit bytes of path (see LoadFile).
func readFile(ctx context.Context, path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	if st.Mode().IsRegular() && st.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	// O_NONBLOCK keeps opening a named pipe from waiting for a writer; it
	// changes nothing for regular files and devices.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Pipes are read through the runtime's poller, so an expired deadline
	// interrupts a read that waits (other files ignore the deadline).
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", path, ctx.Err())
	case err != nil:
		return nil, err
	case int64(len(data)) > limit:
		return nil, &TooLargeError{Path: path, Limit: limit}
	case len(data) == 0 && st.Mode()&fs.ModeNamedPipe != 0:
		return nil, fmt.Errorf("%s: a named pipe with no writer (nothing to read)", path)
	}
	return data, nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
