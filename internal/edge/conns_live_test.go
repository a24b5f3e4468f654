package edge

// Live connections end to end: a Runner (the main listener, the admin
// listener, the connections watcher) over a real directory, a real
// PostgreSQL and a real versitygw, changed while a bounded load runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/admin"
	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/connections"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// applyWithin is the product's promise for a change.
const applyWithin = 2 * time.Second

const adminToken = "admin-token-0123456789abcdef0123456789abcdef"

// live is one Runner under test, serving on loopback.
type live struct {
	t      *testing.T
	r      *Runner
	base   string // http://127.0.0.1:PORT
	admin  string // http://127.0.0.1:PORT of the admin listener
	tok    string
	logs   *observer.ObservedLogs
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	// secrets must never appear in an answer or a log line.
	secrets []string
}

func startLive(t *testing.T, cfg *Config, now func() time.Time, secrets ...string) *live {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	core, logs := observer.New(zap.DebugLevel)
	opts := Options{Logger: zap.New(core), Now: now}
	r, err := NewRunner(context.Background(), cfg, opts, RunnerOptions{Watcher: connections.Options{
		Debounce: 20 * time.Millisecond, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	}})
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &live{t: t, r: r, base: "http://" + ln.Addr().String(), logs: logs, cancel: cancel, done: make(chan error, 1),
		client:  &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second},
		secrets: append(secrets, adminToken, testSecret)}
	go func() { l.done <- r.Run(ctx, ln) }()
	t.Cleanup(l.stop)
	if cfg.Admin.Enabled() {
		deadline := time.Now().Add(5 * time.Second)
		for r.AdminAddr() == "" && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		l.admin = "http://" + r.AdminAddr()
	}
	return l
}

func (l *live) stop() {
	if l.cancel == nil {
		return
	}
	l.cancel()
	l.cancel = nil
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		l.t.Error("Runner.Run did not return")
	}
	l.r.Server().Close()
	for _, e := range l.logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += fmt.Sprintf(" %s=%v", k, v)
		}
		for _, s := range l.secrets {
			if s != "" && strings.Contains(line, s) {
				l.t.Errorf("a log line holds a secret: %.200s", line)
			}
		}
	}
}

// get fetches path on the main listener with the token.
func (l *live) get(path string) (int, http.Header, string, error) {
	req, _ := http.NewRequest(http.MethodGet, l.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+l.tok)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// adminDo calls the admin API with token tok (none when "").
func (l *live) adminDo(method, path, tok, body string) (int, string) {
	l.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, l.admin+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		l.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, s := range l.secrets {
		if s != "" && strings.Contains(string(b), s) {
			l.t.Fatalf("admin %s %s answered a secret: %s", method, path, b)
		}
	}
	return resp.StatusCode, string(b)
}

func (l *live) conn(name string) admin.Conn {
	l.t.Helper()
	code, body := l.adminDo(http.MethodGet, "/admin/v1/connections/"+name, adminToken, "")
	if code != http.StatusOK {
		l.t.Fatalf("GET connection %s: %d %s", name, code, body)
	}
	var c admin.Conn
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		l.t.Fatal(err)
	}
	return c
}

// eventually polls cond until it holds, failing after applyWithin; it
// returns how long it took.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	return eventuallyWithin(t, applyWithin, what, cond)
}

func eventuallyWithin(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp~" // ignored by the store (extension)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// vSpec is a connection file for versitygw.
func vSpec(v *testenv.Versity, bucket, prefix, mode, akid, secret string) string {
	return fmt.Sprintf(`provider: s3
bucket: %s
region: %s
endpoint: %s
addressing: path
prefix: %q
mode: %s
credentials: {type: static, access_key_id: %q, secret_access_key: %q}
`, bucket, v.Region, v.Endpoint, prefix, mode, akid, secret)
}

// TestConnectionsDirLive changes a connection file (create, prefix, bucket,
// mode, credentials, an invalid spec, a file that is not YAML, delete)
// while four goroutines load an unchanged config source and the changing
// one: the unchanged source never fails, no answer comes from a version
// older than the one applied, every change shows within 2 s.
func TestConnectionsDirLive(t *testing.T) {
	v := testenv.StartVersity(t)
	for _, b := range []string{"conn-a", "conn-b"} {
		v.CreateBucket(t, b)
	}
	v.Put(t, "conn-a", "v1/obj.txt", []byte("one"))
	v.Put(t, "conn-a", "v2/obj.txt", []byte("two"))
	v.Put(t, "conn-b", "b/obj.txt", []byte("bee"))
	v.Put(t, "conn-a", "v1/stable.txt", []byte("stable"))
	dir := t.TempDir()
	cfg := &Config{
		Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Sources:     []SourceConfig{vSource(v, "stable", "conn-a", v.Endpoint, "path", "v1/")},
		Connections: connections.Config{Dir: dir},
		Admin:       admin.Config{Listen: "127.0.0.1:0", Tokens: []string{adminToken}},
	}
	l := startLive(t, cfg, nil, v.SecretKey)
	l.tok = signHS(t, claimsAt(time.Now(), grant("stable", ""), grant("live", ""), grant("other", "")))
	eventually(t, "readyz", func() bool { c, _, _, _ := l.get("/readyz"); return c == 200 })

	file := filepath.Join(dir, "live.yaml")
	// version is what an answer of /v1/s/live/obj.txt says about the
	// version that produced it.
	version := func(code int, h http.Header, body string) string {
		switch code {
		case 200:
			return "stream:" + body
		case 302:
			u, _ := url.Parse(h.Get("Location"))
			cred := u.Query().Get("X-Amz-Credential")
			akid, _, _ := strings.Cut(cred, "/")
			return "redirect:" + u.Path + ":" + akid
		}
		return fmt.Sprint(code)
	}
	var minVersion atomic.Int64 // index in order of the newest version applied
	order := []string{}
	index := map[string]int{}
	var orderMu sync.Mutex
	expect := func(vs string) {
		orderMu.Lock()
		index[vs] = len(order)
		order = append(order, vs)
		orderMu.Unlock()
	}
	// Load: 4 goroutines, at most 10 s.
	var stableFail, stale, total atomic.Int64
	var staleMsg atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loadEnd := time.Now().Add(10 * time.Second)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(loadEnd); i++ {
				select {
				case <-stop:
					return
				default:
				}
				total.Add(1)
				if i%2 == 0 {
					code, h, _, err := l.get("/v1/s/stable/stable.txt")
					if err != nil || code != 302 || !strings.Contains(h.Get("Location"), "/conn-a/v1/stable.txt") {
						stableFail.Add(1)
					}
					continue
				}
				floor := minVersion.Load()
				code, h, body, err := l.get("/v1/s/live/obj.txt")
				if err != nil {
					continue
				}
				vs := version(code, h, body)
				orderMu.Lock()
				idx, known := index[vs]
				orderMu.Unlock()
				if known && int64(idx) < floor {
					stale.Add(1)
					staleMsg.Store(fmt.Sprintf("%s after version %d was applied", vs, floor))
				}
			}
		}()
	}
	step := func(what, body, want string) {
		t.Helper()
		expect(want)
		writeFile(t, file, body)
		took := eventually(t, what, func() bool {
			code, h, b, err := l.get("/v1/s/live/obj.txt")
			return err == nil && version(code, h, b) == want
		})
		minVersion.Store(int64(index[want]))
		t.Logf("%s: applied in %s", what, took)
		time.Sleep(300 * time.Millisecond) // load on this version

	}
	step("create", vSpec(v, "conn-a", "v1/", "stream", v.AccessKey, v.SecretKey), "stream:one")
	if c := l.conn("live"); c.State != "ok" || c.Origin != "dir" || c.Bucket != "conn-a" || c.Prefix != "v1/" || c.Mode != "stream" || c.Provider != "s3" {
		t.Errorf("conn after create: %+v", c)
	}
	step("prefix", vSpec(v, "conn-a", "v2/", "stream", v.AccessKey, v.SecretKey), "stream:two")
	step("bucket", vSpec(v, "conn-b", "b/", "stream", v.AccessKey, v.SecretKey), "stream:bee")
	step("mode", vSpec(v, "conn-b", "b/", "redirect", v.AccessKey, v.SecretKey), "redirect:/conn-b/b/obj.txt:"+v.AccessKey)
	step("credentials", vSpec(v, "conn-b", "b/", "redirect", "AKIDROTATED", "rotated-secret-0123456789"), "redirect:/conn-b/b/obj.txt:AKIDROTATED")
	l.secrets = append(l.secrets, "rotated-secret-0123456789")

	// An invalid spec: the last good version stays, state invalid, the
	// problem names the key and echoes no value.
	writeFile(t, file, vSpec(v, "conn-b", "no-slash-secretish", "redirect", "AKIDROTATED", "rotated-secret-0123456789"))
	eventually(t, "invalid state", func() bool { return l.conn("live").State == "invalid" })
	c := l.conn("live")
	_, raw := l.adminDo(http.MethodGet, "/admin/v1/connections/live", adminToken, "")
	t.Logf("GET /admin/v1/connections/live (invalid) -> %s", raw)
	if len(c.Problems) == 0 || !strings.Contains(c.Problems[0].Message, "prefix") || strings.Contains(c.Problems[0].Message, "no-slash-secretish") {
		t.Errorf("invalid problems: %+v", c.Problems)
	}
	if c.Prefix != "b/" {
		t.Errorf("invalid: the version in force should stay (prefix b/), got %+v", c)
	}
	if code, h, b, _ := l.get("/v1/s/live/obj.txt"); version(code, h, b) != "redirect:/conn-b/b/obj.txt:AKIDROTATED" {
		t.Errorf("invalid spec changed what is served: %s", version(code, h, b))
	}
	// A file that is not YAML: reported, nothing else changes.
	writeFile(t, filepath.Join(dir, "other.yaml"), "key: [unclosed\n\tsecret-looking: x")
	eventually(t, "not YAML reported", func() bool {
		code, _ := l.adminDo(http.MethodGet, "/admin/v1/connections/other", adminToken, "")
		return code == 200 && l.conn("other").State == "invalid"
	})
	if c := l.conn("other"); c.Problems[0].Error != connections.ProblemSyntax {
		t.Errorf("not YAML: %+v", c)
	}
	if code, _, _, _ := l.get("/v1/s/other/obj.txt"); code != 404 {
		t.Errorf("an invalid new connection answers %d, want 404", code)
	}
	// Delete: 404 unknown_source.
	expect("404")
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delete", func() bool { code, _, _, _ := l.get("/v1/s/live/obj.txt"); return code == 404 })
	minVersion.Store(int64(index["404"]))
	if code, body := l.adminDo(http.MethodGet, "/admin/v1/connections/live", adminToken, ""); code != 404 || !strings.Contains(body, "unknown_source") {
		t.Errorf("admin after delete: %d %s", code, body)
	}
	close(stop)
	wg.Wait()
	t.Logf("load: %d requests, %d failed on the unchanged source, %d stale", total.Load(), stableFail.Load(), stale.Load())
	if stableFail.Load() != 0 {
		t.Errorf("%d requests on the unchanged config source failed", stableFail.Load())
	}
	if stale.Load() != 0 {
		t.Errorf("%d answers came from a version older than the one applied (%v)", stale.Load(), staleMsg.Load())
	}
	// Metrics: the changes counted by origin and result.
	s := l.r.Server()
	if n := testutil.ToFloat64(l.r.changes.WithLabelValues("dir", "applied")); n < 5 {
		t.Errorf("applied changes = %v, want >= 5", n)
	}
	if n := testutil.ToFloat64(l.r.changes.WithLabelValues("dir", "invalid")); n < 2 {
		t.Errorf("invalid changes = %v, want >= 2", n)
	}
	if s.urls.Len() > 10 {
		t.Errorf("the URL cache holds %d entries after the source went away", s.urls.Len())
	}
}

// TestConnectionsConfigMapSwap follows a mounted ConfigMap: files are
// symlinks through ..data, and an update swaps ..data atomically.
func TestConnectionsConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	spec := func(prefix string) string {
		return fmt.Sprintf("provider: s3\nbucket: cm-bucket\nregion: eu-west-1\nprefix: %q\ncredentials: {type: static, access_key_id: %s, secret_access_key: %s}\n", prefix, testAKID, testSecKey)
	}
	gen := 0
	publish := func(files map[string]string) {
		gen++
		ts := filepath.Join(dir, fmt.Sprintf("..2026_12_01_%02d", gen))
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(ts, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, name)
			if _, err := os.Lstat(link); err != nil {
				if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
					t.Fatal(err)
				}
			}
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish(map[string]string{"cm.yaml": spec("p1/")})
	clk := newClock(t0)
	cfg := &Config{
		Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Connections: connections.Config{Dir: dir},
	}
	l := startLive(t, cfg, clk.Now, testSecKey)
	l.tok = signHS(t, claims(grant("cm", "")))
	loc := func() string {
		code, h, _, _ := l.get("/v1/s/cm/k.jpg")
		if code != 302 {
			return fmt.Sprint(code)
		}
		u, _ := url.Parse(h.Get("Location"))
		return u.Host + u.Path
	}
	eventually(t, "first read", func() bool { return loc() == "cm-bucket.s3.eu-west-1.amazonaws.com/p1/k.jpg" })
	publish(map[string]string{"cm.yaml": spec("p2/")})
	took := eventually(t, "..data swap", func() bool { return loc() == "cm-bucket.s3.eu-west-1.amazonaws.com/p2/k.jpg" })
	t.Logf("..data swap applied in %s", took)
}

// pgSpec is a row's spec: an s3 source signing with static keys (no network).
func pgSpec(bucket, prefix, mode, akid string) string {
	b, _ := json.Marshal(map[string]any{
		"provider": "s3", "bucket": bucket, "region": "eu-west-1", "prefix": prefix, "mode": mode,
		// Loopback, nothing listening: stream mode answers 502 at once.
		"endpoint": "http://127.0.0.1:9", "addressing": "path",
		"credentials": map[string]any{"type": "static", "access_key_id": akid, "secret_access_key": testSecKey},
	})
	return string(b)
}

// TestConnectionsPostgresThreeEdges runs three edges on one PostgreSQL:
// rows inserted, updated (prefix, bucket, mode, credentials) and deleted
// converge on all three within 2 s with byte-identical URLs; a row with a
// config source's name shows as conflict, a non-object spec as invalid,
// credentials that fail as credentials_failing. It measures the time from
// a committed row to the first request served with it.
func TestConnectionsPostgresThreeEdges(t *testing.T) {
	pg := testenv.StartPostgres(t)
	schema, err := connections.SchemaSQL(connections.DefaultTable, connections.DefaultChannel, connections.DefaultReaderRole)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, schema)
	clk := newClock(t0)
	edges := make([]*live, 3)
	for i := range edges {
		cfg := &Config{
			Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
			Sources:     []SourceConfig{s3Source("stable", "stable-bucket", "s/")},
			Connections: connections.Config{Postgres: connections.PostgresConfig{DSN: pg.DSN}},
			Admin:       admin.Config{Listen: "127.0.0.1:0", Tokens: []string{adminToken}},
		}
		edges[i] = startLive(t, cfg, clk.Now, testSecKey)
		edges[i].tok = signHS(t, claims(grant("stable", ""), grant("row", ""), grant("badcreds", "")))
	}
	for _, e := range edges {
		eventually(t, "readyz", func() bool { c, _, _, _ := e.get("/readyz"); return c == 200 })
	}
	locs := func(path string) []string {
		out := make([]string, len(edges))
		for i, e := range edges {
			code, h, _, err := e.get(path)
			out[i] = fmt.Sprint(code, err)
			if code == 302 {
				out[i] = h.Get("Location")
			}
		}
		return out
	}
	converged := func(what string, ok func(string) bool) []string {
		t.Helper()
		var last []string
		eventually(t, what, func() bool {
			last = locs("/v1/s/row/k.jpg")
			for _, l := range last {
				if !ok(l) || l != last[0] {
					return false
				}
			}
			return true
		})
		return last
	}
	upsert := func(spec string) {
		pg.Exec(t, `INSERT INTO edge_connections (name, spec) VALUES ('row', $1::jsonb)
			ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = now()`, spec)
	}
	upsert(pgSpec("row-bucket", "p1/", "redirect", testAKID))
	converged("insert", func(l string) bool { return strings.HasPrefix(l, "http://127.0.0.1:9/row-bucket/p1/k.jpg?") })
	upsert(pgSpec("row-bucket", "p2/", "redirect", testAKID))
	converged("prefix", func(l string) bool { return strings.Contains(l, "/p2/k.jpg") })
	upsert(pgSpec("other-bucket", "p2/", "redirect", testAKID))
	converged("bucket", func(l string) bool { return strings.HasPrefix(l, "http://127.0.0.1:9/other-bucket/p2/k.jpg?") })
	upsert(pgSpec("other-bucket", "p2/", "redirect", "AKIDSECOND"))
	converged("credentials", func(l string) bool { return strings.Contains(l, "AKIDSECOND") })
	upsert(pgSpec("other-bucket", "p2/", "stream", "AKIDSECOND"))
	converged("mode", func(l string) bool {
		return strings.HasPrefix(l, "502") || strings.HasPrefix(l, "504") || strings.HasPrefix(l, "503")
	})
	// Admin sets agree.
	sets := make([]string, len(edges))
	for i, e := range edges {
		_, sets[i] = e.adminDo(http.MethodGet, "/admin/v1/connections", adminToken, "")
	}
	for i := range sets {
		var got struct{ Connections []admin.Conn }
		json.Unmarshal([]byte(sets[i]), &got)
		var names []string
		for _, c := range got.Connections {
			names = append(names, c.Name+"/"+c.Origin+"/"+c.State+"/"+c.Mode+"/"+c.Bucket+"/"+c.Prefix)
		}
		sort.Strings(names)
		sets[i] = strings.Join(names, ",")
	}
	if sets[0] != sets[1] || sets[1] != sets[2] {
		t.Errorf("connection sets differ:\n%s\n%s\n%s", sets[0], sets[1], sets[2])
	}
	t.Logf("connection set: %s", sets[0])

	// Bad rows: a config source's name, a non-object spec, credentials
	// that fail. Each is reported; nothing else changes.
	pg.Exec(t, `INSERT INTO edge_connections (name, spec) VALUES ('stable', $1::jsonb)`, pgSpec("hijack", "", "redirect", testAKID))
	// The schema's CHECK refuses a non-object spec; a table made without
	// it does not.
	pg.Exec(t, `ALTER TABLE edge_connections DROP CONSTRAINT edge_connections_spec_check`)
	pg.Exec(t, `INSERT INTO edge_connections (name, spec) VALUES ('notobj', '[1, 2]'::jsonb)`)
	pg.Exec(t, `INSERT INTO edge_connections (name, spec) VALUES ('badcreds', $1::jsonb)`, `{"provider":"s3","bucket":"bc","region":"eu-west-1",
		"credentials":{"type":"assume_role","role_arn":"arn:aws:iam::123456789012:role/edge-read","sts_endpoint":"http://127.0.0.1:1","access_key_id":"AKIDSTS","secret_access_key":"sts-secret-0123456789"}}`)
	edges[0].secrets = append(edges[0].secrets, "sts-secret-0123456789")
	e := edges[0]
	var lastBody string
	defer func() {
		if t.Failed() {
			t.Logf("last list: %s", lastBody)
		}
	}()
	// The credentials check is bounded by 10 s (STS retries).
	eventuallyWithin(t, 12*time.Second, "bad rows reported", func() bool {
		_, body := e.adminDo(http.MethodGet, "/admin/v1/connections", adminToken, "")
		lastBody = body
		return strings.Contains(body, `"conflict"`) && strings.Contains(body, `"not_an_object"`) && strings.Contains(body, `"credentials_failing"`)
	})
	_, body := e.adminDo(http.MethodGet, "/admin/v1/connections", adminToken, "")
	t.Logf("GET /admin/v1/connections: %s", body)
	if code, h, _, _ := e.get("/v1/s/stable/k.jpg"); code != 302 || !strings.Contains(h.Get("Location"), "stable-bucket") {
		t.Errorf("a row named like a config source changed it: %d %s", code, h.Get("Location"))
	}
	if code, _, b, _ := e.get("/v1/s/badcreds/k.jpg"); code != 503 || !strings.Contains(b, "credentials_unavailable") {
		t.Errorf("failing credentials: %d %s", code, b)
	}
	if v := testutil.ToFloat64(e.r.Server().metrics.sourceUp.WithLabelValues("badcreds")); v != 0 {
		t.Errorf("edge_source_up{badcreds} = %v", v)
	}
	// Delete: 404 everywhere.
	pg.Exec(t, `DELETE FROM edge_connections WHERE name = 'row'`)
	converged("delete", func(l string) bool { return strings.HasPrefix(l, "404") })

	// Commit to first request served with it, median of 20.
	var took []time.Duration
	for i := 0; i < 20; i++ {
		prefix := fmt.Sprintf("lat%d/", i)
		start := time.Now()
		upsert(pgSpec("row-bucket", prefix, "redirect", testAKID))
		for time.Since(start) < applyWithin {
			if code, h, _, _ := e.get("/v1/s/row/k.jpg"); code == 302 && strings.Contains(h.Get("Location"), "/"+prefix) {
				break
			}
		}
		took = append(took, time.Since(start))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("commit to first request served: median %s, min %s, max %s (20 updates)", took[10], took[0], took[19])
	if took[19] > applyWithin {
		t.Errorf("slowest apply %s > %s", took[19], applyWithin)
	}
}

// TestConnectionsReadyz: /readyz is 503 until every store was read once,
// then stays 200 while the store is lost (the last connections stay).
func TestConnectionsReadyz(t *testing.T) {
	pg := testenv.StartPostgres(t)
	schema, _ := connections.SchemaSQL(connections.DefaultTable, connections.DefaultChannel, connections.DefaultReaderRole)
	pg.Exec(t, schema)
	pg.Exec(t, `INSERT INTO edge_connections (name, spec) VALUES ('row', $1::jsonb)`, pgSpec("row-bucket", "p/", "redirect", testAKID))
	pg.Stop()
	clk := newClock(t0)
	cfg := &Config{
		Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Connections: connections.Config{Postgres: connections.PostgresConfig{DSN: pg.DSN}},
	}
	l := startLive(t, cfg, clk.Now, testSecKey)
	l.tok = signHS(t, claims(grant("row", "")))
	time.Sleep(300 * time.Millisecond)
	if code, _, body, _ := l.get("/readyz"); code != 503 || !strings.Contains(body, "connection stores") {
		t.Errorf("readyz before the store was read: %d %s", code, body)
	}
	pg.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _, _ := l.get("/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz not 200 after the store came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, _, _ := l.get("/v1/s/row/k.jpg"); code != 302 {
		t.Errorf("row after ready: %d", code)
	}
	pg.Stop()
	time.Sleep(500 * time.Millisecond)
	if code, _, _, _ := l.get("/readyz"); code != 200 {
		t.Errorf("readyz after the store was lost: %d, want 200", code)
	}
	if code, _, _, _ := l.get("/v1/s/row/k.jpg"); code != 302 {
		t.Errorf("the last connections should stay in force: %d", code)
	}
}

// TestAdminAPI: tokens, the CONN shape from every origin, check and policy
// on a posted spec, bad specs, and no secret in any answer.
func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "dirconn.yaml"), fmt.Sprintf("provider: s3\nbucket: dir-bucket\nregion: eu-west-1\nprefix: d/\ncredentials: {type: static, access_key_id: %s, secret_access_key: %s}\n", testAKID, testSecKey))
	writeFile(t, filepath.Join(dir, "stable.yaml"), fmt.Sprintf("provider: s3\nbucket: dup\nregion: eu-west-1\ncredentials: {type: static, access_key_id: %s, secret_access_key: %s}\n", testAKID, testSecKey))
	clk := newClock(t0)
	cfg := &Config{
		Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		CORS:        CORSConfig{AllowedOrigins: []string{"https://app.example.com"}},
		Sources:     []SourceConfig{s3Source("stable", "stable-bucket", "s/")},
		Connections: connections.Config{Dir: dir},
		Admin:       admin.Config{Listen: "127.0.0.1:0", Tokens: []string{adminToken}},
	}
	cfg.Platform.AWSPrincipal = "arn:aws:iam::111122223333:role/edge"
	l := startLive(t, cfg, clk.Now, testSecKey)
	eventually(t, "dir read", func() bool {
		_, b := l.adminDo(http.MethodGet, "/admin/v1/connections", adminToken, "")
		return strings.Contains(b, "dirconn")
	})
	for _, tok := range []string{"", "wrong-token-0123456789abcdef0123456789abcdef"} {
		for _, p := range []string{"/admin/v1/connections", "/admin/v1/connections/stable"} {
			if code, body := l.adminDo(http.MethodGet, p, tok, ""); code != 401 || !strings.Contains(body, "admin_unauthorized") {
				t.Errorf("GET %s with token %q: %d %s", p, tok, code, body)
			}
		}
		if code, _ := l.adminDo(http.MethodPost, "/admin/v1/check", tok, "{}"); code != 401 {
			t.Errorf("POST check without a valid token: %d", code)
		}
	}
	code, body := l.adminDo(http.MethodGet, "/admin/v1/connections", adminToken, "")
	t.Logf("GET /admin/v1/connections -> %d %s", code, body)
	var list struct{ Connections []admin.Conn }
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Connections) != 3 {
		t.Fatalf("list: %v %s", err, body)
	}
	want := []string{"dirconn/dir/ok", "stable/config/ok", "stable/dir/conflict"}
	for i, c := range list.Connections {
		if got := c.Name + "/" + c.Origin + "/" + c.State; got != want[i] {
			t.Errorf("connections[%d] = %s, want %s", i, got, want[i])
		}
	}
	code, body = l.adminDo(http.MethodGet, "/admin/v1/connections/dirconn", adminToken, "")
	t.Logf("GET /admin/v1/connections/dirconn -> %d %s", code, body)
	if code, body := l.adminDo(http.MethodGet, "/admin/v1/connections/nope", adminToken, ""); code != 404 || !strings.Contains(body, "unknown_source") {
		t.Errorf("unknown: %d %s", code, body)
	}
	spec := `{"name":"onboard-me",` + pgSpec("policy-bucket", "imgs/", "redirect", testAKID)[1:]
	code, body = l.adminDo(http.MethodPost, "/admin/v1/policy", adminToken, spec)
	t.Logf("POST /admin/v1/policy -> %d %.600s", code, body)
	if code != 200 || !strings.Contains(body, "arn:aws:s3:::policy-bucket/imgs/*") || !strings.Contains(body, "https://app.example.com") || !strings.Contains(body, "111122223333") {
		t.Errorf("policy: %d %s", code, body)
	}
	bad := `{"name":"onboard-me","provider":"s3","bucket":"b","prefix":"no-slash-value","credentials":{"type":"static","access_key_id":"A","secret_access_key":"` + testSecKey + `"}}`
	code, body = l.adminDo(http.MethodPost, "/admin/v1/policy", adminToken, bad)
	t.Logf("POST /admin/v1/policy (bad) -> %d %s", code, body)
	if code != 400 || !strings.Contains(body, "prefix") || strings.Contains(body, "no-slash-value") {
		t.Errorf("bad policy: %d %s", code, body)
	}
	code, body = l.adminDo(http.MethodPost, "/admin/v1/check", adminToken, bad)
	t.Logf("POST /admin/v1/check (bad) -> %d %s", code, body)
	if code != 200 || !strings.Contains(body, `"config_invalid"`) || !strings.Contains(body, `"ok":false`) || strings.Contains(body, "no-slash-value") {
		t.Errorf("bad check: %d %s", code, body)
	}
	if code, body := l.adminDo(http.MethodPost, "/admin/v1/check", adminToken, "[1]"); code != 200 || !strings.Contains(body, "config_invalid") {
		t.Errorf("non-object check: %d %s", code, body)
	}
	if code, _ := l.adminDo(http.MethodPost, "/admin/v1/check", adminToken, strings.Repeat(" ", 2<<20)); code != 413 {
		t.Errorf("huge body: %d, want 413", code)
	}
}

// TestReloadConfig: a SIGHUP-style reload of the whole file; a broken file
// changes nothing and names its keys without values; a good one swaps in
// new keys, origins and sources, and connections carry over.
func TestReloadConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "dirconn.yaml"), fmt.Sprintf("provider: s3\nbucket: dir-bucket\nregion: eu-west-1\nprefix: d/\ncredentials: {type: static, access_key_id: %s, secret_access_key: %s}\n", testAKID, testSecKey))
	cfgFile := filepath.Join(t.TempDir(), "edge.yaml")
	write := func(extra string) {
		writeFile(t, cfgFile, fmt.Sprintf(`auth:
  issuer: %s
  audience: %s
  keys: [{id: k1, alg: HS256, secret: %q}]
connections: {dir: %s}
sources:
  - {name: stable, provider: s3, bucket: stable-bucket, region: eu-west-1, credentials: {type: static, access_key_id: %s, secret_access_key: %s}}
%s`, testIssuer, testAudience, testSecret, dir, testAKID, testSecKey, extra))
	}
	write("")
	cfg, err := LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	l := startLive(t, cfg, nil, testSecKey, "pasted-secret-value-123")
	l.tok = signHS(t, claimsAt(time.Now(), grant("stable", ""), grant("dirconn", ""), grant("added", "")))
	eventually(t, "dir read", func() bool { c, _, _, _ := l.get("/v1/s/dirconn/k.jpg"); return c == 302 })
	// Broken: an unknown key holding a secret, and a bad value.
	writeFile(t, cfgFile, "auth: {keys: []}\nsourcez: pasted-secret-value-123\ncache: {max_entries: -1}\n")
	if err := l.r.ReloadFile(context.Background(), cfgFile); err == nil {
		t.Fatal("a broken config was accepted")
	} else if strings.Contains(err.Error(), "pasted-secret-value-123") {
		t.Errorf("the reload error echoes a value: %v", err)
	}
	found := false
	for _, e := range l.logs.FilterMessageSnippet("config reload refused").All() {
		found = true
		if p := fmt.Sprint(e.ContextMap()["problems"]); !strings.Contains(p, "cache.max_entries") || !strings.Contains(p, "sourcez") {
			t.Errorf("the log does not name every problem: %s", p)
		}
	}
	if !found {
		t.Error("no log line for the refused reload")
	}
	if n := testutil.ToFloat64(l.r.reloads.WithLabelValues("error")); n != 1 {
		t.Errorf("reloads{error} = %v", n)
	}
	if c, _, _, _ := l.get("/v1/s/stable/k.jpg"); c != 302 {
		t.Errorf("after a refused reload: %d", c)
	}
	// Good: a new static source; connections carry over at once.
	old := l.r.Server()
	write(fmt.Sprintf("  - {name: added, provider: s3, bucket: added-bucket, region: eu-west-1, credentials: {type: static, access_key_id: %s, secret_access_key: %s}}\n", testAKID, testSecKey))
	if err := l.r.ReloadFile(context.Background(), cfgFile); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, p := range []string{"/v1/s/added/k.jpg", "/v1/s/dirconn/k.jpg", "/v1/s/stable/k.jpg", "/readyz"} {
		if c, _, b, _ := l.get(p); c != 302 && !(p == "/readyz" && c == 200) {
			t.Errorf("after reload %s: %d %s", p, c, b)
		}
	}
	if n := testutil.ToFloat64(l.r.reloads.WithLabelValues("ok")); n != 1 {
		t.Errorf("reloads{ok} = %v", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !old.closed.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !old.closed.Load() {
		t.Error("the replaced server was not closed after draining")
	}
	// /metrics serves the Runner's counters.
	_, _, m, _ := l.get("/metrics")
	if !strings.Contains(m, `edge_config_reloads_total{result="ok"} 1`) || !strings.Contains(m, "edge_connection_changes_total") {
		t.Errorf("metrics lack the reload counters")
	}
}

var _ = signer.ProviderS3

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadConnectionsStore: a reload that moves the store to another
// directory reads the new one before the swap: its connections answer as
// soon as Reload returns, the old store's are gone, readiness holds.
func TestReloadConnectionsStore(t *testing.T) {
	spec := fmt.Sprintf("provider: s3\nbucket: b\nregion: eu-west-1\ncredentials: {type: static, access_key_id: %s, secret_access_key: %s}\n", testAKID, testSecKey)
	dirA, dirB := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dirA, "a.yaml"), spec)
	writeFile(t, filepath.Join(dirB, "b.yaml"), spec)
	clk := newClock(t0)
	mk := func(dir string) *Config {
		c := &Config{
			Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
			Connections: connections.Config{Dir: dir},
		}
		c.Defaults()
		return c
	}
	l := startLive(t, mk(dirA), clk.Now, testSecKey)
	l.tok = signHS(t, claims(grant("a", ""), grant("b", "")))
	eventually(t, "a served", func() bool { c, _, _, _ := l.get("/v1/s/a/k.jpg"); return c == 302 })
	eventually(t, "ready", func() bool { c, _, _, _ := l.get("/readyz"); return c == 200 })
	if err := l.r.Reload(context.Background(), mk(dirB)); err != nil {
		t.Fatal(err)
	}
	if c, _, _, _ := l.get("/v1/s/b/k.jpg"); c != 302 {
		t.Errorf("b right after the reload: %d", c)
	}
	if c, _, _, _ := l.get("/v1/s/a/k.jpg"); c != 404 {
		t.Errorf("a after the reload: %d", c)
	}
	if c, _, _, _ := l.get("/readyz"); c != 200 {
		t.Errorf("readyz after the reload: %d", c)
	}
	// The new store is followed.
	writeFile(t, filepath.Join(dirB, "a.yaml"), spec)
	eventually(t, "a in the new store", func() bool { c, _, _, _ := l.get("/v1/s/a/k.jpg"); return c == 302 })
}

// TestAdminObjects: the manifest route on the real admin listener: the
// token is required, an unknown source is 404, and a file source's
// objects come as JSON lines ending with the summary.
func TestAdminObjects(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"imgs", "other"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "imgs", "a.txt"), "hello")
	writeFile(t, filepath.Join(root, "imgs", "b c.txt"), "world!")
	writeFile(t, filepath.Join(root, "other", "x.txt"), "outside")
	cfg := &Config{
		Auth:    auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Sources: []SourceConfig{fileSource("local", root, "imgs/", ModeStream)},
		Admin:   admin.Config{Listen: "127.0.0.1:0", Tokens: []string{adminToken}},
	}
	l := startLive(t, cfg, newClock(t0).Now)
	if code, body := l.adminDo(http.MethodGet, "/admin/v1/connections/local/objects", "", ""); code != 401 || !strings.Contains(body, "admin_unauthorized") {
		t.Errorf("without a token: %d %s", code, body)
	}
	if code, body := l.adminDo(http.MethodGet, "/admin/v1/connections/nope/objects", adminToken, ""); code != 404 || !strings.Contains(body, "unknown_source") {
		t.Errorf("unknown source: %d %s", code, body)
	}
	code, body := l.adminDo(http.MethodGet, "/admin/v1/connections/local/objects", adminToken, "")
	t.Logf("GET /admin/v1/connections/local/objects -> %d\n%s", code, body)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != 3 ||
		!strings.HasPrefix(lines[0], `{"key":"a.txt","size":5,`) ||
		!strings.HasPrefix(lines[1], `{"key":"b c.txt","size":6,`) ||
		!strings.HasPrefix(lines[2], `{"summary":{"objects":2,`) {
		t.Errorf("manifest: %d\n%s", code, body)
	}
	if strings.Contains(body, "outside") || strings.Contains(body, "x.txt") {
		t.Errorf("an object outside the prefix was listed:\n%s", body)
	}
}

// TestAdminSpecNoEnv: a POSTed spec never expands the edge's own
// environment (admin tokens, DSN, cloud keys), or the policy answer would
// echo it in an ARN.
func TestAdminSpecNoEnv(t *testing.T) {
	const leak = "env-secret-must-not-leak-0123456789"
	t.Setenv("EDGE_TEST_LEAK", leak)
	cfg := &Config{
		Auth:    auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Sources: []SourceConfig{s3Source("stable", "stable-bucket", "s/")},
		Admin:   admin.Config{Listen: "127.0.0.1:0", Tokens: []string{adminToken}},
	}
	cfg.Platform.AWSPrincipal = "arn:aws:iam::111122223333:role/edge"
	l := startLive(t, cfg, newClock(t0).Now, testSecKey)
	spec := `{"name":"x","provider":"s3","bucket":"b","region":"eu-west-1","prefix":"${EDGE_TEST_LEAK}/","credentials":{"type":"static","access_key_id":"A","secret_access_key":"B"}}`
	for _, route := range []string{"/admin/v1/policy", "/admin/v1/check"} {
		code, body := l.adminDo(http.MethodPost, route, adminToken, spec)
		if strings.Contains(body, leak) {
			t.Errorf("POST %s echoed the edge's environment: %d %s", route, code, body)
		}
		if !strings.Contains(body, "config_invalid") {
			t.Errorf("POST %s with an unexpandable ${VAR}: %d %s, want config_invalid", route, code, body)
		}
	}
}
