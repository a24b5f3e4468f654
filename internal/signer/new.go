package signer

import (
	"context"
	"fmt"
)

// Options carry what constructing a signer needs from outside its config.
type Options struct {
	S3   S3Options
	File FileOptions
}

// New builds the signer of one source for its provider.
func New(ctx context.Context, cfg Config, opts Options) (Signer, error) {
	switch cfg.Provider {
	case ProviderS3:
		return NewS3(ctx, cfg, opts.S3)
	case ProviderGCS:
		if cfg.Credentials.Type == "hmac" {
			return NewS3(ctx, cfg, opts.S3)
		}
		return NewGCS(cfg, GCSOptions{})
	case ProviderAzure:
		return nil, fmt.Errorf("provider azure: not built yet")
	case ProviderFile:
		return NewFile(cfg, opts.File)
	}
	return nil, fmt.Errorf("unknown provider %q", cfg.Provider)
}
