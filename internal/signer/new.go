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
		return asSigner(NewS3(ctx, cfg, opts.S3))
	case ProviderGCS:
		if cfg.Credentials.Type == "hmac" {
			// GCS interop: SigV4 against storage.googleapis.com.
			return asSigner(NewS3(ctx, cfg, opts.S3))
		}
		return asSigner(NewGCS(cfg, GCSOptions{}))
	case ProviderAzure:
		return asSigner(NewAzure(cfg))
	case ProviderFile:
		return asSigner(NewFile(cfg, opts.File))
	}
	return nil, fmt.Errorf("unknown provider %q", cfg.Provider)
}

// asSigner keeps a failed constructor's typed nil out of the interface.
func asSigner[S Signer](s S, err error) (Signer, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
