// Package demo is `edge demo`'s composition: the bundled sample images as
// two file sources (one per mode), a fresh random HS256 secret, a ready
// token and the /demo page that loads the images through the edge.
package demo

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/httperr"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/source"
)

//go:embed images
var images embed.FS

// Source names.
const (
	Redirect = "demo"
	Stream   = "demo-stream"
)

// Images are the keys of the bundled sample images.
var Images = []string{"gradient.png", "cats/rings.jpg", "cats/checks (1).png", "solid.png"}

// Config is the embedded default config: validated like a config file.
func Config(listen string) (*edge.Config, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cfg := &edge.Config{
		Listen: listen,
		Auth: auth.Config{
			Issuer:   "edge-demo",
			Audience: "edge",
			Keys:     []auth.KeyConfig{{ID: "demo", Alg: "HS256", Secret: base64.RawURLEncoding.EncodeToString(secret)}},
		},
		CORS: edge.CORSConfig{AllowedOrigins: []string{"http://localhost:*", "http://127.0.0.1:*", "http://*.localhost:*"}},
		Sources: []source.Config{
			{Name: Redirect, Mode: source.ModeRedirect, URLTTL: time.Hour},
			{Name: Stream, Mode: source.ModeStream},
		},
	}
	for i := range cfg.Sources {
		cfg.Sources[i].Provider = signer.ProviderFile
		cfg.Sources[i].Root = "(embedded)"
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// FS is the tree the demo sources serve (edge.Options.FileFS).
func FS() map[string]fs.FS {
	sub, _ := fs.Sub(images, "images")
	return map[string]fs.FS{Redirect: sub, Stream: sub}
}

// Token mints a token that grants both demo sources.
func Token(cfg *edge.Config, ttl time.Duration) (string, error) {
	return auth.Mint(cfg.Auth, auth.MintOptions{
		Subject: "demo-annotator",
		Grants:  []auth.Grant{{Source: Redirect}, {Source: Stream}},
		TTL:     ttl,
	})
}

// Options are the server options of the demo: its file trees and the
// /demo page (and / redirecting to it), answering only the Host names
// LocalHost accepts for listen.
func Options(token string, ttl time.Duration, listen string) edge.Options {
	return edge.Options{
		FileFS: FS(),
		Extra: map[string]http.Handler{
			"/demo": Page(token, ttl, listen),
			"/":     hostOnly(listen, http.RedirectHandler("/demo", http.StatusFound)),
		},
	}
}

var page = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edge demo</title>
<style>
body{font:15px system-ui,sans-serif;margin:2em;color:#222}
figure{display:inline-block;margin:.5em;text-align:center}
img{width:160px;height:120px;object-fit:cover;border:1px solid #ccc;image-rendering:pixelated}
figcaption{font-size:12px;color:#555;max-width:160px;word-break:break-all}
code{background:#f3f3f3;padding:1px 4px}
</style></head><body>
<h1>edge demo</h1>
<p>Every image below is loaded by an <code>&lt;img src&gt;</code> through the edge with the token in the
query string: the edge verifies the token, checks its grants, and either answers <b>302</b> to a
signed, expiring <code>/v1/f/…</code> URL (redirect mode) or sends the bytes itself (stream mode).</p>
{{range .Modes}}<h2>{{.Title}}</h2>
{{range .Images}}<figure><img alt="{{.Key}}" src="{{.URL}}"><figcaption>{{.Key}}</figcaption></figure>
{{end}}{{end}}
<h2>Refused</h2>
<figure><img alt="no token" src="/v1/s/demo/gradient.png"><figcaption>no token: 401</figcaption></figure>
<figure><img alt="traversal" src="/v1/s/demo/%2e%2e/secret"><figcaption>../ in the key: 400</figcaption></figure>
<p>Token used on this page (valid {{.TTL}}):</p><pre style="white-space:pre-wrap;word-break:break-all">{{.Token}}</pre>
</body></html>
`))

// Page serves /demo: the bundled images through the edge in both modes.
// It holds a token, so it answers only a Host that LocalHost accepts for
// listen: after DNS rebinding a foreign page's requests carry its own
// host name, and get 421 misdirected_request.
func Page(token string, ttl time.Duration, listen string) http.Handler {
	type img struct{ Key, URL string }
	type mode struct {
		Title  string
		Images []img
	}
	data := struct {
		Modes []mode
		Token string
		TTL   time.Duration
	}{Token: token, TTL: ttl}
	for _, m := range []struct{ title, source string }{{"Redirect mode (302 to a signed URL)", Redirect}, {"Stream mode (bytes through the edge)", Stream}} {
		md := mode{Title: m.title}
		for _, k := range Images {
			md.Images = append(md.Images, img{Key: k, URL: "/v1/s/" + m.source + "/" + signer.EscapePath(k) + "?token=" + token})
		}
		data.Modes = append(data.Modes, md)
	}
	return hostOnly(listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		page.Execute(w, data)
	}))
}

var errMisdirected = httperr.New(http.StatusMisdirectedRequest, "misdirected_request",
	"the demo answers only loopback host names (localhost, *.localhost, 127.0.0.0/8, [::1]) and its listen address", nil)

// hostOnly answers h only for a Host that LocalHost accepts.
func hostOnly(listen string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !LocalHost(r.Host, listen) {
			httperr.Write(w, r, errMisdirected)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// LocalHost reports whether host (a request's Host, with or without a
// port) names this machine the way a browser on it would: localhost,
// *.localhost, 127.0.0.0/8, [::1], or the host of the listen address.
func LocalHost(host, listen string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	if name == "" {
		return false
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
		return true
	}
	lh, _, err := net.SplitHostPort(listen)
	if err != nil {
		lh = listen
	}
	lh = strings.ToLower(strings.Trim(lh, "[]"))
	if lh == "" || lh == "0.0.0.0" || lh == "::" {
		return false // a wildcard listen names no host
	}
	return name == lh
}
