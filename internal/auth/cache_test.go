package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyCache(t *testing.T) {
	clk := newClock(t0)
	v := newVerifier(t, fullConfig(t), clk.Now)
	exp := t0.Add(time.Hour)
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, with("exp", exp.Unix()))

	c1, hit, err := v.Verify(tok)
	if err != nil || hit {
		t.Fatalf("first Verify: got hit %v, err %v; want a verified miss", hit, err)
	}
	c2, hit, err := v.Verify(tok)
	if err != nil || !hit {
		t.Fatalf("second Verify: got hit %v, err %v; want a hit", hit, err)
	}
	if c2 != c1 {
		t.Errorf("second Verify: got claims %p, want the cached %p", c2, c1)
	}
	// A hit does not re-verify: no parse, no signature check, no allocation.
	if n := testing.AllocsPerRun(100, func() { v.Verify(tok) }); n != 0 {
		t.Errorf("cached Verify: got %v allocs, want 0 (it re-parsed)", n)
	}

	steps := []struct {
		name    string
		now     time.Time
		wantHit bool
		code    string
	}{
		{"just before exp", exp.Add(-time.Nanosecond), true, ""},
		// At exp the cache no longer serves it; the leeway still admits it
		// on a full verification, which is not cached (its exp has passed).
		{"at exp", exp, false, ""},
		{"within leeway after exp", exp.Add(29 * time.Second), false, ""},
		{"past exp and leeway", exp.Add(31 * time.Second), false, "token_expired"},
		{"long past", exp.Add(24 * time.Hour), false, "token_expired"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clk.Set(s.now)
			_, hit, err := v.Verify(tok)
			if hit != s.wantHit {
				t.Errorf("got hit %v, want %v", hit, s.wantHit)
			}
			if got := code(err); got != s.code {
				t.Errorf("got code %q (%v), want %q", got, err, s.code)
			}
		})
	}
	// Clock going back: the expired entry was dropped, so this is a fresh
	// verification, accepted and cached again.
	clk.Set(t0)
	if _, hit, err := v.Verify(tok); err != nil || hit {
		t.Errorf("after the clock went back: got hit %v, err %v; want a verified miss", hit, err)
	}
}

func TestVerifyCacheRefusalsNotCached(t *testing.T) {
	clk := newClock(t0)
	v := newVerifier(t, fullConfig(t), clk.Now)
	early := sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, with("nbf", t0.Add(time.Minute).Unix()))
	for i := 0; i < 2; i++ {
		_, hit, err := v.Verify(early)
		if hit || code(err) != "token_not_yet_valid" {
			t.Fatalf("Verify %d: got hit %v, err %v; want token_not_yet_valid, no hit", i, hit, err)
		}
	}
	if n := v.cache.Len(); n != 0 {
		t.Errorf("got %d cache entries after refusals, want 0", n)
	}
	// Once valid, it is verified (not a stale refusal) and then cached.
	clk.Set(t0.Add(time.Minute))
	if _, hit, err := v.Verify(early); err != nil || hit {
		t.Errorf("once valid: got hit %v, err %v; want a verified miss", hit, err)
	}
	if _, hit, err := v.Verify(early); err != nil || !hit {
		t.Errorf("once valid, again: got hit %v, err %v; want a hit", hit, err)
	}
}

func TestVerifyCacheBounded(t *testing.T) {
	const size = 4
	cfg := fullConfig(t)
	cfg.CacheEntries = size
	v := newVerifier(t, cfg, newClock(t0).Now)
	toks := make([]string, 3*size)
	for i := range toks {
		toks[i] = sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, with("sub", fmt.Sprint("annotator-", i)))
		if _, _, err := v.Verify(toks[i]); err != nil {
			t.Fatal(err)
		}
		if n := v.cache.Len(); n > size {
			t.Fatalf("after %d tokens: got %d cache entries, want at most %d", i+1, n, size)
		}
	}
	// The most recent ones are hits; the oldest were evicted.
	if _, hit, _ := v.Verify(toks[len(toks)-1]); !hit {
		t.Errorf("newest token: got a miss, want a hit")
	}
	if _, hit, _ := v.Verify(toks[0]); hit {
		t.Errorf("oldest token: got a hit, want it evicted")
	}
}

func TestVerifyCacheDisabled(t *testing.T) {
	// NewVerifier takes the config as given: CacheEntries 0 (before
	// Defaults) builds no cache.
	cfg := fullConfig(t)
	v, err := NewVerifier(cfg, newClock(t0).Now)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, claims())
	for i := 0; i < 2; i++ {
		if _, hit, err := v.Verify(tok); err != nil || hit {
			t.Errorf("Verify %d: got hit %v, err %v; want a verified miss", i, hit, err)
		}
	}
}

func TestVerifyCacheConcurrent(t *testing.T) {
	cfg := fullConfig(t)
	cfg.CacheEntries = 8
	clk := newClock(t0)
	v := newVerifier(t, cfg, clk.Now)
	toks := make([]string, 16)
	for i := range toks {
		toks[i] = sign(t, jwt.SigningMethodHS256, []byte(secret1), nil, with("sub", fmt.Sprint("annotator-", i)))
	}
	done := make(chan error)
	for g := 0; g < 8; g++ {
		go func() {
			var err error
			for i := 0; i < 200 && err == nil; i++ {
				tok := toks[(g*7+i)%len(toks)]
				var c *Claims
				if c, _, err = v.Verify(tok); err == nil && c.Subject == "" {
					err = errors.New("empty subject")
				}
			}
			done <- err
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// code is the *Error code of err, or "" for nil.
func code(err error) string {
	if err == nil {
		return ""
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return fmt.Sprintf("not an *auth.Error: %v", err)
}
