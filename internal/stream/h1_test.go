package stream

// The proxy's own HTTP/1.1 client (h1.go) and the splice copy (splice.go),
// against real net/http servers and raw TCP peers staging what a
// storage server may do.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestH1RequestLine(t *testing.T) {
	for _, tc := range []struct {
		name, method, url string
		hdr               http.Header
		want              string // "" : refused
	}{
		{"presigned", "GET", "http://127.0.0.1:9000/b/k%20x/%E2%82%AC?X-Amz-Signature=ab&X-Amz-Date=1", http.Header{"Range": {"bytes=0-9"}},
			"GET /b/k%20x/%E2%82%AC?X-Amz-Signature=ab&X-Amz-Date=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUser-Agent: Go-http-client/1.1\r\nRange: bytes=0-9\r\n\r\n"},
		{"head_no_query", "HEAD", "http://minio.local/b/k", nil,
			"HEAD /b/k HTTP/1.1\r\nHost: minio.local\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"},
		{"two_values", "GET", "http://h/k", http.Header{"If-None-Match": {`"a"`, `"b"`}},
			"GET /k HTTP/1.1\r\nHost: h\r\nUser-Agent: Go-http-client/1.1\r\nIf-None-Match: \"a\"\r\nIf-None-Match: \"b\"\r\n\r\n"},
		{"crlf_in_value", "GET", "http://h/k", http.Header{"Range": {"bytes=0-1\r\nX-Evil: 1"}}, ""},
		{"lf_in_value", "GET", "http://h/k", http.Header{"If-Match": {"a\nb"}}, ""},
		{"bad_name", "GET", "http://h/k", http.Header{"X Evil": {"1"}}, ""},
		{"nul_in_value", "GET", "http://h/k", http.Header{"If-Match": {"a\x00"}}, ""},
		{"post", "POST", "http://h/k", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			got, err := appendRequest(nil, req)
			if tc.want == "" {
				if !errors.Is(err, errHeaderValue) {
					t.Fatalf("got %q, %v; want errHeaderValue", got, err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

func TestH1Handles(t *testing.T) {
	h := newH1Client(testConfig())
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:9000/b/k", true},
		{"https://s3.amazonaws.com/b/k", false}, // TLS: the transport
		{"http://u:p@127.0.0.1:9000/b/k", false},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if got := h.handles(req); got != tc.want {
			t.Errorf("handles(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}
}

// throughWriter serves p with a writer of the given kind: "splice" (the
// server's own, whose ReadFrom splices) or "copy" (ReadFrom hidden, as a
// throttled writer does).
func throughWriter(t testing.TB, p *Proxy, source, upstream, kind string) *httptest.Server {
	t.Helper()
	p.AddSource(source)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ww http.ResponseWriter = w
		if kind == "copy" {
			ww = struct{ http.ResponseWriter }{w}
		}
		if err := p.Serve(ww, r, Fetch{Source: source, URL: upstream + r.URL.Path}); err != nil {
			var se *Error
			errors.As(err, &se)
			w.Header().Set("X-Error", se.Code)
			w.WriteHeader(se.Status)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestH1Bodies: every size arrives byte for byte, by splice and by the
// copy loop, whole and ranged, with the byte counter exact.
func TestH1Bodies(t *testing.T) {
	data := make([]byte, 1<<20+7)
	rand.Read(data)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Path[1:])
		http.ServeContent(w, r, "o", time.Unix(1e9, 0), bytes.NewReader(data[:n]))
	}))
	defer up.Close()
	cfg := testConfig()
	cfg.BufferSize = 64 << 10 // several chunks per body
	for _, kind := range []string{"splice", "copy"} {
		p := newProxy(t, cfg, Options{WriteTimeout: time.Minute})
		s := throughWriter(t, p, "src", up.URL, kind)
		var want float64
		for _, n := range []int{1, 100, 4095, 4096, 4097, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1<<20 + 7} {
			for _, rng := range []string{"", "bytes=1-"} {
				t.Run(kind+"/"+strconv.Itoa(n)+"/"+rng, func(t *testing.T) {
					req, _ := http.NewRequest("GET", s.URL+"/"+strconv.Itoa(n), nil)
					wantBody, wantStatus := data[:n], 200
					if rng != "" {
						req.Header.Set("Range", rng)
						wantBody, wantStatus = data[1:n], 206
					}
					if rng != "" && n == 1 {
						wantBody, wantStatus = nil, 416
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != wantStatus {
						t.Fatalf("status %d, %v; want %d", resp.StatusCode, err, wantStatus)
					}
					if wantStatus != 416 && !bytes.Equal(body, wantBody) {
						t.Fatalf("got %d bytes, want %d, equal %v", len(body), len(wantBody), bytes.Equal(body, wantBody))
					}
					want += float64(len(wantBody))
					waitIdle(t, p)
					if got := testutil.ToFloat64(p.bytes); wantStatus != 416 && got != want {
						t.Errorf("edge_upstream_bytes_total = %v, want %v", got, want)
					}
				})
			}
		}
	}
}

// waitIdle waits for p's streams to end (the handler runs on after the
// client has its last byte).
func waitIdle(t testing.TB, p *Proxy) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.sem) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("streams still in flight after 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// countingUpstream serves a body of size bytes and counts its
// connections; close adds "Connection: close" to every answer.
func countingUpstream(t testing.TB, size int, close bool) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	body := make([]byte, size)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if close {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	return up, &conns
}

// TestH1ConnReuse: a body read to its end leaves the connection for the
// next fetch; "Connection: close" and a body cut short do not.
func TestH1ConnReuse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		close     bool
		cut       bool // the client goes away after the first bytes
		shut      bool // the proxy is closed first (a closed Server's)
		wantConns int64
	}{
		{"keep_alive", false, false, false, 1},
		{"connection_close", true, false, false, 3},
		{"client_gone", false, true, false, 3},
		{"proxy_closed", false, false, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := 64 << 10
			if tc.cut {
				size = 64 << 20 // more than the sockets between hold
			}
			up, conns := countingUpstream(t, size, tc.close)
			p := newProxy(t, testConfig(), Options{})
			s := throughWriter(t, p, "src", up.URL, "splice")
			if tc.shut {
				p.Close()
			}
			// A keep-alive client: one that closes its connection after
			// the last byte cancels the request's context, and may do so
			// before the edge has put storage's connection back (then it
			// is closed: one more dial, no harm, but not this test's case).
			tr := &http.Transport{}
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr}
			for i := 0; i < 3; i++ {
				resp, err := c.Get(s.URL + "/o")
				if err != nil {
					t.Fatal(err)
				}
				if tc.cut {
					io.ReadFull(resp.Body, make([]byte, 10))
				} else if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != int64(size) {
					t.Fatalf("read %d, %v", n, err)
				}
				resp.Body.Close()
				// The next fetch sees the pool as this one left it.
				waitIdle(t, p)
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Fatalf("storage saw %d connections, want %d", got, tc.wantConns)
			}
		})
	}
}

// rawUpstream accepts connections and runs serve on each.
func rawUpstream(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String()
}

// readRequestHead reads one request's head from c.
func readRequestHead(c net.Conn) bool {
	_, err := http.ReadRequest(bufio.NewReader(c))
	return err == nil
}

// TestH1StaleIdle: storage that closes a kept-alive connection without
// saying so; the next fetch on it gets no answer and is retried once on
// a new connection, unseen by the client.
func TestH1StaleIdle(t *testing.T) {
	var served atomic.Int64
	up := rawUpstream(t, func(c net.Conn) {
		if readRequestHead(c) {
			served.Add(1)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
		}
		// closed without "Connection: close"
	})
	p := newProxy(t, testConfig(), Options{})
	s := throughWriter(t, p, "src", up, "splice")
	for i := 0; i < 3; i++ {
		resp, err := http.Get(s.URL + "/o")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "abc" {
			t.Fatalf("fetch %d: %d %q (X-Error %q)", i, resp.StatusCode, body, resp.Header.Get("X-Error"))
		}
		time.Sleep(20 * time.Millisecond) // storage's close reaches the idle connection
	}
	if got := served.Load(); got != 3 {
		t.Fatalf("storage served %d requests, want 3", got)
	}
}

// TestSpliceFailures: after the status, storage's failures are counted
// (mid_stream) and the client's are not; a slow trickle is no stall.
func TestSpliceFailures(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
	for _, tc := range []struct {
		name      string
		serve     func(c net.Conn)
		clientCut bool
		wantBody  int  // bytes the client gets
		wantErr   bool // the transfer breaks
		wantCount float64
	}{
		{"storage_reset", func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, head+"0123456789")
			time.Sleep(50 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0) // RST
		}, false, 10, true, 1},
		{"storage_short", func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, head+"0123456789")
			time.Sleep(50 * time.Millisecond)
		}, false, 10, true, 1},
		{"storage_stall", func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, head+"0123456789")
			time.Sleep(2 * time.Second)
		}, false, 10, true, 1},
		{"client_gone", func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, head)
			for i := 0; i < 100; i++ {
				if _, err := c.Write(make([]byte, 1000)); err != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}, true, 0, true, 0},
		{"slow_gaps", func(c net.Conn) {
			// Gaps of half the timeout: never a stall, though each
			// chunk's window ends while the next bytes are on their way.
			readRequestHead(c)
			io.WriteString(c, head)
			for i := 0; i < 5; i++ {
				c.Write(make([]byte, 20000))
				time.Sleep(250 * time.Millisecond)
			}
		}, false, 100000, false, 0},
		{"trickle", func(c net.Conn) {
			// 100 KB over ~1.5s, never silent for the 500ms timeout, but
			// longer than it per chunk.
			readRequestHead(c)
			io.WriteString(c, head)
			for i := 0; i < 50; i++ {
				c.Write(make([]byte, 2000))
				time.Sleep(30 * time.Millisecond)
			}
		}, false, 100000, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := rawUpstream(t, tc.serve)
			cfg := testConfig()
			cfg.ResponseHeaderTimeout = 500 * time.Millisecond
			reg := prometheus.NewRegistry()
			p := newProxy(t, cfg, Options{Registerer: reg, WriteTimeout: time.Minute})
			s := throughWriter(t, p, "src", up, "splice")
			resp, err := http.Get(s.URL + "/o")
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if tc.clientCut {
				io.ReadFull(resp.Body, make([]byte, 3000))
				resp.Body.Close()
			} else {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if (err != nil) != tc.wantErr || len(body) != tc.wantBody {
					t.Fatalf("read %d bytes, err %v; want %d, broken %v", len(body), err, tc.wantBody, tc.wantErr)
				}
			}
			waitIdle(t, p)
			if got := testutil.ToFloat64(p.errs.midStream); got != tc.wantCount {
				t.Errorf("mid_stream errors = %v, want %v", got, tc.wantCount)
			}
		})
	}
}

// TestH1HeaderLimit: answer headers past 64 KiB are refused as the
// transport's MaxResponseHeaderBytes refuses them (502), not buffered.
func TestH1HeaderLimit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header int // bytes of headers storage sends
		info   int // 100 Continue answers before the real one
		want   int
	}{
		{"small", 1 << 10, 0, 200},
		{"60k", 60 << 10, 0, 200},
		{"1m", 1 << 20, 0, 502},
		// The bound holds for the answer after each 1xx (a review found
		// one 100 Continue lifted it), and at most 5 of them are taken.
		{"60k after a 100", 60 << 10, 1, 200},
		{"1m after a 100", 1 << 20, 1, 502},
		{"five 100s", 1 << 10, 5, 200},
		{"six 100s", 1 << 10, 6, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := rawUpstream(t, func(c net.Conn) {
				readRequestHead(c)
				bw := bufio.NewWriter(c)
				for range tc.info {
					bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
				}
				bw.WriteString("HTTP/1.1 200 OK\r\n")
				line := "X-Meta: " + string(bytes.Repeat([]byte("a"), 1000)) + "\r\n"
				for n := 0; n < tc.header; n += len(line) {
					bw.WriteString(line)
				}
				bw.WriteString("Content-Length: 2\r\n\r\nok")
				bw.Flush()
			})
			p := newProxy(t, testConfig(), Options{})
			s := throughWriter(t, p, "src", up, "splice")
			resp, err := http.Get(s.URL + "/o")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d (X-Error %q), want %d", resp.StatusCode, resp.Header.Get("X-Error"), tc.want)
			}
		})
	}
}

// TestSpliceStallAfterProgress: storage that sends, pauses, sends again
// and then goes silent is aborted once it has been silent for
// response_header_timeout, counted from its last byte, not from the
// start of the chunk.
func TestSpliceStallAfterProgress(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789")
		time.Sleep(300 * time.Millisecond)
		io.WriteString(c, "abcdefghij")
		time.Sleep(2 * time.Second)
	})
	cfg := testConfig()
	cfg.ResponseHeaderTimeout = 500 * time.Millisecond
	p := newProxy(t, cfg, Options{Registerer: prometheus.NewRegistry(), WriteTimeout: time.Minute})
	s := throughWriter(t, p, "src", up, "splice")
	start := time.Now()
	resp, err := http.Get(s.URL + "/o")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err == nil || string(body) != "0123456789abcdefghij" {
		t.Fatalf("got %q, %v; want the 20 bytes and a broken transfer", body, err)
	}
	// Silent from 300ms on: not aborted before 800ms.
	if took < 750*time.Millisecond || took > 2*time.Second {
		t.Errorf("aborted after %v, want 800ms (silence from the last byte)", took)
	}
	t.Logf("aborted after %v", took)
	waitIdle(t, p)
	if got := testutil.ToFloat64(p.errs.midStream); got != 1 {
		t.Errorf("mid_stream errors = %v, want 1", got)
	}
}
