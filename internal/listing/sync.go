package listing

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// CheckFunc checks one object (internal/assets provides it): it reads as
// few bytes as it needs and returns what goes into the line's "check".
// It is called concurrently, up to Options.Concurrency at once.
type CheckFunc func(ctx context.Context, o Object) CheckResult

// CheckResult is what a CheckFunc found.
type CheckResult struct {
	// Check is written as the line's "check" (JSON-encoded); nil writes none.
	Check any
	// Problems is how many problems the check found; the summary adds them.
	Problems int
	// BytesRead is how many bytes of the object the check read.
	BytesRead int64
}

// Options tune Sync; the zero value lists without a diff or checks.
type Options struct {
	// Since is an older manifest: each line then gets a "change", and
	// objects that are gone come as removed lines.
	Since io.Reader
	// Check, when set, checks every object (see CheckFunc).
	Check CheckFunc
	// Concurrency is how many checks run at once; 0 means 8. Lines are
	// written in listing order whatever order the checks finish in.
	Concurrency int
	// Recheck checks unchanged objects again; by default an unchanged
	// object keeps the check its old manifest line has, if it has one.
	Recheck bool
	// Now is the clock of the summary's seconds; nil means time.Now.
	Now func() time.Time
	// Progress, when set, is called about once a second (ProgressEvery)
	// with the objects written so far.
	Progress      func(objects int64, elapsed time.Duration)
	ProgressEvery time.Duration
	// FlushEvery is how often written lines are flushed to w (and w's
	// Flush called, for an http.ResponseWriter): 0 means 200ms.
	FlushEvery time.Duration
}

// Sync lists l into w as a manifest (see the package doc), diffed against
// opts.Since and checked by opts.Check, and returns the summary it wrote
// last. It stops when ctx ends (the client went away) or w fails; a
// manifest without its summary line is incomplete. Removed lines come in
// key order among the others.
func Sync(ctx context.Context, l Lister, opts Options, w io.Writer) (Summary, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = time.Second
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &syncer{order: orderOf(l), opts: opts, start: opts.Now(), bw: bufio.NewWriterSize(w, 64<<10), cancel: cancel}
	s.lastFlush, s.lastProgress = s.start, s.start
	s.flusher, _ = w.(http.Flusher)
	s.errFlusher, _ = w.(interface{ Flush() error })
	if opts.Since != nil {
		s.old = NewManifestReader(opts.Since)
		s.old.Order = s.order
		if err := s.advance(); err != nil {
			return Summary{}, err
		}
	}
	if opts.Check != nil {
		s.queue = make(chan *slot, 2*opts.Concurrency)
		s.sem = make(chan struct{}, opts.Concurrency)
		s.writerDone = make(chan struct{})
		go s.writeSlots()
	}

	err := l.List(ctx, func(o Object) error {
		for s.hasOld && s.order(s.oldE.Key, o.Key) < 0 {
			if err := s.emit(ctx, line{obj: Object{Key: s.oldE.Key}, change: Removed}, nil); err != nil {
				return err
			}
			if err := s.advance(); err != nil {
				return err
			}
		}
		ln := line{obj: o}
		var carried json.RawMessage
		if s.old != nil {
			ln.change = Added
			if s.hasOld && s.oldE.Key == o.Key {
				ln.change = Changed
				if s.oldE.ETag == o.ETag && s.oldE.Size == o.Size {
					ln.change = Unchanged
					if !opts.Recheck {
						carried = s.oldE.Check
					}
				}
				if err := s.advance(); err != nil {
					return err
				}
			}
		}
		return s.emit(ctx, ln, carried)
	})
	for err == nil && s.hasOld {
		if err = s.emit(ctx, line{obj: Object{Key: s.oldE.Key}, change: Removed}, nil); err == nil {
			err = s.advance()
		}
	}
	if s.queue != nil {
		close(s.queue)
		<-s.writerDone
		s.sum.Problems += s.wProblems
		s.sum.BytesRead += s.wBytes
	}
	if err == nil {
		err = s.werr
	}
	if err != nil {
		if s.werr != nil {
			err = s.werr
		}
		_ = s.bw.Flush() // what was listed reaches the reader; no summary marks it incomplete
		return s.sum, err
	}
	if sk, ok := l.(interface{ Skipped() int64 }); ok {
		s.sum.Problems += sk.Skipped()
	}
	s.sum.Seconds = opts.Now().Sub(s.start).Seconds()
	s.buf = appendSummary(s.buf[:0], &s.sum, opts.Check != nil)
	if _, err := s.bw.Write(s.buf); err != nil {
		return s.sum, err
	}
	if err := s.flush(); err != nil {
		return s.sum, err
	}
	return s.sum, nil
}

type syncer struct {
	order  KeyOrder
	opts   Options
	start  time.Time
	bw     *bufio.Writer
	buf    []byte
	sum    Summary
	cancel context.CancelFunc

	flusher      http.Flusher
	errFlusher   interface{ Flush() error }
	lastFlush    time.Time
	lastProgress time.Time
	written      int64

	old    *ManifestReader
	oldE   OldEntry
	hasOld bool

	// With checks: lines queue in order, each waits for its check.
	queue      chan *slot
	sem        chan struct{}
	writerDone chan struct{}
	werr       error // the writer's first error; read after writerDone
	wProblems  int64 // the writer's counts, added to sum after writerDone
	wBytes     int64
}

type slot struct {
	ln   line
	done chan struct{}
	res  CheckResult
	run  bool // a check ran (res is set)
}

// advance reads the next old entry.
func (s *syncer) advance() error {
	e, err := s.old.Next()
	if err == io.EOF {
		s.hasOld = false
		return nil
	}
	if err != nil {
		s.hasOld = false
		return err
	}
	s.oldE, s.hasOld = e, true
	return nil
}

// emit counts ln and writes it, or with checks queues it.
func (s *syncer) emit(ctx context.Context, ln line, carried json.RawMessage) error {
	switch ln.change {
	case Added:
		s.sum.Added++
	case Changed:
		s.sum.Changed++
	case Unchanged:
		s.sum.Unchanged++
	case Removed:
		s.sum.Removed++
	}
	if ln.change != Removed {
		s.sum.Objects++
	}
	if s.queue == nil {
		return s.write(&ln)
	}
	sl := &slot{ln: ln, done: make(chan struct{})}
	switch {
	case ln.change == Removed:
		close(sl.done)
	case carried != nil:
		sl.ln.check = carried
		s.sum.Problems += int64(countProblems(carried))
		close(sl.done)
	default:
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		sl.run = true
		go func() {
			defer close(sl.done)
			defer func() { <-s.sem }()
			sl.res = s.opts.Check(ctx, sl.ln.obj)
		}()
	}
	select {
	case s.queue <- sl:
		return nil
	case <-ctx.Done():
		<-sl.done // the writer will never see it; wait so no check outlives Sync
		return ctx.Err()
	}
}

// writeSlots writes queued lines in order as their checks finish.
func (s *syncer) writeSlots() {
	defer close(s.writerDone)
	for sl := range s.queue {
		<-sl.done
		if s.werr != nil {
			continue // drain, so no sender blocks
		}
		if sl.run {
			s.wProblems += int64(sl.res.Problems)
			s.wBytes += sl.res.BytesRead
			if sl.res.Check != nil {
				b, err := json.Marshal(sl.res.Check)
				if err != nil {
					s.werr = errors.New("listing: a check result does not encode as JSON")
					s.cancel()
					continue
				}
				sl.ln.check = b
			}
		}
		if err := s.write(&sl.ln); err != nil {
			s.werr = err
			s.cancel()
		}
	}
}

// write writes one line, flushing and reporting progress when due.
func (s *syncer) write(ln *line) error {
	s.buf = appendLine(s.buf[:0], ln)
	if _, err := s.bw.Write(s.buf); err != nil {
		return err
	}
	if ln.change != Removed {
		s.written++
	}
	if s.queue == nil && s.written&63 != 0 {
		return nil // without checks lines come fast: look at the clock every 64
	}
	now := s.opts.Now()
	if now.Sub(s.lastFlush) >= s.opts.FlushEvery {
		s.lastFlush = now
		if err := s.flush(); err != nil {
			return err
		}
	}
	if s.opts.Progress != nil && now.Sub(s.lastProgress) >= s.opts.ProgressEvery {
		s.lastProgress = now
		s.opts.Progress(s.written, now.Sub(s.start))
	}
	return nil
}

func (s *syncer) flush() error {
	if err := s.bw.Flush(); err != nil {
		return err
	}
	if s.errFlusher != nil {
		return s.errFlusher.Flush()
	}
	if s.flusher != nil {
		s.flusher.Flush()
	}
	return nil
}

// countProblems counts the "problems" of a check carried over from an
// old manifest.
func countProblems(check json.RawMessage) int {
	var c struct {
		Problems []json.RawMessage `json:"problems"`
	}
	if json.Unmarshal(check, &c) != nil {
		return 0
	}
	return len(c.Problems)
}
