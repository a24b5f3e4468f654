package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/demo"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/testenv"
)

const testConfig = `
listen: "127.0.0.1:0"
log: {level: error}
auth:
  issuer: https://app.example.com
  audience: edge
  keys:
    - {id: k1, alg: HS256, secret: "${EDGE_TEST_SECRET:-cmd-test-secret-0123456789abcdef0123}"}
sources:
  - name: customer-a
    provider: s3
    bucket: acme-images
    region: eu-west-1
    prefix: images/
    credentials: {type: static, access_key_id: AKIDEXAMPLE, secret_access_key: "${EDGE_TEST_S3_SECRET:-wJalrXUtnFEMI}"}
  - name: local
    provider: file
    root: ROOT
    credentials: {url_keys: ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]}
`

// writeConfig writes body (ROOT replaced by a fresh directory) and
// returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "files")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "ROOT", root)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestToken(t *testing.T) {
	p := writeConfig(t, testConfig)
	code, out, errOut := runCmd(t, "token", "-config", p, "-sub", "annotator-17", "-grant", "customer-a:cats/", "-grant", "local:", "-ttl", "2h")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("stdout is not one JWT: %q", out)
	}
	// The token passes the edge's own checks (iss and aud filled in).
	cfg, err := edge.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(cfg.Auth, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("the edge refuses edge token's token: %v", err)
	}
	if c.Subject != "annotator-17" || len(c.Grants) != 2 || c.Grants[0] != (auth.Grant{Source: "customer-a", Prefix: "cats/"}) || c.Grants[1] != (auth.Grant{Source: "local"}) {
		t.Errorf("claims: %+v", c)
	}
	if left := time.Until(c.ExpiresAt.Time); left < 2*time.Hour-time.Minute || left > 2*time.Hour {
		t.Errorf("expires in %s, want 2h", left)
	}
	if !c.Allows("customer-a", "cats/1.jpg") || c.Allows("customer-a", "dogs/1.jpg") {
		t.Errorf("grants do not behave")
	}

	// EDGE_CONFIG names the file when -config is absent.
	t.Setenv("EDGE_CONFIG", p)
	if code, out, errOut := runCmd(t, "token", "-sub", "x", "-grant", "local:"); code != 0 || strings.Count(out, ".") != 2 {
		t.Errorf("with EDGE_CONFIG: exit %d %q %s", code, out, errOut)
	}
}

func TestTokenErrors(t *testing.T) {
	p := writeConfig(t, testConfig)
	es := writeConfig(t, strings.Replace(testConfig, `{id: k1, alg: HS256, secret: "${EDGE_TEST_SECRET:-cmd-test-secret-0123456789abcdef0123}"}`,
		"{id: k2, alg: EdDSA, public_key: \"-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\\n-----END PUBLIC KEY-----\\n\"}", 1))
	t.Setenv("EDGE_CONFIG", "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no sub", []string{"token", "-config", p, "-grant", "local:"}, 2, "-sub"},
		{"no grant", []string{"token", "-config", p, "-sub", "x"}, 2, "-grant"},
		{"grant without colon", []string{"token", "-config", p, "-sub", "x", "-grant", "local"}, 2, "SOURCE:PREFIX"},
		{"grant without source", []string{"token", "-config", p, "-sub", "x", "-grant", ":p"}, 2, "SOURCE:PREFIX"},
		{"bad ttl", []string{"token", "-config", p, "-sub", "x", "-grant", "local:", "-ttl", "soon"}, 2, "ttl"},
		{"negative ttl", []string{"token", "-config", p, "-sub", "x", "-grant", "local:", "-ttl", "-1h"}, 1, "ttl"},
		{"no config", []string{"token", "-sub", "x", "-grant", "local:"}, 2, "-config"},
		{"missing config file", []string{"token", "-config", p + ".nope", "-sub", "x", "-grant", "local:"}, 1, "no such file"},
		{"no HS256 key", []string{"token", "-config", es, "-sub", "x", "-grant", "local:"}, 1, "HS256"},
		{"unknown flag", []string{"token", "-config", p, "-sub", "x", "-grant", "local:", "-bogus"}, 2, "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tt.code, tt.want)
			}
			if out != "" {
				t.Errorf("stdout %q on failure", out)
			}
		})
	}
}

func TestPresign(t *testing.T) {
	p := writeConfig(t, testConfig)
	tests := []struct{ ref, want string }{
		{"customer-a/cats/1.jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/1.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&"},
		{"customer-a/cats/a%20b%2B(c).jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/a%20b%2B%28c%29.jpg?"},
		{"s3://acme-images/images/cats/1.jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/1.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&"},
		{"https://acme-images.s3.amazonaws.com/images/cats/1.jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/1.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&"},
		{"https://s3.eu-west-1.amazonaws.com/acme-images/images/cats/1.jpg", "https://acme-images.s3.eu-west-1.amazonaws.com/images/cats/1.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&"},
		{"local/a.txt", "/v1/f/local/a.txt?exp="},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			code, out, errOut := runCmd(t, "presign", "-config", p, tt.ref)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.HasPrefix(out, tt.want) || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Errorf("stdout = %q, want one line starting %q", out, tt.want)
			}
			if strings.HasPrefix(tt.want, "https://") && !strings.Contains(out, "X-Amz-Signature=") {
				t.Errorf("no signature in %q", out)
			}
		})
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown source", []string{"presign", "-config", p, "nope/k"}, 1, "nope"},
		{"dot segment", []string{"presign", "-config", p, "customer-a/../k"}, 1, "reference"},
		{"unconfigured bucket", []string{"presign", "-config", p, "s3://other/images/k"}, 1, "no configured source"},
		{"no ref", []string{"presign", "-config", p}, 2, "REF"},
		{"two refs", []string{"presign", "-config", p, "a/b", "c/d"}, 2, "REF"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d mentioning %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}

// TestBadConfig: a bad config file is refused by every command, with every
// problem listed at once, each naming its key; the exit status is 1.
func TestBadConfig(t *testing.T) {
	bad := writeConfig(t, `
log: {level: loud}
listne: ":80"
auth:
  keys: [{alg: HS256, secret: short}]
sources:
  - name: a
    provider: s3
    bucket: b
    url_ttl: 200h
    mode: redirect
    sse_c_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    bukket: x
    credentials: {type: static, access_key_id: a, secret_access_key: "${EDGE_TEST_UNSET_VAR}"}
`)
	want := []string{"log.level", "listne", "auth.keys[0]", "sources[0].url_ttl", "sources[0].mode", "sources[0].bukket", "sources[0].credentials.secret_access_key", "EDGE_TEST_UNSET_VAR"}
	for _, args := range [][]string{
		{"presign", "-config", bad, "a/k"},
		{"token", "-config", bad, "-sub", "x", "-grant", "a:"},
		{"serve", "-config", bad},
	} {
		t.Run(args[0], func(t *testing.T) {
			code, out, errOut := runCmd(t, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not name %q:\n%s", w, errOut)
				}
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
		})
	}
	// Not YAML at all.
	notYAML := writeConfig(t, "sources: [\n")
	if code, _, errOut := runCmd(t, "presign", "-config", notYAML, "a/k"); code != 1 || errOut == "" {
		t.Errorf("not YAML: exit %d %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		out  bool // usage on stdout rather than stderr
	}{
		{nil, 2, false},
		{[]string{"frobnicate"}, 2, false},
		{[]string{"-config"}, 2, false},
		{[]string{"help"}, 0, true},
		{[]string{"-h"}, 0, true},
	} {
		code, out, errOut := runCmd(t, tt.args...)
		where := errOut
		if tt.out {
			where = out
		}
		if code != tt.code || !strings.Contains(where, "usage:") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d with usage", tt.args, code, out, errOut, tt.code)
		}
	}
	if _, _, errOut := runCmd(t, "frobnicate"); !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("stderr %q does not name the command", errOut)
	}
}

// syncBuffer collects a command's output written from another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runUntilReady runs args in the background, waits for /healthz on addr,
// and returns a function that stops it with SIGTERM and returns its exit
// status.
func runUntilReady(t *testing.T, addr string, args ...string) (stop func() int, stdout, stderr *syncBuffer) {
	t.Helper()
	t.Cleanup(stopGCTuner) // the server's GOGC tuner ends with the test
	stdout, stderr = new(syncBuffer), new(syncBuffer)
	done := make(chan int, 1)
	go func() { done <- run(args, stdout, stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("%v exited %d before serving: %s", args, code, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not serving on %s: %s", args, addr, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() int {
		// run has signal.NotifyContext registered: SIGTERM is caught and
		// starts the graceful shutdown.
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("no shutdown 30s after SIGTERM")
			return -1
		}
	}, stdout, stderr
}

func TestServe(t *testing.T) {
	p := writeConfig(t, testConfig)
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	stop, _, stderr := runUntilReady(t, addr, "serve", "-config", p, "-listen", addr)
	_, tok, _ := runCmd(t, "token", "-config", p, "-sub", "x", "-grant", "local:")
	client := testenv.LocalhostClient()
	resp, err := client.Get("http://" + addr + "/v1/s/local/a.txt?token=" + strings.TrimSpace(tok))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: %d", resp.StatusCode)
	}
	// The file URL was signed with the configured url_keys, so `edge
	// presign` and the server agree.
	_, presigned, _ := runCmd(t, "presign", "-config", p, "local/a.txt")
	if loc := resp.Header.Get("Location"); loc != strings.TrimSpace(presigned) {
		t.Errorf("server Location %s, edge presign %s", loc, presigned)
	}
	resp, err = client.Get("http://" + addr + resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("signed file URL: %d %q", resp.StatusCode, body)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM: %s", code, stderr)
	}
}

func TestDemo(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	stop, stdout, stderr := runUntilReady(t, addr, "demo", "-listen", addr)
	out := stdout.String()
	m := regexp.MustCompile(`token:\s+(\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "http://"+addr+"/demo") {
		t.Fatalf("demo output lacks the address or token:\n%s", out)
	}
	tok := m[1]
	client := testenv.LocalhostClient()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, page := get("/demo")
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<img") {
		t.Fatalf("/demo: %d", resp.StatusCode)
	}
	imgs := regexp.MustCompile(`src="([^"]+)"`).FindAllStringSubmatch(string(page), -1)
	var redirects, streams int
	for _, img := range imgs {
		src := strings.ReplaceAll(img[1], "&amp;", "&")
		if !strings.Contains(src, "token=") {
			continue
		}
		resp, body := get(src)
		switch resp.StatusCode {
		case http.StatusFound:
			redirects++
			resp, body = get(resp.Header.Get("Location"))
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Errorf("%s: following the redirect: %d", src, resp.StatusCode)
			}
		case http.StatusOK:
			streams++
			if len(body) == 0 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
				t.Errorf("%s: %s, %d bytes", src, resp.Header.Get("Content-Type"), len(body))
			}
		default:
			t.Errorf("%s: %d %s", src, resp.StatusCode, body)
		}
	}
	if redirects != len(demo.Images) || streams != len(demo.Images) {
		t.Errorf("demo page: %d redirect and %d stream images, want %d each", redirects, streams, len(demo.Images))
	}
	if resp, _ := get("/v1/s/demo/gradient.png"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	if resp, _ := get("/v1/s/demo/gradient.png?token=" + tok); resp.StatusCode != http.StatusFound {
		t.Errorf("printed token: %d", resp.StatusCode)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM: %s", code, stderr)
	}
	// The access log went to stderr (flushed at exit) and holds no token.
	if !strings.Contains(stderr.String(), `"msg":"request"`) {
		t.Errorf("no access log lines on stderr: %s", stderr)
	}
	if strings.Contains(stderr.String(), tok) {
		t.Errorf("the token is in the log")
	}
}
