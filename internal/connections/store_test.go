package connections

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// within is the product's promise: a change takes effect within 2 s.
const within = 2 * time.Second

// rig runs a Watcher and records its snapshots.
type rig struct {
	t    *testing.T
	w    *Watcher
	reg  *prometheus.Registry
	logs *observer.ObservedLogs

	mu    sync.Mutex
	snaps [][]Entry
	ch    chan struct{}
}

func startRig(t *testing.T, cfg Config, tweak func(*Options)) *rig {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	r := &rig{t: t, reg: prometheus.NewRegistry(), logs: logs, ch: make(chan struct{}, 1)}
	cfg.Defaults()
	opts := Options{
		Config: cfg, Logger: zap.New(core), Metrics: r.reg,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		OnChange: func(es []Entry) {
			r.mu.Lock()
			r.snaps = append(r.snaps, es)
			r.mu.Unlock()
			select {
			case r.ch <- struct{}{}:
			default:
			}
		},
	}
	if tweak != nil {
		tweak(&opts)
	}
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func (r *rig) last() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snaps) == 0 {
		return nil
	}
	return r.snaps[len(r.snaps)-1]
}

func (r *rig) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.snaps)
}

// waitFor waits up to d for a delivered snapshot that satisfies ok and
// returns it, or fails with the last one.
func (r *rig) waitFor(d time.Duration, what string, ok func([]Entry) bool) []Entry {
	r.t.Helper()
	deadline := time.After(d)
	for {
		if s := r.last(); r.count() > 0 && ok(s) {
			return s
		}
		select {
		case <-r.ch:
		case <-deadline:
			r.t.Fatalf("no snapshot with %s within %v; last: %s", what, d, describe(r.last()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func describe(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %s %s %q v=%s problem=%v", e.Origin, e.Name, e.Path, e.Version, e.Problem)
	}
	return b.String()
}

func find(es []Entry, origin, name string) (Entry, bool) {
	for _, e := range es {
		if e.Origin == origin && e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

func has(origin string, pairs map[string]string) func([]Entry) bool {
	// pairs: name -> substring of Data ("" = absent, "!code" = a problem with that code)
	return func(es []Entry) bool {
		for name, want := range pairs {
			e, ok := find(es, origin, name)
			switch {
			case want == "":
				if ok {
					return false
				}
			case strings.HasPrefix(want, "!"):
				var p *Problem
				if !ok || !errors.As(e.Problem, &p) || p.Code != want[1:] {
					return false
				}
			default:
				if !ok || e.Problem != nil || !strings.Contains(string(e.Data), want) {
					return false
				}
			}
		}
		return true
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestDirStore(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "provider: file\nroot: /a1\n")
	writeFile(t, filepath.Join(dir, "b.json"), `{"provider":"file","root":"/b1"}`)
	writeFile(t, filepath.Join(dir, "README.md"), "not a connection")
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), "provider: file\n")
	r := startRig(t, Config{Dir: dir}, nil)
	r.waitFor(within, "a and b", has(OriginDir, map[string]string{"a": "/a1", "b": "/b1"}))
	if !r.w.Ready() {
		t.Fatal("not ready after the first read")
	}
	if n := len(r.last()); n != 2 {
		t.Fatalf("got %d entries, want 2 (README.md and the dot-file ignored):%s", n, describe(r.last()))
	}
	a1, _ := find(r.last(), OriginDir, "a")

	t.Run("modify", func(t *testing.T) {
		start := time.Now()
		writeFile(t, filepath.Join(dir, "a.yaml"), "provider: file\nroot: /a2\n")
		r.waitFor(within, "a modified", has(OriginDir, map[string]string{"a": "/a2", "b": "/b1"}))
		t.Logf("file change to snapshot: %v", time.Since(start))
		a2, _ := find(r.last(), OriginDir, "a")
		if a2.Version == a1.Version || !a2.LoadedAt.After(a1.LoadedAt) && !a2.LoadedAt.Equal(a1.LoadedAt) {
			t.Errorf("version %s -> %s, loaded_at %v -> %v", a1.Version, a2.Version, a1.LoadedAt, a2.LoadedAt)
		}
		b, _ := find(r.last(), OriginDir, "b")
		if b.LoadedAt.After(a2.LoadedAt) {
			t.Errorf("b's loaded_at moved although b did not change")
		}
	})
	t.Run("write in place", func(t *testing.T) {
		// Editors and `cat >` truncate and write: the event comes before
		// the content is complete; the debounce reads after it.
		if err := os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"provider":"file","root":"/b2"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		r.waitFor(within, "b modified", has(OriginDir, map[string]string{"b": "/b2"}))
	})
	t.Run("bad file harms no other", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "bad.yaml"), "provider: [unclosed\n")
		writeFile(t, filepath.Join(dir, "list.json"), `["not","an","object"]`)
		r.waitFor(within, "problems", has(OriginDir, map[string]string{
			"bad": "!" + ProblemSyntax, "list": "!" + ProblemNotObject, "a": "/a2", "b": "/b2",
		}))
	})
	t.Run("remove", func(t *testing.T) {
		for _, f := range []string{"bad.yaml", "list.json", "b.json"} {
			os.Remove(filepath.Join(dir, f))
		}
		s := r.waitFor(within, "b removed", has(OriginDir, map[string]string{"b": "", "bad": "", "list": "", "a": "/a2"}))
		if len(s) != 1 {
			t.Fatalf("want only a:%s", describe(s))
		}
	})
	t.Run("no snapshot without a change", func(t *testing.T) {
		n := r.count()
		writeFile(t, filepath.Join(dir, "a.yaml"), "provider: file\nroot: /a2\n") // same bytes
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
		r.w.Rescan()
		time.Sleep(500 * time.Millisecond)
		if got := r.count(); got != n {
			t.Fatalf("%d snapshots delivered without a change", got-n)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		if up := testutil.ToFloat64(r.w.m.up.WithLabelValues("dir")); up != 1 {
			t.Errorf("edge_connection_store_up{store=dir} = %v, want 1", up)
		}
		if ok := testutil.ToFloat64(r.w.m.reloads.WithLabelValues("dir", "ok")); ok < 4 {
			t.Errorf("edge_connection_reloads_total{store=dir,result=ok} = %v, want at least 4", ok)
		}
	})
}

// TestDirConfigMapSwap replays what the kubelet does to a ConfigMap
// volume: the visible files are symlinks into ..data, itself a symlink to
// a timestamped directory, and an update renames a new ..data_tmp symlink
// over ..data, then fixes the visible symlinks and removes the old
// directory.
func TestDirConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(ts string, files map[string]string) {
		d := filepath.Join(dir, ts)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, data := range files {
			if err := os.WriteFile(filepath.Join(d, f), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	mk("..2026_12_01_10_00_00.000000001", map[string]string{"x.yaml": "root: /x1\n", "y.yaml": "root: /y1\n"})
	link("..2026_12_01_10_00_00.000000001", "..data")
	link("..data/x.yaml", "x.yaml")
	link("..data/y.yaml", "y.yaml")
	r := startRig(t, Config{Dir: dir}, nil)
	r.waitFor(within, "x and y", has(OriginDir, map[string]string{"x": "/x1", "y": "/y1"}))

	// The update: x changes, y goes, z comes.
	start := time.Now()
	mk("..2026_12_01_10_05_00.000000002", map[string]string{"x.yaml": "root: /x2\n", "z.yaml": "root: /z1\n"})
	link("..2026_12_01_10_05_00.000000002", "..data_tmp")
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	link("..data/z.yaml", "z.yaml")
	// y.yaml now dangles until the kubelet removes it: absent, not a problem.
	r.waitFor(within, "x changed, y gone, z new", has(OriginDir, map[string]string{"x": "/x2", "y": "", "z": "/z1"}))
	t.Logf("..data swap to snapshot: %v", time.Since(start))
	os.Remove(filepath.Join(dir, "y.yaml"))
	os.RemoveAll(filepath.Join(dir, "..2026_12_01_10_00_00.000000001"))
	time.Sleep(300 * time.Millisecond)
	s := r.last()
	if len(s) != 2 || !has(OriginDir, map[string]string{"x": "/x2", "z": "/z1"})(s) {
		t.Fatalf("after cleanup:%s", describe(s))
	}
	for _, e := range s {
		if strings.HasPrefix(e.Path, ".") {
			t.Errorf("a dot-file became an entry: %q", e.Path)
		}
	}
}

func TestDirMissingThenCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	r := startRig(t, Config{Dir: dir}, nil)
	time.Sleep(200 * time.Millisecond)
	if r.w.Ready() {
		t.Fatal("ready although the directory was never read")
	}
	if up := testutil.ToFloat64(r.w.m.up.WithLabelValues("dir")); up != 0 {
		t.Errorf("store up = %v, want 0", up)
	}
	os.Mkdir(dir, 0o755)
	writeFile(t, filepath.Join(dir, "late.yaml"), "root: /late\n")
	r.waitFor(within, "late", has(OriginDir, map[string]string{"late": "/late"}))
	if !r.w.Ready() {
		t.Fatal("not ready")
	}
	// The watch was added on the retry: a change is seen without a resync.
	writeFile(t, filepath.Join(dir, "late.yaml"), "root: /late2\n")
	r.waitFor(within, "late2", has(OriginDir, map[string]string{"late": "/late2"}))
}

// pgRig is a PostgreSQL server with the schema of `edge connections
// schema` and a read-only role whose DSN carries a password (trust
// authentication ignores it) that must never show in logs.
type pgRig struct {
	pg  *testenv.Postgres
	dsn string
}

const pgPassword = "pg-pass-Do-Not-Leak-7f3a"

func startPG(t *testing.T) *pgRig {
	t.Helper()
	pg := testenv.StartPostgres(t)
	sql, err := SchemaSQL(DefaultTable, DefaultChannel, DefaultReaderRole)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, sql)
	pg.Exec(t, sql) // idempotent
	qualified, err := SchemaSQL("tenants.conns", "conns", "edge_reader")
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, qualified)
	pg.Exec(t, "ALTER ROLE edge_reader LOGIN PASSWORD '"+pgPassword+"'")
	dsn := strings.Replace(pg.DSNFor("edge_reader"), "edge_reader@", "edge_reader:"+pgPassword+"@", 1)
	return &pgRig{pg: pg, dsn: dsn}
}

func (p *pgRig) exec(t *testing.T, sql string, args ...any) { t.Helper(); p.pg.Exec(t, sql, args...) }

func (p *pgRig) upsert(t *testing.T, name, spec string) {
	t.Helper()
	p.exec(t, `INSERT INTO edge_connections (name, spec) VALUES ($1, $2::jsonb)
		ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec`, name, spec)
}

func noSecretInLogs(t *testing.T, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += fmt.Sprintf(" %s=%v%s", f.Key, f.Interface, f.String)
			if err, ok := f.Interface.(error); ok {
				line += err.Error()
			}
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line holds a secret: %s", line)
			}
		}
	}
}

func TestPostgresStore(t *testing.T) {
	p := startPG(t)
	p.upsert(t, "pre", `{"provider":"file","root":"/pre"}`)
	r := startRig(t, Config{Postgres: PostgresConfig{DSN: p.dsn}}, nil)
	r.waitFor(10*time.Second, "pre", has(OriginPostgres, map[string]string{"pre": "/pre"}))
	if !r.w.Ready() {
		t.Fatal("not ready after the first read")
	}
	for _, step := range []struct {
		desc string
		do   func()
		want map[string]string
	}{
		{"insert", func() { p.upsert(t, "a", `{"provider":"file","root":"/a1"}`) }, map[string]string{"a": "/a1", "pre": "/pre"}},
		{"update", func() { p.upsert(t, "a", `{"provider":"file","root":"/a2"}`) }, map[string]string{"a": "/a2"}},
		{"rename", func() { p.exec(t, "UPDATE edge_connections SET name = 'b' WHERE name = 'a'") }, map[string]string{"a": "", "b": "/a2"}},
		{"delete", func() { p.exec(t, "DELETE FROM edge_connections WHERE name = 'b'") }, map[string]string{"b": "", "pre": "/pre"}},
		{"many in one transaction", func() {
			p.exec(t, `INSERT INTO edge_connections (name, spec) SELECT 'bulk-' || i, jsonb_build_object('root', '/bulk' || i) FROM generate_series(1, 300) i`)
		}, map[string]string{"bulk-1": "/bulk1", "bulk-300": "/bulk300"}},
		{"truncate", func() { p.exec(t, "TRUNCATE edge_connections") }, map[string]string{"pre": "", "bulk-1": ""}},
		{"bad row harms no other", func() {
			p.exec(t, "ALTER TABLE edge_connections DROP CONSTRAINT edge_connections_spec_check, DROP CONSTRAINT edge_connections_name_check")
			p.upsert(t, "good", `{"root":"/good"}`)
			p.upsert(t, "arr", `["x"]`)
			p.upsert(t, "str", `"`+secretInSpec+`"`)
			p.upsert(t, "Bad Name", `{}`)
			p.upsert(t, "named", `{"name":"named","root":"/named"}`)
			p.upsert(t, "misnamed", `{"name":"other"}`)
			p.upsert(t, "numname", `{"name":1}`)
		}, map[string]string{"good": "/good", "named": "/named", "misnamed": "!" + ProblemNameMismatch, "numname": "!" + ProblemNameMismatch, "arr": "!" + ProblemNotObject, "str": "!" + ProblemNotObject, "Bad Name": "!" + ProblemBadName}},
	} {
		t.Run(step.desc, func(t *testing.T) {
			start := time.Now()
			step.do()
			r.waitFor(within, step.desc, has(OriginPostgres, step.want))
			t.Logf("commit to snapshot: %v", time.Since(start))
		})
	}
	noSecretInLogs(t, r.logs, pgPassword)
}

func TestPostgresResyncCatchesMissedNotify(t *testing.T) {
	p := startPG(t)
	r := startRig(t, Config{Postgres: PostgresConfig{DSN: p.dsn}, Resync: time.Second}, nil)
	r.waitFor(10*time.Second, "first read", func([]Entry) bool { return r.w.Ready() })
	p.exec(t, "DROP TRIGGER edge_connections_notify ON edge_connections")
	p.upsert(t, "silent", `{"root":"/silent"}`)
	// No NOTIFY: only the resync (1s) can see it.
	r.waitFor(within+time.Second, "silent", has(OriginPostgres, map[string]string{"silent": "/silent"}))
	p.exec(t, "DELETE FROM edge_connections")
	r.waitFor(within+time.Second, "silent gone", has(OriginPostgres, map[string]string{"silent": ""}))
}

func TestPostgresRescan(t *testing.T) {
	p := startPG(t)
	r := startRig(t, Config{Postgres: PostgresConfig{DSN: p.dsn}}, nil) // resync 5m
	r.waitFor(10*time.Second, "first read", func([]Entry) bool { return r.w.Ready() })
	p.exec(t, "DROP TRIGGER edge_connections_notify ON edge_connections")
	p.upsert(t, "hup", `{"root":"/hup"}`)
	r.w.Rescan() // SIGHUP
	r.waitFor(within, "hup", has(OriginPostgres, map[string]string{"hup": "/hup"}))
}

func TestPostgresLostAndBack(t *testing.T) {
	p := startPG(t)
	p.upsert(t, "keep", `{"root":"/keep"}`)
	r := startRig(t, Config{Postgres: PostgresConfig{DSN: p.dsn}}, nil)
	r.waitFor(10*time.Second, "keep", has(OriginPostgres, map[string]string{"keep": "/keep"}))
	up := func() float64 { return testutil.ToFloat64(r.w.m.up.WithLabelValues("postgres")) }
	if up() != 1 {
		t.Fatalf("store up = %v, want 1", up())
	}
	before := r.count()
	p.pg.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for up() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if up() != 0 {
		t.Fatal("store still up 5 s after the database stopped")
	}
	time.Sleep(700 * time.Millisecond) // a few failed reconnects
	if got := r.count(); got != before {
		t.Fatalf("%d snapshots delivered while the database was down", got-before)
	}
	if !has(OriginPostgres, map[string]string{"keep": "/keep"})(r.w.Snapshot()) || !r.w.Ready() {
		t.Fatalf("last known connections not kept:%s", describe(r.w.Snapshot()))
	}
	if errs := testutil.ToFloat64(r.w.m.reloads.WithLabelValues("postgres", "error")); errs < 1 {
		t.Errorf("reloads{result=error} = %v, want at least 1", errs)
	}
	p.pg.Start()
	// Changed before the edge is back: its NOTIFY reached nobody, the
	// reconnect's full read must catch it.
	p.upsert(t, "keep", `{"root":"/keep2"}`)
	p.upsert(t, "new", `{"root":"/new"}`)
	r.waitFor(5*time.Second, "caught up", has(OriginPostgres, map[string]string{"keep": "/keep2", "new": "/new"}))
	if up() != 1 {
		t.Fatalf("store up = %v after the database came back", up())
	}
	p.upsert(t, "after", `{"root":"/after"}`)
	r.waitFor(within, "after", has(OriginPostgres, map[string]string{"after": "/after"}))
	noSecretInLogs(t, r.logs, pgPassword)
	var sawLost bool
	for _, e := range r.logs.All() {
		if strings.Contains(e.Message, "connection store lost") {
			sawLost = true
		}
	}
	if !sawLost {
		t.Error("the lost database was not logged")
	}
}

// TestBothStoresMerge runs both stores with one name in each and in both,
// and settles them with Merge.
func TestBothStoresMerge(t *testing.T) {
	p := startPG(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "shared.yaml"), "root: /dir-shared\n")
	writeFile(t, filepath.Join(dir, "cfg.yaml"), "root: /dir-cfg\n")
	writeFile(t, filepath.Join(dir, "d.yaml"), "root: /d\n")
	p.upsert(t, "shared", `{"root":"/pg-shared"}`)
	p.upsert(t, "pg", `{"root":"/pg"}`)
	r := startRig(t, Config{Dir: dir, Postgres: PostgresConfig{DSN: p.dsn}}, nil)
	s := r.waitFor(10*time.Second, "both", func(es []Entry) bool { return len(es) == 5 && r.w.Ready() })
	w, c := Merge([]string{"cfg"}, s)
	var gw, gc []string
	for _, e := range w {
		gw = append(gw, e.Origin+":"+e.Name)
	}
	for _, x := range c {
		gc = append(gc, x.Entry.Origin+":"+x.Entry.Name+"<"+x.WinnerOrigin)
	}
	if got, want := strings.Join(gw, " "), "dir:d postgres:pg dir:shared"; got != want {
		t.Errorf("winners %q, want %q", got, want)
	}
	if got, want := strings.Join(gc, " "), "dir:cfg<config postgres:shared<dir"; got != want {
		t.Errorf("conflicts %q, want %q", got, want)
	}
	// Snapshot order is origin, then name.
	var order []string
	for _, e := range s {
		order = append(order, e.Origin+":"+e.Name)
	}
	if got, want := strings.Join(order, " "), "dir:cfg dir:d dir:shared postgres:pg postgres:shared"; got != want {
		t.Errorf("snapshot order %q, want %q", got, want)
	}
}

func TestNoStores(t *testing.T) {
	r := startRig(t, Config{}, nil)
	r.waitFor(time.Second, "an empty snapshot", func(es []Entry) bool { return len(es) == 0 })
	if !r.w.Ready() {
		t.Fatal("no stores: should be ready at once")
	}
}

func TestMetricsReRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	for i := 0; i < 2; i++ {
		if _, err := New(Options{Config: Config{Dir: t.TempDir(), Resync: time.Minute}, Metrics: reg}); err != nil {
			t.Fatal(err)
		}
	}
}
