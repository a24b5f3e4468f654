package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	tokenIssuer   = "https://bench.edge.invalid"
	tokenAudience = "edge"
	hsKeyID       = "hs"
	esKeyID       = "es"
)

// grant is one entry of the token's grants claim.
type grant struct {
	Source string `json:"source"`
	Prefix string `json:"prefix"`
}

// benchClaims are the claims every bench token carries.
type benchClaims struct {
	jwt.RegisteredClaims
	Grants []grant `json:"grants"`
}

func claimsFor(sub string, ttl time.Duration, grants []grant) benchClaims {
	now := time.Now()
	return benchClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Audience:  jwt.ClaimStrings{tokenAudience},
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Grants: grants,
	}
}

// mintHS256 signs a token with the shared secret, for when the edge binary
// (whose `edge token` is preferred) is not there.
func mintHS256(secret []byte, sub string, ttl time.Duration, grants []grant) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsFor(sub, ttl, grants))
	t.Header["kid"] = hsKeyID
	return t.SignedString(secret)
}

// esKey is the bench's ES256 signing key; the edge gets its public half.
type esKey struct {
	priv *ecdsa.PrivateKey
}

func newESKey() (*esKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &esKey{priv: k}, nil
}

func (k *esKey) writePublicPEM(path string) error {
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// mint signs n distinct ES256 tokens (distinct subjects), on every core.
func (k *esKey) mint(n int, tag string, ttl time.Duration, grants []grant) ([]string, error) {
	out := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				t := jwt.NewWithClaims(jwt.SigningMethodES256, claimsFor("bench-"+tag+"-"+strconv.Itoa(i), ttl, grants))
				t.Header["kid"] = esKeyID
				s, err := t.SignedString(k.priv)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("mint ES256: %w", err)
					}
					mu.Unlock()
					return
				}
				out[i] = s
			}
		}(w)
	}
	wg.Wait()
	return out, firstErr
}
