// Package auth extracts annotator tokens from requests, verifies them
// against the configured keys (each pinned to one algorithm) and checks
// their grants.
package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Config is the auth section of the edge's config.
type Config struct {
	Issuer   string        `yaml:"issuer"`   // checked when set
	Audience string        `yaml:"audience"` // checked when set
	Leeway   time.Duration `yaml:"leeway"`   // allowed clock skew for exp, nbf, iat
	Keys     []KeyConfig   `yaml:"keys"`
	JWKSURL  string        `yaml:"jwks_url"`
	// CacheEntries bounds the verified-token cache.
	CacheEntries int `yaml:"cache_entries"`
}

// KeyConfig is one verification key, pinned to one algorithm.
type KeyConfig struct {
	ID            string `yaml:"id"`              // matched against the token's kid when it has one
	Alg           string `yaml:"alg"`             // HS256 | RS256 | ES256 | EdDSA
	Secret        string `yaml:"secret"`          // HS256
	PublicKey     string `yaml:"public_key"`      // PEM, inline
	PublicKeyFile string `yaml:"public_key_file"` // PEM, from a file
}

// MinSecretLen is the shortest HS256 secret accepted: RFC 7518 section 3.2
// asks for a key at least as long as the hash output.
const MinSecretLen = 32

// Defaults fills what the operator left out.
func (c *Config) Defaults() {
	if c.Leeway == 0 {
		c.Leeway = 30 * time.Second
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = 10000
	}
}

// Validate returns every problem with c, each naming its key.
func (c *Config) Validate() []error {
	var errs []error
	if len(c.Keys) == 0 && c.JWKSURL == "" {
		errs = append(errs, errors.New("auth.keys: at least one key (or auth.jwks_url) is required"))
	}
	if c.JWKSURL != "" {
		if err := validateJWKSURL(c.JWKSURL); err != nil {
			errs = append(errs, fmt.Errorf("auth.jwks_url: %w", err))
		}
	}
	if c.Leeway < 0 || c.Leeway > 5*time.Minute {
		errs = append(errs, errors.New("auth.leeway: must be between 0 and 5m"))
	}
	if c.CacheEntries < 0 {
		errs = append(errs, fmt.Errorf("auth.cache_entries: must not be negative"))
	}
	ids := map[string]bool{}
	for i, k := range c.Keys {
		if k.ID != "" {
			if ids[k.ID] {
				errs = append(errs, fmt.Errorf("auth.keys[%d].id: duplicate id", i))
			}
			ids[k.ID] = true
		}
		if _, err := k.load(); err != nil {
			errs = append(errs, fmt.Errorf("auth.keys[%d]: %w", i, err))
		}
	}
	return errs
}

// load parses the key material and checks it fits the algorithm.
func (k KeyConfig) load() (any, error) {
	switch k.Alg {
	case "HS256":
		if k.PublicKey != "" || k.PublicKeyFile != "" {
			return nil, errors.New("HS256 takes a secret, not a public key")
		}
		if len(k.Secret) < MinSecretLen {
			return nil, fmt.Errorf("HS256 secret must be at least %d bytes", MinSecretLen)
		}
		return []byte(k.Secret), nil
	case "RS256", "ES256", "EdDSA":
	case "":
		return nil, errors.New("alg: required (HS256, RS256, ES256 or EdDSA)")
	default:
		return nil, errors.New("alg: not accepted (want HS256, RS256, ES256 or EdDSA)")
	}
	if k.Secret != "" {
		return nil, fmt.Errorf("%s takes a public key, not a secret", k.Alg)
	}
	data := []byte(k.PublicKey)
	switch {
	case k.PublicKey != "" && k.PublicKeyFile != "":
		return nil, errors.New("give public_key or public_key_file, not both")
	case k.PublicKeyFile != "":
		var err error
		if data, err = os.ReadFile(k.PublicKeyFile); err != nil {
			// The cause without the path: the path is the operator's
			// value, and messages name keys, never values.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("public_key_file: %w", err)
		}
	case k.PublicKey == "":
		return nil, fmt.Errorf("%s needs public_key or public_key_file", k.Alg)
	}
	pub, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, err
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if k.Alg != "RS256" {
			return nil, fmt.Errorf("an RSA key cannot verify %s", k.Alg)
		}
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key has %d bits, want at least 2048", p.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Alg != "ES256" || p.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("an ECDSA %s key cannot verify %s (ES256 needs P-256)", p.Curve.Params().Name, k.Alg)
		}
	case ed25519.PublicKey:
		if k.Alg != "EdDSA" {
			return nil, fmt.Errorf("an Ed25519 key cannot verify %s", k.Alg)
		}
	default:
		return nil, fmt.Errorf("unsupported public key type %T", pub)
	}
	return pub, nil
}

// ParsePublicKeyPEM reads a PKIX ("PUBLIC KEY") or PKCS#1 ("RSA PUBLIC KEY")
// PEM block, or the public half of a certificate.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found in public key")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
}
