package edge

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
)

//go:embed demo/images
var demoImages embed.FS

// Demo source names.
const (
	DemoRedirect = "demo"
	DemoStream   = "demo-stream"
)

// DemoImages are the keys of the bundled sample images.
var DemoImages = []string{"gradient.png", "cats/rings.jpg", "cats/checks (1).png", "solid.png"}

// DemoConfig is the embedded default: the bundled images as two file
// sources, one per mode, a fresh random HS256 secret, and CORS for local
// pages. It is validated like a config file.
func DemoConfig(listen string) (*Config, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cfg := &Config{
		Listen: listen,
		Auth: auth.Config{
			Issuer:   "edge-demo",
			Audience: "edge",
			Keys:     []auth.KeyConfig{{ID: "demo", Alg: "HS256", Secret: base64.RawURLEncoding.EncodeToString(secret)}},
		},
		CORS: CORSConfig{AllowedOrigins: []string{"http://localhost:*", "http://127.0.0.1:*", "http://*.localhost:*"}},
		Sources: []SourceConfig{
			{Name: DemoRedirect, Mode: ModeRedirect, URLTTL: time.Hour},
			{Name: DemoStream, Mode: ModeStream},
		},
	}
	for i := range cfg.Sources {
		cfg.Sources[i].Provider = "file"
		cfg.Sources[i].Root = "(embedded)"
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// DemoFS is the tree the demo sources serve.
func DemoFS() map[string]fs.FS {
	sub, _ := fs.Sub(demoImages, "demo/images")
	return map[string]fs.FS{DemoRedirect: sub, DemoStream: sub}
}

// DemoToken mints a token that grants both demo sources.
func DemoToken(cfg *Config, ttl time.Duration) (string, error) {
	return auth.Mint(cfg.Auth, auth.MintOptions{
		Subject: "demo-annotator",
		Grants:  []auth.Grant{{Source: DemoRedirect}, {Source: DemoStream}},
		TTL:     ttl,
	})
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
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

// DemoPage serves /demo: the bundled images through the edge in both modes.
func DemoPage(token string, ttl time.Duration) http.Handler {
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
	for _, m := range []struct{ title, source string }{{"Redirect mode (302 to a signed URL)", DemoRedirect}, {"Stream mode (bytes through the edge)", DemoStream}} {
		md := mode{Title: m.title}
		for _, k := range DemoImages {
			md.Images = append(md.Images, img{Key: k, URL: "/v1/s/" + m.source + "/" + escapeKey(k) + "?token=" + token})
		}
		data.Modes = append(data.Modes, md)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		demoPage.Execute(w, data)
	})
}
