// Package edge is the HTTP layer and composition root of the edge: config
// aggregation, server construction, routing, the object handler, reference
// parsing and error rendering.
package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/cache"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/stream"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Source is one configured source, built once at start.
type Source struct {
	Name   string
	Prefix string
	Mode   string
	mode   int
	ttl    time.Duration
	window time.Duration
	signer signer.Signer
	file   fileSigner // file provider only
	cfg    signer.Config

	endpointHost string // lowercased host[:port] of a custom endpoint
	endpointPath string // its path, without leading '/', with trailing '/' when set
	virtualHost  string // BUCKET.endpointHost: the bucket's virtual-hosted name there
}

// Options carry what the server takes from its caller besides the config.
type Options struct {
	Logger *zap.Logger
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// FileFS serves a file source from the given tree instead of its root
	// directory (the demo's embedded images).
	FileFS map[string]fs.FS
	// Extra routes mounted on the server's mux (the demo page).
	Extra map[string]http.Handler
}

// Server is the edge: build it with New, serve it with Run or Handler.
type Server struct {
	cfg      *Config
	log      *zap.Logger
	now      func() time.Time
	verifier *auth.Verifier
	sources  map[string]*Source
	ordered  []*Source
	urls     *cache.Loader[urlKey, *cachedURL]
	streams  *stream.Proxy
	metrics  *metrics
	cors     *cors.Cors
	extra    map[string]http.Handler
	handler  http.Handler
	metricsH http.Handler
	ready    atomic.Pointer[string] // nil: ready; otherwise what is not
	// notReadyCause is the last cause logged, so a changed one is logged too.
	notReadyCause atomic.Pointer[string]
	recs          sync.Pool
}

// New builds the server from a validated config: keys, signers,
// transports, caches and header values are all made here, once.
func New(ctx context.Context, cfg *Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		cfg:     cfg,
		log:     opts.Logger,
		now:     opts.Now,
		sources: map[string]*Source{},
		metrics: newMetrics(),
		extra:   opts.Extra,
	}
	var err error
	if s.verifier, err = auth.NewVerifier(cfg.Auth, opts.Now); err != nil {
		return nil, err
	}
	if s.urls, err = cache.NewLoader[urlKey, *cachedURL](cfg.Cache.MaxEntries); err != nil {
		return nil, err
	}
	if s.streams, err = stream.New(cfg.Stream, stream.Options{Logger: opts.Logger, Registerer: s.metrics.reg, WriteTimeout: cfg.Server.WriteTimeout}); err != nil {
		return nil, err
	}
	var errs []error
	for i, sc := range cfg.Sources {
		src := &Source{Name: sc.Name, Prefix: sc.Prefix, Mode: sc.Mode, ttl: sc.URLTTL, window: sc.SigningWindow, cfg: sc.Config}
		src.mode = modeRedirect
		if sc.Mode == ModeStream {
			src.mode = modeStream
		}
		if sc.Endpoint != "" {
			u, _ := url.Parse(sc.Endpoint)
			src.endpointHost = strings.ToLower(u.Host)
			src.virtualHost = strings.ToLower(sc.Bucket) + "." + src.endpointHost
			if p := strings.Trim(u.Path, "/"); p != "" {
				src.endpointPath = p + "/"
			}
		}
		sopts := signer.Options{Now: opts.Now, File: signer.FileOptions{
			BasePath: "/v1/f/" + signer.EscapePath(sc.Name) + "/",
			Prefix:   sc.Prefix,
			FS:       opts.FileFS[sc.Name],
		}}
		sg, err := signer.New(ctx, sc.Config, sopts)
		if err != nil {
			errs = append(errs, fmt.Errorf("sources[%d] (%s): %w", i, sc.Name, err))
			continue
		}
		src.signer = sg
		src.file, _ = sg.(fileSigner)
		if src.mode == modeStream && src.file == nil {
			s.streams.AddSource(sc.Name) // its transport, built once
		}
		s.sources[sc.Name] = src
		s.ordered = append(s.ordered, src)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.buildCORS()
	s.metricsH = promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	s.recs.New = func() any { return new(recorder) }
	s.handler = http.HandlerFunc(s.serveHTTP)
	notYet := "starting: credentials not checked yet"
	s.ready.Store(&notYet)
	return s, nil
}

// buildCORS configures rs/cors with the edge's own origin matcher: rs/cors
// wildcards are plain prefix/suffix matches, so "http://localhost:*" would
// also admit "http://localhost:1.evil.example".
func (s *Server) buildCORS() {
	var patterns []originPattern
	for _, o := range s.cfg.CORS.AllowedOrigins {
		p, _ := parseOriginPattern(o) // validated with the config
		patterns = append(patterns, p)
	}
	s.cors = cors.New(cors.Options{
		AllowOriginFunc: func(origin string) bool { return matchOrigin(patterns, origin) },
		AllowedMethods:  []string{http.MethodGet, http.MethodHead, http.MethodPost},
		AllowedHeaders:  []string{"Authorization", "Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Range"},
		ExposedHeaders:  []string{"Content-Range", "Content-Length", "Accept-Ranges", "ETag", "Last-Modified", "Content-Type"},
		// Cookie mode (crossorigin="use-credentials") needs credentials;
		// with them rs/cors echoes the origin, never "*".
		AllowCredentials: true,
		MaxAge:           int(s.cfg.CORS.MaxAge / time.Second),
	})
}

// Handler is the server's root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics is the handler of /metrics.
func (s *Server) Metrics() http.Handler { return s.metricsH }

// Run serves on ln until ctx is done, then shuts down gracefully: the
// listener closes, requests in flight get ShutdownTimeout to finish.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	sc := s.cfg.Server
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		WriteTimeout:      sc.WriteTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		// Requests must outlive the signal: Shutdown lets them finish
		// within ShutdownTimeout, so their context is not ctx's.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	go s.watchReadiness(ctx)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", zap.Duration("grace", sc.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sc.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	s.streams.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}

// watchReadiness checks every source's credentials at start and every 30
// seconds; /readyz answers from the last result.
func (s *Server) watchReadiness(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		s.CheckReady(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckReady checks the JWKS and every source's credentials now, at most
// four at a time, and records the result. /readyz shows only what failed
// (auth, source names); the causes, redacted, go to the log.
func (s *Server) CheckReady(ctx context.Context) error {
	errs := make([]error, len(s.ordered)+1)
	if err := s.verifier.Check(ctx); err != nil {
		errs[0] = fmt.Errorf("auth: %w", err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, src := range s.ordered {
		c, ok := src.signer.(signer.Checker)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := c.Check(cctx); err != nil {
				errs[i+1] = fmt.Errorf("source %s: %w", src.Name, err)
			}
		}()
	}
	wg.Wait()
	var failed []string
	if errs[0] != nil {
		failed = append(failed, "auth keys (jwks_url)")
	}
	for i, err := range errs[1:] {
		if err != nil {
			failed = append(failed, "source "+s.ordered[i].Name)
		}
	}
	err := errors.Join(errs...)
	if err == nil {
		s.ready.Store(nil)
		s.notReadyCause.Store(nil)
		return nil
	}
	msg := "credentials unavailable for: " + strings.Join(failed, ", ") + " (causes in the log)"
	// Logged when the cause changes, not on every check.
	cause := Redact(err.Error())
	if prev := s.notReadyCause.Swap(&cause); prev == nil || *prev != cause {
		s.log.Warn("not ready", zap.String("cause", cause))
	}
	s.ready.Store(&msg)
	return err
}

// fileSigner is what the edge needs of a file source's signer besides
// Presign: checking the /v1/f URLs it signed, and opening exactly the file
// a key names (no symbolic link leads elsewhere). It is an fs.FS.
type fileSigner interface {
	Verify(relKey, exp, sig string, now time.Time) error
	Open(name string) (fs.File, error)
}

// Close releases what the server holds.
func (s *Server) Close() {
	for _, src := range s.ordered {
		if c, ok := src.signer.(io.Closer); ok {
			c.Close()
		}
	}
	s.streams.Close()
}

// NewLogger builds the JSON logger on out (stderr) at the given level. Lines
// are buffered (256 KiB, flushed every second and by Sync): one write(2)
// per access line cost more than the redirect itself. Call Sync before
// exit. log.unbuffered writes every line at once.
func NewLogger(cfg LogConfig, out io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	// RFC 3339 with nanoseconds: time.AppendFormat has a fast path for
	// it, the ISO 8601 millisecond layout takes the slow one (~12% of a
	// line in BenchmarkAccessLog).
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	locked := zapcore.Lock(zapcore.AddSync(out))
	ws := locked
	if !cfg.Unbuffered {
		ws = &zapcore.BufferedWriteSyncer{WS: ws, Size: 256 << 10, FlushInterval: time.Second}
	}
	// No caller (every access line has the same one, and runtime.Caller
	// cost more than the rest of the line) and no stack traces.
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, lvl), zap.ErrorOutput(locked)), nil
}

// PresignRef returns the URL the edge would redirect to for ref: SOURCE/KEY
// (as after /v1/s/, percent-decoded once) or a storage URL. Stream-mode
// sources get the URL the edge itself would fetch.
func (s *Server) PresignRef(ctx context.Context, ref string) (string, time.Time, error) {
	var src *Source
	var key string
	if strings.Contains(ref, "://") {
		loc, err := ParseStorageURL(ref)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("storage URL: %w", err)
		}
		if src, key = s.resolveLocation(loc); src == nil {
			return "", time.Time{}, errors.New("the storage URL names no configured source (bucket, endpoint and prefix must match)")
		}
	} else {
		name, k, err := parseRef(ref)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("reference: %w", err)
		}
		if src = s.sources[name]; src == nil {
			return "", time.Time{}, fmt.Errorf("no source named %q", name)
		}
		key = k
	}
	p, err := s.presigned(ctx, &recorder{}, src, http.MethodGet, key, src.mode == modeStream)
	if err != nil {
		return "", time.Time{}, err
	}
	return p.URL, p.Expires, nil
}
