package datasets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// EnvMirror is the environment variable that replaces the published hosts
// of the standard corpora by a mirror (see the package comment).
const EnvMirror = "ARBENCH_CORPUS_MIRROR"

// archive is a zip file downloaded over HTTP whose members are a corpus's
// files.
type archive struct {
	// file is the archive's name: its name under a mirror and in the
	// partial download's name.
	file string
	// url is where the archive is published.
	url string
	// size and sha256 are the archive's; both are checked before anything
	// is extracted.
	size   int64
	sha256 string
}

// location is the URL the archive is fetched from: the published one, or
// $ARBENCH_CORPUS_MIRROR/FILE when that is set.
func (a *archive) location() (string, error) {
	base := os.Getenv(EnvMirror)
	if base == "" {
		return a.url, nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s=%q: want an http:// or https:// URL of the directory holding %s", EnvMirror, base, a.file)
	}
	return strings.TrimRight(base, "/") + "/" + a.file, nil
}

// downloader fetches one file over HTTP into a partial file, resuming what
// an earlier attempt left there.
type downloader struct {
	client *http.Client
	// attempts is how many times one get tries; a retry resumes where the
	// last try stopped and happens only if that try received something.
	attempts int
	// every is the least time between two progress lines.
	every time.Duration
	now   func() time.Time
}

func newDownloader() downloader {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	return downloader{
		client:   &http.Client{Transport: tr},
		attempts: 3,
		every:    time.Second,
		now:      time.Now,
	}
}

// fatalError is a download failure that retrying cannot mend (an HTTP
// error status, a file of the wrong size).
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// get downloads src into part until part holds size bytes. A failed try
// keeps what it received, so the next try (or the next get) resumes; a
// cancelled ctx keeps it too, and the error says so.
func (d downloader) get(ctx context.Context, src, part string, size int64, pr *progress) error {
	var err error
	for try := 1; try <= max(1, d.attempts); try++ {
		before := partSize(part)
		if err = d.once(ctx, src, part, size, pr); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w (the %d bytes received are kept in %s; fetch again to resume)",
				src, ctx.Err(), partSize(part), part)
		}
		var fatal *fatalError
		if errors.As(err, &fatal) || partSize(part) <= before {
			break
		}
		if try < d.attempts {
			fmt.Fprintf(pr.log, "datasets: %s: %v; resuming\n", pr.label, err)
		}
	}
	return err
}

// partSize is the size of the partial file, 0 if there is none.
func partSize(part string) int64 {
	st, err := os.Stat(part)
	if err != nil {
		return 0
	}
	return st.Size()
}

// once makes one request for the bytes part lacks and appends them.
func (d downloader) once(ctx context.Context, src, part string, size int64, pr *progress) error {
	have := partSize(part)
	if have > size {
		if err := os.Remove(part); err != nil {
			return &fatalError{err}
		}
		have = 0
	}
	if have == size {
		return nil
	}
	resp, offset, err := d.open(ctx, src, have, size)
	if errors.Is(err, errSize) {
		os.Remove(part)
		return fmt.Errorf("%w; the partial download was removed", err)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if offset == 0 && have > 0 {
		fmt.Fprintf(pr.log, "datasets: %s: the server does not resume; downloading from the start\n", pr.label)
	}
	return writeBody(resp.Body, part, offset, size, src, pr)
}

// writeBody writes body into part from offset on (truncating part there)
// and checks that part then holds exactly size bytes.
func writeBody(body io.Reader, part string, offset, size int64, src string, pr *progress) error {
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return &fatalError{err}
	}
	defer f.Close()
	if err := f.Truncate(offset); err != nil {
		return &fatalError{err}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return &fatalError{err}
	}
	pr.start(offset)
	// One byte more than the file lacks: a longer body fails the size check.
	n, err := io.Copy(io.MultiWriter(f, pr), io.LimitReader(body, size-offset+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		return &fatalError{cerr}
	}
	switch got := offset + n; {
	case got > size:
		os.Remove(part)
		return &fatalError{fmt.Errorf("GET %s: the server sent more than the expected %d bytes; the partial download was removed", src, size)}
	case err != nil:
		return fmt.Errorf("download interrupted after %d of %d bytes: %w", got, size, err)
	case got < size:
		return fmt.Errorf("download interrupted after %d of %d bytes: the server closed the connection", got, size)
	}
	pr.finish()
	return nil
}

// open requests src from byte have on (the whole file when have is 0) and
// returns the response and the offset its body starts at: have when the
// server resumes (206 with the requested range), 0 when it sends the whole
// file (200, or after refusing or mangling the range).
func (d downloader) open(ctx context.Context, src string, have, size int64) (*http.Response, int64, error) {
	resp, err := d.request(ctx, src, have)
	if err != nil {
		return nil, 0, err
	}
	offset, err := bodyOffset(resp, have, size)
	switch {
	case err == nil:
		return resp, offset, nil
	case have > 0:
		// A refused or unexpected range (or any other answer to a range
		// request): ask once more for the whole file.
		resp.Body.Close()
		return d.open(ctx, src, 0, size)
	}
	resp.Body.Close()
	return nil, 0, &fatalError{fmt.Errorf("GET %s: %w", src, err)}
}

func (d downloader) request(ctx context.Context, src string, from int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, &fatalError{fmt.Errorf("GET %s: %w", src, err)}
	}
	req.Header.Set("User-Agent", "arbench-datasets")
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	// A failed Do's error is a *url.Error naming the method and URL.
	return d.client.Do(req)
}

var (
	// errRange is a range response that does not continue the partial file.
	errRange = errors.New("unexpected range")
	// errSize is a server's file of another size than the archive's.
	errSize = errors.New("wrong size")
)

// bodyOffset checks resp against a request for bytes have.. of a file of
// size bytes and returns the offset its body starts at.
func bodyOffset(resp *http.Response, have, size int64) (int64, error) {
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return 0, fmt.Errorf("%w: the server sends %d bytes, expected %d", errSize, resp.ContentLength, size)
		}
		return 0, nil
	case http.StatusPartialContent:
		start, end, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != have {
			return 0, errRange
		}
		if (total >= 0 && total != size) || end >= size {
			return 0, fmt.Errorf("%w: the server's file has %d bytes (Content-Range %q), expected %d", errSize, total, resp.Header.Get("Content-Range"), size)
		}
		return have, nil
	case http.StatusRequestedRangeNotSatisfiable:
		return 0, errRange
	}
	return 0, fmt.Errorf("status %s", resp.Status)
}

// parseContentRange parses an HTTP Content-Range header of a byte range,
// "bytes START-END/TOTAL" or "bytes START-END/*" (RFC 9110 §14.4), and
// returns START, END (inclusive) and TOTAL (-1 for "*"). It refuses
// anything else: other units, unsatisfied ranges ("bytes */TOTAL"), signs,
// spaces, START > END, END >= TOTAL, and numbers beyond int64.
func parseContentRange(s string) (start, end, total int64, err error) {
	bad := func() (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return bad()
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return bad()
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return bad()
	}
	if start, ok = parseDigits(first); !ok {
		return bad()
	}
	if end, ok = parseDigits(last); !ok || end < start {
		return bad()
	}
	total = -1
	if tot != "*" {
		if total, ok = parseDigits(tot); !ok || end >= total {
			return bad()
		}
	}
	return start, end, total, nil
}

// parseDigits parses a non-empty string of ASCII digits as an int64.
func parseDigits(s string) (int64, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// progress writes "datasets: LABEL: DONE / TOTAL (P%)" to log as bytes
// arrive, at most once per every, and a last line when the file is whole.
type progress struct {
	log         io.Writer
	label       string
	done, total int64
	every       time.Duration
	now         func() time.Time
	last        time.Time
}

func (d downloader) progress(log io.Writer, label string, total int64) *progress {
	return &progress{log: log, label: label, total: total, every: d.every, now: d.now}
}

// start begins counting at done bytes (a resumed download).
func (p *progress) start(done int64) {
	p.done = done
	p.last = p.now()
}

func (p *progress) Write(b []byte) (int, error) {
	p.done += int64(len(b))
	if t := p.now(); t.Sub(p.last) >= p.every && p.done < p.total {
		p.last = t
		p.line()
	}
	return len(b), nil
}

func (p *progress) finish() { p.line() }

func (p *progress) line() {
	fmt.Fprintf(p.log, "datasets: %s: %s (%.0f%%)\n", p.label, byteCounts(p.done, p.total), 100*float64(p.done)/float64(max(1, p.total)))
}

// byteCounts writes "DONE / TOTAL" in MiB, or in bytes below 1 MiB.
func byteCounts(done, total int64) string {
	if total < 1<<20 {
		return fmt.Sprintf("%d / %d bytes", done, total)
	}
	return fmt.Sprintf("%.1f / %.1f MiB", float64(done)/(1<<20), float64(total)/(1<<20))
}
