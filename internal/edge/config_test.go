package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exampleConfig is PRODUCT.md's example, adapted: the ES256 key file is
// written by the test (KEYFILE), and the secrets come from the lookup.
const exampleConfig = `
listen: ":8080"
log: {level: info}                         # JSON logs on stderr
auth:
  issuer: "https://app.example.com"          # optional
  audience: "edge"                           # optional
  leeway: 30s
  keys:
    - {id: k1, alg: HS256, secret: "${EDGE_HS256_SECRET}"}   # ${VAR} expands from the environment
    - {id: k2, alg: ES256, public_key_file: KEYFILE}
  jwks_url: ""                               # optional
cors:
  allowed_origins: ["https://*.segments.ai", "http://localhost:*"]
  max_age: 10m
cache:
  max_entries: 100000                        # presigned URLs kept
stream:
  max_concurrent: 1024                       # past it: 503 too_busy
  connect_timeout: 5s                        # storage unreachable: 502 after this
  response_header_timeout: 15s               # storage hung: 504 after this
sources:
  - name: customer-a
    provider: s3                             # s3 | gcs | azure | file
    bucket: acme-images
    region: eu-west-1
    endpoint: ""                             # S3-compatible endpoint (MinIO, R2, GCS interop); empty = AWS
    addressing: auto                         # auto | virtual | path; auto uses path-style for dotted bucket names
    prefix: "images/"                        # confinement: nothing outside it is ever reachable
    mode: redirect                           # redirect | stream
    url_ttl: 1h                              # presigned URL lifetime; at most 7 days and never past the credentials' own expiry
    sse_c_key: ""                            # stream mode only: customer-provided encryption key, base64 of 32 bytes
    credentials:
      type: default                          # default (SDK chain: env, files, IRSA, instance role) | static | assume_role
      access_key_id: "${AWS_ACCESS_KEY_ID}"  # static
      secret_access_key: "${AWS_SECRET_ACCESS_KEY}"
      role_arn: ""                           # assume_role
      external_id: ""                        # assume_role
  - name: customer-b
    provider: s3
    bucket: partner-frames
    region: us-east-1
    credentials:
      type: assume_role                      # the customer's role, trusted for this account with an external ID
      role_arn: "arn:aws:iam::123456789012:role/edge-read"
      external_id: "${EXTERNAL_ID}"
      duration: 1h
      sts_endpoint: ""                       # for S3-compatible stores with their own STS; empty = AWS
      # the credentials that call STS: the default chain, or access_key_id / secret_access_key given here
  - name: customer-g
    provider: gcs
    bucket: acme-gcs-images
    credentials:
      type: service_account                  # signs GOOG4-RSA-SHA256 V4 URLs
      key_file: /secrets/sa.json             # or key_json: "${GCS_SA_JSON}"
      # type: hmac, access_key_id, secret_access_key: GCS interop (S3-style) signing
  - name: customer-z
    provider: azure
    account: acmestorage                     # https://acmestorage.blob.core.windows.net
    bucket: frames                           # the container
    endpoint: ""                             # e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite
    credentials:
      type: shared_key                       # service SAS signed with the account key
      account_key: "${AZURE_ACCOUNT_KEY}"
      # type: default: user-delegation SAS through the Entra ID identity the edge runs as
  - name: local
    provider: file
    root: /srv/images                        # redirect mode signs edge-local URLs; stream mode serves the file
`

var exampleEnv = map[string]string{
	"EDGE_HS256_SECRET":     "an-hs256-secret-of-at-least-32-bytes!",
	"AWS_ACCESS_KEY_ID":     "AKIAEXAMPLE",
	"AWS_SECRET_ACCESS_KEY": "wJalr/secret+key",
	"EXTERNAL_ID":           "ext-42",
	"AZURE_ACCOUNT_KEY":     "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
}

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeKeyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.pub.pem")
	if err := os.WriteFile(p, []byte(testKeys().ecPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func example(t *testing.T) string {
	return strings.Replace(exampleConfig, "KEYFILE", writeKeyFile(t), 1)
}

func TestParseConfigExample(t *testing.T) {
	cfg, err := ParseConfig([]byte(example(t)), lookupFrom(exampleEnv))
	if err != nil {
		t.Fatalf("ParseConfig(example): %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, ":8080"},
		{"auth.keys[0].secret", cfg.Auth.Keys[0].Secret, exampleEnv["EDGE_HS256_SECRET"]},
		{"auth.leeway", cfg.Auth.Leeway, 30 * time.Second},
		{"cors.allowed_origins", len(cfg.CORS.AllowedOrigins), 2},
		{"cors.max_age", cfg.CORS.MaxAge, 10 * time.Minute},
		{"cache.max_entries", cfg.Cache.MaxEntries, 100000},
		{"stream.response_header_timeout", cfg.Stream.ResponseHeaderTimeout, 15 * time.Second},
		{"sources", len(cfg.Sources), 5},
		{"sources[0].prefix", cfg.Sources[0].Prefix, "images/"},
		{"sources[0].url_ttl", cfg.Sources[0].URLTTL, time.Hour},
		{"sources[0].signing_window", cfg.Sources[0].SigningWindow, 30 * time.Minute},
		{"sources[0].credentials.secret_access_key", cfg.Sources[0].Credentials.SecretAccessKey, exampleEnv["AWS_SECRET_ACCESS_KEY"]},
		{"sources[1].credentials.external_id", cfg.Sources[1].Credentials.ExternalID, "ext-42"},
		{"sources[1].credentials.duration", cfg.Sources[1].Credentials.Duration, time.Hour},
		{"sources[1].mode (default)", cfg.Sources[1].Mode, ModeRedirect},
		{"sources[1].addressing (default)", cfg.Sources[1].Addressing, "auto"},
		{"sources[3].account", cfg.Sources[3].Account, "acmestorage"},
		{"sources[4].root", cfg.Sources[4].Root, "/srv/images"},
		{"server.read_header_timeout (default)", cfg.Server.ReadHeaderTimeout, 10 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	for k, v := range exampleEnv {
		t.Setenv(k, v)
	}
	p := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(p, []byte(example(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if cfg.Sources[1].Credentials.ExternalID != "ext-42" {
		t.Errorf("environment not expanded: %+v", cfg.Sources[1].Credentials)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("LoadConfig of a missing file passed")
	}
}

// minimal is a valid config to break in one place.
const minimal = `
auth:
  keys: [{alg: HS256, secret: "0123456789abcdef0123456789abcdef"}]
sources:
  - name: a
    provider: s3
    bucket: b
`

func TestParseConfigProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // every one must appear in the error
	}{
		{"unknown top-level key", minimal + "listne: ':80'\n", nil, []string{"listne: unknown key"}},
		{"unknown source key", strings.Replace(minimal, "bucket: b", "bucket: b\n    bukket: c", 1), nil, []string{"sources[0].bukket: unknown key"}},
		{"unknown credentials key", minimal + "    credentials: {type: static, access_key_id: a, secret_access_key: b, sekret: c}\n", nil, []string{"sources[0].credentials.sekret: unknown key"}},
		{"unknown key in a later source", minimal + "  - {name: c, provider: file, root: /tmp, mode: stream, url_tll: 1h}\n", nil, []string{"sources[1].url_tll: unknown key"}},
		{"unknown auth key", strings.Replace(minimal, "auth:", "auth:\n  isuer: x", 1), nil, []string{"auth.isuer: unknown key"}},
		{"url_ttl above 7 days", minimal + "    url_ttl: 169h\n", nil, []string{"sources[0].url_ttl"}},
		{"url_ttl negative", minimal + "    url_ttl: -1h\n", nil, []string{"sources[0].url_ttl"}},
		{"sse_c_key with mode redirect", minimal + "    mode: redirect\n    sse_c_key: \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n", nil, []string{"sources[0].mode", "sse_c_key"}},
		{"sse_c_key not 32 bytes", minimal + "    mode: stream\n    sse_c_key: \"AAAA\"\n", nil, []string{"sources[0].sse_c_key"}},
		{"unknown mode", minimal + "    mode: proxy\n", nil, []string{"sources[0].mode"}},
		{"unknown provider", strings.Replace(minimal, "provider: s3", "provider: s4", 1), nil, []string{"sources[0].provider"}},
		{"unknown addressing", minimal + "    addressing: sideways\n", nil, []string{"sources[0].addressing"}},
		{"prefix with dot segment", minimal + "    prefix: a/../b/\n", nil, []string{"sources[0].prefix"}},
		{"prefix with leading slash", minimal + "    prefix: /a/\n", nil, []string{"sources[0].prefix"}},
		{"prefix not a folder", minimal + "    prefix: images\n", nil, []string{"sources[0].prefix", "must end with '/'"}},
		{"bad source name", strings.Replace(minimal, "name: a", "name: a/b", 1), nil, []string{"sources[0].name"}},
		{"duplicate source", minimal + "  - {name: a, provider: file, root: /tmp}\n", nil, []string{"sources[1].name", "duplicate"}},
		{"no sources", "auth:\n  keys: [{alg: HS256, secret: \"0123456789abcdef0123456789abcdef\"}]\n", nil, []string{"sources"}},
		{"empty file", "", nil, []string{"auth.keys", "sources"}},
		{"short HS256 secret", strings.Replace(minimal, "0123456789abcdef0123456789abcdef", "short", 1), nil, []string{"auth.keys[0]"}},
		{"origin wildcard", minimal + "cors: {allowed_origins: [\"*\"]}\n", nil, []string{"cors.allowed_origins[0]"}},
		{"cache too large", minimal + "cache: {max_entries: 10000001}\n", nil, []string{"cache.max_entries: must be between 1 and 10000000"}},
		{"cache negative", minimal + "cache: {max_entries: -1}\n", nil, []string{"cache.max_entries"}},
		{"origin with path", minimal + "cors: {allowed_origins: [\"https://a.com/x\"]}\n", nil, []string{"cors.allowed_origins[0]"}},
		{"origin mid wildcard", minimal + "cors: {allowed_origins: [\"https://a.*.com\"]}\n", nil, []string{"cors.allowed_origins[0]"}},
		{"bad log level", minimal + "log: {level: loud}\n", nil, []string{"log.level"}},
		{"bad duration", minimal + "    url_ttl: soon\n", nil, []string{"sources[0].url_ttl: wrong type"}},
		{"static without secret", minimal + "    credentials: {type: static, access_key_id: a}\n", nil, []string{"sources[0].credentials"}},
		{"assume_role without role", minimal + "    credentials: {type: assume_role}\n", nil, []string{"sources[0].credentials.role_arn"}},
		{"unset variable", minimal + "    credentials: {type: static, access_key_id: a, secret_access_key: \"${NOPE_SECRET}\"}\n", nil,
			[]string{"sources[0].credentials.secret_access_key", "NOPE_SECRET"}},
		{"empty variable counts as unset", minimal + "    region: ${EMPTY}\n", map[string]string{"EMPTY": ""}, []string{"sources[0].region", "EMPTY"}},
		{"several problems at once", minimal + "    url_ttl: 200h\n    mode: proxy\n    bukket: x\n    endpoint: ftp://x\n    region: ${MISSING_REGION}\nlog: {level: loud}\n", nil,
			[]string{"sources[0].url_ttl", "sources[0].mode", "sources[0].bukket: unknown key", "sources[0].endpoint", "sources[0].region", "MISSING_REGION", "log.level"}},
		{"not YAML", "auth: [\n", nil, []string{"config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tt.yaml), lookupFrom(tt.env))
			if err == nil {
				t.Fatalf("ParseConfig passed: %+v", cfg)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseConfigExpansion(t *testing.T) {
	yamlish := "a: b # c\n- d {e: [f]} &g *h !i |j >k %l @m `n"
	secret := yamlish + strings.Repeat("x", 32)
	tests := []struct {
		name  string
		value string // the YAML of auth.keys[0].secret
		env   map[string]string
		want  string
	}{
		{"plain", "${S}", map[string]string{"S": secret}, secret},
		{"double-quoted", `"${S}"`, map[string]string{"S": secret}, secret},
		{"single-quoted", `'${S}'`, map[string]string{"S": secret}, secret},
		{"inside text", `"pre-${S}-post"`, map[string]string{"S": secret}, "pre-" + secret + "-post"},
		{"two variables", "${A}${B}", map[string]string{"A": strings.Repeat("a", 20), "B": strings.Repeat("b", 20)}, strings.Repeat("a", 20) + strings.Repeat("b", 20)},
		{"default unused", "${S:-0123456789abcdef0123456789abcdef-default}", map[string]string{"S": secret}, secret},
		{"default used", "${S:-0123456789abcdef0123456789abcdef-default}", nil, "0123456789abcdef0123456789abcdef-default"},
		{"default for empty", "${S:-0123456789abcdef0123456789abcdef-default}", map[string]string{"S": ""}, "0123456789abcdef0123456789abcdef-default"},
		{"value looking like a number", "${S}", map[string]string{"S": "123456789012345678901234567890123"}, "123456789012345678901234567890123"},
		{"value with a variable reference", "${S}", map[string]string{"S": "${OTHER}-and-more-than-32-bytes-of-secret"}, "${OTHER}-and-more-than-32-bytes-of-secret"},
		{"dollar without braces", "$S-0123456789abcdef0123456789abcdef", nil, "$S-0123456789abcdef0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "auth:\n  keys:\n    - alg: HS256\n      secret: " + tt.value + "\nsources: [{name: a, provider: s3, bucket: b}]\n"
			cfg, err := ParseConfig([]byte(doc), lookupFrom(tt.env))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if got := cfg.Auth.Keys[0].Secret; got != tt.want {
				t.Errorf("secret = %q, want %q", got, tt.want)
			}
			if len(cfg.Auth.Keys) != 1 || len(cfg.Sources) != 1 {
				t.Errorf("the value changed the document: %+v", cfg)
			}
		})
	}

	// Plain scalars are typed again after expansion: durations and
	// numbers from the environment work.
	doc := minimal + "    url_ttl: ${TTL}\ncache:\n  max_entries: ${N:-42}\n"
	cfg, err := ParseConfig([]byte(doc), lookupFrom(map[string]string{"TTL": "2h"}))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cfg.Sources[0].URLTTL != 2*time.Hour || cfg.Cache.MaxEntries != 42 {
		t.Errorf("url_ttl = %s, max_entries = %d; want 2h, 42", cfg.Sources[0].URLTTL, cfg.Cache.MaxEntries)
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimal+"    url_ttl: 10m\n"), lookupFrom(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sources[0]
	if s.Mode != ModeRedirect || s.Region != "us-east-1" || s.Addressing != "auto" || s.Credentials.Type != "default" || s.SigningWindow != 5*time.Minute {
		t.Errorf("source defaults: %+v", s)
	}
	if cfg.Listen != ":8080" || cfg.Log.Level != "info" || cfg.CORS.MaxAge != 10*time.Minute || cfg.Cache.MaxEntries != 100000 || cfg.Auth.Leeway != 30*time.Second {
		t.Errorf("top defaults: %+v", cfg)
	}
	// The limits themselves pass.
	for _, ttl := range []string{"168h", "1s", "2s"} {
		if _, err := ParseConfig([]byte(minimal+"    url_ttl: "+ttl+"\n"), lookupFrom(nil)); err != nil {
			t.Errorf("url_ttl %s: %v", ttl, err)
		}
	}
}
