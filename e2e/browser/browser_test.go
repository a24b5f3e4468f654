package browser

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/edgeproxy/edge/internal/edge"
)

// imageResult is what window.pixels and the img.html page report.
type imageResult struct {
	Loaded    bool       `json:"loaded"`
	State     string     `json:"state"` // img.html: "loaded" or "error"
	Error     string     `json:"error"` // "error" (onerror) or "timeout"
	MS        float64    `json:"ms"`
	Width     int        `json:"width"`
	Height    int        `json:"height"`
	Pixels    [][4]uint8 `json:"pixels"`
	ReadError string     `json:"readError"` // getImageData threw (a tainted canvas)
}

type videoResult struct {
	OK          bool     `json:"ok"`
	Error       string   `json:"error"`
	Pixel       [4]uint8 `json:"pixel"`
	Steps       []string `json:"steps"`
	CurrentTime float64  `json:"currentTime"`
	Duration    float64  `json:"duration"`
}

// TestBrowser runs every browser case against one environment: versitygw
// behind a recording tap, the edge binary on http://edge.localhost:P2, the
// app's pages on http://app.localhost:P1 (allowed by the edge's CORS) and
// http://evil.localhost:P4 (not), and one headless Chromium. Each case
// gets a fresh browser context (its own cache and cookies) and, where it
// counts requests, sources of its own.
func TestBrowser(t *testing.T) {
	start := time.Now()
	s := newSuite(t)
	t.Logf("environment up in %v: app %s, edge %s, bucket tap %s", time.Since(start).Round(time.Millisecond), s.app, s.edgeURL, s.tap.url)
	t.Cleanup(func() {
		if t.Failed() {
			s.saveServerLogs(t)
		}
	})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Run("canvas_token_in_query", func(t *testing.T) { s.testCanvas(t, m) })
			t.Run("canvas_cookie_session", func(t *testing.T) { s.testCookie(t, m) })
			t.Run("video_play_and_seek", func(t *testing.T) { s.testVideo(t, m) })
			t.Run("reload_uses_browser_cache", func(t *testing.T) { s.testReload(t, m) })
			t.Run("refused_without_hanging", func(t *testing.T) { s.testRefused(t, m) })
		})
	}
	t.Run("redirect_cors", s.testRedirectCORS)
	t.Logf("suite took %v", time.Since(start).Round(time.Millisecond))
}

func (s *suite) objectURL(base, source, key, token string) string {
	u := base + "/v1/s/" + source + "/" + key
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// wantPixels checks an image read back from a canvas against the test
// image's quadrants, exactly (PNG is lossless, the profile is sRGB).
func wantPixels(t *testing.T, r imageResult) {
	t.Helper()
	if r.ReadError != "" {
		t.Fatalf("getImageData threw %s: the canvas is tainted", r.ReadError)
	}
	if len(r.Pixels) != len(quadrants) {
		t.Fatalf("got %d pixels, want %d", len(r.Pixels), len(quadrants))
	}
	for i, q := range quadrants {
		want := [4]uint8{q.R, q.G, q.B, q.A}
		if r.Pixels[i] != want {
			t.Errorf("pixel at %v: got %v, want %v", probes[i], r.Pixels[i], want)
		}
	}
}

// loadPixels runs window.pixels(src, cors, probes) in the page.
func loadPixels(p *page, src, cors string) imageResult {
	p.t.Helper()
	c := "null"
	if cors != "" {
		c = js(cors)
	}
	return eval[imageResult](p, fmt.Sprintf("pixels(%s, %s, %s)", js(src), c, js(probes)))
}

// 1. A page on another origin draws an image from the edge (token in the
// query, crossorigin="anonymous") on a canvas and reads its pixels.
func (s *suite) testCanvas(t *testing.T, m modeDef) {
	source := m.prefix + "-canvas"
	p := s.open(t, s.app)
	r := loadPixels(p, s.objectURL(s.edgeURL, source, keyImage, s.token), "anonymous")
	if !r.Loaded {
		t.Fatalf("image did not load: %s after %.0f ms", r.Error, r.MS)
	}
	if r.Width != imgSize || r.Height != imgSize {
		t.Errorf("size: got %dx%d, want %dx%d", r.Width, r.Height, imgSize, imgSize)
	}
	wantPixels(t, r)
	want := 200
	if m.name == edge.ModeRedirect {
		want = 302
	}
	if got := statuses(s.edge.requests(t, source)); !slices.Equal(got, []int{want}) {
		t.Errorf("edge answered %v for %s, want [%d]", got, source, want)
	}
}

// 2. The same with the token in the edge_token cookie, set by POST
// /v1/session, and crossorigin="use-credentials": with the edge on its own
// origin (another site than the page: the cookie is a third-party one) and
// under the page's origin.
func (s *suite) testCookie(t *testing.T, m modeDef) {
	for _, pl := range []struct{ name, base string }{
		{"edge_cross_origin", s.edgeURL},
		{"edge_same_origin", s.app},
	} {
		t.Run(pl.name, func(t *testing.T) { s.testCookieAt(t, m, pl.base) })
	}
}

func (s *suite) testCookieAt(t *testing.T, m modeDef, base string) {
	source := m.prefix + "-cookie"
	p := s.open(t, s.app)
	src := s.objectURL(base, source, keyImage, "")
	before := len(s.edge.requests(t, source))

	// Without the cookie the edge refuses: it is the cookie that
	// authenticates below.
	if r := loadPixels(p, src, "use-credentials"); r.Loaded || r.Error != "error" {
		t.Fatalf("before the session: got loaded=%v error=%q, want a failed load", r.Loaded, r.Error)
	}

	res := eval[struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}](p, fmt.Sprintf("session(%s, %s)", js(base), js(s.token)))
	if res.Status != 204 {
		t.Fatalf("POST /v1/session from the page: got status %d (%s), want 204", res.Status, res.Error)
	}
	c := edgeCookie(t, p, base)
	if c == nil {
		t.Fatalf("the browser stored no edge_token cookie for %s (blocked? see network.log)", base)
	}
	if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteNone || c.Path != "/v1/" {
		t.Errorf("cookie: got HttpOnly=%v Secure=%v SameSite=%q Path=%q, want HttpOnly, Secure, SameSite=None, Path=/v1/",
			c.HTTPOnly, c.Secure, c.SameSite, c.Path)
	}
	// Partitioned: kept for the page's top-level site.
	if c.PartitionKey == nil || c.PartitionKey.TopLevelSite != "http://app.localhost" {
		t.Errorf("cookie partition: got %+v, want the page's site http://app.localhost", c.PartitionKey)
	}
	if exp := tokenExpiry(t, s.token); math.Abs(c.Expires-float64(exp.Unix())) > 2 {
		t.Errorf("cookie expires %v, want the token's exp %v", time.Unix(int64(c.Expires), 0).UTC(), exp.UTC())
	}

	r := loadPixels(p, src, "use-credentials")
	if !r.Loaded {
		t.Fatalf("image with the cookie did not load: %s after %.0f ms", r.Error, r.MS)
	}
	wantPixels(t, r)
	ok := 200
	if m.name == edge.ModeRedirect {
		ok = 302
	}
	if got := statuses(s.edge.requests(t, source)[before:]); !slices.Equal(got, []int{401, ok}) {
		t.Errorf("edge answered %v for %s, want [401 %d] (no cookie, then the cookie)", got, source, ok)
	}
}

// edgeCookie returns the edge_token cookie the browser holds for the edge.
func edgeCookie(t *testing.T, p *page, base string) *network.Cookie {
	t.Helper()
	var found *network.Cookie
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/v1/s/"}})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			if c.Name == "edge_token" {
				found = c
			}
		}
		return nil
	}))
	return found
}

// tokenExpiry reads a JWT's exp without verifying it.
func tokenExpiry(t *testing.T, tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.Exp, 0)
}

// 3. A <video> plays and seeks to a late timestamp; the frame shown there
// is the one of that second. In stream mode the edge answers the player's
// Range requests with 206.
func (s *suite) testVideo(t *testing.T, m modeDef) {
	source := m.prefix + "-video"
	p := s.open(t, s.app)
	const seekTo = 3.5
	r := eval[videoResult](p, fmt.Sprintf("video(%s, 'anonymous', %v)", js(s.objectURL(s.edgeURL, source, keyClip, s.token)), seekTo))
	if !r.OK {
		t.Fatalf("video: %s (steps %v, at %.2fs)", r.Error, r.Steps, r.CurrentTime)
	}
	if math.Abs(r.Duration-clipSeconds) > 0.2 {
		t.Errorf("duration: got %.2fs, want %ds", r.Duration, clipSeconds)
	}
	if math.Abs(r.CurrentTime-seekTo) > 0.15 {
		t.Errorf("after seeking: at %.2fs, want %.2fs", r.CurrentTime, seekTo)
	}
	if got, want := nearestColor(r.Pixel), int(math.Floor(seekTo)); got != want {
		t.Errorf("frame at %.2fs has pixel %v, the color of second %d; want second %d %v", r.CurrentTime, r.Pixel, got, want, clipColors[want])
	}
	lines := s.edge.requests(t, source)
	switch m.name {
	case edge.ModeStream:
		lines = s.edge.waitRequests(t, source, func(l []accessLine) bool { return slices.Contains(statuses(l), 206) })
		for _, l := range lines {
			if l.Status != 206 {
				t.Errorf("edge answered the player %d, want 206 to every (Range) request; all: %v", l.Status, statuses(lines))
				break
			}
		}
		if len(lines) == 0 {
			t.Errorf("the edge logged no request for %s", source)
		}
	case edge.ModeRedirect:
		if len(lines) == 0 || slices.ContainsFunc(lines, func(l accessLine) bool { return l.Status != 302 }) {
			t.Errorf("edge answered %v, want only 302s", statuses(lines))
		}
		var ranged bool
		for _, e := range s.tap.entries("/" + bucketMedia + "/" + keyClip) {
			if e.fromBrowser() && e.Status == 206 && e.Range != "" {
				ranged = true
			}
		}
		if !ranged {
			t.Errorf("the bucket saw no Range request answered 206 from the browser")
		}
	}
	t.Logf("%s: %v; edge answered %v", m.name, r.Steps, statuses(lines))
}

// nearestColor returns the second of the clip whose color is closest.
func nearestColor(px [4]uint8) int {
	best, bestD := -1, math.MaxFloat64
	for i, c := range clipColors {
		var d float64
		for j := range 3 {
			x := float64(px[j]) - float64(c[j])
			d += x * x
		}
		if d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// 4. Reloading the page reads the images from the browser's cache. In
// redirect mode the cached 302 is still fresh (its URL is deterministic,
// its Cache-Control max-age within the URL's life), so the edge sees no
// request at all; the object behind it is either fresh too (stored with
// Cache-Control: no request) or revalidated with the bucket (304, no
// bytes). In stream mode the edge's answer is private and carries the
// validators, so the browser either reuses it or revalidates through the
// edge, which passes the conditional to storage: a 304, never the bytes.
func (s *suite) testReload(t *testing.T, m modeDef) {
	source := m.prefix + "-cache"
	p := s.open(t, s.app)
	keys := []string{keyImage, keyImageCC}
	q := url.Values{"cors": {"anonymous"}}
	for _, k := range keys {
		q.Add("src", s.objectURL(s.edgeURL, source, k, s.token))
	}
	p.navigate(s.app + "/img.html?" + q.Encode())
	for i, r := range s.imgPageResults(t, p, len(keys)) {
		if r.State != "loaded" {
			t.Fatalf("first load of %s: %s", keys[i], r.State)
		}
		wantPixels(t, r)
	}
	edgeBefore := len(s.edge.requests(t, source))
	tapBefore := map[string]int{}
	for _, k := range keys {
		tapBefore[k] = len(s.tap.entries("/" + bucketMedia + "/" + k))
	}
	netBefore := len(p.netLog())

	p.do(chromedp.Reload())
	for i, r := range s.imgPageResults(t, p, len(keys)) {
		if r.State != "loaded" {
			t.Fatalf("%s after the reload: %s", keys[i], r.State)
		}
		wantPixels(t, r)
	}
	// What reached the bucket since: the browser's requests (redirect
	// mode) or the edge's fetches (stream mode). Each is recorded before
	// its answer goes back, so none is missed here.
	reached := map[string][]tapEntry{}
	for _, k := range keys {
		reached[k] = s.tap.entries("/" + bucketMedia + "/" + k)[tapBefore[k]:]
		for _, e := range reached[k] {
			if !e.conditional() || e.Status != 304 {
				t.Errorf("%s: after the reload the bucket answered %d to a %s request (If-None-Match %q), want nothing or a 304 to a conditional one",
					k, e.Status, map[bool]string{true: "browser", false: "edge"}[e.fromBrowser()], e.IfNoneMatch)
			}
		}
	}
	switch m.name {
	case edge.ModeRedirect:
		// The edge writes its log line before a 302 leaves, so the count
		// is final once the page has its images.
		if got := s.edge.requests(t, source); len(got) != edgeBefore {
			t.Errorf("the reload sent %d request(s) to the edge (%v), want none: the 302s are still fresh",
				len(got)-edgeBefore, statuses(got[edgeBefore:]))
		}
		if n := len(reached[keyImageCC]); n != 0 {
			t.Errorf("%s (stored with Cache-Control: %s): the reload reached the bucket %d time(s), want none",
				keyImageCC, s.tap.entries("/" + bucketMedia + "/" + keyImageCC)[0].CacheControl, n)
		}
	case edge.ModeStream:
		// Every request the edge got went to storage; wait for their log
		// lines, which follow the bytes.
		fetched := len(reached[keyImage]) + len(reached[keyImageCC])
		got := s.edge.waitRequests(t, source, func(l []accessLine) bool { return len(l) >= edgeBefore+fetched })[edgeBefore:]
		for _, l := range got {
			if l.Status != 304 {
				t.Errorf("the reload got %d from the edge (all: %v), want only 304s: the bytes come from the browser's cache", l.Status, statuses(got))
			}
		}
	}
	t.Logf("%s reload, network:\n%s", m.name, strings.Join(p.netLog()[netBefore:], "\n"))
}

// imgPageResults waits for the img.html page's outcome.
func (s *suite) imgPageResults(t *testing.T, p *page, n int) []imageResult {
	t.Helper()
	raw := poll[string](p, "document.body && document.body.dataset.result")
	var r []imageResult
	if err := json.Unmarshal([]byte(raw), &r); err != nil || len(r) != n {
		t.Fatalf("img.html result %q: %v, want %d results", raw, err, n)
	}
	return r
}

func browserEntries(es []tapEntry) []tapEntry {
	var out []tapEntry
	for _, e := range es {
		if e.fromBrowser() {
			out = append(out, e)
		}
	}
	return out
}

// 5. A page on an origin outside the edge's CORS patterns cannot read the
// pixels, even with a valid token; a missing or expired token is a failed
// load (onerror), promptly.
func (s *suite) testRefused(t *testing.T, m modeDef) {
	source := m.prefix + "-deny"
	src := s.objectURL(s.edgeURL, source, keyImage, s.token)

	evil := s.open(t, s.evil)
	if r := loadPixels(evil, src, "anonymous"); r.Loaded || r.Error != "error" {
		t.Errorf("unlisted origin, crossorigin=anonymous: got loaded=%v error=%q, want a failed load (no CORS grant)", r.Loaded, r.Error)
	}
	r := loadPixels(evil, src, "")
	if !r.Loaded {
		t.Errorf("unlisted origin, plain <img>: did not load (%s), want it to load and taint the canvas", r.Error)
	} else if r.ReadError != "SecurityError" {
		t.Errorf("unlisted origin, plain <img>: getImageData gave %v (error %q), want a SecurityError", r.Pixels, r.ReadError)
	}
	ok := 200
	if m.name == edge.ModeRedirect {
		ok = 302
	}
	if got := statuses(s.edge.requests(t, source)); !slices.Equal(got, []int{ok, ok}) {
		t.Errorf("edge answered %v, want [%d %d]: the token is good, the browser withholds the pixels", got, ok, ok)
	}

	app := s.open(t, s.app)
	before := len(s.edge.requests(t, source))
	for _, c := range []struct{ name, token, cors, code string }{
		{"missing token", "", "anonymous", "token_missing"},
		{"expired token", s.expired, "anonymous", "token_expired"},
		{"missing token, plain img", "", "", "token_missing"},
	} {
		r := loadPixels(app, s.objectURL(s.edgeURL, source, keyImage, c.token), c.cors)
		if r.Loaded || r.Error != "error" {
			t.Errorf("%s: got loaded=%v error=%q after %.0f ms, want onerror", c.name, r.Loaded, r.Error, r.MS)
		} else if r.MS > 10000 {
			t.Errorf("%s: onerror after %.0f ms, want it promptly", c.name, r.MS)
		}
	}
	got := s.edge.requests(t, source)[before:]
	var codes []string
	for _, l := range got {
		codes = append(codes, fmt.Sprintf("%d %s", l.Status, l.Error))
	}
	if want := []string{"401 token_missing", "401 token_expired", "401 token_missing"}; !slices.Equal(codes, want) {
		t.Errorf("edge answered %v, want %v", codes, want)
	}
}

// The redirect-mode CORS matrix: where the edge is (another origin than
// the page, or the page's own origin through the /v1/ path prefix), the
// image's crossorigin mode, and the bucket's CORS rule; what Origin the
// bucket sees and whether the page can read the pixels. The token is in
// the query throughout, so only CORS decides.
func (s *suite) testRedirectCORS(t *testing.T) {
	for _, pl := range []struct {
		name, base, origin string
	}{
		// Edge on its own origin: the browser follows the edge's
		// cross-origin redirect with Origin: null (Fetch's tainted origin).
		{"edge_cross_origin", s.edgeURL, "null"},
		// Edge under the app's origin (/v1/ forwarded by the app's server):
		// the redirect leaves the page's own origin, so nothing is tainted
		// and the bucket sees the page's origin.
		{"edge_same_origin", s.app, s.app},
	} {
		cross := pl.base == s.edgeURL
		for _, cors := range []string{"", "anonymous", "use-credentials"} {
			name := cors
			if cors == "" {
				name = "plain_img"
			}
			t.Run(pl.name+"/"+name, func(t *testing.T) {
				p := s.open(t, s.app)
				for _, b := range []struct {
					source, bucket string
					ok             bool // the pixels can be read
				}{
					// "*": fine without credentials; with credentials the
					// browser refuses Access-Control-Allow-Origin: *.
					{"x-any", bucketAny, cors == "anonymous"},
					// The page's origin: only when the bucket sees it.
					{"x-app", bucketApp, cors != "" && !cross},
					// "null": only when the bucket sees null; versitygw
					// echoes it with Allow-Credentials, so both modes.
					{"x-null", bucketNull, cors != "" && cross},
					{"x-none", bucketNone, false},
				} {
					obj := "/" + b.bucket + "/" + keyImage
					before := len(s.tap.entries(obj))
					r := loadPixels(p, s.objectURL(pl.base, b.source, keyImage, s.token), cors)
					seen := browserEntries(s.tap.entries(obj)[before:])
					var origins, answers []string
					for _, e := range seen {
						origins = append(origins, e.Origin)
						answers = append(answers, fmt.Sprintf("%d ACAO=%q ACAC=%q", e.Status, e.AllowOrigin, e.AllowCredentials))
					}
					t.Logf("bucket %-9s Origin %q -> %v: loaded=%v readError=%q", b.bucket, origins, answers, r.Loaded, r.ReadError)
					if len(seen) == 0 {
						t.Errorf("bucket %s: the browser never reached the bucket", b.bucket)
					}
					wantOrigin := pl.origin
					if cors == "" {
						wantOrigin = "" // a no-cors request has no Origin
					}
					for _, o := range origins {
						if o != wantOrigin {
							t.Errorf("bucket %s: Origin %q, want %q", b.bucket, o, wantOrigin)
						}
					}
					switch {
					case cors == "":
						// A plain <img> always loads, and always taints the
						// canvas: the bytes come from another origin.
						if !r.Loaded || r.ReadError != "SecurityError" {
							t.Errorf("bucket %s, plain <img>: loaded=%v readError=%q, want loaded and a SecurityError", b.bucket, r.Loaded, r.ReadError)
						}
					case r.Loaded != b.ok:
						t.Errorf("bucket %s (%s): loaded=%v (error %q), want %v", b.bucket, cors, r.Loaded, r.Error, b.ok)
					case r.Loaded:
						wantPixels(t, r)
					}
				}
				// Stream mode needs no bucket CORS: the browser only
				// talks to the edge, whose own CORS decides.
				r := loadPixels(p, s.objectURL(pl.base, "xs-none", keyImage, s.token), cors)
				switch {
				case !r.Loaded:
					t.Errorf("stream mode from the bucket without CORS: %s", r.Error)
				case cors == "" && cross:
					if r.ReadError != "SecurityError" {
						t.Errorf("stream mode, plain <img> from another origin: readError=%q, want SecurityError", r.ReadError)
					}
				default:
					wantPixels(t, r)
				}
			})
		}
	}
}

// saveServerLogs copies the edge's log and the bucket tap's record next to
// the pages' artifacts.
func (s *suite) saveServerLogs(t *testing.T) {
	dir := filepath.Join(s.artifacts, regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	if b, err := os.ReadFile(s.edge.logPath); err == nil {
		os.WriteFile(filepath.Join(dir, "edge.log"), b, 0o644)
	}
	s.tap.mu.Lock()
	b, _ := json.MarshalIndent(s.tap.log, "", "  ")
	s.tap.mu.Unlock()
	os.WriteFile(filepath.Join(dir, "bucket-tap.json"), b, 0o644)
	t.Logf("artifacts: edge log and bucket tap record in %s", dir)
}
