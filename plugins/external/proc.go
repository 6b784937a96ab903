package external

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// stderrLines is how many of a plugin's last stderr lines an error quotes.
const stderrLines = 64

// exitGrace is how long a plugin may take to exit after shutdown.
const exitGrace = 5 * time.Second

// proc is one running plugin process and its JSON-RPC connection.
type proc struct {
	name    string // for messages: "plugin NAME"
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan lineOrErr // responses read from stdout
	maxLine int
	nextID  int64

	exited   chan struct{} // closed when the process has been waited for
	waitErr  error
	stop     chan struct{} // closed by kill: the readers discard the rest
	stopOnce sync.Once

	mu     sync.Mutex
	tail   []string // the last stderrLines lines of stderr
	failed error    // set once the connection is unusable
}

type lineOrErr struct {
	line []byte
	err  error
}

// procOptions configure start.
type procOptions struct {
	name    string
	command []string
	maxLine int
	// stderr receives the plugin's stderr lines, prefixed with name (nil:
	// kept only for error messages).
	stderr io.Writer
}

// start starts the plugin process.
func start(o procOptions) (*proc, error) {
	if len(o.command) == 0 {
		return nil, fmt.Errorf("%s: no command", o.name)
	}
	cmd := exec.Command(o.command[0], o.command[1:]...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("ARBENCH_PROTOCOL=%d", ProtocolVersion))
	setProcessGroup(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", o.name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", o.name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", o.name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.name, err)
	}
	p := &proc{name: o.name, cmd: cmd, stdin: stdin, lines: make(chan lineOrErr), maxLine: o.maxLine,
		exited: make(chan struct{}), stop: make(chan struct{})}
	var copied sync.WaitGroup
	copied.Add(2)
	go func() { defer copied.Done(); p.readStdout(stdout) }()
	go func() { defer copied.Done(); p.readStderr(stderr, o.stderr) }()
	go func() {
		copied.Wait() // Wait closes the pipes: read them to the end first
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// readStdout hands response lines (or the error that ends them) to calls
// until EOF, a read error or kill, then discards the rest of the output so
// that the process can exit.
func (p *proc) readStdout(r io.Reader) {
	defer close(p.lines)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br, p.maxLine)
		if errors.Is(err, io.EOF) {
			return // closing lines tells a waiting call that the output ended
		}
		select {
		case p.lines <- lineOrErr{line, err}:
		case <-p.stop:
			err = errors.New("stopped")
		}
		if err != nil {
			io.Copy(io.Discard, br)
			return
		}
	}
}

// errLineTooLong reports a response line over the limit.
type errLineTooLong struct{ limit int }

func (e errLineTooLong) Error() string {
	return fmt.Sprintf("response larger than %d bytes", e.limit)
}

// readLine reads one '\n'-terminated line of at most limit bytes.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > limit+1 {
			return nil, errLineTooLong{limit}
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return bytes.TrimRight(line, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case len(line) > 0 && errors.Is(err, io.EOF):
			return nil, fmt.Errorf("output ends inside a line: %q", truncate(string(line), 200))
		default:
			return nil, err
		}
	}
}

// readStderr keeps the last lines of stderr and forwards them, prefixed.
func (p *proc) readStderr(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > stderrLines {
			p.tail = p.tail[len(p.tail)-stderrLines:]
		}
		p.mu.Unlock()
		if w != nil {
			fmt.Fprintf(w, "[%s] %s\n", p.name, line)
		}
	}
}

// stderrTail is the last lines the plugin wrote to stderr, for errors.
func (p *proc) stderrTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == 0 {
		return "(nothing on stderr)"
	}
	return strings.Join(p.tail, "\n")
}

// call sends one request and decodes its result into out, within timeout.
// Any failure but an error response leaves the process killed and the
// connection failed: every later call fails at once with the same error.
func (p *proc) call(ctx context.Context, method string, params, out any, timeout time.Duration) error {
	if p.failed != nil {
		return p.failed
	}
	rpcErr, err := p.exchange(ctx, method, params, out, timeout)
	if err != nil {
		p.kill()
		if ctx.Err() != nil {
			err = fmt.Errorf("%s: %s: %w", p.name, method, ctx.Err())
		} else {
			err = fmt.Errorf("%s: %s: %w; stderr:\n%s", p.name, method, err, p.stderrTail())
		}
		p.failed = err
		return err
	}
	if rpcErr != nil {
		return fmt.Errorf("%s: %s: %w", p.name, method, rpcErr)
	}
	return nil
}

// exchange writes the request and reads its response.
func (p *proc) exchange(ctx context.Context, method string, params, out any, timeout time.Duration) (*RPCError, error) {
	p.nextID++
	id := p.nextID
	if params == nil {
		params = struct{}{}
	}
	b, err := json.Marshal(request{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		return nil, p.exitError(fmt.Errorf("write request: %w", err))
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var got lineOrErr
	var ok bool
	select {
	case got, ok = <-p.lines:
	case <-timer.C:
		return nil, fmt.Errorf("no response after %v (killed)", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !ok || errors.Is(got.err, io.EOF) {
		return nil, p.exitError(errors.New("closed its output"))
	}
	if got.err != nil {
		return nil, got.err
	}
	return decodeResponse(got.line, id, out)
}

// decodeResponse checks a response line and decodes its result.
func decodeResponse(line []byte, id int64, out any) (*RPCError, error) {
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("malformed response (not a JSON-RPC object): %q", truncate(string(line), 200))
	}
	switch {
	case resp.ID == nil || *resp.ID != id:
		return nil, fmt.Errorf("malformed response: id %v, want %d: %q", resp.ID, id, truncate(string(line), 200))
	case resp.Error != nil:
		return resp.Error, nil
	case resp.Result == nil:
		return nil, fmt.Errorf("malformed response: neither result nor error: %q", truncate(string(line), 200))
	}
	if out != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return nil, fmt.Errorf("malformed result: %w", err)
		}
	}
	return nil, nil
}

// exitError describes err together with the process's exit, when it has
// exited (waiting briefly for it).
func (p *proc) exitError(err error) error {
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return fmt.Errorf("exited (%v)", p.waitErr)
		}
		return errors.New("exited (status 0)")
	case <-time.After(time.Second):
		return err
	}
}

// kill kills the process (and its process group) and waits for it.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.stopOnce.Do(func() { close(p.stop) })
	killProcessGroup(p.cmd)
	<-p.exited
}

// shutdown asks the plugin to exit, closes its input and kills it if it
// has not exited within exitGrace (at once when the call fails).
func (p *proc) shutdown(ctx context.Context) error {
	var err error
	if p.failed == nil {
		err = p.call(ctx, "shutdown", nil, nil, exitGrace)
	}
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(exitGrace):
		p.kill()
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
