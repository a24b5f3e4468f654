package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMint(t *testing.T) {
	cfg := fullConfig(t)
	clk := newClock(t0)
	v := newVerifier(t, cfg, clk.Now)
	grants := []Grant{{Source: "customer-a", Prefix: "cats/"}, {Source: "customer-b"}}

	tok, err := Mint(cfg, MintOptions{Subject: "annotator-17", Grants: grants, TTL: time.Hour, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify of a minted token: got %v, want it accepted", err)
	}
	if c.Issuer != testIssuer {
		t.Errorf("got iss %q, want %q", c.Issuer, testIssuer)
	}
	if len(c.Audience) != 1 || c.Audience[0] != testAudience {
		t.Errorf("got aud %q, want [%q]", c.Audience, testAudience)
	}
	if c.Subject != "annotator-17" {
		t.Errorf("got sub %q, want annotator-17", c.Subject)
	}
	if !c.ExpiresAt.Time.Equal(t0.Add(time.Hour)) || !c.IssuedAt.Time.Equal(t0) {
		t.Errorf("got iat %v exp %v, want %v and an hour later", c.IssuedAt, c.ExpiresAt, t0)
	}
	if !c.Allows("customer-a", "cats/1.jpg") || c.Allows("customer-a", "dogs/1.jpg") || !c.Allows("customer-b", "x") {
		t.Errorf("got grants %+v, want %+v", c.Grants, grants)
	}
	// Signed with the HS256 key, naming it.
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Header["alg"] != "HS256" || p.Header["kid"] != "hs1" {
		t.Errorf("got header %v, want alg HS256, kid hs1", p.Header)
	}
	// It expires with its ttl (plus leeway).
	clk.Set(t0.Add(time.Hour + cfg.Leeway + time.Second))
	if _, _, err := v.Verify(tok); code(err) != "token_expired" {
		t.Errorf("after its ttl: got %v, want token_expired", err)
	}
}

func TestMintOptions(t *testing.T) {
	base := Config{Keys: []KeyConfig{
		{ID: "es", Alg: "ES256", PublicKey: keys(t).ecPEM},
		{Alg: "HS256", Secret: secret2},
	}}
	tests := []struct {
		name    string
		cfg     Config
		o       MintOptions
		wantErr string
		check   func(t *testing.T, c *Claims, header map[string]any)
	}{
		{"first HS256 key, no iss or aud configured", base, MintOptions{Subject: "s", TTL: time.Minute, Now: t0}, "",
			func(t *testing.T, c *Claims, h map[string]any) {
				if c.Issuer != "" || c.Audience != nil {
					t.Errorf("got iss %q aud %q, want none", c.Issuer, c.Audience)
				}
				if _, ok := h["kid"]; ok {
					t.Errorf("got kid %v, want none for a key without id", h["kid"])
				}
			}},
		{"issuer and audience overridden", base, MintOptions{Subject: "s", TTL: time.Minute, Now: t0, Issuer: "i", Audience: "a"}, "",
			func(t *testing.T, c *Claims, _ map[string]any) {
				if c.Issuer != "i" || len(c.Audience) != 1 || c.Audience[0] != "a" {
					t.Errorf("got iss %q aud %q, want i, [a]", c.Issuer, c.Audience)
				}
			}},
		{"no HS256 key", Config{Keys: base.Keys[:1]}, MintOptions{TTL: time.Minute}, "no HS256 key", nil},
		{"short secret", Config{Keys: []KeyConfig{{Alg: "HS256", Secret: "short"}}}, MintOptions{TTL: time.Minute}, "too short", nil},
		{"zero ttl", base, MintOptions{}, "ttl must be positive", nil},
		{"negative ttl", base, MintOptions{TTL: -time.Minute}, "ttl must be positive", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Mint(tt.cfg, tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want an error containing %q", tok, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := newVerifier(t, tt.cfg, newClock(t0).Now)
			c, _, err := v.Verify(tok)
			if err != nil && tt.o.Issuer == "" {
				t.Fatalf("Verify: got %v, want it accepted", err)
			}
			p, _, _ := jwt.NewParser().ParseUnverified(tok, &Claims{})
			if c == nil {
				c = p.Claims.(*Claims)
			}
			tt.check(t, c, p.Header)
		})
	}
}

func TestMintNowDefaultsToTheClock(t *testing.T) {
	cfg := Config{Keys: []KeyConfig{{Alg: "HS256", Secret: secret1}}}
	before := time.Now().Add(-time.Second)
	tok, err := Mint(cfg, MintOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, cfg, time.Now)
	c, _, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.IssuedAt.Time.Before(before.Truncate(time.Second)) {
		t.Errorf("got iat %v, want about now", c.IssuedAt)
	}
}
