package limit

import (
	"fmt"
	"math"
	"net/url"

	"github.com/edgeproxy/edge/internal/bytesize"
	"github.com/redis/go-redis/v9"
)

// Config is the limits section of the edge's config.
type Config struct {
	PerSubject PerSubject `yaml:"per_subject"`
	// Redis, when set, is a redis:// or rediss:// URL
	// (redis://[:PASSWORD@]HOST:PORT/DB): the request budget of each
	// subject is then kept in Redis (GCRA), one budget across every replica
	// that shares it. When Redis cannot be reached each replica falls back
	// to its own local budget (so the fleet allows up to N times the rate
	// for as long) and tries Redis again every second. The password is
	// never logged.
	Redis string `yaml:"redis"`
}

// PerSubject is the budget of each token subject (the JWT's sub).
type PerSubject struct {
	// Rate is object requests per second (fractions allowed: 0.5 is one
	// every two seconds); 0 means no request limit. Past it: 429
	// rate_limited with Retry-After.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests may come at once after a quiet spell
	// (default: Rate rounded up, at least 1).
	Burst int `yaml:"burst"`
	// BytesPerSecond caps what one subject is sent in stream mode, all its
	// streams together, per replica ("10MiB"); 0 means no cap. A stream past
	// it is slowed, never cut.
	BytesPerSecond bytesize.Size `yaml:"bytes_per_second"`
	// BytesBurst is how much may go out at once (default: one second's
	// worth, at least 64KiB).
	BytesBurst bytesize.Size `yaml:"bytes_burst"`
}

// Defaults fills what the operator left out.
func (c *Config) Defaults() {
	p := &c.PerSubject
	if p.Rate > 0 && p.Burst == 0 {
		p.Burst = max(1, int(math.Ceil(p.Rate)))
	}
	if p.BytesPerSecond > 0 && p.BytesBurst == 0 {
		p.BytesBurst = max(p.BytesPerSecond, 64*bytesize.KiB)
	}
}

// Enabled reports whether any limit is set.
func (c *Config) Enabled() bool { return c.PerSubject.Rate > 0 || c.PerSubject.BytesPerSecond > 0 }

// Validate returns every problem in c, each naming its key under key
// ("limits"); no message echoes a value (the Redis URL holds a password).
func (c *Config) Validate(key string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fmt.Errorf("%s.%s: %s", key, field, msg)) }
	p := &c.PerSubject
	if math.IsNaN(p.Rate) || p.Rate < 0 || p.Rate > 1e6 {
		bad("per_subject.rate", "must be between 0 (no limit) and 1000000 requests per second")
	}
	if p.Rate > 0 && (p.Burst < 1 || p.Burst > 10_000_000) {
		bad("per_subject.burst", "must be between 1 and 10000000")
	}
	if p.Rate == 0 && p.Burst != 0 {
		bad("per_subject.burst", "needs per_subject.rate")
	}
	switch {
	case p.BytesPerSecond == bytesize.Invalid:
		bad("per_subject.bytes_per_second", "must be a size such as 10MiB")
	case p.BytesPerSecond < 0 || p.BytesPerSecond > 0 && p.BytesPerSecond < bytesize.KiB:
		bad("per_subject.bytes_per_second", "must be 0 (no limit) or at least 1KiB")
	}
	switch {
	case p.BytesBurst == bytesize.Invalid:
		bad("per_subject.bytes_burst", "must be a size such as 1MiB")
	case p.BytesBurst < 0 || p.BytesBurst > bytesize.GiB:
		bad("per_subject.bytes_burst", "must be between 0 and 1GiB")
	case p.BytesBurst > 0 && p.BytesBurst < 4*bytesize.KiB:
		bad("per_subject.bytes_burst", "must be at least 4KiB")
	case p.BytesBurst > 0 && p.BytesPerSecond == 0:
		bad("per_subject.bytes_burst", "needs per_subject.bytes_per_second")
	}
	if c.Redis != "" {
		if msg := checkRedisURL(c.Redis); msg != "" {
			bad("redis", msg)
		} else if p.Rate == 0 {
			bad("redis", "needs per_subject.rate: Redis keeps the request budget")
		}
	}
	return errs
}

// checkRedisURL never returns the parser's error text, which may quote
// the URL.
func checkRedisURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return "must be a URL such as redis://:PASSWORD@HOST:6379/0 (or rediss:// for TLS)"
	}
	if _, err := redis.ParseURL(s); err != nil {
		return "is not a valid Redis URL (redis://[USER:PASSWORD@]HOST:PORT/DB)"
	}
	return ""
}
