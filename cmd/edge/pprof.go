//go:build pprof

// Built with -tags pprof (never in a release), the edge serves
// net/http/pprof on $EDGE_PPROF_ADDR (a loopback address) for profiling
// under the bench's load: go build -tags pprof -o /tmp/edge ./cmd/edge.
package main

import (
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
)

func init() {
	addr := os.Getenv("EDGE_PPROF_ADDR")
	if addr == "" {
		return
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "localhost" && !net.ParseIP(host).IsLoopback() {
		os.Stderr.WriteString("EDGE_PPROF_ADDR must be a loopback host:port\n")
		os.Exit(2)
	}
	runtime.SetMutexProfileFraction(5)
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			os.Stderr.WriteString("EDGE_PPROF_ADDR: " + err.Error() + "\n")
		}
	}()
}
