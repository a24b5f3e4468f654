package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a running PostgreSQL server (Debian's postgresql package,
// version 15 preferred) with its own data directory, trust authentication
// on 127.0.0.1 and a superuser named "edge". It can be stopped and started
// again on the same port and data, to test a database that goes away.
type Postgres struct {
	Port int
	DSN  string // postgres://edge@127.0.0.1:PORT/postgres?sslmode=disable
	Dir  string // data directory

	bin     string // the bin directory
	base    string // owns Dir and the socket; removed at cleanup
	cred    *syscall.Credential
	proc    *proc
	logPath string
	tb      testing.TB
}

// pgBinDir finds the PostgreSQL server binaries: $EDGE_PG_BIN, else
// /usr/lib/postgresql/15/bin, else the newest /usr/lib/postgresql/*/bin.
func pgBinDir(tb testing.TB) string {
	tb.Helper()
	candidates := []string{}
	if d := os.Getenv("EDGE_PG_BIN"); d != "" {
		candidates = append(candidates, d)
	}
	candidates = append(candidates, "/usr/lib/postgresql/15/bin")
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(globbed)))
	candidates = append(candidates, globbed...)
	for _, d := range candidates {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d
			}
		}
	}
	tb.Fatalf("testenv: PostgreSQL is not installed (no postgres and initdb in /usr/lib/postgresql/15/bin): run `make tools`")
	return ""
}

// StartPostgres initialises a fresh cluster in a temporary directory and
// starts it on a free loopback port; it is stopped by its PID (SIGINT, a
// fast shutdown) in tb.Cleanup. initdb refuses to run as root, so as root
// both run as the system user "postgres".
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	p := &Postgres{bin: pgBinDir(tb), tb: tb}
	base, err := os.MkdirTemp("", "edge-pg-")
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	p.base = base
	tb.Cleanup(func() { os.RemoveAll(base) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("testenv: running as root needs the system user postgres (from the postgresql package): run `make tools`")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(base, 0o755); err != nil {
			tb.Fatalf("testenv: %v", err)
		}
		if err := os.Chown(base, uid, gid); err != nil {
			tb.Fatalf("testenv: %v", err)
		}
	}
	p.Dir = filepath.Join(base, "data")
	p.logPath = filepath.Join(base, "postgres.log")
	initdb := exec.Command(filepath.Join(p.bin, "initdb"), "-D", p.Dir, "-A", "trust", "-U", "edge", "--no-sync", "-E", "UTF8", "--locale", "C")
	initdb.SysProcAttr = p.sysProcAttr()
	initdb.Dir = base
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("testenv: initdb: %v\n%s", err, out)
	}
	var last error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		port := FreePort(tb)
		if last = p.start(port); last == nil {
			tb.Cleanup(func() {
				p.stop()
				if tb.Failed() {
					tb.Logf("testenv: postgres (port %d) log tail:\n%s", p.Port, tailFile(p.logPath))
				}
			})
			return p
		}
		if !strings.Contains(last.Error(), "already in use") {
			break
		}
	}
	tb.Fatalf("testenv: postgres did not start: %v", last)
	return nil
}

func (p *Postgres) sysProcAttr() *syscall.SysProcAttr {
	a := sysProcAttr()
	a.Credential = p.cred
	return a
}

// start runs the server on port and waits until it answers as itself.
func (p *Postgres) start(port int) error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	defer f.Close()
	if p.cred != nil {
		os.Chown(p.logPath, int(p.cred.Uid), int(p.cred.Gid))
	}
	cmd := exec.Command(filepath.Join(p.bin, "postgres"),
		"-D", p.Dir, "-p", strconv.Itoa(port), "-k", p.base, "-h", "127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=50", "-c", "shared_buffers=32MB")
	cmd.Dir = p.base
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = p.sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	pr := &proc{name: "postgres", cmd: cmd, logPath: p.logPath, done: make(chan struct{})}
	go func() {
		pr.waitErr = cmd.Wait()
		close(pr.done)
	}()
	dsn := fmt.Sprintf("postgres://edge@127.0.0.1:%d/postgres?sslmode=disable", port)
	spec := serverSpec{
		name:         "postgres",
		startTimeout: 30 * time.Second,
		ready: func(ctx context.Context, _ int, _ []byte) error {
			// The data directory tells our server from any other on the port.
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer c.Close(ctx)
			var dir string
			if err := c.QueryRow(ctx, "SHOW data_directory").Scan(&dir); err != nil {
				return err
			}
			if filepath.Clean(dir) != filepath.Clean(p.Dir) {
				return fmt.Errorf("another server (data directory %s) answers on port %d", dir, port)
			}
			return nil
		},
	}
	if err := pr.waitReady(spec, port); err != nil {
		p.stopProc(pr)
		return fmt.Errorf("%w\n--- log tail ---\n%s", err, tailFile(p.logPath))
	}
	p.proc, p.Port, p.DSN = pr, port, dsn
	return nil
}

// Stop stops the server (SIGINT: fast shutdown, clients disconnected) and
// waits for it; Start brings it back on the same port and data.
func (p *Postgres) Stop() {
	p.tb.Helper()
	p.stop()
}

// Start starts a stopped server again on its port.
func (p *Postgres) Start() {
	p.tb.Helper()
	if p.proc != nil && !p.proc.exited() {
		return
	}
	var err error
	for i := 0; i < 20; i++ { // the port may linger a moment after the stop
		if err = p.start(p.Port); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.tb.Fatalf("testenv: postgres restart on port %d: %v", p.Port, err)
}

func (p *Postgres) stop() {
	if p.proc != nil {
		p.stopProc(p.proc)
	}
}

func (p *Postgres) stopProc(pr *proc) {
	if pr.exited() {
		return
	}
	pid := pr.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGINT) // the postmaster alone: it stops its children
	select {
	case <-pr.done:
		return
	case <-time.After(10 * time.Second):
	}
	signalGroup(pid, syscall.SIGKILL)
	<-pr.done
}

// Connect opens a connection as the superuser, closed at cleanup.
func (p *Postgres) Connect(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		tb.Fatalf("testenv: connect to postgres: %v", err)
	}
	tb.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Exec runs SQL as the superuser on a fresh connection or fails tb.
func (p *Postgres) Exec(tb testing.TB, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		tb.Fatalf("testenv: connect to postgres: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("testenv: postgres exec: %v", err)
	}
}

// DSNFor returns a DSN for another user (trust authentication: no password).
func (p *Postgres) DSNFor(user string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", user, p.Port)
}

func tailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no output)"
		}
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}
