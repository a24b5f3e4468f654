package edge

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// lockedBuffer is a goroutine-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Sync() error { return nil }

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// bufferLogger is the production JSON encoding at debug level, into buf.
func bufferLogger(buf *lockedBuffer) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, buf, zapcore.DebugLevel))
}

// TestLogRedaction runs requests that carry tokens (query, header, cookie),
// earn presigned URLs and edge-signed file URLs, and fail in every way that
// has an internal cause, then checks that the access log holds none of the
// token, its signature, the storage secrets, X-Amz-Signature or sig values.
func TestLogRedaction(t *testing.T) {
	// An STS that refuses quickly: a credentials failure whose cause the
	// log records.
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not trusted</Message></Error></ErrorResponse>`))
	}))
	defer sts.Close()

	var buf lockedBuffer
	cfg := baseConfig(t)
	src := s3Source("customer-r", "role-bucket", "")
	src.Credentials = signer.Credentials{Type: "assume_role", RoleARN: "arn:aws:iam::123456789012:role/r", ExternalID: "ext-secret-id",
		STSEndpoint: sts.URL, AccessKeyID: testAKID, SecretAccessKey: testSecKey}
	cfg.Sources = append(cfg.Sources, src)
	e := newEnv(t, cfg, withLogger(bufferLogger(&buf)))

	tok := tokenAll(t)
	tokR := signHS(t, claims(grant("customer-r", "")))
	expired := claims(grant("customer-a", ""))
	expired["exp"] = t0.Add(-time.Hour).Unix()
	expiredTok := signHS(t, expired)
	badSig := signWith(t, jwt.SigningMethodHS256, []byte(strings.Repeat("z", 40)), "k1", claims(grant("customer-a", "")))
	secrets := []string{tok, tokR, expiredTok, badSig, testSecret, testSecKey, "ext-secret-id"}

	var signatures []string
	redirect := func(target string, hdr http.Header) string {
		w := e.do("GET", target, hdr)
		if w.Code != http.StatusFound {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
		loc := w.Header().Get("Location")
		q := mustQuery(t, loc)
		for _, k := range []string{"X-Amz-Signature", "sig"} {
			if v := q.Get(k); v != "" {
				signatures = append(signatures, v)
			}
		}
		return loc
	}
	redirect("/v1/s/customer-a/cats/1.jpg?token="+tok, nil)
	redirect("/v1/s/customer-a/cats/2.jpg", http.Header{"Authorization": {"Bearer " + tok}})
	redirect("/v1/s/customer-b/x.png", http.Header{"Cookie": {auth.CookieName + "=" + tok}})
	redirect("/v1/u?url="+url.QueryEscape("https://acme-images.s3.amazonaws.com/images/q.jpg?X-Amz-Signature=deadbeefcafe")+"&token="+tok, nil)
	floc := redirect("/v1/s/local-r/a.txt?token="+tok, nil)
	secrets = append(secrets, "deadbeefcafe")

	reqs := []struct {
		target string
		hdr    http.Header
	}{
		{floc, nil}, // /v1/f with sig=
		{strings.Replace(floc, "sig=", "sig=AAAA", 1), nil}, // tampered sig
		{"/v1/s/customer-a/k?token=" + expiredTok, nil},
		{"/v1/s/customer-a/k?token=" + badSig, nil},
		{"/v1/s/customer-a/k", http.Header{"Authorization": {"Bearer " + badSig}}},
		{"/v1/s/customer-a/k", http.Header{"Cookie": {auth.CookieName + "=" + expiredTok}}},
		{"/v1/s/customer-b/k?token=" + signHS(t, claims(grant("customer-a", ""))), nil}, // 403
		{"/v1/s/customer-r/k?token=" + tokR, nil},                                       // 503 with an STS cause
		{"/v1/s/customer-a/%2e%2e/k?token=" + tok, nil},
		{"/v1/s/local/a.txt?token=" + tok, nil},
		{"/v1/s/local/missing?token=" + tok, nil},
		{"/v1/u?url=" + url.QueryEscape("s3://nope/k?X-Amz-Signature=deadbeefcafe") + "&token=" + tok, nil},
		{"/v1/s/customer-a/k?token=" + tok + "x", nil},
	}
	for _, r := range reqs {
		e.do("GET", r.target, r.hdr)
	}
	w := e.do("POST", "/v1/session", http.Header{"Authorization": {"Bearer " + tok}})
	if w.Code != http.StatusNoContent {
		t.Fatalf("session: %d", w.Code)
	}
	e.srv.CheckReady(t.Context())

	logs := buf.String()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) < len(reqs)+6 {
		t.Fatalf("only %d log lines:\n%s", len(lines), logs)
	}
	var sawCause, sawSubject bool
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line is not JSON: %s", line)
		}
		if m["cause"] != nil {
			sawCause = true
		}
		if m["subject"] == "annotator-17" {
			sawSubject = true
		}
	}
	if !sawCause || !sawSubject {
		t.Errorf("the log lacks causes or subjects; the test proves nothing:\n%s", logs)
	}
	if len(signatures) < 5 {
		t.Fatalf("collected %d signatures", len(signatures))
	}
	for _, s := range append(secrets, signatures...) {
		assertNoSecret(t, "log", logs, s)
	}
	for _, bad := range []string{"X-Amz-Signature=", "X-Amz-Credential=", "sig=", "token=", "Bearer ", auth.CookieName + "="} {
		if i := strings.Index(logs, bad); i >= 0 && !strings.HasPrefix(logs[i+len(bad):], "REDACTED") {
			t.Errorf("log holds %q unredacted: …%s…", bad, logs[i:min(len(logs), i+60)])
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no secrets here", "no secrets here"},
		{"a=b", "a=b"},
		{`GET "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKID%2F2026&X-Amz-Signature=abc123&x-id=GetObject": EOF`,
			`GET "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&x-id=GetObject": EOF`},
		{"x-amz-security-token=FQoG x-amz-signature=ff", "x-amz-security-token=REDACTED x-amz-signature=REDACTED"},
		{"/v1/f/local/a?exp=1&sig=abc_-", "/v1/f/local/a?exp=1&sig=REDACTED"},
		{"?token=eyJ.eyJ.sig&b=1", "?token=REDACTED&b=1"},
		{"https://acct.blob.core.windows.net/c/b?sv=2024&sig=abc%2Bdef&skoid=x&sktid=y", "https://acct.blob.core.windows.net/c/b?sv=2024&sig=REDACTED&skoid=REDACTED&sktid=REDACTED"},
		{"X-Goog-Signature=abc&X-Goog-Credential=sa%40p", "X-Goog-Signature=REDACTED&X-Goog-Credential=REDACTED"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
