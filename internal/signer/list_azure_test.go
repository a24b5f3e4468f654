package signer

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAzurePresignList checks the list URL grants list on the container
// and nothing else; Azurite verifies its signature (internal/listing).
func TestAzurePresignList(t *testing.T) {
	a, err := NewAzure(Config{Provider: ProviderAzure, Account: "devstoreaccount1", Bucket: "media", Endpoint: "http://127.0.0.1:10000/devstoreaccount1",
		Credentials: Credentials{Type: AzureSharedKey, AccountKey: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	got, err := a.PresignList(context.Background(), ListRequest{Prefix: "images/a b+c&d=é/", Token: "2!80!x==", MaxKeys: 9, At: at})
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://127.0.0.1:10000/devstoreaccount1/media?restype=container&comp=list&prefix=images%2Fa%20b%2Bc%26d%3D%C3%A9%2F&marker=2%2180%21x%3D%3D&maxresults=9&"; !strings.HasPrefix(got, want) {
		t.Fatalf("URL %s\nwant prefix %s", got, want)
	}
	u, _ := url.Parse(got)
	q := u.Query()
	for k, want := range map[string]string{"sp": "l", "sr": "c", "st": "2026-11-30T09:55:00Z", "se": "2026-11-30T10:05:00Z", "spr": "https,http", "prefix": "images/a b+c&d=é/", "marker": "2!80!x=="} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	again, _ := a.PresignList(context.Background(), ListRequest{Prefix: "images/a b+c&d=é/", Token: "2!80!x==", MaxKeys: 9, At: at})
	if again != got {
		t.Error("the same request signed twice differs")
	}
}
