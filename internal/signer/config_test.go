package signer

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateNamesKeysNotValues: every problem names its key and the kind
// of problem, and no message echoes what the operator wrote there (a
// secret pasted into the wrong key would reach the log). The values below
// all contain the marker; the messages must not.
func TestValidateNamesKeysNotValues(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYSECRETKEY"
	s3 := func(mod func(*Config)) Config {
		c := Config{Provider: ProviderS3, Bucket: "b", Credentials: Credentials{Type: "static", AccessKeyID: "AKIA", SecretAccessKey: "x"}}
		mod(&c)
		return c
	}
	gcs := func(mod func(*Config)) Config {
		c := Config{Provider: ProviderGCS, Bucket: "b", Credentials: Credentials{Type: "service_account", KeyFile: "/k.json"}}
		mod(&c)
		return c
	}
	az := func(mod func(*Config)) Config {
		c := Config{Provider: ProviderAzure, Bucket: "frames", Account: "acme", Credentials: Credentials{Type: "shared_key", AccountKey: azTestKey}}
		mod(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown provider", Config{Provider: secret, Bucket: "b"}, "s.provider: unknown provider"},
		{"s3 unknown credentials type", s3(func(c *Config) { c.Credentials.Type = secret }), "s.credentials.type: unknown type for s3"},
		{"gcs unknown credentials type", gcs(func(c *Config) { c.Credentials.Type = secret }), "s.credentials.type: unknown type for gcs"},
		{"azure unknown credentials type", az(func(c *Config) { c.Credentials.Type = secret }), "s.credentials.type: unknown type for azure"},
		{"endpoint not a URL", s3(func(c *Config) { c.Endpoint = secret }), "s.endpoint: want an absolute http(s) URL"},
		{"endpoint with user info", s3(func(c *Config) { c.Endpoint = "https://AKIAEXAMPLE:" + secret + "@s3.example.com" }), "s.endpoint: must not carry user information"},
		{"endpoint with user only", s3(func(c *Config) { c.Endpoint = "https://" + secret + "@s3.example.com" }), "s.endpoint: must not carry user information"},
		{"endpoint with user info and a bad port", s3(func(c *Config) { c.Endpoint = "https://AKIA:" + secret + "@s3.example.com:port" }), "s.endpoint: must not carry user information"},
		{"sts_endpoint with user info", s3(func(c *Config) {
			c.Credentials = Credentials{Type: "assume_role", RoleARN: "arn:aws:iam::1:role/r", STSEndpoint: "https://AKIA:" + secret + "@sts.example.com"}
		}), "s.credentials.sts_endpoint: must not carry user information"},
		{"sts_endpoint not http", s3(func(c *Config) {
			c.Credentials = Credentials{Type: "assume_role", RoleARN: "arn:aws:iam::1:role/r", STSEndpoint: "ftp://" + secret}
		}), "s.credentials.sts_endpoint: want an absolute http(s) URL"},
		{"addressing", s3(func(c *Config) { c.Addressing = secret }), "s.addressing: unknown addressing"},
		{"assume_role duration", s3(func(c *Config) {
			c.Credentials = Credentials{Type: "assume_role", RoleARN: "arn:aws:iam::1:role/r", Duration: 99999}
		}), "s.credentials.duration: must be between 15m and 12h"},
		{"sse_c_key", s3(func(c *Config) { c.SSECKey = secret }), "s.sse_c_key: want base64 of exactly 32 bytes"},
		{"gcs bucket", gcs(func(c *Config) { c.Bucket = "Bad/" + secret }), "s.bucket: not a GCS bucket name"},
		{"gcs endpoint with path", gcs(func(c *Config) { c.Endpoint = "http://localhost:4443/" + secret }), "s.endpoint: want scheme://host[:port] with no path"},
		{"gcs endpoint with user", gcs(func(c *Config) { c.Endpoint = "https://u:" + secret + "@example.com" }), "s.endpoint: must not carry user information"},
		{"gcs both keys", gcs(func(c *Config) { c.Credentials.KeyJSON = secret }), "s.credentials: service_account needs exactly one of key_file or key_json"},
		{"gcs no key", gcs(func(c *Config) { c.Credentials.KeyFile = "" }), "s.credentials: service_account needs exactly one of key_file or key_json"},
		{"gcs dotted bucket virtual", gcs(func(c *Config) { c.Bucket = "a.b"; c.Addressing = "virtual" }), "s.addressing: a dotted bucket name"},
		{"azure account", az(func(c *Config) { c.Account = "acme." + secret }), "s.account: not a storage account name"},
		{"azure container", az(func(c *Config) { c.Bucket = "a/" + secret }), "s.bucket: not a container name"},
		{"azure key", az(func(c *Config) { c.Credentials.AccountKey = secret + "!" }), "s.credentials.account_key: not base64"},
		{"azure endpoint query", az(func(c *Config) { c.Endpoint = "http://127.0.0.1:10000/a?sig=" + secret }), "s.endpoint: must not carry a query or fragment"},
		{"follow_symlinks off file", s3(func(c *Config) { c.FollowSymlinks = true }), "s.follow_symlinks: only file sources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.cfg.Validate("s")
			if len(errs) == 0 {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			msg := errors.Join(errs...).Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("Validate = %q, want it to contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "SECRET") || strings.Contains(msg, "AKIA") {
				t.Errorf("Validate = %q echoes a value", msg)
			}
		})
	}
}
