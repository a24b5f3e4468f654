package stream

// Reviewer's reproductions against misbehaving storage.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// R1: storage sends more than its Content-Length (here: a whole second
// answer glued to the first). The splice copies exactly Content-Length
// from the socket, the rest stays in the kernel, br is empty, the
// connection is pooled, and the NEXT fetch (another object) is answered
// with the leftover bytes. net/http's transport sees unsolicited bytes
// on an idle connection and closes it.
func TestH1ReviewPoisonedPool(t *testing.T) {
	for _, kind := range []string{"splice", "copy"} {
		t.Run(kind, func(t *testing.T) {
			up := rawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body := strings.Repeat(req.URL.Path[1:], 2000) // 2000 bytes per 1-char path
					if req.URL.Path == "/a" {
						// /a's answer, then bytes that are no answer to anything
						io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
						time.Sleep(20 * time.Millisecond)
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
						continue
					}
					io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
				}
			})
			p := newProxy(t, testConfig(), Options{})
			t.Cleanup(p.Close)
			s := throughWriter(t, p, "src", up, kind)
			get := func(path string) string {
				resp, err := http.Get(s.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				waitIdle(t, p)
				return string(b)
			}
			get("/a")
			time.Sleep(50 * time.Millisecond)
			if got := get("/b"); got != strings.Repeat("b", 2000) {
				t.Fatalf("GET /b answered with %q", got)
			}
		})
	}
}

// R2: storage (or a load balancer in front of it) closes idle keep-alive
// connections sooner than the edge's 90s. With more than one of them
// pooled, the retry takes the next stale one and the client gets a 502.
// net/http's transport retries until it is on a fresh connection.
func TestH1ReviewStaleRetryTakesStaleConn(t *testing.T) {
	var inflight sync.WaitGroup
	inflight.Add(3)
	var first atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.Add(1) <= 3 {
			inflight.Done()
			inflight.Wait() // three at once: three connections
		}
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	up.Config.IdleTimeout = 50 * time.Millisecond
	up.Start()
	defer up.Close()
	p := newProxy(t, testConfig(), Options{})
	s := throughWriter(t, p, "src", up.URL, "splice")
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.URL + "/o")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	waitIdle(t, p)
	time.Sleep(300 * time.Millisecond) // storage closes all three idle connections
	resp, err := http.Get(s.URL + "/o")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got %d (X-Error %q) after storage closed its idle connections; the transport retries to 200",
			resp.StatusCode, resp.Header.Get("X-Error"))
	}
}

// R4: a client that pauses reading (a paused video) for longer than
// response_header_timeout but less than write_timeout. The copy path
// only times storage while it waits for storage; the splice path's read
// deadline runs while the pump is blocked on the client, the next drain
// fails with a timeout, and TCP_INFO says storage has sent nothing for
// that long (it was flow-controlled). The stream is aborted and counted
// as a storage stall (mid_stream, a warning).
func TestH1ReviewClientPauseIsNoStall(t *testing.T) {
	const size = 24 << 20
	// storage slower than the client (as over a real network): each
	// drain takes what has arrived, a chunk is several drains and pumps.
	up := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		piece := make([]byte, 32<<10)
		for sent := 0; sent < size; sent += len(piece) {
			if _, err := c.Write(piece); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
	for _, kind := range []string{"splice", "copy"} {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig()
			cfg.ResponseHeaderTimeout = 300 * time.Millisecond
			p := newProxy(t, cfg, Options{Registerer: prometheus.NewRegistry(), WriteTimeout: time.Minute})
			s := throughWriter(t, p, "src", up, kind)
			c, err := net.Dial("tcp", s.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET /o HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := io.CopyN(io.Discard, resp.Body, 1<<20)
			time.Sleep(1500 * time.Millisecond) // the client pauses 1.5s (< write_timeout 1m)
			m, err := io.Copy(io.Discard, resp.Body)
			n += m
			waitIdle(t, p)
			if n != size || err != nil {
				t.Errorf("client got %d of %d bytes, %v; mid_stream errors %v", n, size, err, testutil.ToFloat64(p.errs.midStream))
			}
		})
	}
}

// R5: the context's interrupt (SetDeadline in the past) is overwritten by
// exchange's own SetDeadline calls when it fires just before them: the
// exchange then runs without the cancellation, and the body has no
// deadline at all (copy path: the stall timer's cancel is a no-op on an
// already-cancelled context). Storage that stalls after its headers
// holds the handler, the fd and a stream slot until it closes.
func TestH1ReviewCancelledBeforeExchangeHangs(t *testing.T) {
	release := make(chan struct{})
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.URL.Path == "/warm" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
			select {
			case <-release:
			case <-time.After(3 * time.Second):
			}
			return
		}
	})
	defer close(release)
	cfg := testConfig()
	cfg.ResponseHeaderTimeout = 200 * time.Millisecond
	p := newProxy(t, cfg, Options{})
	p.AddSource("src")
	hung := 0
	const tries = 3000
	for i := 0; i < tries; i++ {
		// a pooled connection
		rec := httptest.NewRecorder()
		if err := p.Serve(rec, httptest.NewRequest("GET", "/warm", nil), Fetch{Source: "src", URL: up + "/warm"}); err != nil {
			t.Fatal(err)
		}
		// the client is gone before the fetch starts
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := httptest.NewRequest("GET", "/o", nil).WithContext(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { recover() }()
			p.Serve(httptest.NewRecorder(), r, Fetch{Source: "src", URL: up + "/o"})
		}()
		start := time.Now()
		select {
		case <-done:
		case <-time.After(300 * time.Millisecond): // past response_header_timeout (200ms)
			hung++
			<-done
			t.Logf("fetch %d: Serve returned after %v (storage closed after 3s)", i, time.Since(start))
		}
	}
	if hung > 0 {
		t.Fatalf("%d of %d fetches with a cancelled context waited past response_header_timeout for stalled storage", hung, tries)
	}
}

// R6: a client that leaves mid-splice while storage has already sent
// everything and closed ("Connection: close", as versitygw answers): the
// storage socket is CLOSE_WAIT, peerClosed says "storage reset" and the
// client's departure is counted as a storage failure.
func TestH1ReviewClientGoneAfterStorageFIN(t *testing.T) {
	const size = 2 << 20
	up := rawUpstream(t, func(c net.Conn) {
		readRequestHead(c)
		io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", size))
		c.Write(make([]byte, size))
		// closed: FIN
	})
	reg := prometheus.NewRegistry()
	p := newProxy(t, testConfig(), Options{Registerer: reg, WriteTimeout: time.Minute})
	s := throughWriter(t, p, "src", up, "splice")
	for i := 0; i < 10; i++ {
		c, err := net.Dial("tcp", s.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		// a pipelined second request: the server's background read stops at
		// it, so the client's departure no longer cancels r.Context()
		io.WriteString(c, "GET /o HTTP/1.1\r\nHost: x\r\n\r\nGET /o HTTP/1.1\r\nHost: x\r\n\r\n")
		io.ReadFull(c, make([]byte, 1000))
		time.Sleep(100 * time.Millisecond) // storage done and closed
		c.(*net.TCPConn).SetLinger(0)
		c.Close() // RST: the client leaves
		waitIdle(t, p)
	}
	if got := testutil.ToFloat64(p.errs.midStream); got != 0 {
		t.Fatalf("mid_stream errors = %v after 10 clients left; want 0", got)
	}
}

var _ = bytes.Equal

// Controls: the same storage behaviours through the source's own
// http.Transport (what the edge used before the h1 client).
func TestH1ReviewControlTransport(t *testing.T) {
	t.Run("poisoned_pool", func(t *testing.T) {
		up := rawUpstream(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				body := strings.Repeat(req.URL.Path[1:], 2000)
				io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
				if req.URL.Path == "/a" {
					time.Sleep(20 * time.Millisecond)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
				}
			}
		})
		p := newProxy(t, testConfig(), Options{})
		tr := p.AddSource("src")
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr}
		for _, path := range []string{"/a", "/b"} {
			resp, err := c.Get(up + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := strings.Repeat(path[1:], 2000); string(b) != want {
				t.Fatalf("transport: GET %s answered with %q", path, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	t.Run("stale_idle", func(t *testing.T) {
		var inflight sync.WaitGroup
		inflight.Add(3)
		var first atomic.Int64
		up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if first.Add(1) <= 3 {
				inflight.Done()
				inflight.Wait()
			}
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		}))
		up.Config.IdleTimeout = 50 * time.Millisecond
		up.Start()
		defer up.Close()
		p := newProxy(t, testConfig(), Options{})
		tr := p.AddSource("src")
		c := &http.Client{Transport: tr}
		var wg sync.WaitGroup
		for i := 0; i < 3; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, err := c.Get(up.URL); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		time.Sleep(300 * time.Millisecond)
		resp, err := c.Get(up.URL)
		if err != nil {
			t.Fatalf("transport: %v", err)
		}
		resp.Body.Close()
	})
	t.Run("header_limit_after_1xx", func(t *testing.T) {
		up := rawUpstream(t, func(c net.Conn) {
			readRequestHead(c)
			bw := bufio.NewWriter(c)
			bw.WriteString("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
			line := "X-Meta: " + strings.Repeat("a", 1000) + "\r\n"
			for n := 0; n < 8<<20; n += len(line) {
				if _, err := bw.WriteString(line); err != nil {
					return
				}
			}
			bw.WriteString("Content-Length: 2\r\n\r\nok")
			bw.Flush()
		})
		p := newProxy(t, testConfig(), Options{})
		tr := p.AddSource("src")
		t.Cleanup(tr.CloseIdleConnections)
		resp, err := (&http.Client{Transport: tr}).Get(up + "/o")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("transport accepted 8 MiB of headers after a 100")
		}
		t.Logf("transport: %v", err)
	})
}
