package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
)

func TestPercent(t *testing.T) {
	const MiB = 1 << 20
	cases := []struct {
		live, floor uint64
		extra       uint64 // stacks and globals scanned
		percent     int
		want        int
	}{
		{0, 64 * MiB, 0, 100, 1600},                 // before the first collection: the scaled 4 MiB minimum
		{1, 64 * MiB, 0, 100, 1600},                 // a tiny live heap: the same
		{2 * MiB, 64 * MiB, 0, 100, 1600},           // max(2 × 17, 4 × 16) = 64 MiB
		{8 * MiB, 64 * MiB, 0, 100, 700},            // max(8 × 8, 4 × 7) = 64 MiB
		{32 * MiB, 64 * MiB, 0, 100, 100},           // exactly Go's own rule
		{40 * MiB, 64 * MiB, 0, 100, 100},           // Go's rule already reaches past the floor
		{100 * MiB, 64 * MiB, 0, 100, 100},          // large heap: Go's rule
		{100 * MiB, 64 * MiB, 0, 50, 50},            // and the percent asked for
		{64 * MiB, 64 * MiB, 0, 100, 100},           // at the floor
		{63 * MiB, 64 * MiB, 0, 100, 100},           // (64-63)/63 = 1%: the percent wins
		{16 * MiB, 64 * MiB, 0, 200, 300},           // 16 × 4 = 64
		{2 * MiB, 4 * MiB, 0, 100, 100},             // a floor at Go's own minimum
		{2 * MiB, 64 * MiB, 75 * MiB / 2, 100, 156}, // 37.5 MiB of stacks: 2 + 39.5 × 1.56 = 64 MiB, not 16 × 39.5
	}
	for _, c := range cases {
		if got := Percent(c.live, c.live+c.extra, c.floor, c.percent); got != c.want {
			t.Errorf("Percent(%d, +%d, %d, %d) = %d, want %d", c.live, c.extra, c.floor, c.percent, got, c.want)
		}
	}
}

// TestTunerRaisesGoal: with a small live heap, after a collection the
// runtime's heap goal is at least the floor, and the tuner ran once per
// collection; stopped, GOGC is back at the percent asked for.
func TestTunerRaisesGoal(t *testing.T) {
	p0 := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(p0) })
	const floor = 256 << 20
	tu := Start(100, floor)
	before := tu.Adjustments()
	for i := 0; i < 3; i++ {
		runtime.GC()
	}
	// Cleanups run on their own goroutine after the cycle: wait for them.
	for i := 0; i < 1000 && tu.Adjustments() < before+2; i++ {
		runtime.Gosched()
		runtime.GC()
	}
	if got := tu.Adjustments(); got < before+2 {
		t.Fatalf("tuner ran %d times over several collections", got-before)
	}
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	if goal := s[0].Value.Uint64(); goal < floor*9/10 {
		t.Errorf("heap goal %d MiB, want about the floor (%d MiB) or more", goal>>20, floor>>20)
	}
	tu.Stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC %d after Stop, want 100", p)
	}
}

// BenchmarkAdjust is what the tuner costs per collection.
func BenchmarkAdjust(b *testing.B) {
	p0 := debug.SetGCPercent(100)
	defer debug.SetGCPercent(p0)
	tu := &Tuner{floor: 64 << 20, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	b.ReportAllocs()
	for b.Loop() {
		tu.adjust()
	}
}

//go:noinline
func deep(n int, stop <-chan struct{}, wg *sync.WaitGroup) byte {
	var pad [1024]byte
	pad[n%1024] = byte(n)
	if n == 0 {
		wg.Done()
		<-stop
		return pad[0]
	}
	return deep(n-1, stop, wg) + pad[1]
}

// TestTunerCountsStacks (from a review): a small live heap but ~40 MiB of
// goroutine stacks (idle connections); the runtime counts scanned stacks
// into the goal, so a GOGC chosen from the heap alone overshot the floor
// tenfold (644 MiB for 64).
func TestTunerCountsStacks(t *testing.T) {
	p0 := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(p0) })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4000; i++ {
		wg.Add(1)
		go deep(8, stop, &wg) // ~9-10 KiB of live stack each
	}
	wg.Wait()
	defer close(stop)
	const floor = 64 << 20
	tu := Start(100, floor)
	defer tu.Stop()
	before := tu.Adjustments()
	for i := 0; i < 1000 && tu.Adjustments() < before+3; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/scan/stack:bytes"}}
	metrics.Read(s)
	if goal := s[0].Value.Uint64(); goal > floor*3/2 {
		t.Errorf("heap goal %d MiB with a %d MiB floor (stacks %d MiB)", goal>>20, floor>>20, s[1].Value.Uint64()>>20)
	}
}

var held [][]byte

// TestTunerStopWins (from a review): a cleanup whose adjust runs after
// Stop leaves GOGC as Stop set it.
func TestTunerStopWins(t *testing.T) {
	p0 := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(p0); held = nil })
	tu := &Tuner{floor: 64 << 20, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	tu.adjust() // live small: GOGC 1600
	for i := 0; i < 16*16; i++ {
		held = append(held, make([]byte, 64<<10)) // live grows to ~16 MiB
	}
	debug.FreeOSMemory()
	tu.Stop()
	if tu.adjust() {
		t.Error("adjust ran after Stop")
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC %d after Stop, want 100", p)
	}
}
