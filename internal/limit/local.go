package limit

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const shardCount = 64

// local keeps one token bucket per subject in memory: a map split into
// shards (each with its own lock, so subjects rarely contend), bounded in
// size. Entries idle long enough for their bucket to be full again are
// evicted first, losing nothing (a new bucket starts full); past the bound
// with none idle, the least recently used goes.
type local struct {
	seed     maphash.Seed
	shards   [shardCount]shard
	perShard int
	rate     rate.Limit // requests; 0: none
	burst    int
	bRate    rate.Limit // bytes; 0: none
	bBurst   int
	idle     time.Duration // after this long unused, an entry is as good as new
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*subject
	_  [64]byte // keep shards' locks off each other's cache lines
}

type subject struct {
	req   *rate.Limiter // nil without a request rate
	bytes *rate.Limiter // nil without a bytes rate
	last  atomic.Int64  // unix nanoseconds of the last use
}

func newLocal(p PerSubject, maxSubjects int) *local {
	l := &local{
		seed:     maphash.MakeSeed(),
		perShard: max(1, maxSubjects/shardCount),
		rate:     rate.Limit(p.Rate),
		burst:    p.Burst,
		bRate:    rate.Limit(p.BytesPerSecond),
		bBurst:   int(p.BytesBurst),
	}
	if p.Rate > 0 {
		l.idle = time.Duration(float64(p.Burst) / p.Rate * float64(time.Second))
	}
	if p.BytesPerSecond > 0 {
		l.idle = max(l.idle, time.Duration(float64(p.BytesBurst)/float64(p.BytesPerSecond)*float64(time.Second)))
	}
	l.idle += time.Second
	for i := range l.shards {
		l.shards[i].m = make(map[string]*subject)
	}
	return l
}

// get returns the subject's entry, creating it (with full buckets) if
// need be. Lookups of known subjects take a read lock and allocate nothing.
func (l *local) get(name string, now time.Time) *subject {
	sh := &l.shards[maphash.String(l.seed, name)&(shardCount-1)]
	ns := now.UnixNano()
	sh.mu.RLock()
	e := sh.m[name]
	sh.mu.RUnlock()
	if e != nil {
		e.last.Store(ns)
		return e
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e = sh.m[name]; e != nil {
		e.last.Store(ns)
		return e
	}
	if len(sh.m) >= l.perShard {
		l.evict(sh, ns)
	}
	e = &subject{}
	if l.rate > 0 {
		e.req = rate.NewLimiter(l.rate, l.burst)
	}
	if l.bRate > 0 {
		e.bytes = rate.NewLimiter(l.bRate, l.bBurst)
	}
	e.last.Store(ns)
	// The name may point into a larger string (the token's claims): keep
	// a copy of its own.
	sh.m[strings.Clone(name)] = e
	return e
}

// evict makes room in a full shard (its lock held).
func (l *local) evict(sh *shard, now int64) {
	idle := int64(l.idle)
	var oldest string
	oldestAt := int64(1<<63 - 1)
	for k, e := range sh.m {
		at := e.last.Load()
		if now-at >= idle {
			delete(sh.m, k)
			continue
		}
		if at < oldestAt {
			oldest, oldestAt = k, at
		}
	}
	if len(sh.m) >= l.perShard {
		delete(sh.m, oldest)
	}
}

// allow takes one request from the subject's bucket, or says how long
// until one is there.
func (l *local) allow(name string, now time.Time) (bool, time.Duration) {
	if l.rate == 0 {
		return true, 0
	}
	lim := l.get(name, now).req
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, max(time.Duration(missing/float64(l.rate)*float64(time.Second)), time.Millisecond)
}

// size is the number of subjects held.
func (l *local) size() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
