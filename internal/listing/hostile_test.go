package listing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
)

// urlSigner presigns nothing: it names the page of a test store by its
// token (the store under test is hostile, not the signer).
type urlSigner string

func (u urlSigner) PresignList(_ context.Context, r signer.ListRequest) (string, error) {
	return string(u) + "/?token=" + url.QueryEscape(r.Token), nil
}

// TestRemoteHostileTokens: a store that never ends its listing with empty
// truncated pages (the same token, two tokens in turn, or a new one every
// time) must fail the listing, not loop until the process is killed.
func TestRemoteHostileTokens(t *testing.T) {
	tests := []struct {
		name string
		next func(token string, page int64) string
	}{
		{"same token", func(string, int64) string { return "t" }},
		{"two tokens in turn", func(tok string, _ int64) string {
			if tok == "a" {
				return "b"
			}
			return "a"
		}},
		{"a new token every page", func(_ string, n int64) string { return fmt.Sprint("t", n) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pages atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := pages.Add(1)
				fmt.Fprintf(w, `<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>%s</NextContinuationToken></ListBucketResult>`,
					tt.next(r.URL.Query().Get("token"), n))
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := NewRemote(urlSigner(srv.URL), "p/", RemoteOptions{}).List(ctx, func(Object) error { return nil })
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("List after %d pages: got %v, want an error naming the store's answers", pages.Load(), err)
			}
			if n := pages.Load(); n > maxEmptyPages+1 {
				t.Errorf("fetched %d pages, want at most %d", n, maxEmptyPages+1)
			}
		})
	}
}
