package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgeproxy/edge/internal/cache"
	"github.com/golang-jwt/jwt/v5"
)

// Grant gives access to the keys of one source that start with Prefix.
// Prefix is relative to the source's configured prefix; empty covers all.
type Grant struct {
	Source string `json:"source"`
	Prefix string `json:"prefix"`
}

// Claims are the claims the edge reads from a token.
type Claims struct {
	jwt.RegisteredClaims
	Grants []Grant `json:"grants"`
}

// Allows reports whether some grant covers the key of source.
func (c *Claims) Allows(source, key string) bool {
	for i := range c.Grants {
		g := &c.Grants[i]
		if g.Source == source && len(key) >= len(g.Prefix) && key[:len(g.Prefix)] == g.Prefix {
			return true
		}
	}
	return false
}

// Error is a token refusal with a stable public code.
type Error struct {
	Code    string // token_missing, token_expired, ...
	Message string
	Err     error // the cause, for logs only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ErrMissing is returned when a request carries no token.
var ErrMissing = &Error{Code: "token_missing", Message: "a token is required (query token, Authorization: Bearer, or cookie edge_token)"}

var (
	errUnknownKID  = errors.New("no configured key has this kid")
	errAlgorithm   = errors.New("algorithm not accepted for any configured key")
	errKIDAlgMatch = errors.New("the key with this kid is pinned to another algorithm")
)

type key struct {
	id  string
	alg string
	key any
}

// Verifier checks tokens against the configured keys and remembers the
// ones it verified until they expire, so a page of 200 thumbnails costs one
// signature check.
type Verifier struct {
	parser *jwt.Parser
	byAlg  map[string]jwt.VerificationKeySet
	anon   map[string]jwt.VerificationKeySet // keys configured without an id
	byID   map[string]key
	cache  *cache.Expiring[string, *Claims]
	now    func() time.Time
	issuer string // required when set
	jwks   *jwks  // nil without auth.jwks_url
}

// NewVerifier builds a Verifier from a validated config. now is the clock.
func NewVerifier(cfg Config, now func() time.Time) (*Verifier, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	v := &Verifier{
		byAlg:  map[string]jwt.VerificationKeySet{},
		anon:   map[string]jwt.VerificationKeySet{},
		byID:   map[string]key{},
		now:    now,
		issuer: cfg.Issuer,
	}
	var algs []string
	for _, kc := range cfg.Keys {
		k, err := kc.load()
		if err != nil {
			return nil, err
		}
		if kc.ID != "" {
			v.byID[kc.ID] = key{id: kc.ID, alg: kc.Alg, key: k}
		} else {
			a := v.anon[kc.Alg]
			a.Keys = append(a.Keys, k)
			v.anon[kc.Alg] = a
		}
		set, seen := v.byAlg[kc.Alg]
		if !seen {
			algs = append(algs, kc.Alg)
		}
		set.Keys = append(set.Keys, k)
		v.byAlg[kc.Alg] = set
	}
	if cfg.JWKSURL != "" {
		v.jwks = newJWKS(cfg.JWKSURL, now)
		for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
			if _, seen := v.byAlg[alg]; !seen {
				algs = append(algs, alg)
			}
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(now),
		// RFC 7515 section 2 encodes segments as unpadded base64url; a
		// lenient decoder also accepts a last character with stray low
		// bits, so one signed token would have several spellings that
		// all verify (and each take a cache entry).
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	if cfg.CacheEntries > 0 {
		c, err := cache.NewExpiring[string, *Claims](cfg.CacheEntries)
		if err != nil {
			return nil, err
		}
		v.cache = c
	}
	return v, nil
}

// keyFunc returns the keys that may verify t: the key named by its kid, or
// every key pinned to its algorithm (several, while keys rotate).
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if kid, ok := t.Header["kid"].(string); ok && kid != "" {
		k, ok := v.byID[kid]
		if !ok && v.jwks != nil {
			k, ok = v.jwks.lookup(context.Background(), kid)
		}
		if !ok && v.anon[alg].Keys != nil {
			// Many JWT libraries set a kid whatever the verifier knows:
			// a kid no key is named by falls back to the keys of its
			// algorithm configured without an id (so adding a named key
			// during a rotation does not refuse the unnamed one's tokens).
			set := v.anon[alg]
			if len(set.Keys) == 1 {
				return set.Keys[0], nil
			}
			return set, nil
		}
		if !ok {
			return nil, errUnknownKID
		}
		if k.alg != alg {
			return nil, errKIDAlgMatch
		}
		return k.key, nil
	}
	return v.keysFor(alg)
}

// keysFor returns every configured key pinned to alg.
func (v *Verifier) keysFor(alg string) (any, error) {
	set, ok := v.byAlg[alg]
	if !ok {
		// JWKS keys are only found by kid.
		return nil, errAlgorithm
	}
	if len(set.Keys) == 1 {
		return set.Keys[0], nil
	}
	return set, nil
}

// accepts reports whether some configured key, or the JWKS, may verify alg.
func (v *Verifier) accepts(alg string) bool {
	if v.byAlg[alg].Keys != nil {
		return true
	}
	return v.jwks != nil && (alg == "RS256" || alg == "ES256" || alg == "EdDSA")
}

// MaxTokenLen is the longest token Verify reads: a token is a cache key and
// its claims are JSON-decoded before the signature is checked, so its size
// is bounded before any work. 16 KiB holds a couple of hundred grants.
const MaxTokenLen = 16 << 10

var errTooLong = fmt.Errorf("%w: longer than %d bytes", jwt.ErrTokenMalformed, MaxTokenLen)

// JWKSRefreshInterval is how often a JWKS URL is fetched again.
const JWKSRefreshInterval = 10 * time.Minute

// Check fetches the JWKS when it is due (never fetched, last fetch failed,
// or older than JWKSRefreshInterval) and reports whether keys are usable;
// /readyz reports its error. Without a JWKS URL it always succeeds.
func (v *Verifier) Check(ctx context.Context) error {
	if v.jwks == nil {
		return nil
	}
	v.jwks.mu.RLock()
	due := v.jwks.lastErr != nil || v.jwks.lastFetch.IsZero() || v.now().Sub(v.jwks.lastFetch) >= JWKSRefreshInterval
	v.jwks.mu.RUnlock()
	if due {
		if err := v.jwks.refresh(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Verify returns the claims of a valid token, from the cache when this
// token was verified before and has not expired.
func (v *Verifier) Verify(token string) (*Claims, bool, error) {
	if len(token) > MaxTokenLen {
		return nil, false, classify(errTooLong)
	}
	now := v.now()
	if v.cache != nil {
		if c, ok := v.cache.Get(token, now); ok {
			return c, true, nil
		}
	}
	// The header is read by jwt into a map, which keeps the last of
	// duplicated members and ignores crit: check its raw JSON first. The
	// claims are checked as they decode (Claims.UnmarshalJSON). Either
	// refusal comes before the signature is checked, and nothing refused
	// reaches the cache.
	if err := checkHeader(token); err != nil {
		return nil, false, classify(err)
	}
	c := new(Claims)
	if t, err := v.parser.ParseWithClaims(token, c, v.keyFunc); err != nil {
		// The parser refuses an alg outside WithValidMethods as a bad
		// signature, and an unknown or absent alg as unverifiable, before
		// keyFunc runs; name both for what they are.
		if t != nil && ((t.Method == nil && errors.Is(err, jwt.ErrTokenUnverifiable)) ||
			(t.Method != nil && !v.accepts(t.Method.Alg()))) {
			err = fmt.Errorf("%w: %w", errAlgorithm, err)
		}
		// jwt names a missing claim only in its text. exp is always
		// required; iss and aud only when configured, and their absence is
		// a wrong issuer or audience, not a missing exp.
		if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && c.ExpiresAt != nil {
			if v.issuer != "" && c.Issuer == "" {
				err = fmt.Errorf("%w: %w", jwt.ErrTokenInvalidIssuer, err)
			} else {
				err = fmt.Errorf("%w: %w", jwt.ErrTokenInvalidAudience, err)
			}
		}
		return nil, false, classify(err)
	}
	if v.cache != nil {
		// exp is required, so ExpiresAt is set. The entry lives until
		// exp, never past it: leeway is for clock skew, not for caching.
		// A copy: token points into the request line.
		v.cache.Add(strings.Clone(token), c, c.ExpiresAt.Time, now)
	}
	return c, false, nil
}

// classify maps a jwt error to a public code; the message never quotes the
// token.
func classify(err error) *Error {
	code, msg := "token_invalid", "the token is not valid"
	switch {
	case errors.Is(err, errUnknownKID):
		code, msg = "token_unknown_key", "the token's kid names no configured key"
	case errors.Is(err, errAlgorithm), errors.Is(err, errKIDAlgMatch):
		code, msg = "token_bad_algorithm", "the token's algorithm is not accepted"
	case errors.Is(err, errShape):
		code, msg = "token_malformed", "the token's header or claims are not written as required (case-sensitive names, no duplicated member, no crit, numeric exp, grants with source and prefix)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		code, msg = "token_malformed", "the token is not a well-formed JWT"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		code, msg = "token_bad_signature", "the token's signature does not verify"
	case errors.Is(err, jwt.ErrTokenExpired):
		code, msg = "token_expired", "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		code, msg = "token_not_yet_valid", "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		code, msg = "token_bad_issuer", "the token's issuer is not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		code, msg = "token_bad_audience", "the token's audience is not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		code, msg = "token_invalid", "the token lacks a required claim (exp)"
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		code, msg = "token_invalid", "the token's claims are not valid"
	}
	return &Error{Code: code, Message: msg, Err: fmt.Errorf("%w", err)}
}
