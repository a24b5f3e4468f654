package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestNewExpiringSize(t *testing.T) {
	for _, size := range []int{0, -1} {
		if c, err := NewExpiring[string, int](size); err == nil {
			t.Errorf("NewExpiring(%d): got %v, want an error", size, c)
		}
		if l, err := NewLoader[string, int](size); err == nil {
			t.Errorf("NewLoader(%d): got %v, want an error", size, l)
		}
	}
}

func TestExpiringGetAdd(t *testing.T) {
	c, err := NewExpiring[string, int](10)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("a", t0); ok {
		t.Fatalf("empty cache: got a hit, want a miss")
	}
	c.Add("a", 1, t0.Add(time.Minute), t0)
	steps := []struct {
		name string
		now  time.Time
		want int
		ok   bool
	}{
		{"at add", t0, 1, true},
		{"before add (clock went back)", t0.Add(-time.Hour), 1, true},
		{"just before until", t0.Add(time.Minute - time.Nanosecond), 1, true},
		{"at until", t0.Add(time.Minute), 0, false},
		{"after until, removed", t0, 0, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			v, ok := c.Get("a", s.now)
			if v != s.want || ok != s.ok {
				t.Errorf("got %d, %v; want %d, %v", v, ok, s.want, s.ok)
			}
		})
	}
	if n := c.Len(); n != 0 {
		t.Errorf("got Len %d after the expired Get, want 0 (removed)", n)
	}

	// Add replaces value and until.
	c.Add("b", 1, t0.Add(time.Second), t0)
	c.Add("b", 2, t0.Add(time.Hour), t0)
	if v, ok := c.Get("b", t0.Add(time.Minute)); v != 2 || !ok {
		t.Errorf("replaced: got %d, %v; want 2, true", v, ok)
	}
}

func TestExpiringAddExpired(t *testing.T) {
	c, _ := NewExpiring[string, int](10)
	tests := []struct {
		name  string
		until time.Time
	}{
		{"until now", t0},
		{"until past", t0.Add(-time.Second)},
		{"zero until", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Add(tt.name, 1, tt.until, t0)
			if n := c.Len(); n != 0 {
				t.Errorf("got Len %d, want 0: an expired value is not stored", n)
			}
			if _, ok := c.Get(tt.name, tt.until.Add(-time.Hour)); ok {
				t.Errorf("got a hit, want nothing stored")
			}
		})
	}
	// An expired Add does not disturb a live entry for the same key.
	c.Add("k", 1, t0.Add(time.Hour), t0)
	c.Add("k", 2, t0, t0)
	if v, ok := c.Get("k", t0); v != 1 || !ok {
		t.Errorf("got %d, %v; want the live 1, true", v, ok)
	}
}

func TestExpiringEviction(t *testing.T) {
	c, _ := NewExpiring[string, int](3)
	until := t0.Add(time.Hour)
	for i, k := range []string{"a", "b", "c"} {
		c.Add(k, i, until, t0)
	}
	c.Get("a", t0) // a is now the most recent; b the least
	c.Add("d", 3, until, t0)
	if n := c.Len(); n != 3 {
		t.Errorf("got Len %d, want 3 (the capacity)", n)
	}
	for k, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := c.Get(k, t0); ok != want {
			t.Errorf("Get(%q): got %v, want %v", k, ok, want)
		}
	}
	for i := 0; i < 100; i++ {
		c.Add(fmt.Sprint(i), i, until, t0)
		if n := c.Len(); n > 3 {
			t.Fatalf("got Len %d, want at most 3", n)
		}
	}
}

func TestExpiringConcurrent(t *testing.T) {
	c, _ := NewExpiring[int, int](16)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				k := (g*31 + i) % 40
				now := t0.Add(time.Duration(i%7) * time.Second)
				if v, ok := c.Get(k, now); ok && v != k {
					t.Errorf("Get(%d): got %d", k, v)
					return
				}
				c.Add(k, k, now.Add(3*time.Second), now)
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 16 {
		t.Errorf("got Len %d, want at most 16", n)
	}
}

func newLoader(t testing.TB, size int) *Loader[string, string] {
	t.Helper()
	l, err := NewLoader[string, string](size)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoaderGet(t *testing.T) {
	l := newLoader(t, 10)
	ctx := context.Background()
	var calls atomic.Int32
	until := t0.Add(time.Minute)
	load := func(context.Context) (string, time.Time, error) {
		calls.Add(1)
		return "v", until, nil
	}
	steps := []struct {
		name      string
		now       time.Time
		wantHit   bool
		wantCalls int32
	}{
		{"miss loads", t0, false, 1},
		{"hit", t0.Add(time.Second), true, 1},
		{"just before until", until.Add(-time.Nanosecond), true, 1},
		{"at until reloads", until, false, 2},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			v, u, hit, err := l.Get(ctx, "k", fixed(s.now), load)
			if err != nil || v != "v" || !u.Equal(until) {
				t.Fatalf("got %q, %v, %v; want v, %v, nil", v, u, err, until)
			}
			if hit != s.wantHit {
				t.Errorf("got hit %v, want %v", hit, s.wantHit)
			}
			if n := calls.Load(); n != s.wantCalls {
				t.Errorf("got %d loads, want %d", n, s.wantCalls)
			}
		})
	}
	// The reload at until was not stored (its until had passed), so the
	// cache holds nothing servable then.
	if _, _, ok := l.Cached("k", until); ok {
		t.Errorf("Cached at until: got a hit, want a miss")
	}
}

func TestLoaderCached(t *testing.T) {
	l := newLoader(t, 10)
	until := t0.Add(10 * time.Second)
	if _, _, ok := l.Cached("k", t0); ok {
		t.Fatalf("empty: got a hit")
	}
	if _, _, _, err := l.Get(context.Background(), "k", fixed(t0), func(context.Context) (string, time.Time, error) {
		return "v", until, nil
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now time.Time
		ok  bool
	}{
		{t0, true},
		{until.Add(-time.Nanosecond), true},
		{until, false},
		{until.Add(time.Nanosecond), false},
		{until.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.now.Sub(until).String(), func(t *testing.T) {
			v, u, ok := l.Cached("k", tt.now)
			if ok != tt.ok {
				t.Fatalf("got %v, want %v", ok, tt.ok)
			}
			if ok && (v != "v" || !u.Equal(until)) {
				t.Errorf("got %q until %v, want v until %v", v, u, until)
			}
			if !ok && (v != "" || !u.IsZero()) {
				t.Errorf("on a miss: got %q, %v; want zero values", v, u)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { l.Cached("k", t0) }); n != 0 {
		t.Errorf("Cached hit: got %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { l.Cached("absent", t0) }); n != 0 {
		t.Errorf("Cached miss: got %v allocs, want 0", n)
	}
}

func TestLoaderConcurrentMissesLoadOnce(t *testing.T) {
	const n = 32
	l := newLoader(t, 10)
	var calls atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) (string, time.Time, error) {
		calls.Add(1)
		<-release
		return "v", t0.Add(time.Minute), nil
	}
	var started, done sync.WaitGroup
	var hits atomic.Int32
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			v, _, hit, err := l.Get(context.Background(), "k", fixed(t0), load)
			if err == nil && v != "v" {
				err = fmt.Errorf("got %q, want v", v)
			}
			if hit {
				hits.Add(1)
			}
			errs <- err
		}()
	}
	// Barrier: every goroutine has started; give them a moment to reach the
	// flight. Latecomers find the value cached, so the count is exact
	// either way.
	started.Wait()
	time.Sleep(20 * time.Millisecond)
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("got %d loads for %d concurrent misses, want 1", got, n)
	}
	if got := hits.Load(); got == n {
		t.Errorf("got %d hits, want the flight's callers to report misses", got)
	}
	// Concurrent misses on other keys are not collapsed into one.
	calls.Store(0)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Get(context.Background(), fmt.Sprint("other-", i), fixed(t0), load)
		}()
	}
	wg.Wait()
	if got := calls.Load(); got != 4 {
		t.Errorf("got %d loads for 4 keys, want 4", got)
	}
}

func TestLoaderErrorNotCached(t *testing.T) {
	l := newLoader(t, 10)
	errBoom := errors.New("boom")
	var calls atomic.Int32
	load := func(context.Context) (string, time.Time, error) {
		if calls.Add(1) == 1 {
			return "", time.Time{}, errBoom
		}
		return "v", t0.Add(time.Minute), nil
	}
	if _, _, _, err := l.Get(context.Background(), "k", fixed(t0), load); !errors.Is(err, errBoom) {
		t.Fatalf("first Get: got %v, want boom", err)
	}
	if _, _, ok := l.Cached("k", t0); ok {
		t.Fatalf("after an error: got a cached value, want none")
	}
	if l.Len() != 0 {
		t.Errorf("got Len %d after an error, want 0", l.Len())
	}
	v, _, hit, err := l.Get(context.Background(), "k", fixed(t0), load)
	if err != nil || v != "v" || hit {
		t.Errorf("second Get: got %q, hit %v, err %v; want v from a fresh load", v, hit, err)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("got %d loads, want 2 (the error was not cached)", got)
	}
}

// TestLoaderCallerCancelled: a caller waiting on another's load leaves
// when its context ends; the load completes for the others, and its
// context is not the leaving caller's.
func TestLoaderCallerCancelled(t *testing.T) {
	l := newLoader(t, 10)
	var calls atomic.Int32
	inLoad := make(chan struct{})
	release := make(chan struct{})
	var loadCtxErr atomic.Value
	load := func(ctx context.Context) (string, time.Time, error) {
		calls.Add(1)
		close(inLoad)
		<-release
		loadCtxErr.Store(fmt.Sprint(ctx.Err()))
		return "v", t0.Add(time.Minute), nil
	}

	// The first caller starts the load and waits for it.
	first := make(chan error, 1)
	var got string
	go func() {
		v, _, _, err := l.Get(context.Background(), "k", fixed(t0), load)
		got = v
		first <- err
	}()
	<-inLoad
	// A second caller joins the same flight, then goes away.
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, _, _, err := l.Get(ctx, "k", fixed(t0), load)
		second <- err
	}()
	cancel()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled caller: got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled caller still waiting on the load")
	}
	close(release)
	if err := <-first; err != nil || got != "v" {
		t.Errorf("loading caller: got %q, %v; want v", got, err)
	}
	if s := loadCtxErr.Load(); s != "<nil>" {
		t.Errorf("load's ctx: got err %v, want it not cancelled", s)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("got %d loads, want 1", n)
	}
	if _, _, ok := l.Cached("k", t0); !ok {
		t.Errorf("the load completed but is not cached")
	}
}

func TestLoaderCancelledBeforeGet(t *testing.T) {
	l := newLoader(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Cached values are still served to a cancelled caller: no wait.
	l.Get(context.Background(), "k", fixed(t0), func(context.Context) (string, time.Time, error) {
		return "v", t0.Add(time.Minute), nil
	})
	if v, _, hit, err := l.Get(ctx, "k", fixed(t0), nil); err != nil || !hit || v != "v" {
		t.Errorf("got %q, hit %v, err %v; want the cached v", v, hit, err)
	}
}

func TestLoaderLoadTimeout(t *testing.T) {
	l := newLoader(t, 10)
	l.LoadTimeout = 10 * time.Millisecond
	_, _, _, err := l.Get(context.Background(), "k", fixed(t0), func(ctx context.Context) (string, time.Time, error) {
		<-ctx.Done()
		return "", time.Time{}, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want context.DeadlineExceeded from LoadTimeout", err)
	}
}

func TestLoaderRecheckInsideFlight(t *testing.T) {
	// A caller misses (its first look at the clock is past until), but by
	// the time its flight runs the cache holds a servable value, as when a
	// flight finished in between: the flight serves it without loading.
	l := newLoader(t, 10)
	until := t0.Add(time.Minute)
	var calls atomic.Int32
	load := func(context.Context) (string, time.Time, error) {
		calls.Add(1)
		return "v", until, nil
	}
	if _, _, _, err := l.Get(context.Background(), "k", fixed(t0), load); err != nil {
		t.Fatal(err)
	}
	var looks atomic.Int32
	now := func() time.Time {
		if looks.Add(1) == 1 {
			return until // the fast path misses
		}
		return t0 // inside the flight, the entry is servable
	}
	v, u, hit, err := l.Get(context.Background(), "k", now, load)
	if err != nil || v != "v" || !u.Equal(until) {
		t.Fatalf("got %q, %v, %v; want v, %v", v, u, err, until)
	}
	if hit {
		t.Errorf("got hit true, want false (served by the flight)")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("got %d loads, want 1: the flight should re-check the cache", n)
	}
	if n := looks.Load(); n < 2 {
		t.Errorf("the clock was read %d times, want the flight to read it again", n)
	}
}

func TestLoaderEviction(t *testing.T) {
	l := newLoader(t, 2)
	for i := 0; i < 5; i++ {
		k := fmt.Sprint(i)
		l.Get(context.Background(), k, fixed(t0), func(context.Context) (string, time.Time, error) {
			return k, t0.Add(time.Minute), nil
		})
		if n := l.Len(); n > 2 {
			t.Fatalf("got Len %d, want at most 2", n)
		}
	}
	if _, _, ok := l.Cached("0", t0); ok {
		t.Errorf("oldest: got a hit, want it evicted")
	}
	if v, _, ok := l.Cached("4", t0); !ok || v != "4" {
		t.Errorf("newest: got %q, %v; want 4, true", v, ok)
	}
}

func BenchmarkExpiringGet(b *testing.B) {
	c, _ := NewExpiring[string, string](1000)
	c.Add("customer-a/cats/1.jpg", "https://example.com/signed", t0.Add(time.Hour), t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get("customer-a/cats/1.jpg", t0); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkLoaderCached(b *testing.B) {
	l := newLoader(b, 1000)
	l.Get(context.Background(), "customer-a/cats/1.jpg", fixed(t0), func(context.Context) (string, time.Time, error) {
		return "https://example.com/signed", t0.Add(time.Hour), nil
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := l.Cached("customer-a/cats/1.jpg", t0); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkLoaderGetHit(b *testing.B) {
	l := newLoader(b, 1000)
	now := fixed(t0)
	load := func(context.Context) (string, time.Time, error) {
		return "https://example.com/signed", t0.Add(time.Hour), nil
	}
	ctx := context.Background()
	l.Get(ctx, "customer-a/cats/1.jpg", now, load)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, hit, _ := l.Get(ctx, "customer-a/cats/1.jpg", now, load); !hit {
			b.Fatal("miss")
		}
	}
}

func TestExpiringGetAllocs(t *testing.T) {
	c, _ := NewExpiring[string, string](10)
	c.Add("k", "v", t0.Add(time.Hour), t0)
	if n := testing.AllocsPerRun(100, func() { c.Get("k", t0) }); n != 0 {
		t.Errorf("Get hit: got %v allocs, want 0", n)
	}
}
