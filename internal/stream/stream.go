package stream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Error is a stream failure with the status and public code the edge
// answers with; Err is the cause, for logs only.
type Error struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ErrTooBusy is returned past max_concurrent streams.
var ErrTooBusy = &Error{Status: http.StatusServiceUnavailable, Code: "too_busy", Message: "too many streams in flight; retry shortly"}

// Options carry what the proxy takes from outside its config.
type Options struct {
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Proxy fetches objects from storage and copies them to clients.
type Proxy struct {
	cfg       Config
	log       *zap.Logger
	sem       chan struct{}
	bufs      sync.Pool
	mu        sync.Mutex
	transport map[string]*http.Transport

	active prometheus.Gauge
	bytes  prometheus.Counter
	errors *prometheus.CounterVec
}

// New builds the proxy; transports are made per source on first use by
// Transport and kept.
func New(cfg Config, opts Options) (*Proxy, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	p := &Proxy{
		cfg:       cfg,
		log:       opts.Logger,
		sem:       make(chan struct{}, cfg.MaxConcurrent),
		transport: map[string]*http.Transport{},
		active:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "edge_streams_active", Help: "Streams in flight."}),
		bytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "edge_upstream_bytes_total", Help: "Object bytes sent to clients in stream mode."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_upstream_errors_total", Help: "Storage failures in stream mode, by kind.",
		}, []string{"kind"}),
	}
	size := cfg.BufferSize
	p.bufs.New = func() any { b := make([]byte, size); return &b }
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{p.active, p.bytes, p.errors} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// Transport returns the source's shared transport, building it once.
func (p *Proxy) Transport(source string) *http.Transport {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.transport[source]; ok {
		return t
	}
	d := &net.Dialer{Timeout: p.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          p.cfg.IdleConnsPerHost * 4,
		MaxIdleConnsPerHost:   p.cfg.IdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   p.cfg.ConnectTimeout,
		ResponseHeaderTimeout: p.cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// The browser's Accept-Encoding is not forwarded and the body is
		// passed through as stored.
		DisableCompression: true,
	}
	p.transport[source] = t
	return t
}

// Close drops idle upstream connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.transport {
		t.CloseIdleConnections()
	}
}

// Fetch is one object to stream.
type Fetch struct {
	Source string
	URL    string      // presigned for the request's method
	Header http.Header // headers the signature requires (SSE-C)
}

// forwarded request headers: Range and the conditionals.
var requestHeaders = []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"}

// returned response headers.
var responseHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "ETag", "Last-Modified", "Accept-Ranges", "Content-Encoding", "Content-Disposition", "Content-Language", "Expires"}

var privateCache = []string{"private"}

// Acquire takes a stream slot, or returns ErrTooBusy. Release with the
// returned function.
func (p *Proxy) Acquire() (func(), error) {
	select {
	case p.sem <- struct{}{}:
		p.active.Inc()
		return func() { <-p.sem; p.active.Dec() }, nil
	default:
		return nil, ErrTooBusy
	}
}

// Serve fetches f and copies the answer to w. It returns an *Error before
// anything was written; after the first byte, a failure aborts the
// response (http.ErrAbortHandler) so the client sees a broken transfer,
// never a short body presented as complete.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, f Fetch) error {
	release, err := p.Acquire()
	if err != nil {
		return err
	}
	defer release()
	ctx := r.Context()
	req, err := http.NewRequestWithContext(ctx, r.Method, f.URL, nil)
	if err != nil {
		return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Err: err}
	}
	for k, v := range f.Header {
		req.Header[k] = v
	}
	for _, h := range requestHeaders {
		if v := r.Header[h]; len(v) > 0 {
			req.Header[h] = v
		}
	}
	resp, err := p.Transport(f.Source).RoundTrip(req)
	if err != nil {
		return p.fetchError(ctx, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent, http.StatusNotModified, http.StatusRequestedRangeNotSatisfiable, http.StatusPreconditionFailed:
	case http.StatusNotFound:
		return &Error{Status: http.StatusNotFound, Code: "object_not_found", Message: "the object does not exist"}
	case http.StatusForbidden, http.StatusUnauthorized:
		p.errors.WithLabelValues("denied").Inc()
		return &Error{Status: http.StatusBadGateway, Code: "storage_denied", Message: "storage refused the edge's request",
			Err: errors.New(resp.Status)}
	default:
		p.errors.WithLabelValues("status").Inc()
		return &Error{Status: http.StatusBadGateway, Code: "storage_error", Message: "storage answered with an error",
			Err: errors.New(resp.Status)}
	}
	h := w.Header()
	for _, k := range responseHeaders {
		if v := resp.Header[k]; len(v) > 0 {
			h[k] = v
		}
	}
	h["Cache-Control"] = privateCache
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead || resp.StatusCode == http.StatusNotModified {
		return nil
	}
	n, err := p.copy(w, resp.Body)
	p.bytes.Add(float64(n))
	if err != nil {
		if ctx.Err() == nil {
			p.errors.WithLabelValues("mid_stream").Inc()
			p.log.Warn("stream aborted", zap.String("source", f.Source), zap.Int64("sent", n), zap.Error(err))
		}
		panic(http.ErrAbortHandler)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// copy moves the body with a pooled buffer, extending the write deadline
// for every chunk so a long video is not cut by the server's
// WriteTimeout while a stalled client still is.
func (p *Proxy) copy(w http.ResponseWriter, body io.Reader) (int64, error) {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	var n int64
	for {
		nr, rerr := body.Read(buf)
		if nr > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// fetchError maps a transport failure: the client gone, a timeout (504),
// or storage unreachable (502).
func (p *Proxy) fetchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &Error{Status: 499, Code: "client_closed", Message: "client went away", Err: ctx.Err()}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			p.errors.WithLabelValues("unreachable").Inc()
			return &Error{Status: http.StatusBadGateway, Code: "storage_unreachable", Message: "storage could not be reached", Err: err}
		}
		p.errors.WithLabelValues("timeout").Inc()
		return &Error{Status: http.StatusGatewayTimeout, Code: "storage_timeout", Message: "storage did not answer in time", Err: err}
	}
	p.errors.WithLabelValues("unreachable").Inc()
	return &Error{Status: http.StatusBadGateway, Code: "storage_unreachable", Message: "storage could not be reached", Err: err}
}
