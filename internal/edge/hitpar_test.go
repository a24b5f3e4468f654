package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// parEnv is hitEnv for parallel benchmarks: a lock-free clock (the test
// clock's mutex would be the only contended lock), the production logger
// to io.Discard, and, when full, the URL cache filled to max_entries.
func parEnv(b *testing.B, full bool) (*env, string) {
	b.Helper()
	cfg := baseConfig(b)
	e := newEnv(b, cfg, productionLogger(b), func(o *Options) { o.Now = func() time.Time { return t0 } })
	tok := signHS(b, claims(grant("customer-a", "")))
	target := "/v1/s/customer-a/datasets/42/frames/000123.jpg?token=" + tok
	if full {
		src := e.srv.source("customer-a")
		// Sharded, the cache is full (every shard at its share) a little
		// after max_entries distinct keys: keep adding until it is.
		for i := 0; e.srv.urls.Len() < cfg.Cache.MaxEntries && i < 3*cfg.Cache.MaxEntries; i++ {
			if _, _, err := e.srv.presigned(context.Background(), &recorder{}, src, http.MethodGet, "fill/"+strconv.Itoa(i)+".jpg", false); err != nil {
				b.Fatal(err)
			}
		}
		if n := e.srv.urls.Len(); n != cfg.Cache.MaxEntries {
			b.Fatalf("URL cache holds %d, want %d", n, cfg.Cache.MaxEntries)
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	if w.Code != http.StatusFound {
		b.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}
	return e, target
}

// BenchmarkRedirectHitParallel is the redirect hit from every P at once,
// with the URL cache holding one URL (empty) and max_entries (full). Run
// with -cpu 1,2 (and -mutexprofile) to see what the hit path shares.
func BenchmarkRedirectHitParallel(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "empty"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			e, target := parEnv(b, full)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", target, nil)
				w := &nopWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					w.code = 0
					e.h.ServeHTTP(w, req)
					if w.code != http.StatusFound {
						b.Fatalf("status %d", w.code)
					}
				}
			})
		})
	}
}
