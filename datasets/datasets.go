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
	// size is the decompressed size in bytes (informational; the hash decides).
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
	data, err := os.ReadFile(p)
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

// LoadFile reads any local file as a corpus. The reference is named after
// the file's base name and carries its SHA-256 and size.
func LoadFile(path string) ([]byte, harness.DatasetRef, error) {
	data, err := os.ReadFile(path)
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

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
