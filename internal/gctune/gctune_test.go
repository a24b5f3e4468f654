package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestPercent(t *testing.T) {
	const MiB = 1 << 20
	cases := []struct {
		live, floor uint64
		percent     int
		want        int
	}{
		{0, 64 * MiB, 100, 1600},        // before the first collection: the scaled 4 MiB minimum
		{1, 64 * MiB, 100, 1600},        // a tiny live heap: the same
		{2 * MiB, 64 * MiB, 100, 1600},  // max(2 × 17, 4 × 16) = 64 MiB
		{8 * MiB, 64 * MiB, 100, 700},   // max(8 × 8, 4 × 7) = 64 MiB
		{32 * MiB, 64 * MiB, 100, 100},  // exactly Go's own rule
		{40 * MiB, 64 * MiB, 100, 100},  // Go's rule already reaches past the floor
		{100 * MiB, 64 * MiB, 100, 100}, // large heap: Go's rule
		{100 * MiB, 64 * MiB, 50, 50},   // and the percent asked for
		{64 * MiB, 64 * MiB, 100, 100},  // at the floor
		{63 * MiB, 64 * MiB, 100, 100},  // (64-63)/63 = 1%: the percent wins
		{16 * MiB, 64 * MiB, 200, 300},  // 16 × 4 = 64
		{2 * MiB, 4 * MiB, 100, 100},    // a floor at Go's own minimum
	}
	for _, c := range cases {
		if got := Percent(c.live, c.floor, c.percent); got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.live, c.floor, c.percent, got, c.want)
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
	tu := &Tuner{floor: 64 << 20, percent: 100, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	b.ReportAllocs()
	for b.Loop() {
		tu.adjust()
	}
}
