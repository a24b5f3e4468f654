// Package cache holds the edge's time-bound caches: presigned URLs and
// verified tokens. Every value carries the instant until which it may be
// served, so a cached URL is never handed out past its safe lifetime.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

type entry[V any] struct {
	v     V
	until time.Time
}

// Expiring is a bounded LRU whose entries expire at their own time.
type Expiring[K comparable, V any] struct {
	lru *lru.Cache[K, entry[V]]
}

// NewExpiring returns a cache of at most size entries.
func NewExpiring[K comparable, V any](size int) (*Expiring[K, V], error) {
	if size <= 0 {
		return nil, fmt.Errorf("cache: size must be positive, got %d", size)
	}
	l, err := lru.New[K, entry[V]](size)
	if err != nil {
		return nil, err
	}
	return &Expiring[K, V]{lru: l}, nil
}

// Get returns the value for k if it is still servable at now. An expired
// entry is removed.
func (c *Expiring[K, V]) Get(k K, now time.Time) (V, bool) {
	e, ok := c.lru.Get(k)
	if !ok {
		var zero V
		return zero, false
	}
	if !now.Before(e.until) {
		c.lru.Remove(k)
		var zero V
		return zero, false
	}
	return e.v, true
}

// Add stores v until the given instant; a value already past it is not stored.
func (c *Expiring[K, V]) Add(k K, v V, until time.Time, now time.Time) {
	if !now.Before(until) {
		return
	}
	c.lru.Add(k, entry[V]{v: v, until: until})
}

// Len is the number of entries, expired ones included until they are seen.
func (c *Expiring[K, V]) Len() int { return c.lru.Len() }

// Loader is an Expiring cache in front of a slow load (a presign), with
// concurrent misses for one key collapsed into a single load.
//
// Unlike singleflight.DoChan, the first caller runs the load on its own
// goroutine: starting a goroutine per miss cost about as much as the S3
// presign itself. Callers that join a flight wait on it and may leave
// when their context ends; the first caller waits for its load, which
// LoadTimeout bounds.
type Loader[K comparable, V any] struct {
	cache *Expiring[K, V]
	mu    sync.Mutex
	calls map[K]*call[V]
	// LoadTimeout bounds one load. The load runs detached from the caller's
	// context, so that a caller going away does not fail the others
	// waiting on the same flight.
	LoadTimeout time.Duration
}

// call is one load in flight.
type call[V any] struct {
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
	return &Loader[K, V]{cache: c, calls: map[K]*call[V]{}, LoadTimeout: 30 * time.Second}, nil
}

// Get returns the cached value for key, or loads it. hit reports whether the
// value came from the cache without a load. now is the caller's clock.
func (l *Loader[K, V]) Get(ctx context.Context, key K, now func() time.Time, load LoadFunc[V]) (v V, until time.Time, hit bool, err error) {
	if e, ok := l.cache.lru.Get(key); ok && now().Before(e.until) {
		return e.v, e.until, true, nil
	}
	if err := ctx.Err(); err != nil {
		return v, until, false, err
	}
	l.mu.Lock()
	if c, ok := l.calls[key]; ok {
		l.mu.Unlock()
		select {
		case <-c.done:
			return c.e.v, c.e.until, false, c.err
		case <-ctx.Done():
			return v, until, false, ctx.Err()
		}
	}
	// Until the load returns, joiners would see errLoadPanicked.
	c := &call[V]{done: make(chan struct{}), err: errLoadPanicked}
	l.calls[key] = c
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.calls, key)
		l.mu.Unlock()
		close(c.done)
	}()
	// Re-check inside the flight: a flight that finished just before this
	// one started has filled the cache.
	if e, ok := l.cache.lru.Get(key); ok && now().Before(e.until) {
		c.e, c.err = e, nil
		return e.v, e.until, false, nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.LoadTimeout)
	defer cancel()
	c.e.v, c.e.until, c.err = load(lctx)
	if c.err != nil {
		return v, until, false, c.err
	}
	l.cache.Add(key, c.e.v, c.e.until, now())
	return c.e.v, c.e.until, false, nil
}

// Cached returns the value for key if it is cached and servable at now;
// it allocates nothing, so the hit path can try it before building a load.
func (l *Loader[K, V]) Cached(key K, now time.Time) (V, time.Time, bool) {
	if e, ok := l.cache.lru.Get(key); ok && now.Before(e.until) {
		return e.v, e.until, true
	}
	var zero V
	return zero, time.Time{}, false
}

// Len is the number of cached values.
func (l *Loader[K, V]) Len() int { return l.cache.Len() }

// RemoveFunc removes every cached value whose key matches drop (a changed
// or removed source's URLs) and returns how many it removed. It walks
// every key: call it on a change, never on the request path.
func (l *Loader[K, V]) RemoveFunc(drop func(K) bool) int {
	n := 0
	for _, k := range l.cache.lru.Keys() {
		if drop(k) && l.cache.lru.Remove(k) {
			n++
		}
	}
	return n
}
