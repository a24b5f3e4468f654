package signer

import (
	"context"
	"fmt"
	"time"
)

// Options carry what constructing a signer needs from outside its config.
type Options struct {
	// Now is the clock every signer judges expiry and credential freshness
	// by; it must be the clock the caller takes Request.At from (nil =
	// time.Now). One clock: a signer never compares the caller's signing
	// time with a wall clock of its own.
	Now  func() time.Time
	S3   S3Options
	File FileOptions
}

// New builds the signer of one source for its provider. cfg must have
// passed Config.Validate: constructors do not check it again.
func New(ctx context.Context, cfg Config, opts Options) (Signer, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s3opts := opts.S3
	s3opts.Now = opts.Now
	switch cfg.Provider {
	case ProviderS3:
		return asSigner(NewS3(ctx, cfg, s3opts))
	case ProviderGCS:
		if cfg.Credentials.Type == "hmac" {
			// GCS interop: SigV4 against storage.googleapis.com.
			return asSigner(NewS3(ctx, cfg, s3opts))
		}
		return asSigner(NewGCS(cfg))
	case ProviderAzure:
		return asSigner(NewAzure(cfg, opts.Now))
	case ProviderFile:
		return asSigner(NewFile(cfg, opts.File))
	}
	return nil, fmt.Errorf("provider: unknown provider")
}

// asSigner keeps a failed constructor's typed nil out of the interface.
func asSigner[S Signer](s S, err error) (Signer, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
