package cache

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

func TestShardCount(t *testing.T) {
	for _, tt := range []struct{ size, shards int }{
		{1, 1}, {3, 1}, {2047, 1}, {2048, 2}, {10000, 8}, {65536, 64}, {100000, 64}, {1 << 24, 64},
	} {
		t.Run(strconv.Itoa(tt.size), func(t *testing.T) {
			c, err := NewExpiring[string, int](tt.size)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(c.shards); got != tt.shards {
				t.Errorf("got %d shards, want %d", got, tt.shards)
			}
			total := 0
			for i := range c.shards {
				total += c.shards[i].cap
			}
			if total != tt.size {
				t.Errorf("shard capacities add up to %d, want %d", total, tt.size)
			}
		})
	}
}

// TestShardedBound fills a sharded cache far past its bound: never more
// than size entries, and a full cache (each shard at its share).
func TestShardedBound(t *testing.T) {
	const size = 100_000
	c, _ := NewExpiring[string, int](size)
	until := t0.Add(time.Hour)
	for i := range 3 * size {
		c.Add("k"+strconv.Itoa(i), i, until, t0)
	}
	if n := c.Len(); n != size {
		t.Errorf("got Len %d, want %d", n, size)
	}
	// The newest entries of each shard survive: the last size/10 added
	// are all there (each shard evicts its own oldest).
	for i := 3*size - size/10; i < 3*size; i++ {
		if v, ok := c.Get("k"+strconv.Itoa(i), t0); !ok || v != i {
			t.Fatalf("recent k%d: got %d, %v; want it cached", i, v, ok)
		}
	}
	if _, ok := c.Get("k0", t0); ok {
		t.Errorf("oldest: got a hit, want it evicted")
	}
}

// TestShardedExpiry: a sharded cache never serves an entry at or past its
// until, whichever shard holds it.
func TestShardedExpiry(t *testing.T) {
	c, _ := newExpiring[int, int](8192, 16) // room in every shard
	for i := range 4096 {
		c.Add(i, i, t0.Add(time.Duration(i)*time.Second), t0.Add(-time.Hour))
	}
	now := t0.Add(2048 * time.Second)
	for i := range 4096 {
		_, ok := c.Get(i, now)
		if want := i > 2048; ok != want {
			t.Fatalf("Get(%d) at +2048s: got %v, want %v", i, ok, want)
		}
	}
	if n := c.Len(); n != 2047 {
		t.Errorf("got Len %d, want 2047 (the expired ones removed when seen)", n)
	}
}

// TestShardedLoaderOneLoadPerKey: concurrent misses on many keys across
// shards load each key once.
func TestShardedLoaderOneLoadPerKey(t *testing.T) {
	l, _ := NewLoader[string, string](100_000)
	var loads [256]atomic.Int32
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 256 {
				k := (i + g*17) % 256
				v, _, _, err := l.Get(context.Background(), strconv.Itoa(k), fixed(t0), func(context.Context) (string, time.Time, error) {
					loads[k].Add(1)
					time.Sleep(time.Millisecond)
					return strconv.Itoa(k), t0.Add(time.Hour), nil
				})
				if err != nil || v != strconv.Itoa(k) {
					t.Errorf("Get(%d): %q, %v", k, v, err)
				}
			}
		}()
	}
	wg.Wait()
	for k := range loads {
		if n := loads[k].Load(); n != 1 {
			t.Errorf("key %d loaded %d times, want 1", k, n)
		}
	}
}

// structKey is shaped like the edge's URL key: a pointer and strings.
type structKey struct {
	src    *int
	method string
	key    string
}

func TestShardedGetAllocs(t *testing.T) {
	src := new(int)
	l, _ := NewLoader[structKey, *string](100_000)
	v := "https://example.com/signed"
	k := structKey{src, "GET", "datasets/42/frames/000123.jpg"}
	l.Get(context.Background(), k, fixed(t0), func(context.Context) (*string, time.Time, error) { return &v, t0.Add(time.Hour), nil })
	if n := testing.AllocsPerRun(1000, func() {
		if _, _, ok := l.Cached(k, t0); !ok {
			t.Fatal("miss")
		}
	}); n != 0 {
		t.Errorf("Cached hit with a struct key: got %v allocs, want 0", n)
	}
}

// fullLoader is a Loader of size entries, all cached, in n shards.
func fullLoader(b *testing.B, size, n int) (*Loader[structKey, *string], []structKey) {
	c, err := newExpiring[structKey, *string](size, n)
	if err != nil {
		b.Fatal(err)
	}
	l := &Loader[structKey, *string]{cache: c, LoadTimeout: time.Second}
	src := new(int)
	// Twice the bound: every shard is full; the keys still cached are
	// the ones to look up.
	all := make([]structKey, 2*size)
	v := "https://example.com/signed"
	for i := range all {
		all[i] = structKey{src, "GET", fmt.Sprintf("datasets/42/frames/%06d.jpg", i)}
		c.Add(all[i], &v, t0.Add(time.Hour), t0)
	}
	if n := c.Len(); n != size {
		b.Fatalf("Len %d, want %d", n, size)
	}
	var keys []structKey
	for _, k := range all {
		if _, _, ok := l.Cached(k, t0); ok {
			keys = append(keys, k)
		}
	}
	return l, keys
}

// BenchmarkCachedParallel is the URL cache's hit path under concurrency,
// with the cache full (100,000 entries): sharded as NewLoader builds it,
// Run with -cpu 1,2, beside BenchmarkCachedParallelOneLock.
// BenchmarkCachedParallelOneLock is the same hit on the cache this
// package had before: hashicorp's LRU behind its one mutex, full.
func BenchmarkCachedParallelOneLock(b *testing.B) {
	for _, hot := range []int{0, 100} {
		b.Run(fmt.Sprintf("hot=%d", hot), func(b *testing.B) {
			l, err := lru.New[structKey, entry[*string]](100_000)
			if err != nil {
				b.Fatal(err)
			}
			src := new(int)
			v := "https://example.com/signed"
			keys := make([]structKey, 100_000)
			for i := range keys {
				keys[i] = structKey{src, "GET", fmt.Sprintf("datasets/42/frames/%06d.jpg", i)}
				l.Add(keys[i], entry[*string]{&v, t0.Add(time.Hour)})
			}
			if hot > 0 {
				keys = keys[:hot]
			}
			var seq atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := seq.Add(7919) * 104729
				for pb.Next() {
					i++
					if e, ok := l.Get(keys[i%uint64(len(keys))]); !ok || !t0.Before(e.until) {
						b.Fatal("miss")
					}
				}
			})
		})
	}
}

// hot=100 looks up 100 keys only (the bench's thumbnails page), which
// keeps the entries in the CPU caches and leaves the lock as the cost.
func BenchmarkCachedParallel(b *testing.B) {
	for _, hot := range []int{0, 100} {
		b.Run(fmt.Sprintf("hot=%d", hot), func(b *testing.B) {
			benchCached(b, maxShards, hot)
		})
	}
}

func benchCached(b *testing.B, n, hot int) {
	l, keys := fullLoader(b, 100_000, n)
	if hot > 0 {
		keys = keys[:hot]
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(7919) * 104729
		for pb.Next() {
			i++
			if _, _, ok := l.Cached(keys[i%uint64(len(keys))], t0); !ok {
				b.Fatal("miss")
			}
		}
	})
}

// TestHotEntrySurvives: an entry read between every Add survives a flood
// of ten times the bound (CLOCK's second chance), a cold one does not.
func TestHotEntrySurvives(t *testing.T) {
	const size = 4096
	c, _ := NewExpiring[string, int](size)
	until := t0.Add(time.Hour)
	c.Add("hot", 1, until, t0)
	c.Add("cold", 2, until, t0)
	for i := range 10 * size {
		if _, ok := c.Get("hot", t0); !ok {
			t.Fatalf("hot entry evicted after %d adds", i)
		}
		c.Add("k"+strconv.Itoa(i), i, until, t0)
	}
	if _, ok := c.Get("cold", t0); ok {
		t.Errorf("cold entry: got a hit after %d adds, want it evicted", 10*size)
	}
	if n := c.Len(); n != size {
		t.Errorf("got Len %d, want %d", n, size)
	}
}

// TestLoadCtx: the load's context keeps the caller's values, not its
// cancellation, and ends at LoadTimeout whether Done is asked before or
// after the deadline, and when the load returns.
func TestLoadCtx(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	cancel()
	c := &loadCtx{parent: parent, deadline: time.Now().Add(50 * time.Millisecond)}
	if c.Value(key{}) != "v" {
		t.Errorf("value lost")
	}
	if err := c.Err(); err != nil {
		t.Errorf("Err before the deadline: %v (the caller's cancellation must not reach the load)", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the deadline")
	}
	if err := c.Err(); err != context.DeadlineExceeded {
		t.Errorf("Err: %v, want DeadlineExceeded", err)
	}
	// Past the deadline before Done is first asked for.
	c = &loadCtx{parent: context.Background(), deadline: time.Now().Add(-time.Second)}
	if err := c.Err(); err != context.DeadlineExceeded {
		t.Errorf("Err past the deadline: %v", err)
	}
	<-c.Done()
	// Ended by the load returning: a child context sees it.
	c = &loadCtx{parent: context.Background(), deadline: time.Now().Add(time.Hour)}
	child, stop := context.WithCancel(c)
	defer stop()
	c.end(context.Canceled)
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("child not cancelled when the load ended")
	}
}

// TestLoaderMissAllocs pins what a miss costs the Loader: the flight's
// call (its channel is made only when a second caller joins) and the
// node, which is the index's entry too.
func TestLoaderMissAllocs(t *testing.T) {
	l, _ := NewLoader[structKey, *string](100_000)
	src := new(int)
	v := "u"
	load := func(context.Context) (*string, time.Time, error) { return &v, t0.Add(time.Hour), nil }
	keys := make([]structKey, 2000)
	for i := range keys {
		keys[i] = structKey{src, "GET", strconv.Itoa(i)}
	}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		l.Get(context.Background(), keys[i], fixed(t0), load)
		i++
	})
	t.Logf("Loader miss: %.1f allocs", n)
	if n > 2 {
		t.Errorf("Loader miss allocates %.1f times, want at most 2", n)
	}
}

// entry is what the one-lock LRU of BenchmarkCachedParallelOneLock holds.
type entry[V any] struct {
	v     V
	until time.Time
}
