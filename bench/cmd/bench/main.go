// Command bench measures the edge against a floor and against what users
// would run instead, in one run on one machine: it builds the edge, the load
// generator and the floor server, starts versitygw, the edge, a Node
// presigning peer and nginx on loopback, drives each subject with the same
// load generator in alternating rounds, and writes a Markdown report to
// bench/results/.
//
//	go run ./bench/cmd/bench -short   # under two minutes
//	go run ./bench/cmd/bench          # the full run, under ten minutes
//
// Every figure is read as a ratio against another measured in the same round:
// these machines are shared and noisy, absolute numbers are not comparable
// across runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	short      bool
	rounds     int
	warmup     time.Duration
	duration   time.Duration
	conc       int
	streamConc int
	only       string
	outDir     string
	noWrite    bool
	keep       bool
	budget     time.Duration
	edgeBin    string
	versitygw  string
	nginx      string
	node       string
	npm        string
	perf       bool
}

func main() {
	var o options
	flag.BoolVar(&o.short, "short", false, "quick run: 3 rounds of 0.3s warmup + 1.3s measured (under two minutes)")
	flag.IntVar(&o.rounds, "rounds", 0, "rounds of all subjects (default 5, short 3)")
	flag.DurationVar(&o.warmup, "warmup", 0, "unmeasured warmup per measurement (default 1s, short 400ms)")
	flag.DurationVar(&o.duration, "d", 0, "measured time per measurement (default 5s, short 1.5s)")
	flag.IntVar(&o.conc, "c", 32, "connections for redirect subjects")
	flag.IntVar(&o.streamConc, "cs", 8, "connections for stream subjects")
	flag.StringVar(&o.only, "only", "", "comma-separated subject names to run (default all)")
	flag.StringVar(&o.outDir, "out", "bench/results", "directory for the Markdown report")
	flag.BoolVar(&o.noWrite, "n", false, "print the report, do not write it")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs, URL lists)")
	flag.DurationVar(&o.budget, "budget", 0, "hard bound on the whole run (default 15m, short 4m)")
	flag.StringVar(&o.edgeBin, "edge", "", "use this edge binary instead of building ./cmd/edge")
	flag.StringVar(&o.versitygw, "versitygw", "", "versitygw binary (default .tools/bin/versitygw, then PATH)")
	flag.StringVar(&o.nginx, "nginx", "", "nginx binary (default /usr/sbin/nginx, then PATH)")
	flag.StringVar(&o.node, "node", "node", "node binary")
	flag.StringVar(&o.npm, "npm", "npm", "npm binary")
	flag.BoolVar(&o.perf, "perf", false, "after the rounds, run each edge subject once more under perf record and add the hottest symbols to the report")
	flag.Parse()

	def := func(v *time.Duration, full, short time.Duration) {
		if *v == 0 {
			*v = full
			if o.short {
				*v = short
			}
		}
	}
	def(&o.warmup, time.Second, 300*time.Millisecond)
	def(&o.duration, 5*time.Second, 1300*time.Millisecond)
	def(&o.budget, 15*time.Minute, 4*time.Minute)
	if o.rounds == 0 {
		o.rounds = 5
		if o.short {
			o.rounds = 3
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.budget)
	defer cancel()

	b := &bench{opts: o, started: started}
	err := b.run(ctx)
	b.shutdown()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// repoRoot is the module root: the bench is run from anywhere inside it.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the bench inside the edge module")
	}
	return filepath.Dir(mod), nil
}

var started = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %5.1fs: "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
}
