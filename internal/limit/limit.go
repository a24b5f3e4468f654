// Package limit keeps per-subject budgets: object requests per second (a
// token bucket per token subject, in memory, or one GCRA budget per
// subject in Redis shared by every replica) and bytes per second in stream
// mode. It never fails a request because of itself: when Redis is
// unreachable the local buckets decide, within a short timeout, and Redis
// is tried again in the background.
package limit

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// Options are the Limiter's collaborators; all optional.
type Options struct {
	Metrics *Metrics    // nil: unregistered metrics of its own
	Logger  *zap.Logger // nil: no logs
	// Now is the clock of the local buckets (default time.Now).
	Now func() time.Time
	// MaxSubjects bounds the subjects kept in memory (default 100000).
	MaxSubjects int
	// RedisTimeout bounds each Redis call, connecting included (default
	// 50 ms): past it the request is decided locally.
	RedisTimeout time.Duration
	// RedisRetry is how often Redis is tried again while it is down
	// (default 1 s).
	RedisRetry time.Duration
}

// Limiter applies the budgets of one config. A nil *Limiter allows
// everything. It is safe for concurrent use.
type Limiter struct {
	local *local
	redis *redisBudget // nil without Redis
	m     *Metrics
	log   *zap.Logger
	now   func() time.Time
}

// New builds the limiter cfg describes (cfg has had Defaults and passed
// Validate). With Redis configured it pings it once; an unreachable Redis
// does not fail the start: the local budgets decide until it answers.
func New(cfg Config, opts Options) (*Limiter, error) {
	if errs := cfg.Validate("limits"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	l := &Limiter{m: opts.Metrics, log: opts.Logger, now: opts.Now}
	if l.m == nil {
		l.m = NewMetrics(nil)
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if opts.MaxSubjects <= 0 {
		opts.MaxSubjects = 100000
	}
	l.local = newLocal(cfg.PerSubject, opts.MaxSubjects)
	if cfg.Redis != "" {
		r, err := newRedisBudget(cfg, opts, l.m, l.log)
		if err != nil {
			return nil, err
		}
		l.redis = r
	} else {
		l.m.redisUp.Set(0)
	}
	return l, nil
}

// Allow takes one request from subject's budget. When it is spent, ok is
// false and retryAfter says when the next request would be allowed (render
// it with RetryAfterSeconds or RetryAfterHeader); the refusal is counted
// under source. With Redis it asks Redis, within RedisTimeout, and falls
// back to the local budget when Redis fails or is known to be down. ctx
// is the request's: a client that goes away cancels the Redis call.
// source is a label value: pass a configured source's name (call Allow
// once the source is resolved), never a name taken from an unknown
// request, or the metric's cardinality is the client's to choose.
//
// Locally, for a subject seen before, Allow allocates nothing.
func (l *Limiter) Allow(ctx context.Context, source, subject string) (ok bool, retryAfter time.Duration) {
	if l == nil || l.local.rate == 0 {
		return true, 0
	}
	if l.redis != nil {
		if ok, retry, err := l.redis.allow(ctx, subject); err == nil {
			if !ok {
				l.m.limited.WithLabelValues(source).Inc()
			}
			return ok, retry
		}
		l.m.fallbacks.Inc()
	}
	ok, retryAfter = l.local.allow(subject, l.now())
	if !ok {
		l.m.limited.WithLabelValues(source).Inc()
	}
	return ok, retryAfter
}

// Close stops the background Redis prober and closes the client.
func (l *Limiter) Close() error {
	if l == nil || l.redis == nil {
		return nil
	}
	return l.redis.close()
}

// RetryAfterSeconds is d in whole seconds for Retry-After: rounded up, at
// least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}

// retryAfterHeaders are the header values for 1 to 60 seconds, built once.
var retryAfterHeaders = func() (h [61][]string) {
	for i := 1; i < len(h); i++ {
		h[i] = []string{strconv.Itoa(i)}
	}
	return h
}()

// RetryAfterHeader is the Retry-After header value for d (see
// RetryAfterSeconds), shared and never to be modified; it allocates only
// past a minute.
func RetryAfterHeader(d time.Duration) []string {
	s := RetryAfterSeconds(d)
	if s < int64(len(retryAfterHeaders)) {
		return retryAfterHeaders[s]
	}
	return []string{strconv.FormatInt(s, 10)}
}

// Writer returns w slowed to subject's bytes_per_second (shared by all of
// the subject's streams on this replica), or w itself when there is no
// such limit. Each Write waits for its bytes, chunk by chunk (at most
// bytes_burst at a time), and gives up with ctx's error when ctx ends
// first.
func (l *Limiter) Writer(ctx context.Context, subject string, w io.Writer) io.Writer {
	if l == nil || l.local.bRate == 0 {
		return w
	}
	return &throttle{ctx: ctx, w: w, e: l.local.get(subject, l.now()), l: l}
}

// ResponseWriter is Writer for an http.ResponseWriter: Header and
// WriteHeader pass through, Write is slowed, and Unwrap reaches w (for
// http.ResponseController). It hides w's ReadFrom, so sendfile cannot
// bypass the budget.
func (l *Limiter) ResponseWriter(ctx context.Context, subject string, w http.ResponseWriter) http.ResponseWriter {
	if l == nil || l.local.bRate == 0 {
		return w
	}
	return &throttledResponse{ResponseWriter: w, t: throttle{ctx: ctx, w: w, e: l.local.get(subject, l.now()), l: l}}
}

type throttle struct {
	ctx context.Context
	w   io.Writer
	e   *subject
	l   *Limiter
}

func (t *throttle) Write(p []byte) (int, error) {
	written := 0
	burst := t.e.bytes.Burst()
	for len(p) > 0 {
		n := min(len(p), burst)
		start := time.Now()
		if !t.e.bytes.AllowN(start, n) {
			if err := t.e.bytes.WaitN(t.ctx, n); err != nil {
				if ctxErr := t.ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				return written, err
			}
			t.l.m.throttled.Add(time.Since(start).Seconds())
		}
		t.e.last.Store(t.l.now().UnixNano())
		k, err := t.w.Write(p[:n])
		written += k
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

type throttledResponse struct {
	http.ResponseWriter
	t throttle
}

func (w *throttledResponse) Write(p []byte) (int, error) { return w.t.Write(p) }

func (w *throttledResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }
