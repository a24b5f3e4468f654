package source

import (
	"strings"
	"testing"
	"time"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

var specTests = []struct {
	name string
	spec string
	env  map[string]string
	want []string // substrings of the error; nil: valid
}{
	{"yaml", "name: customer-a\nprovider: s3\nbucket: acme\nprefix: images/\ncredentials: {type: static, access_key_id: AKID, secret_access_key: \"${SK}\"}\n", map[string]string{"SK": secret}, nil},
	{"json", `{"name": "customer-j", "provider": "gcs", "bucket": "b", "mode": "stream", "sync": true, "credentials": {"type": "hmac", "access_key_id": "a", "secret_access_key": "${SK}"}}`, map[string]string{"SK": secret}, nil},
	{"kms and sync", "name: k\nprovider: s3\nbucket: b\nkms_key_arn: arn:aws:kms:eu-west-1:123456789012:key/1\nsync: true\n", nil, nil},
	{"unknown key", "name: a\nprovider: s3\nbucket: b\nbukket: c\n", nil, []string{"bukket: unknown key"}},
	{"unknown nested key", "name: a\nprovider: s3\nbucket: b\ncredentials: {sekret: x}\n", nil, []string{"credentials.sekret: unknown key"}},
	{"unset variable", "name: a\nprovider: s3\nbucket: b\ncredentials: {type: static, access_key_id: a, secret_access_key: \"${NOPE}\"}\n", nil, []string{"credentials.secret_access_key: environment variable NOPE is not set"}},
	{"no name", "provider: s3\nbucket: b\n", nil, []string{"name: required"}},
	{"bad mode", "name: a\nprovider: s3\nbucket: b\nmode: " + secret + "\n", nil, []string{"mode: unknown mode"}},
	{"bad prefix", "name: a\nprovider: s3\nbucket: b\nprefix: " + secret + "\n", nil, []string{"prefix: must end with '/'"}},
	{"bad name", "name: " + secret + "\nprovider: s3\nbucket: b\n", nil, []string{"name: must be"}},
	{"type error", "name: a\nprovider: s3\nbucket: b\nurl_ttl: " + secret + "\n", nil, []string{"url_ttl: wrong type"}},
	{"bool type error", "name: a\nprovider: s3\nbucket: b\nsync: " + secret + "\n", nil, []string{"sync: wrong type"}},
	{"kms on gcs", "name: a\nprovider: gcs\nbucket: b\nkms_key_arn: arn:x\ncredentials: {type: hmac, access_key_id: a, secret_access_key: b}\n", nil, []string{"kms_key_arn: only s3"}},
	{"kms not an arn", "name: a\nprovider: s3\nbucket: b\nkms_key_arn: " + secret + "\n", nil, []string{"kms_key_arn: want a KMS key ARN"}},
	{"signer keys named from the root", "name: a\nprovider: s3\n", nil, []string{"\nbucket: required"}},
	{"several at once", "name: a\nprovider: s3\nbucket: b\nmode: x\nurl_ttl: 400h\nbukket: c\n", nil, []string{"mode:", "url_ttl:", "bukket: unknown key"}},
	{"not yaml", "name: [\n", nil, []string{"document:"}},
	{"a list, not one source", "- name: a\n", nil, []string{"wrong type"}},
	{"secret holding yaml", "name: a\nprovider: s3\nbucket: b\ncredentials: {type: static, access_key_id: a, secret_access_key: \"${SK}\"}\n", map[string]string{"SK": "x\nmode: stream\n"}, nil},
}

func TestParseSpec(t *testing.T) {
	for _, tt := range specTests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseSpec([]byte(tt.spec), lookup(tt.env))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ParseSpec: %v", err)
				}
				if c.Mode == "" || c.URLTTL == 0 || c.SigningWindow == 0 {
					t.Errorf("not defaulted: %+v", c)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSpec passed: %+v", c)
			}
			msg := "\n" + err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "K7MDENG") {
				t.Errorf("error echoes a value:\n%v", err)
			}
		})
	}
	c, err := ParseSpec([]byte(specTests[0].spec), lookup(specTests[0].env))
	if err != nil || c.Credentials.SecretAccessKey != secret || c.Prefix != "images/" || c.URLTTL != time.Hour {
		t.Errorf("got %+v, %v", c, err)
	}
	c, _ = ParseSpec([]byte(specTests[len(specTests)-1].spec), lookup(specTests[len(specTests)-1].env))
	if c == nil || c.Mode != ModeRedirect {
		t.Errorf("a secret holding YAML changed the structure: %+v", c)
	}
}

// FuzzParseSpec: never panics; a spec that parses is valid, and no
// problem quotes the secret the environment holds.
func FuzzParseSpec(f *testing.F) {
	for _, tt := range specTests {
		f.Add(tt.spec)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := ParseSpec([]byte(spec), lookup(map[string]string{"SK": secret}))
		if err == nil {
			if errs := c.Validate(""); len(errs) > 0 {
				t.Fatalf("parsed an invalid spec: %v", errs)
			}
			return
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error echoes the expanded secret: %v", err)
		}
	})
}

func TestKeyTooLong(t *testing.T) {
	for _, tt := range []struct {
		provider, key string
		want          bool
	}{
		{"s3", strings.Repeat("k", 1024), false},
		{"s3", strings.Repeat("k", 1025), true},
		{"gcs", strings.Repeat("é", 513), true},     // 1026 bytes
		{"azure", strings.Repeat("é", 1000), false}, // 1000 characters
		{"azure", strings.Repeat("k", 1025), true},
		{"file", strings.Repeat("k", 2000), false},
		{"file", strings.Repeat("k", 5000), true},
	} {
		if got := KeyTooLong(tt.provider, tt.key); got != tt.want {
			t.Errorf("KeyTooLong(%s, %d bytes) = %v, want %v", tt.provider, len(tt.key), got, tt.want)
		}
	}
}
