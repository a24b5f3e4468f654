package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// gcState reads GOGC and the memory limit without changing them.
func gcState() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

func TestTuneGC(t *testing.T) {
	stopGCTuner() // one another test's server started
	p0, l0 := gcState()
	t.Cleanup(func() { debug.SetGCPercent(p0); debug.SetMemoryLimit(l0) })
	cases := []struct {
		name        string
		gogc        string // the GOGC the process started with
		gomemlimit  string
		provider    memlimit.Provider
		wantPercent int // 0: the tuner's (above 100 on a test's small heap)
		wantLimit   int64
		wantLogged  string
	}{
		{"defaults in a 1 GiB container", "", "", memlimit.Limit(1 << 30), 0, 966367641, "100 with a 64 MiB heap floor (default)"},
		{"GOGC kept", "150", "", memlimit.Limit(1 << 30), 150, 966367641, "150 (GOGC)"},
		{"no container limit", "", "", func() (uint64, error) { return 0, memlimit.ErrNoLimit }, 0, math.MaxInt64, "100 with a 64 MiB heap floor (default)"},
		{"GOMEMLIMIT kept", "", "512MiB", memlimit.Limit(1 << 30), 0, 512 << 20, "100 with a 64 MiB heap floor (default)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// As the runtime would have them at start from the environment.
			debug.SetGCPercent(100)
			if tc.gogc == "150" {
				debug.SetGCPercent(150)
			}
			debug.SetMemoryLimit(math.MaxInt64)
			if tc.gomemlimit != "" {
				debug.SetMemoryLimit(512 << 20)
			}
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			t.Setenv("AUTOMEMLIMIT", "") // restored after the test
			os.Unsetenv("AUTOMEMLIMIT")
			core, logs := observer.New(zap.InfoLevel)
			tuneGC(zap.New(core), func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			}, tc.provider)
			t.Cleanup(stopGCTuner)
			percent, limit := gcState()
			if tc.wantPercent == 0 && percent <= 100 || tc.wantPercent != 0 && percent != tc.wantPercent || limit != tc.wantLimit {
				t.Errorf("GOGC %d, limit %d; want %d (0: above 100), %d", percent, limit, tc.wantPercent, tc.wantLimit)
			}
			entries := logs.FilterMessage("garbage collector").All()
			if len(entries) != 1 || entries[0].ContextMap()["gogc"] != tc.wantLogged {
				t.Errorf("logged %v, want gogc %q", entries, tc.wantLogged)
			}
		})
	}
}
