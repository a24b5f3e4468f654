package edge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/stream"
	"go.yaml.in/yaml/v3"
)

// Config is the whole config file. Each package owns its section; this
// struct only aggregates them.
type Config struct {
	Listen  string         `yaml:"listen"`
	Log     LogConfig      `yaml:"log"`
	Server  ServerConfig   `yaml:"server"`
	Auth    auth.Config    `yaml:"auth"`
	CORS    CORSConfig     `yaml:"cors"`
	Cache   CacheConfig    `yaml:"cache"`
	Stream  stream.Config  `yaml:"stream"`
	Sources []SourceConfig `yaml:"sources"`
}

// LogConfig sets the JSON logger on stderr.
type LogConfig struct {
	Level string `yaml:"level"` // debug | info | warn | error
	// Unbuffered writes every line at once instead of buffering up to a
	// second (for tailing the log in tests).
	Unbuffered bool `yaml:"unbuffered"`
}

// ServerConfig holds the HTTP server's timeouts.
type ServerConfig struct {
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

// Modes.
const (
	ModeRedirect = "redirect"
	ModeStream   = "stream"
)

// SourceConfig is one configured source: the storage half from the
// signer package and the HTTP half here.
type SourceConfig struct {
	Name          string `yaml:"name"`
	signer.Config `yaml:",inline"`
	Prefix        string        `yaml:"prefix"`
	Mode          string        `yaml:"mode"`
	URLTTL        time.Duration `yaml:"url_ttl"`
	// SigningWindow is how long one signing time is reused (default half
	// of url_ttl): within it the same object gets the same URL.
	SigningWindow time.Duration `yaml:"signing_window"`
}

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
	for i := range c.Sources {
		src := &c.Sources[i]
		src.Config.Defaults()
		if src.Mode == "" {
			src.Mode = ModeRedirect
		}
		if src.URLTTL == 0 {
			src.URLTTL = time.Hour
		}
		if src.SigningWindow == 0 {
			// At least 1s, which Validate asks of every window: url_ttl 1s
			// is allowed.
			src.SigningWindow = max(src.URLTTL/2, time.Second)
		}
	}
}

var sourceName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// Validate returns every problem in c, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: unknown level %q: want debug, info, warn or error", c.Log.Level)
	}
	for k, d := range map[string]time.Duration{
		"server.read_header_timeout": c.Server.ReadHeaderTimeout,
		"server.idle_timeout":        c.Server.IdleTimeout,
		"server.write_timeout":       c.Server.WriteTimeout,
		"server.shutdown_timeout":    c.Server.ShutdownTimeout,
	} {
		if d < 0 {
			bad("%s: must not be negative", k)
		}
	}
	for i, o := range c.CORS.AllowedOrigins {
		if _, err := parseOriginPattern(o); err != nil {
			bad("cors.allowed_origins[%d]: %v", i, err)
		}
	}
	if c.CORS.MaxAge < 0 || c.CORS.MaxAge > 24*time.Hour {
		bad("cors.max_age: must be between 0 and 24h")
	}
	if c.Cache.MaxEntries < 1 {
		bad("cache.max_entries: must be at least 1, got %d", c.Cache.MaxEntries)
	}
	errs = append(errs, c.Auth.Validate()...)
	errs = append(errs, c.Stream.Validate()...)
	if len(c.Sources) == 0 {
		bad("sources: at least one source is required")
	}
	names := map[string]bool{}
	for i := range c.Sources {
		s := &c.Sources[i]
		key := fmt.Sprintf("sources[%d]", i)
		if !sourceName.MatchString(s.Name) {
			bad("%s.name: %q must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", key, s.Name)
		} else if names[s.Name] {
			bad("%s.name: duplicate source name %q", key, s.Name)
		}
		names[s.Name] = true
		errs = append(errs, s.Config.Validate(key)...)
		switch s.Mode {
		case ModeRedirect:
			if s.SSECKey != "" {
				bad("%s.mode: a source with sse_c_key must use mode stream: a browser cannot send the key", key)
			}
		case ModeStream:
		default:
			bad("%s.mode: unknown mode %q: want redirect or stream", key, s.Mode)
		}
		if s.URLTTL < time.Second || s.URLTTL > signer.MaxTTL {
			bad("%s.url_ttl: must be between 1s and 7 days (168h), got %s", key, s.URLTTL)
		}
		if s.SigningWindow < time.Second || s.SigningWindow > s.URLTTL/2 && s.URLTTL >= 2*time.Second {
			bad("%s.signing_window: must be between 1s and half of url_ttl, got %s", key, s.SigningWindow)
		}
		if strings.HasPrefix(s.Prefix, "/") {
			bad("%s.prefix: must not start with '/'", key)
		}
		if s.Prefix != "" && !strings.HasSuffix(s.Prefix, "/") {
			// "images" + "cats/1.jpg" would name "imagescats/1.jpg".
			bad("%s.prefix: must end with '/' (a folder), got %q", key, s.Prefix)
		}
		if err := validateKey(s.Prefix); err != nil && s.Prefix != "" {
			bad("%s.prefix: %v", key, err)
		}
	}
	return errors.Join(errs...)
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
// are refused; every problem is reported at once.
func ParseConfig(data []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var errs []error
	expandNode(&root, "", lookup, &errs)
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg := new(Config)
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			keys := keyPaths(expanded)
			for _, e := range te.Errors {
				errs = append(errs, errors.New(unknownKey(e, keys)))
			}
		} else {
			errs = append(errs, err)
		}
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config has problems:\n%w", errors.Join(errs...))
	}
	return cfg, nil
}

// stripLine drops yaml's "line N: " prefix: lines refer to the expanded
// document, the messages name the field.
func stripLine(s string) string {
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if i := strings.Index(rest, ": "); i > 0 {
			if _, err := strconv.Atoi(rest[:i]); err == nil {
				return rest[i+2:]
			}
		}
	}
	return s
}

// lineKey is a mapping key by its line in the expanded document.
type lineKey struct {
	line int
	name string
}

// keyPaths maps every mapping key of doc to its full path
// (sources[1].bukket), for naming unknown keys.
func keyPaths(doc []byte) map[lineKey]string {
	var root yaml.Node
	paths := map[lineKey]string{}
	if yaml.Unmarshal(doc, &root) != nil {
		return paths
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if path != "" {
					k = path + "." + k
				}
				paths[lineKey{n.Content[i].Line, n.Content[i].Value}] = k
				walk(n.Content[i+1], k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&root, "")
	return paths
}

// unknownKey rewrites yaml's "line N: field X not found in type T" as
// "PATH: unknown key": line numbers refer to the expanded document, the
// path names the key in the operator's file. Other messages lose their
// line prefix.
func unknownKey(msg string, paths map[lineKey]string) string {
	var line int
	var name string
	if _, err := fmt.Sscanf(msg, "line %d: field %s not found in type", &line, &name); err == nil {
		if p, ok := paths[lineKey{line, name}]; ok {
			return p + ": unknown key"
		}
	}
	return stripLine(msg)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// expandNode expands ${VAR} in every scalar value, recording an error,
// named by key, for each unset variable without a default.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), errs *[]error) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandNode(c, path, lookup, errs)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if path != "" {
				k = path + "." + k
			}
			expandNode(n.Content[i+1], k, lookup, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandNode(c, fmt.Sprintf("%s[%d]", path, i), lookup, errs)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := envRef.FindStringSubmatch(m)
			if v, ok := lookup(sub[1]); ok && v != "" {
				return v
			}
			if sub[2] != "" {
				return sub[2][2:]
			}
			*errs = append(*errs, fmt.Errorf("%s: environment variable %s is not set", path, sub[1]))
			return ""
		})
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			n.Tag = "" // a plain scalar is resolved again after expansion
		}
	}
}
