package edge

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgeproxy/edge/internal/audit"
	"github.com/edgeproxy/edge/internal/limit"
	"github.com/edgeproxy/edge/internal/source"
	"go.uber.org/zap"
)

// errRateLimited is the answer past a subject's limits.per_subject budget;
// the handler sets Retry-After before it is rendered.
var errRateLimited = newError(http.StatusTooManyRequests, "rate_limited", "too many requests for this token's subject: retry after the Retry-After seconds", nil)

// minAuditFlush is the least time the audit trail gets to write what is
// queued at shutdown, whatever the requests in flight left of
// server.shutdown_timeout.
const minAuditFlush = 2 * time.Second

// buildAuditAndLimits makes the audit trail and the limiter (each only
// when configured; their metrics always, on the server's registry).
func (s *Server) buildAuditAndLimits(cfg *Config, opts Options) error {
	am := audit.NewMetrics(s.metrics.reg)
	lm := limit.NewMetrics(s.metrics.reg)
	if cfg.Limits.Enabled() {
		l, err := limit.New(cfg.Limits, limit.Options{Metrics: lm, Logger: s.log, Now: s.now})
		if err != nil {
			return err
		}
		s.limits = l
	}
	if cfg.Audit.Enabled() {
		a, err := audit.New(cfg.Audit, audit.Options{Metrics: am, Logger: s.log, Stdout: opts.AuditStdout, Now: s.now})
		if err != nil {
			s.limits.Close()
			s.limits = nil
			return err
		}
		s.audit = a
	}
	return nil
}

// flushAudit closes the audit trail once: what is queued is written (and
// handed to the webhook) within ctx's deadline, or minAuditFlush when
// less is left. Records still unwritten then are counted as dropped and
// logged.
func (s *Server) flushAudit(ctx context.Context) {
	if !s.audit.Enabled() {
		return
	}
	s.auditOnce.Do(func() {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) < minAuditFlush {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), minAuditFlush)
			defer cancel()
		}
		if err := s.audit.Close(ctx); err != nil {
			s.log.Error("audit: records lost at shutdown", zap.Error(err))
		}
	})
}

// allow takes one request from the subject's budget once the token is
// verified and the source resolved (its configured name labels the
// refusal), before anything is signed or fetched. Past the budget: 429
// rate_limited with Retry-After in whole seconds, at least 1.
func (s *Server) allow(w *recorder, r *http.Request, src *Source) error {
	if s.limits == nil {
		return nil
	}
	ok, retry := s.limits.Allow(r.Context(), src.logName, w.subject)
	if ok {
		return nil
	}
	w.Header()["Retry-After"] = limit.RetryAfterHeader(retry)
	return errRateLimited
}

// throttled is w slowed to the subject's limits.per_subject.bytes_per_second
// (stream mode), or w itself. The write deadline (server.write_timeout)
// moves before every chunk the budget lets through: a slow budget must
// not read as a stalled client (a 256 KiB copy buffer at 4 KiB/s takes
// longer than a minute).
func (s *Server) throttled(w *recorder, r *http.Request) http.ResponseWriter {
	// Tokens without a sub share one budget (as for the request rate);
	// only /v1/f, which carries no token, is never slowed.
	if s.limits == nil || w.route == routeFile || s.cfg.Limits.PerSubject.BytesPerSecond <= 0 {
		return w
	}
	d := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: s.cfg.Server.WriteTimeout}
	return s.limits.ResponseWriter(r.Context(), w.subject, d)
}

// auditRoute reports whether route's requests are object requests, each
// of which leaves one audit record.
func auditRoute(route int) bool {
	return route == routeObject || route == routeURL || route == routeFile
}

// objectRoute is the object route path names, or routeOther.
func objectRoute(path string) int {
	switch {
	case strings.HasPrefix(path, "/v1/s/"):
		return routeObject
	case path == "/v1/u":
		return routeURL
	case strings.HasPrefix(path, "/v1/f/"):
		return routeFile
	}
	return routeOther
}

// writeAudit queues the object request's record. Called from finish, the
// access log's place; it never waits (audit.Enqueue drops and counts
// when the queue is full).
func (s *Server) writeAudit(rec *recorder, r *http.Request, status int, at time.Time) {
	var mode string
	if rec.mode != modeNone {
		mode = modeNames[rec.mode]
	}
	s.audit.Enqueue(&audit.Record{
		Time:      at,
		RequestID: rec.id,
		Subject:   rec.subject,
		Issuer:    rec.issuer,
		TokenID:   rec.tokenID,
		Source:    rec.source,
		Key:       auditKey(rec.key),
		Mode:      mode,
		Method:    logMethod(r.Method),
		Status:    status,
		Bytes:     rec.bytes,
		ClientIP:  s.proxies.FromRequest(r),
	})
}

// auditKey bounds a key for the record: storage takes no key longer than
// source.MaxKeyBytes, so only a request for a key that cannot exist is
// cut (at a character boundary, marked).
func auditKey(k string) string {
	if len(k) <= source.MaxKeyBytes {
		return k
	}
	n := source.MaxKeyBytes
	for n > 0 && !utf8.RuneStart(k[n]) {
		n--
	}
	return k[:n] + "…(cut)"
}
