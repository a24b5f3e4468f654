package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/stream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// recorder notes what the access log and metrics need about one request.
// It is pooled; Unwrap lets http.ResponseController reach the connection.
// Only reqState is reset per request: the zap field array and the line
// buffer are kept (copying ~1 KiB of pointer slots per request cost write
// barriers whenever the GC was marking).
type recorder struct {
	reqState
	fields [14]zap.Field // the access log line's through zap, reused
	line   []byte        // the hand-written access line's buffer, kept across requests
}

// reqState is what one request sets.
type reqState struct {
	http.ResponseWriter
	status  int
	bytes   int64
	route   int
	mode    int
	source  string
	subject string
	// issuer and tokenID are the verified token's iss and jti, and key
	// the object key as /v1/s names it: for the audit record.
	issuer  string
	tokenID string
	key     string
	cache   string
	id      string // the request id (X-Request-Id)
	// deadline is the request's (server.request_timeout), on the real
	// clock: applied where the request waits (a signing, storage).
	deadline time.Time
	err      *Error
	// start is when the request began, on the server's clock (latency,
	// and the deadline when that clock is the real one); now is when
	// presigned last read it, what Cache-Control counts from.
	start time.Time
	now   time.Time
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps sendfile for files served from disk.
func (w *recorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Precomputed header values.
var (
	hdrNoReferrer = []string{"no-referrer"}
	hdrPrivate    = []string{"private"}
	hdrNoStore    = []string{"no-store"}
	hdrAllowRead  = []string{"GET, HEAD, OPTIONS"}
	hdrAllowPost  = []string{"POST, OPTIONS"}
	hdrAllowOps   = []string{"GET, HEAD"}
	hdrClose      = []string{"close"}
	hdrJSON       = []string{"application/json"}
	hdrNoSniff    = []string{"nosniff"}
	hdrSandbox    = []string{"sandbox"} // served objects never run script on the edge's origin
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	rec := s.recs.Get().(*recorder)
	rec.reqState = reqState{ResponseWriter: w, route: routeOther, start: start}
	rec.id = s.requestID(rec, r)
	if s.realNow {
		rec.deadline = start.Add(s.cfg.Server.RequestTimeout)
	} else {
		rec.deadline = time.Now().Add(s.cfg.Server.RequestTimeout)
	}
	defer func() {
		// A panic (an aborted stream) still gets its log line and metric.
		p := recover()
		status := rec.status
		if p != nil {
			// An aborted response: the client went away (499), or storage
			// failed after the status was sent (502 in the log; the client
			// saw a broken transfer). Any other panic is a bug: 500.
			code := "client_closed"
			status = 499
			switch {
			case p != http.ErrAbortHandler:
				status, code = http.StatusInternalServerError, "internal"
				rec.err = newError(status, code, "internal error", fmt.Errorf("panic: %v", p))
			case r.Context().Err() == nil:
				status, code = http.StatusBadGateway, "aborted"
			}
			if rec.err == nil {
				rec.err = newError(status, code, "response aborted", nil)
			}
		}
		s.finish(rec, r, status, start)
		s.recs.Put(rec)
		if p != nil {
			panic(p)
		}
	}()
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		// No route takes a body. One framed by both Content-Length and
		// Transfer-Encoding could be read differently by a proxy in
		// front (request smuggling, RFC 9112 section 6.1): the
		// connection is closed after the refusal, so no byte after the
		// headers is ever read as another request.
		rec.Header()["Connection"] = hdrClose
		rec.route = objectRoute(r.URL.Path) // an object request refused is audited too
		rec.err = writeError(rec, r, errBodyNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/"):
		s.cors.ServeHTTP(rec, r, s.serveV1)
	case p == "/healthz" || p == "/readyz" || p == "/metrics":
		rec.route = routeOps
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rec.Header()["Allow"] = hdrAllowOps
			rec.err = writeError(rec, r, errMethod)
			return
		}
		switch p {
		case "/healthz":
			rec.Header()["Cache-Control"] = hdrNoStore
			io.WriteString(rec, "ok\n")
		case "/readyz":
			rec.Header()["Cache-Control"] = hdrNoStore
			if why := s.ready.Load(); why != nil {
				rec.err = writeError(rec, r, newError(http.StatusServiceUnavailable, "not_ready", *why, nil))
				return
			}
			io.WriteString(rec, "ready\n")
		default:
			s.metricsH.ServeHTTP(rec, r)
		}
	default:
		if h, ok := s.extra[p]; ok {
			rec.route = routeDemo
			h.ServeHTTP(rec, r)
			return
		}
		rec.err = writeError(rec, r, errNotFound)
	}
}

// serveV1 routes the object API; CORS has been applied.
func (s *Server) serveV1(w http.ResponseWriter, r *http.Request) {
	rec := w.(*recorder)
	var err error
	escaped := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(escaped, "/v1/s/"):
		rec.route = routeObject
		err = s.serveObject(rec, r, escaped[len("/v1/s/"):])
	case escaped == "/v1/u":
		rec.route = routeURL
		err = s.serveStorageURL(rec, r)
	case strings.HasPrefix(escaped, "/v1/f/"):
		rec.route = routeFile
		err = s.serveSignedFile(rec, r, escaped[len("/v1/f/"):])
		if name, _, _ := strings.Cut(escaped[len("/v1/f/"):], "/"); rec.source != "" {
			if src := s.source(name); src != nil {
				rec.source = src.logName
			}
		}
	case escaped == "/v1/session":
		rec.route = routeSession
		err = s.serveSession(rec, r)
	default:
		err = errNotFound
	}
	if err != nil {
		if rec.status != 0 {
			// Headers are out: nothing more to say but to abort.
			panic(http.ErrAbortHandler)
		}
		rec.err = writeError(rec, r, err)
	}
}

func readMethod(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	w.Header()["Allow"] = hdrAllowRead
	return errMethod
}

// readRef checks the method and parses an object reference (the path after
// /v1/s/ or /v1/f/), noting the source for the log.
func readRef(w *recorder, r *http.Request, ref string) (name, key string, err error) {
	if err := readMethod(w, r); err != nil {
		return "", "", err
	}
	name, key, err = parseRef(ref)
	if err != nil {
		return "", "", newError(http.StatusBadRequest, "bad_reference", "malformed reference: "+err.Error(), nil)
	}
	// The log names the source once it is known to be configured: a
	// request-chosen name could be 60 KB.
	w.source = unknownSource
	return name, key, nil
}

// serveObject answers /v1/s/{source}/{key...}: the request's whole story,
// cheap checks first, cryptography second, network last.
func (s *Server) serveObject(w *recorder, r *http.Request, ref string) error {
	name, key, err := readRef(w, r, ref)
	if err != nil {
		return err
	}
	w.key = key
	src := s.source(name)
	if src != nil {
		w.source = src.logName
	}
	claims, err := s.authenticate(w, r)
	if err != nil {
		return err
	}
	// An unknown source is 404 whatever the token grants, as on /v1/u
	// (PRODUCT.md's answer table); only authenticated callers learn it.
	if src == nil {
		return errUnknownSource
	}
	if err := s.allow(w, r, src); err != nil {
		return err
	}
	if !claims.Allows(name, key) {
		return errForbidden
	}
	return s.deliver(w, r, src, key)
}

// serveStorageURL answers /v1/u?url=STORAGE_URL.
func (s *Server) serveStorageURL(w *recorder, r *http.Request) error {
	if err := readMethod(w, r); err != nil {
		return err
	}
	raw := auth.QueryValue(r.URL.RawQuery, "url")
	if raw == "" {
		return errMissingURL
	}
	loc, err := ParseStorageURL(raw)
	if err != nil {
		return newError(http.StatusBadRequest, "bad_storage_url", "malformed storage URL: "+err.Error(), nil)
	}
	claims, err := s.authenticate(w, r)
	if err != nil {
		return err
	}
	src, key := s.resolveLocation(loc)
	if src == nil {
		return errUnknownBucket
	}
	w.source = src.logName
	w.key = key
	if err := s.allow(w, r, src); err != nil {
		return err
	}
	if !claims.Allows(src.Name, key) {
		return errForbidden
	}
	return s.deliver(w, r, src, key)
}

// authenticate extracts and verifies the token (cached).
func (s *Server) authenticate(w *recorder, r *http.Request) (*auth.Claims, error) {
	return s.verify(w, auth.FromRequest(r), auth.ErrMissing.Message)
}

// verify checks tok for a request (an empty token is token_missing, with
// the given message) and notes its subject for the log.
func (s *Server) verify(w *recorder, tok, missing string) (*auth.Claims, error) {
	if tok == "" {
		return nil, newError(http.StatusUnauthorized, auth.ErrMissing.Code, missing, nil)
	}
	claims, hit, err := s.verifier.Verify(tok)
	if err != nil {
		s.metrics.tokenError.Inc()
		var ae *auth.Error
		if errors.As(err, &ae) {
			return nil, newError(http.StatusUnauthorized, ae.Code, ae.Message, ae.Err)
		}
		return nil, newError(http.StatusUnauthorized, "token_invalid", "the token is not valid", err)
	}
	if hit {
		s.metrics.tokenHit.Inc()
	} else {
		s.metrics.tokenMiss.Inc()
	}
	w.subject = claims.Subject
	w.issuer = claims.Issuer
	w.tokenID = claims.ID
	return claims, nil
}

// deliver answers for an authorised object: a redirect to a cached
// presigned URL, or the bytes.
func (s *Server) deliver(w *recorder, r *http.Request, src *Source, key string) error {
	w.mode = src.mode
	if err := checkObjectRequest(r, src, key); err != nil {
		return err
	}
	if src.mode == modeStream {
		if src.file != nil {
			return s.serveFile(w, r, src, key)
		}
		p, _, err := s.presigned(r.Context(), w, src, r.Method, key, true)
		if err != nil {
			return err
		}
		return s.streams.Serve(s.throttled(w, r), r, stream.Fetch{Source: src.Name, URL: p.URL(), Header: p.header, Deadline: w.deadline})
	}
	p, until, err := s.presigned(r.Context(), w, src, r.Method, key, false)
	if err != nil {
		return err
	}
	h := w.Header()
	h["Location"] = p.loc[:]
	h["Cache-Control"] = cacheControl(until.Sub(w.now))
	h["Referrer-Policy"] = hdrNoReferrer
	// A redirect's headers never reach a page's script (fetch follows it,
	// or hands back an opaque redirect): exposing headers on it is ~100
	// bytes per thumbnail for nothing. The CORS check on the redirect
	// needs only Allow-Origin and Allow-Credentials.
	delete(h, "Access-Control-Expose-Headers")
	w.WriteHeader(http.StatusFound)
	return nil
}

// urlKey names one cached URL: the key is a substring of the request's
// path, so building it allocates nothing.
type urlKey struct {
	src  *Source
	key  string
	head bool // a HEAD URL (else GET): each is only valid for its method
}

// cachedURL is what the URL cache keeps per URL, inside its own node:
// the URL as the Location header's value (one string; the header slices
// the array, so a hit allocates nothing), and for stream mode the
// headers fetching it requires. Cache-Control comes from maxAgeHeaders,
// shared by every URL.
type cachedURL struct {
	loc     [1]string
	header  http.Header // signer.Presigned.Header: ForFetch only
	expires int64       // signer.Presigned.Expires, Unix nanoseconds
}

// URL is the presigned URL.
func (c *cachedURL) URL() string { return c.loc[0] }

// Expires is when the URL stops working.
func (c *cachedURL) Expires() time.Time { return time.Unix(0, c.expires).UTC() }

// maxAgeHeader is one Cache-Control value.
type maxAgeHeader struct {
	age int64
	hdr [1]string
}

// maxAgeHeaders holds the Cache-Control values in use, by max-age (mod
// the table's size): the URLs of one signing window share their serve
// limit, so they share one value per second, built by the first request
// of that second. Header values are never modified by net/http, so one
// value serves every request. Reads and writes are atomic: no lock.
var maxAgeHeaders [1024]atomic.Pointer[maxAgeHeader]

// cacheControl returns "private, max-age=N" for a URL that may be served
// for ttl more.
func cacheControl(ttl time.Duration) []string {
	age := max(int64(ttl/time.Second), 0)
	slot := &maxAgeHeaders[age%int64(len(maxAgeHeaders))]
	if m := slot.Load(); m != nil && m.age == age {
		return m.hdr[:]
	}
	m := &maxAgeHeader{age: age, hdr: [1]string{"private, max-age=" + strconv.FormatInt(age, 10)}}
	slot.Store(m)
	return m.hdr[:]
}

// newCachedURL is what the cache keeps of p.
func newCachedURL(p signer.Presigned) cachedURL {
	return cachedURL{loc: [1]string{p.URL}, header: p.Header, expires: p.Expires.UnixNano()}
}

// presigned returns the source's URL for key and the instant until which
// it may be served, from the cache or signed at the start of the current
// signing window (one signing per URL however many requests miss at
// once). The URL is the cache's: the caller must not modify it.
func (s *Server) presigned(ctx context.Context, w *recorder, src *Source, method, key string, forFetch bool) (*cachedURL, time.Time, error) {
	ck := urlKey{src: src, key: key, head: method == http.MethodHead}
	// A fresh reading (authentication or a limiter may have waited since
	// the request began): what the hit is checked against and what
	// Cache-Control counts from.
	w.now = s.now()
	if v, until, ok := s.urls.CachedRef(ck, w.now); ok {
		s.metrics.presignHit.Inc()
		w.cache = "hit"
		return v, until, nil
	}
	// The key points into the request line, token included: a cached key
	// gets its own copy, which is also the tail of the key signed (one
	// allocation for both; a concatenation with "" would not copy).
	var full string
	if src.Prefix != "" {
		full = src.Prefix + key
	} else {
		full = strings.Clone(key)
	}
	ck.key = full[len(src.Prefix):]
	m := http.MethodGet
	if ck.head {
		m = http.MethodHead
	}
	load := func(ctx context.Context) (cachedURL, time.Time, error) {
		// The signer says how long its URL may be handed out (window,
		// margins, expiring credentials): the cache only keeps it so long.
		p, err := src.signer.Presign(ctx, signer.Request{Method: m, Key: full,
			At: s.now().Truncate(src.window), TTL: src.ttl, Window: src.window, ForFetch: forFetch})
		if err != nil {
			return cachedURL{}, time.Time{}, err
		}
		return newCachedURL(p), p.ServeUntil, nil
	}
	v, until, hit, err := s.urls.LoadRef(ctx, ck, s.now, load)
	if t := s.now(); err == nil && !t.Before(until) {
		// The signing outlasted its window (a credential wait across the
		// boundary): its URL may not be handed out; sign the new window's.
		// A signer slower than a whole window outlasts this one too: its
		// URL (still valid: ServeUntil keeps a margin before it expires)
		// is then answered with max-age 0 rather than an error.
		v, until, hit, err = s.urls.LoadRef(ctx, ck, s.now, load)
	}
	if err != nil {
		s.metrics.presignError.Inc()
		if errors.Is(err, signer.ErrCredentials) {
			return nil, time.Time{}, newError(http.StatusServiceUnavailable, "credentials_unavailable", "the source's credentials are unavailable", err)
		}
		if ctx.Err() != nil {
			return nil, time.Time{}, newError(499, "client_closed", "client went away", err)
		}
		return nil, time.Time{}, newError(http.StatusBadGateway, "presign_failed", "the URL could not be signed", err)
	}
	w.now = s.now() // after the signing (or the wait for another's): max-age counts from here
	if hit {
		s.metrics.presignHit.Inc()
		w.cache = "hit"
	} else {
		s.metrics.presignMiss.Inc()
		w.cache = "miss"
	}
	return v, until, nil
}

// serveSignedFile answers /v1/f/{source}/{key...}?exp=…&sig=…: a URL the
// edge signed for a file source in redirect mode; no token needed.
func (s *Server) serveSignedFile(w *recorder, r *http.Request, ref string) error {
	name, key, err := readRef(w, r, ref)
	if err != nil {
		return err
	}
	w.key = key
	src, ok := s.sources().byName[name]
	if !ok || src.file == nil {
		return errUnknownSource
	}
	q := r.URL.RawQuery
	switch err := src.file.Verify(key, auth.QueryValue(q, "exp"), auth.QueryValue(q, "sig"), s.now()); err {
	case nil:
	case signer.ErrURLExpired:
		return errURLExpired
	default:
		return errURLSignature
	}
	w.mode = modeRedirect
	return s.serveFile(w, r, src, key)
}

// serveFile streams one file of a file source, with Range and conditional
// requests (http.ServeContent); the body is read from disk as it is sent.
func (s *Server) serveFile(w *recorder, r *http.Request, src *Source, key string) error {
	name := path.Clean(src.Prefix + key)
	if !fs.ValidPath(name) {
		return newError(http.StatusBadRequest, "bad_reference", "malformed reference", nil)
	}
	release, err := s.streams.Acquire()
	if err != nil {
		return err
	}
	defer release()
	f, err := src.file.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			return errObjectNotFound
		}
		return newError(http.StatusBadGateway, "storage_error", "the file could not be read", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		return errObjectNotFound
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		return newError(http.StatusInternalServerError, "internal", "internal error", errors.New("file is not seekable"))
	}
	h := w.Header()
	h["Cache-Control"] = hdrPrivate
	h["X-Content-Type-Options"] = hdrNoSniff
	h["Content-Security-Policy"] = hdrSandbox
	h["Etag"] = []string{`"` + strconv.FormatInt(fi.ModTime().UnixNano(), 36) + "-" + strconv.FormatInt(fi.Size(), 36) + `"`}
	// A long video must not be cut by server.write_timeout while a stalled
	// client still is: the deadline moves with every chunk written.
	if !stream.RangeAllowed(r.Header.Get("Range"), fi.Size()) {
		// Too many ranges, or overlapping ones adding up past the
		// object: the whole object, 200 (RFC 9110 section 14.2 lets a
		// server ignore Range).
		r.Header.Del("Range")
	}
	// In stream mode the subject's bytes_per_second slows the copy (it
	// hides sendfile); /v1/f has no subject and is never slowed.
	http.ServeContent(&deadlineWriter{ResponseWriter: s.throttled(w, r), rc: http.NewResponseController(w), d: s.cfg.Server.WriteTimeout}, r, name, fi.ModTime(), rs)
	return nil
}

// serveSession answers POST /v1/session: it verifies the bearer token and
// sets it as the edge_token cookie for pages that load with
// crossorigin="use-credentials". SameSite=None with Secure is what
// browsers require for the cookie to travel on cross-site requests.
func (s *Server) serveSession(w *recorder, r *http.Request) error {
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = hdrAllowPost
		return errMethod
	}
	tok := auth.BearerToken(r)
	claims, err := s.verify(w, tok, "POST /v1/session takes the token in Authorization: Bearer")
	if err != nil {
		return err
	}
	exp := claims.ExpiresAt.Time
	http.SetCookie(w, &http.Cookie{
		Name:     auth.CookieName,
		Value:    tok,
		Path:     "/v1/",
		Expires:  exp,
		MaxAge:   int(exp.Sub(s.now()) / time.Second),
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteNoneMode,
		// Partitioned (CHIPS): a page on another site gets a cookie kept
		// for that top-level site only, which browsers that block
		// third-party cookies still store and send (headless Chromium
		// blocks the unpartitioned one: e2e/browser).
		Partitioned: true,
	})
	h := w.Header()
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// finish writes the access log line and counts the request. It never logs
// the query (tokens, signatures) or headers (cookies, Authorization).
func (s *Server) finish(rec *recorder, r *http.Request, status int, start time.Time) {
	if status == 0 {
		status = http.StatusOK
	}
	now := s.now()
	elapsed := now.Sub(start)
	s.metrics.request(rec.route, rec.mode, status, elapsed.Seconds())
	if s.audit != nil && auditRoute(rec.route) {
		s.writeAudit(rec, r, status, now)
	}
	lvl := zapcore.InfoLevel
	switch {
	case status >= 500 && status != 499:
		lvl = zapcore.ErrorLevel
	case rec.route == routeOps:
		// Probes and scrapes every few seconds would drown the log.
		lvl = zapcore.DebugLevel
	}
	method := logMethod(r.Method)
	if s.line != nil {
		if s.line.Enabled(lvl) {
			s.line.write(rec, lvl, method, status, elapsed, now)
		}
		return
	}
	zapAccessLine(s.log, rec, lvl, method, status, elapsed)
}

// zapAccessLine writes the access line through log: for a logger that is
// not NewLogger's (appendAccessLine writes the same bytes).
func zapAccessLine(log *zap.Logger, rec *recorder, lvl zapcore.Level, method string, status int, elapsed time.Duration) {
	ce := log.Check(lvl, "request")
	if ce == nil {
		return
	}
	fields := append(rec.fields[:0],
		zap.String("method", method),
		zap.String("route", routeNames[rec.route]),
		zap.Int("status", status),
		zap.Duration("latency", elapsed),
		zap.Int64("bytes", rec.bytes),
		zap.String("request_id", rec.id),
	)
	if rec.source != "" {
		fields = append(fields, zap.String("source", rec.source))
	}
	if rec.mode != modeNone {
		fields = append(fields, zap.String("mode", modeNames[rec.mode]))
	}
	if rec.subject != "" {
		fields = append(fields, zap.String("subject", bound(rec.subject, maxLogSubject)))
	}
	if rec.cache != "" {
		fields = append(fields, zap.String("cache", rec.cache))
	}
	if rec.err != nil {
		fields = append(fields, zap.String("error", rec.err.Code))
		if rec.err.Err != nil {
			fields = append(fields, zap.String("cause", bound(Redact(rec.err.Err.Error()), maxLogCause)))
		}
	}
	ce.Write(fields...)
}

// unknownSource is what the log shows for a source name that is not
// configured: the name is the request's, of any length.
const unknownSource = "(unknown)"

// Bounds of request-derived log fields.
const (
	maxLogSubject = 128 // a verified token's sub
	maxLogCause   = 512
)

// bound cuts s to at most n bytes, marking the cut.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(cut)"
}

// logMethod names the request's method for the log: the known ones as
// they are, anything else (a client may send a 60 KB token) as "(other)".
func logMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions, http.MethodPut,
		http.MethodDelete, http.MethodPatch, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "(other)"
}

var secretParam = regexp.MustCompile(`(?i)((?:x-amz-signature|x-amz-security-token|x-amz-credential|x-goog-signature|x-goog-credential|sig|token|signature|skoid|sktid)=)[^&\s"']*`)

// Redact blanks signatures, credentials and tokens in text bound for a log
// (an error that quotes a presigned URL, say).
func Redact(s string) string {
	if !strings.Contains(s, "=") {
		return s
	}
	return secretParam.ReplaceAllString(s, "${1}REDACTED")
}

// deadlineWriter extends the connection's write deadline before every
// write, so a response is bounded per chunk, not as a whole.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.d > 0 && w.rc != nil {
		if w.rc.SetWriteDeadline(time.Now().Add(w.d)) != nil {
			w.rc = nil // not supported here: stop asking
		}
	}
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// deadlineChunk is how much one write deadline covers when the body goes
// out by sendfile.
const deadlineChunk = 256 << 10

// ReadFrom keeps sendfile: http.ServeContent hands the file as an
// io.LimitedReader, which is passed on in chunks, the deadline moved
// before each.
func (w *deadlineWriter) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	lr, limited := r.(*io.LimitedReader)
	if !ok || !limited {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	var total int64
	for lr.N > 0 {
		if w.d > 0 && w.rc != nil && w.rc.SetWriteDeadline(time.Now().Add(w.d)) != nil {
			w.rc = nil
		}
		chunk := min(lr.N, deadlineChunk)
		n, err := rf.ReadFrom(&io.LimitedReader{R: lr.R, N: chunk})
		lr.N -= n
		total += n
		if err != nil || n < chunk {
			return total, err
		}
	}
	return total, nil
}
