package signer

import (
	"testing"
	"time"
)

// TestServeUntil pins the one rule for how long a URL is handed out (it
// was the edge's until this moved here): the window's end, never within
// a minute (a quarter of a short TTL) of expiry, and for a URL cut short
// by expiring credentials never within CredentialRefresh of it.
func TestServeUntil(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		window  time.Duration
		expires time.Time
		want    time.Time
	}{
		{"window ends first", time.Hour, 30 * time.Minute, at.Add(time.Hour), at.Add(30 * time.Minute)},
		{"window as long as the ttl: a minute's margin", time.Hour, time.Hour, at.Add(time.Hour), at.Add(59 * time.Minute)},
		{"short ttl: a quarter of it", 8 * time.Second, 4 * time.Second, at.Add(8 * time.Second), at.Add(4 * time.Second)},
		{"2s ttl, 1s window", 2 * time.Second, time.Second, at.Add(2 * time.Second), at.Add(time.Second)},
		{"1s ttl, 1s window: 250ms margin", time.Second, time.Second, at.Add(time.Second), at.Add(750 * time.Millisecond)},
		{"capped by credentials: refresh margin", 24 * time.Hour, 12 * time.Hour, at.Add(55 * time.Minute), at.Add(50 * time.Minute)},
		{"capped, window first", 24 * time.Hour, 10 * time.Minute, at.Add(55 * time.Minute), at.Add(10 * time.Minute)},
		{"capped short ttl", 10 * time.Minute, 5 * time.Minute, at.Add(7 * time.Minute), at.Add(2 * time.Minute)},
		{"no window", time.Hour, 0, at.Add(time.Hour), at.Add(59 * time.Minute)},
		{"later than At+TTL (session began after the window)", time.Hour, 30 * time.Minute, at.Add(time.Hour + 10*time.Minute), at.Add(30 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := serveUntil(Request{At: at, TTL: tc.ttl, Window: tc.window}, tc.expires)
			if !got.Equal(tc.want) {
				t.Errorf("serveUntil = %s, want %s", got.Sub(at), tc.want.Sub(at))
			}
		})
	}
}

// TestCheckTTL: one range for every signer and config.
func TestCheckTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl time.Duration
		ok  bool
	}{
		{0, false}, {-time.Second, false}, {999 * time.Millisecond, false},
		{time.Second, true}, {time.Hour, true}, {MaxTTL, true}, {MaxTTL + time.Second, false},
	} {
		if err := CheckTTL(tc.ttl); (err == nil) != tc.ok {
			t.Errorf("CheckTTL(%s) = %v, want ok %v", tc.ttl, err, tc.ok)
		}
	}
}
