// Package cache holds the edge's time-bound caches: presigned URLs and
// verified tokens. Every value carries the instant until which it may be
// served, so a cached URL is never handed out past its safe lifetime.
//
// A read (a hit) takes no lock. A key's hash picks one of up to maxShards
// shards; each has its own write lock, its own share of the bound, its
// own CLOCK eviction (an approximation of LRU) and its own index: an
// open-addressing hash table (linear probing, at most half full) whose
// slots are atomic pointers to immutable nodes, so a reader probes it
// without a lock while the shard's writer changes it. No lock is
// process-wide.
//
// Each entry is one node (its key, value, expiry and eviction state) in
// one slot of its shard's table and ring: two pointers beside the node,
// instead of the interface box, trie entry and trie nodes of a sync.Map.
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
	// shardBits is log2(maxShards): a hash's low shardBits bits pick its
	// shard, the bits above them its home slot in the shard's table.
	shardBits = 6
	// minShardEntries is the smallest share of the bound a shard gets.
	minShardEntries = 1024
	// minTableSlots is a shard table's first size; it doubles as the
	// shard fills, up to twice the shard's share of the bound.
	minTableSlots = 16
)

// node is one cached value. Its key, value, hash and until never change
// after it is published (a new Add makes a new node), so a reader holds
// no lock; ref is the CLOCK bit a hit sets, idx its slot in its shard's
// ring (guarded by the shard's lock).
type node[K comparable, V any] struct {
	key   K
	v     V
	until time.Time
	hash  uint64
	ref   atomic.Bool
	idx   int32
}

// table is one shard's index: linear probing over a power-of-two number
// of slots, at most half of them used, so every probe sequence ends at an
// empty slot. Slots are written under the shard's lock and read without
// it. A delete shifts the following nodes of its probe run back (no
// tombstones); a reader racing a delete may miss a node that is being
// moved, which only costs that caller a load (the Loader re-checks inside
// its flight), never a wrong or expired value.
type table[K comparable, V any] struct {
	slots []atomic.Pointer[node[K, V]]
	mask  uint64
}

func newTable[K comparable, V any](n int) *table[K, V] {
	return &table[K, V]{slots: make([]atomic.Pointer[node[K, V]], n), mask: uint64(n - 1)}
}

func (t *table[K, V]) home(h uint64) uint64 { return (h >> shardBits) & t.mask }

// find returns k's node, or nil. It takes no lock.
func (t *table[K, V]) find(h uint64, k K) *node[K, V] {
	i := t.home(h)
	for range len(t.slots) {
		n := t.slots[i].Load()
		if n == nil {
			return nil
		}
		if n.hash == h && n.key == k {
			return n
		}
		i = (i + 1) & t.mask
	}
	return nil
}

// put stores n in the slot of the node with its key, or in the first
// empty one of its probe run, and returns the node it replaced (shard
// lock held; the table has room).
func (t *table[K, V]) put(n *node[K, V]) *node[K, V] {
	i := t.home(n.hash)
	for {
		o := t.slots[i].Load()
		if o == nil {
			t.slots[i].Store(n)
			return nil
		}
		if o.hash == n.hash && o.key == n.key {
			t.slots[i].Store(n)
			return o
		}
		i = (i + 1) & t.mask
	}
}

// del removes n if it is in the table (shard lock held) and reports
// whether it was, shifting back the nodes after it that may move
// (backward-shift deletion).
func (t *table[K, V]) del(n *node[K, V]) bool {
	i := t.home(n.hash)
	for {
		o := t.slots[i].Load()
		if o == nil {
			return false
		}
		if o == n {
			break
		}
		i = (i + 1) & t.mask
	}
	for j := (i + 1) & t.mask; ; j = (j + 1) & t.mask {
		m := t.slots[j].Load()
		if m == nil {
			break
		}
		// m may fill the hole at i unless its home lies cyclically in
		// (i, j]: then it would sit before its home.
		if h := t.home(m.hash); (j-h)&t.mask >= (j-i)&t.mask {
			t.slots[i].Store(m) // m is in both slots until j is refilled
			i = j
		}
	}
	t.slots[i].Store(nil)
	return true
}

// shard is one write lock, its index, its share of the entries in a CLOCK
// ring, and (in a Loader) its loads in flight, padded to keep
// neighbouring locks off one cache line.
type shard[K comparable, V any] struct {
	mu    sync.Mutex
	tab   atomic.Pointer[table[K, V]]
	ring  []*node[K, V]
	hand  int
	cap   int                    // this shard's share of the bound
	calls map[uint64]*call[K, V] // by key hash, chained by next
	_     [128 - 64]byte
}

// grow makes room for one more node (s.mu held): the table doubles when
// it would be more than half full.
func (s *shard[K, V]) grow() *table[K, V] {
	t := s.tab.Load()
	if 2*(len(s.ring)+1) <= len(t.slots) {
		return t
	}
	nt := newTable[K, V](2 * len(t.slots))
	for _, n := range s.ring {
		nt.put(n)
	}
	// A reader still on the old table sees it as it was: at worst a miss.
	s.tab.Store(nt)
	return nt
}

// Expiring is a bounded cache whose entries expire at their own time. A
// read takes no lock: it probes its shard's table, and a hit only sets
// its entry's reference bit. Writes go to one of up to maxShards shards
// by key hash, each holding its share of the bound and evicting by CLOCK
// (second chance: an entry read since the hand last passed survives it),
// an approximation of LRU.
type Expiring[K comparable, V any] struct {
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

// newExpiring returns a cache of size entries in n shards, n a power of
// two no greater than maxShards.
func newExpiring[K comparable, V any](size, n int) (*Expiring[K, V], error) {
	if n > maxShards {
		return nil, fmt.Errorf("cache: at most %d shards", maxShards)
	}
	c := &Expiring[K, V]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard[K, V], n)}
	for i := range c.shards {
		// The shares add up to size exactly.
		share := size / n
		if i < size%n {
			share++
		}
		c.shards[i].cap = share
		c.shards[i].tab.Store(newTable[K, V](minTableSlots))
	}
	return c, nil
}

func (c *Expiring[K, V]) hash(k K) uint64 { return maphash.Comparable(c.seed, k) }

func (c *Expiring[K, V]) shard(h uint64) *shard[K, V] { return &c.shards[h&c.mask] }

// Get returns the value for k if it is still servable at now. An expired
// entry is removed.
func (c *Expiring[K, V]) Get(k K, now time.Time) (V, bool) {
	if n := c.get(k, now, true); n != nil {
		return n.v, true
	}
	var zero V
	return zero, false
}

// get returns k's node while servable at now; one that is not is removed
// when remove is set (a Loader leaves it: a clock read later, inside the
// flight, may still find it servable).
func (c *Expiring[K, V]) get(k K, now time.Time, remove bool) *node[K, V] {
	return c.getHashed(c.hash(k), k, now, remove)
}

// getHashed is get for k of hash h.
func (c *Expiring[K, V]) getHashed(h uint64, k K, now time.Time, remove bool) *node[K, V] {
	s := c.shard(h)
	n := s.tab.Load().find(h, k)
	if n == nil {
		return nil
	}
	if !now.Before(n.until) {
		if remove {
			s.mu.Lock()
			if s.tab.Load().del(n) {
				s.drop(int(n.idx))
			}
			s.mu.Unlock()
		}
		return nil
	}
	if !n.ref.Load() {
		n.ref.Store(true) // written once per pass of the hand, not per hit
	}
	return n
}

// drop removes the ring's slot i (s.mu held): the last node takes its place.
func (s *shard[K, V]) drop(i int) {
	last := len(s.ring) - 1
	s.ring[i] = s.ring[last]
	s.ring[i].idx = int32(i)
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
	h := c.hash(k)
	c.add(c.shard(h), &node[K, V]{key: k, v: v, until: until, hash: h}, now)
}

// addUnlessPurged is add unless a RemoveFunc purged c's key while it loaded.
func (c *Expiring[K, V]) addUnlessPurged(s *shard[K, V], n *node[K, V], now time.Time, fl *call[K, V]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fl.purged {
		c.addLocked(s, n, now)
	}
}

// add publishes n in s, replacing its key's node or evicting one when s
// is full.
func (c *Expiring[K, V]) add(s *shard[K, V], n *node[K, V], now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.addLocked(s, n, now)
}

func (c *Expiring[K, V]) addLocked(s *shard[K, V], n *node[K, V], now time.Time) {
	t := s.tab.Load()
	if old := t.find(n.hash, n.key); old != nil {
		n.idx = old.idx
		t.put(n)
		s.ring[old.idx] = n
		return
	}
	if len(s.ring) >= s.cap {
		// The new node takes the evicted one's slot, behind the hand: it
		// is the last the hand reaches.
		i := c.evict(s, t, now)
		n.idx = int32(i)
		s.ring[i] = n
		t.put(n)
		return
	}
	t = s.grow()
	n.idx = int32(len(s.ring))
	s.ring = append(s.ring, n)
	t.put(n)
}

// evict removes one entry of s (s.mu held) and returns its ring slot, now
// to be filled by the caller: the first expired entry or the first not
// read since the hand last passed, clearing the bits it passes. Two turns
// of the hand always find one.
func (c *Expiring[K, V]) evict(s *shard[K, V], t *table[K, V], now time.Time) int {
	for {
		i := s.hand
		n := s.ring[i]
		s.hand = (i + 1) % len(s.ring)
		if n.ref.Load() && now.Before(n.until) {
			n.ref.Store(false)
			continue
		}
		t.del(n)
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

// RemoveFunc removes every entry whose key matches drop, one shard at a
// time (each under its own lock, so readers never wait), and returns how
// many it removed.
func (c *Expiring[K, V]) RemoveFunc(drop func(K) bool) int {
	removed := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		t := s.tab.Load()
		for j := 0; j < len(s.ring); {
			n := s.ring[j]
			if !drop(n.key) {
				j++
				continue
			}
			if t.del(n) {
				removed++
			}
			s.drop(j) // the last node moved into slot j: look at it next
		}
		for _, c := range s.calls {
			for ; c != nil; c = c.next {
				if drop(c.key) {
					c.purged = true
				}
			}
		}
		s.mu.Unlock()
	}
	return removed
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
	// LoadTimeout bounds one load: its context's deadline. The load runs
	// detached from the caller's context, so that a caller going away
	// does not fail the others waiting on the same flight.
	LoadTimeout time.Duration
}

// call is one load in flight. done is made when a second caller joins
// (under the shard's lock), so a load nobody joins costs one allocation.
type call[K comparable, V any] struct {
	ctx  loadCtx // the load's
	key  K
	next *call[K, V] // the shard's next call whose key has the same hash
	done chan struct{}
	n    *node[K, V] // the result, once loaded
	err  error
	// purged is set (s.mu held) by a RemoveFunc matching key while the
	// load runs: its result is handed to its callers but not cached.
	purged bool
}

// flight returns the call in flight for key of hash h (s.mu held), or nil.
func (s *shard[K, V]) flight(h uint64, key K) *call[K, V] {
	for c := s.calls[h]; c != nil; c = c.next {
		if c.key == key {
			return c
		}
	}
	return nil
}

// land removes c, of hash h, from the calls in flight (s.mu held).
func (s *shard[K, V]) land(h uint64, c *call[K, V]) {
	p := s.calls[h]
	if p == c {
		if c.next == nil {
			delete(s.calls, h)
		} else {
			s.calls[h] = c.next
		}
		return
	}
	for ; p != nil; p = p.next {
		if p.next == c {
			p.next = c.next
			return
		}
	}
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
		c.shards[i].calls = map[uint64]*call[K, V]{}
	}
	return &Loader[K, V]{cache: c, LoadTimeout: 30 * time.Second}, nil
}

// Get returns the cached value for key, or loads it. hit reports whether the
// value came from the cache without a load. now is the caller's clock.
func (l *Loader[K, V]) Get(ctx context.Context, key K, now func() time.Time, load LoadFunc[V]) (v V, until time.Time, hit bool, err error) {
	p, until, hit, err := l.GetRef(ctx, key, now, load)
	if err != nil {
		return v, until, false, err
	}
	return *p, until, hit, nil
}

// GetRef is Get answering with a pointer to the value the cache holds,
// which never changes: a value type with an array in it (an HTTP header
// value) can be sliced without a copy. The caller must not modify *v.
func (l *Loader[K, V]) GetRef(ctx context.Context, key K, now func() time.Time, load LoadFunc[V]) (v *V, until time.Time, hit bool, err error) {
	h := l.cache.hash(key)
	if n := l.cache.getHashed(h, key, now(), false); n != nil {
		return &n.v, n.until, true, nil
	}
	return l.load(ctx, h, key, now, load)
}

// LoadRef is GetRef for a caller that has just found key missing
// (CachedRef): it goes straight to the flight, which looks in the cache
// once more before it loads. hit is always false.
func (l *Loader[K, V]) LoadRef(ctx context.Context, key K, now func() time.Time, load LoadFunc[V]) (v *V, until time.Time, hit bool, err error) {
	return l.load(ctx, l.cache.hash(key), key, now, load)
}

// load joins key's flight or starts one; h is key's hash.
func (l *Loader[K, V]) load(ctx context.Context, h uint64, key K, now func() time.Time, load LoadFunc[V]) (v *V, until time.Time, hit bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, until, false, err
	}
	s := l.cache.shard(h)
	s.mu.Lock()
	if c := s.flight(h, key); c != nil {
		if c.done == nil {
			c.done = make(chan struct{})
		}
		done := c.done
		s.mu.Unlock()
		select {
		case <-done:
			if c.err != nil {
				return nil, until, false, c.err
			}
			return &c.n.v, c.n.until, false, nil
		case <-ctx.Done():
			return nil, until, false, ctx.Err()
		}
	}
	// Until the load returns, joiners would see errLoadPanicked.
	c := &call[K, V]{key: key, next: s.calls[h], err: errLoadPanicked}
	s.calls[h] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.land(h, c)
		done := c.done
		s.mu.Unlock()
		if done != nil {
			close(done)
		}
	}()
	// Re-check inside the flight: a flight that finished just before this
	// one started has filled the cache.
	if n := l.cache.getHashed(h, key, now(), false); n != nil {
		c.n, c.err = n, nil
		return &n.v, n.until, false, nil
	}
	c.ctx = loadCtx{parent: ctx, deadline: time.Now().Add(l.LoadTimeout)}
	defer c.ctx.end(context.Canceled)
	n := &node[K, V]{key: key, hash: h}
	n.v, n.until, c.err = load(&c.ctx)
	if c.err != nil {
		return nil, until, false, c.err
	}
	t := now()
	c.n = n
	if t.Before(n.until) {
		l.cache.addUnlessPurged(s, n, t, c)
	}
	return &n.v, n.until, false, nil
}

// Cached returns the value for key if it is cached and servable at now;
// it allocates nothing, so the hit path can try it before building a load.
func (l *Loader[K, V]) Cached(key K, now time.Time) (V, time.Time, bool) {
	if n := l.cache.get(key, now, false); n != nil {
		return n.v, n.until, true
	}
	var zero V
	return zero, time.Time{}, false
}

// CachedRef is Cached answering with a pointer to the value the cache
// holds (see GetRef).
func (l *Loader[K, V]) CachedRef(key K, now time.Time) (*V, time.Time, bool) {
	if n := l.cache.get(key, now, false); n != nil {
		return &n.v, n.until, true
	}
	return nil, time.Time{}, false
}

// Len is the number of cached values.
func (l *Loader[K, V]) Len() int { return l.cache.Len() }

// RemoveFunc removes every cached value whose key matches drop (a changed
// or removed source's URLs) and returns how many it removed. It walks
// every key: call it on a change, never on the request path.
func (l *Loader[K, V]) RemoveFunc(drop func(K) bool) int { return l.cache.RemoveFunc(drop) }
