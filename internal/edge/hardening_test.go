package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/source"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestRequestIDs: every answer carries X-Request-Id, fresh per request,
// in the access log line and the error body; a trusted proxy's own id is
// kept, anyone else's is not.
func TestRequestIDs(t *testing.T) {
	buf := &lockedBuffer{}
	cfg := baseConfig(t)
	cfg.Server.TrustedProxies = []string{"192.0.2.0/24"} // httptest's RemoteAddr
	e := newEnv(t, cfg, withLogger(bufferLogger(buf)))
	tok := tokenAll(t)
	seen := map[string]bool{}
	for _, target := range []string{"/healthz", "/readyz", "/metrics", "/v1/s/customer-a/x.jpg?token=" + tok, "/v1/s/customer-a/x.jpg", "/v1/s/nope/x", "/nowhere"} {
		w := e.get(target)
		id := w.Header().Get("X-Request-Id")
		if id == "" || seen[id] {
			t.Errorf("%s: X-Request-Id %q, want a fresh id", target, id)
		}
		seen[id] = true
		if w.Code >= 400 {
			wantError(t, w, w.Code, "")
		}
		if !strings.Contains(buf.String(), `"request_id":"`+id+`"`) {
			t.Errorf("%s: the access log lacks request_id %s", target, id)
		}
	}
	for _, tt := range []struct {
		name, remote, id string
		kept             bool
	}{
		{"trusted proxy", "192.0.2.7:4000", "lb-7f3a9c", true},
		{"untrusted peer", "198.51.100.1:4000", "lb-7f3a9c", false},
		{"malformed id", "192.0.2.7:4000", "has space\"quote", false},
		{"overlong id", "192.0.2.7:4000", strings.Repeat("a", 129), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/healthz", nil)
			r.RemoteAddr = tt.remote
			r.Header.Set("X-Request-Id", tt.id)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if got := w.Header().Get("X-Request-Id"); (got == tt.id) != tt.kept || got == "" {
				t.Errorf("X-Request-Id = %q, want kept %v", got, tt.kept)
			}
		})
	}
}

// TestOpsRoutes: probes and scrapes answer GET and HEAD only, and are not
// logged at info.
func TestOpsRoutes(t *testing.T) {
	buf := &lockedBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), buf, zapcore.InfoLevel))
	e := newEnv(t, baseConfig(t), withLogger(log))
	e.srv.CheckReady(t.Context())
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, m := range []string{"GET", "HEAD"} {
			if w := e.do(m, p, nil); w.Code != 200 {
				t.Errorf("%s %s = %d, want 200", m, p, w.Code)
			}
		}
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			w := e.do(m, p, nil)
			if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s = %d Allow %q, want 405 with Allow: GET, HEAD", m, p, w.Code, w.Header().Get("Allow"))
			}
		}
	}
	buf.mu.Lock()
	buf.b.Reset()
	buf.mu.Unlock()
	e.get("/healthz")
	e.get("/readyz")
	e.get("/metrics")
	if s := buf.String(); s != "" {
		t.Errorf("operational routes logged at info: %s", s)
	}
	e.get("/v1/s/customer-a/x.jpg")
	if !strings.Contains(buf.String(), `"route":"s"`) {
		t.Errorf("object request not logged at info: %q", buf.String())
	}
}

// TestLogFieldsBounded: a request-chosen source name or method never
// reaches the log at length.
func TestLogFieldsBounded(t *testing.T) {
	buf := &lockedBuffer{}
	e := newEnv(t, baseConfig(t), withLogger(bufferLogger(buf)))
	long := strings.Repeat("n", 60<<10)
	e.get("/v1/s/" + long + "/x.jpg")
	e.get("/v1/u?url=s3://" + long + "/x.jpg")
	e.get("/v1/f/" + long + "/x.jpg?exp=1&sig=x")
	e.do(strings.Repeat("M", 8<<10), "/healthz", nil)
	e.get("/v1/s/customer-a/x.jpg") // configured: named
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d log lines, want 5:\n%s", len(lines), buf.String())
	}
	for i, l := range lines[:4] {
		if len(l) > 1024 {
			t.Errorf("line %d is %d bytes", i, len(l))
		}
	}
	for _, i := range []int{0, 2} { // /v1/u names no source before the token is checked
		if l := lines[i]; !strings.Contains(l, `"source":"(unknown)"`) {
			t.Errorf("line %d lacks the unknown-source marker: %s", i, lines[i])
		}
	}
	if !strings.Contains(lines[4], `"source":"customer-a"`) {
		t.Errorf("a configured source is not named: %s", lines[4])
	}
}

// TestRangeCap: thousands of ranges, or overlapping ones adding up past
// the object, get the whole object with 200, never a multipart body
// bigger than the object.
func TestRangeCap(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	const body = "hello from a" // files/a.txt, 12 bytes
	for _, tt := range []struct {
		name, rng string
		status    int
	}{
		{"one range", "bytes=0-4", 206},
		{"two disjoint", "bytes=0-1,4-5", 206},
		{"thousands", "bytes=" + strings.Repeat("0-0,", 3000) + "0-0", 200},
		{"nine", "bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8", 200},
		{"overlapping past the object", "bytes=0-11,0-11", 200},
		{"60 KB", "bytes=0-" + strings.Repeat("1", 60<<10), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do("GET", "/v1/s/local/a.txt?token="+tok, http.Header{"Range": {tt.rng}})
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == 200 && w.Body.String() != body {
				t.Errorf("body %q, want the whole object", w.Body)
			}
			if w.Body.Len() > 4*len(body)+1024 {
				t.Errorf("a %d-byte answer for a %d-byte object", w.Body.Len(), len(body))
			}
		})
	}
}

// TestClientMistakes: what storage would answer 400 to is refused before
// signing with a 400 of the edge's own.
func TestClientMistakes(t *testing.T) {
	cfg := baseConfig(t)
	st := s3Source("stream-s3", "acme-images", "")
	st.Mode = ModeStream
	st.Endpoint = "http://" + closedPort(t) // never reached
	cfg.Sources = append(cfg.Sources, st)
	e := newEnv(t, cfg)
	tok := signHS(t, claims(grant("customer-a", ""), grant("customer-b", ""), grant("stream-s3", "")))
	long := strings.Repeat("k", 1100)
	for _, tt := range []struct {
		name, target string
		hdr          http.Header
		status       int
		code         string
	}{
		{"key too long", "/v1/s/customer-a/" + long, nil, 400, "key_too_long"},
		{"key too long with the prefix", "/v1/s/customer-a/" + strings.Repeat("k", 1020), nil, 400, "key_too_long"},
		{"key '/'", "/v1/s/customer-b//", nil, 400, "bad_reference"},
		{"key '/x'", "/v1/s/customer-b//x", nil, 400, "bad_reference"},
		{"huge If-None-Match", "/v1/s/stream-s3/k.jpg", http.Header{"If-None-Match": {strings.Repeat(`"etag",`, 10<<10)}}, 400, "header_too_large"},
		{"key at the limit", "/v1/s/customer-b/" + strings.Repeat("k", 1024), nil, 302, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sep := "?"
			w := e.do("GET", tt.target+sep+"token="+tok, tt.hdr)
			if tt.code == "" {
				if w.Code != tt.status {
					t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
				}
				return
			}
			wantError(t, w, tt.status, tt.code)
		})
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServer runs the server on a loopback listener until the test ends.
func startServer(t *testing.T, e *env) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// TestRequestFraming: a request with a body, or framed by both
// Content-Length and Transfer-Encoding, is refused with 400 and its
// connection closed, so a smuggled second request is never answered.
func TestRequestFraming(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	addr := startServer(t, e)
	for _, tt := range []struct{ name, raw string }{
		{"CL and TE", "GET /healthz HTTP/1.1\r\nHost: edge\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: edge\r\n\r\n"},
		{"TE only", "GET /healthz HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: edge\r\n\r\n"},
		{"CL body", "POST /v1/session HTTP/1.1\r\nHost: edge\r\nContent-Length: 36\r\n\r\nGET /readyz HTTP/1.1\r\nHost: edge\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tt.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), `"body_not_allowed"`) || !resp.Close {
				t.Errorf("got %d close=%v %s, want 400 body_not_allowed with Connection: close", resp.StatusCode, resp.Close, body)
			}
			rest, err := io.ReadAll(br)
			if len(rest) > 0 {
				t.Errorf("a second answer followed (the smuggled request was served): %q", rest)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				t.Errorf("connection not closed: %v", err)
			}
		})
	}
}

// failingListener fails every Accept, so Serve returns at once.
type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) {
	return nil, errors.New("accept failed for the test")
}

// TestRunServeErrorStopsWatcher: Run returning on a Serve error also
// stops its readiness watcher (it leaked, checking every 30 s, forever).
func TestRunServeErrorStopsWatcher(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = e.srv.Run(context.Background(), failingListener{ln})
	if err == nil || !strings.Contains(err.Error(), "accept failed") {
		t.Fatalf("Run = %v, want the Serve error", err)
	}
	select {
	case <-e.srv.watchDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the readiness watcher still runs after Run returned")
	}
}

// TestSourceSetSwap: the whole set is swapped at once; requests after the
// swap see only the new one.
func TestSourceSetSwap(t *testing.T) {
	e := newEnv(t, baseConfig(t))
	tok := tokenAll(t)
	if w := e.get("/v1/s/customer-b/x.jpg?token=" + tok); w.Code != http.StatusFound {
		t.Fatalf("before: %d", w.Code)
	}
	old := e.srv.sources()
	e.srv.set.Store(newSourceSet([]*Source{old.byName["customer-a"]}))
	wantError(t, e.get("/v1/s/customer-b/x.jpg?token="+tok), 404, "unknown_source")
	wantError(t, e.get("/v1/u?url=s3://partner.frames/x.jpg&token="+tok), 404, "unknown_bucket")
	if w := e.get("/v1/u?url=s3://acme-images/images/x.jpg&token=" + tok); w.Code != http.StatusFound {
		t.Errorf("customer-a by storage URL after the swap: %d", w.Code)
	}
}

const marker = "MARKER/s3cr3t+0123456789" // a secret's characters

// TestConfigProblemsNeverEcho: a secret pasted into the wrong key, or of
// the wrong type, never appears in the problems, which still name the key.
func TestConfigProblemsNeverEcho(t *testing.T) {
	base := `
auth:
  keys: [{id: k1, alg: ALG, secret: "test-hs256-secret-0123456789abcdef0123"}]
log: {level: LEVEL}
cache: {max_entries: ENTRIES}
sources:
  - name: NAME
    provider: s3
    bucket: b
    mode: MODE
    prefix: PREFIX
    url_ttl: TTL
    credentials: {type: CTYPE}
`
	fill := func(key string) string {
		r := map[string]string{"ALG": "HS256", "LEVEL": "info", "ENTRIES": "10", "NAME": "a", "MODE": "redirect", "PREFIX": `""`, "TTL": "1h", "CTYPE": "default"}
		r[key] = marker
		s := base
		for k, v := range r {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	for _, tt := range []struct{ key, names string }{
		{"ALG", "auth.keys[0]"},
		{"LEVEL", "log.level"},
		{"ENTRIES", "cache.max_entries"},
		{"NAME", "sources[0].name"},
		{"MODE", "sources[0].mode"},
		{"PREFIX", "sources[0].prefix"},
		{"TTL", "sources[0].url_ttl"},
		{"CTYPE", "sources[0].credentials.type"},
	} {
		t.Run(tt.names, func(t *testing.T) {
			_, err := ParseConfig([]byte(fill(tt.key)), lookupFrom(nil))
			if err == nil {
				t.Fatal("ParseConfig passed")
			}
			if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the problem echoes the value:\n%v", err)
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("the problem does not name %s:\n%v", tt.names, err)
			}
		})
	}
	t.Run("duplicate names", func(t *testing.T) {
		cfg := baseConfig(t)
		cfg.Sources[1].Name = cfg.Sources[0].Name
		cfg.Defaults()
		err := cfg.Validate()
		if err == nil || strings.Contains(err.Error(), "customer-a") || !strings.Contains(err.Error(), "sources[1].name: duplicate") {
			t.Errorf("got %v, want sources[1].name named without its value", err)
		}
	})
}

// TestSourcesStayConfigured: source.Config round-trips through the
// config file, kms_key_arn and sync included.
func TestSourcesStayConfigured(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
auth: {keys: [{id: k1, alg: HS256, secret: "test-hs256-secret-0123456789abcdef0123"}]}
sources:
  - {name: a, provider: s3, bucket: b, kms_key_arn: "arn:aws:kms:eu-west-1:123456789012:key/abc", sync: true}
`), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sources[0]
	if s.KMSKeyARN != "arn:aws:kms:eu-west-1:123456789012:key/abc" || !s.Sync || s.Provider != signer.ProviderS3 || s.Mode != source.ModeRedirect {
		t.Errorf("got %+v", s)
	}
}
