package edge

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/edgeproxy/edge/internal/audit"
	"github.com/edgeproxy/edge/internal/limit"
)

// withAudit sends the audit trail to a file under the test's temp dir.
func withAudit(tb testing.TB) func(*Config) {
	return func(c *Config) { c.Audit = audit.Config{File: filepath.Join(tb.TempDir(), "audit.jsonl")} }
}

// withLocalLimit is a per-subject request budget no benchmark spends.
func withLocalLimit(c *Config) {
	c.Limits = limit.Config{PerSubject: limit.PerSubject{Rate: 1e6, Burst: 10_000_000}}
}

// hitEnvWith is hitEnv with the config changed first.
func hitEnvWith(tb testing.TB, change ...func(*Config)) (*env, *http.Request) {
	tb.Helper()
	return hitEnvFor(tb, nil, change...)
}

// TestRedirectHitAllocsAudit pins the redirect hit with the audit trail
// on (and with a local limit too) at zero allocations per request: the
// record is a value copied onto the queue, the client address parsed
// without allocating, a known subject's bucket found under a read lock.
func TestRedirectHitAllocsAudit(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, tc := range []struct {
		name   string
		change []func(*Config)
	}{
		{"audit", []func(*Config){withAudit(t)}},
		{"audit+limit", []func(*Config){withAudit(t), withLocalLimit}},
		{"limit", []func(*Config){withLocalLimit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, req := hitEnvWith(t, tc.change...)
			allocs := hitAllocs(t, e.h, req)
			t.Logf("redirect hit, %s: %.0f allocs per request", tc.name, allocs)
			e.srv.Close()
			if tc.name != "limit" {
				written := counterByResult(t, e, "edge_audit_records_total", "written")
				dropped := counterByResult(t, e, "edge_audit_records_total", "dropped")
				if written+dropped != 1002 || written == 0 {
					t.Errorf("%v records written and %v dropped, want 1002 in all (the warm-up and 1001 runs)", written, dropped)
				}
			}
			if allocs > maxRedirectHitAllocs {
				t.Errorf("redirect hit with %s allocates %.0f times per request, want at most %d", tc.name, allocs, maxRedirectHitAllocs)
			}
		})
	}
}

// BenchmarkRedirectHitAudit is BenchmarkRedirectHitNoRecorder with every
// request audited to a file (the writer goroutine encodes and writes in
// batches; records it cannot keep up with are dropped, and reported).
func BenchmarkRedirectHitAudit(b *testing.B) {
	benchHit(b, withAudit(b))
}

// BenchmarkRedirectHitAuditLimit adds a local per-subject limit.
func BenchmarkRedirectHitAuditLimit(b *testing.B) {
	benchHit(b, withAudit(b), withLocalLimit)
}

// BenchmarkRedirectHitLimit is the local per-subject limit alone.
func BenchmarkRedirectHitLimit(b *testing.B) {
	benchHit(b, withLocalLimit)
}

func benchHit(b *testing.B, change ...func(*Config)) {
	e, req := hitEnvWith(b, change...)
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		e.h.ServeHTTP(w, req)
	}
	b.StopTimer()
	e.srv.Close()
	b.ReportMetric(counterByResult(b, e, "edge_audit_records_total", "dropped")/float64(b.N), "dropped/op")
}
