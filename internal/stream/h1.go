package stream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// h1Client is the proxy's own HTTP/1.1 client for storage reached over
// plain http:// with no proxy in the environment (versitygw, MinIO, Ceph
// on a private network). It does what the shared http.Transport does for
// such a fetch, minus its per-connection goroutines (a read loop and a
// write loop, plus a dialer, for every connection: storage that answers
// "Connection: close", as versitygw does, pays them on every request),
// and it hands the body's raw *net.TCPConn to the copy, so the bytes can
// go from storage's socket to the client's by splice(2) without passing
// through the edge's memory. Anything else (https, a proxy) goes through
// the transport.
type h1Client struct {
	dialer  net.Dialer
	maxIdle int
	idleFor time.Duration

	mu     sync.Mutex
	idle   map[string][]*h1Conn // by dial address, most recently used last
	closed bool

	direct sync.Map // URL host -> bool: no proxy from the environment
}

// h1Conn is one connection to storage.
type h1Conn struct {
	c     *net.TCPConn
	br    *bufio.Reader
	addr  string
	owner *h1Client
	// reused: the connection came from the idle pool (storage may have
	// closed it meanwhile: a request that gets no answer on it is retried
	// once on a new connection, as the transport does).
	reused bool
	// stop detaches the request context's watcher (see detach); intact
	// is false once it fired and poisoned the connection's deadlines.
	stop   func() bool
	intact bool
	timer  *time.Timer // closes the connection once idle too long
	// limit bounds what br may read while it reads an answer's headers
	// (maxResponseHeader, as the transport's MaxResponseHeaderBytes);
	// afterwards it is unbounded.
	limit int64
	// dmu guards the deadlines against the context's interrupt: once it
	// fired, no deadline is moved again.
	dmu         sync.Mutex
	interrupted bool
	// answered is set when a failed exchange had read some answer.
	answered bool
}

var errInterrupted = errors.New("stream: the fetch was cancelled")

// setDeadline sets the read (read) or both deadlines, unless the
// request's context already interrupted the connection.
func (hc *h1Conn) setDeadline(t time.Time, readOnly bool) error {
	hc.dmu.Lock()
	defer hc.dmu.Unlock()
	if hc.interrupted {
		return errInterrupted
	}
	if readOnly {
		return hc.c.SetReadDeadline(t)
	}
	return hc.c.SetDeadline(t)
}

// maxResponseHeader bounds an answer's headers: object metadata is a few
// KiB at most; a hostile or broken endpoint does not get more memory.
const maxResponseHeader = 64 << 10

var errAnswerHeaderTooLarge = errors.New("stream: storage's answer headers exceed 64 KiB")

// Read is br's source: the connection, bounded while headers are read.
func (hc *h1Conn) Read(p []byte) (int, error) {
	if hc.limit <= 0 {
		return 0, errAnswerHeaderTooLarge
	}
	if int64(len(p)) > hc.limit {
		p = p[:hc.limit]
	}
	n, err := hc.c.Read(p)
	hc.limit -= int64(n)
	return n, err
}

// h1Readers recycles the 4 KiB read buffers of closed connections.
var h1Readers sync.Pool

// aLongTimeAgo, as a deadline, interrupts every pending read and write.
var aLongTimeAgo = time.Unix(1, 0)

func newH1Client(cfg Config) *h1Client {
	return &h1Client{
		// No TCP keepalive (four setsockopt calls per dial): a body is
		// bounded by its per-chunk timeouts, an idle connection lives
		// 90s and a dead one is retried; probes would find nothing sooner.
		dialer:  net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: -1},
		maxIdle: cfg.IdleConnsPerHost,
		idleFor: 90 * time.Second,
		idle:    map[string][]*h1Conn{},
	}
}

// handles reports whether req can be fetched by the client: plain http,
// and no proxy for its host (http.ProxyFromEnvironment, as the
// transport decides; the environment is read once per process).
func (h *h1Client) handles(req *http.Request) bool {
	if req.URL.Scheme != "http" || req.URL.User != nil {
		return false
	}
	if v, ok := h.direct.Load(req.URL.Host); ok {
		return v.(bool)
	}
	u, err := http.ProxyFromEnvironment(req)
	direct := err == nil && u == nil
	h.direct.Store(req.URL.Host, direct)
	return direct
}

// roundTrip sends req and reads storage's answer headers, within
// header (response_header_timeout). The answer's Body reads from the
// connection; closing it returns the connection to the pool when the
// body was read to its end, and closes it otherwise. ctx interrupts the
// exchange and the body at any time.
func (h *h1Client) roundTrip(ctx context.Context, req *http.Request, header time.Duration) (*http.Response, error) {
	msg, err := appendRequest(make([]byte, 0, 1024), req)
	if err != nil {
		return nil, err
	}
	addr := dialAddr(req.URL.Host)
	for attempt := 0; ; attempt++ {
		hc, err := h.get(ctx, addr, attempt > 0)
		if err != nil {
			return nil, err
		}
		hc.stop, hc.intact = context.AfterFunc(ctx, hc.interrupt), true
		resp, err := hc.exchange(req, msg, header)
		if err == nil {
			resp.Body = &h1Body{hc: hc, r: resp.Body, resp: resp, eof: resp.Body == http.NoBody}
			return resp, nil
		}
		reused, answered := hc.reused, hc.answered
		hc.release(false)
		var ne net.Error
		if reused && !answered && attempt == 0 && ctx.Err() == nil && !(errors.As(err, &ne) && ne.Timeout()) {
			// Storage closed the idle connection before answering a byte
			// (as the transport retries): once, on a new connection.
			continue
		}
		return nil, err
	}
}

// exchange writes msg and reads the answer's headers (skipping 1xx).
func (hc *h1Conn) exchange(req *http.Request, msg []byte, header time.Duration) (*http.Response, error) {
	if err := hc.setDeadline(time.Now().Add(header), false); err != nil {
		return nil, err
	}
	if _, err := hc.c.Write(msg); err != nil {
		return nil, err
	}
	for n1xx := 0; ; n1xx++ {
		full := maxResponseHeader + int64(hc.br.Size()) // what br reads ahead counts
		hc.limit = full
		resp, err := http.ReadResponse(hc.br, req)
		if err != nil {
			hc.answered = n1xx > 0 || hc.limit != full // a byte of an answer came: no retry
			return nil, err
		}
		hc.limit = 1<<63 - 1
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if n1xx == 5 {
				return nil, errors.New("stream: too many 1xx answers")
			}
			continue // 100 Continue, 103 Early Hints: the answer follows
		}
		// The body has its own bounds (per chunk).
		if err := hc.setDeadline(time.Time{}, false); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

func (hc *h1Conn) interrupt() {
	hc.dmu.Lock()
	hc.interrupted = true
	_ = hc.c.SetDeadline(aLongTimeAgo)
	hc.dmu.Unlock()
}

// detach stops the request context's watcher, as soon as the body has
// been read to its end: a client that leaves once it has its last byte
// (and cancels the request's context) no longer costs the connection.
// It reports whether the watcher never fired.
func (hc *h1Conn) detach() bool {
	if hc.stop != nil {
		hc.intact = hc.stop()
		hc.stop = nil
	}
	return hc.intact
}

// release ends the connection's use by one request: back to the idle pool
// when reuse holds and the request's context never interrupted it,
// closed otherwise.
func (hc *h1Conn) release(reuse bool) {
	if !hc.detach() {
		reuse = false
	}
	if !reuse || hc.br.Buffered() != 0 || hc.c.SetDeadline(time.Time{}) != nil || !hc.owner.put(hc) {
		hc.close()
	}
}

func (hc *h1Conn) close() {
	_ = hc.c.Close()
	if hc.br != nil {
		hc.br.Reset(nil)
		h1Readers.Put(hc.br)
		hc.br = nil
	}
}

// get returns an idle connection to addr, or dials one (always when
// fresh: a retry never lands on another idle one).
func (h *h1Client) get(ctx context.Context, addr string, fresh bool) (*h1Conn, error) {
	for !fresh {
		h.mu.Lock()
		l := h.idle[addr]
		if len(l) == 0 {
			h.mu.Unlock()
			break
		}
		hc := l[len(l)-1]
		l[len(l)-1] = nil
		h.idle[addr] = l[:len(l)-1]
		h.mu.Unlock()
		hc.timer.Stop()
		if hc.br.Buffered() != 0 || !idleClean(hc.c) {
			hc.close() // closed by storage, or bytes no request asked for
			continue
		}
		hc.reused = true
		return hc, nil
	}
	c, err := h.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, errors.New("stream: storage connection is not TCP")
	}
	hc := &h1Conn{c: tc, addr: addr, owner: h}
	hc.br, _ = h1Readers.Get().(*bufio.Reader)
	if hc.br == nil {
		hc.br = bufio.NewReaderSize(hc, 4<<10)
	} else {
		hc.br.Reset(hc)
	}
	return hc, nil
}

// put keeps hc for the next request to its address; false: the pool is
// full or closed.
func (h *h1Client) put(hc *h1Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.idle[hc.addr]) >= h.maxIdle {
		return false
	}
	h.idle[hc.addr] = append(h.idle[hc.addr], hc)
	if hc.timer == nil {
		hc.timer = time.AfterFunc(h.idleFor, func() { h.expire(hc) })
	} else {
		hc.timer.Reset(h.idleFor)
	}
	return true
}

// expire closes hc if it is still idle.
func (h *h1Client) expire(hc *h1Conn) {
	h.mu.Lock()
	l := h.idle[hc.addr]
	for i, c := range l {
		if c == hc {
			h.idle[hc.addr] = append(l[:i:i], l[i+1:]...)
			h.mu.Unlock()
			hc.close()
			return
		}
	}
	h.mu.Unlock()
}

// shut closes the idle connections and keeps none from now on (a removed
// source, a closed proxy).
func (h *h1Client) shut() {
	h.mu.Lock()
	idle := h.idle
	h.idle = map[string][]*h1Conn{}
	h.closed = true
	h.mu.Unlock()
	for _, l := range idle {
		for _, hc := range l {
			hc.timer.Stop()
			hc.close()
		}
	}
}

// h1Body is an answer's body on an h1Conn.
type h1Body struct {
	hc   *h1Conn
	r    io.ReadCloser // the framing reader ReadResponse built
	resp *http.Response
	eof  bool // read to its end: the connection can carry the next request
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.hc == nil {
		return 0, errors.New("stream: read on a closed body")
	}
	n, err := b.r.Read(p)
	if err == io.EOF && !b.eof {
		b.eof = true
		b.hc.detach()
	}
	return n, err
}

// Close never drains what is left (the framing reader's Close would read
// a large body to its end): an unfinished body closes the connection.
func (b *h1Body) Close() error {
	if b.hc == nil {
		return nil
	}
	hc := b.hc
	b.hc = nil
	hc.release(b.eof && !b.resp.Close)
	return nil
}

// errHeaderValue is a header that cannot be written on the wire.
var errHeaderValue = errors.New("stream: a header to storage has an invalid name or value")

// appendRequest writes req's request line and headers as net/http's
// transport does for a plain-http GET or HEAD (request target
// URL.RequestURI, Host, the same User-Agent; no Accept-Encoding, as with
// DisableCompression).
func appendRequest(b []byte, req *http.Request) ([]byte, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	target := req.URL.RequestURI()
	if !validHeaderValue(host) || !validTarget(target) || !validMethod(req.Method) {
		return nil, errHeaderValue
	}
	b = append(b, req.Method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: Go-http-client/1.1\r\n"...)
	for k, vs := range req.Header {
		if !validHeaderName(k) {
			return nil, errHeaderValue
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, errHeaderValue
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...), nil
}

func validMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters (CR and LF above all: no
// header or request is ever smuggled into the connection).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validTarget refuses a request target with spaces or control characters.
func validTarget(t string) bool {
	if t == "" || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// dialAddr is host with the default port.
func dialAddr(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		return host + ":80"
	}
	return net.JoinHostPort(host, "80")
}
