package edge

import (
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
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
	b = appendRFC3339Nano(b, now)
	// method (logMethod's), route, mode, cache and error codes are the
	// edge's own constants and the request id is generated or checked by
	// validRequestID: none needs escaping. Source names are validated
	// too, but "(unknown)" and the rest go through jsonstr anyway.
	b = append(b, `","msg":"request","method":"`...)
	b = append(b, method...)
	b = append(b, `","route":"`...)
	b = append(b, routeNames[rec.route]...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"latency":`...)
	b = appendSeconds(b, elapsed)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, `,"request_id":`...)
	b = appendPlain(b, rec.id)
	if rec.source != "" {
		b = append(b, `,"source":`...)
		b = jsonstr.Append(b, rec.source)
	}
	if rec.mode != modeNone {
		b = append(b, `,"mode":"`...)
		b = append(b, modeNames[rec.mode]...)
		b = append(b, '"')
	}
	if rec.subject != "" {
		b = append(b, `,"subject":`...)
		b = jsonstr.Append(b, bound(rec.subject, maxLogSubject))
	}
	if rec.cache != "" {
		b = append(b, `,"cache":`...)
		b = appendPlain(b, rec.cache)
	}
	if rec.err != nil {
		b = append(b, `,"error":`...)
		b = appendPlain(b, rec.err.Code)
		if rec.err.Err != nil {
			b = append(b, `,"cause":`...)
			b = jsonstr.Append(b, bound(Redact(rec.err.Err.Error()), maxLogCause))
		}
	}
	return append(b, "}\n"...)
}

// appendPlain quotes s as is when no byte of it needs an escape (the
// edge's own codes and ids), else escapes it with jsonstr.
func appendPlain(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return jsonstr.Append(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// tsSecond is the formatted second the last access line fell in: its
// "2006-01-02T15:04:05" and its zone ("Z" or "+01:00"), which stay the
// same for every line within that second.
type tsSecond struct {
	unix int64
	loc  *time.Location
	date [19]byte
	zone string
}

var lastSecond atomic.Pointer[tsSecond]

// appendRFC3339Nano is t.AppendFormat(b, time.RFC3339Nano) with the
// date and zone formatted once per second (FuzzRFC3339Nano checks it
// against AppendFormat).
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	ts := lastSecond.Load()
	if ts == nil || ts.unix != sec || ts.loc != loc {
		// Once per second (and per zone): the one allocation.
		full := t.AppendFormat(nil, time.RFC3339Nano)
		if y := t.Year(); y < 0 || y > 9999 || len(full) < 20 {
			return append(b, full...) // outside the four-digit years: as AppendFormat has it
		}
		ts = &tsSecond{unix: sec, loc: loc}
		copy(ts.date[:], full)
		zone := full[19:]
		if len(zone) > 0 && zone[0] == '.' {
			zone = zone[bytesIndexAny(zone):]
		}
		ts.zone = string(zone)
		lastSecond.Store(ts)
	}
	b = append(b, ts.date[:]...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, ts.zone...)
}

// bytesIndexAny is where the zone starts after a fraction ('Z', '+', '-').
func bytesIndexAny(s []byte) int {
	for i, c := range s {
		if c == 'Z' || c == '+' || c == '-' {
			return i
		}
	}
	return len(s)
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
