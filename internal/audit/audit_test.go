package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
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

// The test's secrets: none may appear in a record, a log line or a metric.
const (
	secretToken = "eyJhbGciOiJIUzI1NiJ9.SECRET-TOKEN-PAYLOAD.sig"
	secretHook  = "hook-secret-7f3a"
)

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

func (h *harness) opts() Options {
	return Options{Metrics: h.m, Logger: h.log, LogEvery: 50 * time.Millisecond,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 40 * time.Millisecond}
}

func (h *harness) count(t *testing.T, c prometheus.Collector) int {
	t.Helper()
	return int(testutil.ToFloat64(c))
}

// checkNoSecrets scans the logs and the metrics.
func (h *harness) checkNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	testenv.NoSecrets(t, h.logs, h.reg, secrets...)
}

// rec is the i-th test record: its key names i, and the key is sliced from
// a request line that holds the token.
func rec(i int) Record {
	line := "GET /v1/s/customer-a/cats/" + strconv.Itoa(i) + `/"q\uote` + "\n.jpg?token=" + secretToken + " HTTP/1.1"
	q := strings.IndexByte(line, '?')
	return Record{
		Time: fixed, RequestID: "req-" + strconv.Itoa(i), Subject: "annotator-17", Issuer: "https://app.example.com",
		TokenID: "jti-1", Source: line[10:20], Key: line[21:q], Mode: "stream", Method: line[:3],
		Status: 200, Bytes: int64(i),
	}
}

// seqOf reads the record number back from a decoded key.
func seqOf(t *testing.T, d decoded) int {
	t.Helper()
	rest := strings.TrimPrefix(d.Key, "cats/")
	n, err := strconv.Atoi(rest[:strings.IndexByte(rest, '/')])
	if err != nil || d.Key != "cats/"+strconv.Itoa(n)+`/"q\uote`+"\n.jpg" {
		t.Fatalf("key %q", d.Key)
	}
	return n
}

// parseLines decodes every line; any line that is not a whole record fails.
func parseLines(t *testing.T, data []byte) []decoded {
	t.Helper()
	if bytes.Contains(data, []byte("SECRET")) {
		t.Fatal("a record holds the token")
	}
	var out []decoded
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d decoded
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		if d.Source != "customer-a" || d.Method != "GET" || d.Subject != "annotator-17" {
			t.Fatalf("line %q", sc.Bytes())
		}
		out = append(out, d)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("data ends mid-line: %q", data[max(0, len(data)-80):])
	}
	return out
}

func closeOK(t *testing.T, a *Auditor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// syncBuffer is a bytes.Buffer the writer goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func TestStdout(t *testing.T) {
	h := newHarness()
	var out syncBuffer
	cfg := Config{File: "-"}
	cfg.Defaults()
	o := h.opts()
	o.Stdout = &out
	a, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		r := rec(i)
		a.Enqueue(&r)
	}
	closeOK(t, a)
	lines := parseLines(t, out.Bytes())
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	for i, d := range lines {
		if got := seqOf(t, d); got != i {
			t.Fatalf("line %d is record %d: out of order", i, got)
		}
		if d.RequestID != "req-"+strconv.Itoa(i) || d.Bytes != int64(i) || d.Status != 200 || d.Mode != "stream" || d.Time != "2026-12-01T20:30:01.234Z" {
			t.Fatalf("line %d: %+v", i, d)
		}
	}
	if got := h.count(t, h.m.written); got != n {
		t.Errorf("written = %d, want %d", got, n)
	}
	if got := h.count(t, h.m.dropped); got != 0 {
		t.Errorf("dropped = %d, want 0", got)
	}
	// Enqueue after Close is dropped and counted, never a panic.
	r := rec(0)
	a.Enqueue(&r)
	if got := h.count(t, h.m.dropped); got != 1 {
		t.Errorf("dropped after Close = %d, want 1", got)
	}
	h.checkNoSecrets(t, secretToken, "SECRET")
}

func TestDisabledAndNil(t *testing.T) {
	var cfg Config
	cfg.Defaults()
	a, err := New(cfg, Options{})
	if err != nil || a.Enabled() {
		t.Fatalf("New = %v, %v", a, err)
	}
	r := rec(1)
	a.Enqueue(&r)
	if err := a.Close(context.Background()); err != nil {
		t.Error(err)
	}
	var nilA *Auditor
	nilA.Enqueue(&r)
	if nilA.Enabled() || nilA.Close(context.Background()) != nil {
		t.Error("nil auditor")
	}
}

// listFiles returns the audit files in dir, oldest first (the current
// file, without a timestamp, last).
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != "audit.jsonl" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // lumberjack's timestamps sort by time
	return append(names, "audit.jsonl")
}

// TestFileRotation writes many times max_size and reads every file back:
// every line a whole record, no file past max_size, nothing lost or
// repeated, and only max_files files kept, the newest.
func TestFileRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxFiles int
	}{{"all kept", 1000}, {"max_files 4", 4}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness()
			dir := filepath.Join(t.TempDir(), "sub", "dir") // created by New
			path := filepath.Join(dir, "audit.jsonl")
			const maxSize = 16 * bytesize.KiB
			const n = 3000 // about 20 times max_size
			cfg := Config{File: path, MaxSize: maxSize, MaxFiles: tc.maxFiles, Queue: n}
			cfg.Defaults()
			a, err := New(cfg, h.opts())
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				r := rec(i)
				if i%7 == 0 {
					// Longer lines, so batches and files end unevenly.
					r.RequestID += strings.Repeat("é", i%300)
				}
				a.Enqueue(&r)
				if i%500 == 0 {
					time.Sleep(5 * time.Millisecond) // let batches of every size form
				}
			}
			closeOK(t, a)
			// Lumberjack deletes old files in the background.
			var names []string
			deadline := time.Now().Add(5 * time.Second)
			for {
				names = listFiles(t, dir)
				if len(names) <= tc.maxFiles || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(names) > tc.maxFiles {
				t.Fatalf("%d files kept, want at most %d", len(names), tc.maxFiles)
			}
			if len(names) < min(tc.maxFiles, 10) {
				t.Fatalf("only %d files: rotation did not happen as often as it should", len(names))
			}
			var seqs []int
			for _, name := range names {
				data, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(data)) > int64(maxSize) {
					t.Errorf("%s: %d bytes, past max_size %d", name, len(data), maxSize)
				}
				for _, d := range parseLines(t, data) {
					seqs = append(seqs, seqOf(t, d))
				}
			}
			// The kept files hold the newest records, in order, none
			// missing or repeated.
			if len(seqs) == 0 || seqs[len(seqs)-1] != n-1 {
				t.Fatalf("last record %v, want %d", seqs[len(seqs)-1:], n-1)
			}
			for i := 1; i < len(seqs); i++ {
				if seqs[i] != seqs[i-1]+1 {
					t.Fatalf("record %d follows %d", seqs[i], seqs[i-1])
				}
			}
			if tc.maxFiles == 1000 && (len(seqs) != n || seqs[0] != 0) {
				t.Fatalf("%d records read back from %d files, want %d", len(seqs), len(names), n)
			}
			if got := h.count(t, h.m.written); got != n {
				t.Errorf("written = %d, want %d", got, n)
			}
			if got := h.count(t, h.m.dropped); got != 0 {
				t.Errorf("dropped = %d", got)
			}
		})
	}
}

// TestFileAppendsToExisting: a restart appends to the file, and counts
// what is in it toward max_size.
func TestFileAppendsToExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	r0 := rec(0)
	old := bytes.Repeat(AppendJSON(nil, &r0), 40) // ~ 11 KiB
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{File: path, MaxSize: 16 * bytesize.KiB, MaxFiles: 100}
	cfg.Defaults()
	a, err := New(cfg, newHarness().opts())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 40; i++ {
		r := rec(i)
		a.Enqueue(&r)
	}
	closeOK(t, a)
	names := listFiles(t, dir)
	if len(names) != 2 {
		t.Fatalf("files %v, want the old one rotated once", names)
	}
	total := 0
	for _, name := range names {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if len(data) > 16<<10 {
			t.Errorf("%s: %d bytes", name, len(data))
		}
		total += len(parseLines(t, data))
	}
	if total != 80 {
		t.Errorf("%d records, want 80", total)
	}
}

func TestFileUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	_ = os.WriteFile(blocker, nil, 0o600)
	cfg := Config{File: filepath.Join(blocker, "audit.jsonl")}
	cfg.Defaults()
	if _, err := New(cfg, Options{}); err == nil || !strings.HasPrefix(err.Error(), "audit.file:") {
		t.Errorf("New = %v, want an audit.file error", err)
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	release chan struct{}
	entered chan struct{}
	once    sync.Once
	out     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.out.Write(p)
}

// TestQueueFullDropsAndCloseFlushes: with the sink stalled, Enqueue never
// waits; past the queue's capacity records are dropped, counted and
// logged; Close then writes every queued one.
func TestQueueFullDropsAndCloseFlushes(t *testing.T) {
	h := newHarness()
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	cfg := Config{File: "-", Queue: 1000}
	cfg.Defaults()
	o := h.opts()
	o.Stdout = w
	a, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	r := rec(0)
	a.Enqueue(&r)
	<-w.entered // the writer holds one batch, stalled
	const n = 1500
	start := time.Now()
	for i := 1; i < n; i++ {
		r := rec(i)
		a.Enqueue(&r)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("%d enqueues took %v with the sink stalled", n, d)
	}
	if got := testutil.ToFloat64(h.m.queueDepth); got != 1000 {
		t.Errorf("queue depth = %v, want 1000", got)
	}
	dropped := h.count(t, h.m.dropped)
	if dropped != n-1-1000 {
		t.Errorf("dropped = %d, want %d", dropped, n-1-1000)
	}
	// The drop is logged, once per LogEvery, not per record.
	deadline := time.Now().Add(5 * time.Second)
	for h.logs.FilterMessage("audit records dropped").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l := h.logs.FilterMessage("audit records dropped").All(); len(l) != 1 || l[0].ContextMap()["queue_full"] != int64(dropped) {
		t.Errorf("drop log lines: %v", l)
	}
	close(w.release)
	closeOK(t, a)
	lines := parseLines(t, w.out.Bytes())
	if len(lines) != 1001 {
		t.Errorf("%d lines written, want 1001 (the stalled one and a full queue)", len(lines))
	}
	for i, d := range lines {
		if seqOf(t, d) != i {
			t.Fatalf("line %d is record %d", i, seqOf(t, d))
		}
	}
	if got := h.count(t, h.m.written); got != 1001 {
		t.Errorf("written = %d", got)
	}
}

// TestCloseDeadline: a sink stalled past Close's deadline makes Close
// return an error instead of hanging.
func TestCloseDeadline(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{}), entered: make(chan struct{})}
	defer close(w.release)
	cfg := Config{File: "-"}
	cfg.Defaults()
	a, err := New(cfg, Options{Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	r := rec(0)
	a.Enqueue(&r)
	<-w.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := a.Close(ctx); err == nil {
		t.Error("Close = nil with the sink stalled")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// hookServer is a webhook receiver whose behaviour the test switches:
// stall (hold the request until the client gives up), fail (500), ok.
type hookServer struct {
	*httptest.Server
	mode     atomic.Value // "stall" | "fail" | "ok"
	mu       sync.Mutex
	got      []decoded
	batches  map[string]int
	requests atomic.Int64
	badPath  atomic.Int64
}

func newHookServer(t *testing.T, mode string) *hookServer {
	s := &hookServer{batches: map[string]int{}}
	s.mode.Store(mode)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.URL.Path != "/audit/"+secretHook || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-ndjson" {
			s.badPath.Add(1)
		}
		switch s.mode.Load().(string) {
		case "stall":
			// Read the body, so the server notices the client giving up.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		case "fail":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", 400)
			return
		}
		lines := parseLines(t, body)
		if n, _ := strconv.Atoi(r.Header.Get("X-Edge-Audit-Records")); n != len(lines) {
			t.Errorf("X-Edge-Audit-Records %d, body has %d", n, len(lines))
		}
		s.mu.Lock()
		s.got = append(s.got, lines...)
		s.batches[r.Header.Get("X-Edge-Audit-Batch")]++
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) seqs(t *testing.T) map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]int{}
	for _, d := range s.got {
		m[seqOf(t, d)]++
	}
	return m
}

func (s *hookServer) url() string { return s.URL + "/audit/" + secretHook + "?key=" + secretHook }

// TestWebhookStallFailRecover: a webhook that stalls, then answers 500,
// then recovers delays no Enqueue and loses nothing while the buffer
// holds; the file sink is written all along.
func TestWebhookStallFailRecover(t *testing.T) {
	h := newHarness()
	srv := newHookServer(t, "stall")
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := Config{File: path, Webhook: srv.url(), WebhookBuffer: 5000}
	cfg.Defaults()
	o := h.opts()
	// Short enough to see a stall as a failure soon, long enough for a
	// 1000-record POST under -race on a loaded machine.
	o.Client = &http.Client{Timeout: time.Second}
	a, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var slowest time.Duration
	enqueue := func(from, to int) {
		for i := from; i < to; i++ {
			r := rec(i)
			s := time.Now()
			a.Enqueue(&r)
			slowest = max(slowest, time.Since(s))
			if i%100 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	enqueue(0, 1000)
	waitFor(t, "a stalled attempt", func() bool { return h.count(t, h.m.hookFailures) >= 1 })
	srv.mode.Store("fail")
	enqueue(1000, 2000)
	f := h.count(t, h.m.hookFailures)
	waitFor(t, "500 answers", func() bool { return h.count(t, h.m.hookFailures) >= f+3 })
	// Nothing delivered, nothing lost: all 2000 wait in the buffer.
	waitFor(t, "2000 records buffered", func() bool { return testutil.ToFloat64(h.m.hookDepth) == 2000 })
	if got := h.count(t, h.m.hookSent); got != 0 {
		t.Errorf("delivered = %d while failing", got)
	}
	srv.mode.Store("ok")
	enqueue(2000, n)
	closeOK(t, a)
	if slowest > 50*time.Millisecond {
		t.Errorf("slowest Enqueue took %v while the webhook failed", slowest)
	}
	seqs := srv.seqs(t)
	for i := range n {
		if seqs[i] == 0 {
			t.Fatalf("record %d never reached the webhook", i)
		}
	}
	if len(seqs) != n {
		t.Errorf("webhook saw %d distinct records, want %d", len(seqs), n)
	}
	if got := h.count(t, h.m.hookSent); got != n {
		t.Errorf("delivered = %d, want %d", got, n)
	}
	if got := h.count(t, h.m.dropped); got != 0 {
		t.Errorf("dropped = %d, want 0", got)
	}
	if srv.badPath.Load() != 0 {
		t.Error("requests to the wrong path, method or content type")
	}
	data, _ := os.ReadFile(path)
	if got := len(parseLines(t, data)); got != n {
		t.Errorf("file has %d records, want %d", got, n)
	}
	if h.logs.FilterMessage("audit webhook failing; retrying").Len() == 0 || h.logs.FilterMessage("audit webhook recovered").Len() == 0 {
		t.Error("failure and recovery not logged")
	}
	h.checkNoSecrets(t, secretHook, secretToken, srv.Listener.Addr().String()+"/audit")
	for _, e := range h.logs.All() {
		t.Logf("log: %s %v", e.Message, e.ContextMap())
	}
}

// TestWebhookBufferOverflow: past the webhook's buffer, new records are
// dropped and counted exactly; the buffered ones still arrive.
func TestWebhookBufferOverflow(t *testing.T) {
	h := newHarness()
	srv := newHookServer(t, "fail")
	cfg := Config{Webhook: srv.url(), WebhookBuffer: 100}
	cfg.Defaults()
	a, err := New(cfg, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		r := rec(i)
		a.Enqueue(&r)
	}
	waitFor(t, "the drops", func() bool { return h.count(t, h.m.hookDrop) == 200 })
	if got := h.count(t, h.m.dropped); got != 200 {
		t.Errorf("records dropped = %d, want 200", got)
	}
	waitFor(t, "the drop log", func() bool {
		l := h.logs.FilterMessage("audit records dropped").All()
		return len(l) > 0 && l[0].ContextMap()["webhook_buffer_full"] == int64(200)
	})
	srv.mode.Store("ok")
	closeOK(t, a)
	seqs := srv.seqs(t)
	if len(seqs) != 100 {
		t.Errorf("webhook got %d records, want 100", len(seqs))
	}
	for i := range 100 {
		if seqs[i] == 0 {
			t.Errorf("record %d lost", i)
		}
	}
	// Webhook-only: written counts deliveries.
	if got := h.count(t, h.m.written); got != 100 {
		t.Errorf("written = %d, want 100", got)
	}
	h.checkNoSecrets(t, secretHook, secretToken)
}

// TestWebhookCloseDeadline: a webhook still failing at Close's deadline
// loses what it holds, counted, and Close says so.
func TestWebhookCloseDeadline(t *testing.T) {
	h := newHarness()
	srv := newHookServer(t, "fail")
	cfg := Config{Webhook: srv.url()}
	cfg.Defaults()
	a, err := New(cfg, h.opts())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		r := rec(i)
		a.Enqueue(&r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := a.Close(ctx); err == nil {
		t.Error("Close = nil with the webhook failing")
	}
	if got := h.count(t, h.m.hookDrop); got != 50 {
		t.Errorf("webhook dropped = %d, want 50", got)
	}
	if got := h.count(t, h.m.dropped); got != 50 {
		t.Errorf("dropped = %d, want 50", got)
	}
	h.checkNoSecrets(t, secretHook)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEnqueueAllocs pins Enqueue at zero allocations for keys that fit
// the entry, one beyond.
func TestEnqueueAllocs(t *testing.T) {
	cfg := Config{File: "-", Queue: 1 << 16}
	cfg.Defaults()
	a, err := New(cfg, Options{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer closeOK(t, a)
	r := rec(12345)
	if n := testing.AllocsPerRun(1000, func() { a.Enqueue(&r) }); n != 0 {
		t.Errorf("Enqueue: %v allocs, want 0", n)
	}
	r.Key = strings.Repeat("k", 300)
	if n := testing.AllocsPerRun(1000, func() { a.Enqueue(&r) }); n != 1 {
		t.Errorf("Enqueue with a 300-byte key: %v allocs, want 1 (the clone)", n)
	}
}

func BenchmarkEnqueue(b *testing.B) {
	cfg := Config{File: "-"}
	cfg.Defaults()
	a, err := New(cfg, Options{Stdout: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(context.Background())
	r := rec(12345)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a.Enqueue(&r)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := rec(12345)
			for pb.Next() {
				a.Enqueue(&r)
			}
		})
	})
	b.Logf("dropped so far: %v (the writer could not keep up)", testutil.ToFloat64(a.m.dropped))
}
