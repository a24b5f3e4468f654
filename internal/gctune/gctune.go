// Package gctune keeps the garbage collector's heap goal from falling
// below a floor. Go's goal is about the live heap times (1 + GOGC/100), at
// least 4 MiB: an edge whose URL cache is still small has a live heap of
// a few MiB and allocates ~2.6 KiB per request inside net/http, so at
// GOGC 100 it collected every ~1,500 requests, each collection costing
// the same fixed work (stop the world twice, scan stacks and globals). A
// higher GOGC for everything would multiply the heap of a full cache
// instead (5x at 400: ~480 MB resident at 100,000 cached URLs). The tuner
// raises GOGC only while the live heap is small, so that after each
// collection the goal is about
//
//	max(live × (1 + percent/100), floor)
//
// (stacks and globals counted as the runtime counts them): the floor
// while the heap is small, Go's own rule once it is large. It is what
// Uber's GOGC tuner does; no kept library offers it alone, and it is a
// few lines on runtime/metrics and runtime.AddCleanup. A memory limit
// (GOMEMLIMIT) still applies over it.
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
//
//	max(live + (live + stacks + globals) × GOGC/100, 4 MiB × GOGC/100)
//
// (runtime/mgcpacer.go: the scanned stacks and globals count as heap
// since Go 1.18, and the 4 MiB minimum scales with GOGC), so GOGC is
// bounded by both terms; scan is live + stacks + globals.
func Percent(live, scan, floor uint64, percent int) int {
	if floor <= live {
		return percent
	}
	p := floor * 100 / minHeap // the scaled minimum reaches the floor
	if scan = max(scan, live); scan > 0 {
		p = min(p, (floor-live)*100/scan) // live + scan × p/100 reaches it
	}
	return max(int(p), percent)
}

// Tuner adjusts GOGC after collections until Stop. It runs from a
// cleanup on a sentinel re-armed each time; a sentinel allocated while a
// cycle is marking survives that cycle, so it runs after every cycle or
// every second one, and GOGC follows a growing live heap one cycle late
// at most (the memory limit is what bounds a sudden growth).
type Tuner struct {
	floor   uint64
	percent int
	mu      sync.Mutex // serialises adjust (cleanups may run concurrently) and Stop
	stopped bool
	last    int
	sample  []metrics.Sample
	adjusts atomic.Int64
}

// Start sets GOGC to percent with a heap goal of at least floor bytes,
// re-tuned after every collection.
func Start(percent int, floor uint64) *Tuner {
	t := &Tuner{floor: floor, percent: percent, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"},
	}}
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
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// adjust sets GOGC for the live heap now; false once stopped.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var v [3]uint64
	for i, s := range t.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	p := Percent(v[0], v[0]+v[1]+v[2], t.floor, t.percent)
	if p != t.last {
		debug.SetGCPercent(p)
		t.last = p
	}
	t.adjusts.Add(1)
	return true
}

// Adjustments is how many times the tuner has run.
func (t *Tuner) Adjustments() int64 { return t.adjusts.Load() }

// Stop ends the tuning and sets GOGC back to percent.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.percent)
	t.last = t.percent
}
