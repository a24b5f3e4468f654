package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serverSpec describes how to start one server process.
type serverSpec struct {
	name string
	// argv builds the command line for a port; argv[0] is the program.
	argv func(port int) []string
	env  []string // added to os.Environ()
	dir  string   // working directory
	// ready reports whether the server on port is the one we started and
	// serves requests; it is called only after the port accepts TCP
	// connections and the process is alive. log holds the process output so
	// far.
	ready func(ctx context.Context, port int, log []byte) error
	// startTimeout bounds one start attempt.
	startTimeout time.Duration
}

// proc is a started server process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid once done is closed
}

const (
	startAttempts = 3
	stopGrace     = 5 * time.Second
	logTailBytes  = 4096
)

// startServer starts spec on a free loopback port and returns the process
// and the port once the port answers, spec.ready accepts it and the process
// is still alive. The process is stopped by its PID in tb.Cleanup. A start
// attempt whose process dies (typically because another process took the
// port first) is retried on a new port a few times; the final failure
// includes the tail of the server's output.
func startServer(tb testing.TB, spec serverSpec) (*proc, int) {
	tb.Helper()
	logDir := tb.TempDir()
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		port := FreePort(tb)
		logPath := fmt.Sprintf("%s/%s-%d.log", logDir, spec.name, attempt)
		p, err := spawn(spec, port, logPath)
		if err != nil {
			tb.Fatalf("%s", errf("start %s: %v", spec.name, err))
		}
		err = p.waitReady(spec, port)
		if err == nil {
			tb.Cleanup(func() {
				p.stop()
				if tb.Failed() {
					tb.Logf("testenv: %s (pid %d, port %d) output tail:\n%s", spec.name, p.cmd.Process.Pid, port, p.tail())
				}
			})
			return p, port
		}
		died := p.exited()
		p.stop()
		lastErr = fmt.Errorf("attempt %d on port %d: %w\n--- %s output tail (%s) ---\n%s",
			attempt, port, err, spec.name, logPath, p.tail())
		if !died || !lostPortRace(p.tail()) {
			// The server was alive but never became ready, or died for
			// another reason than its port: trying again would only
			// waste time.
			break
		}
	}
	tb.Fatalf("%s", errf("%s did not start: %v", spec.name, lastErr))
	return nil, 0
}

// lostPortRace reports whether a server's output says its port was taken.
func lostPortRace(out string) bool {
	return strings.Contains(out, "address already in use") || strings.Contains(out, "EADDRINUSE")
}

func spawn(spec serverSpec, port int, logPath string) (*proc, error) {
	argv := spec.argv(port)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), spec.env...)
	cmd.Dir = spec.dir
	cmd.Stdin = nil
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: spec.name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls until the port answers, spec.ready accepts the server and
// the process we started is still alive: a stale server on the same port
// answers too, but then either our process exits (bind failure) or ready
// tells the servers apart.
func (p *proc) waitReady(spec serverSpec, port int) error {
	deadline := time.Now().Add(spec.startTimeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var last error = errors.New("port never answered")
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("process exited before it was ready: %v", p.waitErr)
		}
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			last = fmt.Errorf("port does not answer: %w", err)
			time.Sleep(25 * time.Millisecond)
			continue
		}
		c.Close()
		log, _ := os.ReadFile(p.logPath)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = spec.ready(ctx, port, log)
		cancel()
		if err != nil {
			last = fmt.Errorf("port answers but server is not ready: %w", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if p.exited() {
			return fmt.Errorf("process exited while the port answered (another server on port %d?): %v", port, p.waitErr)
		}
		return nil
	}
	return fmt.Errorf("not ready after %v: %v", spec.startTimeout, last)
}

// stop ends the process by its PID (and its process group, which it leads)
// with SIGTERM, then SIGKILL after a grace period, and waits for it.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	pid := p.cmd.Process.Pid
	signalGroup(pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopGrace):
	}
	signalGroup(pid, syscall.SIGKILL)
	<-p.done
}

// tail returns the last few KiB of the process output.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(no output)"
	}
	return string(b)
}
