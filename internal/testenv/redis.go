package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a running redis-server (Debian's redis-server package) on a
// loopback port, keeping nothing on disk. Tests may Kill it and Start it
// again on the same port, to see a client lose and regain it.
type Redis struct {
	Addr     string // "127.0.0.1:PORT"
	Password string // "" when started without one
	// URL is "redis://[:PASSWORD@]127.0.0.1:PORT/0".
	URL string

	tb   testing.TB
	bin  string
	port int
	dir  string
	mu   sync.Mutex
	p    *proc
	n    int // starts so far, for log names
}

// StartRedis starts redis-server on a free loopback port, with
// `--save ” --appendonly no` (nothing persisted) and, when password is not
// empty, --requirepass. It fails tb with "run `make tools`" when
// redis-server is not installed. The server is stopped by its PID in
// tb.Cleanup.
func StartRedis(tb testing.TB, password string) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("%s", errf("redis-server is not installed (%v): run `make tools` (Debian package redis-server)", err))
	}
	r := &Redis{tb: tb, bin: bin, Password: password, dir: tb.TempDir()}
	var last error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		r.port = FreePort(tb)
		if last = r.start(); last == nil {
			break
		}
		if !lostPortRace(last.Error()) {
			break
		}
	}
	if last != nil {
		tb.Fatalf("%s", errf("redis-server did not start: %v", last))
	}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	u := url.URL{Scheme: "redis", Host: r.Addr, Path: "/0"}
	if password != "" {
		u.User = url.UserPassword("", password)
	}
	r.URL = u.String()
	tb.Cleanup(func() {
		r.Resume() // a stopped process ignores everything but SIGKILL anyway
		r.Kill()
	})
	return r
}

func (r *Redis) spec() serverSpec {
	return serverSpec{
		name: "redis",
		argv: func(port int) []string {
			argv := []string{r.bin,
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--save", "",
				"--appendonly", "no",
				"--dir", r.dir,
				"--daemonize", "no",
				"--logfile", "",
			}
			if r.Password != "" {
				argv = append(argv, "--requirepass", r.Password)
			}
			return argv
		},
		dir:          r.dir,
		startTimeout: 30 * time.Second,
		ready: func(ctx context.Context, port int, log []byte) error {
			// The line is ours: a stale server on the port would not write
			// to this process's output.
			if !bytes.Contains(log, []byte("Ready to accept connections")) {
				return errors.New("no \"Ready to accept connections\" line yet")
			}
			return ping(ctx, port)
		},
	}
}

// start starts the server on r.port; the caller holds no lock.
func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil && !r.p.exited() {
		return nil
	}
	r.n++
	spec := r.spec()
	p, err := spawn(spec, r.port, fmt.Sprintf("%s/redis-%d.log", r.dir, r.n))
	if err != nil {
		return err
	}
	if err := p.waitReady(spec, r.port); err != nil {
		p.stop()
		return fmt.Errorf("%w\n--- redis output tail ---\n%s", err, p.tail())
	}
	r.p = p
	return nil
}

// Start starts the server again on the same port after Kill (its data is
// gone). It fails the test when the server does not come up.
func (r *Redis) Start() {
	r.tb.Helper()
	if err := r.start(); err != nil {
		r.tb.Fatalf("%s", errf("redis-server restart on port %d: %v", r.port, err))
	}
}

// Kill ends the server at once (SIGKILL, by its PID) and waits for it:
// clients see their connections reset and the port refuse.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil || r.p.exited() {
		return
	}
	signalGroup(r.p.cmd.Process.Pid, syscall.SIGKILL)
	<-r.p.done
}

// Pause stops the server (SIGSTOP) without closing anything: clients'
// connections stay open and their calls hang until Resume, as with a
// Redis stuck on a slow disk or a network partition.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p != nil && !r.p.exited() {
		signalGroup(r.p.cmd.Process.Pid, sig)
	}
}

// ping sends PING and accepts +PONG, or -NOAUTH from a server with a
// password: either way a Redis answered.
func ping(ctx context.Context, port int) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line == "+PONG\r\n" || bytes.HasPrefix([]byte(line), []byte("-NOAUTH")) {
		return nil
	}
	return fmt.Errorf("PING answered %q", line)
}
