package audit

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// webhook delivers records to an HTTP endpoint: a bounded FIFO of batches
// (chunks) that one goroutine POSTs in order, each retried until answered
// 2xx. Records are dropped only when the buffer is full (the new ones) or
// at Close's deadline (what is left), and counted.
type webhook struct {
	url    string // never logged: it may hold a secret
	client *http.Client
	a      *Auditor
	log    *zap.Logger
	min    time.Duration
	max    time.Duration
	every  time.Duration

	mu     sync.Mutex
	chunks []*chunk // waiting, oldest first; the one being sent is not here
	total  int      // records held, the one being sent included
	cap    int
	free   []*chunk
	wake   chan struct{}

	inputDone chan struct{} // closed by the writer after its last add
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}

	dropped atomic.Int64 // since the last log line
	prefix  string       // batch ids: prefix-sequence
	seq     uint64
}

type chunk struct {
	buf []byte
	n   int
	id  string
}

func newWebhook(u string, capacity int, opts Options, a *Auditor) *webhook {
	client := opts.Client
	if client == nil {
		client = &http.Client{
			Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	h := &webhook{
		url:       u,
		client:    client,
		a:         a,
		log:       a.log,
		min:       opts.BackoffMin,
		max:       opts.BackoffMax,
		every:     a.every,
		cap:       capacity,
		wake:      make(chan struct{}, 1),
		inputDone: make(chan struct{}),
		done:      make(chan struct{}),
	}
	if h.min <= 0 {
		h.min = 250 * time.Millisecond
	}
	if h.max < h.min {
		h.max = max(30*time.Second, h.min)
	}
	var p [6]byte
	_, _ = cryptorand.Read(p[:])
	h.prefix = hex.EncodeToString(p[:])
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

var cryptorand = crand.Reader

func (h *webhook) depth() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// add copies the lines of buf into the buffer, dropping (and counting)
// those that do not fit.
func (h *webhook) add(buf []byte, ends []int) {
	h.mu.Lock()
	start, dropped := 0, 0
	for _, end := range ends {
		line := buf[start:end]
		start = end
		if h.total >= h.cap {
			dropped++
			continue
		}
		var c *chunk
		if k := len(h.chunks); k > 0 {
			c = h.chunks[k-1]
			if c.n >= hookBatchRecords || len(c.buf)+len(line) > hookBatchBytes {
				c = nil
			}
		}
		if c == nil {
			c = h.newChunk()
			h.chunks = append(h.chunks, c)
		}
		c.buf = append(c.buf, line...)
		c.n++
		h.total++
	}
	h.mu.Unlock()
	if dropped > 0 {
		h.dropped.Add(int64(dropped))
		h.a.m.hookDrop.Add(float64(dropped))
		h.a.m.dropped.Add(float64(dropped))
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *webhook) newChunk() *chunk {
	var c *chunk
	if k := len(h.free); k > 0 {
		c, h.free = h.free[k-1], h.free[:k-1]
		c.buf, c.n = c.buf[:0], 0
	} else {
		c = &chunk{}
	}
	h.seq++
	c.id = h.prefix + "-" + strconv.FormatUint(h.seq, 10)
	return c
}

// next takes the oldest chunk, waiting for one; nil when the input is
// done and everything was sent, or when ctx was cancelled.
func (h *webhook) next() *chunk {
	for {
		h.mu.Lock()
		if len(h.chunks) > 0 {
			c := h.chunks[0]
			h.chunks[0] = nil
			h.chunks = h.chunks[1:]
			h.mu.Unlock()
			return c
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-h.inputDone:
			h.mu.Lock()
			empty := len(h.chunks) == 0
			h.mu.Unlock()
			if empty {
				return nil
			}
		case <-h.ctx.Done():
			return nil
		}
	}
}

func (h *webhook) run() {
	defer close(h.done)
	defer h.cancel()
	for {
		c := h.next()
		if c == nil {
			break
		}
		ok := h.deliver(c)
		h.mu.Lock()
		h.total -= c.n
		if ok {
			h.free = append(h.free, c)
		}
		h.mu.Unlock()
		if !ok {
			h.lose(c.n)
			break
		}
		h.a.m.hookSent.Add(float64(c.n))
		if h.a.sink == nil {
			h.a.m.written.Add(float64(c.n))
		}
	}
	// Cancelled at Close's deadline: what is left is lost, and counted.
	h.mu.Lock()
	left := h.total
	h.total, h.chunks = 0, nil
	h.mu.Unlock()
	if left > 0 {
		h.lose(left)
	}
}

func (h *webhook) lose(n int) {
	h.dropped.Add(int64(n))
	h.a.m.hookDrop.Add(float64(n))
	h.a.m.dropped.Add(float64(n))
}

// deliver POSTs c until it is answered 2xx; false when ctx was cancelled
// first.
func (h *webhook) deliver(c *chunk) bool {
	backoff := h.min
	var failing time.Time // when the current run of failures was last logged
	attempts := 0
	for {
		err := h.post(c)
		if err == nil {
			if attempts > 0 {
				h.log.Info("audit webhook recovered", zap.Int("failed_attempts", attempts))
			}
			return true
		}
		if h.ctx.Err() != nil {
			return false
		}
		attempts++
		h.a.m.hookFailures.Inc()
		if now := time.Now(); failing.IsZero() || now.Sub(failing) >= h.every {
			failing = now
			h.log.Warn("audit webhook failing; retrying", zap.String("error", err.Error()),
				zap.Int("attempts", attempts), zap.Int("buffered", h.depth()))
		}
		// Full jitter over the upper half: d in [backoff/2, backoff).
		d := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-h.ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(backoff*2, h.max)
	}
}

// webhookError says why a POST failed without quoting the URL.
type webhookError string

func (e webhookError) Error() string { return string(e) }

func (h *webhook) post(c *chunk) error {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, h.url, bytes.NewReader(c.buf))
	if err != nil {
		return webhookError("cannot build the request")
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("X-Edge-Audit-Batch", c.id)
	req.Header.Set("X-Edge-Audit-Records", strconv.Itoa(c.n))
	resp, err := h.client.Do(req)
	if err != nil {
		return classify(err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return webhookError("answered " + strconv.Itoa(resp.StatusCode))
	}
	return nil
}

// classify names a transport error without its text, which quotes the
// URL (and so any secret in it).
func classify(err error) error {
	var ne net.Error
	var oe *net.OpError
	var ue *url.Error
	switch {
	case errors.Is(err, context.Canceled):
		return webhookError("cancelled")
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return webhookError("timeout")
	case errors.As(err, &oe) && oe.Op == "dial":
		return webhookError("connection failed: " + oe.Err.Error())
	case errors.As(err, &oe):
		return webhookError("network error: " + oe.Err.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return webhookError("connection closed without an answer")
	case errors.As(err, &ue):
		return webhookError("request failed")
	}
	return webhookError("request failed")
}
