package connections

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Options configure a Watcher.
type Options struct {
	Config Config // Defaults applied, Validate passed
	// OnChange receives every snapshot: all entries of every store, sorted
	// by SortEntries. It is called from one goroutine, one call at a time,
	// only when something changed (a version, an entry added or removed),
	// and once when the watcher becomes ready even if nothing is there.
	// The slice is the callee's to keep.
	OnChange func([]Entry)
	Logger   *zap.Logger           // nil: no logs
	Metrics  prometheus.Registerer // nil: metrics not registered
	Now      func() time.Time      // nil: time.Now
	// Debounce is how long the directory store waits for quiet after an
	// event before it re-reads (default 50ms); a burst of events is read at
	// most every 10×Debounce.
	Debounce time.Duration
	// Backoff bounds the retry delays of a store that fails (default
	// 250ms doubling to 30s).
	MinBackoff, MaxBackoff time.Duration
}

// Watcher runs the configured stores and delivers their snapshots.
type Watcher struct {
	opts    Options
	log     *zap.Logger
	m       *metrics
	stores  []store
	updates chan storeUpdate
	ready   atomic.Bool

	mu   sync.Mutex
	last []Entry
}

// store is one origin's follower.
type store interface {
	origin() string
	// run reads the store, sends full snapshots of its entries to out
	// (only the changed ones matter: the watcher compares) and follows
	// it until ctx ends.
	run(ctx context.Context, out chan<- storeUpdate)
	rescan()
}

type storeUpdate struct {
	origin  string
	entries []Entry
}

// New checks the options and builds a Watcher; Run starts it.
func New(opts Options) (*Watcher, error) {
	if errs := opts.Config.Validate("connections"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.Config.Resync <= 0 {
		opts.Config.Resync = DefaultResync
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = 30 * time.Second
		if opts.MaxBackoff < opts.MinBackoff {
			opts.MaxBackoff = opts.MinBackoff
		}
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watcher{opts: opts, log: log.Named("connections"), m: newMetrics(opts.Metrics), updates: make(chan storeUpdate)}
	if opts.Config.Dir != "" {
		w.stores = append(w.stores, newDirStore(w, opts.Config.Dir))
	}
	if opts.Config.Postgres.DSN != "" {
		ps, err := newPGStore(w, opts.Config.Postgres)
		if err != nil {
			return nil, err
		}
		w.stores = append(w.stores, ps)
	}
	for _, s := range w.stores {
		w.m.up.WithLabelValues(s.origin()).Set(0)
	}
	return w, nil
}

// Ready reports whether every store has been read once.
func (w *Watcher) Ready() bool { return w.ready.Load() }

// Snapshot returns the last snapshot delivered (nil before the first).
func (w *Watcher) Snapshot() []Entry {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Entry(nil), w.last...)
}

// Rescan asks every store for a full re-read now (SIGHUP). It does not
// wait for it.
func (w *Watcher) Rescan() {
	for _, s := range w.stores {
		s.rescan()
	}
}

// Run follows the stores until ctx ends; it returns ctx's error.
func (w *Watcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, s := range w.stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, w.updates)
		}()
	}
	state := map[string][]Entry{}
	loaded := map[loadKey]time.Time{}
	delivered := false
	if len(w.stores) == 0 {
		w.ready.Store(true)
		w.deliver(nil)
		delivered = true
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case u := <-w.updates:
			now := w.opts.Now()
			seen := make(map[loadKey]bool, len(u.entries))
			for i := range u.entries {
				e := &u.entries[i]
				k := loadKey{e.Origin, e.Path, e.Name, e.Version}
				seen[k] = true
				if t, ok := loaded[k]; ok {
					e.LoadedAt = t
				} else {
					e.LoadedAt = now
					loaded[k] = now
				}
			}
			for k := range loaded {
				if k.origin == u.origin && !seen[k] {
					delete(loaded, k)
				}
			}
			state[u.origin] = u.entries
			becameReady := false
			if !w.ready.Load() && len(state) == len(w.stores) {
				w.ready.Store(true)
				becameReady = true
				w.log.Info("every connection store read once", zap.Int("entries", countEntries(state)))
			}
			snap := make([]Entry, 0, countEntries(state))
			for _, es := range state {
				snap = append(snap, es...)
			}
			SortEntries(snap)
			if delivered && sameSnapshot(w.Snapshot(), snap) {
				continue
			}
			if !delivered && !becameReady && len(snap) == 0 {
				continue // nothing to say yet
			}
			w.deliver(snap)
			delivered = true
		}
	}
}

type loadKey struct{ origin, path, name, version string }

func countEntries(state map[string][]Entry) int {
	n := 0
	for _, es := range state {
		n += len(es)
	}
	return n
}

func (w *Watcher) deliver(snap []Entry) {
	w.mu.Lock()
	w.last = snap
	w.mu.Unlock()
	if w.opts.OnChange != nil {
		w.opts.OnChange(append([]Entry(nil), snap...))
	}
}

// sameSnapshot compares two sorted snapshots by identity and version.
func sameSnapshot(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Origin != b[i].Origin || a[i].Name != b[i].Name || a[i].Path != b[i].Path || a[i].Version != b[i].Version {
			return false
		}
	}
	return true
}

// publish sends a store's full entry list to the watcher.
func (w *Watcher) publish(ctx context.Context, out chan<- storeUpdate, origin string, entries []Entry) {
	select {
	case out <- storeUpdate{origin: origin, entries: entries}:
	case <-ctx.Done():
	}
}

// backoff is a store's retry delay: doubling from MinBackoff to MaxBackoff.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// metrics of the stores.
type metrics struct {
	reloads *prometheus.CounterVec
	up      *prometheus.GaugeVec
	entries *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edge_connection_reloads_total",
			Help: "Reads of a connection store (dir, postgres), by result (ok, error).",
		}, []string{"store", "result"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_connection_store_up",
			Help: "1 when the connection store's last read succeeded (and, for postgres, it is listening), else 0; the last good connections stay in force while it is down.",
		}, []string{"store"}),
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edge_connection_entries",
			Help: "Connections (files or rows) the store held at its last good read, problems included.",
		}, []string{"store"}),
	}
	if reg != nil {
		m.reloads = register(reg, m.reloads)
		m.up = register(reg, m.up)
		m.entries = register(reg, m.entries)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (a watcher rebuilt on SIGHUP reuses the first one's metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Another metric of that name with other labels: keep counting
		// on the unregistered collector rather than fail the edge.
	}
	return c
}

func (m *metrics) result(store string, err error) {
	if err != nil {
		m.reloads.WithLabelValues(store, "error").Inc()
		return
	}
	m.reloads.WithLabelValues(store, "ok").Inc()
}
