// Package admin is the edge's second listener, for the platform's backend
// and never for browsers: every route behind a bearer token compared in
// constant time with every configured token (several, so they rotate),
// JSON in and out, errors in the object API's shape.
//
// The composition root builds a Server, registers routes with Handle (one
// call per route; the connections routes are ready-made below) and runs it.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edge/internal/httperr"
	"go.uber.org/zap"
)

// MinTokenBytes is the shortest admin token accepted.
const MinTokenBytes = 32

// Config is the `admin` key. The listener is off while Listen is empty.
type Config struct {
	Listen string   `yaml:"listen"`
	Tokens []string `yaml:"tokens"` // secrets: never logged, returned or echoed
}

// Defaults fills the keys left empty (none: admin is off unless configured).
func (c *Config) Defaults() {}

// Enabled reports whether the admin listener is configured.
func (c Config) Enabled() bool { return c.Listen != "" }

// Validate reports every problem at once, naming keys under key (normally
// "admin") and never echoing a value.
func (c Config) Validate(key string) []error {
	var errs []error
	if !c.Enabled() {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, errors.New(key+".listen: must be HOST:PORT (e.g. 127.0.0.1:9091)"))
	}
	if len(c.Tokens) == 0 {
		errs = append(errs, errors.New(key+".tokens: at least one token is required when admin.listen is set"))
	}
	seen := map[string]bool{}
	for i, t := range c.Tokens {
		k := fmt.Sprintf("%s.tokens[%d]", key, i)
		switch {
		case len(t) < MinTokenBytes:
			errs = append(errs, fmt.Errorf("%s: must be at least %d bytes (e.g. `openssl rand -hex 32`)", k, MinTokenBytes))
		case strings.TrimSpace(t) != t || strings.ContainsAny(t, " \t\r\n"):
			errs = append(errs, fmt.Errorf("%s: must not contain white space", k))
		case seen[t]:
			errs = append(errs, fmt.Errorf("%s: repeats an earlier token", k))
		}
		seen[t] = true
	}
	return errs
}

// HandlerFunc is an admin route: it writes its answer, or returns an error
// (an *httperr.Error for a public refusal; anything else is a 500 whose
// cause only the log sees).
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Server is the admin listener.
type Server struct {
	log    *zap.Logger
	mux    *http.ServeMux
	tokens atomic.Pointer[[][sha256.Size]byte]

	mu     sync.Mutex
	routes map[string]map[string]HandlerFunc // pattern -> method -> handler

	// Timeouts of the http.Server Run builds; New sets defaults.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout, ShutdownTimeout time.Duration
	// MaxBodyBytes bounds a request body (a source spec).
	MaxBodyBytes int64
}

// New builds a Server that accepts cfg.Tokens. log may be nil.
func New(cfg Config, log *zap.Logger) (*Server, error) {
	if errs := cfg.Validate("admin"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		log:               log.Named("admin"),
		mux:               http.NewServeMux(),
		routes:            map[string]map[string]HandlerFunc{},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // a streamed manifest may take a while
		IdleTimeout:       2 * time.Minute,
		ShutdownTimeout:   10 * time.Second,
		MaxBodyBytes:      1 << 20,
	}
	s.SetTokens(cfg.Tokens)
	s.mux.Handle("/", s.wrap(func(http.ResponseWriter, *http.Request) error { return errNotFound }))
	return s, nil
}

// SetTokens replaces the accepted tokens (a SIGHUP with a new config).
// Only their SHA-256 digests are kept.
func (s *Server) SetTokens(tokens []string) {
	ds := make([][sha256.Size]byte, 0, len(tokens))
	for _, t := range tokens {
		ds = append(ds, sha256.Sum256([]byte(t)))
	}
	s.tokens.Store(&ds)
}

// Handle registers h for method and pattern, a net/http ServeMux path
// pattern such as "/admin/v1/connections/{name}" (read wildcards with
// r.PathValue). Another method on a registered pattern answers 405 with
// Allow; an unknown path 404; both as JSON, and only after the token.
func (s *Server) Handle(method, pattern string, h HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	methods, ok := s.routes[pattern]
	if !ok {
		methods = map[string]HandlerFunc{}
		s.routes[pattern] = methods
		s.mux.Handle(pattern, s.wrap(func(w http.ResponseWriter, r *http.Request) error {
			s.mu.Lock()
			h, ok := methods[r.Method]
			if !ok && r.Method == http.MethodHead {
				h, ok = methods[http.MethodGet]
			}
			allow := allowHeader(methods)
			s.mu.Unlock()
			if !ok {
				w.Header().Set("Allow", allow)
				return errMethod
			}
			return h(w, r)
		}))
	}
	methods[method] = h
}

func allowHeader(methods map[string]HandlerFunc) string {
	var ms []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if _, ok := methods[m]; ok || (m == http.MethodHead && methods[http.MethodGet] != nil) {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

// Handler returns the server's handler: request id, token check, routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Errors with no cause.
var (
	errUnauthorized = httperr.New(http.StatusUnauthorized, "admin_unauthorized", "a valid admin bearer token is required", nil)
	errNotFound     = httperr.New(http.StatusNotFound, "not_found", "no such route", nil)
	errMethod       = httperr.New(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed", nil)
	// ErrUnknownSource is the answer for a connection name that is not there.
	ErrUnknownSource = httperr.New(http.StatusNotFound, "unknown_source", "no source by that name", nil)
)

// wrap gives a route its request id, the token check, the body limit and
// the one place errors are rendered and logged.
func (s *Server) wrap(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("Cache-Control", "no-store")
		var err error
		if !s.authorized(r) {
			err = errUnauthorized
		} else {
			if r.Body != nil {
				r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
			}
			err = h(w, r)
		}
		status := http.StatusOK
		if err != nil {
			e := WriteError(w, r, id, err)
			status = e.Status
			if e.Status >= 500 {
				s.log.Error("admin request failed", zap.String("request_id", id), zap.String("method", r.Method),
					zap.String("path", r.URL.Path), zap.Int("status", e.Status), zap.Error(e.Err))
			}
		}
		if s.log.Core().Enabled(zap.InfoLevel) {
			s.log.Info("admin request", zap.String("request_id", id), zap.String("method", r.Method),
				zap.String("path", r.URL.Path), zap.Int("status", status), zap.Duration("duration", time.Since(start)),
				zap.String("remote", r.RemoteAddr))
		}
	})
}

// authorized checks the bearer token against every configured token in
// constant time: digests make the lengths equal, and no token ends the
// loop early.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	ok := 0
	for _, want := range *s.tokens.Load() {
		ok |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return ok == 1
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WriteError renders err as `{"error","message","request_id"}`; only an
// *httperr.Error's public code and message reach the client. It returns
// the error rendered.
func WriteError(w http.ResponseWriter, r *http.Request, requestID string, err error) *httperr.Error {
	var e *httperr.Error
	if !errors.As(err, &e) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e = httperr.New(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is too large", err)
		} else {
			e = httperr.New(http.StatusInternalServerError, "internal", "internal error", err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="edge-admin"`)
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return e
	}
	b, _ := json.Marshal(struct {
		Error     string `json:"error"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}{e.Code, e.Message, requestID})
	w.Write(append(b, '\n'))
	return e
}

// WriteJSON writes v as a 200 JSON answer.
func WriteJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
	return nil
}

// Run serves on ln until ctx ends, then shuts down gracefully (requests
// in flight get ShutdownTimeout to finish).
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		return err
	}
	return nil
}
