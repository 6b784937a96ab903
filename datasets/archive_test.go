package datasets

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// zipOf builds a zip archive of the given (name, body) entries, in order.
func zipOf(t testing.TB, entries ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i+1 < len(entries); i += 2 {
		w, err := zw.Create(entries[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, entries[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Two members, the second inside a directory of the archive as in
// wikitext-103-raw-v1.zip.
const (
	smallTrain = "the train split of a small corpus served over HTTP\n"
	smallTest  = "its test split\n"
)

func smallZip(t testing.TB) []byte {
	return zipOf(t, "small/", "", "small/train.txt", smallTrain, "small/test.txt", smallTest)
}

// smallCorpus is a corpus whose archive z is published at base+"/small.zip".
func smallCorpus(base string, z []byte) corpus {
	return corpus{
		name: "small",
		kind: KindText,
		desc: "a small corpus for tests",
		archive: &archive{
			file:   "small.zip",
			url:    base + "/small.zip",
			size:   int64(len(z)),
			sha256: hexSHA256(z),
		},
		members: []member{
			{file: "train.txt", zipName: "small/train.txt", size: int64(len(smallTrain)), sha256: hexSHA256([]byte(smallTrain))},
			// As wikitext's: no published size or SHA-256, a SHA-1.
			{file: "test.txt", zipName: "small/test.txt", maxSize: 1 << 10, sha1: hexSHA1([]byte(smallTest))},
		},
		large: true,
	}
}

// server serves one file at /small.zip (and /mirror/small.zip) and records
// the Range header of every request. Its behaviour is set per test.
type server struct {
	t     testing.TB
	body  []byte
	mu    sync.Mutex
	seen  []string // Range header of each request, "" for none
	serve func(s *server, w http.ResponseWriter, r *http.Request, n int)
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/small.zip" && r.URL.Path != "/mirror/small.zip" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, r.Header.Get("Range"))
	n := len(s.seen)
	s.mu.Unlock()
	s.serve(s, w, r, n)
}

func (s *server) ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// withRanges serves the file honouring Range (206 Partial Content).
func withRanges(s *server, w http.ResponseWriter, r *http.Request, _ int) {
	http.ServeContent(w, r, "small.zip", time.Time{}, bytes.NewReader(s.body))
}

// ignoringRanges always sends the whole file (200).
func ignoringRanges(s *server, w http.ResponseWriter, _ *http.Request, _ int) {
	w.Header().Set("Content-Length", fmt.Sprint(len(s.body)))
	w.Write(s.body)
}

// droppingFirst drops the connection halfway through its first answer and
// honours Range afterwards.
func droppingFirst(s *server, w http.ResponseWriter, r *http.Request, n int) {
	if n > 1 {
		withRanges(s, w, r, n)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(s.body)))
	w.Write(s.body[:len(s.body)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

func newServer(t *testing.T, body []byte, serve func(*server, http.ResponseWriter, *http.Request, int)) (*server, *httptest.Server) {
	s := &server{t: t, body: body, serve: serve}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// quiet is a downloader for tests: one try unless told otherwise, and
// progress lines an hour apart (so only the final line is written).
func quiet(srv *httptest.Server, attempts int) downloader {
	return downloader{client: srv.Client(), attempts: attempts, every: time.Hour, now: time.Now}
}

func TestFetchArchive(t *testing.T) {
	z := smallZip(t)
	s, srv := newServer(t, z, withRanges)
	c := smallCorpus(srv.URL, z)
	dir := t.TempDir()
	var log bytes.Buffer
	if err := c.fetchArchive(context.Background(), dir, &log, quiet(srv, 1)); err != nil {
		t.Fatal(err)
	}
	data, refs, err := c.read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(data[0]) != smallTrain || string(data[1]) != smallTest {
		t.Errorf("cached %q, %q", data[0], data[1])
	}
	if refs[1].Name != "small/test.txt" || refs[1].SHA256 != hexSHA256([]byte(smallTest)) || refs[1].Bytes != int64(len(smallTest)) {
		t.Errorf("ref of the member without a published SHA-256: %+v", refs[1])
	}
	// The members and nothing else: the archive is removed, no temporary
	// file is left.
	entries, _ := os.ReadDir(filepath.Join(dir, "small"))
	if len(entries) != 2 {
		t.Errorf("cache holds %v, want the two members", entries)
	}
	for _, want := range []string{"downloading " + srv.URL + "/small.zip", fmt.Sprintf("%d / %d bytes (100%%)", len(z), len(z)), "cached at"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log %q lacks %q", log.String(), want)
		}
	}
	if lines := strings.Count(log.String(), "bytes ("); lines != 1 {
		t.Errorf("%d progress lines for a fast download, want 1:\n%s", lines, log.String())
	}
	log.Reset()
	if err := c.fetchArchive(context.Background(), dir, &log, quiet(srv, 1)); err != nil || !strings.Contains(log.String(), "already cached") {
		t.Errorf("second fetch: %v, log %q", err, log.String())
	}
	if n := len(s.ranges()); n != 1 {
		t.Errorf("%d requests, want 1 (the second fetch finds the cache)", n)
	}
}

func TestFetchArchiveResumesAfterDrop(t *testing.T) {
	z := smallZip(t)
	s, srv := newServer(t, z, droppingFirst)
	c := smallCorpus(srv.URL, z)
	dir := t.TempDir()
	err := c.fetchArchive(context.Background(), dir, io.Discard, quiet(srv, 1))
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("fetch over a dropped connection = %v, want an interruption", err)
	}
	have := partSize(c.partialPath(dir))
	if have <= 0 || have >= int64(len(z)) {
		t.Fatalf("partial download has %d of %d bytes, want some kept", have, len(z))
	}
	if _, err := os.Stat(filepath.Join(dir, "small", "train.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a member was cached from an incomplete download")
	}
	// A rerun asks for the rest and completes the file.
	if err := c.fetchArchive(context.Background(), dir, io.Discard, quiet(srv, 1)); err != nil {
		t.Fatal(err)
	}
	if got, want := s.ranges(), []string{"", fmt.Sprintf("bytes=%d-", have)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Range headers %q, want %q", got, want)
	}
	if _, err := c.verify(dir); err != nil {
		t.Error(err)
	}
}

func TestFetchArchiveRetriesWithinOneFetch(t *testing.T) {
	z := smallZip(t)
	s, srv := newServer(t, z, droppingFirst)
	c := smallCorpus(srv.URL, z)
	var log bytes.Buffer
	if err := c.fetchArchive(context.Background(), t.TempDir(), &log, quiet(srv, 3)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.ranges()); n != 2 || !strings.Contains(log.String(), "resuming") {
		t.Errorf("%d requests, log %q: want a resumed second request", n, log.String())
	}
}

func TestFetchArchiveServerIgnoringRange(t *testing.T) {
	z := smallZip(t)
	s, srv := newServer(t, z, ignoringRanges)
	c := smallCorpus(srv.URL, z)
	dir := t.TempDir()
	// A partial file of the wrong bytes: the whole file the server sends
	// instead of the rest must replace it, not be appended to it.
	if err := os.MkdirAll(filepath.Join(dir, "small"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.partialPath(dir), bytes.Repeat([]byte("x"), len(z)/3), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := c.fetchArchive(context.Background(), dir, &log, quiet(srv, 1)); err != nil {
		t.Fatal(err)
	}
	if got := s.ranges(); len(got) != 1 || got[0] != fmt.Sprintf("bytes=%d-", len(z)/3) {
		t.Errorf("Range headers %q", got)
	}
	if !strings.Contains(log.String(), "does not resume") {
		t.Errorf("log %q does not say the download restarted", log.String())
	}
	if _, err := c.verify(dir); err != nil {
		t.Error(err)
	}
}

func TestFetchArchiveWrongHash(t *testing.T) {
	z := smallZip(t)
	bad := bytes.Clone(z)
	bad[len(bad)/2] ^= 0xff
	_, srv := newServer(t, bad, withRanges)
	c := smallCorpus(srv.URL, z)
	dir := t.TempDir()
	err := c.fetchArchive(context.Background(), dir, io.Discard, quiet(srv, 1))
	if err == nil {
		t.Fatal("fetch of a corrupted archive succeeded")
	}
	for _, want := range []string{srv.URL + "/small.zip", "checksum mismatch", c.archive.sha256, hexSHA256(bad), "removed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(c.partialPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the corrupted download was kept")
	}
	if c.anyCached(dir) {
		t.Errorf("a member was cached from a corrupted archive")
	}
}

func TestFetchArchiveWrongSize(t *testing.T) {
	z := smallZip(t)
	_, srv := newServer(t, append(bytes.Clone(z), "trailing"...), ignoringRanges)
	c := smallCorpus(srv.URL, z)
	err := c.fetchArchive(context.Background(), t.TempDir(), io.Discard, quiet(srv, 3))
	want := fmt.Sprintf("the server sends %d bytes, expected %d", len(z)+len("trailing"), len(z))
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("fetch of a longer file = %v, want %q", err, want)
	}
}

func TestFetchArchiveHTTPError(t *testing.T) {
	z := smallZip(t)
	_, srv := newServer(t, z, withRanges)
	c := smallCorpus(srv.URL+"/missing", z)
	err := c.fetchArchive(context.Background(), t.TempDir(), io.Discard, quiet(srv, 3))
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "/missing/small.zip") {
		t.Errorf("fetch of a missing file = %v", err)
	}
}

func TestFetchArchiveCancelKeepsPartial(t *testing.T) {
	z := smallZip(t)
	half := len(z) / 2
	sent := make(chan struct{})
	_, srv := newServer(t, z, func(s *server, w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			withRanges(s, w, r, n)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(s.body)))
		w.Write(s.body[:half])
		w.(http.Flusher).Flush()
		close(sent)
		<-r.Context().Done() // the client hangs up
	})
	c := smallCorpus(srv.URL, z)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sent
		for deadline := time.Now().Add(10 * time.Second); partSize(c.partialPath(dir)) < int64(half) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	err := c.fetchArchive(ctx, dir, io.Discard, quiet(srv, 3))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "fetch again to resume") {
		t.Fatalf("cancelled fetch = %v", err)
	}
	if have := partSize(c.partialPath(dir)); have != int64(half) {
		t.Fatalf("partial download has %d bytes, want the %d received", have, half)
	}
	if err := c.fetchArchive(context.Background(), dir, io.Discard, quiet(srv, 1)); err != nil {
		t.Fatalf("fetch after cancelling: %v", err)
	}
}

func TestMirror(t *testing.T) {
	z := smallZip(t)
	s, srv := newServer(t, z, withRanges)
	c := smallCorpus("http://unreachable.invalid/published", z)
	t.Setenv(EnvMirror, srv.URL+"/mirror/")
	if err := c.fetchArchive(context.Background(), t.TempDir(), io.Discard, quiet(srv, 1)); err != nil {
		t.Fatal(err)
	}
	if len(s.ranges()) != 1 {
		t.Errorf("the mirror served %d requests, want 1", len(s.ranges()))
	}
	for _, bad := range []string{"ftp://mirror.example/x", "mirror.example/x", "http://"} {
		t.Setenv(EnvMirror, bad)
		if _, err := c.archive.location(); err == nil || !strings.Contains(err.Error(), EnvMirror) {
			t.Errorf("mirror %q: %v, want an error naming %s", bad, err, EnvMirror)
		}
	}
	t.Setenv(EnvMirror, "")
	if u, err := c.archive.location(); err != nil || u != c.archive.url {
		t.Errorf("no mirror: %q, %v", u, err)
	}
}

func TestCachedWithoutPublishedSize(t *testing.T) {
	z := smallZip(t)
	_, srv := newServer(t, z, withRanges)
	c := smallCorpus(srv.URL, z)
	dir := t.TempDir()
	if err := c.fetchArchive(context.Background(), dir, io.Discard, quiet(srv, 1)); err != nil {
		t.Fatal(err)
	}
	// A member larger than its bound is corrupted, for Load as for Fetch.
	p := c.path(dir, c.members[1])
	if err := os.WriteFile(p, bytes.Repeat([]byte("y"), int(c.members[1].maxSize)+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.read(dir); err == nil || !strings.Contains(err.Error(), "corrupted") {
		t.Errorf("read of an oversized member = %v", err)
	}
	var log bytes.Buffer
	if err := c.fetchArchive(context.Background(), dir, &log, quiet(srv, 1)); err != nil || !strings.Contains(log.String(), "invalid, refetching") {
		t.Errorf("refetch: %v, log %q", err, log.String())
	}
}

func TestProgressLines(t *testing.T) {
	var log bytes.Buffer
	clock := time.Unix(0, 0)
	d := downloader{every: time.Second, now: func() time.Time {
		clock = clock.Add(400 * time.Millisecond)
		return clock
	}}
	p := d.progress(&log, "enwik8", 10<<20)
	p.start(0)
	for range 10 {
		p.Write(make([]byte, 1<<20))
	}
	p.finish()
	// The start reads the clock at 0.4 s, write k at 0.4·(k+1) s: a line
	// once at least a second has passed since the last (writes 3, 6 and
	// 9); write 10 completes the file and leaves the line to finish.
	want := "datasets: enwik8: 3.0 / 10.0 MiB (30%)\n" +
		"datasets: enwik8: 6.0 / 10.0 MiB (60%)\n" +
		"datasets: enwik8: 9.0 / 10.0 MiB (90%)\n" +
		"datasets: enwik8: 10.0 / 10.0 MiB (100%)\n"
	if log.String() != want {
		t.Errorf("progress\n%s\nwant\n%s", log.String(), want)
	}
}

func TestZipNamesRefused(t *testing.T) {
	for _, name := range []string{"../evil", "small/../../evil", "/etc/evil", `small\evil`, "c:evil", "small//x", "./small/x", "a\x00b"} {
		if safeZipName(name) {
			t.Errorf("safeZipName(%q) = true", name)
		}
		z := zipOf(t, name, "evil", "small/train.txt", smallTrain, "small/test.txt", smallTest)
		_, srv := newServer(t, z, withRanges)
		c := smallCorpus(srv.URL, z)
		dir := t.TempDir()
		err := c.fetchArchive(context.Background(), filepath.Join(dir, "cache"), io.Discard, quiet(srv, 1))
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("archive with member %q: %v", name, err)
		}
		if c.anyCached(filepath.Join(dir, "cache")) {
			t.Errorf("archive with member %q: something was cached", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
			t.Errorf("archive with member %q wrote outside the cache", name)
		}
	}
	for _, name := range []string{"enwik8", "wikitext-103-raw/wiki.train.raw", "wikitext-103-raw/", "a..b/c"} {
		if !safeZipName(name) {
			t.Errorf("safeZipName(%q) = false", name)
		}
	}
}

func TestExtractRefusesBadMembers(t *testing.T) {
	cases := []struct {
		name, want string
		entries    []string
	}{
		{"missing", "no member small/test.txt", []string{"small/train.txt", smallTrain}},
		{"wrong bytes", "sha256", []string{"small/train.txt", strings.ToUpper(smallTrain), "small/test.txt", smallTest}},
		{"wrong sha1", "sha1", []string{"small/train.txt", smallTrain, "small/test.txt", "another test split\n"}},
		{"over the bound", "more than the 1024", []string{"small/train.txt", smallTrain, "small/test.txt", strings.Repeat("z", 2000)}},
		{"duplicate", "two members", []string{"small/train.txt", smallTrain, "small/train.txt", smallTrain, "small/test.txt", smallTest}},
	}
	for _, tc := range cases {
		z := zipOf(t, tc.entries...)
		_, srv := newServer(t, z, withRanges)
		c := smallCorpus(srv.URL, z)
		dir := t.TempDir()
		err := c.fetchArchive(context.Background(), dir, io.Discard, quiet(srv, 1))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if c.anyCached(dir) {
			t.Errorf("%s: a member was cached", tc.name)
		}
		// The archive verified: it is kept for the next fetch, and no
		// temporary file is left.
		entries, _ := os.ReadDir(filepath.Join(dir, "small"))
		if len(entries) != 1 || entries[0].Name() != ".partial-small.zip" {
			t.Errorf("%s: cache directory holds %v", tc.name, entries)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                string
		start, end, total int64
	}{
		{"bytes 0-0/1", 0, 0, 1},
		{"bytes 100-199/200", 100, 199, 200},
		{"bytes 5-9/*", 5, 9, -1},
		{"bytes 0-9223372036854775806/9223372036854775807", 0, 9223372036854775806, 9223372036854775807},
	} {
		s, e, n, err := parseContentRange(tc.in)
		if err != nil || s != tc.start || e != tc.end || n != tc.total {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v", tc.in, s, e, n, err)
		}
	}
	for _, in := range []string{"", "bytes", "bytes */200", "bytes 5-4/10", "bytes 0-10/10", "bytes -1-5/10", "bytes +1-5/10",
		"bytes 1 -5/10", "items 0-1/2", "Bytes 0-1/2", "bytes 0-1/", "bytes 0-/2", "bytes 0-1/2/3", "bytes 0-9223372036854775808/*", "bytes 0x1-2/3"} {
		if _, _, _, err := parseContentRange(in); err == nil {
			t.Errorf("parseContentRange(%q) succeeded", in)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1", "bytes 100-199/200", "bytes 5-9/*", "bytes */200", "bytes 5-4/10", "bytes +1-5/10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, total, err := parseContentRange(s)
		if err != nil {
			return
		}
		if start < 0 || end < start || total < -1 || (total >= 0 && end >= total) {
			t.Fatalf("parseContentRange(%q) = %d, %d, %d", s, start, end, total)
		}
		tot := "*"
		if total >= 0 {
			tot = fmt.Sprint(total)
		}
		// Only canonical decimal forms (leading zeros aside) are accepted.
		s2, e2, n2, err := parseContentRange(fmt.Sprintf("bytes %d-%d/%s", start, end, tot))
		if err != nil || s2 != start || e2 != end || n2 != total {
			t.Fatalf("%q does not round-trip: %d, %d, %d, %v", s, s2, e2, n2, err)
		}
	})
}

// FuzzExtractArchive feeds arbitrary bytes to the extraction as the
// archive (its SHA-256 is checked before extraction, so this guards a
// mistaken table or a hostile mirror with a matching hash, which cannot
// happen, but costs nothing): it never panics, never writes outside the
// corpus directory, and succeeds only with the expected members.
func FuzzExtractArchive(f *testing.F) {
	f.Add(smallZip(f))
	f.Add(zipOf(f, "../evil", "x", "small/train.txt", smallTrain))
	f.Add([]byte("PK\x03\x04 not a zip"))
	c := smallCorpus("http://unused.invalid", nil)
	f.Fuzz(func(t *testing.T, z []byte) {
		zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
		if err != nil {
			return
		}
		dir := t.TempDir()
		cache := filepath.Join(dir, "cache")
		if err := os.MkdirAll(filepath.Join(cache, "small"), 0o755); err != nil {
			t.Fatal(err)
		}
		err = c.extractFrom(context.Background(), zr, cache, io.Discard)
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("extraction left %v next to the cache", entries)
		}
		inCache, _ := os.ReadDir(filepath.Join(cache, "small"))
		if err != nil && len(inCache) != 0 {
			t.Fatalf("failed extraction (%v) left %v", err, inCache)
		}
		if err == nil {
			if _, verr := c.verify(cache); verr != nil {
				t.Fatalf("extraction succeeded with wrong members: %v", verr)
			}
		}
	})
}

// TestDownloadServerAnswers: answers to a resumed request that do not
// continue the partial file, and bodies of the wrong length.
func TestDownloadServerAnswers(t *testing.T) {
	z := smallZip(t)
	third := len(z) / 3
	cases := []struct {
		name  string
		serve func(*server, http.ResponseWriter, *http.Request, int)
		want  string // "" for success
	}{
		{"416 restarts", func(s *server, w http.ResponseWriter, r *http.Request, n int) {
			if r.Header.Get("Range") != "" {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			ignoringRanges(s, w, r, n)
		}, ""},
		{"wrong range restarts", func(s *server, w http.ResponseWriter, r *http.Request, n int) {
			if r.Header.Get("Range") != "" {
				w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(s.body)-1, len(s.body)))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(s.body)
				return
			}
			ignoringRanges(s, w, r, n)
		}, ""},
		{"changed file", func(s *server, w http.ResponseWriter, r *http.Request, n int) {
			body := append(bytes.Clone(s.body), "more"...)
			http.ServeContent(w, r, "small.zip", time.Time{}, bytes.NewReader(body))
		}, fmt.Sprintf("wrong size: the server sends %d bytes, expected %d; the partial download was removed", len(z)+4, len(z))},
		{"longer body without length", func(s *server, w http.ResponseWriter, r *http.Request, n int) {
			w.Write(s.body)
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Write([]byte("more"))
		}, "sent more than the expected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := newServer(t, z, tc.serve)
			c := smallCorpus(srv.URL, z)
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "small"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(c.partialPath(dir), z[:third], 0o644); err != nil {
				t.Fatal(err)
			}
			err := c.fetchArchive(context.Background(), dir, io.Discard, quiet(srv, 3))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.verify(dir); err != nil {
					t.Error(err)
				}
				if got := s.ranges(); len(got) != 2 || got[0] != fmt.Sprintf("bytes=%d-", third) || got[1] != "" {
					t.Errorf("Range headers %q, want a resumed request then a whole one", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("fetch = %v, want %q", err, tc.want)
			}
			if partSize(c.partialPath(dir)) != 0 {
				t.Errorf("the partial download was kept")
			}
		})
	}
}
