package edge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
)

// missRequests builds n requests for n distinct keys of customer-a, each
// a URL-cache miss the first time it is served.
func missRequests(tb testing.TB, n int) []*http.Request {
	tb.Helper()
	tok := signHS(tb, claims(grant("customer-a", "")))
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", "/v1/s/customer-a/datasets/42/frames/"+strconv.Itoa(1_000_000+i)+".jpg?token="+tok, nil)
	}
	return reqs
}

// maxRedirectMissAllocs pins the redirect miss path (token cached, URL
// not) at four: the key signed (prefix + key, whose tail is also the
// cached key's own copy of the request's bytes), the signed URL string,
// the flight's call (so that concurrent misses for one key sign once; it
// holds the load's context) and the cache node holding key, URL and
// expiry. Everything else (the signer's buffers, the Cache-Control value,
// the deadline) is pooled, shared or lazy.
const maxRedirectMissAllocs = 4

func TestRedirectMissAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	e := newEnv(t, baseConfig(t))
	const runs = 1000
	reqs := missRequests(t, runs+2)
	w := &nopWriter{h: http.Header{}}
	// Warm up: the token verified and cached, pools filled.
	e.h.ServeHTTP(w, reqs[0])
	i := 1
	allocs := testing.AllocsPerRun(runs, func() {
		clear(w.h)
		w.code = 0
		e.h.ServeHTTP(w, reqs[i])
		i++
	})
	if w.code != http.StatusFound {
		t.Fatalf("status %d", w.code)
	}
	if got := e.srv.urls.Len(); got != i {
		t.Fatalf("%d URLs cached after %d misses", got, i)
	}
	t.Logf("redirect miss: %.1f allocs per request", allocs)
	if allocs > maxRedirectMissAllocs {
		t.Errorf("redirect miss allocates %.1f times per request, want at most %d", allocs, maxRedirectMissAllocs)
	}
}

// maxURLHeapPerEntry bounds the live heap one cached S3 URL costs, index
// included: the URL (342 bytes here, 352 allocated), the key signed (32),
// the node with key, value and expiry (112), its ring and table slots
// (about 30): 544 measured, with room for size-class drift. The cache
// this replaced (sync.Map, a struct of pointers per URL) took 870.
const maxURLHeapPerEntry = 650

// TestURLCacheHeapPerEntry fills the URL cache to its default bound
// (100,000) with S3 URLs and measures the live heap it holds per entry:
// every GC cycle marks all of it.
func TestURLCacheHeapPerEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100,000 URLs")
	}
	e := newEnv(t, baseConfig(t))
	n := e.cfg.Cache.MaxEntries
	src := e.srv.source("customer-a")
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "datasets/42/frames/" + strconv.Itoa(1_000_000+i) + ".jpg"
	}
	var rec recorder
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, k := range keys {
		if _, _, err := e.srv.presigned(ctx, &rec, src, http.MethodGet, k, false); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Each shard holds its share of the bound: keys do not spread
	// evenly, so a little under n stay cached.
	cached := e.srv.urls.Len()
	if cached < n*95/100 || cached > n {
		t.Fatalf("%d URLs cached, want about %d", cached, n)
	}
	p, _, _ := e.srv.presigned(ctx, &rec, src, http.MethodGet, keys[0], false)
	live := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(cached)
	inuse := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(cached)
	objs := float64(int64(after.HeapObjects)-int64(before.HeapObjects)) / float64(cached)
	t.Logf("%d URLs of %d bytes: %.0f B live (HeapAlloc), %.0f B HeapInuse, %.1f objects per entry",
		cached, len(p.URL()), live, inuse, objs)
	runtime.KeepAlive(keys)
	if live > maxURLHeapPerEntry {
		t.Errorf("%.0f B live per cached URL, want at most %d", live, maxURLHeapPerEntry)
	}
}

// waitingSigner stands for a signer that waits (credentials from STS):
// it blocks until its context ends and notes the deadline it was given.
type waitingSigner struct {
	deadline time.Time
	ctx      context.Context
}

func (w *waitingSigner) Presign(ctx context.Context, _ signer.Request) (signer.Presigned, error) {
	w.deadline, _ = ctx.Deadline()
	w.ctx = ctx
	<-ctx.Done()
	return signer.Presigned{}, ctx.Err()
}

// TestDeadlineSigner: a signing never waits past the timeout from its
// start, and a context already ending sooner (the URL cache's loads)
// is passed as it is, without a context of its own.
func TestDeadlineSigner(t *testing.T) {
	const timeout = 50 * time.Millisecond
	for _, tt := range []struct {
		name   string
		ctx    func() (context.Context, context.CancelFunc)
		passed bool // the caller's context reaches the signer unchanged
	}{
		{"no deadline", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, false},
		{"later deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Hour)
		}, false},
		{"sooner deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), timeout/2)
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			w := &waitingSigner{}
			start := time.Now()
			_, err := withDeadline(w, timeout).Presign(ctx, signer.Request{})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want context.DeadlineExceeded", err)
			}
			if limit := start.Add(timeout); w.deadline.After(limit.Add(10 * time.Millisecond)) {
				t.Errorf("deadline %s after start, want at most %s", w.deadline.Sub(start), timeout)
			}
			if got := w.ctx == ctx; got != tt.passed {
				t.Errorf("caller's context passed as it is: %v, want %v", got, tt.passed)
			}
		})
	}
}

// TestURLLoadDeadline: the URL cache's loads end at server.request_timeout,
// so deadlineSigner passes their context as it is.
func TestURLLoadDeadline(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Server.RequestTimeout = 7 * time.Second
	e := newEnv(t, cfg)
	if got := e.srv.urls.LoadTimeout; got != cfg.Server.RequestTimeout {
		t.Errorf("LoadTimeout %s, want server.request_timeout %s", got, cfg.Server.RequestTimeout)
	}
}

// BenchmarkRedirectMissServe is the handler on a redirect miss (token
// cached, a new key every request) without building the request in the
// timed loop (BenchmarkRedirectMiss does): what a first view costs per
// image. Past 100,000 iterations every miss evicts.
func BenchmarkRedirectMissServe(b *testing.B) {
	e := newEnv(b, baseConfig(b))
	tok := signHS(b, claims(grant("customer-a", "")))
	w := &nopWriter{h: http.Header{}}
	var reqs []*http.Request
	j, n := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		if j == len(reqs) {
			b.StopTimer()
			reqs = reqs[:0]
			for range 4096 {
				n++
				reqs = append(reqs, httptest.NewRequest("GET", "/v1/s/customer-a/datasets/42/frames/"+strconv.Itoa(n)+".jpg?token="+tok, nil))
			}
			j = 0
			b.StartTimer()
		}
		clear(w.h)
		e.h.ServeHTTP(w, reqs[j])
		j++
		if w.code != http.StatusFound {
			b.Fatalf("status %d", w.code)
		}
	}
}

// TestCacheControl: the shared Cache-Control values are right for every
// age, including ages that share a slot of the table, negative ones (a
// URL at its serve limit) and fractions of a second (rounded down).
func TestCacheControl(t *testing.T) {
	n := time.Duration(len(maxAgeHeaders)) * time.Second
	for _, tt := range []struct {
		name string
		ttl  time.Duration
		want string
	}{
		{"zero", 0, "private, max-age=0"},
		{"past", -5 * time.Second, "private, max-age=0"},
		{"fraction", 1500 * time.Millisecond, "private, max-age=1"},
		{"hour", time.Hour, "private, max-age=3600"},
		{"slot 7", 7 * time.Second, "private, max-age=7"},
		{"slot 7 again", n + 7*time.Second, "private, max-age=" + strconv.Itoa(len(maxAgeHeaders)+7)},
		{"slot 7 back", 7 * time.Second, "private, max-age=7"},
		{"week", 7 * 24 * time.Hour, "private, max-age=604800"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // built, then shared
				if got := cacheControl(tt.ttl); len(got) != 1 || got[0] != tt.want {
					t.Fatalf("cacheControl(%s) = %q, want %q", tt.ttl, got, tt.want)
				}
			}
		})
	}
}
