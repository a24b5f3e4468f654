package browser

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/chromedp/chromedp"
	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/testenv"
)

// chromiumPath is Debian's chromium, installed by scripts/tools.sh.
const chromiumPath = "/usr/bin/chromium"

// Bounds on every wait, generous for a loaded two-core machine.
const (
	startTimeout  = 60 * time.Second // a process to answer
	actionTimeout = 45 * time.Second // one browser step (navigate, evaluate)
	loadTimeout   = 20 * time.Second // one image or video load inside the page
)

// The test image: four 32x32 quadrants of known colors, lossless (PNG), so
// a canvas reads them back exactly.
const imgSize = 64

var quadrants = [4]color.NRGBA{
	{200, 30, 40, 255},   // top left
	{20, 180, 60, 255},   // top right
	{30, 50, 210, 255},   // bottom left
	{250, 250, 240, 255}, // bottom right
}

// probes are the points a test reads, one per quadrant.
var probes = [4][2]int{{16, 16}, {48, 16}, {16, 48}, {48, 48}}

func testPNG() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, imgSize, imgSize))
	for y := range imgSize {
		for x := range imgSize {
			q := 0
			if x >= imgSize/2 {
				q++
			}
			if y >= imgSize/2 {
				q += 2
			}
			img.SetNRGBA(x, y, quadrants[q])
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Bucket CORS configurations, one bucket each. The redirect-mode matrix
// (TestBrowser/redirect_cors) loads the same image through each.
const (
	bucketMedia = "media"     // the main tests' bucket: CORS as the README advises
	bucketAny   = "cors-any"  // AllowedOrigins ["*"]
	bucketApp   = "cors-app"  // AllowedOrigins [the app's origin]
	bucketNull  = "cors-null" // AllowedOrigins ["null"]
	bucketNone  = "cors-none" // no CORS configuration
)

// Object keys.
const (
	keyImage   = "img.png"
	keyImageCC = "img-cc.png" // the same image stored with Cache-Control metadata
	keyClip    = "clip.mp4"
)

// suite is everything the browser tests share: one versitygw behind a
// recording tap, one edge binary, the app's page servers and one Chromium.
type suite struct {
	root      string
	artifacts string

	vgw *testenv.Versity
	tap *tap

	app, evil string // page origins: http://app.localhost:P1 (allowed), http://evil.localhost:P4 (not)
	edgeURL   string // http://edge.localhost:P2
	edge      *edgeProc

	auth    auth.Config
	token   string // valid for an hour, grants every source
	expired string // expired an hour ago

	browser context.Context // the browser's root chromedp context
}

// sources names the edge's sources: one per (mode, test) so the access log
// tells the tests' requests apart, and one per CORS bucket.
func sources() []sourceDef {
	var defs []sourceDef
	for _, m := range modes {
		for _, c := range []string{"canvas", "cookie", "video", "cache", "deny"} {
			defs = append(defs, sourceDef{name: m.prefix + "-" + c, bucket: bucketMedia, mode: m.name})
		}
	}
	for _, b := range []string{bucketAny, bucketApp, bucketNull, bucketNone} {
		defs = append(defs, sourceDef{name: "x-" + strings.TrimPrefix(b, "cors-"), bucket: b, mode: edge.ModeRedirect})
	}
	// Stream mode from a bucket without CORS: the browser never sees it.
	defs = append(defs, sourceDef{name: "xs-none", bucket: bucketNone, mode: edge.ModeStream})
	return defs
}

type sourceDef struct{ name, bucket, mode string }

type modeDef struct{ name, prefix string }

var modes = []modeDef{{edge.ModeRedirect, "r"}, {edge.ModeStream, "s"}}

// mediaCORS is the main bucket's CORS, as the README advises for redirect
// mode: "null" for pages that load from an edge on another origin (the
// browser follows the edge's redirect with Origin: null) and the page's
// own origin for an edge served under it. versitygw (as S3) echoes the
// matching origin with Access-Control-Allow-Credentials: true, which
// crossorigin="anonymous" and "use-credentials" both accept; "*" would
// fail "use-credentials".
func mediaCORS(app string) []types.CORSRule {
	return corsRule("null", app)
}

func corsRule(origins ...string) []types.CORSRule {
	return []types.CORSRule{{
		AllowedOrigins: origins,
		AllowedMethods: []string{"GET", "HEAD"},
		AllowedHeaders: []string{"Range"},
		ExposeHeaders:  []string{"Content-Range", "Content-Length", "Accept-Ranges", "ETag"},
		MaxAgeSeconds:  aws.Int32(3600),
	}}
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{root: testenv.RepoRoot(t)}
	s.artifacts = os.Getenv("ARTIFACTS")
	if s.artifacts == "" {
		s.artifacts = filepath.Join(s.root, "artifacts")
	}
	s.artifacts = filepath.Join(s.artifacts, "e2e-browser")
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is not installed (%v): run `make tools` (Debian package chromium)", err)
	}
	bin := edgeBinary(t)

	// Pages first: the edge's CORS config names their origins.
	appLn, evilLn := listen(t), listen(t)
	s.app = "http://app.localhost:" + port(appLn)
	s.evil = "http://evil.localhost:" + port(evilLn)

	// Storage, behind a tap that records what reaches the bucket.
	s.vgw = testenv.StartVersity(t)
	s.tap = startTap(t, s.vgw.Endpoint)
	img, clip := testPNG(), readClip(t)
	for _, b := range []string{bucketMedia, bucketAny, bucketApp, bucketNull, bucketNone} {
		s.vgw.CreateBucket(t, b)
		s.vgw.Put(t, b, keyImage, img)
	}
	s.vgw.Put(t, bucketMedia, keyClip, clip)
	putWithCacheControl(t, s.vgw, bucketMedia, keyImageCC, img, "private, max-age=3600")
	s.vgw.PutBucketCORS(t, bucketMedia, mediaCORS(s.app))
	s.vgw.PutBucketCORS(t, bucketAny, corsRule("*"))
	s.vgw.PutBucketCORS(t, bucketApp, corsRule(s.app))
	s.vgw.PutBucketCORS(t, bucketNull, corsRule("null"))

	// The edge.
	cfgPath := s.writeConfig(t)
	cfg, err := edge.LoadConfig(cfgPath)
	if err != nil {
		t.Fatalf("the suite's config does not load: %v", err)
	}
	s.auth = cfg.Auth
	var grants []auth.Grant
	for _, d := range sources() {
		grants = append(grants, auth.Grant{Source: d.name})
	}
	if s.token, err = auth.Mint(s.auth, auth.MintOptions{Subject: "annotator-e2e", Grants: grants, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if s.expired, err = auth.Mint(s.auth, auth.MintOptions{Subject: "annotator-e2e", Grants: grants, TTL: time.Hour, Now: time.Now().Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.edge = startEdge(t, bin, cfgPath)
	s.edgeURL = "http://edge.localhost:" + strconv.Itoa(s.edge.port)

	// The app's server serves the test pages on both origins and, on the
	// app's own origin, the edge under /v1/ (the same-origin deployment).
	serve(t, appLn, s.pages(true))
	serve(t, evilLn, s.pages(false))

	s.browser = startBrowser(t)
	return s
}

func (s *suite) writeConfig(t *testing.T) string {
	secret := make([]byte, 32)
	rand.Read(secret)
	var b strings.Builder
	fmt.Fprintf(&b, `listen: "127.0.0.1:0"
log: {level: info, unbuffered: true}
auth:
  issuer: "https://app.e2e.test"
  audience: edge
  keys:
    - {id: k1, alg: HS256, secret: %q}
cors:
  allowed_origins: [%q]
  max_age: 10m
sources:
`, base64.RawURLEncoding.EncodeToString(secret), s.app)
	for _, d := range sources() {
		fmt.Fprintf(&b, `  - name: %s
    provider: s3
    bucket: %s
    region: %s
    endpoint: %q
    addressing: path
    mode: %s
    url_ttl: 1h
    credentials: {type: static, access_key_id: %q, secret_access_key: %q}
`, d.name, d.bucket, s.vgw.Region, s.tap.url, d.mode, s.vgw.AccessKey, s.vgw.SecretKey)
	}
	p := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// putWithCacheControl stores an object with Cache-Control metadata, which
// S3 (and versitygw) return with the object.
func putWithCacheControl(t *testing.T, v *testenv.Versity, bucket, key string, body []byte, cc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := v.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("image/png"), CacheControl: aws.String(cc),
	})
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

func readClip(t *testing.T) []byte {
	b, err := os.ReadFile(clipFile)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) string {
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func serve(t *testing.T, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// --- the edge binary ---------------------------------------------------------

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// edgeBinary builds ./cmd/edge once per test binary into a temporary
// directory that TestMain removes.
func edgeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "edge-e2e-")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go is not on PATH: %w", err)
			return
		}
		cmd := exec.Command(goTool, "build", "-buildvcs=false", "-o", filepath.Join(buildDir, "edge"), "./cmd/edge")
		cmd.Dir = testenv.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/edge: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "edge")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// edgeProc is a running `edge serve`; its stderr (the JSON access log) goes
// to a file the tests read.
type edgeProc struct {
	cmd     *exec.Cmd
	port    int
	logPath string
	done    chan struct{}
}

func startEdge(t *testing.T, bin, cfgPath string) *edgeProc {
	t.Helper()
	var last string
	for attempt := 1; attempt <= 3; attempt++ {
		p := &edgeProc{port: testenv.FreePort(t), logPath: filepath.Join(t.TempDir(), "edge.log"), done: make(chan struct{})}
		f, err := os.Create(p.logPath)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(bin, "serve", "-config", cfgPath, "-listen", "127.0.0.1:"+strconv.Itoa(p.port))
		p.cmd.Stdout, p.cmd.Stderr = f, f
		// Its own process group, killed with the test binary.
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := p.cmd.Start(); err != nil {
			f.Close()
			t.Fatal(err)
		}
		f.Close()
		go func() { p.cmd.Wait(); close(p.done) }()
		err = p.waitReady()
		if err == nil {
			t.Cleanup(p.stop)
			return p
		}
		p.stop()
		out, _ := os.ReadFile(p.logPath)
		last = fmt.Sprintf("attempt %d: %v\n%s", attempt, err, out)
		if !bytes.Contains(out, []byte("address already in use")) {
			break
		}
	}
	t.Fatalf("edge did not start: %s", last)
	return nil
}

// waitReady polls /readyz until it answers 200 while our process is alive.
func (p *edgeProc) waitReady() error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return errors.New("edge exited")
		default:
		}
		resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(p.port) + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				select {
				case <-p.done:
					return errors.New("edge exited (another server on its port?)")
				default:
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("/readyz not 200 within %v", startTimeout)
}

// stop ends the edge by its process id: SIGTERM, then SIGKILL.
func (p *edgeProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	pid := p.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
}

// accessLine is one request line of the edge's JSON log.
type accessLine struct {
	Msg    string `json:"msg"`
	Method string `json:"method"`
	Route  string `json:"route"`
	Status int    `json:"status"`
	Source string `json:"source"`
	Mode   string `json:"mode"`
	Error  string `json:"error"`
	Bytes  int64  `json:"bytes"`
}

// requests returns the access log lines for source so far.
func (p *edgeProc) requests(t *testing.T, source string) []accessLine {
	t.Helper()
	f, err := os.Open(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []accessLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l accessLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "request" {
			continue
		}
		if source == "" || l.Source == source {
			out = append(out, l)
		}
	}
	return out
}

// waitRequests polls the access log until match accepts source's lines,
// for log lines written just after the browser saw the answer.
func (p *edgeProc) waitRequests(t *testing.T, source string, match func([]accessLine) bool) []accessLine {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := p.requests(t, source)
		if match(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func statuses(lines []accessLine) []int {
	var s []int
	for _, l := range lines {
		s = append(s, l.Status)
	}
	return s
}

// --- the bucket tap ------------------------------------------------------------

// tap is a transparent reverse proxy in front of versitygw. The edge signs
// URLs for the tap's address, so browsers (redirect mode) and the edge
// (stream mode) both reach storage through it, and the tests see exactly
// which Origin headers arrive at the bucket and what CORS headers it
// answers. It keeps the Host header, which the signatures cover, and adds
// nothing to the request.
type tap struct {
	url string
	mu  sync.Mutex
	log []tapEntry
}

type tapEntry struct {
	Method, Path, Origin, Range, UserAgent string
	IfNoneMatch, IfModifiedSince           string
	Status                                 int
	AllowOrigin, AllowCredentials          string
	CacheControl                           string // the bucket's answer
}

func (e tapEntry) conditional() bool { return e.IfNoneMatch != "" || e.IfModifiedSince != "" }

func (e tapEntry) fromBrowser() bool { return strings.Contains(e.UserAgent, "Chrome") }

func startTap(t *testing.T, target string) *tap {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
		ModifyResponse: func(resp *http.Response) error {
			r := resp.Request
			tp.mu.Lock()
			tp.log = append(tp.log, tapEntry{
				Method: r.Method, Path: r.URL.Path, Origin: r.Header.Get("Origin"), Range: r.Header.Get("Range"),
				UserAgent: r.Header.Get("User-Agent"), IfNoneMatch: r.Header.Get("If-None-Match"), IfModifiedSince: r.Header.Get("If-Modified-Since"),
				Status: resp.StatusCode, AllowOrigin: resp.Header.Get("Access-Control-Allow-Origin"),
				AllowCredentials: resp.Header.Get("Access-Control-Allow-Credentials"),
				CacheControl:     resp.Header.Get("Cache-Control"),
			})
			tp.mu.Unlock()
			return nil
		},
	}
	ln := listen(t)
	tp.url = "http://127.0.0.1:" + port(ln)
	serve(t, ln, rp)
	return tp
}

// entries returns what reached the bucket for path (/BUCKET/KEY) so far.
func (tp *tap) entries(path string) []tapEntry {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []tapEntry
	for _, e := range tp.log {
		if e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// --- Chromium ------------------------------------------------------------------

// startBrowser starts Debian's chromium headless with a fresh profile; the
// allocator stops the process it started when the test ends.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(800, 600),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
		defer ccancel()
		chromedp.Cancel(cctx)
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout (that
	// would stop the browser), so a watchdog bounds it instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("chromium did not start: %v", err)
		}
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("chromium did not start within %v", startTimeout)
	}
	return ctx
}
