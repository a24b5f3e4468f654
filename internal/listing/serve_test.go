package listing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgeproxy/edge/internal/httperr"
)

func TestServe(t *testing.T) {
	l := sliceLister(objs("a=1", "b=2"))
	check := func(ctx context.Context, o Object) CheckResult {
		return CheckResult{Check: map[string]string{"type": "image/png"}, BytesRead: 4}
	}
	tests := []struct {
		name   string
		query  string
		check  CheckFunc
		status int    // of the returned *httperr.Error; 0 = served
		want   string // in the body
	}{
		{"plain", "", check, 0, `{"key":"a","size":1,"etag":"1","last_modified":"2026-01-01T00:00:00Z"}`},
		{"check", "?check=1", check, 0, `"check":{"type":"image/png"}`},
		{"check=0", "?check=0", nil, 0, `"summary"`},
		{"check unavailable", "?check=1", nil, http.StatusNotImplemented, ""},
		{"bad check", "?check=yes", check, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			_, err := Serve(rec, httptest.NewRequest(http.MethodGet, "/admin/v1/connections/x/objects"+tt.query, nil), l, tt.check)
			if tt.status != 0 {
				var he *httperr.Error
				if !errors.As(err, &he) || he.Status != tt.status {
					t.Fatalf("error %v, want an httperr with %d", err, tt.status)
				}
				if rec.Body.Len() != 0 {
					t.Errorf("wrote %q before refusing", rec.Body.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/x-ndjson" || !rec.Flushed && rec.Body.Len() == 0 {
				t.Errorf("content type %q", ct)
			}
			if !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("body lacks %s:\n%s", tt.want, rec.Body.String())
			}
		})
	}
}

// TestServeClientGone: the listing stops when the client disconnects.
func TestServeClientGone(t *testing.T) {
	done := make(chan error, 1)
	endless := ListerFunc(func(ctx context.Context, yield func(Object) error) error {
		for i := 0; ; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := yield(Object{Key: strings.Repeat("k", 10) + string(rune('a'+i%26)) + strings.Repeat("z", i/26%50), ETag: "e"}); err != nil {
				return err
			}
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := Serve(w, r, endless, nil)
		done <- err
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, make([]byte, 1<<16))
	resp.Body.Close()
	if err := <-done; err == nil {
		t.Fatal("Serve returned nil after the client went away")
	}
}
