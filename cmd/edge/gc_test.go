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
	p0, l0 := gcState()
	t.Cleanup(func() { debug.SetGCPercent(p0); debug.SetMemoryLimit(l0) })
	cases := []struct {
		name        string
		gogc        string // the GOGC the process started with
		gomemlimit  string
		provider    memlimit.Provider
		wantPercent int
		wantLimit   int64
		wantLogged  string
	}{
		{"defaults in a 1 GiB container", "", "", memlimit.Limit(1 << 30), defaultGCPercent, 966367641, "400 (default)"},
		{"GOGC kept", "150", "", memlimit.Limit(1 << 30), 150, 966367641, "150 (GOGC)"},
		{"no container limit", "", "", func() (uint64, error) { return 0, memlimit.ErrNoLimit }, defaultGCPercent, math.MaxInt64, "400 (default)"},
		{"GOMEMLIMIT kept", "", "512MiB", memlimit.Limit(1 << 30), defaultGCPercent, 512 << 20, "400 (default)"},
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
			percent, limit := gcState()
			if percent != tc.wantPercent || limit != tc.wantLimit {
				t.Errorf("GOGC %d, limit %d; want %d, %d", percent, limit, tc.wantPercent, tc.wantLimit)
			}
			entries := logs.FilterMessage("garbage collector").All()
			if len(entries) != 1 || entries[0].ContextMap()["gogc"] != tc.wantLogged {
				t.Errorf("logged %v, want gogc %q", entries, tc.wantLogged)
			}
		})
	}
}
