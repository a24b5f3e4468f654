package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testConfig() Config {
	var c Config
	c.Defaults()
	return c
}

func newProxy(t testing.TB, cfg Config, opts Options) *Proxy {
	t.Helper()
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestStreamConfig(t *testing.T) {
	c := testConfig()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("defaults do not validate: %v", errs)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"max_concurrent", func(c *Config) { c.MaxConcurrent = -1 }, "stream.max_concurrent"},
		{"connect_timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, "stream.connect_timeout"},
		{"response_header_timeout", func(c *Config) { c.ResponseHeaderTimeout = -time.Second }, "stream.response_header_timeout"},
		{"idle_conns", func(c *Config) { c.IdleConnsPerHost = -1 }, "stream.idle_conns_per_host"},
		{"buffer_small", func(c *Config) { c.BufferSize = 100 }, "stream.buffer_size"},
		{"buffer_big", func(c *Config) { c.BufferSize = 64 << 20 }, "stream.buffer_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.edit(&c)
			errs := c.Validate()
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.key) {
				t.Fatalf("Validate = %v, want one error naming %s", errs, tc.key)
			}
		})
	}
	t.Run("all_at_once", func(t *testing.T) {
		c := Config{MaxConcurrent: -1, ConnectTimeout: -1, ResponseHeaderTimeout: -1, IdleConnsPerHost: -1, BufferSize: 1}
		if got := len(c.Validate()); got != 5 {
			t.Fatalf("got %d errors, want 5", got)
		}
	})
}

// TestStreamTransportOncePerSource: AddSource builds one tuned transport
// per source; Serve never builds one.
func TestStreamTransportOncePerSource(t *testing.T) {
	cfg := testConfig()
	cfg.ConnectTimeout = 2 * time.Second
	cfg.ResponseHeaderTimeout = 3 * time.Second
	p := newProxy(t, cfg, Options{})
	a := p.AddSource("a")
	if again := p.AddSource("a"); again != a {
		t.Fatal("AddSource built a second transport for the same source")
	}
	if got := p.Transport("a"); got != a {
		t.Fatal("Transport(a) is not the transport AddSource built")
	}
	b := p.AddSource("b")
	if b == a || p.Transport("a") != a || p.Transport("b") != b {
		t.Fatal("sources do not each keep their own transport")
	}
	if a.ResponseHeaderTimeout != 3*time.Second || a.TLSHandshakeTimeout != 2*time.Second ||
		a.MaxIdleConnsPerHost != cfg.IdleConnsPerHost || !a.DisableCompression || a.MaxResponseHeaderBytes != 64<<10 {
		t.Fatalf("transport not tuned from the config: %+v", a)
	}
	if p.Transport("c") != nil {
		t.Fatal("Transport built a transport for a source never added")
	}
	err := p.Serve(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), Fetch{Source: "c", URL: "http://127.0.0.1:1/"})
	var se *Error
	if !errors.As(err, &se) || se.Status != http.StatusInternalServerError || p.Transport("c") != nil {
		t.Fatalf("Serve for an unknown source = %v, want a 500 and no transport built", err)
	}
}

// serveThrough is a minimal edge around p: it renders a stream *Error as
// its status with the code in X-Error.
func serveThrough(t testing.TB, p *Proxy, source, upstream string, hdr http.Header) *httptest.Server {
	t.Helper()
	p.AddSource(source)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := p.Serve(w, r, Fetch{Source: source, URL: upstream + r.URL.Path, Header: hdr})
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Errorf("Serve returned %T %v, want *Error", err, err)
				se = &Error{Status: 500, Code: "internal"}
			}
			w.Header().Set("X-Error", se.Code)
			w.WriteHeader(se.Status)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestStreamHeaders(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		h := w.Header()
		h.Set("Content-Type", "video/mp4")
		h.Set("ETag", `"abc"`)
		h.Set("Last-Modified", "Sun, 01 Mar 2026 12:00:00 GMT")
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Range", "bytes 2-4/10")
		h.Set("Content-Length", "3")
		h.Set("Cache-Control", "public, max-age=31536000")
		h.Set("Set-Cookie", "storage=1")
		h.Set("X-Amz-Request-Id", "REQ")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "234")
	}))
	defer up.Close()
	p := newProxy(t, testConfig(), Options{})
	sse := http.Header{"X-Amz-Server-Side-Encryption-Customer-Key": {"k"}}
	s := serveThrough(t, p, "src", up.URL, sse)

	req, _ := http.NewRequest("GET", s.URL+"/obj", nil)
	req.Header.Set("Range", "bytes=2-4")
	req.Header.Set("If-None-Match", `"zzz"`)
	req.Header.Set("Authorization", "Bearer secret-token")
	req.Header.Set("Cookie", "edge_token=secret-token")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	for k, want := range map[string]string{
		"Range": "bytes=2-4", "If-None-Match": `"zzz"`, "X-Amz-Server-Side-Encryption-Customer-Key": "k",
		"Authorization": "", "Cookie": "", "Accept-Encoding": "",
	} {
		if g := got.Get(k); g != want {
			t.Errorf("storage got %s %q, want %q", k, g, want)
		}
	}
	if resp.StatusCode != 206 || string(body) != "234" {
		t.Fatalf("got %d %q, want 206 \"234\"", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type": "video/mp4", "Etag": `"abc"`, "Last-Modified": "Sun, 01 Mar 2026 12:00:00 GMT",
		"Accept-Ranges": "bytes", "Content-Range": "bytes 2-4/10", "Content-Length": "3",
		"Cache-Control": "private, max-age=31536000", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
		"Set-Cookie": "", "X-Amz-Request-Id": "", "X-Amz-Server-Side-Encryption-Customer-Key": "",
	} {
		if g := resp.Header.Get(k); g != want {
			t.Errorf("client got %s %q, want %q", k, g, want)
		}
	}
}

// TestStreamStatuses: storage's answers the client sees as they are, and
// the ones mapped to the edge's own errors.
func TestStreamStatuses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.Header().Set("Content-Type", "application/xml")
		if code == http.StatusNotModified {
			w.Header().Set("ETag", `"e"`)
		}
		w.WriteHeader(code)
		io.WriteString(w, "<Error><BucketName>private-bucket</BucketName></Error>")
	}))
	defer up.Close()
	reg := prometheus.NewRegistry()
	p := newProxy(t, testConfig(), Options{Registerer: reg})
	s := serveThrough(t, p, "src", up.URL, nil)
	for _, tc := range []struct {
		upstream, want int
		code           string
	}{
		{200, 200, ""},
		{304, 304, ""},
		{404, 404, "object_not_found"},
		{416, 416, "range_not_satisfiable"},
		{412, 412, "precondition_failed"},
		{403, 502, "storage_denied"},
		{401, 502, "storage_denied"},
		{400, 502, "storage_error"}, // no code says it was the client's mistake: the edge's (limits_test: KeyTooLongError is a 400)
		{301, 502, "storage_error"},
		{500, 502, "storage_error"},
		{503, 502, "storage_error"},
	} {
		t.Run(strconv.Itoa(tc.upstream), func(t *testing.T) {
			resp, err := http.Get(s.URL + "/" + strconv.Itoa(tc.upstream))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || resp.Header.Get("X-Error") != tc.code {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Error"), tc.want, tc.code)
			}
			if tc.code != "" && bytes.Contains(body, []byte("private-bucket")) {
				t.Errorf("storage's error body reached the client: %q", body)
			}
			if tc.upstream == 304 {
				if ct := resp.Header.Get("Content-Type"); ct != "" {
					t.Errorf("304 carries storage's Content-Type %q", ct)
				}
				if et := resp.Header.Get("Etag"); et != `"e"` {
					t.Errorf("304 ETag = %q, want \"e\"", et)
				}
			}
		})
	}
	if got := testutil.ToFloat64(p.errs.denied); got != 2 {
		t.Errorf("denied errors = %v, want 2", got)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestStreamFetchErrorMapping(t *testing.T) {
	p := newProxy(t, testConfig(), Options{})
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		err    error
		status int
		code   string
	}{
		{"dial_timeout", live, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}, 502, "storage_unreachable"},
		{"refused", live, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 502, "storage_unreachable"},
		{"header_timeout", live, timeoutErr{}, 504, "storage_timeout"},
		{"reset", live, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, 502, "storage_unreachable"},
		{"client_gone", gone, context.Canceled, StatusClientClosed, "client_closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var se *Error
			if err := p.fetchError(tc.ctx, tc.err); !errors.As(err, &se) || se.Status != tc.status || se.Code != tc.code {
				t.Fatalf("fetchError(%v) = %v, want %d %s", tc.err, err, tc.status, tc.code)
			}
		})
	}
}

// TestStreamTooBusy: past max_concurrent, Acquire refuses; releasing
// frees the slot and the gauge follows.
func TestStreamTooBusy(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConcurrent = 2
	p := newProxy(t, cfg, Options{})
	r1, err1 := p.Acquire()
	r2, err2 := p.Acquire()
	if err1 != nil || err2 != nil {
		t.Fatalf("Acquire within the limit: %v %v", err1, err2)
	}
	if _, err := p.Acquire(); err != ErrTooBusy {
		t.Fatalf("Acquire past the limit = %v, want ErrTooBusy", err)
	}
	if got := testutil.ToFloat64(p.active); got != 2 {
		t.Fatalf("active = %v, want 2", got)
	}
	r1()
	r3, err := p.Acquire()
	if err != nil {
		t.Fatalf("Acquire after a release: %v", err)
	}
	r2()
	r3()
	if got := testutil.ToFloat64(p.active); got != 0 {
		t.Fatalf("active = %v, want 0", got)
	}
}

// discard is a ResponseWriter that drops the body, for the copy path's
// allocation test and benchmark.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }

func copyOnce(p *Proxy, w http.ResponseWriter, r *http.Request, body *bytes.Reader, data []byte) {
	body.Reset(data)
	resp := &http.Response{StatusCode: 200, Body: io.NopCloser(body), ContentLength: int64(len(data)), Request: r}
	_, cancel := context.WithCancelCause(r.Context())
	if err := p.copyBody(w, r, "src", resp, cancel); err != nil {
		panic(err)
	}
	cancel(nil)
}

// TestStreamCopyAllocsFlat pins the copy loop: copying 64 MiB allocates
// no more than copying 64 KiB (nothing per chunk; the buffer is pooled).
func TestStreamCopyAllocsFlat(t *testing.T) {
	p := newProxy(t, testConfig(), Options{WriteTimeout: time.Minute})
	w := &discard{h: http.Header{}}
	r := httptest.NewRequest("GET", "/", nil)
	small, big := make([]byte, 64<<10), make([]byte, 64<<20)
	body := bytes.NewReader(nil)
	allocs := func(data []byte) float64 {
		return testing.AllocsPerRun(5, func() { copyOnce(p, w, r, body, data) })
	}
	s, b := allocs(small), allocs(big)
	// Slack of 2: a GC during the longer copy empties the sync.Pool, and
	// the next stream allocates its buffer again. Per-chunk allocation
	// would show as about a thousand more.
	if b > s+2 {
		t.Fatalf("copying 64 MiB allocates %v times, 64 KiB %v: the copy allocates per chunk", b, s)
	}
	t.Logf("allocations per stream: %v (64 KiB), %v (64 MiB)", s, b)
}

// BenchmarkCopy measures the copy path alone: pooled buffer, idle timer,
// byte counter, write-deadline extension.
func BenchmarkCopy(b *testing.B) {
	p := newProxy(b, testConfig(), Options{WriteTimeout: time.Minute})
	w := &discard{h: http.Header{}}
	r := httptest.NewRequest("GET", "/", nil)
	data := make([]byte, 16<<20)
	body := bytes.NewReader(nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		copyOnce(p, w, r, body, data)
	}
}

// BenchmarkServeLoopback is the whole proxy path over loopback: an
// upstream serving from memory, Serve, a client discarding; at 1 MiB
// (where the per-request work shows) and 16 MiB, with the body spliced
// (the server's own writer) and copied (ReadFrom hidden, as a throttled
// writer hides it). cpu-µs/op is the process's user+system time per
// fetch (upstream and client included: the same for both kinds).
func BenchmarkServeLoopback(b *testing.B) {
	data := make([]byte, 16<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Path[1:])
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(data[:n])
	}))
	defer up.Close()
	for _, kind := range []string{"splice", "copy"} {
		p := newProxy(b, testConfig(), Options{WriteTimeout: time.Minute})
		s := throughWriter(b, p, "src", up.URL, kind)
		c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
		buf := make([]byte, 64<<10)
		for _, size := range []int{1 << 20, 16 << 20} {
			b.Run(kind+"/"+strconv.Itoa(size>>20)+"MiB", func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					resp, err := c.Get(s.URL + "/" + strconv.Itoa(size))
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, resp.Body, buf)
					resp.Body.Close()
					if err != nil || n != int64(size) {
						b.Fatalf("copied %d, %v", n, err)
					}
				}
				b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

func TestPrivateCacheControl(t *testing.T) {
	for _, tc := range []struct{ stored, want string }{
		{"", "private"},
		{"public, max-age=3600", "private, max-age=3600"},
		{"max-age=60, s-maxage=600, immutable", "private, max-age=60, immutable"},
		{"no-store", "private, no-store"},
		{"private, no-cache", "private, no-cache"},
		{"max-age=\"60\"", "private"},
		{"max-age=60\r\nSet-Cookie: x", "private"},
		{"nonsense", "private"},
	} {
		if got := privateCacheControl(tc.stored)[0]; got != tc.want {
			t.Errorf("stored %q: got %q, want %q", tc.stored, got, tc.want)
		}
	}
}

func FuzzPrivateCacheControl(f *testing.F) {
	f.Add("public, max-age=3600")
	f.Add("no-store")
	f.Fuzz(func(t *testing.T, stored string) {
		got := privateCacheControl(stored)[0]
		if !strings.HasPrefix(got, "private") || strings.ContainsAny(got, "\r\n\"") {
			t.Fatalf("stored %q gave %q", stored, got)
		}
	})
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
