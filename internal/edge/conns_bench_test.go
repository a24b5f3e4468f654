package edge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/connections"
)

// runnerHitEnv is hitEnv served through a Runner (what `edge serve` runs).
func runnerHitEnv(tb testing.TB) (*Runner, *http.Request) {
	tb.Helper()
	e, req := hitEnv(tb)
	r, err := newRunner(e.srv, RunnerOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return r, req
}

// TestRedirectHitAllocsRunner: the Runner's swap-safe dispatch adds no
// allocation to the hit path.
func TestRedirectHitAllocsRunner(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	r, req := runnerHitEnv(t)
	if allocs := hitAllocs(t, r, req); allocs > maxRedirectHitAllocs {
		t.Errorf("redirect hit through the Runner allocates %.0f times per request, want at most %d", allocs, maxRedirectHitAllocs)
	}
}

// BenchmarkRedirectHitRunner is BenchmarkRedirectHitNoRecorder through
// the Runner.
func BenchmarkRedirectHitRunner(b *testing.B) {
	r, req := runnerHitEnv(b)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		r.ServeHTTP(w, req)
	}
}

// connDir writes n connection files (s3, static keys: no network).
func connDir(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("provider: s3\nbucket: bucket-%d\nregion: eu-west-1\nprefix: p/\ncredentials: {type: static, access_key_id: %s, secret_access_key: %s}\n", i, testAKID, testSecKey)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("c%05d.yaml", i)), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// BenchmarkRedirectHitConnection is a hit on one of 10,000 connections.
func BenchmarkRedirectHitConnection(b *testing.B) {
	dir := connDir(b, 10000)
	clk := newClock(t0)
	cfg := &Config{
		Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Connections: connections.Config{Dir: dir},
	}
	cfg.Defaults()
	r, err := NewRunner(context.Background(), cfg, Options{Now: clk.Now}, RunnerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.watch.start(ctx)
	defer r.watch.stop()
	for r.Server().source("c09999") == nil {
		time.Sleep(10 * time.Millisecond)
	}
	tok := signHS(b, claims(grant("c05000", "")))
	req := httptest.NewRequest("GET", "/v1/s/c05000/frames/1.jpg?token="+tok, nil)
	w := &nopWriter{h: http.Header{}}
	r.ServeHTTP(w, req)
	if w.code != http.StatusFound {
		b.Fatalf("warm-up %d", w.code)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		r.ServeHTTP(w, req)
	}
}

// TestConnectionsScale measures start-up with EDGE_SCALE connection files
// (e.g. EDGE_SCALE=10000): the time until every one is served, and the
// heap per connection.
func TestConnectionsScale(t *testing.T) {
	n := 0
	fmt.Sscan(os.Getenv("EDGE_SCALE"), &n)
	if n == 0 {
		t.Skip("set EDGE_SCALE=10000 to measure")
	}
	dir := connDir(t, n)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	clk := newClock(t0)
	cfg := &Config{
		Auth:        auth.Config{Issuer: testIssuer, Audience: testAudience, Keys: []auth.KeyConfig{{ID: "k1", Alg: "HS256", Secret: testSecret}}},
		Connections: connections.Config{Dir: dir},
	}
	cfg.Defaults()
	start := time.Now()
	r, err := NewRunner(context.Background(), cfg, Options{Now: clk.Now}, RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.watch.start(ctx)
	defer r.watch.stop()
	last := fmt.Sprintf("c%05d", n-1)
	for r.Server().source(last) == nil || len(r.Server().sources().ordered) != n {
		if time.Since(start) > 2*time.Minute {
			t.Fatal("not applied in 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("%d connections: start-up to all served %s; heap %.1f MiB more, %.0f bytes per connection",
		n, took, float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), float64(after.HeapAlloc-before.HeapAlloc)/float64(n))
	// One more change among n: how long a single apply takes.
	one := filepath.Join(dir, "c00000.yaml")
	body := fmt.Sprintf("provider: s3\nbucket: changed\nregion: eu-west-1\nprefix: q/\ncredentials: {type: static, access_key_id: %s, secret_access_key: %s}\n", testAKID, testSecKey)
	start = time.Now()
	os.WriteFile(one, []byte(body), 0o644)
	for r.Server().source("c00000").Prefix != "q/" {
		if time.Since(start) > 10*time.Second {
			t.Fatal("change not applied")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("one file changed among %d: applied in %s (file write to first request served)", n, time.Since(start))
	// The edge's own share: one apply of a snapshot with one changed entry.
	snap := r.watch.w.Snapshot()
	for i := range snap {
		if snap[i].Name == "c00001" {
			snap[i].Data = []byte(body)
			snap[i].Version = "changed-by-test"
		}
	}
	start = time.Now()
	r.Server().applyConnections(snap)
	t.Logf("applyConnections of %d entries, one changed: %s", n, time.Since(start))
}
