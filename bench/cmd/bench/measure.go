package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgeproxy/edge/bench/internal/load"
)

var benchGrants = []grant{{srcRedirect, ""}, {srcStream, ""}}

// subject is one thing measured in every round.
type subject struct {
	name   string
	stream bool
	srv    *proc  // the server whose CPU is charged to the subject
	skip   string // non-empty: not measured, and why
	conc   int
	expect int
	rss    bool // record the edge's peak RSS
	// args returns the load generator's URL arguments for a round.
	args func(ctx context.Context, round int) ([]string, error)
}

// sample is one measurement of one subject.
type sample struct {
	round    int
	res      *load.Result
	cpuUS    float64 // server CPU per request, µs
	storeCPU float64 // versitygw CPU per request, µs (stream subjects)
	rssKB    int64   // edge peak RSS during the run (rss subjects)
	rssStart int64   // edge RSS when the run started
	rssHow   string
}

func (b *bench) edgeURL(source, key, token string) string {
	return edgeURLAt(b.edgeAddr, source, key, token)
}

// edgeURLAt is edgeURL on the edge listening at addr (a variant).
func edgeURLAt(addr, source, key, token string) string {
	u := "http://" + addr + "/v1/s/" + source + "/" + key
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

func (b *bench) peerURL(i int) string {
	return "http://" + b.peerAddr + "/v1/s/" + srcRedirect + "/" + thumbKey(i) + "?token=" + url.QueryEscape(b.hsToken)
}

func (b *bench) writeURLs(name string, urls []string) (string, error) {
	path := filepath.Join(b.tmp, name)
	return path, os.WriteFile(path, []byte(strings.Join(urls, "\n")+"\n"), 0o600)
}

// fixedFile returns args for a URL list written once.
func (b *bench) fixedFile(name string, urls func() ([]string, error)) func(context.Context, int) ([]string, error) {
	var (
		once sync.Once
		path string
		err  error
	)
	return func(context.Context, int) ([]string, error) {
		once.Do(func() {
			var us []string
			if us, err = urls(); err == nil {
				path, err = b.writeURLs(name, us)
			}
		})
		return []string{"-urls", path}, err
	}
}

func (b *bench) subjects() []*subject {
	edgeSkip := b.edgeNote
	if edgeSkip == "" && b.edge == nil {
		edgeSkip = "the edge is not running"
	}
	thumbs := func(base func(i int) string) func() ([]string, error) {
		return func() ([]string, error) {
			us := make([]string, thumbCount)
			for i := range us {
				us[i] = base(i)
			}
			return us, nil
		}
	}
	// Token-cold needs one fresh token per request: sized from the best
	// rate seen so far, bounded so minting stays a second or two.
	coldRate := 8000.0
	var warmTokens []string

	subs := []*subject{
		{name: "floor-302", srv: b.floor, conc: b.opts.conc, expect: 302,
			args: func(context.Context, int) ([]string, error) {
				return []string{"-url", "http://" + b.floorAddr + "/v1/s/bench/thumbs/000.jpg?token=" + url.QueryEscape(b.hsToken)}, nil
			}},
		{name: "edge-redirect-hit", srv: b.edge, skip: edgeSkip, conc: b.opts.conc, expect: 302,
			args: b.fixedFile("hit.txt", thumbs(func(i int) string { return b.edgeURL(srcRedirect, thumbKey(i), b.hsToken) }))},
		// Misses and the full-cache hit run on their own edge (edge-full),
		// so the hit subjects above measure a URL cache that holds only
		// what they ask for (100 keys), as the "cache empty" asks.
		{name: "edge-redirect-miss", srv: b.edgeFull, skip: variantSkip(edgeSkip, b.edgeFull), conc: b.opts.conc, expect: 302,
			args: func(_ context.Context, round int) ([]string, error) {
				// Every request a different key, in every round: every request signs.
				return []string{"-url", edgeURLAt(b.edgeFullAddr, srcRedirect, fmt.Sprintf("miss/r%d-%s.jpg", round, load.SeqMarker), b.hsToken)}, nil
			}},
		// The hit path again once the URL cache is full (max_entries): a
		// live heap of 100,000 URLs for the GC to mark, and every miss
		// evicting. The first round fills the cache first.
		{name: "edge-redirect-hit-full", srv: b.edgeFull, skip: variantSkip(edgeSkip, b.edgeFull), conc: b.opts.conc, expect: 302,
			args: b.fillThen(b.fixedFile("hit-full.txt", thumbs(func(i int) string { return edgeURLAt(b.edgeFullAddr, srcRedirect, thumbKey(i), b.hsToken) })))},
		// The hit path with the audit trail on (a file), and with it plus a
		// per-subject limit set too high to refuse: their cost on a hit.
		{name: "edge-redirect-hit-audit", srv: b.edgeAudit, skip: variantSkip(edgeSkip, b.edgeAudit), conc: b.opts.conc, expect: 302,
			args: b.fixedFile("hit-audit.txt", thumbs(func(i int) string { return edgeURLAt(b.edgeAuditAddr, srcRedirect, thumbKey(i), b.hsToken) }))},
		{name: "edge-redirect-hit-audit-limit", srv: b.edgeAuditLimit, skip: variantSkip(edgeSkip, b.edgeAuditLimit), conc: b.opts.conc, expect: 302,
			args: b.fixedFile("hit-audit-limit.txt", thumbs(func(i int) string { return edgeURLAt(b.edgeAuditLimitAddr, srcRedirect, thumbKey(i), b.hsToken) }))},
		{name: "edge-redirect-token-cold", srv: b.edge, skip: edgeSkip, conc: b.opts.conc, expect: 302,
			args: func(_ context.Context, round int) ([]string, error) {
				n := int(coldRate*(b.opts.warmup+b.opts.duration).Seconds()*1.3) + 1000
				n = min(max(n, 5000), 400000)
				t0 := time.Now()
				toks, err := b.es.mint(n, "cold-r"+strconv.Itoa(round), 3*time.Hour, benchGrants)
				if err != nil {
					return nil, err
				}
				logf("minted %d ES256 tokens in %v", n, time.Since(t0).Round(time.Millisecond))
				us := make([]string, n)
				for i, t := range toks {
					us[i] = b.edgeURL(srcRedirect, thumbKey(i%thumbCount), t)
				}
				path, err := b.writeURLs(fmt.Sprintf("cold-r%d.txt", round), us)
				return []string{"-urls", path, "-once"}, err
			}},
		{name: "edge-redirect-token-warm", srv: b.edge, skip: edgeSkip, conc: b.opts.conc, expect: 302,
			args: b.fixedFile("warm.txt", func() ([]string, error) {
				var err error
				if warmTokens, err = b.es.mint(thumbCount, "warm", 3*time.Hour, benchGrants); err != nil {
					return nil, err
				}
				return thumbs(func(i int) string { return b.edgeURL(srcRedirect, thumbKey(i), warmTokens[i]) })()
			})},
		{name: "peer-app-presign", srv: b.peer, skip: b.peerNote, conc: b.opts.conc, expect: 302,
			args: b.fixedFile("peer.txt", thumbs(b.peerURL))},
	}
	for _, o := range bigObjects {
		o := o
		size := sizeName(o.size)
		presigned := func(endpoint string) func(ctx context.Context, _ int) ([]string, error) {
			var u string
			return func(ctx context.Context, _ int) ([]string, error) {
				if u == "" {
					var err error
					if u, err = b.presign(ctx, endpoint, o.key); err != nil {
						return nil, err
					}
				}
				return []string{"-url", u}, nil
			}
		}
		subs = append(subs,
			&subject{name: "direct-get-" + size, stream: true, srv: b.versity, conc: b.opts.streamConc, expect: 200,
				args: presigned("http://" + b.versityAddr)},
			&subject{name: "edge-stream-" + size, stream: true, srv: b.edge, skip: edgeSkip, conc: b.opts.streamConc, expect: 200, rss: true,
				args: func(context.Context, int) ([]string, error) {
					return []string{"-url", b.edgeURL(srcStream, o.key, b.hsToken)}, nil
				}},
			&subject{name: "peer-nginx-" + size, stream: true, srv: b.nginx, conc: b.opts.streamConc, expect: 200,
				args: presigned("http://" + b.nginxAddr)},
		)
	}
	if b.opts.only != "" {
		keep := map[string]bool{}
		for _, n := range strings.Split(b.opts.only, ",") {
			keep[strings.TrimSpace(n)] = true
		}
		var out []*subject
		for _, s := range subs {
			if keep[s.name] {
				out = append(out, s)
			}
		}
		subs = out
	}
	b.coldRate = &coldRate
	return subs
}

func sizeName(n int) string {
	if n%(1<<20) == 0 {
		return strconv.Itoa(n>>20) + "m"
	}
	return strconv.Itoa(n>>10) + "k"
}

// measure runs every subject once per round, in the same order each round,
// so drift over the run falls on all subjects alike.
func (b *bench) measure(ctx context.Context) error {
	subs := b.subjects()
	b.order = subs
	b.results = map[string][]*sample{}
	for _, s := range subs {
		if s.skip != "" {
			logf("skip %s: %s", s.name, s.skip)
		}
	}
	for round := 1; round <= b.opts.rounds; round++ {
		for _, s := range subs {
			if s.skip != "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("out of time in round %d: %w", round, err)
			}
			sm, err := b.measureOne(ctx, s, round, nil)
			if err != nil {
				b.note("%s, round %d: %v", s.name, round, err)
				continue
			}
			b.results[s.name] = append(b.results[s.name], sm)
			r := sm.res
			logf("round %d %-26s %9.0f req/s %8.1f MB/s  p50 %6.2fms p99 %6.2fms  cpu %6.1fµs/req  bad %d err %d",
				round, s.name, r.RPS, r.MBps, r.P50US/1e3, r.P99US/1e3, sm.cpuUS, r.Bad, r.Errors)
			if s.name == "edge-redirect-token-cold" && r.RPS > *b.coldRate {
				*b.coldRate = r.RPS
			}
			time.Sleep(50 * time.Millisecond) // let the last run's connections close
		}
	}
	if b.opts.perf {
		b.profile(ctx, subs)
	}
	return nil
}

// profile runs each edge subject once more, unmeasured, with perf sampling
// the edge, and keeps the hottest symbols for the report.
func (b *bench) profile(ctx context.Context, subs []*subject) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		b.note("-perf: perf not found (apt-get install linux-perf)")
		return
	}
	b.profiles = map[string]string{}
	for _, s := range subs {
		if s.skip != "" || s.srv != b.edge {
			continue
		}
		data := filepath.Join(b.tmp, "perf-"+s.name+".data")
		secs := (b.opts.warmup + b.opts.duration).Seconds()
		var (
			rec    *exec.Cmd
			recErr bytes.Buffer
		)
		// perf starts once the subject's URLs are ready (token-cold mints
		// its tokens first), just before the load.
		_, mErr := b.measureOne(ctx, s, b.opts.rounds+1, func() error {
			rec = exec.CommandContext(ctx, perf, "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
				"-p", strconv.Itoa(b.edge.pid()), "-o", data, "--", "sleep", strconv.FormatFloat(secs, 'f', 2, 64))
			rec.Stderr = &recErr
			return rec.Start()
		})
		if rec == nil || rec.Process == nil {
			b.note("-perf %s: perf did not start: %v", s.name, mErr)
			continue
		}
		if err := rec.Wait(); err != nil {
			b.note("-perf %s: perf record: %v: %s", s.name, err, firstLine(recErr.String()))
			continue
		}
		if mErr != nil {
			b.note("-perf %s: %v", s.name, mErr)
		}
		// Inclusive ("children") percentages: they name the call that is
		// expensive (a presigner, a JWT parse), not just the leaf it ends in.
		out, err := exec.CommandContext(ctx, perf, "report", "-i", data, "--stdio", "--children",
			"-g", "none", "--sort", "symbol", "--percent-limit", "2").Output()
		if err != nil {
			b.note("-perf %s: perf report: %v", s.name, err)
			continue
		}
		_ = os.WriteFile(strings.TrimSuffix(data, ".data")+".txt", out, 0o644)
		var top []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 || strings.HasPrefix(f[0], "#") {
				continue
			}
			// "12.34%  5.67%  [.]  symbol  -  -": children, self, symbol.
			sym := strings.TrimSpace(strings.TrimRight(strings.Join(f[3:], " "), " -"))
			if middlewareFrame.MatchString(sym) {
				continue // the SDK's middleware chain: dozens of frames, no news
			}
			top = append(top, fmt.Sprintf("%7s %7s  %s %s", f[0], f[1], f[2], sym))
		}
		if len(top) == 0 {
			b.note("-perf %s: no samples above 2%%; the raw report is %s (with -keep)", s.name, strings.TrimSuffix(data, ".data")+".txt")
			continue
		}
		if len(top) > 30 {
			top = top[:30]
		}
		b.profiles[s.name] = "children    self\n" + strings.Join(top, "\n")
		logf("profiled %s", s.name)
	}
}

// middlewareFrame matches the frames of smithy's middleware stack and of
// goroutine entry wrappers, folded out of the profiles.
var middlewareFrame = regexp.MustCompile(`\.Handle(Initialize|Serialize|Build|Finalize|Deserialize|Middleware)$|` +
	`smithy-go/middleware\.|runtime\.goexit|\.gowrap[0-9]+$|singleflight\.\(\*Group\)\.doCall\.func`)

// measureOne measures s once. before, when set, runs after the subject's URLs
// are ready and just before the load starts.
func (b *bench) measureOne(ctx context.Context, s *subject, round int, before func() error) (*sample, error) {
	urlArgs, err := s.args(ctx, round)
	if err != nil {
		return nil, err
	}
	if before != nil {
		if err := before(); err != nil {
			return nil, err
		}
	}
	args := []string{
		"-c", strconv.Itoa(s.conc),
		"-warmup", b.opts.warmup.String(),
		"-d", b.opts.duration.String(),
		"-expect", strconv.Itoa(s.expect),
		"-H", "Origin: " + benchOrigin,
		"-timeout", "20s",
		"-n", "20000000", // a bound besides the duration: no subject here gets near it
	}
	args = append(args, urlArgs...)

	sm := &sample{round: round}
	pid := s.srv.pid()
	var sampler *rssSampler
	if s.rss {
		if err := resetPeakRSS(pid); err == nil {
			sm.rssHow = "VmHWM"
		} else {
			sm.rssHow = "sampled VmRSS"
		}
		sm.rssStart, _ = procStatusKB(pid, "VmRSS")
		sampler = startRSSSampler(pid)
	}
	cpu0, _ := procCPU(pid)
	store0, _ := procCPU(b.versity.pid())

	lctx, cancel := context.WithTimeout(ctx, b.opts.warmup+b.opts.duration+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(lctx, b.bin["load"], args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	cpu1, _ := procCPU(pid)
	store1, _ := procCPU(b.versity.pid())
	if sampler != nil {
		peak := sampler.stop()
		if sm.rssHow == "VmHWM" {
			if hwm, err := procStatusKB(pid, "VmHWM"); err == nil {
				peak = max(peak, hwm)
			}
		}
		sm.rssKB = peak
	}
	if runErr != nil {
		return nil, fmt.Errorf("load: %v: %s", runErr, strings.TrimSpace(stderr.String()))
	}
	var res load.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("load output: %v", err)
	}
	sm.res = &res
	if res.TotalSent > 0 {
		sm.cpuUS = float64(cpu1-cpu0) / float64(res.TotalSent)
		sm.storeCPU = float64(store1-store0) / float64(res.TotalSent)
	}
	if !s.srv.alive() {
		return sm, fmt.Errorf("%s exited during the run: %v", s.srv.name, s.srv.waitErr)
	}
	return sm, nil
}

// rssSampler polls VmRSS, for kernels where the peak cannot be reset.
type rssSampler struct {
	stopc chan struct{}
	done  chan int64
}

func startRSSSampler(pid int) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := procStatusKB(pid, "VmRSS"); err == nil && kb > peak {
				peak = kb
			}
			select {
			case <-s.stopc:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 {
	close(s.stopc)
	return <-s.done
}

// fillThen returns args that first fill the edge's URL cache to
// cache.max_entries with distinct keys (once, unmeasured: the load
// generator bounded by -n), then are next's.
func (b *bench) fillThen(next func(context.Context, int) ([]string, error)) func(context.Context, int) ([]string, error) {
	var (
		once sync.Once
		err  error
	)
	return func(ctx context.Context, round int) ([]string, error) {
		once.Do(func() { err = b.fillCache(ctx) })
		if err != nil {
			return nil, err
		}
		return next(ctx, round)
	}
}

// fillCount is how many distinct keys fill the cache: the URL cache is
// sharded by key hash, each shard holding its share of max_entries, so
// max_entries keys leave the fullest shards evicting and others short;
// half as many again fills every shard.
const fillCount = edgeCacheMax * 3 / 2

// fillCache presigns fillCount distinct keys through edge-full.
func (b *bench) fillCache(ctx context.Context) error {
	t0 := time.Now()
	fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(fctx, b.bin["load"],
		"-c", strconv.Itoa(b.opts.conc), "-d", "80s", "-expect", "302", "-timeout", "20s",
		"-n", strconv.Itoa(fillCount), "-H", "Origin: "+benchOrigin,
		"-url", edgeURLAt(b.edgeFullAddr, srcRedirect, "fill/"+load.SeqMarker+".jpg", b.hsToken))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("filling the URL cache: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res load.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return fmt.Errorf("filling the URL cache: load output: %v", err)
	}
	if res.TotalSent < fillCount || res.Bad > 0 || res.Errors > 0 {
		return fmt.Errorf("filling the URL cache: %d requests sent, %d bad, %d errors; want %d good", res.TotalSent, res.Bad, res.Errors, fillCount)
	}
	logf("filled the URL cache with %d keys in %v", res.TotalSent, time.Since(t0).Round(time.Millisecond))
	return nil
}

// variantSkip is why an edge variant's subject is skipped: the edge's own
// reason, or that the variant did not start.
func variantSkip(edgeSkip string, p *proc) string {
	if edgeSkip != "" {
		return edgeSkip
	}
	if p == nil {
		return "this edge variant did not start (see the notes)"
	}
	return ""
}
