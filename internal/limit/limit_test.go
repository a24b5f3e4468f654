package limit

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/bytesize"
	"github.com/edgeproxy/edge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	reg  *prometheus.Registry
	m    *Metrics
	logs *observer.ObservedLogs
	log  *zap.Logger
}

func newHarness() *harness {
	core, logs := observer.New(zap.DebugLevel)
	reg := prometheus.NewRegistry()
	return &harness{reg: reg, m: NewMetrics(reg), logs: logs, log: zap.New(core)}
}

func (h *harness) checkNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	testenv.NoSecrets(t, h.logs, h.reg, secrets...)
}

func newLimiter(t testing.TB, cfg Config, o Options) *Limiter {
	t.Helper()
	cfg.Defaults()
	l, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestValidate(t *testing.T) {
	const pw = "redis-pass-SECRET"
	tests := []struct {
		name string
		cfg  Config
		want []string // error prefixes, in order
	}{
		{"empty is off", Config{}, nil},
		{"ok", Config{PerSubject: PerSubject{Rate: 50, Burst: 200, BytesPerSecond: 10 * bytesize.MiB}, Redis: "redis://:" + pw + "@127.0.0.1:6379/0"}, nil},
		{"fractional rate", Config{PerSubject: PerSubject{Rate: 0.5}}, nil},
		{"negative rate", Config{PerSubject: PerSubject{Rate: -1}}, []string{"limits.per_subject.rate:"}},
		{"burst without rate", Config{PerSubject: PerSubject{Burst: 3}}, []string{"limits.per_subject.burst:"}},
		{"bad burst", Config{PerSubject: PerSubject{Rate: 5, Burst: -2}}, []string{"limits.per_subject.burst:"}},
		{"bad bytes", Config{PerSubject: PerSubject{BytesPerSecond: bytesize.Invalid}}, []string{"limits.per_subject.bytes_per_second:"}},
		{"tiny bytes", Config{PerSubject: PerSubject{BytesPerSecond: 10}}, []string{"limits.per_subject.bytes_per_second:"}},
		{"bytes burst alone", Config{PerSubject: PerSubject{BytesBurst: bytesize.MiB}}, []string{"limits.per_subject.bytes_burst:"}},
		{"redis not a url", Config{PerSubject: PerSubject{Rate: 1}, Redis: "http://:" + pw + "@host/"}, []string{"limits.redis:"}},
		{"redis bad db", Config{PerSubject: PerSubject{Rate: 1}, Redis: "redis://:" + pw + "@host:6379/notadb"}, []string{"limits.redis:"}},
		{"redis without rate", Config{Redis: "redis://:" + pw + "@host:6379/0"}, []string{"limits.redis:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.Defaults()
			errs := c.Validate("limits")
			if len(errs) != len(tt.want) {
				t.Fatalf("got %v, want %d errors", errs, len(tt.want))
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Errorf("error %q, want prefix %q", err, tt.want[i])
				}
				if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "notadb") {
					t.Errorf("error echoes a value: %q", err)
				}
			}
		})
	}
}

// TestLocalBurst: one subject's burst is limited past its budget, with the
// right retry-after, while another subject is unaffected.
func TestLocalBurst(t *testing.T) {
	h := newHarness()
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	l := newLimiter(t, Config{PerSubject: PerSubject{Rate: 10, Burst: 5}}, Options{Metrics: h.m, Now: c.Now})
	ctx := context.Background()
	for i := range 5 {
		if ok, _ := l.Allow(ctx, "customer-a", "alice"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := l.Allow(ctx, "customer-a", "alice")
	if ok || retry != 100*time.Millisecond {
		t.Fatalf("past the burst: ok=%v retry=%v, want false 100ms", ok, retry)
	}
	if got := RetryAfterSeconds(retry); got != 1 {
		t.Errorf("Retry-After %d, want 1", got)
	}
	for i := range 5 {
		if ok, _ := l.Allow(ctx, "customer-b", "bob"); !ok {
			t.Fatalf("bob's request %d refused because of alice", i)
		}
	}
	c.Add(40 * time.Millisecond)
	if ok, retry := l.Allow(ctx, "customer-a", "alice"); ok || retry != 60*time.Millisecond {
		t.Errorf("40ms later: ok=%v retry=%v, want false 60ms", ok, retry)
	}
	c.Add(60 * time.Millisecond)
	if ok, _ := l.Allow(ctx, "customer-a", "alice"); !ok {
		t.Error("refused after waiting retry-after")
	}
	if ok, _ := l.Allow(ctx, "customer-a", "alice"); ok {
		t.Error("a second request allowed at once")
	}
	if got := testutil.ToFloat64(h.m.limited.WithLabelValues("customer-a")); got != 3 {
		t.Errorf("limited{customer-a} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(h.m.limited.WithLabelValues("customer-b")); got != 0 {
		t.Errorf("limited{customer-b} = %v, want 0", got)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Nanosecond, "1"}, {time.Second, "1"}, {time.Second + 1, "2"}, {2500 * time.Millisecond, "3"}, {time.Minute, "60"}, {90 * time.Second, "90"}} {
		if got := RetryAfterHeader(tt.d); len(got) != 1 || got[0] != tt.want {
			t.Errorf("RetryAfterHeader(%v) = %v, want %s", tt.d, got, tt.want)
		}
	}
	c := &clock{t: time.Unix(1e9, 0)}
	l := newLimiter(t, Config{PerSubject: PerSubject{Rate: 0.5}}, Options{Now: c.Now})
	l.Allow(context.Background(), "s", "x")
	if ok, retry := l.Allow(context.Background(), "s", "x"); ok || retry != 2*time.Second {
		t.Errorf("rate 0.5: ok=%v retry=%v, want false 2s", ok, retry)
	}
}

func TestOffAndNil(t *testing.T) {
	var nl *Limiter
	if ok, _ := nl.Allow(context.Background(), "s", "x"); !ok {
		t.Error("nil limiter refused")
	}
	var buf bytes.Buffer
	if nl.Writer(context.Background(), "x", &buf) != &buf {
		t.Error("nil limiter wrapped the writer")
	}
	l := newLimiter(t, Config{}, Options{})
	for range 1000 {
		if ok, _ := l.Allow(context.Background(), "s", "x"); !ok {
			t.Fatal("no limit configured, yet refused")
		}
	}
}

// TestBounded: the subject map never grows past MaxSubjects; a subject
// evicted when idle comes back with a full bucket, as it would have had.
func TestBounded(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l := newLimiter(t, Config{PerSubject: PerSubject{Rate: 1, Burst: 2}}, Options{Now: c.Now, MaxSubjects: 640})
	ctx := context.Background()
	for i := range 20000 {
		l.Allow(ctx, "s", "sub-"+strconv.Itoa(i))
		if i%1000 == 0 {
			c.Add(time.Millisecond)
		}
	}
	if n := l.local.size(); n > 640 {
		t.Errorf("%d subjects held, want at most 640", n)
	}
	// A spent subject, recent, survives a flood of idle ones.
	l.Allow(ctx, "s", "hot")
	l.Allow(ctx, "s", "hot")
	c.Add(time.Hour)
	l.Allow(ctx, "s", "hot") // refills: 1 token left after this one
	l.Allow(ctx, "s", "hot")
	for i := range 5000 {
		l.Allow(ctx, "s", "new-"+strconv.Itoa(i%100)) // far fewer than the room, spread over 64 shards
	}
	if ok, _ := l.Allow(ctx, "s", "hot"); ok {
		t.Error("hot subject's spent bucket was reset by eviction")
	}
}

func TestLocalAllowAllocs(t *testing.T) {
	l := newLimiter(t, Config{PerSubject: PerSubject{Rate: 1e6, Burst: 1e6}}, Options{})
	ctx := context.Background()
	l.Allow(ctx, "customer-a", "annotator-17")
	if n := testing.AllocsPerRun(1000, func() { l.Allow(ctx, "customer-a", "annotator-17") }); n != 0 {
		t.Errorf("Allow: %v allocs, want 0", n)
	}
}

// TestWriterBytesPerSecond: a stream is slowed to the subject's budget,
// shared by its streams, and gives up when its context ends.
func TestWriterBytesPerSecond(t *testing.T) {
	h := newHarness()
	l := newLimiter(t, Config{PerSubject: PerSubject{BytesPerSecond: bytesize.MiB, BytesBurst: 64 * bytesize.KiB}}, Options{Metrics: h.m})
	if ok, _ := l.Allow(context.Background(), "s", "x"); !ok {
		t.Fatal("bytes limit alone refused a request")
	}
	data := bytes.Repeat([]byte("x"), 320<<10)
	var wg sync.WaitGroup
	var total atomic.Int64
	start := time.Now()
	for range 2 { // two streams of one subject share its budget
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			w := l.Writer(context.Background(), "alice", &out)
			n, err := io.Copy(w, bytes.NewReader(data))
			if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
				t.Errorf("copy: %d, %v", n, err)
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// 640 KiB at 1 MiB/s after a 64 KiB burst: about 0.56 s.
	if elapsed < 450*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("640KiB at 1MiB/s took %v", elapsed)
	}
	if testutil.ToFloat64(h.m.throttled) <= 0 {
		t.Error("throttled seconds not counted")
	}
	// Another subject has its own budget: its burst goes out at once.
	s := time.Now()
	if _, err := l.Writer(context.Background(), "bob", io.Discard).Write(data[:64<<10]); err != nil || time.Since(s) > 100*time.Millisecond {
		t.Errorf("bob's first 64KiB: %v after %v", err, time.Since(s))
	}
	// ctx ends mid-stream: the write stops with its error.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	s = time.Now()
	n, err := l.Writer(ctx, "carol", io.Discard).Write(bytes.Repeat([]byte("y"), 4<<20))
	if err == nil || n >= 4<<20 || time.Since(s) > time.Second {
		t.Errorf("cancelled stream: n=%d err=%v after %v", n, err, time.Since(s))
	}
	// The ResponseWriter form passes headers through and throttles too.
	rec := httptest.NewRecorder()
	rw := l.ResponseWriter(context.Background(), "dave", rec)
	rw.Header().Set("X-Test", "1")
	rw.WriteHeader(206)
	if _, err := rw.Write([]byte("hi")); err != nil || rec.Code != 206 || rec.Body.String() != "hi" || rec.Header().Get("X-Test") != "1" {
		t.Errorf("response writer: %d %q %v", rec.Code, rec.Body, err)
	}
	if _, ok := rw.(io.ReaderFrom); ok {
		t.Error("ResponseWriter exposes ReadFrom: sendfile would bypass the budget")
	}
}

func BenchmarkLocalAllow(b *testing.B) {
	l := newLimiter(b, Config{PerSubject: PerSubject{Rate: 1e6, Burst: 1e7}}, Options{})
	ctx := context.Background()
	subjects := make([]string, 1024)
	for i := range subjects {
		subjects[i] = "annotator-" + strconv.Itoa(i)
	}
	b.Run("one subject parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(ctx, "customer-a", "annotator-17")
			}
		})
	})
	b.Run("1024 subjects parallel", func(b *testing.B) {
		b.ReportAllocs()
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 131
			for pb.Next() {
				i++
				l.Allow(ctx, "customer-a", subjects[i&1023])
			}
		})
	})
}
