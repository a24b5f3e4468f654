package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fixedClock is zap's clock at one instant, so zap's line and the
// hand-written one carry the same ts.
type fixedClock time.Time

func (c fixedClock) Now() time.Time                         { return time.Time(c) }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// bothLines returns the access line for rec as zap writes it (through
// the logger NewLogger builds) and as appendAccessLine writes it.
func bothLines(t testing.TB, rec *recorder, lvl zapcore.Level, method string, status int, elapsed time.Duration, now time.Time) (viaZap, byHand []byte) {
	t.Helper()
	var buf bytes.Buffer
	log, err := NewLogger(LogConfig{Level: "debug", Unbuffered: true}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	zapAccessLine(log.WithOptions(zap.WithClock(fixedClock(now))), rec, lvl, method, status, elapsed)
	return buf.Bytes(), appendAccessLine(nil, rec, lvl, method, status, elapsed, now)
}

// TestAccessLineMatchesZap: the hand-written access line is byte for byte
// what zap's production JSON encoder (NewLogger's) writes for the same
// entry, for every field shape finish writes.
func TestAccessLineMatchesZap(t *testing.T) {
	now := time.Date(2026, 12, 1, 23, 4, 5, 60708, time.UTC)
	cases := []struct {
		name    string
		rec     recorder
		lvl     zapcore.Level
		method  string
		status  int
		elapsed time.Duration
	}{
		{"hit", recorder{reqState: reqState{route: routeObject, mode: modeRedirect, source: "customer-a", subject: "annotator-17", cache: "hit", id: "ql7rad13-000000000000"}}, zapcore.InfoLevel, "GET", 302, 734 * time.Microsecond},
		{"stream with bytes", recorder{reqState: reqState{route: routeObject, mode: modeStream, source: "s", bytes: 1 << 20, id: "x"}}, zapcore.InfoLevel, "HEAD", 200, 3 * time.Second},
		{"no optional fields", recorder{reqState: reqState{route: routeOther, id: "id"}}, zapcore.InfoLevel, "(other)", 404, 0},
		{"ops at debug", recorder{reqState: reqState{route: routeOps, id: "id"}}, zapcore.DebugLevel, "GET", 200, time.Nanosecond},
		{"error without cause", recorder{reqState: reqState{route: routeObject, source: unknownSource, err: newError(404, "source_not_found", "m", nil), id: "id"}}, zapcore.InfoLevel, "GET", 404, 12 * time.Millisecond},
		{"error with cause", recorder{reqState: reqState{route: routeObject, source: "s", mode: modeStream, err: newError(502, "storage_error", "m", errors.New("GET https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123&x=1: dial tcp: refused")), id: "id"}}, zapcore.ErrorLevel, "GET", 502, time.Minute},
		{"escapes", recorder{reqState: reqState{route: routeObject, source: "s", subject: "a\"b\\c\n\r\t\x00\x1f\x7f é 😀 \xff<&>", err: newError(500, "internal", "m", errors.New("quote \" backslash \\ tab \t")), id: "id"}}, zapcore.ErrorLevel, "GET", 500, 1500 * time.Microsecond},
		{"long subject cut", recorder{reqState: reqState{route: routeObject, subject: strings.Repeat("s", 300), id: "id"}}, zapcore.InfoLevel, "GET", 403, time.Second},
		{"client closed", recorder{reqState: reqState{route: routeObject, err: newError(499, "client_closed", "m", nil), id: "id"}}, zapcore.InfoLevel, "GET", 499, 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			viaZap, byHand := bothLines(t, &tc.rec, tc.lvl, tc.method, tc.status, tc.elapsed, now)
			if !bytes.Equal(viaZap, byHand) {
				t.Errorf("lines differ\nzap:  %s\nhand: %s", viaZap, byHand)
			}
		})
	}
}

// FuzzAccessLine: for any subject, cause, status, size and latency the
// hand-written line is one line of valid JSON with the same fields and
// values as zap's, and the same bytes unless a string holds U+2028 or
// U+2029 (which jsonstr escapes and zap does not).
func FuzzAccessLine(f *testing.F) {
	f.Add("annotator-17", "dial tcp: refused", "s", 302, int64(0), int64(734000), uint8(0))
	f.Add("a\"\\\n\x00\xff\u2028", "X-Amz-Signature=abc&token=x", "", 502, int64(1<<40), int64(-5), uint8(7))
	f.Fuzz(func(t *testing.T, subject, cause, source string, status int, size, latency int64, pick uint8) {
		rec := recorder{reqState: reqState{route: int(pick) % numRoutes, mode: int(pick>>3) % numModes, source: source, subject: subject, bytes: size, id: "id-1"}}
		if pick&0x40 != 0 {
			rec.cache = "hit"
		}
		if pick&0x80 != 0 {
			var cerr error
			if cause != "" {
				cerr = errors.New(cause)
			}
			rec.err = newError(500, "code", "m", cerr)
		}
		now := time.Unix(1796165715, latency).UTC()
		viaZap, byHand := bothLines(t, &rec, zapcore.InfoLevel, "GET", status, time.Duration(latency), now)
		if bytes.Count(byHand, []byte("\n")) != 1 || byHand[len(byHand)-1] != '\n' {
			t.Fatalf("not one line: %q", byHand)
		}
		var a, b map[string]any
		if err := json.Unmarshal(viaZap, &a); err != nil {
			t.Fatalf("zap's line is not JSON: %v: %q", err, viaZap)
		}
		if err := json.Unmarshal(byHand, &b); err != nil {
			t.Fatalf("hand-written line is not JSON: %v: %q", err, byHand)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("fields differ\nzap:  %s\nhand: %s", viaZap, byHand)
		}
		if !strings.ContainsAny(subject+cause+source, "\u2028\u2029") && !bytes.Equal(viaZap, byHand) {
			t.Fatalf("bytes differ\nzap:  %s\nhand: %s", viaZap, byHand)
		}
	})
}

// TestAccessLineThroughServer: a server with NewLogger's logger writes the
// hand-written line (and one per request), a Named logger goes through
// zap, and both lines parse to the same fields but ts and latency.
func TestAccessLineThroughServer(t *testing.T) {
	lines := func(log *zap.Logger, buf *bytes.Buffer) map[string]any {
		e := newEnv(t, baseConfig(t), func(o *Options) { o.Logger = log })
		if log.Name() == "" && e.srv.line == nil {
			t.Fatal("NewLogger's logger not taken for the hand-written line")
		}
		if log.Name() != "" && e.srv.line != nil {
			t.Fatal("a Named logger taken for the hand-written line")
		}
		tok := signHS(t, claims(grant("customer-a", "datasets/42/")))
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/s/customer-a/datasets/42/a.jpg?token="+tok, nil))
		if w.Code != http.StatusFound {
			t.Fatalf("status %d", w.Code)
		}
		log.Sync()
		var found map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("not JSON: %q", l)
			}
			if m["msg"] == "request" {
				if found != nil {
					t.Fatalf("two access lines: %s", buf.Bytes())
				}
				found = m
			}
		}
		if found == nil {
			t.Fatalf("no access line in %s", buf.Bytes())
		}
		if strings.Contains(buf.String(), tok) {
			t.Fatal("the token is in the log")
		}
		for _, k := range []string{"ts", "latency", "request_id"} {
			if _, ok := found[k]; !ok {
				t.Errorf("no %s in %v", k, found)
			}
			delete(found, k)
		}
		delete(found, "logger")
		return found
	}
	var b1, b2 bytes.Buffer
	l1, err := NewLogger(LogConfig{Level: "info"}, &b1)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := NewLogger(LogConfig{Level: "info"}, &b2)
	if err != nil {
		t.Fatal(err)
	}
	byHand, viaZap := lines(l1, &b1), lines(l2.Named("edge"), &b2)
	if !reflect.DeepEqual(byHand, viaZap) {
		t.Errorf("fields differ\nhand: %v\nzap:  %v", byHand, viaZap)
	}
	if byHand["status"] != float64(302) || byHand["cache"] != "miss" && byHand["cache"] != "hit" {
		t.Errorf("unexpected line %v", byHand)
	}
}

// TestRedirectHitAllocsAccessLog pins the hit with the production logger
// (the hand-written access line into the recorder's kept buffer) at zero.
func TestRedirectHitAllocsAccessLog(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	e, req := hitEnvFor(t, productionLogger(t))
	if e.srv.line == nil {
		t.Fatal("the production logger did not take the hand-written line")
	}
	if allocs := hitAllocs(t, e.h, req); allocs > maxRedirectHitAllocs {
		t.Errorf("redirect hit with the access line allocates %.0f times per request, want at most %d", allocs, maxRedirectHitAllocs)
	}
}

// FuzzRFC3339Nano: the access line's timestamp is AppendFormat's, for any
// instant and zone, with the per-second cache warm or cold.
func FuzzRFC3339Nano(f *testing.F) {
	f.Add(int64(1796165715), int64(60708), 0)
	f.Add(int64(1796165715), int64(0), 3600)
	f.Add(int64(-62135596800), int64(999999999), -34200)
	f.Add(int64(253402300800), int64(1), 0)
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int) {
		loc := time.UTC
		if offset != 0 {
			loc = time.FixedZone("z", offset%(24*3600))
		}
		for _, tm := range []time.Time{time.Unix(sec, nsec).In(loc), time.Unix(sec, nsec+1).In(loc), time.Unix(sec+1, nsec).In(loc)} {
			want := tm.AppendFormat(nil, time.RFC3339Nano)
			if got := appendRFC3339Nano(nil, tm); !bytes.Equal(got, want) {
				t.Fatalf("%v: got %s, want %s", tm, got, want)
			}
		}
	})
}
