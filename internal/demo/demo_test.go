package demo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLocalHost(t *testing.T) {
	for _, tt := range []struct {
		host, listen string
		want         bool
	}{
		{"localhost:8080", "127.0.0.1:8080", true},
		{"LOCALHOST", "127.0.0.1:8080", true},
		{"app.localhost:8080", "127.0.0.1:8080", true},
		{"127.0.0.1:8080", "127.0.0.1:8080", true},
		{"127.8.9.1", "127.0.0.1:8080", true},
		{"[::1]:8080", "127.0.0.1:8080", true},
		{"192.168.1.20:8080", "192.168.1.20:8080", true}, // the listen address
		{"evil.example:8080", "127.0.0.1:8080", false},   // DNS rebinding
		{"evil.example", "0.0.0.0:8080", false},
		{"localhost.evil.example", "127.0.0.1:8080", false},
		{"192.168.1.20:8080", ":8080", false},
		{"", "127.0.0.1:8080", false},
	} {
		if got := LocalHost(tt.host, tt.listen); got != tt.want {
			t.Errorf("LocalHost(%q, %q) = %v, want %v", tt.host, tt.listen, got, tt.want)
		}
	}
}

// TestPageHost: the page (and its token) goes only to loopback hosts.
func TestPageHost(t *testing.T) {
	const tok = "demo-token-marker"
	h := Options(tok, time.Hour, "127.0.0.1:8080").Extra
	for _, tt := range []struct {
		path, host string
		status     int
	}{
		{"/demo", "localhost:8080", 200},
		{"/demo", "127.0.0.1:8080", 200},
		{"/demo", "rebound.example:8080", http.StatusMisdirectedRequest},
		{"/", "rebound.example:8080", http.StatusMisdirectedRequest},
		{"/", "localhost:8080", http.StatusFound},
	} {
		t.Run(tt.path+" "+tt.host, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			r.Host = tt.host
			w := httptest.NewRecorder()
			h[tt.path].ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.status == http.StatusMisdirectedRequest {
				var b struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil || b.Error != "misdirected_request" {
					t.Errorf("body %s, want JSON misdirected_request", w.Body)
				}
				if strings.Contains(w.Body.String(), tok) {
					t.Error("the token went to a foreign host")
				}
			}
			if tt.status == 200 && !strings.Contains(w.Body.String(), tok) {
				t.Error("page lacks the token")
			}
		})
	}
}

func TestConfigValid(t *testing.T) {
	cfg, err := Config("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 2 {
		t.Fatalf("%d sources", len(cfg.Sources))
	}
	if _, err := Token(cfg, time.Hour); err != nil {
		t.Fatal(err)
	}
}
