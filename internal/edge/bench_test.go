package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// nopWriter is a ResponseWriter that allocates nothing once its header map
// has grown, so AllocsPerRun counts the handler's allocations only.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }

// hitEnv is a server whose presigned-URL cache and token cache already
// hold the object and token of req.
func hitEnv(tb testing.TB) (*env, *http.Request) { return hitEnvFor(tb, nil) }

// hitEnvFor is hitEnv with the options (opt, may be nil) and the config
// changed first.
func hitEnvFor(tb testing.TB, opt envOption, change ...func(*Config)) (*env, *http.Request) {
	tb.Helper()
	cfg := baseConfig(tb)
	for _, f := range change {
		f(cfg)
	}
	var opts []envOption
	if opt != nil {
		opts = append(opts, opt)
	}
	e := newEnv(tb, cfg, opts...)
	tok := signHS(tb, claims(grant("customer-a", "datasets/42/")))
	req := httptest.NewRequest("GET", "/v1/s/customer-a/datasets/42/frames/000123.jpg?token="+tok, nil)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != http.StatusFound {
		tb.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}
	return e, req
}

// hitAllocs is how many times serving req on h allocates, req being a
// cache hit (its 302 checked).
func hitAllocs(t *testing.T, h http.Handler, req *http.Request) float64 {
	t.Helper()
	w := &nopWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(1000, func() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, req)
	})
	if w.code != http.StatusFound {
		t.Fatalf("status %d", w.code)
	}
	return allocs
}

// productionLogger is the logger `edge serve` builds (JSON, buffered,
// the hand-written access line) writing to io.Discard.
func productionLogger(tb testing.TB) envOption {
	log, err := NewLogger(LogConfig{Level: "info"}, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	return func(o *Options) { o.Logger = log }
}

// maxRedirectHitAllocs pins the redirect hit path at zero: the cache key
// is a struct of the request's own strings, and the Location and
// Cache-Control values are built once per URL (Cache-Control once per
// second of max-age). A change that allocates per request fails here.
const maxRedirectHitAllocs = 0

func TestRedirectHitAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	e, req := hitEnv(t)
	allocs := hitAllocs(t, e.h, req)
	t.Logf("redirect hit: %.0f allocs per request", allocs)
	if allocs > maxRedirectHitAllocs {
		t.Errorf("redirect hit allocates %.0f times per request, want at most %d", allocs, maxRedirectHitAllocs)
	}
}

// BenchmarkRedirectHit is the whole handler on a cache hit with the token
// already verified: what a page of thumbnails costs per image.
func BenchmarkRedirectHit(b *testing.B) {
	e, req := hitEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code != http.StatusFound {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkRedirectHitNoRecorder is the same without httptest's recorder
// (which clones the header map on WriteHeader): the handler alone.
func BenchmarkRedirectHitNoRecorder(b *testing.B) {
	e, req := hitEnv(b)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		e.h.ServeHTTP(w, req)
	}
}

// BenchmarkRedirectMiss signs every time (a new key per iteration).
func BenchmarkRedirectMiss(b *testing.B) {
	e := newEnv(b, baseConfig(b))
	tok := signHS(b, claims(grant("customer-a", "")))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest("GET", "/v1/s/customer-a/k/"+itoa(i)+".jpg?token="+tok, nil)
		w := &nopWriter{h: http.Header{}}
		e.h.ServeHTTP(w, req)
		if w.code != http.StatusFound {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkTokenCheckCached is the verified-token cache hit.
func BenchmarkTokenCheckCached(b *testing.B) {
	e := newEnv(b, baseConfig(b))
	tok := signHS(b, claims(grant("customer-a", "")))
	if _, _, err := e.srv.verifier.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, hit, err := e.srv.verifier.Verify(tok); err != nil || !hit {
			b.Fatal(err, hit)
		}
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

// BenchmarkAccessLog is the redirect hit with the production logger
// (JSON, buffered) writing to io.Discard: what one access line costs on
// top of BenchmarkRedirectHitNoRecorder.
func BenchmarkAccessLog(b *testing.B) {
	e, req := hitEnvFor(b, productionLogger(b))
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.h = http.Header{}
		e.h.ServeHTTP(w, req)
	}
}
