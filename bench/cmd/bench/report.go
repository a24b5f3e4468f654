package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// spread is a median with the min and max over rounds.
type spread struct {
	med, min, max float64
	n             int
}

func spreadOf(xs []float64) spread {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return spread{med: math.NaN()}
	}
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return spread{med: m, min: v[0], max: v[len(v)-1], n: len(v)}
}

func (s spread) fmt(format string) string {
	if s.n == 0 {
		return "n/a"
	}
	if s.n == 1 {
		return fmt.Sprintf(format, s.med)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", s.med, s.min, s.max)
}

func (b *bench) metric(name string, f func(*sample) float64) spread {
	var xs []float64
	for _, s := range b.results[name] {
		xs = append(xs, f(s))
	}
	return spreadOf(xs)
}

// ratio is num/den per round (both measured in the same round), then the
// median and range over rounds.
func (b *bench) ratio(num, den string, f func(*sample) float64) spread {
	byRound := map[int]*sample{}
	for _, s := range b.results[den] {
		byRound[s.round] = s
	}
	var xs []float64
	for _, s := range b.results[num] {
		if d, ok := byRound[s.round]; ok && f(d) > 0 {
			xs = append(xs, f(s)/f(d))
		}
	}
	return spreadOf(xs)
}

var (
	rps   = func(s *sample) float64 { return s.res.RPS }
	mbps  = func(s *sample) float64 { return s.res.MBps }
	p99   = func(s *sample) float64 { return s.res.P99US }
	rssKB = func(s *sample) float64 { return float64(s.rssKB) }
	cpuUS = func(s *sample) float64 { return s.cpuUS }
)

type ratioRow struct {
	what, target string
	got          spread
	pass         func(float64) bool // nil: reported, no target
}

func (b *bench) ratios() []ratioRow {
	ge := func(t float64) func(float64) bool { return func(x float64) bool { return x >= t } }
	le := func(t float64) func(float64) bool { return func(x float64) bool { return x <= t } }
	rows := []ratioRow{
		{"edge-redirect-hit / floor-302, req/s", "≥ 0.85", b.ratio("edge-redirect-hit", "floor-302", rps), ge(0.85)},
		{"edge-redirect-hit-audit / edge-redirect-hit, req/s (audit to a file)", "≥ 0.90", b.ratio("edge-redirect-hit-audit", "edge-redirect-hit", rps), ge(0.9)},
		{"edge-redirect-hit-audit-limit / edge-redirect-hit, req/s (audit + a local limit)", "≥ 0.90", b.ratio("edge-redirect-hit-audit-limit", "edge-redirect-hit", rps), ge(0.9)},
		{"edge-redirect-hit / floor-302, p99 latency", "≤ 1.30", b.ratio("edge-redirect-hit", "floor-302", p99), le(1.3)},
		{"edge-redirect-hit-full / floor-302, req/s (URL cache full)", "≥ 0.85", b.ratio("edge-redirect-hit-full", "floor-302", rps), ge(0.85)},
		{"edge-redirect-hit-full / floor-302, p99 latency (URL cache full)", "≤ 1.30", b.ratio("edge-redirect-hit-full", "floor-302", p99), le(1.3)},
		{"edge-redirect-miss / floor-302, req/s", "≥ 0.70", b.ratio("edge-redirect-miss", "floor-302", rps), ge(0.7)},
		{"edge-redirect-hit / floor-302, server CPU per request", "≤ 1.20", b.ratio("edge-redirect-hit", "floor-302", cpuUS), le(1.2)},
		{"edge-redirect-hit-full / floor-302, server CPU per request (URL cache full)", "≤ 1.20", b.ratio("edge-redirect-hit-full", "floor-302", cpuUS), le(1.2)},
		{"edge-redirect-miss / floor-302, server CPU per request", "≤ 1.80", b.ratio("edge-redirect-miss", "floor-302", cpuUS), le(1.8)},
		{"edge-redirect-token-cold / floor-302, req/s", "reported", b.ratio("edge-redirect-token-cold", "floor-302", rps), nil},
		{"edge-redirect-token-warm / edge-redirect-token-cold, req/s", "reported: what the verified-token cache saves", b.ratio("edge-redirect-token-warm", "edge-redirect-token-cold", rps), nil},
		{"edge-redirect-token-warm / edge-redirect-hit, req/s", "≥ 0.90 (the bench's reading of \"the cache removes its cost\")", b.ratio("edge-redirect-token-warm", "edge-redirect-hit", rps), ge(0.9)},
		{"edge-redirect-hit / peer-app-presign, req/s", "≥ 10", b.ratio("edge-redirect-hit", "peer-app-presign", rps), ge(10)},
	}
	for _, o := range bigObjects {
		sz := sizeName(o.size)
		rows = append(rows,
			ratioRow{"edge-stream / peer-nginx, MB/s, " + humanSize(o.size), "≥ 1.00", b.ratio("edge-stream-"+sz, "peer-nginx-"+sz, mbps), ge(1)},
			ratioRow{"edge-stream / peer-nginx, server CPU per MiB, " + humanSize(o.size), "≤ 1.00", b.ratio("edge-stream-"+sz, "peer-nginx-"+sz, cpuUS), le(1)},
			ratioRow{"edge-stream / direct-get, MB/s, " + humanSize(o.size), "≥ 0.65", b.ratio("edge-stream-"+sz, "direct-get-"+sz, mbps), ge(0.65)},
			ratioRow{"peer-nginx / direct-get, MB/s, " + humanSize(o.size), "reported", b.ratio("peer-nginx-"+sz, "direct-get-"+sz, mbps), nil},
		)
	}
	rows = append(rows, ratioRow{"edge peak RSS, 16 MiB / 1 MiB objects", "≤ 1.25: flat across sizes",
		b.ratio("edge-stream-16m", "edge-stream-1m", rssKB), le(1.25)})
	return rows
}

func humanSize(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// loadAvg is the 1-minute load average: how much else ran beside the bench.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown"
}

func (b *bench) cmdOut(name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = b.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func (b *bench) report() error {
	now := time.Now().UTC()
	commit := b.commit
	if commit == "" {
		commit = "nocommit"
	}
	dirty := ""
	if b.dirty {
		dirty = " (with uncommitted changes)"
	}
	mode := "full"
	if b.opts.short {
		mode = "short"
	}
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }

	p("# edge bench: %s, commit %s%s, %s mode\n\n", now.Format("2006-01-02"), commit, dirty, mode)
	p("- machine: %s, %d cores (nproc), %s/%s; shared with other work, so read the ratios, not the absolutes\n",
		cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	p("- date: %s; took %s; load average %s at the start, %s at the end (2 means both cores busy)\n",
		now.Format(time.RFC3339), time.Since(b.started).Round(time.Second), b.loadStart, loadAvg())
	p("- software: %s, %s, nginx %s, versitygw v1.8.0 (posix backend)\n",
		runtime.Version(), "node "+b.cmdOut(b.opts.node, "--version"), b.nginxVer)
	p("- method: %d rounds; each round runs every subject once in the order below (%s warmup, %s measured each), "+
		"so machine drift falls on all subjects alike; figures are medians over rounds with (min–max), ratios are taken "+
		"within each round and then summarised the same way\n",
		b.opts.rounds, b.opts.warmup, b.opts.duration)
	p("- load: bench/cmd/load, keep-alive HTTP/1.1, %d connections for redirect subjects and %d for stream subjects, "+
		"`Origin: %s` on every request, redirects never followed\n", b.opts.conc, b.opts.streamConc, benchOrigin)
	p("- edge config: log level info (access logs on, stderr to /dev/null), cache.max_entries %d, stream.max_concurrent %d, "+
		"one redirect and one stream S3 source on versitygw (path-style); HS256 tokens from `edge token`, ES256 tokens minted by the bench\n",
		edgeCacheMax, edgeMaxConc)
	p("- peer-app-presign: one Node process (bench/peers/node-presign: jsonwebtoken + @aws-sdk/s3-request-presigner, " +
		"the HS256 secret passed as a KeyObject: as a string, jsonwebtoken 9 spends ~0.8 ms per verify); " +
		"peer-nginx: bench/nginx.conf.tmpl (proxy_buffering off, upstream keepalive, worker_processes auto)\n")
	p("- server CPU: user+system time of the subject's server process (and its children) per request sent, " +
		"warmup included; for stream subjects `store CPU` is versitygw's\n")
	if len(b.locLen) > 0 {
		var parts []string
		for _, k := range []string{"floor-302", "edge-redirect-hit", "peer-app-presign"} {
			if n, ok := b.locLen[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %d", k, n))
			}
		}
		p("- Location length in bytes: %s\n", strings.Join(parts, ", "))
	}

	p("\n## Redirect subjects\n\n")
	p("| subject | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/req | non-302 / errors |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range b.order {
		if s.stream {
			continue
		}
		b.row(&w, s, false)
	}
	p("\n## Stream subjects\n\n")
	p("| subject | MB/s | req/s | p50 ms | p99 ms | server CPU µs/req | store CPU µs/req | edge peak RSS MiB, + over its start | non-200 / errors |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range b.order {
		if !s.stream {
			continue
		}
		b.row(&w, s, true)
	}

	p("\n## Ratios against the targets (issues 6 and 14)\n\n")
	p("| ratio | target | reached: median (min–max over rounds) | |\n")
	p("|---|---|---:|---|\n")
	for _, r := range b.ratios() {
		verdict := ""
		switch {
		case r.got.n == 0:
			verdict = "not measured"
		case r.pass == nil:
			verdict = ""
		case r.pass(r.got.med):
			verdict = "**pass**"
		default:
			verdict = "**miss**"
		}
		p("| %s | %s | %s | %s |\n", r.what, r.target, r.got.fmt("%.2f"), verdict)
	}
	if len(b.profiles) > 0 {
		p("\n## Where the edge spends its CPU (perf, cpu-clock, one extra unmeasured run each)\n")
		for _, s := range b.order {
			if prof, ok := b.profiles[s.name]; ok {
				p("\n<details><summary>%s</summary>\n\n```\n%s\n```\n</details>\n", s.name, prof)
			}
		}
	}
	if len(b.notes) > 0 {
		p("\n## Notes\n\n")
		for _, n := range b.notes {
			p("- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
	p("\nMade with `make bench%s` (`go run ./bench/cmd/bench%s`).\n", map[bool]string{true: "-short", false: ""}[b.opts.short],
		map[bool]string{true: " -short", false: ""}[b.opts.short])

	fmt.Print(w.String())
	if b.opts.noWrite {
		return nil
	}
	dir := b.opts.outDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(b.root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := now.Format("2006-01-02") + "-" + commit
	if b.opts.short {
		name += "-short"
	}
	path := filepath.Join(dir, name+".md")
	if err := os.WriteFile(path, []byte(w.String()), 0o644); err != nil {
		return err
	}
	logf("wrote %s", path)
	return nil
}

func (b *bench) row(w *strings.Builder, s *subject, stream bool) {
	samples := b.results[s.name]
	if s.skip != "" || len(samples) == 0 {
		why := s.skip
		if why == "" {
			why = "no successful measurement"
		}
		cols := 7
		if stream {
			cols = 8
		}
		fmt.Fprintf(w, "| %s | skipped: %s |%s\n", s.name, why, strings.Repeat(" |", cols-1))
		return
	}
	ms := func(f func(*sample) float64) func(*sample) float64 {
		return func(x *sample) float64 { return f(x) / 1e3 }
	}
	var bad, errs uint64
	for _, x := range samples {
		bad += x.res.Bad
		errs += x.res.Errors
	}
	get := func(f func(*sample) float64) spread { return b.metric(s.name, f) }
	r := func(x *sample) float64 { return x.res.RPS }
	lat := func(f func(*sample) float64, digits string) string { return get(ms(f)).fmt("%." + digits + "f") }
	cpu := get(func(x *sample) float64 { return x.cpuUS }).fmt("%.0f")
	if !stream {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d / %d |\n", s.name,
			get(r).fmt("%.0f"),
			lat(func(x *sample) float64 { return x.res.P50US }, "2"),
			lat(func(x *sample) float64 { return x.res.P90US }, "2"),
			lat(func(x *sample) float64 { return x.res.P99US }, "2"),
			lat(func(x *sample) float64 { return x.res.MaxUS }, "1"),
			cpu, bad, errs)
		return
	}
	rss := "–"
	if s.rss {
		rss = get(func(x *sample) float64 { return float64(x.rssKB) / 1024 }).fmt("%.0f") +
			", +" + get(func(x *sample) float64 { return float64(x.rssKB-x.rssStart) / 1024 }).fmt("%.1f")
	}
	store := get(func(x *sample) float64 { return x.storeCPU }).fmt("%.0f")
	if s.srv == b.versity {
		store = "(same)"
	}
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %d / %d |\n", s.name,
		get(func(x *sample) float64 { return x.res.MBps }).fmt("%.0f"),
		get(r).fmt("%.0f"),
		lat(func(x *sample) float64 { return x.res.P50US }, "1"),
		lat(func(x *sample) float64 { return x.res.P99US }, "1"),
		cpu, store, rss, bad, errs)
}
