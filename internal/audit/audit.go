// Package audit keeps the audit trail: one JSON line per object request,
// naming who saw which key. Requests never wait on it: Enqueue copies the
// record onto a bounded queue (or drops and counts it when the queue is
// full); one writer goroutine encodes records in batches and writes them
// to a rotated file or stdout, and hands them to an optional webhook that
// POSTs them in batches, retrying with backoff, from its own bounded
// buffer. Close flushes everything within a deadline.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Options are the Auditor's collaborators; all optional.
type Options struct {
	Metrics *Metrics    // nil: unregistered metrics of its own
	Logger  *zap.Logger // nil: no logs
	// Stdout is where file "-" writes (default os.Stdout).
	Stdout io.Writer
	// Client POSTs to the webhook. Default: 10 s timeout, redirects not
	// followed (a redirect is a failure, retried).
	Client *http.Client
	// Now stamps records enqueued without a Time (default time.Now).
	Now func() time.Time
	// BackoffMin and BackoffMax bound the webhook's retry delays, which
	// double from the first to the second, with jitter (defaults 250 ms
	// and 30 s).
	BackoffMin, BackoffMax time.Duration
	// LogEvery is how often drops and webhook failures are logged, at most
	// (default 10 s): a stalled sink produces a summary, not a line per
	// record.
	LogEvery time.Duration
}

// Batch bounds: the writer takes at most this many records from the queue
// before writing, and a webhook POST carries at most this many records
// and bytes.
const (
	batchRecords     = 512
	hookBatchRecords = 1000
	hookBatchBytes   = 1 << 20
)

// Auditor is the audit trail. A nil *Auditor, or one built from a config
// with no sink, accepts records and does nothing.
type Auditor struct {
	ch chan entry
	// closeMu orders Enqueue's sends before Close: a send under the read
	// lock that saw the trail open lands before the writer drains the
	// queue (without it a record could land after the drain: neither
	// written nor counted).
	closeMu sync.RWMutex
	closed  bool // under closeMu
	stop    chan struct{}
	done    chan struct{} // the writer has finished
	once    sync.Once
	m       *Metrics
	log     *zap.Logger
	now     func() time.Time
	sink    sink     // file or stdout; nil for webhook only
	hook    *webhook // nil without a webhook
	every   time.Duration
	queueDr atomic.Int64 // dropped at Enqueue since the last log line
	writeDr atomic.Int64 // dropped by a failed write since the last log line
	lastErr atomic.Pointer[string]
}

// New starts the audit trail cfg describes (cfg has had Defaults and
// passed Validate). With no sink configured it returns an Auditor that
// does nothing. The file is opened (and its directory created) now, so a
// path the edge cannot write fails the start.
func New(cfg Config, opts Options) (*Auditor, error) {
	if errs := cfg.Validate("audit"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !cfg.Enabled() {
		return &Auditor{}, nil
	}
	a := &Auditor{
		ch:    make(chan entry, cfg.Queue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		m:     opts.Metrics,
		log:   opts.Logger,
		now:   opts.Now,
		every: opts.LogEvery,
	}
	if a.m == nil {
		a.m = NewMetrics(nil)
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.every <= 0 {
		a.every = 10 * time.Second
	}
	switch cfg.File {
	case "":
	case "-":
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		a.sink = &writerSink{w: w}
	default:
		s, err := newFileSink(cfg.File, int64(cfg.MaxSize), cfg.MaxFiles)
		if err != nil {
			return nil, err
		}
		a.sink = s
	}
	if cfg.Webhook != "" {
		a.hook = newWebhook(cfg.Webhook, cfg.WebhookBuffer, opts, a)
		go a.hook.run()
	}
	a.m.current.Store(a)
	go a.run()
	go a.reportDrops()
	return a, nil
}

// Enqueue queues a copy of r for the audit trail and returns at once. When
// the queue is full the record is dropped and counted
// (edge_audit_records_total{result="dropped"}) and the drop logged within
// LogEvery. It allocates nothing unless Method, Source and Key together
// exceed 240 bytes.
func (a *Auditor) Enqueue(r *Record) {
	if a == nil || a.ch == nil {
		return
	}
	var e entry
	e.set(r)
	a.closeMu.RLock()
	if a.closed {
		a.closeMu.RUnlock()
		a.dropQueue()
		return
	}
	select {
	case a.ch <- e:
	default:
		a.dropQueue()
	}
	a.closeMu.RUnlock()
}

func (a *Auditor) dropQueue() {
	a.queueDr.Add(1)
	a.m.dropped.Inc()
}

// Enabled reports whether records go anywhere.
func (a *Auditor) Enabled() bool { return a != nil && a.ch != nil }

// run is the writer: it takes records off the queue in batches, encodes
// them and writes each batch at once.
func (a *Auditor) run() {
	defer close(a.done)
	b := &batch{buf: make([]byte, 0, 128<<10)}
	for {
		select {
		case e := <-a.ch:
			// Let a batch gather before taking it: a writer that takes
			// each record as it comes is woken, and writes, once per
			// request under a steady load. Records wait in the queue
			// meanwhile (nothing waits on them); a queue already half
			// full, or holding a batch, is taken at once.
			if n := len(a.ch); n < batchRecords && n < cap(a.ch)/2 {
				time.Sleep(gatherDelay)
			}
			a.fill(b, &e)
			a.flush(b)
		case <-a.stop:
			for len(a.ch) > 0 {
				e := <-a.ch
				a.fill(b, &e)
				a.flush(b)
			}
			if a.sink != nil {
				if err := a.sink.close(); err != nil {
					a.log.Warn("audit: closing the file failed", zap.Error(err))
				}
			}
			if a.hook != nil {
				close(a.hook.inputDone)
			}
			return
		}
	}
}

// gatherDelay is how long the writer lets records gather after the first
// of a batch while the queue is below half full and below a batch:
// about 500 wake-ups and writes a second under a light steady load
// instead of one per request, records reaching the file or webhook up to
// 2 ms later. A busier queue is drained without waiting.
const gatherDelay = 2 * time.Millisecond

// batch is encoded lines and where each ends.
type batch struct {
	buf  []byte
	ends []int
}

// fill encodes first and whatever else is queued, up to batchRecords.
func (a *Auditor) fill(b *batch, first *entry) {
	b.buf, b.ends = b.buf[:0], b.ends[:0]
	now := a.now()
	b.buf = first.appendJSON(b.buf, now)
	b.ends = append(b.ends, len(b.buf))
	for len(b.ends) < batchRecords {
		select {
		case e := <-a.ch:
			b.buf = e.appendJSON(b.buf, now)
			b.ends = append(b.ends, len(b.buf))
		default:
			return
		}
	}
}

func (a *Auditor) flush(b *batch) {
	n := len(b.ends)
	if a.sink != nil {
		written, err := a.sink.write(b.buf, b.ends)
		a.m.written.Add(float64(written))
		if lost := n - written; lost > 0 {
			a.writeDr.Add(int64(lost))
			a.m.dropped.Add(float64(lost))
		}
		if err != nil {
			msg := err.Error()
			a.lastErr.Store(&msg)
		}
	}
	if a.hook != nil {
		a.hook.add(b.buf, b.ends)
	}
}

// reportDrops logs drops every LogEvery until Close: in its own goroutine,
// because drops happen when the writer is stuck.
func (a *Auditor) reportDrops() {
	tick := time.NewTicker(a.every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			a.logDrops()
		case <-a.stop:
			return
		}
	}
}

// logDrops writes one line for whatever was dropped since the last one.
func (a *Auditor) logDrops() {
	q, w := a.queueDr.Swap(0), a.writeDr.Swap(0)
	var h int64
	if a.hook != nil {
		h = a.hook.dropped.Swap(0)
	}
	if q == 0 && w == 0 && h == 0 {
		return
	}
	fields := []zap.Field{zap.Int64("queue_full", q), zap.Int64("write_failed", w), zap.Int64("webhook_buffer_full", h)}
	if p := a.lastErr.Swap(nil); p != nil {
		fields = append(fields, zap.String("cause", *p))
	}
	a.log.Warn("audit records dropped", fields...)
}

// Close stops taking records, writes everything queued, closes the file
// and gives the webhook until ctx's deadline to deliver what it holds.
// What is still unsent then is dropped and counted; Close then returns an
// error saying how much. Call it after the HTTP server has stopped: a
// record enqueued during Close may be dropped.
func (a *Auditor) Close(ctx context.Context) error {
	if a == nil || a.ch == nil {
		return nil
	}
	a.once.Do(func() {
		a.closeMu.Lock()
		a.closed = true
		a.closeMu.Unlock()
		close(a.stop)
	})
	var err error
	select {
	case <-a.done:
	case <-ctx.Done():
		err = fmt.Errorf("audit: the writer did not finish before the deadline (%d records queued)", len(a.ch))
	}
	if a.hook != nil {
		if err == nil {
			select {
			case <-a.hook.done:
			case <-ctx.Done():
				err = errors.New("audit: the webhook did not take every record before the deadline")
			}
		}
		if err != nil {
			a.hook.cancel()
			<-a.hook.done
		}
	}
	a.logDrops()
	if a.m.current.Load() == a {
		a.m.current.CompareAndSwap(a, nil)
	}
	return err
}

// sink is where encoded batches go.
type sink interface {
	// write writes the lines of buf (ends[i] is where line i ends) and
	// returns how many were written whole.
	write(buf []byte, ends []int) (int, error)
	close() error
}

// writerSink writes to a plain writer (stdout).
type writerSink struct{ w io.Writer }

func (s *writerSink) write(buf []byte, ends []int) (int, error) {
	n, err := s.w.Write(buf)
	if err == nil {
		return len(ends), nil
	}
	whole := 0
	for _, e := range ends {
		if e <= n {
			whole++
		}
	}
	return whole, err
}

func (s *writerSink) close() error { return nil }

// checkWritable creates the file's directory and opens the file for
// appending once, so a path the edge cannot write fails at start.
func checkWritable(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("audit.file: cannot create its directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit.file: cannot be opened for writing: %w", err)
	}
	return f.Close()
}
