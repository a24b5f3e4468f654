// Package load is the bench's HTTP/1.1 load generator: a fixed number of
// keep-alive connections, each sending GETs back to back for a fixed time
// (and at most a fixed number of requests), recording every response's
// latency in a bounded histogram.
//
// It speaks just enough HTTP/1.1 over raw TCP to stay out of the way: on a
// two-core machine the load generator shares the CPU with the server it
// measures, and net/http's client costs several times more per request than
// the servers under test. It never follows redirects: a 302 is an answer.
package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SeqMarker in a URL is replaced by the request's sequence number, so a run
// can ask for a different object on every request without a URL list.
const SeqMarker = "{seq}"

// Config describes one run.
type Config struct {
	// URLs are requested in rotation, all http:// on one host:port.
	URLs []string
	// Once uses each URL at most once: the run ends when the list is
	// exhausted (every request a different token).
	Once bool
	// Concurrency is the number of connections, each with one request in flight.
	Concurrency int
	// Warmup runs before measuring; its requests are not recorded.
	Warmup time.Duration
	// Duration is the measured time.
	Duration time.Duration
	// MaxRequests bounds the requests sent, warmup included; 0 means no bound.
	MaxRequests int64
	// Header lines ("Name: value") are sent with every request.
	Header []string
	// Expect is the status that counts as success; 0 accepts any status below 400.
	Expect int
	// Timeout bounds a single request; the run aborts requests still in
	// flight when the measured time is over.
	Timeout time.Duration
}

// Result is what a run measured, in the measured window only.
type Result struct {
	Concurrency  int            `json:"concurrency"`
	Seconds      float64        `json:"seconds"`
	Requests     uint64         `json:"requests"`
	OK           uint64         `json:"ok"`
	Bad          uint64         `json:"bad"`
	Errors       uint64         `json:"errors"`
	FirstError   string         `json:"first_error,omitempty"`
	Status       map[string]int `json:"status"`
	TotalSent    int64          `json:"total_sent"`
	BodyBytes    uint64         `json:"body_bytes"`
	RPS          float64        `json:"rps"`
	MBps         float64        `json:"mb_per_s"`
	MeanUS       float64        `json:"mean_us"`
	P50US        float64        `json:"p50_us"`
	P90US        float64        `json:"p90_us"`
	P99US        float64        `json:"p99_us"`
	MaxUS        float64        `json:"max_us"`
	EndedEarly   bool           `json:"ended_early"`
	measuredHist *Hist
}

// Hist is the merged latency histogram of the measured window.
func (r *Result) Hist() *Hist { return r.measuredHist }

type target struct {
	pre, post string // request-URI split around SeqMarker; post unused when !seq
	seq       bool
}

// Run drives the load and returns what it measured. The context bounds the
// whole run, warmup included.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Concurrency < 1 {
		return nil, errors.New("load: concurrency must be at least 1")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("load: duration must be positive")
	}
	if len(cfg.URLs) == 0 {
		return nil, errors.New("load: no URLs")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	host, targets, err := parseTargets(cfg.URLs)
	if err != nil {
		return nil, err
	}
	var hdr strings.Builder
	hdr.WriteString(" HTTP/1.1\r\nHost: ")
	hdr.WriteString(host)
	hdr.WriteString("\r\nUser-Agent: edge-bench-load\r\n")
	for _, h := range cfg.Header {
		name, val, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(h, "\r\n") {
			return nil, fmt.Errorf("load: bad header %q, want \"Name: value\"", h)
		}
		hdr.WriteString(strings.TrimSpace(name))
		hdr.WriteString(": ")
		hdr.WriteString(strings.TrimSpace(val))
		hdr.WriteString("\r\n")
	}
	hdr.WriteString("\r\n")

	r := &runner{
		cfg:     cfg,
		host:    host,
		targets: targets,
		reqTail: hdr.String(),
		conns:   make([]net.Conn, cfg.Concurrency),
	}
	return r.run(ctx)
}

func parseTargets(urls []string) (string, []target, error) {
	var host string
	ts := make([]target, 0, len(urls))
	for _, raw := range urls {
		// The marker's braces are not valid in a URL; swap them out to parse.
		u, err := url.Parse(strings.ReplaceAll(raw, SeqMarker, "SEQMARKER0"))
		if err != nil {
			return "", nil, fmt.Errorf("load: %w", err)
		}
		if u.Scheme != "http" {
			return "", nil, fmt.Errorf("load: %q: only http:// URLs", raw)
		}
		h := u.Host
		if u.Port() == "" {
			h += ":80"
		}
		if host == "" {
			host = h
		} else if h != host {
			return "", nil, fmt.Errorf("load: every URL must name one host, got %s and %s", host, h)
		}
		uri := u.RequestURI()
		pre, post, seq := strings.Cut(uri, "SEQMARKER0")
		ts = append(ts, target{pre: pre, post: post, seq: seq})
	}
	return host, ts, nil
}

type runner struct {
	cfg     Config
	host    string
	targets []target
	reqTail string

	sent      atomic.Int64
	measuring atomic.Bool
	stopping  atomic.Bool

	mu    sync.Mutex
	conns []net.Conn // per worker, so the end of the run can abort reads
}

type worker struct {
	hist     Hist
	status   [600]uint64
	other    uint64
	requests uint64
	ok, bad  uint64
	errors   uint64
	firstErr string
	body     uint64
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	ws := make([]*worker, r.cfg.Concurrency)
	var wg sync.WaitGroup
	done := make(chan struct{})
	var endedAt atomic.Int64

	start := time.Now()
	measureStart := start.Add(r.cfg.Warmup)
	if r.cfg.Warmup <= 0 {
		r.measuring.Store(true)
	}
	for i := range ws {
		ws[i] = &worker{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r.work(i, ws[i])
			endedAt.Store(time.Now().UnixNano())
		}(i)
	}
	go func() { wg.Wait(); close(done) }()

	stopAll := func() {
		r.stopping.Store(true)
		r.mu.Lock()
		past := time.Now().Add(-time.Second)
		for _, c := range r.conns {
			if c != nil {
				c.SetDeadline(past)
			}
		}
		r.mu.Unlock()
	}

	var measuredFrom time.Time
	early := false
	if r.cfg.Warmup > 0 {
		select {
		case <-time.After(time.Until(measureStart)):
			r.measuring.Store(true)
		case <-done:
			early = true
		case <-ctx.Done():
			stopAll()
			<-done
			return nil, ctx.Err()
		}
	}
	measuredFrom = time.Now()
	var measuredTo time.Time
	if !early {
		select {
		case <-time.After(r.cfg.Duration):
			// Stop counting first, so requests aborted below never land in
			// the figures; then abort whatever is still in flight.
			r.measuring.Store(false)
			measuredTo = time.Now()
			stopAll()
			<-done
		case <-done:
			early = true
			measuredTo = time.Unix(0, endedAt.Load())
		case <-ctx.Done():
			stopAll()
			<-done
			return nil, ctx.Err()
		}
	} else {
		measuredTo = measuredFrom
	}

	res := &Result{Concurrency: r.cfg.Concurrency, Status: map[string]int{}, EndedEarly: early}
	h := &Hist{}
	for _, w := range ws {
		h.Merge(&w.hist)
		res.Requests += w.requests
		res.OK += w.ok
		res.Bad += w.bad
		res.Errors += w.errors
		res.BodyBytes += w.body
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
		for s, c := range w.status {
			if c > 0 {
				res.Status[strconv.Itoa(s)] += int(c)
			}
		}
		if w.other > 0 {
			res.Status["other"] += int(w.other)
		}
	}
	res.measuredHist = h
	res.TotalSent = r.sent.Load()
	if n := int64(len(r.targets)); r.cfg.Once && res.TotalSent > n {
		res.TotalSent = n
	}
	if r.cfg.MaxRequests > 0 && res.TotalSent > r.cfg.MaxRequests {
		res.TotalSent = r.cfg.MaxRequests
	}
	secs := measuredTo.Sub(measuredFrom).Seconds()
	res.Seconds = secs
	if secs > 0 {
		res.RPS = float64(res.OK) / secs
		res.MBps = float64(res.BodyBytes) / secs / 1e6
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	res.MeanUS = us(h.Mean())
	res.P50US = us(h.Quantile(0.50))
	res.P90US = us(h.Quantile(0.90))
	res.P99US = us(h.Quantile(0.99))
	res.MaxUS = us(h.Max())
	return res, nil
}

func (r *runner) setConn(i int, c net.Conn) {
	r.mu.Lock()
	r.conns[i] = c
	if c != nil && r.stopping.Load() {
		c.SetDeadline(time.Now().Add(-time.Second))
	}
	r.mu.Unlock()
}

// next claims the next request number, or false when the run's bounds are reached.
func (r *runner) next() (int64, bool) {
	if r.stopping.Load() {
		return 0, false
	}
	n := r.sent.Add(1) - 1
	if r.cfg.MaxRequests > 0 && n >= r.cfg.MaxRequests {
		return 0, false
	}
	if r.cfg.Once && n >= int64(len(r.targets)) {
		return 0, false
	}
	return n, true
}

func (r *runner) work(i int, w *worker) {
	var (
		conn    net.Conn
		br      *bufio.Reader
		req     = make([]byte, 0, 1024)
		scratch = make([]byte, 256<<10)
	)
	closeConn := func() {
		if conn != nil {
			r.setConn(i, nil)
			conn.Close()
			conn = nil
		}
	}
	defer closeConn()
	for {
		n, ok := r.next()
		if !ok {
			return
		}
		t := &r.targets[n%int64(len(r.targets))]
		req = append(req[:0], "GET "...)
		req = append(req, t.pre...)
		if t.seq {
			req = strconv.AppendInt(req, n, 10)
			req = append(req, t.post...)
		}
		req = append(req, r.reqTail...)

		if conn == nil {
			c, err := net.DialTimeout("tcp", r.host, r.cfg.Timeout)
			if err != nil {
				if r.stopping.Load() {
					return
				}
				w.fail(err)
				time.Sleep(10 * time.Millisecond) // a refused dial must not spin
				continue
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetNoDelay(true)
			}
			conn = c
			if br == nil {
				br = bufio.NewReaderSize(conn, 64<<10)
			} else {
				br.Reset(conn)
			}
			r.setConn(i, conn)
		}
		measured := r.measuring.Load()
		t0 := time.Now()
		conn.SetDeadline(t0.Add(r.cfg.Timeout))
		status, keep, err := r.roundTrip(conn, br, req, scratch, w)
		if err != nil {
			closeConn()
			if r.stopping.Load() {
				return
			}
			if measured {
				w.fail(err)
			}
			continue
		}
		if measured && r.measuring.Load() {
			w.hist.Record(time.Since(t0))
			w.requests++
			if status > 0 && status < len(w.status) {
				w.status[status]++
			} else {
				w.other++
			}
			if (r.cfg.Expect == 0 && status < 400) || status == r.cfg.Expect {
				w.ok++
			} else {
				w.bad++
			}
		}
		if !keep {
			closeConn()
		}
	}
}

func (w *worker) fail(err error) {
	w.errors++
	if w.firstErr == "" {
		w.firstErr = err.Error()
	}
}

var (
	errMalformed = errors.New("load: malformed response")
	crlf         = []byte("\r\n")
)

// roundTrip writes one request and reads its response to the end, counting
// body bytes while the run is measuring. keep reports whether the connection
// may carry another request.
func (r *runner) roundTrip(conn net.Conn, br *bufio.Reader, req, scratch []byte, w *worker) (status int, keep bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 302 Found\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errMalformed
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless told otherwise; ignore that case
	cl := int64(-1)
	chunked := false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, val, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, errMalformed
		}
		val = bytes.TrimSpace(val)
		switch {
		case asciiEqualFold(name, "content-length"):
			cl, err = strconv.ParseInt(string(val), 10, 64)
			if err != nil || cl < 0 {
				return 0, false, errMalformed
			}
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		case asciiEqualFold(name, "connection"):
			if asciiEqualFold(val, "close") {
				keep = false
			}
		}
	}
	if status >= 100 && status < 200 {
		return 0, false, fmt.Errorf("load: unexpected %d interim response", status)
	}
	switch {
	case status == 204 || status == 304:
		return status, keep, nil
	case chunked:
		return status, keep, r.readChunked(br, scratch, w)
	case cl >= 0:
		return status, keep, r.discard(br, cl, scratch, w)
	default:
		// No length: the body runs to the end of the connection.
		return status, false, r.discard(br, -1, scratch, w)
	}
}

// discard reads n body bytes (n < 0: to EOF) and counts them while measuring.
func (r *runner) discard(br *bufio.Reader, n int64, scratch []byte, w *worker) error {
	for n != 0 {
		buf := scratch
		if n > 0 && int64(len(buf)) > n {
			buf = buf[:n]
		}
		k, err := br.Read(buf)
		if k > 0 {
			if r.measuring.Load() {
				w.body += uint64(k)
			}
			if n > 0 {
				n -= int64(k)
			}
		}
		if err != nil {
			if err == io.EOF && n < 0 {
				return nil
			}
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func (r *runner) readChunked(br *bufio.Reader, scratch []byte, w *worker) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return errMalformed
		}
		if size == 0 {
			for { // trailers, then the final CRLF
				t, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if err := r.discard(br, size, scratch, w); err != nil {
			return err
		}
		end, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !bytes.Equal(end, crlf) {
			return errMalformed
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
