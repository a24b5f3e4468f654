package edge

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/edgeproxy/edge/internal/jsonstr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The access log line is the one log line every request writes. Through
// zap it was the largest part of a cache hit's own CPU (field structs,
// a pooled encoder, reflection-free but generic appends: ~3 µs of a
// ~5 µs handler on the test machine). With the logger NewLogger builds,
// the line is appended by hand into the recorder's own buffer and written
// to the same sink as every other line: the same keys, order and
// encodings as zap's production JSON encoder (TestAccessLineMatchesZap).
// Any other logger (a test's observer, a Named or With logger) gets the
// line through zap as before.

// lineCore is the core NewLogger builds: zap's JSON core, with what the
// hand-written access line needs to write beside it.
type lineCore struct {
	zapcore.Core
	out    zapcore.WriteSyncer
	errOut zapcore.WriteSyncer
}

// With returns a plain core: a logger with fields is not the access
// line's (its lines would need those fields).
func (c *lineCore) With(fields []zap.Field) zapcore.Core { return c.Core.With(fields) }

// accessLine returns the hand-written line's core when log is NewLogger's
// own, unnamed and without fields, else nil.
func accessLine(log *zap.Logger) *lineCore {
	if log == nil || log.Name() != "" {
		return nil
	}
	c, _ := log.Core().(*lineCore)
	return c
}

// write appends the access line for rec to its buffer and writes it.
func (c *lineCore) write(rec *recorder, lvl zapcore.Level, method string, status int, elapsed time.Duration, now time.Time) {
	b := appendAccessLine(rec.line[:0], rec, lvl, method, status, elapsed, now)
	rec.line = b
	if _, err := c.out.Write(b); err != nil && c.errOut != nil {
		// As zap reports a failed write.
		fmt.Fprintf(c.errOut, "%v write error: %v\n", now, err)
		c.errOut.Sync()
	}
}

// appendAccessLine is the line zap's JSON encoder writes for the access
// log entry: level, ts (RFC 3339 with nanoseconds), msg, then the fields
// in finish's order; durations in seconds, strings escaped by jsonstr.
func appendAccessLine(b []byte, rec *recorder, lvl zapcore.Level, method string, status int, elapsed time.Duration, now time.Time) []byte {
	b = append(b, `{"level":"`...)
	b = append(b, lvl.String()...)
	b = append(b, `","ts":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"request","method":`...)
	b = jsonstr.Append(b, method)
	b = append(b, `,"route":`...)
	b = jsonstr.Append(b, routeNames[rec.route])
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"latency":`...)
	b = appendSeconds(b, elapsed)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, `,"request_id":`...)
	b = jsonstr.Append(b, rec.id)
	if rec.source != "" {
		b = append(b, `,"source":`...)
		b = jsonstr.Append(b, rec.source)
	}
	if rec.mode != modeNone {
		b = append(b, `,"mode":`...)
		b = jsonstr.Append(b, modeNames[rec.mode])
	}
	if rec.subject != "" {
		b = append(b, `,"subject":`...)
		b = jsonstr.Append(b, bound(rec.subject, maxLogSubject))
	}
	if rec.cache != "" {
		b = append(b, `,"cache":`...)
		b = jsonstr.Append(b, rec.cache)
	}
	if rec.err != nil {
		b = append(b, `,"error":`...)
		b = jsonstr.Append(b, rec.err.Code)
		if rec.err.Err != nil {
			b = append(b, `,"cause":`...)
			b = jsonstr.Append(b, bound(Redact(rec.err.Err.Error()), maxLogCause))
		}
	}
	return append(b, "}\n"...)
}

// appendSeconds is zap's SecondsDurationEncoder: float seconds, shortest
// form ('f', -1), NaN and infinities quoted (never the case for a
// duration, kept for the same bytes).
func appendSeconds(b []byte, d time.Duration) []byte {
	f := float64(d) / float64(time.Second)
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}
