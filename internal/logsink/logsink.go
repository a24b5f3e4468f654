// Package logsink is a buffered writer for log lines whose write path takes
// no process-wide lock: lines go to one of several buffers, each with its
// own lock, and a buffer reaches the output only when full, on the flush
// interval, or on Sync. zapcore.BufferedWriteSyncer takes one mutex per
// line for every goroutine in the process, which on a busy edge is the
// most contended lock of a cache hit.
//
// Each Write must be one whole line (zap writes one entry per call). Lines
// reach the output whole and in order within a buffer; across buffers,
// lines written within one flush interval may be reordered (each carries
// its own timestamp).
package logsink

import (
	"io"
	"runtime"
	"sync"
	"time"
)

// Writer is the buffered writer; it implements zapcore.WriteSyncer.
type Writer struct {
	outMu sync.Mutex // serialises writes to out (never held by a line's Write unless a buffer is full)
	out   io.Writer
	sync  func() error // out's Sync, if any

	shards []shard
	size   int // one buffer's bound

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

type shard struct {
	mu  sync.Mutex
	buf []byte
	_   [128 - 32]byte // one lock per cache line pair
}

// New returns a Writer buffering up to size bytes in all (split between
// its buffers) and flushing every interval (none when interval <= 0).
// Stop flushes and ends the flusher.
func New(out io.Writer, size int, interval time.Duration) *Writer {
	n := 1 // a power of two, 2×GOMAXPROCS or more, at most 64
	for n < 2*runtime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	per := max(size/n, 4<<10)
	w := &Writer{out: out, shards: make([]shard, n), size: per, stop: make(chan struct{}), done: make(chan struct{})}
	if s, ok := out.(interface{ Sync() error }); ok {
		w.sync = s.Sync
	}
	for i := range w.shards {
		w.shards[i].buf = make([]byte, 0, per)
	}
	if interval > 0 {
		go w.flushLoop(interval)
	} else {
		close(w.done)
	}
	return w
}

// Write buffers one line in the first buffer not in use: uncontended,
// that is always the first (one hot buffer, as with a single lock);
// while it is taken (another line, or a flush) the next free one, so a
// writer waits only when every buffer is taken.
func (w *Writer) Write(p []byte) (int, error) {
	var s *shard
	for j := range w.shards {
		if c := &w.shards[j]; c.mu.TryLock() {
			s = c
			break
		}
	}
	if s == nil {
		s = &w.shards[0]
		s.mu.Lock()
	}
	if len(s.buf)+len(p) <= w.size {
		s.buf = append(s.buf, p...)
		s.mu.Unlock()
		return len(p), nil
	}
	defer s.mu.Unlock()
	if err := w.flush(s); err != nil {
		return 0, err
	}
	if len(p) > w.size {
		// A line longer than a buffer goes out at once.
		w.outMu.Lock()
		defer w.outMu.Unlock()
		return w.out.Write(p)
	}
	s.buf = append(s.buf, p...)
	return len(p), nil
}

// flush writes s's buffer out; s.mu is held.
func (w *Writer) flush(s *shard) error {
	if len(s.buf) == 0 {
		return nil
	}
	w.outMu.Lock()
	_, err := w.out.Write(s.buf)
	w.outMu.Unlock()
	s.buf = s.buf[:0]
	return err
}

// Sync writes every buffer out, then syncs the output.
func (w *Writer) Sync() error {
	var first error
	for i := range w.shards {
		s := &w.shards[i]
		s.mu.Lock()
		if err := w.flush(s); err != nil && first == nil {
			first = err
		}
		s.mu.Unlock()
	}
	if w.sync != nil {
		w.outMu.Lock()
		err := w.sync()
		w.outMu.Unlock()
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *Writer) flushLoop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Sync()
		case <-w.stop:
			return
		}
	}
}

// Stop ends the flusher and flushes what is buffered.
func (w *Writer) Stop() error {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return w.Sync()
}
