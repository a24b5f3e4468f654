package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

var (
	tokenA = strings.Repeat("a", 24) + "-token-A-secret"
	tokenB = strings.Repeat("b", 24) + "-token-B-secret"
)

// conns is a fixed Connections provider.
type conns []Conn

func (c conns) List() []Conn { return append([]Conn(nil), c...) }
func (c conns) Get(name string) (Conn, bool) {
	for _, x := range c {
		if x.Name == name {
			return x, true
		}
	}
	return Conn{}, false
}

var loaded = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

var fixture = conns{
	{Name: "customer-a", Origin: "config", Provider: "s3", Mode: "redirect", Bucket: "acme", Prefix: "images/", State: StateOK, LoadedAt: loaded},
	{Name: "tenant-7", Origin: "postgres", Provider: "gcs", Mode: "stream", Bucket: "t7", State: StateInvalid,
		Problems: []Problem{{Error: "config_invalid", Message: "bucket: required"}}, LoadedAt: loaded},
}

func newServer(t *testing.T, tokens ...string) (*Server, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: tokens}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	RegisterConnections(s, fixture)
	s.Handle(http.MethodPost, "/admin/v1/echo", func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		return WriteJSON(w, map[string]int{"bytes": len(b)})
	})
	s.Handle(http.MethodGet, "/admin/v1/boom", func(w http.ResponseWriter, r *http.Request) error {
		return io.ErrUnexpectedEOF // an internal cause: a 500, the cause only in the log
	})
	return s, logs
}

func do(t *testing.T, h http.Handler, method, path, auth, body string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

type errBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func TestAuth(t *testing.T) {
	s, logs := newServer(t, tokenA, tokenB)
	h := s.Handler()
	for _, tc := range []struct {
		desc, auth, path string
		status           int
		code             string
	}{
		{"no header", "", "/admin/v1/connections", 401, "admin_unauthorized"},
		{"not bearer", "Basic " + tokenA, "/admin/v1/connections", 401, "admin_unauthorized"},
		{"wrong token", "Bearer " + strings.Repeat("x", 40), "/admin/v1/connections", 401, "admin_unauthorized"},
		{"short token", "Bearer abc", "/admin/v1/connections", 401, "admin_unauthorized"},
		{"prefix of a token", "Bearer " + tokenA[:len(tokenA)-1], "/admin/v1/connections", 401, "admin_unauthorized"},
		{"token plus more", "Bearer " + tokenA + "x", "/admin/v1/connections", 401, "admin_unauthorized"},
		{"empty bearer", "Bearer ", "/admin/v1/connections", 401, "admin_unauthorized"},
		{"unknown route without token", "", "/admin/v1/nope", 401, "admin_unauthorized"},
		{"token A", "Bearer " + tokenA, "/admin/v1/connections", 200, ""},
		{"token B (rotation)", "Bearer " + tokenB, "/admin/v1/connections", 200, ""},
		{"scheme case", "bearer " + tokenA, "/admin/v1/connections", 200, ""},
		{"unknown route", "Bearer " + tokenA, "/admin/v1/nope", 404, "not_found"},
		{"unknown connection", "Bearer " + tokenA, "/admin/v1/connections/nope", 404, "unknown_source"},
		{"internal error", "Bearer " + tokenA, "/admin/v1/boom", 500, "internal"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			res, b := do(t, h, http.MethodGet, tc.path, tc.auth, "")
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, b)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			id := res.Header.Get("X-Request-Id")
			if id == "" {
				t.Error("no X-Request-Id")
			}
			if tc.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
			}
			if tc.code != "" {
				var e errBody
				if err := json.Unmarshal(b, &e); err != nil || e.Error != tc.code || e.Message == "" || e.RequestID != id {
					t.Errorf("body %s: want error %q with message and request_id %q", b, tc.code, id)
				}
			}
			for _, secret := range []string{tokenA, tokenB, "unexpected EOF"} {
				if strings.Contains(string(b), secret) || strings.Contains(strings.Join(flatten(res.Header), " "), secret) {
					t.Errorf("answer holds %q", secret)
				}
			}
		})
	}
	for _, e := range logs.All() {
		line := e.Message
		for _, f := range e.Context {
			line += " " + f.String
		}
		if strings.Contains(line, tokenA) || strings.Contains(line, tokenB) {
			t.Errorf("log holds a token: %s", line)
		}
	}

	t.Run("set tokens", func(t *testing.T) {
		s.SetTokens([]string{tokenB})
		defer s.SetTokens([]string{tokenA, tokenB})
		if res, _ := do(t, h, http.MethodGet, "/admin/v1/connections", "Bearer "+tokenA, ""); res.StatusCode != 401 {
			t.Errorf("retired token: status %d, want 401", res.StatusCode)
		}
		if res, _ := do(t, h, http.MethodGet, "/admin/v1/connections", "Bearer "+tokenB, ""); res.StatusCode != 200 {
			t.Errorf("kept token: status %d, want 200", res.StatusCode)
		}
	})
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	return out
}

func TestMethods(t *testing.T) {
	s, _ := newServer(t, tokenA)
	h := s.Handler()
	auth := "Bearer " + tokenA
	res, b := do(t, h, http.MethodPost, "/admin/v1/connections", auth, "{}")
	if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(string(b), `"method_not_allowed"`) {
		t.Errorf("POST list: %d Allow=%q %s", res.StatusCode, res.Header.Get("Allow"), b)
	}
	res, b = do(t, h, http.MethodGet, "/admin/v1/echo", auth, "")
	if res.StatusCode != 405 || res.Header.Get("Allow") != "POST" {
		t.Errorf("GET echo: %d Allow=%q %s", res.StatusCode, res.Header.Get("Allow"), b)
	}
	res, b = do(t, h, http.MethodPost, "/admin/v1/echo", auth, `{"a":1}`)
	if res.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"bytes":7}` {
		t.Errorf("POST echo: %d %s", res.StatusCode, b)
	}
	res, b = do(t, h, http.MethodPost, "/admin/v1/echo", auth, strings.Repeat("x", 2<<20))
	if res.StatusCode != 413 || !strings.Contains(string(b), "body_too_large") {
		t.Errorf("big body: %d %s", res.StatusCode, b)
	}
	res, b = do(t, h, http.MethodHead, "/admin/v1/connections", auth, "")
	if res.StatusCode != 200 {
		t.Errorf("HEAD list: %d %s", res.StatusCode, b)
	}
}

func TestConnectionShapes(t *testing.T) {
	s, _ := newServer(t, tokenA)
	h := s.Handler()
	auth := "Bearer " + tokenA
	res, b := do(t, h, http.MethodGet, "/admin/v1/connections", auth, "")
	if res.StatusCode != 200 {
		t.Fatalf("list: %d %s", res.StatusCode, b)
	}
	want := `{"connections":[` +
		`{"name":"customer-a","origin":"config","provider":"s3","mode":"redirect","bucket":"acme","prefix":"images/","state":"ok","problems":[],"loaded_at":"2026-12-01T10:00:00Z"},` +
		`{"name":"tenant-7","origin":"postgres","provider":"gcs","mode":"stream","bucket":"t7","prefix":"","state":"invalid","problems":[{"error":"config_invalid","message":"bucket: required"}],"loaded_at":"2026-12-01T10:00:00Z"}]}`
	if got := strings.TrimSpace(string(b)); got != want {
		t.Errorf("list:\n got %s\nwant %s", got, want)
	}
	res, b = do(t, h, http.MethodGet, "/admin/v1/connections/customer-a", auth, "")
	wantOne := `{"name":"customer-a","origin":"config","provider":"s3","mode":"redirect","bucket":"acme","prefix":"images/","state":"ok","problems":[],"loaded_at":"2026-12-01T10:00:00Z"}`
	if got := strings.TrimSpace(string(b)); res.StatusCode != 200 || got != wantOne {
		t.Errorf("one: %d\n got %s\nwant %s", res.StatusCode, got, wantOne)
	}
	empty, _ := New(Config{Listen: "127.0.0.1:0", Tokens: []string{tokenA}}, nil)
	RegisterConnections(empty, conns(nil))
	_, b = do(t, empty.Handler(), http.MethodGet, "/admin/v1/connections", auth, "")
	if got := strings.TrimSpace(string(b)); got != `{"connections":[]}` {
		t.Errorf("empty list: %s", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		desc string
		cfg  Config
		want []string
	}{
		{"off", Config{}, nil},
		{"ok", Config{Listen: "127.0.0.1:9091", Tokens: []string{tokenA, tokenB}}, nil},
		{"no tokens", Config{Listen: "127.0.0.1:9091"}, []string{"admin.tokens: "}},
		{"short", Config{Listen: "127.0.0.1:9091", Tokens: []string{"short-secret-value"}}, []string{"admin.tokens[0]: "}},
		{"space", Config{Listen: "127.0.0.1:9091", Tokens: []string{tokenA + " x"}}, []string{"admin.tokens[0]: "}},
		{"repeat", Config{Listen: "127.0.0.1:9091", Tokens: []string{tokenA, tokenA}}, []string{"admin.tokens[1]: "}},
		{"bad listen", Config{Listen: "9091", Tokens: []string{tokenA}}, []string{"admin.listen: "}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			errs := tc.cfg.Validate("admin")
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %v, want %d", errs, len(tc.want))
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tc.want[i]) {
					t.Errorf("error %q, want prefix %q", err, tc.want[i])
				}
				for _, s := range append(tc.cfg.Tokens, "short-secret-value") {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q echoes a token", err)
					}
				}
			}
		})
	}
}

func TestRunGracefulShutdown(t *testing.T) {
	s, _ := newServer(t, tokenA)
	release := make(chan struct{})
	s.Handle(http.MethodGet, "/admin/v1/slow", func(w http.ResponseWriter, r *http.Request) error {
		<-release
		return WriteJSON(w, map[string]bool{"done": true})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	req, _ := http.NewRequest(http.MethodGet, url+"/admin/v1/slow", nil)
	req.Header.Set("Authorization", "Bearer "+tokenA)
	got := make(chan int, 1)
	go func() {
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			got <- -1
			return
		}
		res.Body.Close()
		got <- res.StatusCode
	}()
	time.Sleep(100 * time.Millisecond)
	cancel() // shutdown begins while the request is in flight
	time.Sleep(100 * time.Millisecond)
	close(release)
	if code := <-got; code != 200 {
		t.Fatalf("in-flight request: %d, want 200", code)
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still listening after shutdown")
	}
}

func BenchmarkAuthorized(b *testing.B) {
	s, _ := New(Config{Listen: "127.0.0.1:0", Tokens: []string{tokenA, tokenB}}, nil)
	req := httptest.NewRequest(http.MethodGet, "/admin/v1/connections", nil)
	req.Header.Set("Authorization", "Bearer "+tokenB)
	b.ReportAllocs()
	for b.Loop() {
		if !s.authorized(req) {
			b.Fatal("refused")
		}
	}
}

func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer " + tokenA, "bearer " + tokenB, "Bearer ", "Basic x", "Bearer  " + tokenA + " ", ""} {
		f.Add(s)
	}
	s, _ := New(Config{Listen: "127.0.0.1:0", Tokens: []string{tokenA, tokenB}}, nil)
	f.Fuzz(func(t *testing.T, h string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Authorization"] = []string{h}
		if !s.authorized(req) {
			return
		}
		tok := strings.TrimSpace(h[7:])
		if !strings.EqualFold(h[:7], "bearer ") || (tok != tokenA && tok != tokenB) {
			t.Fatalf("accepted %q", h)
		}
	})
}
