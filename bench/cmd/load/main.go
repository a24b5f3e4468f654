// Command load is the bench's load generator: keep-alive connections, fixed
// concurrency, a warmup, a fixed duration and an optional bound on the number
// of requests; it prints requests/s, MB/s and latency percentiles as JSON.
//
//	load -c 32 -warmup 1s -d 5s -expect 302 -H 'Origin: https://app.segments.ai' \
//	     -url 'http://127.0.0.1:8080/v1/s/src/miss/{seq}.jpg?token=T'
//	load -c 32 -d 5s -once -urls tokens.txt     # every request a different URL
//
// It never follows redirects.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/edgeproxy/edge/bench/internal/load"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ", ") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	var (
		urls, headers multi
		cfg           load.Config
		urlFile       string
	)
	flag.Var(&urls, "url", "URL to request (repeatable); "+load.SeqMarker+" is replaced by the request number")
	flag.StringVar(&urlFile, "urls", "", "file with one URL per line, requested in rotation")
	flag.BoolVar(&cfg.Once, "once", false, "use each URL at most once; stop when the list is exhausted")
	flag.IntVar(&cfg.Concurrency, "c", 32, "connections, one request in flight on each")
	flag.DurationVar(&cfg.Duration, "d", 5*time.Second, "measured duration")
	flag.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured warmup before the measured duration")
	flag.Int64Var(&cfg.MaxRequests, "n", 0, "at most this many requests, warmup included (0: no bound)")
	flag.Var(&headers, "H", "request header \"Name: value\" (repeatable)")
	flag.IntVar(&cfg.Expect, "expect", 0, "the status that counts as success (0: any below 400)")
	flag.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "bound on one request")
	flag.Parse()

	cfg.URLs = urls
	cfg.Header = headers
	if urlFile != "" {
		fromFile, err := readLines(urlFile)
		if err != nil {
			fail(err)
		}
		cfg.URLs = append(cfg.URLs, fromFile...)
	}
	// The run is bounded by its own durations; this is the backstop.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Warmup+cfg.Duration+cfg.Timeout+10*time.Second)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, err := load.Run(ctx, cfg)
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fail(err)
	}
}

func readLines(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "load:", err)
	os.Exit(1)
}
