package signer

// Assumed-role credentials and the expiry cap, against a local STS that
// speaks AssumeRole's XML with expirations the test chooses. The fetch of
// a capped URL against a real STS-speaking store (MinIO) is in
// internal/edge/clouds_test.go.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// arClock is a settable clock for S3Options.Now.
type arClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *arClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *arClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// arSTS is an STS endpoint answering AssumeRole with numbered sessions
// ("session-1", "session-2", …) that last lifetime from its clock's now.
type arSTS struct {
	srv      *httptest.Server
	clock    *arClock
	lifetime atomic.Int64 // time.Duration
	fail     atomic.Bool  // answer 403 AccessDenied
	attempts atomic.Int32 // AssumeRole requests, failed ones included
	calls    atomic.Int32 // sessions issued
	mu       sync.Mutex
	last     url.Values // the last request's form
	expiries []time.Time
}

func newARSTS(t testing.TB, clock *arClock, lifetime time.Duration) *arSTS {
	t.Helper()
	s := &arSTS{clock: clock}
	s.lifetime.Store(int64(lifetime))
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *arSTS) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	// The SDK signs STS calls with the base credentials.
	if auth := r.Header.Get("Authorization"); len(auth) < 16 || auth[:16] != "AWS4-HMAC-SHA256" {
		http.Error(w, "unsigned", http.StatusForbidden)
		return
	}
	s.attempts.Add(1)
	if s.fail.Load() {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
		return
	}
	n := s.calls.Add(1)
	exp := s.clock.Now().Add(time.Duration(s.lifetime.Load())).UTC().Truncate(time.Second)
	s.mu.Lock()
	s.last = r.Form
	s.expiries = append(s.expiries, exp)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/edge-read/edge</Arn><AssumedRoleId>AROA:edge</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIASESSION%d</AccessKeyId>
      <SecretAccessKey>secret-%d</SecretAccessKey>
      <SessionToken>session-%d</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r%d</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, n, n, n, exp.Format(time.RFC3339), n)
}

func (s *arSTS) expiry(i int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiries[i]
}

// arSigner is an assume_role S3 signer calling sts.
func arSigner(t testing.TB, sts *arSTS, clock *arClock) *S3 {
	t.Helper()
	cfg := Config{
		Provider: ProviderS3, Bucket: "partner-frames", Region: "eu-west-1",
		Credentials: Credentials{
			Type: "assume_role", RoleARN: "arn:aws:iam::123456789012:role/edge-read",
			ExternalID: "ext-42", SessionName: "edge-test", Duration: time.Hour,
			STSEndpoint: sts.srv.URL, STSRegion: "eu-west-1",
			AccessKeyID: "AKIDBASE", SecretAccessKey: "base-secret",
		},
	}
	cfg.Defaults()
	if errs := cfg.Validate("sources[0]"); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	s, err := NewS3(context.Background(), cfg, S3Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// arURL is what the tests read off a presigned SigV4 URL.
type arURL struct {
	date    time.Time
	expires time.Duration
	token   string
	access  string
}

func parseARURL(t testing.TB, raw string) arURL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v in %s", err, raw)
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil {
		t.Fatalf("X-Amz-Expires: %v in %s", err, raw)
	}
	cred := q.Get("X-Amz-Credential")
	access, _, _ := cutSlash(cred)
	return arURL{date: date, expires: time.Duration(secs) * time.Second, token: q.Get("X-Amz-Security-Token"), access: access}
}

func cutSlash(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// TestS3AssumeRoleRequest: the source's role, external ID, session name
// and duration reach STS, and the URL carries the session's token.
func TestS3AssumeRoleRequest(t *testing.T) {
	clock := &arClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sts := newARSTS(t, clock, time.Hour)
	s := arSigner(t, sts, clock)
	if err := s.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for k, want := range map[string]string{
		"RoleArn":         "arn:aws:iam::123456789012:role/edge-read",
		"ExternalId":      "ext-42",
		"RoleSessionName": "edge-test",
		"DurationSeconds": "3600",
		"Version":         "2011-06-15",
	} {
		if got := sts.last.Get(k); got != want {
			t.Errorf("STS %s = %q, want %q", k, got, want)
		}
	}
	p, err := s.Presign(t.Context(), Request{Method: http.MethodGet, Key: "a/b.jpg", At: clock.Now(), TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	u := parseARURL(t, p.URL)
	if u.token != "session-1" || u.access != "ASIASESSION1" {
		t.Errorf("URL signed with %s / token %q, want ASIASESSION1 / session-1", u.access, u.token)
	}
	if sts.calls.Load() != 1 {
		t.Errorf("STS calls = %d, want 1 (Check's credentials reused)", sts.calls.Load())
	}
}

// TestS3AssumeRoleCap: a URL never outlives its session: its expiry is
// min(at+ttl, session expiry - CredentialMargin), in the URL and in
// Presigned.Expires alike.
func TestS3AssumeRoleCap(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 20, 0, 0, time.UTC)
	windowStart := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		session  time.Duration
		at       time.Time
		ttl      time.Duration
		wantDate time.Time // X-Amz-Date
		wantEnds time.Time // X-Amz-Date + X-Amz-Expires
	}{
		{"24h url, 1h session", time.Hour, now, 24 * time.Hour, now, now.Add(55 * time.Minute)},
		{"24h url, 15m session", 15 * time.Minute, now, 24 * time.Hour, now, now.Add(10 * time.Minute)},
		// A window that began before the session signs at the session's
		// start: no signature predates its credentials.
		{"24h url, window began before the 15m session", 15 * time.Minute, windowStart, 24 * time.Hour, now, now.Add(10 * time.Minute)},
		{"7d url, 12h session", 12 * time.Hour, now, MaxTTL, now, now.Add(12*time.Hour - CredentialMargin)},
		{"10m url, 1h session: no cap", time.Hour, now, 10 * time.Minute, now, now.Add(10 * time.Minute)},
		{"url ending exactly at the cap", time.Hour, now, 55 * time.Minute, now, now.Add(55 * time.Minute)},
		{"signed later in the session", time.Hour, now.Add(20 * time.Minute), 24 * time.Hour, now.Add(20 * time.Minute), now.Add(55 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &arClock{t: now}
			sts := newARSTS(t, clock, tc.session)
			s := arSigner(t, sts, clock)
			p, err := s.Presign(t.Context(), Request{Method: http.MethodGet, Key: "k.jpg", At: tc.at, TTL: tc.ttl})
			if err != nil {
				t.Fatal(err)
			}
			u := parseARURL(t, p.URL)
			if !u.date.Equal(tc.wantDate) {
				t.Errorf("X-Amz-Date = %s, want %s", u.date, tc.wantDate)
			}
			if u.expires > tc.session-CredentialMargin {
				t.Errorf("X-Amz-Expires = %s, longer than the session's usable %s", u.expires, tc.session-CredentialMargin)
			}
			if ends := u.date.Add(u.expires); !ends.Equal(tc.wantEnds) {
				t.Errorf("X-Amz-Date + X-Amz-Expires = %s, want %s", ends, tc.wantEnds)
			}
			if !p.Expires.Equal(tc.wantEnds) {
				t.Errorf("Presigned.Expires = %s, want %s", p.Expires, tc.wantEnds)
			}
			if limit := sts.expiry(0).Add(-CredentialMargin); p.Expires.After(limit) {
				t.Errorf("URL ends %s, after session expiry - margin %s", p.Expires, limit)
			}
			t.Logf("url_ttl %s, session %s → X-Amz-Expires=%d", tc.ttl, tc.session, int(u.expires/time.Second))
		})
	}
}

// TestS3CredentialRefresh: credentials are replaced CredentialRefresh
// before the cap (expiry - CredentialMargin); URLs then use the new
// session and every URL handed out has at least CredentialRefresh left.
func TestS3CredentialRefresh(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &arClock{t: start}
	sts := newARSTS(t, clock, time.Hour)
	s := arSigner(t, sts, clock)
	sign := func() (arURL, Presigned) {
		t.Helper()
		p, err := s.Presign(t.Context(), Request{Method: http.MethodGet, Key: "k.jpg", At: clock.Now(), TTL: 24 * time.Hour})
		if err != nil {
			t.Fatalf("at %s: %v", clock.Now(), err)
		}
		return parseARURL(t, p.URL), p
	}

	u, _ := sign()
	if u.token != "session-1" {
		t.Fatalf("first URL token %q, want session-1", u.token)
	}
	exp1 := sts.expiry(0)
	refreshAt := exp1.Add(-CredentialMargin - CredentialRefresh)

	// Just before the refresh point: the first session still signs, and
	// its URLs still have more than CredentialRefresh to live.
	clock.Add(refreshAt.Sub(clock.Now()) - time.Second)
	u, p := sign()
	if u.token != "session-1" || sts.calls.Load() != 1 {
		t.Fatalf("before refresh: token %q after %d STS calls, want session-1 after 1", u.token, sts.calls.Load())
	}
	if left := p.Expires.Sub(clock.Now()); left < CredentialRefresh {
		t.Errorf("URL signed before refresh has %s left, want at least %s", left, CredentialRefresh)
	}

	// At the refresh point: a new session, and URLs capped at its expiry.
	clock.Add(time.Second)
	u, p = sign()
	if u.token != "session-2" || sts.calls.Load() != 2 {
		t.Fatalf("at refresh: token %q after %d STS calls, want session-2 after 2", u.token, sts.calls.Load())
	}
	if want := sts.expiry(1).Add(-CredentialMargin); !p.Expires.Equal(want) {
		t.Errorf("URL after refresh ends %s, want the new session's cap %s", p.Expires, want)
	}
	// And it is kept: no more STS calls within its life.
	clock.Add(30 * time.Minute)
	if u, _ = sign(); u.token != "session-2" || sts.calls.Load() != 2 {
		t.Errorf("30m later: token %q after %d STS calls, want session-2 after 2", u.token, sts.calls.Load())
	}
}

// TestS3CredentialRefreshFailure: a failing STS during the refresh lead
// does not stop signing while the old session can still sign usable URLs;
// past its cap the source is unavailable (ErrCredentials), and it recovers
// when STS does.
func TestS3CredentialRefreshFailure(t *testing.T) {
	clock := &arClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sts := newARSTS(t, clock, time.Hour)
	s := arSigner(t, sts, clock)
	req := func() (Presigned, error) {
		return s.Presign(t.Context(), Request{Method: http.MethodGet, Key: "k.jpg", At: clock.Now(), TTL: 24 * time.Hour})
	}
	if _, err := req(); err != nil {
		t.Fatal(err)
	}
	exp1 := sts.expiry(0)
	sts.fail.Store(true)

	clock.Add(exp1.Add(-CredentialMargin - CredentialRefresh + time.Second).Sub(clock.Now()))
	p, err := req()
	if err != nil {
		t.Fatalf("STS down during the refresh lead: %v, want the old session", err)
	}
	if u := parseARURL(t, p.URL); u.token != "session-1" {
		t.Errorf("token %q, want session-1", u.token)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Errorf("Check with a usable old session: %v", err)
	}

	clock.Add(exp1.Add(-CredentialMargin).Sub(clock.Now()))
	if _, err := req(); !errors.Is(err, ErrCredentials) {
		t.Fatalf("past the old session's cap with STS down: err = %v, want ErrCredentials", err)
	}
	// Within credentialRetry of a failure, requests fail at once, without
	// asking STS again.
	attempts := sts.attempts.Load()
	for range 3 {
		if err := s.Check(t.Context()); !errors.Is(err, ErrCredentials) {
			t.Errorf("Check past the cap with STS down: %v, want ErrCredentials", err)
		}
	}
	sts.fail.Store(false)
	if _, err := req(); !errors.Is(err, ErrCredentials) {
		t.Errorf("within %s of the failure: err = %v, want the remembered failure", credentialRetry, err)
	}
	if n := sts.attempts.Load(); n != attempts {
		t.Errorf("STS asked %d more times within %s of a failure, want 0", n-attempts, credentialRetry)
	}

	clock.Add(credentialRetry)
	p, err = req()
	if err != nil {
		t.Fatalf("STS back: %v", err)
	}
	if u := parseARURL(t, p.URL); u.token != "session-2" {
		t.Errorf("STS back: token %q, want session-2", u.token)
	}
}

// TestS3ShortCredentials: credentials that expire within the margin sign
// nothing (a URL would be dead on arrival) and are not fetched again on
// every request.
func TestS3ShortCredentials(t *testing.T) {
	clock := &arClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sts := newARSTS(t, clock, 4*time.Minute)
	s := arSigner(t, sts, clock)
	for range 5 {
		_, err := s.Presign(t.Context(), Request{Method: http.MethodGet, Key: "k.jpg", At: clock.Now(), TTL: time.Hour})
		if !errors.Is(err, ErrCredentials) {
			t.Fatalf("4m session: err = %v, want ErrCredentials", err)
		}
	}
	if err := s.Check(t.Context()); !errors.Is(err, ErrCredentials) {
		t.Errorf("Check with a 4m session: %v, want ErrCredentials", err)
	}
	if n := sts.calls.Load(); n != 1 {
		t.Errorf("STS calls = %d for 5 requests and a check, want 1", n)
	}
}

// TestS3CredentialRefreshConcurrent: many requests at the refresh point
// cause one STS call, and every URL is signed with the session its
// expiry was capped at.
func TestS3CredentialRefreshConcurrent(t *testing.T) {
	clock := &arClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sts := newARSTS(t, clock, time.Hour)
	s := arSigner(t, sts, clock)
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour - CredentialMargin - CredentialRefresh)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			p, err := s.Presign(context.Background(), Request{Method: http.MethodGet, Key: fmt.Sprintf("k%d.jpg", i), At: clock.Now(), TTL: 24 * time.Hour})
			if err != nil {
				errs <- err
				return
			}
			u := parseARURL(t, p.URL)
			if u.token != "session-2" || u.access != "ASIASESSION2" {
				errs <- fmt.Errorf("URL signed with %s / %s, want the refreshed session-2", u.access, u.token)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := sts.calls.Load(); n != 2 {
		t.Errorf("STS calls = %d, want 2 (one initial, one refresh)", n)
	}
}

// TestGCSHMACRegion: GCS interop signs SigV4 for region "auto" against
// storage.googleapis.com, path-style, unless the source sets a region (an
// S3-compatible stand-in checks its own).
func TestGCSHMACRegion(t *testing.T) {
	for _, tc := range []struct {
		region, endpoint string
		wantPrefix       string
		wantScope        string
	}{
		{"", "", "https://storage.googleapis.com/acme-gcs/obj.jpg?", "/20260301/auto/s3/aws4_request"},
		{"us-east-1", "http://127.0.0.1:9999", "http://127.0.0.1:9999/acme-gcs/obj.jpg?", "/20260301/us-east-1/s3/aws4_request"},
	} {
		cfg := Config{Provider: ProviderGCS, Bucket: "acme-gcs", Region: tc.region, Endpoint: tc.endpoint,
			Credentials: Credentials{Type: "hmac", AccessKeyID: "GOOGHMAC", SecretAccessKey: "hmac-secret"}}
		cfg.Defaults()
		if errs := cfg.Validate("sources[0]"); len(errs) > 0 {
			t.Fatal(errs)
		}
		sg, err := New(context.Background(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := sg.Presign(t.Context(), Request{Method: http.MethodGet, Key: "obj.jpg", At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.URL) < len(tc.wantPrefix) || p.URL[:len(tc.wantPrefix)] != tc.wantPrefix {
			t.Errorf("region %q: URL %s, want prefix %s", tc.region, p.URL, tc.wantPrefix)
		}
		u, _ := url.Parse(p.URL)
		if got, want := u.Query().Get("X-Amz-Credential"), "GOOGHMAC"+tc.wantScope; got != want {
			t.Errorf("region %q: X-Amz-Credential = %q, want %q", tc.region, got, want)
		}
	}
}

// TestS3AssumeRoleDeterministic: within one session, requests for one
// signing window give byte-identical URLs, whenever they are made.
func TestS3AssumeRoleDeterministic(t *testing.T) {
	windowStart := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &arClock{t: windowStart.Add(7 * time.Minute)}
	sts := newARSTS(t, clock, time.Hour)
	s := arSigner(t, sts, clock)
	req := Request{Method: http.MethodGet, Key: "k.jpg", At: windowStart, TTL: 24 * time.Hour}
	first, err := s.Presign(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(20 * time.Minute)
	again, err := s.Presign(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.URL != again.URL || !first.Expires.Equal(again.Expires) {
		t.Errorf("same window, same session, different URLs:\n%s\n%s", first.URL, again.URL)
	}
}

// TestNewOneClock: New hands Options.Now to the signer, which judges the
// session's expiry by it, not by the wall clock. The clock stands years
// from the wall clock, so a signer reading time.Now would call the session
// expired (dead on arrival, and fetched again on every request).
func TestNewOneClock(t *testing.T) {
	clock := &arClock{t: time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)}
	sts := newARSTS(t, clock, time.Hour)
	cfg := Config{
		Provider: ProviderS3, Bucket: "partner-frames", Region: "eu-west-1",
		Credentials: Credentials{
			Type: "assume_role", RoleARN: "arn:aws:iam::123456789012:role/edge-read",
			STSEndpoint: sts.srv.URL, AccessKeyID: "AKIDBASE", SecretAccessKey: "base-secret",
		},
	}
	cfg.Defaults()
	s, err := New(t.Context(), cfg, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.(Checker).Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for i := range 3 {
		p, err := s.Presign(t.Context(), Request{Method: http.MethodGet, Key: "k.jpg", At: clock.Now(), TTL: 24 * time.Hour})
		if err != nil {
			t.Fatalf("Presign %d: %v", i, err)
		}
		if want := sts.expiry(0).Add(-CredentialMargin); !p.Expires.Equal(want) {
			t.Errorf("Expires = %s, want %s (the session's expiry less the margin)", p.Expires, want)
		}
		if want := p.Expires.Add(-CredentialRefresh); !p.ServeUntil.Equal(want) {
			t.Errorf("ServeUntil = %s, want %s (a capped URL keeps CredentialRefresh)", p.ServeUntil, want)
		}
		clock.Add(time.Minute)
	}
	if n := sts.calls.Load(); n != 1 {
		t.Errorf("STS calls = %d, want 1: the session is fresh by the injected clock", n)
	}
}
