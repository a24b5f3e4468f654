package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// helpersJS is the app page's test library. Every helper resolves (never
// rejects) with a plain object, and gives up after its own bound, so a
// refused load shows as {ok: false, error: "error"} and a hang as
// {error: "timeout"}.
const helpersJS = `
window.loadTimeout = %d;
// note shows what happened on the page, for a failed test's screenshot.
function note(text) {
  const d = document.createElement('div');
  d.textContent = text.replace(/(token|X-Amz-Signature|X-Amz-Credential)=[^&]*/g, '$1=…');
  document.getElementById('log').appendChild(d);
}
function load(src, cors) {
  return new Promise(resolve => {
    const t0 = performance.now();
    const img = new Image();
    if (cors) img.crossOrigin = cors;
    const timer = setTimeout(() => resolve({ok: false, error: 'timeout', ms: performance.now() - t0}), loadTimeout);
    img.onload = () => { clearTimeout(timer); note('loaded ' + (cors || 'plain') + ' ' + src); resolve({ok: true, img, ms: performance.now() - t0}); };
    img.onerror = () => { clearTimeout(timer); note('ERROR ' + (cors || 'plain') + ' ' + src); resolve({ok: false, error: 'error', ms: performance.now() - t0}); };
    img.width = 32; img.height = 32;
    document.getElementById('images').appendChild(img);
    img.src = src;
  });
}
// readImage draws the image on a canvas and reads the given points.
function readImage(img, points) {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const x = c.getContext('2d');
  x.drawImage(img, 0, 0);
  try {
    return {pixels: points.map(([px, py]) => Array.from(x.getImageData(px, py, 1, 1).data))};
  } catch (e) {
    return {readError: e.name};
  }
}
window.pixels = async (src, cors, points) => {
  const r = await load(src, cors);
  if (!r.ok) return {loaded: false, error: r.error, ms: r.ms};
  return Object.assign({loaded: true, width: r.img.naturalWidth, height: r.img.naturalHeight, ms: r.ms}, readImage(r.img, points));
};
window.session = async (base, token) => {
  try {
    const r = await fetch(base + '/v1/session', {method: 'POST', headers: {Authorization: 'Bearer ' + token}, credentials: 'include'});
    note('session: ' + r.status);
    return {status: r.status};
  } catch (e) {
    note('session: ' + e);
    return {status: 0, error: String(e)};
  }
};
// video plays src muted until it has advanced, then seeks to seekTo and
// reads the center pixel of the frame shown there.
window.video = (src, cors, seekTo) => new Promise(resolve => {
  const v = document.createElement('video');
  const steps = [];
  const done = r => {
    clearTimeout(timer);
    note('video ' + JSON.stringify(r) + ' steps ' + steps.join(', ') + ' ' + src);
    Object.assign(r, {steps, currentTime: v.currentTime, duration: v.duration, readyState: v.readyState});
    v.pause();
    resolve(r);
  };
  const timer = setTimeout(() => done({ok: false, error: 'timeout'}), loadTimeout);
  v.muted = true; v.playsInline = true; v.preload = 'auto';
  if (cors) v.crossOrigin = cors;
  v.onerror = () => done({ok: false, error: 'error ' + (v.error ? v.error.code + ' ' + v.error.message : '')});
  let played = false;
  v.addEventListener('loadeddata', () => {
    steps.push('loadeddata');
    v.play().then(() => steps.push('play'), e => done({ok: false, error: 'play: ' + e}));
  }, {once: true});
  v.addEventListener('timeupdate', () => {
    if (played || v.currentTime < 0.3) return;
    played = true;
    steps.push('played ' + v.currentTime.toFixed(2));
    v.pause();
    v.addEventListener('seeked', () => {
      steps.push('seeked ' + v.currentTime.toFixed(2));
      const c = document.createElement('canvas');
      c.width = v.videoWidth; c.height = v.videoHeight;
      const x = c.getContext('2d');
      x.drawImage(v, 0, 0);
      try {
        done({ok: true, pixel: Array.from(x.getImageData(c.width >> 1, c.height >> 1, 1, 1).data)});
      } catch (e) {
        done({ok: false, error: 'read: ' + e.name});
      }
    }, {once: true});
    v.currentTime = seekTo;
  });
  v.width = 64;
  document.getElementById('images').appendChild(v);
  v.src = src;
});
window.ready = true;
`

// imgPage is a page with images in its markup, for the reload test: it
// writes the outcome of each into the DOM (body[data-result], a JSON array)
// once all have loaded or failed.
var imgPage = template.Must(template.New("img").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>img</title>
<script>
const results = [];
let pending = {{len .Srcs}};
function done(i, state, img) {
  const r = {state};
  if (state === 'loaded') {
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const x = c.getContext('2d');
    x.drawImage(img, 0, 0);
    try { r.pixels = {{.Points}}.map(([px, py]) => Array.from(x.getImageData(px, py, 1, 1).data)); }
    catch (e) { r.readError = e.name; }
  }
  results[i] = r;
  if (--pending === 0) document.body.dataset.result = JSON.stringify(results);
}
</script></head>
<body>{{range $i, $src := .Srcs}}<img crossorigin="{{$.CORS}}" src="{{$src}}" onload="done({{$i}}, 'loaded', this)" onerror="done({{$i}}, 'error', this)">
{{end}}</body></html>
`))

// pages serves the test pages. On the app's origin it also forwards /v1/
// to the edge: the edge served under the app's host through a path prefix,
// as an ingress routing /v1/ to an edge sidecar would.
func (s *suite) pages(app bool) http.Handler {
	mux := http.NewServeMux()
	page := fmt.Sprintf(`<!doctype html><html><head><meta charset="utf-8"><title>app</title></head><body><div id="images"></div><pre id="log"></pre><script>%s</script></body></html>`,
		fmt.Sprintf(helpersJS, loadTimeout.Milliseconds()))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /app.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, page)
	})
	points, _ := json.Marshal(probes)
	mux.HandleFunc("GET /img.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		imgPage.Execute(w, map[string]any{
			"Srcs": r.URL.Query()["src"], "CORS": r.URL.Query().Get("cors"),
			"Points": template.JS(points),
		})
	})
	if app {
		edgeURL, _ := url.Parse("http://127.0.0.1:" + fmt.Sprint(s.edge.port))
		mux.Handle("/v1/", &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(edgeURL)
			r.Out.Host = r.In.Host
		}})
	}
	return mux
}

// page is one browser tab in a fresh browser context (its own cache and
// cookies) showing the app page of an origin. It records the console and
// the network so a failing test can save them.
type page struct {
	t   *testing.T
	ctx context.Context

	mu      sync.Mutex
	console []string
	network []string
}

func (s *suite) open(t *testing.T, origin string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(s.browser, chromedp.WithNewBrowserContext())
	p := &page{t: t, ctx: ctx}
	t.Cleanup(func() {
		if t.Failed() {
			p.saveArtifacts(s.artifacts)
		}
		cancel()
	})
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, log.Enable, cdp.Empty{})
		return err
	}))
	p.navigate(origin + "/app.html")
	poll[bool](p, "window.ready === true")
	return p
}

// do runs actions under actionTimeout.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// navigate loads u and waits for its load event.
func (p *page) navigate(u string) {
	p.t.Helper()
	p.do(chromedp.Navigate(u))
}

// poll evaluates expr until it is truthy, within actionTimeout, and
// returns its value.
func poll[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(actionTimeout)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v", expr, err)
	}
	return v
}

// eval evaluates expr, awaiting a promise, and decodes its value into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// record keeps what a failing test's artifacts show. It runs on the tab's
// reading goroutine, so it only appends.
func (p *page) record(ev any) {
	var line string
	var net bool
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range e.Args {
			if len(a.Value) > 0 {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		line = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			line += " " + e.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		line = fmt.Sprintf("log %s/%s: %s %s", e.Entry.Source, e.Entry.Level, e.Entry.Text, redact(e.Entry.URL))
	case *network.EventRequestWillBeSent:
		net = true
		line = fmt.Sprintf("%s -> %s %s", e.RequestID, e.Request.Method, redact(e.Request.URL))
		if r := e.RedirectResponse; r != nil {
			line = fmt.Sprintf("%s    (redirected by %d, ACAO %q)\n%s", e.RequestID, r.Status, header(r.Headers, "Access-Control-Allow-Origin"), line)
		}
	case *network.EventResponseReceived:
		net = true
		r := e.Response
		line = fmt.Sprintf("%s <- %d %s disk-cache=%v ACAO=%q", e.RequestID, r.Status, redact(r.URL), r.FromDiskCache, header(r.Headers, "Access-Control-Allow-Origin"))
	case *network.EventResponseReceivedExtraInfo:
		net = true
		line = fmt.Sprintf("%s    raw %d Cache-Control=%q", e.RequestID, e.StatusCode, header(e.Headers, "Cache-Control"))
		for _, b := range e.BlockedCookies {
			line += fmt.Sprintf("\n%s    Set-Cookie blocked %v: %s", e.RequestID, b.BlockedReasons, redact(b.CookieLine))
		}
	case *network.EventRequestWillBeSentExtraInfo:
		for _, c := range e.AssociatedCookies {
			if len(c.BlockedReasons) > 0 {
				net = true
				line = fmt.Sprintf("%s    cookie %s not sent: %v", e.RequestID, c.Cookie.Name, c.BlockedReasons)
			}
		}
		if !net {
			return
		}
	case *network.EventRequestServedFromCache:
		net = true
		line = fmt.Sprintf("%s    served from cache", e.RequestID)
	case *network.EventLoadingFailed:
		net = true
		line = fmt.Sprintf("%s !! %s blocked=%s cors=%v", e.RequestID, e.ErrorText, e.BlockedReason, e.CorsErrorStatus)
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if net {
		p.network = append(p.network, line)
	} else {
		p.console = append(p.console, line)
	}
}

func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// Secrets in URLs and cookie lines, raw or percent-encoded once (the
// img.html page's src parameter).
var (
	secretParam   = regexp.MustCompile(`(?i)((?:x-amz-signature|x-amz-credential|token|edge_token)=)[^&;\s"']*`)
	secretEncoded = regexp.MustCompile(`(?i)((?:x-amz-signature|x-amz-credential|token)%3D)[A-Za-z0-9._%-]*?(%26|$|[\s"'&])`)
)

func redact(s string) string {
	s = secretParam.ReplaceAllString(s, "${1}REDACTED")
	return secretEncoded.ReplaceAllString(s, "${1}REDACTED${2}")
}

// netLog returns the network lines recorded so far.
func (p *page) netLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.network...)
}

// saveArtifacts writes a screenshot, the console and the network log of a
// failed test under dir/TEST_NAME/.
func (p *page) saveArtifacts(dir string) {
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(p.t.Name(), "_")
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Logf("artifacts: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
	defer cancel()
	if shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		os.WriteFile(filepath.Join(dir, "screenshot.png"), shot, 0o644)
	} else {
		p.t.Logf("artifacts: screenshot: %v", err)
	}
	p.mu.Lock()
	console, network := strings.Join(p.console, "\n")+"\n", strings.Join(p.network, "\n")+"\n"
	p.mu.Unlock()
	os.WriteFile(filepath.Join(dir, "console.log"), []byte(console), 0o644)
	os.WriteFile(filepath.Join(dir, "network.log"), []byte(network), 0o644)
	p.t.Logf("artifacts: screenshot, console and network log in %s", dir)
}
