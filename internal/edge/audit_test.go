package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/audit"
	"github.com/edgeproxy/edge/internal/limit"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// auditLine is one record as read back from the file; decoding refuses
// any other field.
type auditLine struct {
	Time      string `json:"time"`
	RequestID string `json:"request_id"`
	Subject   string `json:"subject"`
	Issuer    string `json:"issuer"`
	TokenID   string `json:"token_id"`
	Source    string `json:"source"`
	Key       string `json:"key"`
	Mode      string `json:"mode"`
	Method    string `json:"method"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	ClientIP  string `json:"client_ip"`
}

var auditFields = []string{"time", "request_id", "subject", "issuer", "token_id", "source", "key", "mode", "method", "status", "bytes", "client_ip"}

// readAudit parses the audit file: every line one record with exactly
// the twelve fields.
func readAudit(t testing.TB, path string) ([]auditLine, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if len(m) != len(auditFields) {
			t.Errorf("audit line has %d fields, want %d: %s", len(m), len(auditFields), sc.Text())
		}
		for _, f := range auditFields {
			if _, ok := m[f]; !ok {
				t.Errorf("audit line lacks %q: %s", f, sc.Text())
			}
		}
		var l auditLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out, string(data)
}

// auditConfig is baseConfig with the audit trail in a file under
// t.TempDir, a local limit of burst requests per subject, and three
// stream sources on upstreams that fail.
func auditConfig(t testing.TB, burst int) (*Config, string) {
	t.Helper()
	cfg := baseConfig(t)
	path := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	cfg.Audit = audit.Config{File: path}
	cfg.Limits = limit.Config{PerSubject: limit.PerSubject{Rate: 1, Burst: burst}}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(failing.Close)
	// Content-Length 1000, 10 bytes, then the connection closes: the
	// client has its 200 when the transfer breaks.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
		bw.Flush()
		c.Close()
	}))
	t.Cleanup(cut.Close)
	missing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(404)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
	}))
	t.Cleanup(missing.Close)
	for _, up := range []struct{ name, url string }{{"up-fail", failing.URL}, {"up-cut", cut.URL}, {"up-missing", missing.URL}} {
		cfg.Sources = append(cfg.Sources, SourceConfig{
			Name: up.name,
			Config: signer.Config{
				Provider: signer.ProviderS3, Bucket: "b", Region: "us-east-1", Endpoint: up.url, Addressing: "path",
				Credentials: signer.Credentials{Type: "static", AccessKeyID: testAKID, SecretAccessKey: testSecKey},
			},
			Mode: ModeStream,
		})
	}
	return cfg, path
}

// auditClaims are the test's claims with a jti.
func auditClaims(sub string, grants ...any) jwt.MapClaims {
	c := claims()
	c["sub"] = sub
	c["jti"] = "jti-" + sub
	c["grants"] = grants
	return c
}

func g(source, prefix string) any { return map[string]any{"source": source, "prefix": prefix} }

// noRedirects is a client that returns redirects instead of following them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// fetch sends one request to the edge at base over HTTP and returns the
// answer with its body read (a broken transfer is not an error here).
func fetch(t testing.TB, method, base, target string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var sigParam = regexp.MustCompile(`(?i)(?:x-amz-signature|sig|x-amz-credential)=([^&]+)`)

// TestAuditEveryOutcome: each object request, whatever its answer, leaves
// exactly one record with the right fields, through the real router and
// HTTP server; no record, log line or metric holds the token, its
// signature, the storage secret or a URL signature.
func TestAuditEveryOutcome(t *testing.T) {
	tok := signHS(t, auditClaims("annotator-17", g("customer-a", ""), g("local", ""), g("local-r", ""), g("up-fail", ""), g("up-cut", ""), g("up-missing", ""), g("nope", "")))
	narrow := signHS(t, auditClaims("annotator-18", g("customer-a", "datasets/42/")))
	forged := signWith(t, jwt.SigningMethodHS256, []byte("not-the-secret-0123456789abcdef0123"), "k1", auditClaims("mallory", g("customer-a", "")))
	type want struct {
		status                     int
		subject, source, key, mode string
		bytes                      int64
	}
	for _, tc := range []struct {
		name   string
		target string
		method string
		setup  int // identical requests before the one checked
		want   want
	}{
		{"302 redirect", "/v1/s/customer-a/cats/1.jpg?token=" + tok, "GET", 0, want{302, "annotator-17", "customer-a", "cats/1.jpg", "redirect", 0}},
		{"302 storage URL", "/v1/u?url=" + url.QueryEscape("s3://acme-images/images/cats/2.jpg") + "&token=" + tok, "GET", 0, want{302, "annotator-17", "customer-a", "cats/2.jpg", "redirect", 0}},
		{"200 stream", "/v1/s/local/a.txt?token=" + tok, "GET", 0, want{200, "annotator-17", "local", "a.txt", "stream", 12}},
		{"200 HEAD stream", "/v1/s/local/a.txt?token=" + tok, "HEAD", 0, want{200, "annotator-17", "local", "a.txt", "stream", 0}},
		{"400 bad reference", "/v1/s/customer-a/a/../b?token=" + tok, "GET", 0, want{400, "", "", "", "", -1}},
		{"401 no token", "/v1/s/customer-a/cats/1.jpg", "GET", 0, want{401, "", "customer-a", "cats/1.jpg", "", -1}},
		{"401 bad token", "/v1/s/customer-a/cats/1.jpg?token=" + forged, "GET", 0, want{401, "", "customer-a", "cats/1.jpg", "", -1}},
		{"403 no grant", "/v1/s/customer-a/cats/1.jpg?token=" + narrow, "GET", 0, want{403, "annotator-18", "customer-a", "cats/1.jpg", "", -1}},
		{"404 unknown source", "/v1/s/nope/x.jpg?token=" + tok, "GET", 0, want{404, "annotator-17", unknownSource, "x.jpg", "", -1}},
		{"404 object missing, stream", "/v1/s/local/missing.txt?token=" + tok, "GET", 0, want{404, "annotator-17", "local", "missing.txt", "stream", -1}},
		{"404 object missing, storage", "/v1/s/up-missing/gone.bin?token=" + tok, "GET", 0, want{404, "annotator-17", "up-missing", "gone.bin", "stream", -1}},
		{"405 method", "/v1/s/customer-a/cats/1.jpg?token=" + tok, "DELETE", 0, want{405, "", "", "", "", -1}},
		{"429 rate limited", "/v1/s/customer-a/cats/1.jpg?token=" + tok, "GET", 2, want{429, "annotator-17", "customer-a", "cats/1.jpg", "", -1}},
		{"502 storage error", "/v1/s/up-fail/k.bin?token=" + tok, "GET", 0, want{502, "annotator-17", "up-fail", "k.bin", "stream", -1}},
		{"502 aborted stream", "/v1/s/up-cut/k.bin?token=" + tok, "GET", 0, want{502, "annotator-17", "up-cut", "k.bin", "stream", 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, path := auditConfig(t, 2)
			logs := &lockedBuffer{}
			e := newEnv(t, cfg, withLogger(bufferLogger(logs)))
			ts := httptest.NewServer(e.h)
			var resp *http.Response
			var body string
			for range tc.setup + 1 {
				resp, body = fetch(t, tc.method, ts.URL, tc.target, nil)
			}
			if resp.StatusCode != tc.want.status && !(tc.want.status == 502 && tc.want.bytes > 0 && resp.StatusCode == 200) {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want.status, body)
			}
			if tc.want.status == 429 {
				if ra := resp.Header.Get("Retry-After"); ra != "1" {
					t.Errorf("Retry-After %q, want 1", ra)
				}
				if !strings.Contains(body, `"error":"rate_limited"`) {
					t.Errorf("body %s, want rate_limited", body)
				}
			}
			_, metricsBody := fetch(t, "GET", ts.URL, "/metrics", nil)
			ts.Close()
			e.srv.Close()
			recs, raw := readAudit(t, path)
			if len(recs) != tc.setup+1 {
				t.Fatalf("%d records for %d requests:\n%s", len(recs), tc.setup+1, raw)
			}
			r := recs[len(recs)-1]
			w := tc.want
			issuer, jti := "", ""
			if w.subject != "" {
				issuer, jti = testIssuer, "jti-"+w.subject
			}
			if r.Status != w.status || r.Subject != w.subject || r.Issuer != issuer || r.TokenID != jti ||
				r.Source != w.source || r.Key != w.key || r.Mode != w.mode || r.Method != tc.method || r.ClientIP != "127.0.0.1" {
				t.Errorf("record %+v, want %+v (issuer %q, jti %q, method %s, client 127.0.0.1)", r, w, issuer, jti, tc.method)
			}
			if w.bytes >= 0 && r.Bytes != w.bytes {
				t.Errorf("bytes %d, want %d", r.Bytes, w.bytes)
			}
			if r.RequestID == "" || r.RequestID != resp.Header.Get("X-Request-Id") {
				t.Errorf("request_id %q, want the answer's X-Request-Id %q", r.RequestID, resp.Header.Get("X-Request-Id"))
			}
			if ts, err := time.Parse(time.RFC3339Nano, r.Time); err != nil || !ts.Equal(t0) {
				t.Errorf("time %q, want %s (the injected clock)", r.Time, t0.Format(time.RFC3339))
			}
			if !strings.Contains(logs.String(), `"request_id":"`+r.RequestID+`"`) {
				t.Errorf("the access log lacks request_id %s", r.RequestID)
			}
			secrets := []string{tok, narrow, forged, testSecret, testSecKey}
			for _, m := range sigParam.FindAllStringSubmatch(resp.Header.Get("Location"), -1) {
				secrets = append(secrets, m[1])
			}
			for _, s := range secrets {
				assertNoSecret(t, "audit file", raw, s)
				assertNoSecret(t, "access log", logs.String(), s)
				assertNoSecret(t, "metrics", metricsBody, s)
			}
		})
	}
}

// TestAuditFileURL: the edge-signed /v1/f URL a file source redirects to
// is audited too: no subject (no token), the key, and its signature
// nowhere in the record.
func TestAuditFileURL(t *testing.T) {
	cfg, path := auditConfig(t, 10)
	e := newEnv(t, cfg)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	tok := tokenAll(t)
	resp, _ := fetch(t, "GET", ts.URL, "/v1/s/local-r/cats/1.jpg?token="+tok, nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 302 || !strings.HasPrefix(loc, "/v1/f/local-r/cats/1.jpg?") {
		t.Fatalf("got %d Location %q", resp.StatusCode, loc)
	}
	resp, body := fetch(t, "GET", ts.URL, loc, nil)
	if resp.StatusCode != 200 || body != fixtureFiles["files/cats/1.jpg"] {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	resp, _ = fetch(t, "GET", ts.URL, strings.Replace(loc, "sig=", "sig=AA", 1), nil)
	if resp.StatusCode != 403 {
		t.Fatalf("tampered: %d, want 403", resp.StatusCode)
	}
	ts.Close()
	e.srv.Close()
	recs, raw := readAudit(t, path)
	if len(recs) != 3 {
		t.Fatalf("%d records for 3 requests:\n%s", len(recs), raw)
	}
	for i, want := range []auditLine{
		{Subject: "annotator-17", Issuer: testIssuer, Source: "local-r", Key: "cats/1.jpg", Mode: "redirect", Method: "GET", Status: 302},
		{Source: "local-r", Key: "cats/1.jpg", Mode: "redirect", Method: "GET", Status: 200, Bytes: int64(len(fixtureFiles["files/cats/1.jpg"]))},
		{Source: "local-r", Key: "cats/1.jpg", Method: "GET", Status: 403},
	} {
		got := recs[i]
		got.Time, got.RequestID, got.ClientIP = "", "", ""
		if got.Status >= 400 {
			got.Bytes = 0 // the JSON error body's length
		}
		if got != want {
			t.Errorf("record %d: %+v, want %+v", i, got, want)
		}
	}
	for _, m := range sigParam.FindAllStringSubmatch(loc, -1) {
		assertNoSecret(t, "audit file", raw, m[1])
	}
	assertNoSecret(t, "audit file", raw, tok)
}

// TestAuditClientIP: X-Forwarded-For is believed only from a trusted
// proxy (the same server.trusted_proxies that vouch for X-Request-Id),
// and then its right-most untrusted entry is the client.
func TestAuditClientIP(t *testing.T) {
	cfg, path := auditConfig(t, 100)
	cfg.Server.TrustedProxies = []string{"192.0.2.0/24", "10.0.0.0/8"}
	e := newEnv(t, cfg)
	tok := tokenAll(t)
	cases := []struct {
		name, remote string
		xff          []string
		reqID        string
		client       string
		idKept       bool
	}{
		{"untrusted peer, header ignored", "198.51.100.7:5000", []string{"203.0.113.9"}, "lb-1", "198.51.100.7", false},
		{"trusted peer, right-most untrusted", "192.0.2.1:1234", []string{"6.6.6.6, 203.0.113.9, 10.1.2.3"}, "lb-2", "203.0.113.9", true},
		{"trusted peer, several lines", "192.0.2.1:1234", []string{"6.6.6.6", "198.51.100.20:443, 10.9.9.9"}, "lb-3", "198.51.100.20", true},
		{"trusted peer, garbage stops the walk", "192.0.2.1:1234", []string{"203.0.113.9, bogus, 10.0.0.5"}, "lb-4", "10.0.0.5", true},
		{"trusted peer, no header", "192.0.2.1:1234", nil, "", "192.0.2.1", false},
		{"IPv6 peer, untrusted", "[2001:db8::7]:5000", []string{"203.0.113.9"}, "", "2001:db8::7", false},
	}
	var ids []string
	for _, tc := range cases {
		req := httptest.NewRequest("GET", "/v1/s/customer-a/cats/1.jpg?token="+tok, nil)
		req.RemoteAddr = tc.remote
		if tc.xff != nil {
			req.Header["X-Forwarded-For"] = tc.xff
		}
		if tc.reqID != "" {
			req.Header.Set("X-Request-Id", tc.reqID)
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code != 302 {
			t.Fatalf("%s: %d %s", tc.name, w.Code, w.Body)
		}
		ids = append(ids, w.Header().Get("X-Request-Id"))
	}
	e.srv.Close()
	recs, raw := readAudit(t, path)
	if len(recs) != len(cases) {
		t.Fatalf("%d records for %d requests:\n%s", len(recs), len(cases), raw)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if recs[i].ClientIP != tc.client {
				t.Errorf("client_ip %q, want %q", recs[i].ClientIP, tc.client)
			}
			if recs[i].RequestID != ids[i] || (recs[i].RequestID == tc.reqID) != tc.idKept {
				t.Errorf("request_id %q (answer's %q), want the proxy's %q kept: %v", recs[i].RequestID, ids[i], tc.reqID, tc.idKept)
			}
		})
	}
}

// TestRateLimit: past its burst a subject gets 429 rate_limited with
// Retry-After in whole seconds, through the one error renderer; another
// subject is unaffected; the budget refills with the (injected) clock;
// refusals are counted by source.
func TestRateLimit(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Limits = limit.Config{PerSubject: limit.PerSubject{Rate: 0.5, Burst: 3}}
	e := newEnv(t, cfg)
	alice := signHS(t, auditClaims("alice", g("customer-a", ""), g("customer-b", "")))
	bob := signHS(t, auditClaims("bob", g("customer-a", "")))
	for i := range 3 {
		if w := e.get("/v1/s/customer-a/k" + strconv.Itoa(i) + ".jpg?token=" + alice); w.Code != 302 {
			t.Fatalf("alice's request %d: %d %s", i, w.Code, w.Body)
		}
	}
	// Another source, same subject: one budget per subject.
	w := e.get("/v1/s/customer-b/k.jpg?token=" + alice)
	wantError(t, w, 429, "rate_limited", alice)
	if ra := w.Header().Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q, want 2 (one request at 0.5/s)", ra)
	}
	if w.Header().Get("Location") != "" {
		t.Error("a refused request got a Location")
	}
	for i := range 3 {
		if w := e.get("/v1/s/customer-a/k.jpg?token=" + bob); w.Code != 302 {
			t.Fatalf("bob's request %d: %d, want 302 (his own budget)", i, w.Code)
		}
	}
	// A token without a subject's budget spent on an unknown source:
	// 404 before the limiter, never a label of the client's choosing.
	if w := e.get("/v1/s/nope/k.jpg?token=" + alice); w.Code != 404 {
		t.Errorf("unknown source: %d, want 404", w.Code)
	}
	e.clk.Add(2 * time.Second)
	if w := e.get("/v1/s/customer-a/k.jpg?token=" + alice); w.Code != 302 {
		t.Errorf("after 2s: %d, want 302 (one request refilled)", w.Code)
	}
	if w := e.get("/v1/s/customer-a/k.jpg?token=" + alice); w.Code != 429 {
		t.Errorf("again: %d, want 429", w.Code)
	}
	// /v1/u shares the budget.
	if w := e.get("/v1/u?url=" + url.QueryEscape("s3://acme-images/images/k.jpg") + "&token=" + alice); w.Code != 429 {
		t.Errorf("/v1/u: %d, want 429", w.Code)
	}
	m := e.srv.metrics.reg
	n, err := testutil.GatherAndCount(m, "edge_limit_limited_total")
	if err != nil || n != 2 {
		t.Errorf("edge_limit_limited_total series %d (%v), want 2 (customer-a and customer-b)", n, err)
	}
	w = e.get("/metrics")
	for _, line := range []string{`edge_limit_limited_total{source="customer-a"} 2`, `edge_limit_limited_total{source="customer-b"} 1`, `edge_limit_redis_up 0`} {
		if !strings.Contains(w.Body.String(), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	assertNoSecret(t, "metrics", w.Body.String(), alice)
}

// TestStreamBytesPerSecond: limits.per_subject.bytes_per_second slows a
// subject's stream-mode copy, from a file source (whose sendfile it must
// not bypass) and from storage, but never cuts it, even when the copy
// takes longer than server.write_timeout.
func TestStreamBytesPerSecond(t *testing.T) {
	dir := t.TempDir()
	body := bytes.Repeat([]byte("0123456789abcdef"), 6<<10) // 96 KiB
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer up.Close()
	cfg := baseConfig(t)
	cfg.Server.WriteTimeout = 300 * time.Millisecond
	cfg.Sources = append(cfg.Sources, fileSource("slow", dir, "", ModeStream), SourceConfig{
		Name: "slow-s3",
		Config: signer.Config{
			Provider: signer.ProviderS3, Bucket: "b", Region: "us-east-1", Endpoint: up.URL, Addressing: "path",
			Credentials: signer.Credentials{Type: "static", AccessKeyID: testAKID, SecretAccessKey: testSecKey},
		},
		Mode: ModeStream,
	})
	cfg.Limits = limit.Config{PerSubject: limit.PerSubject{BytesPerSecond: 64 << 10, BytesBurst: 32 << 10}}
	e := newEnv(t, cfg)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	for i, src := range []string{"slow", "slow-s3"} {
		// A subject per source: the budget is per subject.
		tok := signHS(t, auditClaims("viewer-"+strconv.Itoa(i), g(src, "")))
		start := time.Now()
		resp, got := fetch(t, "GET", ts.URL, "/v1/s/"+src+"/big.bin?token="+tok, nil)
		took := time.Since(start)
		if resp.StatusCode != 200 || got != string(body) {
			t.Fatalf("%s: got %d, %d of %d bytes in %v", src, resp.StatusCode, len(got), len(body), took)
		}
		// 96 KiB with a 32 KiB burst at 64 KiB/s: at least one second,
		// three times write_timeout.
		if took < 900*time.Millisecond {
			t.Errorf("%s: 96 KiB at 64 KiB/s (32 KiB burst) took %v, want about 1s", src, took)
		}
	}
}

// TestRedisSharedBudget: two edge servers (two replicas) on one real
// Redis share one budget per subject; with Redis gone each falls back to
// its own, and edge_limit_redis_up says so.
func TestRedisSharedBudget(t *testing.T) {
	rs := startRedis(t)
	tok := signHS(t, auditClaims("fleet-user", g("customer-a", "")))
	var servers []*env
	for range 2 {
		cfg := baseConfig(t)
		cfg.Limits = limit.Config{PerSubject: limit.PerSubject{Rate: 1, Burst: 6}, Redis: rs.URL}
		servers = append(servers, newEnv(t, cfg))
	}
	allowed := 0
	for i := range 20 {
		w := servers[i%2].get("/v1/s/customer-a/k.jpg?token=" + tok)
		switch w.Code {
		case 302:
			allowed++
		case 429:
			if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After %q, want whole seconds ≥ 1", w.Header().Get("Retry-After"))
			}
		default:
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	// Burst 6 at 1/s on Redis's clock: 6, or 7 if a second turned.
	if allowed < 6 || allowed > 7 {
		t.Errorf("%d of 20 allowed across two servers, want 6 (one shared budget)", allowed)
	}
	for _, e := range servers {
		if v := metricValue(t, e, "edge_limit_redis_up"); v != 1 {
			t.Errorf("edge_limit_redis_up %v, want 1", v)
		}
	}
	rs.Kill()
	// Each server now limits on its own local budget (full: it was not
	// used while Redis decided).
	for i, e := range servers {
		local := 0
		for range 10 {
			if w := e.get("/v1/s/customer-a/k.jpg?token=" + tok); w.Code == 302 {
				local++
			}
		}
		if local != 6 {
			t.Errorf("server %d allowed %d of 10 with Redis down, want its local burst of 6", i, local)
		}
		if v := metricValue(t, e, "edge_limit_redis_up"); v != 0 {
			t.Errorf("server %d: edge_limit_redis_up %v with Redis down, want 0", i, v)
		}
		assertNoSecret(t, "metrics", e.get("/metrics").Body.String(), redisTestPassword)
	}
}

// metricValue reads one unlabelled gauge or counter from e's registry.
func metricValue(t testing.TB, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.srv.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.Gauge != nil {
			return m.Gauge.GetValue()
		}
		return m.Counter.GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// blockingWriter is audit.file "-"'s stdout that holds every write until
// released, so the audit queue fills behind it.
type blockingWriter struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *blockingWriter) lines() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Count(w.buf.Bytes(), []byte("\n"))
}

// TestRunFlushesAuditQueue: with the writer stuck and the queue full,
// cancelling Run's context (what SIGTERM does in cmd/edge) does not
// return before every queued record is written.
func TestRunFlushesAuditQueue(t *testing.T) {
	const queue = 64
	cfg := baseConfig(t)
	cfg.Audit = audit.Config{File: "-", Queue: queue}
	cfg.Server.ShutdownTimeout = 10 * time.Second
	out := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	e := newEnv(t, cfg, func(o *Options) { o.AuditStdout = out })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Run(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	tok := tokenAll(t)
	fetch(t, "GET", base, "/v1/s/customer-a/first.jpg?token="+tok, nil)
	select {
	case <-out.entered: // the writer holds the first record
	case <-time.After(10 * time.Second):
		t.Fatal("the audit writer never wrote")
	}
	for i := range queue {
		if resp, _ := fetch(t, "GET", base, "/v1/s/customer-a/"+strconv.Itoa(i)+".jpg?token="+tok, nil); resp.StatusCode != 302 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if d := metricValue(t, e, "edge_audit_queue_depth"); d != queue {
		t.Fatalf("edge_audit_queue_depth %v, want %d (full)", d, queue)
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while %d records were still queued", err, queue)
	case <-time.After(300 * time.Millisecond):
	}
	close(out.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the writer was released")
	}
	if n := out.lines(); n != queue+1 {
		t.Errorf("%d records written at shutdown, want %d", n, queue+1)
	}
	if n := counterByResult(t, e, "edge_audit_records_total", "dropped"); n != 0 {
		t.Errorf("%v records dropped", n)
	}
}

// counterByResult reads name{result=result} from e's registry.
func counterByResult(t testing.TB, e *env, name, result string) float64 {
	t.Helper()
	mfs, err := e.srv.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

const redisTestPassword = "redis-edge-SECRET-7a1c"

func startRedis(t testing.TB) *testenv.Redis { return testenv.StartRedis(t, redisTestPassword) }

// readmeRecord is the record README.md shows; TestAuditRecordShape
// writes it (but for the request id's random prefix).
const readmeRecord = `{"time":"2026-03-01T12:00:00.000Z","request_id":"ql7rad13-000000000000","subject":"annotator-17","issuer":"https://app.example.com","token_id":"jti-annotator-17","source":"customer-a","key":"datasets/42/frames/000123.jpg","mode":"redirect","method":"GET","status":302,"bytes":0,"client_ip":"198.51.100.4"}` + "\n"

// TestAuditRecordShape: the exact line of a redirect behind a trusted
// proxy, byte for byte as README.md shows it.
func TestAuditRecordShape(t *testing.T) {
	cfg, path := auditConfig(t, 10)
	cfg.Server.TrustedProxies = []string{"10.0.0.0/8"}
	e := newEnv(t, cfg)
	tok := signHS(t, auditClaims("annotator-17", g("customer-a", "datasets/42/")))
	req := httptest.NewRequest("GET", "/v1/s/customer-a/datasets/42/frames/000123.jpg?token="+tok, nil)
	req.RemoteAddr = "10.0.3.7:41000"
	req.Header.Set("X-Forwarded-For", "198.51.100.4, 10.0.1.2")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	e.srv.Close()
	_, raw := readAudit(t, path)
	id := w.Header().Get("X-Request-Id")
	if want := strings.Replace(readmeRecord, "ql7rad13-000000000000", id, 1); raw != want {
		t.Errorf("record\n%s\nwant (README.md)\n%s", raw, want)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), readmeRecord) {
		t.Error("README.md no longer shows the record this test writes")
	}
}

// TestAuditWebhook: with audit.webhook the records are POSTed as JSON
// lines (here the only sink), delivered by Close; the webhook's secret
// (in its query) is in no log line.
func TestAuditWebhook(t *testing.T) {
	const hookSecret = "hook-SECRET-4b1d"
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("key") != hookSecret || r.Header.Get("Content-Type") != "application/x-ndjson" || r.Header.Get("X-Edge-Audit-Batch") == "" {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got = append(got, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := baseConfig(t)
	cfg.Audit = audit.Config{Webhook: hook.URL + "/audit?key=" + hookSecret}
	logs := &lockedBuffer{}
	e := newEnv(t, cfg, withLogger(bufferLogger(logs)))
	tok := tokenAll(t)
	for _, target := range []string{"/v1/s/customer-a/a.jpg?token=" + tok, "/v1/s/customer-a/b.jpg", "/healthz"} {
		e.get(target)
	}
	e.srv.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !strings.Contains(got[0], `"key":"a.jpg"`) || !strings.Contains(got[1], `"status":401`) {
		t.Errorf("webhook got %d records, want the two object requests:\n%s", len(got), strings.Join(got, "\n"))
	}
	if n := counterByResult(t, e, "edge_audit_webhook_records_total", "delivered"); n != 2 {
		t.Errorf("edge_audit_webhook_records_total{result=delivered} %v, want 2", n)
	}
	assertNoSecret(t, "access log", logs.String(), hookSecret)
	assertNoSecret(t, "webhook records", strings.Join(got, "\n"), tok)
}

// TestAuditRefusedBody: an object request refused before routing (a
// body, which no route takes) is audited too; a request elsewhere is not.
func TestAuditRefusedBody(t *testing.T) {
	cfg, path := auditConfig(t, 10)
	e := newEnv(t, cfg)
	for _, target := range []string{"/v1/s/customer-a/x.jpg", "/v1/u", "/v1/f/local-r/a.txt", "/healthz", "/v1/session"} {
		req := httptest.NewRequest("GET", target, strings.NewReader("body"))
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code != 400 {
			t.Fatalf("%s: %d, want 400", target, w.Code)
		}
	}
	e.srv.Close()
	recs, raw := readAudit(t, path)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3 (the object routes):\n%s", len(recs), raw)
	}
	for _, r := range recs {
		if r.Status != 400 || r.Method != "GET" || r.Key != "" || r.Subject != "" {
			t.Errorf("record %+v, want a bare 400", r)
		}
	}
}

func TestAuditKey(t *testing.T) {
	long := strings.Repeat("a", 1023) + "é" + "tail" // é straddles byte 1024
	for _, tc := range []struct{ name, in, want string }{
		{"short", "cats/1.jpg", "cats/1.jpg"},
		{"at the limit", strings.Repeat("k", 1024), strings.Repeat("k", 1024)},
		{"cut at a character boundary", long, strings.Repeat("a", 1023) + "…(cut)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := auditKey(tc.in); got != tc.want {
				t.Errorf("auditKey: %d bytes %q…, want %d bytes", len(got), got[:min(len(got), 16)], len(tc.want))
			}
		})
	}
}

// TestAuditClientGone: a client that leaves mid-stream leaves a 499
// record with the bytes it was sent.
func TestAuditClientGone(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1<<30))
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	defer up.Close()
	cfg, path := auditConfig(t, 10)
	cfg.Sources = append(cfg.Sources, SourceConfig{
		Name: "endless",
		Config: signer.Config{
			Provider: signer.ProviderS3, Bucket: "b", Region: "us-east-1", Endpoint: up.URL, Addressing: "path",
			Credentials: signer.Credentials{Type: "static", AccessKeyID: testAKID, SecretAccessKey: testSecKey},
		},
		Mode: ModeStream,
	})
	e := newEnv(t, cfg)
	ts := httptest.NewServer(e.h)
	tok := signHS(t, auditClaims("leaver", g("endless", "")))
	resp, err := http.Get(ts.URL + "/v1/s/endless/video.mp4?token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the client goes away
	// The handler ends when its next write fails.
	ok := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if metricValue(t, e, "edge_audit_queue_depth") == 0 && counterByResult(t, e, "edge_audit_records_total", "written") == 1 {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("no record 10s after the client left")
	}
	ts.Close()
	e.srv.Close()
	recs, raw := readAudit(t, path)
	if len(recs) != 1 || recs[0].Status != 499 || recs[0].Bytes < 100<<10 || recs[0].Subject != "leaver" || recs[0].Key != "video.mp4" {
		t.Errorf("records %+v, want one 499 for leaver's video.mp4 with at least 100 KiB sent:\n%s", recs, raw)
	}
}
