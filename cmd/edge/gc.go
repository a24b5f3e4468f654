package main

import (
	"errors"
	"log/slog"
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"
)

// defaultGCPercent is the edge's GOGC when the environment sets none.
// A redirect allocates ~2.6 KiB in net/http per request against a live
// heap that stays small until the URL cache fills, so at Go's default of
// 100 the collector ran every ~1,500 requests; at 400 the bench's cache
// hit took ~4 µs less CPU per request (of ~55). The memory limit below
// keeps the larger heap inside a container's limit.
const defaultGCPercent = 400

// memLimitRatio is the share of a cgroup's memory limit given to the Go
// runtime as its soft limit (GOMEMLIMIT) when the environment sets none:
// near it the collector runs as often as it must, whatever GOGC says.
const memLimitRatio = 0.9

// tuneGC applies the defaults above where GOGC and GOMEMLIMIT are unset
// (AUTOMEMLIMIT=off leaves the limit alone) and logs what is in force.
// provider gives the container's memory limit (memlimit.FromCgroup).
func tuneGC(log *zap.Logger, getenv func(string) string, provider memlimit.Provider) {
	gogc := getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
		gogc = "400 (default)"
	} else {
		gogc += " (GOGC)"
	}
	fields := []zap.Field{zap.String("gogc", gogc)}
	limit, err := memlimit.Set(
		memlimit.WithRatio(memLimitRatio),
		memlimit.WithProvider(provider),
		memlimit.WithLogger(slog.New(slog.DiscardHandler)),
	)
	switch {
	case err != nil && !errors.Is(err, memlimit.ErrNoLimit):
		fields = append(fields, zap.String("memory_limit_problem", err.Error()))
	case limit > 0 && limit < math.MaxInt64:
		fields = append(fields, zap.Int64("memory_limit_bytes", limit))
	}
	log.Info("garbage collector", fields...)
}
