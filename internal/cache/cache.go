// Package cache holds the edge's time-bound caches: presigned URLs and
// verified tokens. Every value carries the instant until which it may be
// served, so a cached URL is never handed out past its safe lifetime.
//
// A read (a hit) takes no lock: the index is a sync.Map, lock-free on
// Load. Writes are sharded: a key's hash picks one of up to maxShards
// shards, each with its own lock, its own share of the bound and its own
// CLOCK eviction (an approximation of LRU), so no lock is process-wide.
// Small caches (fewer than minShardEntries entries per shard) have fewer
// shards, down to one.
package cache

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxShards bounds the shard count: 64 write locks make contention
	// between misses rare on any machine the edge runs on, and per-shard
	// eviction order stays a good approximation of the global one at
	// 100,000 entries.
	maxShards = 64
	// minShardEntries is the smallest share of the bound a shard gets.
	minShardEntries = 1024
)

// node is one cached value. Its key, value and until never change after
// it is published (a new Add makes a new node), so a reader holds no lock;
// ref is the CLOCK bit a hit sets, idx its slot in its shard's ring
// (guarded by the shard's lock).
type node[K comparable, V any] struct {
	key   K
	v     V
	until time.Time
	ref   atomic.Bool
	idx   int
}

type entry[V any] struct {
	v     V
	until time.Time
}

// shard is one write lock, its share of the entries in a CLOCK ring, and
// (in a Loader) its loads in flight, padded to keep neighbouring locks off
// one cache line.
type shard[K comparable, V any] struct {
	mu    sync.Mutex
	ring  []*node[K, V]
	hand  int
	cap   int // this shard's share of the bound
	calls map[K]*call[V]
	_     [128 - 56]byte
}

// Expiring is a bounded cache whose entries expire at their own time. A
// read takes no lock: the index is a sync.Map (a concurrent hash trie,
// lock-free on Load), and a hit only sets its entry's reference bit.
// Writes go to one of up to maxShards shards by key hash, each holding
// its share of the bound and evicting by CLOCK (second chance: an entry
// read since the hand last passed survives it), an approximation of LRU.
type Expiring[K comparable, V any] struct {
	index  sync.Map // K -> *node[K, V]
	seed   maphash.Seed
	mask   uint64
	shards []shard[K, V]
}

// NewExpiring returns a cache of at most size entries.
func NewExpiring[K comparable, V any](size int) (*Expiring[K, V], error) {
	if size <= 0 {
		return nil, fmt.Errorf("cache: size must be positive, got %d", size)
	}
	n := 1
	for n < maxShards && size/(n*2) >= minShardEntries {
		n *= 2
	}
	return newExpiring[K, V](size, n)
}

// newExpiring returns a cache of size entries in n shards, n a power of two.
func newExpiring[K comparable, V any](size, n int) (*Expiring[K, V], error) {
	c := &Expiring[K, V]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard[K, V], n)}
	for i := range c.shards {
		// The shares add up to size exactly.
		share := size / n
		if i < size%n {
			share++
		}
		c.shards[i].cap = share
	}
	return c, nil
}

func (c *Expiring[K, V]) shard(k K) *shard[K, V] {
	if c.mask == 0 {
		return &c.shards[0]
	}
	return &c.shards[maphash.Comparable(c.seed, k)&c.mask]
}

// Get returns the value for k if it is still servable at now. An expired
// entry is removed.
func (c *Expiring[K, V]) Get(k K, now time.Time) (V, bool) {
	e, ok := c.get(k, now, true)
	return e.v, ok
}

// get returns k's entry while servable at now; one that is not is removed
// when remove is set (a Loader leaves it: a clock read later, inside the
// flight, may still find it servable).
func (c *Expiring[K, V]) get(k K, now time.Time, remove bool) (entry[V], bool) {
	x, ok := c.index.Load(k)
	if !ok {
		return entry[V]{}, false
	}
	n := x.(*node[K, V])
	if !now.Before(n.until) {
		if remove {
			c.remove(n)
		}
		return entry[V]{}, false
	}
	if !n.ref.Load() {
		n.ref.Store(true) // written once per pass of the hand, not per hit
	}
	return entry[V]{v: n.v, until: n.until}, true
}

// remove drops n if it is still k's entry.
func (c *Expiring[K, V]) remove(n *node[K, V]) {
	s := c.shard(n.key)
	s.mu.Lock()
	if c.index.CompareAndDelete(n.key, n) {
		s.drop(n.idx)
	}
	s.mu.Unlock()
}

// drop removes the ring's slot i (s.mu held): the last node takes its place.
func (s *shard[K, V]) drop(i int) {
	last := len(s.ring) - 1
	s.ring[i] = s.ring[last]
	s.ring[i].idx = i
	s.ring[last] = nil
	s.ring = s.ring[:last]
	if s.hand >= len(s.ring) {
		s.hand = 0
	}
}

// Add stores v until the given instant; a value already past it is not stored.
func (c *Expiring[K, V]) Add(k K, v V, until time.Time, now time.Time) {
	if !now.Before(until) {
		return
	}
	s := c.shard(k)
	n := &node[K, V]{key: k, v: v, until: until}
	s.mu.Lock()
	if old, loaded := c.index.Swap(k, n); loaded {
		o := old.(*node[K, V])
		n.idx = o.idx
		s.ring[o.idx] = n
		s.mu.Unlock()
		return
	}
	if len(s.ring) >= s.cap {
		// The new node takes the evicted one's slot, behind the hand: it
		// is the last the hand reaches.
		n.idx = c.evict(s, now)
		s.ring[n.idx] = n
		s.mu.Unlock()
		return
	}
	n.idx = len(s.ring)
	s.ring = append(s.ring, n)
	s.mu.Unlock()
}

// evict removes one entry of s (s.mu held) and returns its slot, now
// empty, for the caller to fill: the first expired entry or the first not
// read since the hand last passed, clearing the bits it passes. Two turns
// of the hand always find one.
func (c *Expiring[K, V]) evict(s *shard[K, V], now time.Time) int {
	for {
		i := s.hand
		n := s.ring[i]
		s.hand = (i + 1) % len(s.ring)
		if n.ref.Load() && now.Before(n.until) {
			n.ref.Store(false)
			continue
		}
		c.index.CompareAndDelete(n.key, n)
		return i
	}
}

// Len is the number of entries, expired ones included until they are seen.
func (c *Expiring[K, V]) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.ring)
		s.mu.Unlock()
	}
	return n
}

// Loader is an Expiring cache in front of a slow load (a presign), with
// concurrent misses for one key collapsed into a single load.
//
// Unlike singleflight.DoChan, the first caller runs the load on its own
// goroutine: starting a goroutine per miss cost about as much as the S3
// presign itself. Callers that join a flight wait on it and may leave
// when their context ends; the first caller waits for its load, which
// LoadTimeout bounds. Flights are kept per shard, under the shard's lock.
type Loader[K comparable, V any] struct {
	cache *Expiring[K, V]
	// LoadTimeout bounds one load. The load runs detached from the caller's
	// context, so that a caller going away does not fail the others
	// waiting on the same flight.
	LoadTimeout time.Duration
}

// call is one load in flight.
type call[V any] struct {
	ctx  loadCtx // the load's
	done chan struct{}
	e    entry[V]
	err  error
}

var errLoadPanicked = errors.New("cache: the load panicked")

// LoadFunc produces a value and the instant until which it may be served.
type LoadFunc[V any] func(ctx context.Context) (V, time.Time, error)

// NewLoader returns a Loader holding at most size values.
func NewLoader[K comparable, V any](size int) (*Loader[K, V], error) {
	c, err := NewExpiring[K, V](size)
	if err != nil {
		return nil, err
	}
	for i := range c.shards {
		c.shards[i].calls = map[K]*call[V]{}
	}
	return &Loader[K, V]{cache: c, LoadTimeout: 30 * time.Second}, nil
}

// Get returns the cached value for key, or loads it. hit reports whether the
// value came from the cache without a load. now is the caller's clock.
func (l *Loader[K, V]) Get(ctx context.Context, key K, now func() time.Time, load LoadFunc[V]) (v V, until time.Time, hit bool, err error) {
	if e, ok := l.cache.get(key, now(), false); ok {
		return e.v, e.until, true, nil
	}
	if err := ctx.Err(); err != nil {
		return v, until, false, err
	}
	s := l.cache.shard(key)
	s.mu.Lock()
	if c, ok := s.calls[key]; ok {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.e.v, c.e.until, false, c.err
		case <-ctx.Done():
			return v, until, false, ctx.Err()
		}
	}
	// Until the load returns, joiners would see errLoadPanicked.
	c := &call[V]{done: make(chan struct{}), err: errLoadPanicked}
	s.calls[key] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.calls, key)
		s.mu.Unlock()
		close(c.done)
	}()
	// Re-check inside the flight: a flight that finished just before this
	// one started has filled the cache.
	if e, ok := l.cache.get(key, now(), false); ok {
		c.e, c.err = e, nil
		return e.v, e.until, false, nil
	}
	c.ctx = loadCtx{parent: ctx, deadline: time.Now().Add(l.LoadTimeout)}
	defer c.ctx.end(context.Canceled)
	c.e.v, c.e.until, c.err = load(&c.ctx)
	if c.err != nil {
		return v, until, false, c.err
	}
	l.cache.Add(key, c.e.v, c.e.until, now())
	return c.e.v, c.e.until, false, nil
}

// Cached returns the value for key if it is cached and servable at now;
// it allocates nothing, so the hit path can try it before building a load.
func (l *Loader[K, V]) Cached(key K, now time.Time) (V, time.Time, bool) {
	e, ok := l.cache.get(key, now, false)
	return e.v, e.until, ok
}

// Len is the number of cached values.
func (l *Loader[K, V]) Len() int { return l.cache.Len() }

// RemoveFunc removes every cached value whose key matches drop (a changed
// or removed source's URLs) and returns how many it removed. It walks
// every key: call it on a change, never on the request path.
func (l *Loader[K, V]) RemoveFunc(drop func(K) bool) int { return l.cache.RemoveFunc(drop) }

// RemoveFunc removes every entry whose key matches drop, one shard at a
// time (each under its own lock, so readers never wait), and returns how
// many it removed.
func (c *Expiring[K, V]) RemoveFunc(drop func(K) bool) int {
	removed := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for j := 0; j < len(s.ring); {
			n := s.ring[j]
			if !drop(n.key) {
				j++
				continue
			}
			if c.index.CompareAndDelete(n.key, n) {
				removed++
			}
			s.drop(j) // the last node moved into slot j: look at it next
		}
		s.mu.Unlock()
	}
	return removed
}
