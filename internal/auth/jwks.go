package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// jwksMaxBytes bounds a JWKS document.
const jwksMaxBytes = 1 << 20

// jwks holds the keys of a JWKS URL, fetched at start, refreshed
// periodically and when a token names an unknown kid (at most once per
// minInterval, so a flood of made-up kids cannot hammer the issuer).
type jwks struct {
	url         string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration

	mu        sync.RWMutex
	keys      map[string]key
	lastFetch time.Time
	lastErr   error
	flight    singleflight.Group
}

func newJWKS(rawURL string, now func() time.Time) *jwks {
	return &jwks{
		url:         rawURL,
		client:      &http.Client{Timeout: 5 * time.Second},
		now:         now,
		minInterval: 30 * time.Second,
		keys:        map[string]key{},
	}
}

// validateJWKSURL insists on https, but for loopback hosts in development.
func validateJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("want an absolute https URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return errors.New("want https (http only on loopback)")
}

// lookup returns the key for kid, refreshing the set once if kid is unknown.
func (j *jwks) lookup(ctx context.Context, kid string) (key, bool) {
	j.mu.RLock()
	k, ok := j.keys[kid]
	fresh := j.now().Sub(j.lastFetch) < j.minInterval
	j.mu.RUnlock()
	if ok || fresh {
		return k, ok
	}
	j.refresh(ctx)
	j.mu.RLock()
	defer j.mu.RUnlock()
	k, ok = j.keys[kid]
	return k, ok
}

// refresh fetches the set once for all concurrent callers. A failed fetch
// keeps the keys already known.
func (j *jwks) refresh(ctx context.Context) error {
	_, err, _ := j.flight.Do("", func() (any, error) {
		keys, err := j.fetch(ctx)
		j.mu.Lock()
		defer j.mu.Unlock()
		j.lastFetch = j.now()
		j.lastErr = err
		if err == nil {
			j.keys = keys
		}
		return nil, err
	})
	return err
}

func (j *jwks) fetch(ctx context.Context) (map[string]key, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: %s answered %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if len(body) > jwksMaxBytes {
		return nil, errors.New("jwks: document larger than 1 MiB")
	}
	return ParseJWKS(body)
}

// ParseJWKS reads a JWK Set (RFC 7517) and returns its usable signature
// keys by kid: RSA (RS256, 2048 bits or more), EC P-256 (ES256) and OKP
// Ed25519 (EdDSA). Keys without kid, for encryption, or of other kinds
// are skipped; a malformed document is an error.
func ParseJWKS(data []byte) (map[string]key, error) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			Crv string `json:"crv"`
			N   string `json:"n"`
			E   string `json:"e"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("jwks: no \"keys\" array")
	}
	out := map[string]key{}
	b64 := base64.RawURLEncoding
	for _, k := range doc.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		var alg string
		var pub any
		switch k.Kty {
		case "RSA":
			n, err1 := b64.DecodeString(k.N)
			e, err2 := b64.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
				continue
			}
			p := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
			if p.N.BitLen() < 2048 || p.E < 3 || p.E%2 == 0 {
				continue
			}
			alg, pub = "RS256", p
		case "EC":
			if k.Crv != "P-256" {
				continue
			}
			x, err1 := b64.DecodeString(k.X)
			y, err2 := b64.DecodeString(k.Y)
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				continue
			}
			raw := append(append([]byte{4}, x...), y...)
			p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
			if err != nil {
				continue
			}
			alg, pub = "ES256", p
		case "OKP":
			x, err := b64.DecodeString(k.X)
			if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
				continue
			}
			alg, pub = "EdDSA", ed25519.PublicKey(x)
		default:
			continue
		}
		if k.Alg != "" && k.Alg != alg {
			continue // pinned to an algorithm this key kind cannot verify here
		}
		out[k.Kid] = key{id: k.Kid, alg: alg, key: pub}
	}
	return out, nil
}
