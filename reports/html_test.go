package reports

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// chromiumPath returns a Chromium (or Chrome) executable, or skips the test
// when none is installed.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("Chromium is not installed, so report.html cannot be checked in a browser: `make chromium` " +
		"(reports/reports.mk; Debian: apt-get install -y chromium) installs it")
	return ""
}

// headless runs Chromium headless with args on url and returns its stdout.
func headless(t *testing.T, bin, url string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &chromiumError{err: err, stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

type chromiumError struct {
	err    error
	stderr string
}

func (e *chromiumError) Error() string { return e.err.Error() + "\n" + e.stderr }

// TestHTMLInChromium renders report.html in headless Chromium: the page
// has the expected title once parsed, and its screenshot is not blank and
// shows the embedded figures (pixels in the first model's colour).
func TestHTMLInChromium(t *testing.T) {
	bin := chromiumPath(t)
	dir := t.TempDir()
	if _, err := WriteReport(dir, load(t)); err != nil {
		t.Fatal(err)
	}
	page, err := filepath.Abs(filepath.Join(dir, HTMLFileName))
	if err != nil {
		t.Fatal(err)
	}
	url := "file://" + page
	shot := filepath.Join(t.TempDir(), "shot.png")
	if _, err := headless(t, bin, url, "--screenshot="+shot, "--window-size=1280,2000"); err != nil {
		// Tell "Chromium cannot run here" from "the page broke it".
		if _, perr := headless(t, bin, "about:blank", "--dump-dom"); perr != nil {
			t.Skipf("Chromium (%s) is installed but cannot run here, so report.html cannot be checked in a browser: %v", bin, perr)
		}
		t.Fatalf("screenshot of report.html: %v", err)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	nonWhite, modelBlue := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 235 || g < 235 || bl < 235 {
				nonWhite++
			}
			// Color(0), the first model's colour (#0072B2), appears only in
			// the figures.
			if r < 30 && g > 95 && g < 135 && bl > 160 && bl < 200 {
				modelBlue++
			}
		}
	}
	total := b.Dx() * b.Dy()
	if b.Dx() != 1280 || b.Dy() != 2000 {
		t.Errorf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	if float64(nonWhite) < 0.05*float64(total) {
		t.Errorf("screenshot is nearly blank: %d of %d pixels are not white", nonWhite, total)
	}
	if modelBlue < 500 {
		t.Errorf("screenshot shows no figure: %d pixels in the first model's colour", modelBlue)
	}

	dom, err := headless(t, bin, url, "--dump-dom")
	if err != nil {
		t.Fatalf("dump-dom: %v", err)
	}
	m := regexp.MustCompile(`<title>([^<]*)</title>`).FindSubmatch(dom)
	if m == nil || string(m[1]) != "arbench report: golden" {
		t.Errorf("rendered title %q, want %q", m, "arbench report: golden")
	}
}
