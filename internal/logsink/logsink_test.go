package logsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// lockedBuf is an output that checks it is never written concurrently.
type lockedBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	syncs  int
	err    error
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	if !l.mu.TryLock() {
		panic("concurrent write to the output")
	}
	defer l.mu.Unlock()
	l.writes++
	if l.err != nil {
		return 0, l.err
	}
	return l.b.Write(p)
}

func (l *lockedBuf) Sync() error { l.mu.Lock(); l.syncs++; l.mu.Unlock(); return nil }

func (l *lockedBuf) lines(t *testing.T) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("output ends mid-line: %q", s[max(0, len(s)-40):])
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// TestConcurrentLinesWhole: many writers, small buffers (so buffers fill
// and flush while others write): after Stop every line is there once,
// whole, and each writer's lines in its order.
func TestConcurrentLinesWhole(t *testing.T) {
	out := &lockedBuf{}
	w := New(out, 8<<10, time.Millisecond)
	const writers, per = 8, 5000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				line := fmt.Sprintf("{\"g\":%d,\"i\":%d,\"pad\":%q}\n", g, i, strings.Repeat("x", i%97))
				if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
					t.Errorf("Write: %d, %v", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	lines := out.lines(t)
	if len(lines) != writers*per {
		t.Fatalf("got %d lines, want %d", len(lines), writers*per)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "{\"g\":%d,\"i\":%d,\"pad\":%q}", &g, &i, &pad); err != nil || pad != strings.Repeat("x", i%97) {
			t.Fatalf("mangled line %q: %v", l, err)
		}
		if seen[l] {
			t.Fatalf("line twice: %q", l)
		}
		seen[l] = true
	}
	if out.syncs == 0 {
		t.Errorf("the output was never synced")
	}
}

// TestFlushInterval: a line reaches the output within the interval
// without Sync.
func TestFlushInterval(t *testing.T) {
	out := &lockedBuf{}
	w := New(out, 1<<20, 10*time.Millisecond)
	defer w.Stop()
	w.Write([]byte("one\n"))
	deadline := time.Now().Add(5 * time.Second)
	for len(out.lines(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the line was not flushed within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBufferedUntilSync: without an interval nothing is written until
// Sync (or a full buffer), then all of it in one write per buffer.
func TestBufferedUntilSync(t *testing.T) {
	out := &lockedBuf{}
	w := New(out, 1<<20, 0)
	for range 10 {
		w.Write([]byte("line\n"))
	}
	if out.writes != 0 {
		t.Fatalf("got %d writes before Sync, want 0", out.writes)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(out.lines(t)); n != 10 {
		t.Errorf("got %d lines after Sync, want 10", n)
	}
	if out.writes > len(w.shards) {
		t.Errorf("got %d writes, want at most one per buffer (%d)", out.writes, len(w.shards))
	}
}

// TestLongLine: a line longer than a buffer is written at once, whole.
func TestLongLine(t *testing.T) {
	out := &lockedBuf{}
	w := New(out, 0, 0) // the smallest buffers
	long := strings.Repeat("y", 3*w.size) + "\n"
	w.Write([]byte("short\n"))
	w.Write([]byte(long))
	w.Sync()
	lines := out.lines(t)
	// Two buffers may hold them: either order, both whole.
	if len(lines) != 2 || !(lines[0] == "short" && lines[1] == long[:len(long)-1] || lines[1] == "short" && lines[0] == long[:len(long)-1]) {
		t.Errorf("got %d lines, want short and the long one, whole", len(lines))
	}
}

// TestWriteError: the output's error reaches the writer whose line filled
// a buffer, and Sync.
func TestWriteError(t *testing.T) {
	boom := errors.New("disk full")
	out := &lockedBuf{err: boom}
	w := New(out, 0, 0)
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		_, err = w.Write([]byte("some line of a log\n"))
	}
	if !errors.Is(err, boom) {
		t.Errorf("Write: got %v, want %v once a buffer fills", err, boom)
	}
	w.Write([]byte("x\n"))
	if err := w.Sync(); !errors.Is(err, boom) {
		t.Errorf("Sync: got %v, want %v", err, boom)
	}
}

func BenchmarkWriteParallel(b *testing.B) {
	w := New(io.Discard, 256<<10, time.Second)
	defer w.Stop()
	line := []byte(`{"level":"info","ts":"2026-12-01T21:00:00.123456789Z","msg":"request","method":"GET","route":"object","status":302}` + "\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Write(line)
		}
	})
}

// BenchmarkWriteParallelZapBuffered is the same through the writer the
// edge used before: zapcore.BufferedWriteSyncer, one mutex per line.
func BenchmarkWriteParallelZapBuffered(b *testing.B) {
	w := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(io.Discard), Size: 256 << 10, FlushInterval: time.Second}
	defer w.Stop()
	line := []byte(`{"level":"info","ts":"2026-12-01T21:00:00.123456789Z","msg":"request","method":"GET","route":"object","status":302}` + "\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Write(line)
		}
	})
}
