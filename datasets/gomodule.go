package datasets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// goModuleFiles returns a source that downloads Go module mod at version
// with `go mod download -json MOD@VERSION` and reads files (the dataset's
// file name → a slash-separated path inside the module) from the module's
// directory in the module cache.
//
// The go command's own settings apply (GOPROXY, GOMODCACHE, GOSUMDB,
// GOFLAGS, ...): it verifies a downloaded zip against the Go checksum
// database, and a module already in the module cache is read from there
// without the network, so a second fetch (after the data directory was
// removed, or with GOPROXY=off) works offline. The command runs in tmp,
// which holds a go.mod of its own, with GOWORK=off, so no other module's
// go.mod, go.sum or workspace is read or changed, and with GOTOOLCHAIN=local,
// so no toolchain is downloaded.
func goModuleFiles(mod, version string, files map[string]string) source {
	at := mod + "@" + version
	return func(ctx context.Context, tmp string, log io.Writer) (map[string][]byte, error) {
		if log == nil {
			log = io.Discard
		}
		goCmd, err := goCommand()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module arbench.invalid/fetch\n"), 0o644); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "datasets: go mod download %s\n", at)
		cmd := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", at)
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOWORK=off", "GOTOOLCHAIN=local")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, runErr := cmd.Output()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("go mod download %s: %w", at, ctx.Err())
		}
		var info struct{ Dir, Error string }
		jsonErr := json.Unmarshal(out, &info)
		const hint = " (the go command fetches it through the Go module proxy, $GOPROXY; without network it is found only in a module cache an earlier fetch filled)"
		switch {
		case info.Error != "":
			return nil, fmt.Errorf("go mod download %s: %s%s", at, info.Error, hint)
		case runErr != nil:
			return nil, fmt.Errorf("go mod download %s: %w: %s%s", at, runErr, strings.TrimSpace(stderr.String()), hint)
		case jsonErr != nil:
			return nil, fmt.Errorf("go mod download %s: unreadable output: %w", at, jsonErr)
		case info.Dir == "":
			return nil, fmt.Errorf("go mod download %s: no module directory in its output", at)
		}
		names := make([]string, 0, len(files))
		for f := range files {
			names = append(names, f)
		}
		sort.Strings(names)
		fmt.Fprintf(log, "datasets: reading %d files of %s from the module cache: %s\n", len(names), at, info.Dir)
		got := make(map[string][]byte, len(files))
		for _, f := range names {
			rel := files[f]
			p := filepath.Join(info.Dir, filepath.FromSlash(rel))
			b, err := readFile(ctx, p, DefaultMaxBytes)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("module %s has no file %s (looked for %s)", at, rel, p)
			}
			if err != nil {
				return nil, fmt.Errorf("module %s: %w", at, err)
			}
			got[f] = b
		}
		return got, nil
	}
}

// goCommand finds the go command: on PATH, else in $GOROOT/bin.
func goCommand() (string, error) {
	p, err := exec.LookPath("go")
	if err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		if q, err2 := exec.LookPath(filepath.Join(root, "bin", "go")); err2 == nil {
			return q, nil
		}
	}
	return "", fmt.Errorf("the go command is needed to download the dataset's Go module and was not found: %w", err)
}
