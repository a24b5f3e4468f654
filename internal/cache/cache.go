// Package cache holds the edge's time-bound caches: presigned URLs and
// verified tokens. Every value carries the instant until which it may be
// served, so a cached URL is never handed out past its safe lifetime.
package cache

import (
	"context"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
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
type Loader[V any] struct {
	cache *Expiring[string, V]
	group singleflight.Group
	// LoadTimeout bounds one load. The load runs detached from the caller's
	// context so that the first caller going away does not fail the others
	// waiting on the same flight.
	LoadTimeout time.Duration
}

// LoadFunc produces a value and the instant until which it may be served.
type LoadFunc[V any] func(ctx context.Context) (V, time.Time, error)

// NewLoader returns a Loader holding at most size values.
func NewLoader[V any](size int) (*Loader[V], error) {
	c, err := NewExpiring[string, V](size)
	if err != nil {
		return nil, err
	}
	return &Loader[V]{cache: c, LoadTimeout: 30 * time.Second}, nil
}

// Get returns the cached value for key, or loads it. hit reports whether the
// value came from the cache without a load. now is the caller's clock.
func (l *Loader[V]) Get(ctx context.Context, key string, now func() time.Time, load LoadFunc[V]) (v V, until time.Time, hit bool, err error) {
	if e, ok := l.cache.lru.Get(key); ok && now().Before(e.until) {
		return e.v, e.until, true, nil
	}
	ch := l.group.DoChan(key, func() (any, error) {
		// Re-check inside the flight: a flight that finished just before
		// this one started has filled the cache.
		if e, ok := l.cache.lru.Get(key); ok && now().Before(e.until) {
			return e, nil
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.LoadTimeout)
		defer cancel()
		v, until, err := load(lctx)
		if err != nil {
			return nil, err
		}
		l.cache.Add(key, v, until, now())
		return entry[V]{v: v, until: until}, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return v, until, false, r.Err
		}
		e := r.Val.(entry[V])
		return e.v, e.until, false, nil
	case <-ctx.Done():
		return v, until, false, ctx.Err()
	}
}

// Cached returns the value for key if it is cached and servable at now;
// it allocates nothing, so the hit path can try it before building a load.
func (l *Loader[V]) Cached(key string, now time.Time) (V, time.Time, bool) {
	if e, ok := l.cache.lru.Get(key); ok && now.Before(e.until) {
		return e.v, e.until, true
	}
	var zero V
	return zero, time.Time{}, false
}

// Len is the number of cached values.
func (l *Loader[V]) Len() int { return l.cache.Len() }
