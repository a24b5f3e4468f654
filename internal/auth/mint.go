package auth

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintOptions describe a token for Mint.
type MintOptions struct {
	Subject  string
	Grants   []Grant
	TTL      time.Duration
	Now      time.Time
	Issuer   string
	Audience string
}

// Mint signs an HS256 token with the first HS256 key of cfg, filling iss
// and aud from cfg so the edge's own checks pass. It is for development,
// tests, scripts and the demo; production tokens come from the platform.
func Mint(cfg Config, o MintOptions) (string, error) {
	for _, k := range cfg.Keys {
		if k.Alg != "HS256" {
			continue
		}
		if len(k.Secret) < MinSecretLen {
			return "", errors.New("the HS256 secret is too short")
		}
		if o.TTL <= 0 {
			return "", errors.New("ttl must be positive")
		}
		now := o.Now
		if now.IsZero() {
			now = time.Now()
		}
		c := Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer:    cfg.Issuer,
				Subject:   o.Subject,
				IssuedAt:  jwt.NewNumericDate(now),
				ExpiresAt: jwt.NewNumericDate(now.Add(o.TTL)),
			},
			Grants: o.Grants,
		}
		if o.Issuer != "" {
			c.Issuer = o.Issuer
		}
		aud := cfg.Audience
		if o.Audience != "" {
			aud = o.Audience
		}
		if aud != "" {
			c.Audience = jwt.ClaimStrings{aud}
		}
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		if k.ID != "" {
			t.Header["kid"] = k.ID
		}
		return t.SignedString([]byte(k.Secret))
	}
	return "", errors.New("auth.keys has no HS256 key to sign with")
}
