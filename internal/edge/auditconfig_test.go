package edge

import (
	"context"
	"strings"
	"testing"

	"github.com/edgeproxy/edge/internal/bytesize"
)

const auditBaseYAML = `
auth: {keys: [{id: k1, alg: HS256, secret: "test-hs256-secret-0123456789abcdef0123"}]}
sources:
  - {name: a, provider: s3, bucket: b}
`

// TestAuditLimitsConfig: the audit and limits sections and
// server.trusted_proxies are read from the config file as PRODUCT.md
// names them, defaulted, and built into the server.
func TestAuditLimitsConfig(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ParseConfig([]byte(auditBaseYAML+`
audit:
  file: `+dir+`/audit.jsonl
  max_size: 10MiB
  max_files: 4
limits:
  per_subject: {rate: 50, burst: 200, bytes_per_second: 10MiB}
server:
  trusted_proxies: ["10.0.0.0/8", "fd00::/8", "192.0.2.10"]
`), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Audit; a.File != dir+"/audit.jsonl" || a.MaxSize != 10*bytesize.MiB || a.MaxFiles != 4 || a.Queue != 8192 {
		t.Errorf("audit %+v", a)
	}
	if p := cfg.Limits.PerSubject; p.Rate != 50 || p.Burst != 200 || p.BytesPerSecond != 10*bytesize.MiB || p.BytesBurst != 10*bytesize.MiB {
		t.Errorf("limits %+v", p)
	}
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !srv.audit.Enabled() || srv.limits == nil || srv.proxies == nil {
		t.Errorf("audit %v, limits %v, proxies %v: want all built", srv.audit.Enabled(), srv.limits != nil, srv.proxies != nil)
	}
	// Off by default: no trail, no limiter, nobody trusted.
	cfg, err = ParseConfig([]byte(auditBaseYAML), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	srv, err = New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.audit != nil || srv.limits != nil || srv.proxies != nil {
		t.Errorf("defaults built audit %v, limits %v, proxies %v", srv.audit != nil, srv.limits != nil, srv.proxies != nil)
	}
}

// TestAuditLimitsConfigProblems: every bad key is named, none echoes its
// value (a webhook URL or a Redis URL holds a secret).
func TestAuditLimitsConfigProblems(t *testing.T) {
	const marker = "S3CR3T-marker"
	for _, tt := range []struct{ name, yaml, names string }{
		{"webhook with a password", `audit: {webhook: "https://u:` + marker + `@hooks.example.com/x"}`, "audit.webhook:"},
		{"webhook not a URL", `audit: {webhook: "ftp://` + marker + `"}`, "audit.webhook:"},
		{"max_size", `audit: {file: /tmp/x, max_size: "` + marker + `"}`, "audit.max_size"},
		{"max_files", `audit: {file: /tmp/x, max_files: 1}`, "audit.max_files:"},
		{"redis URL", `limits: {per_subject: {rate: 1}, redis: "http://:` + marker + `@h:6379"}`, "limits.redis:"},
		{"redis without a rate", `limits: {redis: "redis://:` + marker + `@127.0.0.1:6379/0"}`, "limits.redis: needs per_subject.rate"},
		{"negative rate", `limits: {per_subject: {rate: -1}}`, "limits.per_subject.rate:"},
		{"burst without rate", `limits: {per_subject: {burst: 3}}`, "limits.per_subject.burst:"},
		{"bytes_per_second too small", `limits: {per_subject: {bytes_per_second: 10}}`, "limits.per_subject.bytes_per_second:"},
		{"trusted proxy", `server: {trusted_proxies: ["10.0.0.0/8", "` + marker + `/8"]}`, "server.trusted_proxies[1]:"},
		{"trusted proxy empty", `server: {trusted_proxies: [""]}`, "server.trusted_proxies[0]:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(auditBaseYAML+tt.yaml+"\n"), lookupFrom(nil))
			if err == nil {
				t.Fatal("ParseConfig passed")
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("the problem echoes the value:\n%v", err)
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("the problem does not name %s:\n%v", tt.names, err)
			}
		})
	}
	t.Run("audit file not writable", func(t *testing.T) {
		cfg, err := ParseConfig([]byte(auditBaseYAML+"audit: {file: /proc/"+marker+"/audit.jsonl}\n"), lookupFrom(nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "audit.file") {
			t.Errorf("New: %v, want an audit.file problem", err)
		}
	})
}
