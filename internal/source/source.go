// Package source is one source's config: the storage half (signer.Config,
// inline) and the HTTP half (name, prefix, mode, URL lifetime, signing
// window), plus what onboarding needs (kms_key_arn, sync). The config
// file's sources[] entries and connection files share it.
package source

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/yamlcfg"
)

// Modes.
const (
	ModeRedirect = "redirect"
	ModeStream   = "stream"
)

// Config is one configured source.
type Config struct {
	Name          string `yaml:"name" json:"name"`
	signer.Config `yaml:",inline"`
	// Prefix confines the source: nothing outside it is ever reachable.
	Prefix string `yaml:"prefix"`
	Mode   string `yaml:"mode"` // redirect | stream
	// URLTTL is the presigned URL's lifetime (at most 7 days).
	URLTTL time.Duration `yaml:"url_ttl"`
	// SigningWindow is how long one signing time is reused (default half
	// of url_ttl): within it the same object gets the same URL.
	SigningWindow time.Duration `yaml:"signing_window"`
	// KMSKeyARN is the bucket's SSE-KMS key, for the policy documents and
	// the kms check.
	KMSKeyARN string `yaml:"kms_key_arn"`
	// Sync says the platform lists this prefix (edge sync): the policy then
	// grants s3:ListBucket.
	Sync bool `yaml:"sync"`
}

// Defaults fills everything the operator left out.
func (c *Config) Defaults() {
	c.Config.Defaults()
	if c.Mode == "" {
		c.Mode = ModeRedirect
	}
	if c.URLTTL == 0 {
		c.URLTTL = time.Hour
	}
	if c.SigningWindow == 0 {
		// At least 1s, which Validate asks of every window: url_ttl 1s
		// is allowed.
		c.SigningWindow = max(c.URLTTL/2, time.Second)
	}
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// ValidName reports whether name can name a source (and a /v1/s path
// segment): 1-63 letters, digits, '.', '_' or '-', starting with a letter
// or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Validate returns every problem with c, each naming its key below key
// (for example "sources[0]"; "" for a connection file's root). No message
// quotes a value.
func (c *Config) Validate(key string) []error {
	var errs []error
	bad := func(k, msg string) { errs = append(errs, errors.New(yamlcfg.Join(key, k)+": "+msg)) }
	if c.Name == "" {
		bad("name", "required")
	} else if !ValidName(c.Name) {
		bad("name", "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	for _, e := range c.Config.Validate(key) {
		msg := hideQuoted(e.Error())
		if key == "" {
			// signer names its keys "PREFIX.key": a spec's root has none.
			msg = strings.TrimPrefix(msg, ".")
		}
		errs = append(errs, errors.New(msg))
	}
	switch c.Mode {
	case ModeRedirect:
		if c.SSECKey != "" {
			bad("mode", "a source with sse_c_key must use mode stream: a browser cannot send the key")
		}
	case ModeStream:
	default:
		bad("mode", "unknown mode: want redirect or stream")
	}
	if c.URLTTL < time.Second || c.URLTTL > signer.MaxTTL {
		bad("url_ttl", "must be between 1s and 7 days (168h)")
	}
	if c.SigningWindow < time.Second || c.SigningWindow > c.URLTTL/2 && c.URLTTL >= 2*time.Second {
		bad("signing_window", "must be between 1s and half of url_ttl")
	}
	if c.Prefix != "" {
		switch {
		case strings.HasPrefix(c.Prefix, "/"):
			bad("prefix", "must not start with '/'")
		case !strings.HasSuffix(c.Prefix, "/"):
			// "images" + "cats/1.jpg" would name "imagescats/1.jpg".
			bad("prefix", "must end with '/' (a folder)")
		case len(c.Prefix) > MaxKeyBytes/2:
			bad("prefix", "too long")
		default:
			if err := ValidateKey(c.Prefix); err != nil {
				bad("prefix", err.Error())
			}
		}
	}
	if c.KMSKeyARN != "" && c.Provider != signer.ProviderS3 {
		bad("kms_key_arn", "only s3 sources have an SSE-KMS key")
	} else if c.KMSKeyARN != "" && !strings.HasPrefix(c.KMSKeyARN, "arn:") {
		bad("kms_key_arn", "want a KMS key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)")
	}
	return errs
}

// ParseSpec decodes one connection file: YAML or JSON (JSON is YAML), one
// source with the keys of a sources[] entry. ${VAR} expands from lookup
// after parsing, as in the config file; unknown keys are refused. The
// spec is defaulted and validated; every problem is returned at once,
// each naming its key, none quoting a value.
func ParseSpec(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	c := new(Config)
	errs := yamlcfg.Decode(data, "", lookup, c)
	c.Defaults()
	errs = append(errs, c.Validate("")...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("source spec has problems:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// MaxKeyBytes is the longest object key storage takes: S3 and GCS 1024
// bytes of UTF-8, Azure 1024 characters (see KeyTooLong).
const MaxKeyBytes = 1024

// KeyTooLong reports whether the full storage key (prefix included) is
// longer than the provider allows: storage would answer 400, which is the
// client's mistake, not storage failing. File sources take paths up to
// Linux's PATH_MAX.
func KeyTooLong(provider, key string) bool {
	if len(key) <= MaxKeyBytes {
		return false
	}
	if provider == signer.ProviderAzure {
		return utf8.RuneCountInString(key) > MaxKeyBytes
	}
	return provider != signer.ProviderFile || len(key) > 4096
}

// Key errors.
var (
	ErrEmptyKey   = errors.New("empty key")
	ErrDotSegment = errors.New("'.' and '..' segments are not allowed")
	ErrNUL        = errors.New("NUL is not allowed")
	ErrUTF8       = errors.New("key is not valid UTF-8")
)

// ValidateKey refuses keys that could name something outside their
// prefix on any backend: empty, NUL, invalid UTF-8, or a "." or ".."
// segment (S3 treats them literally, but a file backend, a proxy in front
// of storage or a browser normalising the URL would not).
func ValidateKey(key string) error {
	if key == "" {
		return ErrEmptyKey
	}
	if strings.IndexByte(key, 0) >= 0 {
		return ErrNUL
	}
	if !utf8.ValidString(key) {
		return ErrUTF8
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return ErrDotSegment
		}
	}
	if strings.IndexByte(key, '\\') >= 0 {
		// Windows-style separators hide dot segments from the check above.
		for seg := range strings.SplitSeq(strings.ReplaceAll(key, "\\", "/"), "/") {
			if seg == "." || seg == ".." {
				return ErrDotSegment
			}
		}
	}
	return nil
}

// hideQuoted drops quoted text from a message: a value quoted with %q
// (a secret pasted into the wrong key) never leaves Validate.
func hideQuoted(msg string) string {
	i := strings.IndexByte(msg, '"')
	j := strings.LastIndexByte(msg, '"')
	if i < 0 || j <= i {
		return msg
	}
	return msg[:i] + "(value not shown)" + msg[j+1:]
}
