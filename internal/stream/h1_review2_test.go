package stream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestH1ReviewProxyEnv(t *testing.T) {
	h := newH1Client(testConfig())
	for _, u := range []string{"http://storage.internal:9000/b/k", "http://nope.internal/b/k", "http://127.0.0.1:9000/b/k"} {
		req, _ := http.NewRequest("GET", u, nil)
		pu, _ := http.ProxyFromEnvironment(req)
		t.Logf("HTTP_PROXY=%q NO_PROXY=%q %s: handles=%v transport proxy=%v", os.Getenv("HTTP_PROXY"), os.Getenv("NO_PROXY"), u, h.handles(req), pu)
	}
}

// framing cases through the proxy (copy and splice)
func TestH1ReviewFraming(t *testing.T) {
	cases := []struct {
		name, method, answer string
		wantStatus           int
		wantBody             string
	}{
		{"cl_and_te", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "abc"},
		{"http10_no_cl", "GET", "HTTP/1.0 200 OK\r\n\r\nabcdef", 200, "abcdef"},
		{"head_cl", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200, ""},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n", 304, ""},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, ""},
		{"100_then_200", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 200, "abc"},
		{"206", "GET", "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 1-3/10\r\nContent-Length: 3\r\n\r\nbcd", 206, "bcd"},
		{"412", "GET", "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n", 412, ""},
		{"416", "GET", "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n", 416, ""},
	}
	for _, kind := range []string{"splice", "copy"} {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				up := rawUpstream(t, func(c net.Conn) {
					br := bufio.NewReader(c)
					for {
						if _, err := http.ReadRequest(br); err != nil {
							return
						}
						io.WriteString(c, tc.answer)
						if strings.HasPrefix(tc.answer, "HTTP/1.0") {
							return
						}
					}
				})
				p := newProxy(t, testConfig(), Options{})
				t.Cleanup(p.Close)
				s := throughWriter(t, p, "src", up, kind)
				for i := 0; i < 2; i++ {
					req, _ := http.NewRequest(tc.method, s.URL+"/o", nil)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != tc.wantStatus || string(b) != tc.wantBody || err != nil {
						t.Fatalf("try %d: %d %q %v (X-Error %q)", i, resp.StatusCode, b, err, resp.Header.Get("X-Error"))
					}
					waitIdle(t, p)
				}
			})
		}
	}
}

// fds and goroutines after many clients that leave mid-body
func TestH1ReviewLeak(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 8<<20)
			if _, err := c.Write(make([]byte, 8<<20)); err != nil {
				return
			}
		}
	})
	for _, kind := range []string{"splice", "copy"} {
		p := newProxy(t, testConfig(), Options{WriteTimeout: time.Minute})
		s := throughWriter(t, p, "src", up, kind)
		run := func(n int) {
			for i := 0; i < n; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/o", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.ReadFull(resp.Body, make([]byte, 1000*(i%50)))
				cancel()
				resp.Body.Close()
			}
			waitIdle(t, p)
		}
		run(20)
		time.Sleep(200 * time.Millisecond)
		fd0, g0 := fds(), runtime.NumGoroutine()
		run(300)
		time.Sleep(500 * time.Millisecond)
		t.Logf("%s: fds %d -> %d, goroutines %d -> %d", kind, fd0, fds(), g0, runtime.NumGoroutine())
	}
}

func fds() int {
	e, _ := os.ReadDir("/proc/self/fd")
	return len(e)
}
