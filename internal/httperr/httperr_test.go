package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tt := range []struct {
		name, method string
		err          error
		status       int
		code, id     string
	}{
		{"error with id", "GET", New(401, "token_missing", "a token is required", nil), 401, "token_missing", "abc-1"},
		{"wrapped", "GET", errors.Join(errors.New("x"), New(404, "unknown_source", "no such source", errors.New("private cause"))), 404, "unknown_source", "abc-2"},
		{"plain error is internal", "GET", errors.New("private cause"), 500, "internal", "abc-3"},
		{"HEAD has no body", "HEAD", New(403, "forbidden", "no", nil), 403, "", "abc-4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header()["X-Request-Id"] = []string{tt.id}
			w.Header().Set("Etag", `"stale"`)
			Write(w, httptest.NewRequest(tt.method, "/", nil), tt.err)
			if w.Code != tt.status || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Etag") != "" {
				t.Fatalf("got %d %v", w.Code, w.Header())
			}
			if (w.Header().Get("Www-Authenticate") != "") != (tt.status == http.StatusUnauthorized) {
				t.Errorf("WWW-Authenticate on %d: %q", tt.status, w.Header().Get("Www-Authenticate"))
			}
			if tt.method == "HEAD" {
				if w.Body.Len() != 0 {
					t.Errorf("HEAD body %q", w.Body)
				}
				return
			}
			var raw map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			if raw["error"] != tt.code || raw["request_id"] != tt.id || raw["message"] == "" || len(raw) != 3 {
				t.Errorf("body %s, want code %s and request_id %s", w.Body, tt.code, tt.id)
			}
			if strings.Contains(w.Body.String(), "private cause") {
				t.Errorf("the cause reached the body: %s", w.Body)
			}
		})
	}
}
