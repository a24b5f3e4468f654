// Package stream fetches objects from storage and copies them to the
// client (mode stream): Range and conditional requests passed through,
// pooled buffers, bounded memory, bounded waits.
package stream

import (
	"fmt"
	"time"
)

// Config is the stream section of the edge's config.
type Config struct {
	// MaxConcurrent bounds the streams in flight; past it: 503 too_busy.
	MaxConcurrent int `yaml:"max_concurrent"`
	// ConnectTimeout bounds dialing storage (unreachable: 502).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseHeaderTimeout bounds the wait for storage's answer (504), and
	// then every wait for the next chunk of the body: storage that goes
	// silent mid-body gets the stream aborted after this long, never a hang.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleConnsPerHost is how many idle connections to each storage host are kept.
	IdleConnsPerHost int `yaml:"idle_conns_per_host"`
	// BufferSize is the size of each pooled copy buffer: the most one
	// stream holds of an object at any time.
	BufferSize int `yaml:"buffer_size"`
}

// Defaults fills what the operator left out.
func (c *Config) Defaults() {
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 1024
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = 15 * time.Second
	}
	if c.IdleConnsPerHost == 0 {
		c.IdleConnsPerHost = 64
	}
	if c.BufferSize == 0 {
		c.BufferSize = 256 << 10
	}
}

// Validate returns every problem with c, each naming its key.
func (c *Config) Validate() []error {
	var errs []error
	if c.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("stream.max_concurrent: must be at least 1, got %d", c.MaxConcurrent))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("stream.connect_timeout: must be positive, got %s", c.ConnectTimeout))
	}
	if c.ResponseHeaderTimeout <= 0 {
		errs = append(errs, fmt.Errorf("stream.response_header_timeout: must be positive, got %s", c.ResponseHeaderTimeout))
	}
	if c.IdleConnsPerHost < 0 {
		errs = append(errs, fmt.Errorf("stream.idle_conns_per_host: must not be negative"))
	}
	if c.BufferSize < 4<<10 || c.BufferSize > 4<<20 {
		errs = append(errs, fmt.Errorf("stream.buffer_size: must be between 4KiB and 4MiB, got %d", c.BufferSize))
	}
	return errs
}
