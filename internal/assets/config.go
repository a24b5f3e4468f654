package assets

import (
	"errors"
	"runtime"
)

// Config bounds the checker. The yaml keys sit under the key the caller
// passes to Validate (e.g. "sync.check").
type Config struct {
	// MaxConcurrent is how many objects Stream checks at once.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxBytes is the most bytes read from one object, all ranges together.
	// An object whose metadata needs more is reported unreadable, never read further.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxMoovSize is the largest moov box decoded; a bigger one is unreadable.
	MaxMoovSize int64 `yaml:"max_moov_size"`
	// HeadSize is the first read of every object (sniffing, image headers,
	// the leading MP4 boxes); image reads grow from it only when needed.
	HeadSize int64 `yaml:"head_size"`
	// MaxBoxes bounds the top-level MP4 boxes walked (fragmented files have
	// one moof and one mdat per fragment).
	MaxBoxes int `yaml:"max_boxes"`
}

// Defaults returns the defaults: 4 checks at once per core (the work is
// mostly waiting on the store), 64 MiB per object and per moov, a 16 KiB head.
func Defaults() Config {
	return Config{
		MaxConcurrent: 4 * runtime.GOMAXPROCS(0),
		MaxBytes:      64 << 20,
		MaxMoovSize:   64 << 20,
		HeadSize:      16 << 10,
		MaxBoxes:      100000,
	}
}

// Validate reports every problem, each naming the full key, never a value.
func (c Config) Validate(key string) []error {
	if key != "" {
		key += "."
	}
	var errs []error
	if c.MaxConcurrent < 1 {
		errs = append(errs, errors.New(key+"max_concurrent: must be at least 1"))
	}
	if c.MaxBytes < 4096 {
		errs = append(errs, errors.New(key+"max_bytes: must be at least 4KiB"))
	}
	if c.MaxMoovSize < 8 {
		errs = append(errs, errors.New(key+"max_moov_size: must be positive"))
	}
	if c.HeadSize < 512 {
		errs = append(errs, errors.New(key+"head_size: must be at least 512 bytes"))
	} else if c.MaxBytes >= 4096 && c.HeadSize > c.MaxBytes {
		errs = append(errs, errors.New(key+"head_size: must not exceed max_bytes"))
	}
	if c.MaxBoxes < 2 {
		errs = append(errs, errors.New(key+"max_boxes: must be at least 2"))
	}
	return errs
}
