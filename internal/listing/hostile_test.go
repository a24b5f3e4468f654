package listing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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

// TestParsePageTooManyEntries: a page of more objects than any store
// gives is refused before it is decoded (a 64 MiB page of tiny entries
// decoded whole took over a GiB).
func TestParsePageTooManyEntries(t *testing.T) {
	for _, tt := range []struct {
		name, open, entry, close string
	}{
		{"S3", "<ListBucketResult>", "<Contents ><Key>p/a</Key></Contents>", "</ListBucketResult>"},
		{"Azure", "<EnumerationResults><Blobs>", "<Blob><Name>p/a</Name></Blob>", "</Blobs></EnumerationResults>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(tt.open)
			for range maxPageEntries + 1 {
				b.WriteString(tt.entry)
			}
			b.WriteString(tt.close)
			_, _, _, err := parsePage([]byte(b.String()), "p/")
			if err == nil || !strings.Contains(err.Error(), "more than") {
				t.Fatalf("got %v, want a page of too many objects refused", err)
			}
			// A page within the bound still parses.
			small := tt.open + strings.Repeat(tt.entry, 3) + tt.close
			if objs, _, _, err := parsePage([]byte(small), "p/"); err != nil || len(objs) != 3 {
				t.Fatalf("3 entries: %d objects, %v", len(objs), err)
			}
		})
	}
}
