// Package gctune keeps the garbage collector's heap goal from falling
// below a floor. Go's goal is the live heap times (1 + GOGC/100), at least
// 4 MiB: an edge whose URL cache is still small has a live heap of a few
// MiB and allocates ~2.6 KiB per request inside net/http, so at GOGC 100
// it collected every ~1,500 requests, each collection costing the same
// fixed work (stop the world twice, scan stacks and globals). A higher
// GOGC for everything would multiply the heap of a full cache instead
// (5x at 400: ~480 MB resident at 100,000 cached URLs). The tuner raises
// GOGC only while the live heap is small, so the goal is
//
//	max(live × (1 + percent/100), floor)
//
// after every collection: the floor while the heap is small, Go's own
// rule once it is large. It is what Uber's GOGC tuner does; no kept
// library offers it alone, and it is a few lines on runtime/metrics and
// runtime.AddCleanup. A memory limit (GOMEMLIMIT) still applies over it.
package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// minHeap is the runtime's least heap goal at GOGC 100; it scales with
// GOGC (4 MiB × GOGC/100), so a GOGC raised for a small live heap raises
// it too (runtime/mgcpacer.go, heapMinimum).
const minHeap = 4 << 20

// Percent is the GOGC that makes the next heap goal about
// max(live × (1 + percent/100), floor). The runtime's goal is
// max(live × (1 + GOGC/100), 4 MiB × GOGC/100), so GOGC is bounded by
// both terms: the first for a live heap of more than 4 MiB, the second
// (the scaled minimum) below it and before the first collection.
func Percent(live, floor uint64, percent int) int {
	if floor <= live {
		return percent
	}
	p := floor * 100 / minHeap // the scaled minimum reaches the floor
	if live > 0 {
		p = min(p, (floor-live)*100/live) // live × (1 + p/100) reaches it
	}
	return max(int(p), percent)
}

// Tuner adjusts GOGC after every collection until Stop.
type Tuner struct {
	floor   uint64
	percent int
	stopped atomic.Bool
	mu      sync.Mutex // serialises adjust (cleanups may run concurrently)
	last    int
	sample  []metrics.Sample
	adjusts atomic.Int64
}

// Start sets GOGC to percent with a heap goal of at least floor bytes,
// re-tuned after every collection.
func Start(percent int, floor uint64) *Tuner {
	t := &Tuner{floor: floor, percent: percent, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.adjust()
	t.arm()
	return t
}

// sentinel is an object whose cleanup runs after the collection that
// finds it unreachable: once per cycle. It is larger than the tiny
// allocator's 16 bytes so it is never batched with other objects.
type sentinel struct{ _ [32]byte }

func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *Tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

func (t *Tuner) adjust() {
	t.mu.Lock()
	defer t.mu.Unlock()
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.floor, t.percent)
	if p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
	t.adjusts.Add(1)
}

// Adjustments is how many times the tuner has run (one per collection).
func (t *Tuner) Adjustments() int64 { return t.adjusts.Load() }

// Stop ends the tuning and sets GOGC back to percent.
func (t *Tuner) Stop() {
	if t.stopped.Swap(true) {
		return
	}
	t.mu.Lock()
	debug.SetGCPercent(t.percent)
	t.mu.Unlock()
}
