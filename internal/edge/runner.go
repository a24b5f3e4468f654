package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edge/internal/admin"
	"github.com/edgeproxy/edge/internal/connections"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// RunnerOptions tune a Runner (tests).
type RunnerOptions struct {
	// Admin hooks the admin routes' onboarding calls.
	Admin AdminOptions
	// Watcher tunes the connections watcher (Debounce, backoff); its
	// Config, OnChange, Logger, Metrics and Now are the Runner's.
	Watcher connections.Options
}

// Runner serves the Server in force on the main listener (and the admin
// listener), runs the connections watcher, and replaces the Server on
// Reload (SIGHUP): the new one is built and checked whole first, then
// swapped in atomically; requests in flight finish on the old one, which
// is closed once they are done.
type Runner struct {
	log     *zap.Logger
	opts    Options
	ropts   RunnerOptions
	cur     atomic.Pointer[Server]
	shared  *prometheus.Registry
	reloads *prometheus.CounterVec // edge_config_reloads_total{result}
	changes *prometheus.CounterVec // edge_connection_changes_total{origin,result}

	applyMu sync.Mutex // orders snapshot applies with swaps
	watch   *watchGen  // the watcher in force; nil with no store

	reloadMu  sync.Mutex
	runCtx    context.Context
	stopReady context.CancelFunc // the current server's readiness watcher
	adminSrv  *admin.Server
	adminAddr atomic.Pointer[string]
}

// watchGen is one connections watcher and its config.
type watchGen struct {
	cfg    connections.Config
	w      *connections.Watcher
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRunner builds the Server from cfg and a Runner around it.
func NewRunner(ctx context.Context, cfg *Config, opts Options, ropts RunnerOptions) (*Runner, error) {
	s, err := New(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	r, err := newRunner(s, ropts)
	if err != nil {
		s.Close()
		return nil, err
	}
	return r, nil
}

func newRunner(s *Server, ropts RunnerOptions) (*Runner, error) {
	r := &Runner{log: s.log, opts: s.opts, ropts: ropts, shared: prometheus.NewRegistry()}
	r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_config_reloads_total", Help: "Config file reloads (SIGHUP) by result (ok, error).",
	}, []string{"result"})
	r.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edge_connection_changes_total", Help: "Connection versions seen by origin and result (applied, invalid, removed, conflict).",
	}, []string{"origin", "result"})
	r.shared.MustRegister(r.reloads, r.changes)
	r.reloads.WithLabelValues("ok")
	r.reloads.WithLabelValues("error")
	if s.cfg.Connections.Enabled() {
		g, err := r.newWatch(s.cfg.Connections)
		if err != nil {
			return nil, err
		}
		r.watch = g
	}
	r.adopt(s)
	r.cur.Store(s)
	return r, nil
}

// adopt wires s to the Runner's metrics and watcher.
func (r *Runner) adopt(s *Server) {
	s.setGatherer(r.shared)
	s.conns.changes = r.changes
	if r.watch != nil {
		w := r.watch.w
		s.connsReady = w.Ready
	} else {
		s.connsReady = nil
	}
}

func (r *Runner) newWatch(cfg connections.Config) (*watchGen, error) {
	g := &watchGen{cfg: cfg}
	wo := r.ropts.Watcher
	wo.Config = cfg
	wo.Logger = r.log
	wo.Metrics = r.shared
	wo.Now = r.opts.Now
	wo.OnChange = func(es []connections.Entry) {
		r.applyMu.Lock()
		defer r.applyMu.Unlock()
		if r.watch == g {
			r.cur.Load().applyConnections(es)
		}
	}
	w, err := connections.New(wo)
	if err != nil {
		return nil, err
	}
	g.w = w
	return g, nil
}

func (g *watchGen) start(ctx context.Context) {
	ctx, g.cancel = context.WithCancel(ctx)
	g.done = make(chan struct{})
	go func() {
		defer close(g.done)
		g.w.Run(ctx)
	}()
}

func (g *watchGen) stop() {
	if g.cancel != nil {
		g.cancel()
		<-g.done
	}
}

// Server is the Server in force.
func (r *Runner) Server() *Server { return r.cur.Load() }

// AdminAddr is the admin listener's address once it listens, or "".
func (r *Runner) AdminAddr() string {
	if a := r.adminAddr.Load(); a != nil {
		return *a
	}
	return ""
}

// ServeHTTP serves one request on the Server in force, counted on it so
// that a replaced Server is closed only after its requests are done.
func (r *Runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s := r.cur.Load()
	s.inflight.Add(1)
	for r.cur.Load() != s { // swapped meanwhile: use the new one
		s.inflight.Add(-1)
		s = r.cur.Load()
		s.inflight.Add(1)
	}
	defer s.inflight.Add(-1) // a panicking handler (ErrAbortHandler) too
	s.handler.ServeHTTP(w, req)
}

// Run serves on ln (and the admin listener when admin.listen is set) until
// ctx is done, then shuts both down gracefully and closes the Server.
func (r *Runner) Run(ctx context.Context, ln net.Listener) error {
	s := r.cur.Load()
	sc := s.cfg.Server
	hs := &http.Server{
		Handler:           r,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		WriteTimeout:      sc.WriteTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		// Requests must outlive the signal: Shutdown lets them finish
		// within ShutdownTimeout, so their context is not ctx's.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	r.reloadMu.Lock()
	r.runCtx = ctx
	r.startReadiness(s)
	if r.watch != nil {
		r.watch.start(ctx)
	}
	var adminErr chan error
	if s.cfg.Admin.Enabled() {
		a, err := admin.New(s.cfg.Admin, s.log)
		if err != nil {
			r.reloadMu.Unlock()
			return err
		}
		registerAdmin(a, r.Server, r.ropts.Admin)
		aln, err := net.Listen("tcp", s.cfg.Admin.Listen)
		if err != nil {
			r.reloadMu.Unlock()
			return fmt.Errorf("admin.listen: %w", err)
		}
		addr := aln.Addr().String()
		r.adminAddr.Store(&addr)
		r.adminSrv = a
		adminErr = make(chan error, 1)
		s.log.Info("admin listening", zap.String("addr", addr))
		go func() { adminErr <- a.Run(ctx, aln) }()
	}
	r.reloadMu.Unlock()
	defer func() {
		r.reloadMu.Lock()
		defer r.reloadMu.Unlock()
		if r.stopReady != nil {
			r.stopReady()
		}
		if r.watch != nil {
			r.watch.stop()
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	cur := r.cur.Load()
	grace := cur.cfg.Server.ShutdownTimeout
	cur.log.Info("shutting down", zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	cur.streams.Close()
	if errors.Is(err, context.DeadlineExceeded) {
		hs.Close()
	}
	// Every request has finished (or been cut): what they queued for the
	// audit trail is written before Run returns.
	cur.flushAudit(sctx)
	if adminErr != nil {
		<-adminErr
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}

// startReadiness runs s's readiness watcher, stopping the previous one.
// Call with reloadMu held.
func (r *Runner) startReadiness(s *Server) {
	if r.stopReady != nil {
		r.stopReady()
	}
	wctx, stop := context.WithCancel(r.runCtx)
	r.stopReady = stop
	s.watchDone = make(chan struct{})
	done := s.watchDone
	go func() {
		defer close(done)
		s.watchReadiness(wctx)
	}()
}

// ReloadFile reads, checks and applies the config file at path (SIGHUP).
// A bad file leaves the running config in force; every problem is logged
// (keys, never values) and the error returned.
func (r *Runner) ReloadFile(ctx context.Context, path string) error {
	cfg, err := LoadConfig(path)
	if err != nil {
		r.reloads.WithLabelValues("error").Inc()
		r.log.Error("config reload refused: the running config stays in force", zap.Strings("problems", problemLines(err)))
		return err
	}
	return r.Reload(ctx, cfg)
}

func problemLines(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Reload replaces the Server in force with one built from cfg (validated):
// keys, CORS origins, limits, static sources, connections stores and
// admin tokens. listen and admin.listen keep their running listeners (a
// change there needs a restart, and is logged).
func (r *Runner) Reload(ctx context.Context, cfg *Config) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	old := r.cur.Load()
	ns, err := New(ctx, cfg, r.opts)
	if err != nil {
		r.reloads.WithLabelValues("error").Inc()
		r.log.Error("config reload refused: the running config stays in force", zap.Strings("problems", problemLines(Redacted(err))))
		return err
	}
	if cfg.Listen != old.cfg.Listen {
		r.log.Warn("config reload: listen changed; the running listener stays until a restart")
	}
	if cfg.Admin.Listen != old.cfg.Admin.Listen {
		r.log.Warn("config reload: admin.listen changed; the running admin listener stays until a restart")
	}
	// A changed connections config gets a new watcher, read once (up to
	// 10 s) before the swap, so readiness and the connections carry over.
	var newWatch *watchGen
	if !reflect.DeepEqual(cfg.Connections, currentConnCfg(r.watch)) {
		if cfg.Connections.Enabled() {
			g, err := r.newWatch(cfg.Connections)
			if err != nil {
				ns.Close()
				r.reloads.WithLabelValues("error").Inc()
				r.log.Error("config reload refused: the running config stays in force", zap.Strings("problems", problemLines(err)))
				return err
			}
			if r.runCtx != nil {
				g.start(r.runCtx)
				deadline := time.Now().Add(10 * time.Second)
				for !g.w.Ready() && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if !g.w.Ready() {
					// Swapping now would drop every connection and
					// readiness: the running config stays.
					g.stop()
					ns.Close()
					r.reloads.WithLabelValues("error").Inc()
					r.log.Error("config reload refused: the new connection stores could not be read in 10 s; the running config stays in force")
					return errors.New("connections: the new stores could not be read in 10 s")
				}
			}
			newWatch = g
		}
	}
	r.applyMu.Lock()
	prevWatch := r.watch
	if newWatch != nil || !cfg.Connections.Enabled() {
		r.watch = newWatch
	}
	r.adopt(ns)
	if r.watch != nil {
		ns.applyConnections(r.watch.w.Snapshot())
	}
	// Readiness carries over: the new keys are checked by its watcher.
	if old.authChecked.Load() {
		ns.authChecked.Store(true)
		ns.updateReady()
	}
	r.cur.Store(ns)
	r.applyMu.Unlock()
	if prevWatch != nil && prevWatch != r.watch {
		go prevWatch.stop()
	}
	if r.adminSrv != nil {
		r.adminSrv.SetTokens(cfg.Admin.Tokens)
	}
	if r.runCtx != nil {
		r.startReadiness(ns)
	}
	go r.drain(old)
	r.reloads.WithLabelValues("ok").Inc()
	r.log.Info("config reloaded", zap.Int("sources", len(cfg.Sources)))
	return nil
}

func currentConnCfg(g *watchGen) connections.Config {
	if g == nil {
		return connections.Config{}
	}
	return g.cfg
}

// drain closes a replaced Server once its requests are done (at most its
// shutdown_timeout).
func (r *Runner) drain(old *Server) {
	deadline := time.Now().Add(old.cfg.Server.ShutdownTimeout)
	for old.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	old.Close()
}

// Redacted is err with Redact applied to its text.
func Redacted(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(Redact(err.Error()))
}
