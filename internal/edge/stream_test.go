package edge_test

// Stream mode end to end: the edge runs as it does in production (Run on
// a loopback listener) in front of a real versitygw, or of an httptest
// upstream where a fault or a header must be staged precisely.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const streamSecret = "stream-test-hs256-secret-0123456789abcdef"

// streamSrc is one source of a stream test config.
type streamSrc struct {
	name, endpoint, bucket, prefix string
	access, secret                 string
	extra                          string // more YAML lines of the source, indented by 4
}

func (s streamSrc) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    provider: s3\n    mode: stream\n    bucket: %s\n    endpoint: %q\n    addressing: path\n    prefix: %q\n",
		s.name, s.bucket, s.endpoint, s.prefix)
	fmt.Fprintf(&b, "    credentials: {type: static, access_key_id: %q, secret_access_key: %q}\n", s.access, s.secret)
	b.WriteString(s.extra)
	return b.String()
}

// streamEdge is a running edge in front of some sources.
type streamEdge struct {
	srv    *edge.Server
	cfg    *edge.Config
	url    string
	token  string
	logs   *observer.ObservedLogs
	client *http.Client
	stop   context.CancelFunc // as SIGTERM: Run shuts down gracefully
}

// startStreamEdge parses a config the way `edge serve` does (env expands
// ${VAR}) and runs the server on a loopback port until the test ends.
func startStreamEdge(t testing.TB, streamYAML string, env map[string]string, srcs ...streamSrc) *streamEdge {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: \"127.0.0.1:0\"\nlog: {level: debug}\nserver: {shutdown_timeout: 2s}\n")
	fmt.Fprintf(&b, "auth:\n  keys: [{id: k1, alg: HS256, secret: %q}]\n", streamSecret)
	b.WriteString("cors: {allowed_origins: [\"http://app.localhost:*\"]}\n")
	if streamYAML != "" {
		b.WriteString("stream: " + streamYAML + "\n")
	}
	b.WriteString("sources:\n")
	var grants []auth.Grant
	for _, s := range srcs {
		b.WriteString(s.yaml())
		grants = append(grants, auth.Grant{Source: s.name})
	}
	cfg, err := edge.ParseConfig([]byte(b.String()), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, b.String())
	}
	core, logs := observer.New(zapcore.DebugLevel)
	srv, err := edge.New(context.Background(), cfg, edge.Options{Logger: zap.New(core)})
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("edge did not shut down within 10s")
		}
		srv.Close()
	})
	tok, err := auth.Mint(cfg.Auth, auth.MintOptions{Subject: "annotator-7", Grants: grants, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := &streamEdge{srv: srv, cfg: cfg, url: "http://" + ln.Addr().String(), token: tok, logs: logs,
		client: &http.Client{Transport: tr, Timeout: 60 * time.Second}, stop: cancel}
	// Serving once /healthz answers (on a connection that does not stay).
	once := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	if !eventually(5*time.Second, func() bool {
		resp, err := once.Get(e.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatal("the edge did not answer /healthz within 5s")
	}
	return e
}

// settledGoroutines returns runtime.NumGoroutine once two readings 50ms
// apart agree (goroutines of finished work take a moment to exit).
func settledGoroutines() int {
	last := runtime.NumGoroutine()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == last {
			return n
		}
		last = n
	}
	return last
}

// do sends method path (under /v1/s/) with the token as a bearer header.
func (e *streamEdge) do(t testing.TB, method, path string, hdr http.Header) *http.Response {
	t.Helper()
	resp, err := e.doCtx(context.Background(), method, path, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func (e *streamEdge) doCtx(ctx context.Context, method, path string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.url+"/v1/s/"+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	return e.client.Do(req)
}

// get reads the whole answer.
func (e *streamEdge) get(t testing.TB, method, path string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	resp := e.do(t, method, path, hdr)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, body
}

// wantStreamError checks a JSON error answer.
func wantStreamError(t testing.TB, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	var e struct{ Error, Message string }
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != status || e.Error != code {
		t.Fatalf("got %d %s, want %d with error %q", resp.StatusCode, body, status, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
}

// metric returns the value of an unlabelled sample on /metrics.
func (e *streamEdge) metric(t testing.TB, name string) float64 {
	t.Helper()
	resp, err := e.client.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("/metrics has no sample %s", name)
	return 0
}

// assertLogsFree fails when a log line of e mentions any secret.
func (e *streamEdge) assertLogsFree(t testing.TB, secrets ...string) {
	t.Helper()
	for _, ent := range e.logs.All() {
		line := ent.Message + " " + fmt.Sprint(ent.ContextMap())
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("a log line contains the secret %.6s…: %s", s, line)
			}
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestStreamVersity: stream mode against a real S3 server that checks
// signatures: bytes, every Range form, conditionals, HEAD, CORS, a missing
// key, refused credentials, SSE-C headers, metrics, and logs free of
// secrets.
func TestStreamVersity(t *testing.T) {
	t.Parallel()
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	obj := randomBytes(300<<10 + 17) // several copy buffers, not a multiple of one
	n := len(obj)
	_, err := v.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("media"), Key: aws.String("clips/a.mp4"), Body: bytes.NewReader(obj), ContentType: aws.String("video/mp4"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// In the past, so If-Modified-Since: Last-Modified is a real 304.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(filepath.Join(v.Dir, "media", "clips", "a.mp4"), past, past); err != nil {
		t.Fatal(err)
	}
	sseKey := base64.StdEncoding.EncodeToString(randomBytes(32))
	e := startStreamEdge(t, "", map[string]string{"SSE_KEY": sseKey},
		streamSrc{name: "media", endpoint: v.Endpoint, bucket: "media", prefix: "clips/", access: v.AccessKey, secret: v.SecretKey},
		streamSrc{name: "wrongkey", endpoint: v.Endpoint, bucket: "media", prefix: "clips/", access: v.AccessKey, secret: "not-the-secret-key"},
		streamSrc{name: "enc", endpoint: v.Endpoint, bucket: "media", prefix: "clips/", access: v.AccessKey, secret: v.SecretKey,
			extra: "    sse_c_key: \"${SSE_KEY}\"\n"},
	)

	var etag string
	t.Run("full", func(t *testing.T) {
		resp, body := e.get(t, "GET", "media/a.mp4", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, obj) {
			t.Fatalf("got %d and %d bytes, want 200 and the object's %d", resp.StatusCode, len(body), n)
		}
		for k, want := range map[string]string{
			"Content-Type": "video/mp4", "Content-Length": strconv.Itoa(n), "Accept-Ranges": "bytes",
			"Cache-Control": "private", "Last-Modified": past.UTC().Format(http.TimeFormat),
			"X-Content-Type-Options": "nosniff",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if etag = resp.Header.Get("ETag"); len(etag) < 3 || etag[0] != '"' {
			t.Errorf("ETag = %q, want a quoted entity tag", etag)
		}
		if resp.Header.Get("X-Amz-Request-Id") != "" || resp.Header.Get("Server") == "VERSITYGW" {
			t.Error("storage's own headers reached the client")
		}
	})

	t.Run("ranges", func(t *testing.T) {
		for _, tc := range []struct {
			rng        string
			start, end int // inclusive
		}{
			{"bytes=0-0", 0, 0},
			{"bytes=100-70000", 100, 70000},
			{fmt.Sprintf("bytes=%d-", n-1000), n - 1000, n - 1},
			{"bytes=-4096", n - 4096, n - 1},
			{fmt.Sprintf("bytes=%d-%d", n-10, n+5000), n - 10, n - 1}, // end past the object: clamped
		} {
			t.Run(tc.rng, func(t *testing.T) {
				resp, body := e.get(t, "GET", "media/a.mp4", http.Header{"Range": {tc.rng}})
				wantCR := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, n)
				if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != wantCR {
					t.Fatalf("got %d Content-Range %q, want 206 %q", resp.StatusCode, resp.Header.Get("Content-Range"), wantCR)
				}
				if !bytes.Equal(body, obj[tc.start:tc.end+1]) {
					t.Fatalf("got %d bytes, not the slice [%d, %d]", len(body), tc.start, tc.end)
				}
				if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(tc.end-tc.start+1) {
					t.Errorf("Content-Length %s, want %d", got, tc.end-tc.start+1)
				}
			})
		}
	})

	t.Run("storage_url", func(t *testing.T) {
		// /v1/u names the object as the platform stores it; the first
		// source of the bucket whose prefix covers the key serves it.
		req, _ := http.NewRequest("GET", e.url+"/v1/u?url="+url.QueryEscape(v.Endpoint+"/media/clips/a.mp4"), nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Range", "bytes=1000-1999")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 206 || !bytes.Equal(body, obj[1000:2000]) {
			t.Fatalf("got %d, %d bytes, %v: want 206 and the slice", resp.StatusCode, len(body), err)
		}
	})

	t.Run("unsatisfiable", func(t *testing.T) {
		resp, body := e.get(t, "GET", "media/a.mp4", http.Header{"Range": {fmt.Sprintf("bytes=%d-", n+10)}})
		wantStreamError(t, resp, body, 416, "range_not_satisfiable")
		if bytes.Contains(body, []byte("ActualObjectSize")) {
			t.Errorf("storage's XML error reached the client: %s", body)
		}
	})

	t.Run("conditional", func(t *testing.T) {
		if etag == "" {
			t.Skip("no ETag from the full GET")
		}
		for _, tc := range []struct {
			name string
			hdr  http.Header
			want int
		}{
			{"if_none_match", http.Header{"If-None-Match": {etag}}, 304},
			{"if_none_match_other", http.Header{"If-None-Match": {`"other"`}}, 200},
			{"if_modified_since", http.Header{"If-Modified-Since": {past.UTC().Format(http.TimeFormat)}}, 304},
			{"if_modified_since_older", http.Header{"If-Modified-Since": {past.Add(-time.Hour).UTC().Format(http.TimeFormat)}}, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := e.get(t, "GET", "media/a.mp4", tc.hdr)
				if resp.StatusCode != tc.want {
					t.Fatalf("got %d, want %d", resp.StatusCode, tc.want)
				}
				if tc.want == 304 {
					if len(body) != 0 {
						t.Errorf("304 with a %d-byte body", len(body))
					}
					// versitygw answers 304 with no ETag (and an
					// application/xml Content-Type, which the edge drops).
					if ct := resp.Header.Get("Content-Type"); ct != "" {
						t.Errorf("304 carries Content-Type %q", ct)
					}
					if cc := resp.Header.Get("Cache-Control"); cc != "private" {
						t.Errorf("304 Cache-Control %q, want private", cc)
					}
				} else if !bytes.Equal(body, obj) {
					t.Errorf("200 without the object's bytes")
				}
			})
		}
	})

	t.Run("head", func(t *testing.T) {
		resp, body := e.get(t, "HEAD", "media/a.mp4", nil)
		if resp.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("got %d with %d body bytes, want 200 and none", resp.StatusCode, len(body))
		}
		if resp.ContentLength != int64(n) || resp.Header.Get("Content-Type") != "video/mp4" || resp.Header.Get("ETag") != etag ||
			resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("Last-Modified") == "" {
			t.Fatalf("HEAD headers incomplete: %v", resp.Header)
		}
		resp, body = e.get(t, "HEAD", "media/a.mp4", http.Header{"Range": {"bytes=10-19"}})
		if resp.StatusCode != 206 || len(body) != 0 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", n) {
			t.Fatalf("HEAD with Range: %d %v", resp.StatusCode, resp.Header)
		}
	})

	t.Run("missing", func(t *testing.T) {
		resp, body := e.get(t, "GET", "media/nope.mp4", nil)
		wantStreamError(t, resp, body, 404, "object_not_found")
		resp, body = e.get(t, "HEAD", "media/nope.mp4", nil)
		if resp.StatusCode != 404 || len(body) != 0 {
			t.Fatalf("HEAD of a missing key: %d with %d bytes", resp.StatusCode, len(body))
		}
	})

	t.Run("denied", func(t *testing.T) {
		start := time.Now()
		resp, body := e.get(t, "GET", "wrongkey/a.mp4", nil)
		wantStreamError(t, resp, body, 502, "storage_denied")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})

	t.Run("cors", func(t *testing.T) {
		resp, body := e.get(t, "GET", "media/a.mp4", http.Header{"Origin": {"http://app.localhost:5173"}, "Range": {"bytes=0-9"}})
		if resp.StatusCode != 206 || len(body) != 10 {
			t.Fatalf("got %d with %d bytes", resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://app.localhost:5173" {
			t.Fatalf("Access-Control-Allow-Origin = %q", got)
		}
		exposed := map[string]bool{}
		for _, h := range strings.Split(resp.Header.Get("Access-Control-Expose-Headers"), ",") {
			exposed[http.CanonicalHeaderKey(strings.TrimSpace(h))] = true
		}
		for _, h := range []string{"Content-Range", "Content-Length", "Accept-Ranges", "Etag"} {
			if !exposed[h] {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", resp.Header.Get("Access-Control-Expose-Headers"), h)
			}
		}
		resp, _ = e.get(t, "GET", "media/a.mp4", http.Header{"Origin": {"https://evil.example"}, "Range": {"bytes=0-9"}})
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("an unlisted origin got Access-Control-Allow-Origin %q", got)
		}
	})

	// versitygw v1.8.0 does not implement SSE-C: it accepts the headers,
	// stores plaintext and serves it without a key. It does check the
	// presigned signature, which covers the three SSE-C headers, so a 200
	// here proves the edge sent exactly the headers it signed, and the 403
	// without them proves they are signed, not decoration.
	// TestStreamSSECHeaders checks their values.
	t.Run("sse_c", func(t *testing.T) {
		resp, body := e.get(t, "GET", "enc/a.mp4", http.Header{"Range": {"bytes=5-9"}})
		if resp.StatusCode != 206 || !bytes.Equal(body, obj[5:10]) {
			t.Fatalf("got %d %d bytes, want 206 and the slice", resp.StatusCode, len(body))
		}
		resp, _ = e.get(t, "HEAD", "enc/a.mp4", nil)
		if resp.StatusCode != 200 || resp.ContentLength != int64(n) {
			t.Fatalf("HEAD: %d", resp.StatusCode)
		}
		u, _, err := e.srv.PresignRef(context.Background(), "enc/a.mp4")
		if err != nil {
			t.Fatal(err)
		}
		pu, _ := url.Parse(u)
		assertNoSSECKey(t, pu, sseKey)
		signed := pu.Query().Get("X-Amz-SignedHeaders")
		for _, h := range []string{"x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key", "x-amz-server-side-encryption-customer-key-md5"} {
			if !strings.Contains(signed, h) {
				t.Errorf("X-Amz-SignedHeaders %q lacks %s", signed, h)
			}
		}
		plain, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		plain.Body.Close()
		if plain.StatusCode != 403 {
			t.Errorf("the URL without the SSE-C headers got %d from versitygw, want 403", plain.StatusCode)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		if got := e.metric(t, "edge_upstream_bytes_total"); got < float64(2*n) {
			t.Errorf("edge_upstream_bytes_total = %v, want at least %d", got, 2*n)
		}
		if got := e.metric(t, "edge_streams_active"); got != 0 {
			t.Errorf("edge_streams_active = %v with nothing in flight", got)
		}
	})

	e.assertLogsFree(t, sseKey, v.SecretKey, e.token, "not-the-secret-key")
	for _, ent := range e.logs.All() {
		if line := fmt.Sprint(ent.ContextMap()); strings.Contains(line, "X-Amz-Signature=") && !strings.Contains(line, "X-Amz-Signature=REDACTED") {
			t.Errorf("a log line has a presigned signature: %s", line)
		}
	}
}

// assertNoSSECKey fails when the key, in any encoding, is in u's query.
func assertNoSSECKey(t testing.TB, u *url.URL, key string) {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(key)
	for _, s := range []string{key, url.QueryEscape(key), base64.RawURLEncoding.EncodeToString(raw)} {
		if strings.Contains(u.RawQuery, s) || strings.Contains(u.Path, s) {
			t.Fatalf("the SSE-C key is in the presigned URL: %s", u.Redacted())
		}
	}
	for k := range u.Query() {
		if strings.Contains(strings.ToLower(k), "customer-key") {
			t.Fatalf("the presigned URL carries %s in its query", k)
		}
	}
}

// TestStreamSSECHeaders: the exact SSE-C headers reach storage on GET and
// HEAD, the key never travels in the URL, and nothing of the client's
// credentials does.
func TestStreamSSECHeaders(t *testing.T) {
	t.Parallel()
	raw := randomBytes(32)
	key := base64.StdEncoding.EncodeToString(raw)
	sum := md5.Sum(raw)
	keyMD5 := base64.StdEncoding.EncodeToString(sum[:])
	type seen struct {
		method string
		header http.Header
		url    *url.URL
	}
	var mu sync.Mutex
	var got []seen
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Method, r.Header.Clone(), r.URL})
		mu.Unlock()
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "bytes")
	}))
	defer up.Close()
	e := startStreamEdge(t, "", map[string]string{"SSE_KEY": key},
		streamSrc{name: "enc", endpoint: up.URL, bucket: "b", access: "AKIDSTREAM", secret: "stream-secret-key", extra: "    sse_c_key: ${SSE_KEY}\n"})

	for _, method := range []string{"GET", "HEAD"} {
		resp, _ := e.get(t, method, "enc/x.jpg", http.Header{"Cookie": {"edge_token=" + e.token}})
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", method, resp.StatusCode)
		}
	}
	if len(got) != 2 {
		t.Fatalf("storage saw %d requests, want 2", len(got))
	}
	for _, s := range got {
		for k, want := range map[string]string{
			"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
			"X-Amz-Server-Side-Encryption-Customer-Key":       key,
			"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   keyMD5,
			"Authorization": "", "Cookie": "",
		} {
			if g := s.header.Get(k); g != want {
				t.Errorf("%s: storage got %s = %q, want %q", s.method, k, g, want)
			}
		}
		assertNoSSECKey(t, s.url, key)
		if s.url.Query().Get("X-Amz-Signature") == "" {
			t.Errorf("%s: not a presigned URL: %s", s.method, s.url.Redacted())
		}
	}
	if got[0].method != "GET" || got[1].method != "HEAD" ||
		got[0].url.Query().Get("X-Amz-Signature") == got[1].url.Query().Get("X-Amz-Signature") {
		t.Errorf("GET and HEAD were not each signed for their own method")
	}
	e.assertLogsFree(t, key, "stream-secret-key", e.token)
}

// TestStreamSSECConfig: a source with sse_c_key must stream (a browser
// cannot send the key), and the key must be 32 bytes of base64.
func TestStreamSSECConfig(t *testing.T) {
	t.Parallel()
	key := base64.StdEncoding.EncodeToString(randomBytes(32))
	cfg := func(mode, provider, k string) string {
		return fmt.Sprintf(`auth: {keys: [{alg: HS256, secret: %q}]}
sources:
  - {name: a, provider: %s, bucket: b, root: /tmp, mode: %s, sse_c_key: %q, credentials: {type: static, access_key_id: A, secret_access_key: S}}
`, streamSecret, provider, mode, k)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error; none: accepted
	}{
		{"stream", cfg("stream", "s3", key), nil},
		{"redirect", cfg("redirect", "s3", key), []string{"sources[0].mode", "sse_c_key", "stream"}},
		{"default_mode", strings.Replace(cfg("redirect", "s3", key), "mode: redirect, ", "", 1), []string{"sources[0].mode", "sse_c_key"}},
		{"short_key", cfg("stream", "s3", base64.StdEncoding.EncodeToString(randomBytes(16))), []string{"sources[0].sse_c_key"}},
		{"not_base64", cfg("stream", "s3", "not base64!"), []string{"sources[0].sse_c_key"}},
		{"file_provider", cfg("stream", "file", key), []string{"sources[0].sse_c_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := edge.ParseConfig([]byte(tc.yaml), func(string) (string, bool) { return "", false })
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("the error quotes the key")
			}
		})
	}
}

// hijacked is an upstream that writes raw bytes on the connection and
// then either closes it or holds it until the test ends.
func hijacked(t testing.TB, raw string, hold bool) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		bw.WriteString(raw)
		bw.Flush()
		if hold {
			<-release
		}
	}))
	t.Cleanup(func() { close(release); up.Close() })
	return up
}

// holdingListener accepts connections and never answers.
func holdingListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "http://" + ln.Addr().String()
}

func streamSource(name, endpoint string) streamSrc {
	return streamSrc{name: name, endpoint: endpoint, bucket: "b", access: "AKIDSTREAM", secret: "stream-secret-key"}
}

// TestStreamFaults: every storage failure is answered within its bounded
// time; one after the first byte breaks the transfer instead of ending
// it as if complete.
func TestStreamFaults(t *testing.T) {
	t.Parallel()
	const header = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
	upFail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(upFail.Close)                                           // not defer: the subtests run after this function returns
	closed := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)) // nothing listens: refused
	e := startStreamEdge(t, "{connect_timeout: 1s, response_header_timeout: 400ms}", nil,
		streamSource("stopped", closed),
		streamSource("hung", holdingListener(t)),
		streamSource("failing", upFail.URL),
		streamSource("cut", hijacked(t, header+"0123456789", false).URL),
		streamSource("empty", hijacked(t, header, false).URL),
		streamSource("stall", hijacked(t, header+"0123456789", true).URL),
		streamSource("silent", hijacked(t, header, true).URL),
	)
	for _, tc := range []struct {
		source string
		status int
		code   string
		within time.Duration
	}{
		{"stopped", 502, "storage_unreachable", time.Second},
		{"hung", 504, "storage_timeout", 400 * time.Millisecond},
		{"failing", 502, "storage_error", 0},
		{"empty", 502, "storage_error", 0},
		{"silent", 504, "storage_timeout", 400 * time.Millisecond},
	} {
		t.Run(tc.source, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			resp, body := e.get(t, "GET", tc.source+"/k", nil)
			took := time.Since(start)
			wantStreamError(t, resp, body, tc.status, tc.code)
			// Generous slack: the point is "bounded", not "fast", on a
			// loaded CI machine.
			if took > tc.within+10*time.Second {
				t.Errorf("took %v, want within %v (+10s slack)", took, tc.within)
			}
			if tc.within >= 400*time.Millisecond && tc.status == 504 && took < tc.within {
				t.Errorf("answered after %v, before the %v timeout", took, tc.within)
			}
		})
	}
	for _, tc := range []struct {
		source string
		within time.Duration
	}{
		{"cut", 0},                        // storage closes after 10 of 1000 bytes
		{"stall", 400 * time.Millisecond}, // storage goes silent after 10 bytes
	} {
		t.Run(tc.source, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			resp := e.do(t, "GET", tc.source+"/k", nil)
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.ContentLength != 1000 {
				t.Fatalf("got %d with Content-Length %d, want the 200 already sent", resp.StatusCode, resp.ContentLength)
			}
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read %d bytes, err %v: want io.ErrUnexpectedEOF, a broken transfer", len(body), err)
			}
			if string(body) != "0123456789" {
				t.Errorf("got body %q", body)
			}
			if took := time.Since(start); took > tc.within+10*time.Second {
				t.Errorf("took %v", took)
			}
			// The access line says what happened: storage failed (502),
			// not the 200 whose header went out.
			if !eventually(5*time.Second, func() bool {
				for _, l := range e.logs.FilterMessage("request").All() {
					m := l.ContextMap()
					if m["source"] == tc.source && m["status"] == int64(502) && m["error"] == "aborted" {
						return true
					}
				}
				return false
			}) {
				t.Errorf("no access line with status 502, error aborted for source %s", tc.source)
			}
		})
	}
}

// streamForever is an upstream that sends an endless 200 in 32 KiB chunks
// until its client goes away, or goes silent once it has sent stallAfter
// bytes (0: never); it counts what it wrote and reports when its
// connections close.
type streamForever struct {
	*httptest.Server
	written  atomic.Int64
	handlers sync.WaitGroup
	closed   chan struct{} // a connection reached StateClosed
}

func newStreamForever(t testing.TB, stallAfter int64) *streamForever {
	t.Helper()
	u := &streamForever{closed: make(chan struct{}, 16)}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.handlers.Add(1)
		defer u.handlers.Done()
		w.Header().Set("Content-Type", "video/mp4")
		chunk := make([]byte, 32<<10)
		var sent int64
		for stallAfter == 0 || sent < stallAfter {
			n, err := w.Write(chunk)
			sent += int64(n)
			u.written.Add(int64(n))
			if err != nil {
				return
			}
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the edge hangs up
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			u.closed <- struct{}{}
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// streamGoroutines counts goroutines running stream code or an edge
// request.
func streamGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/stream.(*Proxy)") || strings.Contains(g, "internal/edge.(*Server).serveHTTP") {
			n++
			found = append(found, g)
		}
	}
	return n, strings.Join(found, "\n\n")
}

// eventually polls cond every 10ms for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamClientCancel: a client leaving mid-stream closes the upstream
// connection at once and leaves no goroutine behind, whether the edge was
// copying (it notices the failed write) or waiting on storage (only the
// request's context can free it: storage has gone silent). It runs alone
// (not parallel) so the goroutine count is its own.
func TestStreamClientCancel(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stallAfter int64
	}{
		{"copying", 0},
		{"waiting_on_storage", 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newStreamForever(t, tc.stallAfter)
			e := startStreamEdge(t, "", nil, streamSource("live", up.URL))
			before := settledGoroutines()

			ctx, cancel := context.WithCancel(context.Background())
			resp, err := e.doCtx(ctx, "GET", "live/v.mp4", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("got %d", resp.StatusCode)
			}
			if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
				t.Fatal(err)
			}
			if e.metric(t, "edge_streams_active") != 1 {
				t.Error("edge_streams_active is not 1 mid-stream")
			}
			cancel()
			resp.Body.Close()
			start := time.Now()
			select {
			case <-up.closed:
				t.Logf("upstream connection closed %v after the client left", time.Since(start))
			case <-time.After(10 * time.Second):
				t.Fatal("the upstream connection is still open 10s after the client left")
			}
			up.handlers.Wait()
			e.client.CloseIdleConnections()
			if !eventually(5*time.Second, func() bool { n, _ := streamGoroutines(); return n == 0 }) {
				_, stacks := streamGoroutines()
				t.Fatalf("stream goroutines still running 5s after the client left:\n%s", stacks)
			}
			var now int
			if !eventually(5*time.Second, func() bool { now = runtime.NumGoroutine(); return now <= before }) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines before the stream, %d 5s after it was cancelled:\n%s", before, now, buf[:runtime.Stack(buf, true)])
			}
			if got := e.metric(t, "edge_streams_active"); got != 0 {
				t.Errorf("edge_streams_active = %v after the cancel", got)
			}
		})
	}
}

// TestStreamSlowClient: a client that stops reading stops the edge from
// reading storage (backpressure), instead of the edge buffering.
func TestStreamSlowClient(t *testing.T) {
	t.Parallel()
	up := newStreamForever(t, 0)
	e := startStreamEdge(t, "", nil, streamSource("live", up.URL))
	resp := e.do(t, "GET", "live/v.mp4", nil)
	defer resp.Body.Close()
	one := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, one); err != nil {
		t.Fatal(err)
	}
	// The pipe fills (socket buffers on both hops, one copy buffer in
	// the edge), then storage is throttled to the client's pace: zero.
	var last int64 = -1
	if !eventually(5*time.Second, func() bool {
		time.Sleep(200 * time.Millisecond)
		n := up.written.Load()
		steady := n == last
		last = n
		return steady
	}) {
		t.Fatalf("storage kept sending while the client read nothing: %d bytes", up.written.Load())
	}
	if last > 64<<20 {
		t.Fatalf("storage sent %d MiB to a client that read 1 byte", last>>20)
	}
	t.Logf("in flight while the client read nothing: %.1f MiB (socket buffers of both hops + one copy buffer)", float64(last)/(1<<20))
}

// TestStreamTooBusy: with max_concurrent 1 and one stream held open, the
// next request is 503 too_busy; once it ends, streams are served again.
func TestStreamTooBusy(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "20")
		io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "abcdefghij")
	}))
	defer up.Close()
	e := startStreamEdge(t, "{max_concurrent: 1}", nil, streamSource("held", up.URL))

	resp := e.do(t, "GET", "held/a", nil)
	first := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, first); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first stream: %d %v", resp.StatusCode, err)
	}
	if got := e.metric(t, "edge_streams_active"); got != 1 {
		t.Errorf("edge_streams_active = %v, want 1", got)
	}
	r2, body := e.get(t, "GET", "held/b", nil)
	wantStreamError(t, r2, body, 503, "too_busy")

	close(release)
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(first)+string(rest) != "0123456789abcdefghij" {
		t.Fatalf("first stream ended with %q, %v", rest, err)
	}
	if !eventually(2*time.Second, func() bool { return e.metric(t, "edge_streams_active") == 0 }) {
		t.Fatal("the slot was not released")
	}
	r3, body := e.get(t, "GET", "held/c", nil)
	if r3.StatusCode != 200 || string(body) != "0123456789abcdefghij" {
		t.Fatalf("after the release: %d %q", r3.StatusCode, body)
	}
	if got := e.metric(t, "edge_upstream_bytes_total"); got != 40 {
		t.Errorf("edge_upstream_bytes_total = %v, want 40", got)
	}
}

// heapSampler samples the heap's object bytes (live and not yet swept;
// runtime/metrics reads it without stopping the world) until stopped.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func readHeap(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := readHeap(s); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// drain reads r to the end through one fixed buffer, keeping nothing.
func drain(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// TestStreamMemory256MiB streams a 256 MiB object (a sparse file in
// versitygw's posix directory: nothing to upload, nothing on disk) through
// the edge, then 8 concurrent 32 MiB ranges of it, while sampling this
// process's heap, which holds the edge and the client. The peak must stay
// within a few MiB of the baseline: the object is never held whole. Not
// parallel, so the heap is this test's alone.
func TestStreamMemory256MiB(t *testing.T) {
	const size = 256 << 20
	const budget = 8 << 20
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "big")
	f, err := os.Create(filepath.Join(v.Dir, "big", "video.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e := startStreamEdge(t, "", nil, streamSrc{name: "big", endpoint: v.Endpoint, bucket: "big", access: v.AccessKey, secret: v.SecretKey})
	// Warm up: token cache, presign cache, connections, buffer pools.
	e.get(t, "GET", "big/video.bin", http.Header{"Range": {"bytes=0-1048575"}})

	measure := func(name string, streams int, rng func(i int) string, want int64) {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
		runtime.GC()
		metrics.Read(s)
		base, alloc0 := s[0].Value.Uint64(), s[1].Value.Uint64()
		h := startHeapSampler()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, streams)
		for i := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hdr := http.Header{}
				if r := rng(i); r != "" {
					hdr.Set("Range", r)
				}
				resp, err := e.doCtx(context.Background(), "GET", "big/video.bin", hdr)
				if err != nil {
					errs[i] = err
					return
				}
				defer resp.Body.Close()
				n, err := drain(resp.Body, make([]byte, 64<<10))
				if err == nil && n != want {
					err = fmt.Errorf("got %d bytes, want %d", n, want)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		took := time.Since(start)
		peak := h.Stop()
		metrics.Read(s)
		for _, err := range errs {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		over := int64(peak) - int64(base)
		t.Logf("%s: %d MiB in %v (%.0f MiB/s); heap baseline %.1f MiB, peak %.1f MiB over it; %.1f MiB allocated",
			name, int64(streams)*want>>20, took.Round(time.Millisecond), float64(int64(streams)*want)/(1<<20)/took.Seconds(),
			float64(base)/(1<<20), float64(over)/(1<<20), float64(s[1].Value.Uint64()-alloc0)/(1<<20))
		if over > budget {
			t.Errorf("%s: heap peaked %.1f MiB over its baseline, want under %d MiB", name, float64(over)/(1<<20), budget>>20)
		}
	}
	measure("one 256 MiB stream", 1, func(int) string { return "" }, size)
	measure("8 concurrent 32 MiB ranges", 8, func(i int) string {
		return fmt.Sprintf("bytes=%d-%d", i*(32<<20), (i+1)*(32<<20)-1)
	}, 32<<20)
}

// BenchmarkStreamVersity compares fetching one object from versitygw
// directly (its presigned URL) with fetching it through the edge, in the
// same run: go test -run '^$' -bench StreamVersity ./internal/edge/
func BenchmarkStreamVersity(b *testing.B) {
	const size = 64 << 20
	v := testenv.StartVersity(b)
	v.CreateBucket(b, "bench")
	v.Put(b, "bench", "obj", randomBytes(size))
	e := startStreamEdge(b, "", nil, streamSrc{name: "bench", endpoint: v.Endpoint, bucket: "bench", access: v.AccessKey, secret: v.SecretKey})
	direct, _, err := e.srv.PresignRef(context.Background(), "bench/obj")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	fetch := func(b *testing.B, do func() (*http.Response, error)) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := do()
			if err != nil {
				b.Fatal(err)
			}
			n, err := drain(resp.Body, buf)
			resp.Body.Close()
			if err != nil || n != size {
				b.Fatalf("%d bytes, %v", n, err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		fetch(b, func() (*http.Response, error) { return e.client.Get(direct) })
	})
	b.Run("edge", func(b *testing.B) {
		fetch(b, func() (*http.Response, error) { return e.doCtx(context.Background(), "GET", "bench/obj", nil) })
	})
}

// TestStreamSurvivesShutdown: a stream in flight when the edge is told to
// stop (SIGTERM cancels Run's context) finishes whole within
// shutdown_timeout; the signal must not cancel requests.
func TestStreamSurvivesShutdown(t *testing.T) {
	chunk := bytes.Repeat([]byte("v"), 64<<10)
	const chunks = 4
	started := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(chunks*len(chunk)))
		for i := range chunks {
			w.Write(chunk)
			w.(http.Flusher).Flush()
			if i == 0 {
				close(started)
			}
			time.Sleep(100 * time.Millisecond) // a slow store, so the stream spans the signal
		}
	}))
	defer up.Close()
	e := startStreamEdge(t, "", nil, streamSrc{name: "slow", endpoint: up.URL, bucket: "b", access: "AKIDSLOW", secret: "slow-secret"})
	go func() { <-started; e.stop() }()
	resp, err := e.client.Get(e.url + "/v1/s/slow/video.mp4?token=" + e.token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || len(got) != chunks*len(chunk) {
		t.Fatalf("got %d, %d bytes, %v; want 200 and all %d bytes", resp.StatusCode, len(got), err, chunks*len(chunk))
	}
}
