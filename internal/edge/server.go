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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edge/internal/audit"
	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/cache"
	"github.com/edgeproxy/edge/internal/clientip"
	"github.com/edgeproxy/edge/internal/limit"
	"github.com/edgeproxy/edge/internal/logsink"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/source"
	"github.com/edgeproxy/edge/internal/stream"
	"github.com/prometheus/client_golang/prometheus"
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
	closer io.Closer  // signers holding resources (file roots)
	cfg    source.Config
	// logName is the name as the access log shows it (configured, so
	// bounded).
	logName string
	up      prometheus.Gauge // edge_source_up{source}
	sourceRuntime

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
	// AuditStdout is where audit.file "-" writes (default os.Stdout).
	AuditStdout io.Writer
}

// Server is the edge: build it with New, serve it with Run or Handler.
type Server struct {
	cfg      *Config
	log      *zap.Logger
	line     *lineCore // the hand-written access line's sink; nil: through zap
	now      func() time.Time
	realNow  bool // now is time.Now: one reading serves the request's deadline too
	verifier *auth.Verifier
	set      atomic.Pointer[sourceSet] // swapped whole; read without a lock
	ids      idGen
	proxies  *clientip.Resolver // server.trusted_proxies; nil when none
	audit    *audit.Auditor     // nil without audit.file or audit.webhook
	limits   *limit.Limiter     // nil without limits.per_subject
	urls     *cache.Loader[urlKey, cachedURL]
	streams  *stream.Proxy
	metrics  *metrics
	cors     *cors.Cors
	extra    map[string]http.Handler
	handler  http.Handler
	metricsH http.Handler
	ready    atomic.Pointer[string] // nil: ready; otherwise what is not
	// authChecked is set once the auth keys were usable once (JWKS
	// fetched): from then on /readyz answers 200.
	authChecked atomic.Bool
	// notReadyCause is the last cause logged, so a changed one is logged too.
	notReadyCause atomic.Pointer[string]
	recs          sync.Pool
	// watchDone is closed when Run's readiness watcher has returned.
	watchDone chan struct{}
	// auditOnce closes the audit trail once (Run's shutdown, then Close).
	auditOnce sync.Once

	opts       Options
	configSrcs []*Source // the config's sources, in config order
	conns      connState // the connections in force (connections.go)
	// connsReady reports whether every connection store was read once;
	// nil when none is configured.
	connsReady func() bool
	checkSem   chan struct{} // bounds background credential checks
	startedAt  time.Time
	closed     atomic.Bool
	// inflight counts requests being served through a Runner, so a
	// replaced Server is closed only once they are done.
	inflight atomic.Int64
}

// New builds the server from a validated config: keys, signers,
// transports, caches and header values are all made here, once.
func New(ctx context.Context, cfg *Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	realNow := opts.Now == nil
	if realNow {
		opts.Now = time.Now
	}
	s := &Server{
		cfg:     cfg,
		log:     opts.Logger,
		line:    accessLine(opts.Logger),
		now:     opts.Now,
		realNow: realNow,
		metrics: newMetrics(),
		extra:   opts.Extra,
		opts:    opts,
		// Four checks at a time, as CheckReady.
		checkSem:  make(chan struct{}, 4),
		startedAt: opts.Now(),
	}
	if len(cfg.Server.TrustedProxies) > 0 {
		var errs []error
		if s.proxies, errs = clientip.New("server.trusted_proxies", cfg.Server.TrustedProxies); errs != nil {
			return nil, errors.Join(errs...)
		}
	}
	if err := s.ids.init(); err != nil {
		return nil, err
	}
	var err error
	if s.verifier, err = auth.NewVerifier(cfg.Auth, opts.Now); err != nil {
		return nil, err
	}
	if s.urls, err = cache.NewLoader[urlKey, cachedURL](cfg.Cache.MaxEntries); err != nil {
		return nil, err
	}
	if cfg.Server.RequestTimeout > 0 {
		// A signing is bounded by the request's timeout (deadlineSigner).
		s.urls.LoadTimeout = cfg.Server.RequestTimeout
	}
	if s.streams, err = stream.New(cfg.Stream, stream.Options{Logger: opts.Logger, Registerer: s.metrics.reg, WriteTimeout: cfg.Server.WriteTimeout}); err != nil {
		return nil, err
	}
	set, err := s.buildSources(ctx, cfg.Sources, opts)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	if err := s.buildAuditAndLimits(cfg, opts); err != nil {
		return nil, err
	}
	s.configSrcs = set.ordered
	s.conns.live = map[string]*liveConn{}
	s.buildCORS()
	s.setGatherer(nil)
	s.recs.New = func() any { return new(recorder) }
	s.handler = http.HandlerFunc(s.serveHTTP)
	notYet := "starting: auth keys not checked yet"
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
// listener closes, requests in flight get ShutdownTimeout to finish. It
// also runs the connections watcher and the admin listener when they are
// configured (a Runner without reloads).
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	r, err := newRunner(s, RunnerOptions{})
	if err != nil {
		return err
	}
	return r.Run(ctx, ln)
}

// watchReadiness checks the auth keys and every source's credentials at
// start and every 30 seconds.
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
// four sources at a time. /readyz turns 200 once the auth keys were
// usable once (the JWKS fetched); a source whose credentials fail never
// makes it fail: the source's state (SourceStates, edge_source_up) shows
// it, and its own requests answer 503 credentials_unavailable. The causes,
// redacted, go to the log when they change. The error joins every
// failure.
func (s *Server) CheckReady(ctx context.Context) error {
	var authErr error
	if err := s.verifier.Check(ctx); err != nil {
		authErr = fmt.Errorf("auth: %w", err)
	} else if s.authChecked.CompareAndSwap(false, true) {
		s.updateReady()
	}
	if authErr != nil && !s.authChecked.Load() {
		msg := "auth keys (jwks_url) not usable yet (cause in the log)"
		s.ready.Store(&msg)
	}
	set := s.sources()
	errs := make([]error, len(set.ordered))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, src := range set.ordered {
		c, ok := src.signer.(signer.Checker)
		if !ok {
			src.setState(true, "", s.now())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := c.Check(cctx)
			problem := ""
			if err != nil {
				errs[i] = fmt.Errorf("source %s: %w", src.Name, err)
				problem = Redact(err.Error())
			}
			src.setState(err == nil, problem, s.now())
		}()
	}
	wg.Wait()
	err := errors.Join(append([]error{authErr}, errs...)...)
	if err == nil {
		if s.notReadyCause.Swap(nil) != nil {
			s.log.Info("every source's credentials work again")
		}
		return nil
	}
	// Logged when the cause changes, not on every check.
	cause := Redact(err.Error())
	if prev := s.notReadyCause.Swap(&cause); prev == nil || *prev != cause {
		s.log.Warn("credentials failing", zap.String("cause", cause))
	}
	return err
}

// setState records a check's result on the source and its gauge.
func (src *Source) setState(up bool, problem string, at time.Time) {
	src.state.Store(&SourceState{Name: src.Name, Up: up, Problem: problem, CheckedAt: at})
	if up {
		src.up.Set(1)
	} else {
		src.up.Set(0)
	}
}

// fileSigner is what the edge needs of a file source's signer besides
// Presign: checking the /v1/f URLs it signed, and opening exactly the file
// a key names (no symbolic link leads elsewhere). It is an fs.FS.
type fileSigner interface {
	Verify(relKey, exp, sig string, now time.Time) error
	Open(name string) (fs.File, error)
}

// updateReady clears /readyz's cause once the auth keys were usable once
// and every connection store was read once (after which a lost store
// keeps the last connections and readiness).
func (s *Server) updateReady() {
	if !s.authChecked.Load() {
		return // CheckReady says why
	}
	if s.connsReady != nil && !s.connsReady() {
		msg := "starting: connection stores not read yet"
		s.ready.Store(&msg)
		return
	}
	s.ready.Store(nil)
}

// setGatherer serves /metrics from the server's registry and extra (the
// Runner's, which outlives a SIGHUP).
func (s *Server) setGatherer(extra prometheus.Gatherer) {
	var g prometheus.Gatherer = s.metrics.reg
	if extra != nil {
		g = prometheus.Gatherers{s.metrics.reg, extra}
	}
	s.metricsH = promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// Close releases what the server holds: it writes what the audit trail
// still queues (within server.shutdown_timeout) and closes the limiter's
// Redis client. Call it once no request is being served.
func (s *Server) Close() {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	for _, src := range s.ordered {
		if src.closer != nil {
			src.closer.Close()
		}
	}
	s.streams.Close()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
	s.flushAudit(ctx)
	cancel()
	s.limits.Close()
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
		// Buffered without a process-wide lock per line (logsink).
		ws = logsink.New(ws, 256<<10, time.Second)
	}
	// No caller (every access line has the same one, and runtime.Caller
	// cost more than the rest of the line) and no stack traces.
	// The core also carries the sink for the hand-written access line
	// (accesslog.go), which must match this encoder's output.
	core := &lineCore{Core: zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, lvl), out: ws, errOut: locked}
	return zap.New(core, zap.ErrorOutput(locked)), nil
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
		if src = s.source(name); src == nil {
			return "", time.Time{}, fmt.Errorf("no source named %q", name)
		}
		key = k
	}
	p, _, err := s.presigned(ctx, &recorder{}, src, http.MethodGet, key, src.mode == modeStream)
	if err != nil {
		return "", time.Time{}, err
	}
	return p.URL(), p.Expires(), nil
}
