package stream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// A reused connection whose answer is malformed / too large is re-sent:
// storage processed the GET twice (the transport retries only when no
// byte of the answer came).
func TestH1ReviewRetryAfterAnswerStarted(t *testing.T) {
	var served atomic.Int64
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if served.Add(1) == 2 && req.URL.Path == "/bad" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX: "+strings.Repeat("a", 100<<10)+"\r\n\r\n")
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := newProxy(t, testConfig(), Options{})
	t.Cleanup(p.Close)
	s := throughWriter(t, p, "src", up, "copy")
	for _, path := range []string{"/warm", "/bad"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		waitIdle(t, p)
	}
	if got := served.Load(); got != 2 {
		t.Errorf("storage got %d requests for 2 fetches", got)
	}
}

func TestH1ReviewHostZone(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://[fe80::1%25lo]:9000/k", nil)
	b, err := appendRequest(nil, req)
	t.Logf("%q %v", b, err)
}
