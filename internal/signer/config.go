package signer

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Providers.
const (
	ProviderS3    = "s3"
	ProviderGCS   = "gcs"
	ProviderAzure = "azure"
	ProviderFile  = "file"
)

// Config is the storage half of one source: where the objects live and the
// credentials that sign for them. The HTTP half (name, prefix, mode, TTL)
// lives in internal/edge, which embeds this struct inline.
type Config struct {
	Provider   string `yaml:"provider"`   // s3 | gcs | azure | file
	Bucket     string `yaml:"bucket"`     // bucket, or the Azure container
	Region     string `yaml:"region"`     // s3: signing region (default us-east-1)
	Endpoint   string `yaml:"endpoint"`   // S3-compatible or Azurite endpoint; empty = the cloud's own
	Addressing string `yaml:"addressing"` // s3: auto | virtual | path
	Account    string `yaml:"account"`    // azure: storage account
	Root       string `yaml:"root"`       // file: the directory served
	// FollowSymlinks (file): follow a symbolic link when its target stays
	// under the source's prefix; by default no link is followed.
	FollowSymlinks bool   `yaml:"follow_symlinks"`
	SSECKey        string `yaml:"sse_c_key"` // s3 stream mode: base64 of a 32-byte customer key

	Credentials Credentials `yaml:"credentials"`
}

// Credentials says how a source obtains the keys it signs with.
type Credentials struct {
	// Type is, for s3: default | static | assume_role | web_identity;
	// gcs: service_account | hmac; azure: shared_key | default.
	Type string `yaml:"type"`

	AccessKeyID     string `yaml:"access_key_id"`     // s3 static, gcs hmac, assume_role base
	SecretAccessKey string `yaml:"secret_access_key"` // s3 static, gcs hmac, assume_role base
	SessionToken    string `yaml:"session_token"`     // s3 static, optional

	RoleARN          string        `yaml:"role_arn"`                // assume_role, web_identity
	ExternalID       string        `yaml:"external_id"`             // assume_role
	SessionName      string        `yaml:"session_name"`            // assume_role, web_identity
	Duration         time.Duration `yaml:"duration"`                // assume_role
	STSEndpoint      string        `yaml:"sts_endpoint"`            // assume_role on S3-compatible stores
	STSRegion        string        `yaml:"sts_region"`              // assume_role
	WebIdentityToken string        `yaml:"web_identity_token_file"` // web_identity

	KeyFile string `yaml:"key_file"` // gcs service_account: JSON key file
	KeyJSON string `yaml:"key_json"` // gcs service_account: the JSON itself

	AccountKey string `yaml:"account_key"` // azure shared_key

	// URLKeys sign and verify file sources' /v1/f URLs (base64, at least
	// 32 bytes each; the first signs, all verify, for rotation). Empty: a
	// random key per process, so URLs do not survive restarts or replicas.
	URLKeys []string `yaml:"url_keys"`
}

// Defaults fills what the operator left out.
func (c *Config) Defaults() {
	if c.Provider == ProviderS3 {
		if c.Region == "" {
			c.Region = "us-east-1"
		}
		if c.Addressing == "" {
			c.Addressing = "auto"
		}
		if c.Credentials.Type == "" {
			c.Credentials.Type = "default"
			if c.Credentials.AccessKeyID != "" {
				c.Credentials.Type = "static"
			}
		}
	}
	if c.Provider == ProviderAzure && c.Credentials.Type == "" {
		c.Credentials.Type = "shared_key"
	}
	if c.Provider == ProviderGCS && c.Credentials.Type == "" {
		c.Credentials.Type = "service_account"
		if c.Credentials.AccessKeyID != "" {
			c.Credentials.Type = "hmac"
		}
	}
}

// Validate returns every problem with c, each naming its key below prefix
// (for example "sources[0]"). It is the one check of the storage config:
// the constructors trust a config that passed it. Messages name the key
// and the kind of problem, never the value: a secret pasted into the wrong
// key must not reach the log.
func (c *Config) Validate(prefix string) []error {
	var errs []error
	bad := func(key, msg string) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, msg))
	}
	switch c.Provider {
	case ProviderS3, ProviderGCS, ProviderAzure:
		if c.Bucket == "" {
			bad("bucket", "required for provider "+c.Provider)
		}
	case ProviderFile:
		if c.Root == "" {
			bad("root", "required for provider file")
		}
	case "":
		bad("provider", "required: s3, gcs, azure or file")
	default:
		bad("provider", "unknown provider: want s3, gcs, azure or file")
	}
	if c.FollowSymlinks && c.Provider != ProviderFile {
		bad("follow_symlinks", "only file sources follow symbolic links")
	}
	if c.Endpoint != "" {
		if msg := checkEndpoint(c.Endpoint); msg != "" {
			bad("endpoint", msg)
		} else if u, _ := url.Parse(c.Endpoint); c.Provider == ProviderAzure && (u.RawQuery != "" || u.Fragment != "") {
			bad("endpoint", "must not carry a query or fragment")
		} else if c.Provider == ProviderGCS && c.Credentials.Type != "hmac" && (u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "") {
			bad("endpoint", "want scheme://host[:port] with no path, query or fragment")
		}
	}
	switch c.Addressing {
	case "", "auto", "virtual", "path":
	default:
		bad("addressing", "unknown addressing: want auto, virtual or path")
	}
	if c.SSECKey != "" {
		if c.Provider != ProviderS3 {
			bad("sse_c_key", "only s3 sources take a customer-provided key")
		} else if k, err := base64.StdEncoding.DecodeString(c.SSECKey); err != nil || len(k) != 32 {
			bad("sse_c_key", "want base64 of exactly 32 bytes")
		}
	}
	cr := c.Credentials
	switch c.Provider {
	case ProviderS3:
		switch cr.Type {
		case "default":
		case "static":
			if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
				bad("credentials", "static credentials need access_key_id and secret_access_key")
			}
		case "assume_role":
			if cr.RoleARN == "" {
				bad("credentials.role_arn", "required for assume_role")
			}
			if cr.Duration != 0 && (cr.Duration < 15*time.Minute || cr.Duration > 12*time.Hour) {
				bad("credentials.duration", "must be between 15m and 12h")
			}
		case "web_identity":
			if cr.RoleARN == "" || cr.WebIdentityToken == "" {
				bad("credentials", "web_identity needs role_arn and web_identity_token_file")
			}
		default:
			bad("credentials.type", "unknown type for s3: want default, static, assume_role or web_identity")
		}
		if cr.STSEndpoint != "" {
			if msg := checkEndpoint(cr.STSEndpoint); msg != "" {
				bad("credentials.sts_endpoint", msg)
			}
		}
	case ProviderGCS:
		switch cr.Type {
		case "service_account":
			if (cr.KeyFile == "") == (cr.KeyJSON == "") {
				bad("credentials", "service_account needs exactly one of key_file or key_json")
			}
			if c.Bucket != "" && !gcsValidBucket(c.Bucket) {
				bad("bucket", "not a GCS bucket name: want lowercase letters, digits, '-', '_' and '.'")
			}
			if c.Addressing == "virtual" && strings.Contains(c.Bucket, ".") && !strings.HasPrefix(c.Endpoint, "http://") {
				bad("addressing", "a dotted bucket name does not match the storage TLS certificate in virtual-hosted style: use path")
			}
		case "hmac":
			if cr.AccessKeyID == "" || cr.SecretAccessKey == "" {
				bad("credentials", "hmac needs access_key_id and secret_access_key")
			}
		default:
			bad("credentials.type", "unknown type for gcs: want service_account or hmac")
		}
	case ProviderAzure:
		if c.Account == "" {
			bad("account", "required for provider azure")
		} else if strings.ContainsAny(c.Account, "/?#.:@ ") {
			bad("account", "not a storage account name")
		}
		if strings.ContainsAny(c.Bucket, "/?#%@ ") {
			bad("bucket", "not a container name")
		}
		switch cr.Type {
		case "shared_key":
			if cr.AccountKey == "" {
				bad("credentials.account_key", "required for shared_key")
			} else if _, err := base64.StdEncoding.DecodeString(cr.AccountKey); err != nil {
				bad("credentials.account_key", "not base64")
			}
		case "default":
		default:
			bad("credentials.type", "unknown type for azure: want shared_key or default")
		}
	}
	return errs
}

// checkEndpoint says what is wrong with an endpoint URL ("" if nothing):
// it must be an absolute http(s) URL and carry no user information (an
// access key and secret written as https://KEY:SECRET@host belong under
// credentials, and would otherwise travel into URLs and logs).
func checkEndpoint(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		if strings.Contains(raw, "@") {
			return "must not carry user information (credentials go under credentials)"
		}
		return "want an absolute http(s) URL"
	case u.User != nil:
		return "must not carry user information (credentials go under credentials)"
	}
	return ""
}

// PathStyle reports whether S3 requests use path-style addressing. With
// auto, dotted bucket names (and IP endpoints) go path-style: a virtual-hosted name such as
// my.bucket.s3.amazonaws.com does not match the *.s3.amazonaws.com
// certificate.
func (c *Config) PathStyle() bool {
	switch c.Addressing {
	case "path":
		return true
	case "virtual":
		return false
	}
	if strings.Contains(c.Bucket, ".") {
		return true
	}
	// BUCKET.127.0.0.1 is no host name: an IP endpoint is path-style.
	if u, err := url.Parse(c.Endpoint); err == nil && net.ParseIP(u.Hostname()) != nil {
		return true
	}
	return false
}
