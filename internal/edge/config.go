package edge

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/edgeproxy/edge/internal/admin"
	"github.com/edgeproxy/edge/internal/audit"
	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/clientip"
	"github.com/edgeproxy/edge/internal/connections"
	"github.com/edgeproxy/edge/internal/limit"
	"github.com/edgeproxy/edge/internal/onboard"
	"github.com/edgeproxy/edge/internal/source"
	"github.com/edgeproxy/edge/internal/stream"
	"github.com/edgeproxy/edge/internal/yamlcfg"
)

// Config is the whole config file. Each package owns its section; this
// struct only aggregates them.
type Config struct {
	Listen  string          `yaml:"listen"`
	Log     LogConfig       `yaml:"log"`
	Server  ServerConfig    `yaml:"server"`
	Auth    auth.Config     `yaml:"auth"`
	CORS    CORSConfig      `yaml:"cors"`
	Cache   CacheConfig     `yaml:"cache"`
	Stream  stream.Config   `yaml:"stream"`
	Sources []source.Config `yaml:"sources"`
	// Audit is the audit trail: one record per object request.
	Audit audit.Config `yaml:"audit"`
	// Limits are the per-subject budgets (429 rate_limited past them).
	Limits limit.Config `yaml:"limits"`
	// Connections are the stores of sources followed live (internal/connections).
	Connections connections.Config `yaml:"connections"`
	// Admin is the second listener, for the platform's backend (internal/admin).
	Admin admin.Config `yaml:"admin"`
	// Platform is the platform's own identity, for onboarding (internal/onboard).
	Platform onboard.Platform `yaml:"platform"`
}

// LogConfig sets the JSON logger on stderr.
type LogConfig struct {
	Level string `yaml:"level"` // debug | info | warn | error
	// Unbuffered writes every line at once instead of buffering up to a
	// second (for tailing the log in tests).
	Unbuffered bool `yaml:"unbuffered"`
}

// ServerConfig holds the HTTP server's timeouts and who it trusts.
type ServerConfig struct {
	// RequestTimeout is every request's deadline for the work before its
	// answer starts (verifying, signing, storage's response headers);
	// a streamed body is then bounded per chunk by write_timeout and
	// stream.response_header_timeout instead.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// TrustedProxies are the CIDRs (or single addresses) whose
	// X-Forwarded-For and X-Request-Id are believed: one set
	// (internal/clientip) serves the request id, the audit record's
	// client_ip and nothing else.
	TrustedProxies    []string      `yaml:"trusted_proxies"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// WriteTimeout bounds writing a response; stream mode extends it for
	// every chunk it copies, so long videos are not cut.
	WriteTimeout    time.Duration `yaml:"write_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// CORSConfig lists the page origins allowed to read what the edge serves.
type CORSConfig struct {
	// AllowedOrigins are origins or patterns: a "*." label wildcard in the
	// host (https://*.segments.ai) and a "*" port (http://localhost:*).
	AllowedOrigins []string      `yaml:"allowed_origins"`
	MaxAge         time.Duration `yaml:"max_age"`
}

// CacheConfig bounds the presigned-URL cache.
type CacheConfig struct {
	MaxEntries int `yaml:"max_entries"`
}

// Modes (source.ModeRedirect, source.ModeStream).
const (
	ModeRedirect = source.ModeRedirect
	ModeStream   = source.ModeStream
)

// SourceConfig is one configured source (internal/source owns it).
type SourceConfig = source.Config

// Defaults fills everything the operator left out.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	s := &c.Server
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = 10 * time.Second
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 120 * time.Second
	}
	if s.WriteTimeout == 0 {
		s.WriteTimeout = 60 * time.Second
	}
	if s.RequestTimeout == 0 {
		s.RequestTimeout = 30 * time.Second
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = 20 * time.Second
	}
	if c.CORS.MaxAge == 0 {
		c.CORS.MaxAge = 10 * time.Minute
	}
	if c.Cache.MaxEntries == 0 {
		c.Cache.MaxEntries = 100000
	}
	c.Auth.Defaults()
	c.Stream.Defaults()
	c.Audit.Defaults()
	c.Limits.Defaults()
	c.Connections.Defaults()
	c.Admin.Defaults()
	c.Platform.Defaults()
	for i := range c.Sources {
		c.Sources[i].Defaults()
	}
}

// Validate returns every problem in c, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: unknown level: want debug, info, warn or error")
	}
	for k, d := range map[string]time.Duration{
		"server.read_header_timeout": c.Server.ReadHeaderTimeout,
		"server.idle_timeout":        c.Server.IdleTimeout,
		"server.write_timeout":       c.Server.WriteTimeout,
		"server.shutdown_timeout":    c.Server.ShutdownTimeout,
		"server.request_timeout":     c.Server.RequestTimeout,
	} {
		if d < 0 {
			bad("%s: must not be negative", k)
		}
	}
	errs = append(errs, clientip.Validate("server.trusted_proxies", c.Server.TrustedProxies)...)
	for i, o := range c.CORS.AllowedOrigins {
		if _, err := parseOriginPattern(o); err != nil {
			bad("cors.allowed_origins[%d]: %v", i, err)
		}
	}
	if c.CORS.MaxAge < 0 || c.CORS.MaxAge > 24*time.Hour {
		bad("cors.max_age: must be between 0 and 24h")
	}
	if c.Cache.MaxEntries < 1 || c.Cache.MaxEntries > maxCacheEntries {
		bad("cache.max_entries: must be between 1 and 10000000")
	}
	errs = append(errs, c.Auth.Validate()...)
	errs = append(errs, c.Stream.Validate()...)
	errs = append(errs, c.Audit.Validate("audit")...)
	errs = append(errs, c.Limits.Validate("limits")...)
	errs = append(errs, c.Connections.Validate("connections")...)
	errs = append(errs, c.Admin.Validate("admin")...)
	errs = append(errs, c.Platform.Validate("platform")...)
	if len(c.Sources) == 0 && !c.Connections.Enabled() {
		bad("sources: at least one source is required (or a connections store)")
	}
	names := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		key := fmt.Sprintf("sources[%d]", i)
		if source.ValidName(s.Name) && names[s.Name] {
			bad("%s.name: duplicate source name (sources[%d] has it too)", key, firstIndex(c.Sources, s.Name))
		}
		names[s.Name] = true
		errs = append(errs, s.Validate(key)...)
	}
	return errors.Join(errs...)
}

func firstIndex(srcs []source.Config, name string) int {
	for i := range srcs {
		if srcs[i].Name == name {
			return i
		}
	}
	return -1
}

// LoadConfig reads, expands, decodes, defaults and validates a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data, os.LookupEnv)
}

// ParseConfig decodes a YAML config. ${VAR} and ${VAR:-default} in string
// values expand from lookup; expansion happens after parsing, so a secret
// holding YAML syntax cannot change the document's structure. Unknown keys
// are refused; every problem is reported at once, named by key, never
// quoting a value (internal/yamlcfg, shared with source.ParseSpec).
func ParseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	cfg := new(Config)
	errs := yamlcfg.Decode(data, "", lookup, cfg)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config has problems:\n%w", errors.Join(errs...))
	}
	return cfg, nil
}

// maxCacheEntries bounds cache.max_entries: ~5.5 GB of heap at ~550
// bytes per URL, and well inside the cache's int32 node index.
const maxCacheEntries = 10_000_000
