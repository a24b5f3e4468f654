package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edge/internal/httperr"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Error is a stream failure with the status and public code the edge
// answers with; Err is the cause, for logs only.
type Error = httperr.Error

// StatusClientClosed is the status logged when the client went away
// before an answer (nginx's 499); the client never sees it.
const StatusClientClosed = 499

// Errors without a cause are built once.
var (
	// ErrTooBusy is returned past max_concurrent streams.
	ErrTooBusy = &Error{Status: http.StatusServiceUnavailable, Code: "too_busy", Message: "too many streams in flight; retry shortly"}

	errNotFound       = &Error{Status: http.StatusNotFound, Code: "object_not_found", Message: "the object does not exist"}
	errRange          = &Error{Status: http.StatusRequestedRangeNotSatisfiable, Code: "range_not_satisfiable", Message: "the requested range is not satisfiable"}
	errPrecondition   = &Error{Status: http.StatusPreconditionFailed, Code: "precondition_failed", Message: "a precondition of the request does not hold"}
	errStalled        = errors.New("storage sent nothing within response_header_timeout")
	errShortBody      = errors.New("storage sent fewer bytes than its Content-Length")
	errRequestTimeout = errors.New("storage did not answer within server.request_timeout")
	msgUnreachable    = "storage could not be reached"
	msgTimeout        = "storage did not answer in time"
	msgStorageError   = "storage answered with an error"
	msgStorageDenied  = "storage refused the edge's request"
)

// Options carry what the proxy takes from outside its config.
type Options struct {
	Logger     *zap.Logger
	Registerer prometheus.Registerer
	// WriteTimeout is the server's write timeout (server.write_timeout).
	// Every chunk copied to the client moves the write deadline this far
	// ahead, so a long video is not cut by it while a client that stops
	// reading still is. Zero leaves the deadline alone.
	WriteTimeout time.Duration
}

// Proxy fetches objects from storage and copies them to clients. Build it
// with New, register every stream source with AddSource, then Serve.
type Proxy struct {
	cfg          Config
	log          *zap.Logger
	writeTimeout time.Duration
	sem          chan struct{}
	bufs         sync.Pool

	mu        sync.Mutex                           // serialises AddSource
	upstreams atomic.Pointer[map[string]*upstream] // copy on write: Serve reads without a lock

	active prometheus.Gauge
	bytes  prometheus.Counter
	errs   struct{ denied, status, unreachable, timeout, midStream prometheus.Counter }
}

// upstream is one source's clients: the shared transport, and for plain
// http:// storage with no proxy the proxy's own HTTP/1.1 client (h1.go).
type upstream struct {
	t  *http.Transport
	h1 *h1Client
}

// New builds the proxy. Transports are built by AddSource, once per source.
func New(cfg Config, opts Options) (*Proxy, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	p := &Proxy{
		cfg:          cfg,
		log:          opts.Logger,
		writeTimeout: opts.WriteTimeout,
		sem:          make(chan struct{}, cfg.MaxConcurrent),
		active:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "edge_streams_active", Help: "Streams in flight (stream mode, file sources included)."}),
		bytes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "edge_upstream_bytes_total", Help: "Object bytes copied from storage to clients in stream mode."}),
	}
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_upstream_errors_total", Help: "Storage failures in stream mode, by kind (denied, status, unreachable, timeout, mid_stream).",
	}, []string{"kind"})
	p.errs.denied = errs.WithLabelValues("denied")
	p.errs.status = errs.WithLabelValues("status")
	p.errs.unreachable = errs.WithLabelValues("unreachable")
	p.errs.timeout = errs.WithLabelValues("timeout")
	p.errs.midStream = errs.WithLabelValues("mid_stream")
	empty := map[string]*upstream{}
	p.upstreams.Store(&empty)
	size := cfg.BufferSize
	p.bufs.New = func() any { b := make([]byte, size); return &b }
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{p.active, p.bytes, errs} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// AddSource builds the shared, tuned transport of one stream source, once:
// all of the source's streams reuse its connections. Calling it again for
// the same name returns the transport already built.
func (p *Proxy) AddSource(name string) *http.Transport {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.upstreams.Load()
	if u, ok := old[name]; ok {
		return u.t
	}
	d := &net.Dialer{Timeout: p.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          p.cfg.IdleConnsPerHost,
		MaxIdleConnsPerHost:   p.cfg.IdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   p.cfg.ConnectTimeout,
		ResponseHeaderTimeout: p.cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// Object metadata is a few KiB at most; a hostile or broken
		// endpoint does not get the default 10 MiB of our memory.
		MaxResponseHeaderBytes: 64 << 10,
		// The browser's Accept-Encoding is not forwarded and the body is
		// passed through as stored.
		DisableCompression: true,
	}
	next := make(map[string]*upstream, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = &upstream{t: t, h1: newH1Client(p.cfg)}
	p.upstreams.Store(&next)
	return t
}

// RemoveSource drops the source's transport and closes its idle
// connections (a removed connection). Streams in flight keep theirs.
func (p *Proxy) RemoveSource(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.upstreams.Load()
	u, ok := old[name]
	if !ok {
		return
	}
	next := make(map[string]*upstream, len(old))
	for k, v := range old {
		if k != name {
			next[k] = v
		}
	}
	p.upstreams.Store(&next)
	u.t.CloseIdleConnections()
	u.h1.shut()
}

// Transport returns the source's shared transport, or nil when AddSource
// was never called for it.
func (p *Proxy) Transport(source string) *http.Transport {
	if u := (*p.upstreams.Load())[source]; u != nil {
		return u.t
	}
	return nil
}

// Close drops idle upstream connections. The proxy still serves, but the
// HTTP/1.1 client keeps no connection from now on: those that streams in
// flight release are closed (a closed Server's proxy is never used again).
func (p *Proxy) Close() {
	for _, u := range *p.upstreams.Load() {
		u.t.CloseIdleConnections()
		u.h1.shut()
	}
}

// Fetch is one object to stream.
type Fetch struct {
	Source string
	URL    string      // presigned for the request's method
	Header http.Header // headers the signature requires (SSE-C); never sent to the client
	// Deadline is the request's (server.request_timeout): storage must
	// have started answering by then (504). Zero: none.
	Deadline time.Time
}

// requestHeaders are forwarded to storage: Range and the conditionals.
// Nothing else of the client's request (Authorization, cookies, the token)
// ever reaches storage.
var requestHeaders = []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"}

// responseHeaders are passed back to the client, in canonical form
// (http.Header keys are canonical: "Etag", not "ETag").
var responseHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "Etag", "Last-Modified", "Accept-Ranges", "Content-Encoding", "Content-Disposition", "Content-Language", "Expires"}

// notModifiedHeaders are passed back on a 304: RFC 9110 section 15.4.5
// lists the validators and Expires; S3-compatible stores add
// "Content-Type: application/xml" to an empty 304, which must not reach a
// browser cache that merges the 304's headers into the stored response.
var notModifiedHeaders = []string{"Etag", "Last-Modified", "Expires"}

// Precomputed header values for every streamed answer.
var (
	hdrPrivate = []string{"private"}
	hdrNoSniff = []string{"nosniff"}
	// A stored HTML or SVG object opened on the edge's origin must not run
	// script there; images and videos are unaffected.
	hdrSandbox = []string{"sandbox"}
)

// Acquire takes a stream slot, or returns ErrTooBusy. Release with the
// returned function.
func (p *Proxy) Acquire() (func(), error) {
	select {
	case p.sem <- struct{}{}:
		p.active.Inc()
		return p.release, nil
	default:
		return nil, ErrTooBusy
	}
}

func (p *Proxy) release() {
	<-p.sem
	p.active.Dec()
}

// Serve fetches f and copies the answer to w. It returns an *Error before
// anything was written; after the first byte, a failure aborts the
// response (panic with http.ErrAbortHandler) so the client sees a broken
// transfer, never a short body presented as complete. The fetch runs under
// the request's context: a client that goes away cancels it at once.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, f Fetch) error {
	up := (*p.upstreams.Load())[f.Source]
	if up == nil {
		return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error",
			Err: fmt.Errorf("stream: source %q was never added", f.Source)}
	}
	release, err := p.Acquire()
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, r.Method, f.URL, nil)
	if err != nil {
		return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", Err: err}
	}
	for k, v := range f.Header {
		req.Header[k] = v
	}
	if err := CheckRequest(r.Header); err != nil {
		return err
	}
	ranged := len(r.Header["Range"]) == 1 && RangeAllowed(r.Header["Range"][0], -1)
	for _, h := range requestHeaders {
		if v := r.Header[h]; len(v) > 0 {
			if !ranged && (h == "Range" || h == "If-Range") {
				// Past the cap: the whole object (see RangeAllowed).
				continue
			}
			req.Header[h] = v
		}
	}
	if !f.Deadline.IsZero() {
		// The request's deadline holds until storage's answer starts;
		// the body is then bounded per chunk instead.
		dl := time.AfterFunc(time.Until(f.Deadline), func() { cancel(errRequestTimeout) })
		defer dl.Stop()
		resp, err := p.roundTrip(ctx, up, req)
		dl.Stop()
		return p.answer(ctx, w, r, f.Source, resp, err, cancel)
	}
	resp, err := p.roundTrip(ctx, up, req)
	return p.answer(ctx, w, r, f.Source, resp, err, cancel)
}

// roundTrip fetches req with the proxy's own client where it applies (plain
// http, no proxy), else with the source's transport.
func (p *Proxy) roundTrip(ctx context.Context, up *upstream, req *http.Request) (*http.Response, error) {
	if up.h1.handles(req) {
		return up.h1.roundTrip(ctx, req, p.cfg.ResponseHeaderTimeout)
	}
	return up.t.RoundTrip(req)
}

// answer copies storage's answer (or maps its failure) to w.
func (p *Proxy) answer(ctx context.Context, w http.ResponseWriter, r *http.Request, source string, resp *http.Response, err error, cancel context.CancelCauseFunc) error {
	if err != nil {
		if context.Cause(ctx) == errRequestTimeout && r.Context().Err() == nil {
			p.errs.timeout.Inc()
			return &Error{Status: http.StatusGatewayTimeout, Code: "storage_timeout", Message: msgTimeout, Err: errRequestTimeout}
		}
		return p.fetchError(r.Context(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		// A bounded prefix of the error body, for storage's error code
		// (the body itself, naming bucket and request ids, is never
		// logged); reading it lets the connection be reused.
		bp := p.bufs.Get().(*[]byte)
		n, _ := io.ReadFull(resp.Body, (*bp)[:errorBodyPrefix])
		err := p.statusError(resp, (*bp)[:n])
		p.bufs.Put(bp)
		if err != nil {
			_, _ = io.CopyN(io.Discard, resp.Body, 8<<10)
			return err
		}
	}
	h := w.Header()
	pass := responseHeaders
	if resp.StatusCode == http.StatusNotModified {
		pass = notModifiedHeaders
	}
	for _, k := range pass {
		if v := resp.Header[k]; len(v) > 0 {
			h[k] = v
		}
	}
	h["Cache-Control"] = privateCacheControl(resp.Header.Get("Cache-Control"))
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Content-Security-Policy"] = hdrSandbox
	if r.Method == http.MethodHead || resp.StatusCode == http.StatusNotModified {
		w.WriteHeader(resp.StatusCode)
		return nil
	}
	return p.copyBody(w, r, source, resp, cancel)
}

// copyBody sends resp's status and body to w with a pooled buffer: at
// most one buffer of the object is in memory per stream, and a slow
// client slows the reads from storage (TCP backpressure) instead of
// making the edge buffer. Every chunk is flushed as it arrives. Storage
// silent for response_header_timeout cancels the fetch. The status is
// sent only once the first chunk has arrived, so storage that fails
// before its first byte still gets a clean error answer.
func (p *Proxy) copyBody(w http.ResponseWriter, r *http.Request, source string, resp *http.Response, cancel context.CancelCauseFunc) error {
	if hb, ok := resp.Body.(*h1Body); ok && spliceable && resp.ContentLength > 0 && len(resp.TransferEncoding) == 0 &&
		r.ProtoMajor == 1 && r.TLS == nil {
		// A plain HTTP/1.1 client connection: net/http's ReadFrom on it
		// splices from a *net.TCPConn. A throttled writer hides ReadFrom.
		// Linux only: there the kernel splices, and TCP_INFO tells a
		// storage reset from a client leaving.
		if rf, ok := w.(io.ReaderFrom); ok {
			return p.spliceBody(w, rf, r, source, resp, hb, cancel)
		}
	}
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	idle := p.cfg.ResponseHeaderTimeout
	stall := time.AfterFunc(idle, func() { cancel(errStalled) })
	defer stall.Stop()
	read := func() (int, error) {
		stall.Reset(idle)
		n, err := resp.Body.Read(buf)
		stall.Stop()
		return n, err
	}

	nr, rerr := read()
	for nr == 0 && rerr == nil {
		nr, rerr = read()
	}
	if nr == 0 && rerr != nil && rerr != io.EOF {
		return p.bodyError(r.Context(), resp.Request.Context(), rerr)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	// A writer without deadlines or flushing answers with a freshly built
	// error on every call: ask once.
	deadlines, flush := p.writeTimeout > 0, true
	var sent int64
	for {
		if nr > 0 {
			if deadlines && rc.SetWriteDeadline(time.Now().Add(p.writeTimeout)) != nil {
				deadlines = false
			}
			nw, werr := w.Write(buf[:nr])
			sent += int64(nw)
			p.bytes.Add(float64(nw))
			// Bytes go out as they arrive: a short read would otherwise
			// wait in the server's 4 KiB buffer for the next one (a
			// video's first bytes, the status line itself).
			if werr == nil && flush {
				if err := rc.Flush(); errors.Is(err, http.ErrNotSupported) {
					flush = false
				} else {
					werr = err
				}
			}
			if werr != nil {
				// The client went away or stopped reading: nothing to
				// tell it, and nothing worth a warning.
				panic(http.ErrAbortHandler)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			p.abort(r.Context(), resp.Request.Context(), source, sent, rerr)
		}
		nr, rerr = read()
	}
	if resp.ContentLength >= 0 && sent != resp.ContentLength {
		p.abort(r.Context(), resp.Request.Context(), source, sent, errShortBody)
	}
	return nil
}

// abort ends a response whose headers are out: the client must see a
// broken transfer. Storage failures are counted and logged; a client that
// left is neither.
func (p *Proxy) abort(client, fetch context.Context, source string, sent int64, err error) {
	if client.Err() == nil {
		if c := context.Cause(fetch); c != nil {
			err = c
		}
		p.errs.midStream.Inc()
		if ce := p.log.Check(zap.WarnLevel, "stream aborted after the first byte"); ce != nil {
			ce.Write(zap.String("source", source), zap.Int64("sent", sent), zap.Error(err))
		}
	}
	panic(http.ErrAbortHandler)
}

// errorBodyPrefix is how much of an error body is read for its code.
const errorBodyPrefix = 4 << 10

// statusError maps storage's answer: the statuses passed through return
// nil; the rest become the edge's own errors (storage's error body, which
// names the bucket and request IDs, never reaches the client or the log:
// only its error code does, from body, a prefix of it).
func (p *Proxy) statusError(resp *http.Response, body []byte) error {
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent, http.StatusNotModified:
		return nil
	case http.StatusNotFound:
		return errNotFound
	case http.StatusRequestedRangeNotSatisfiable:
		return errRange
	case http.StatusPreconditionFailed:
		return errPrecondition
	}
	code := ErrorCode(resp.Header, body)
	cause := errors.New("storage answered " + resp.Status + codeSuffix(code))
	switch resp.StatusCode {
	case http.StatusForbidden, http.StatusUnauthorized:
		p.errs.denied.Inc()
		return &Error{Status: http.StatusBadGateway, Code: "storage_denied", Message: msgStorageDenied, Err: cause}
	case http.StatusBadRequest:
		if clientFault[code] {
			// The request was the client's mistake (a key or header
			// storage does not take): a 400, not a storage failure.
			return &Error{Status: http.StatusBadRequest, Code: "bad_request", Message: "storage refused the request as malformed", Err: cause}
		}
	}
	p.errs.status.Inc()
	return &Error{Status: http.StatusBadGateway, Code: "storage_error", Message: msgStorageError, Err: cause}
}

// clientFault are storage's 400 codes that name the client's request (its
// key or headers) as the fault. Any other 400 is the edge's (a signature,
// an expired session token, SSE-C parameters, a code this list does not
// know) and stays a 502 that alerts see; so is a 400 with no readable
// code, as every answer to HEAD is (it has no body).
var clientFault = map[string]bool{
	"KeyTooLongError": true, "InvalidURI": true, "InvalidUri": true, // S3, Azure
	"RequestHeaderSectionTooLarge": true, "OutOfRangeInput": true, "InvalidObjectName": true,
	"InvalidHeaderValue": true,
}

func codeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return " (" + code + ")"
}

// fetchError maps a transport failure before storage's answer: the client
// gone (499), a dial failure or timeout (502 storage_unreachable), storage
// that did not answer in time (504 storage_timeout), anything else on the
// way (502 storage_unreachable).
func (p *Proxy) fetchError(client context.Context, err error) error {
	if client.Err() != nil {
		return &Error{Status: StatusClientClosed, Code: "client_closed", Message: "client went away", Err: client.Err()}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" || isTLSHandshakeTimeout(err) {
		// A TLS handshake that does not finish within connect_timeout is
		// storage unreachable (502), like a dial that does not.
		p.errs.unreachable.Inc()
		return &Error{Status: http.StatusBadGateway, Code: "storage_unreachable", Message: msgUnreachable, Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.errs.timeout.Inc()
		return &Error{Status: http.StatusGatewayTimeout, Code: "storage_timeout", Message: msgTimeout, Err: err}
	}
	p.errs.unreachable.Inc()
	return &Error{Status: http.StatusBadGateway, Code: "storage_unreachable", Message: msgUnreachable, Err: err}
}

// bodyError maps a failure to read the body's first byte, before the
// status was sent.
func (p *Proxy) bodyError(client, fetch context.Context, err error) error {
	if client.Err() != nil {
		return &Error{Status: StatusClientClosed, Code: "client_closed", Message: "client went away", Err: client.Err()}
	}
	if context.Cause(fetch) == errStalled {
		p.errs.timeout.Inc()
		return &Error{Status: http.StatusGatewayTimeout, Code: "storage_timeout", Message: msgTimeout, Err: errStalled}
	}
	p.errs.status.Inc()
	return &Error{Status: http.StatusBadGateway, Code: "storage_error", Message: msgStorageError, Err: err}
}

// privateCacheControl keeps the freshness the object was stored with
// (max-age, no-cache, no-store, must-revalidate, immutable) but always
// private: the answer was authorised for one token, so no shared cache
// may keep it. Without stored directives it is plain "private", and the
// browser judges freshness from Last-Modified.
func privateCacheControl(stored string) []string {
	if stored == "" {
		return hdrPrivate
	}
	var b strings.Builder
	b.WriteString("private")
	for d := range strings.SplitSeq(stored, ",") {
		d = strings.TrimSpace(d)
		name, _, _ := strings.Cut(d, "=")
		switch strings.ToLower(name) {
		case "max-age", "no-cache", "no-store", "must-revalidate", "immutable", "no-transform":
			if len(d) <= 32 && isToken(d) {
				b.WriteString(", ")
				b.WriteString(d)
			}
		}
	}
	if b.Len() == len("private") {
		return hdrPrivate
	}
	return []string{b.String()}
}

// isToken accepts directive text of token characters, digits and '='.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '=') {
			return false
		}
	}
	return true
}

// isTLSHandshakeTimeout reports net/http's TLS handshake timeout (its
// type is unexported; the text is stable since Go 1.3).
func isTLSHandshakeTimeout(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "net/http: TLS handshake timeout" {
			return true
		}
	}
	return strings.HasSuffix(err.Error(), "net/http: TLS handshake timeout")
}
