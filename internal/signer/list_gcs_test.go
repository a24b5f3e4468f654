package signer

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestGCSPresignListVector reproduces Google's "List Objects" conformance
// vector (a bucket GET with no query) through PresignList.
func TestGCSPresignListVector(t *testing.T) {
	keyFile := gcsVectorKeyFile(t)
	found := false
	for _, v := range gcsLoadVectors(t) {
		if v.Description != "List Objects" {
			continue
		}
		found = true
		g, err := NewGCS(gcsConfig(keyFile, v.Bucket))
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.PresignList(context.Background(), ListRequest{At: v.Timestamp, TTL: time.Duration(v.Expiration) * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if got != v.ExpectedURL {
			t.Errorf("URL:\ngot:  %s\nwant: %s", got, v.ExpectedURL)
		}
	}
	if !found {
		t.Fatal(`no "List Objects" vector: the vectors changed`)
	}
}

// TestGCSPresignList checks a page URL with prefix, marker and max-keys
// against the canonical request written out by hand from Google's rules
// (the same path the conformance vectors pin), and its signature against
// the key.
func TestGCSPresignList(t *testing.T) {
	g := gcsNewVectorSigner(t, gcsOptions{})
	at := time.Date(2019, 2, 1, 9, 0, 0, 0, time.UTC)
	r := ListRequest{Prefix: "images/a b+c%é/", Token: "images/a b+c%é/x~y", MaxKeys: 500, At: at, TTL: 300 * time.Second}
	got, err := g.PresignList(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	wantQuery := "X-Goog-Algorithm=GOOG4-RSA-SHA256" +
		"&X-Goog-Credential=test-iam-credentials%40dummy-project-id.iam.gserviceaccount.com%2F20190201%2Fauto%2Fstorage%2Fgoog4_request" +
		"&X-Goog-Date=20190201T090000Z&X-Goog-Expires=300&X-Goog-SignedHeaders=host" +
		"&marker=images%2Fa%20b%2Bc%25%C3%A9%2Fx~y&max-keys=500&prefix=images%2Fa%20b%2Bc%25%C3%A9%2F"
	wantCR := "GET\n/test-bucket\n" + wantQuery + "\nhost:storage.googleapis.com\n\nhost\nUNSIGNED-PAYLOAD"
	wantURL := "https://storage.googleapis.com/test-bucket?" + wantQuery + "&X-Goog-Signature="
	if !strings.HasPrefix(got, wantURL) {
		t.Fatalf("URL:\ngot:  %s\nwant: %s…", got, wantURL)
	}
	sts := "GOOG4-RSA-SHA256\n20190201T090000Z\n20190201/auto/storage/goog4_request\n" + gcsSHA256Hex(wantCR)
	sig, err := hex.DecodeString(strings.TrimPrefix(got, wantURL))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(sts))
	if err := rsa.VerifyPKCS1v15(&g.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("the signature does not sign the canonical request written by hand: %v", err)
	}
	// The store reads back exactly what was asked.
	u, _ := url.Parse(got)
	if q := u.Query(); q.Get("prefix") != r.Prefix || q.Get("marker") != r.Token || q.Get("max-keys") != "500" {
		t.Errorf("query decodes to %v", q)
	}

	t.Run("first page has no marker", func(t *testing.T) {
		got, err := g.PresignList(context.Background(), ListRequest{Prefix: "p/", At: at})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, "marker=") || !strings.Contains(got, "&X-Goog-Expires=300&") || !strings.Contains(got, "&prefix=p%2F&") {
			t.Errorf("URL %s", got)
		}
	})
	t.Run("virtual-hosted", func(t *testing.T) {
		g := gcsNewVectorSigner(t, gcsOptions{style: gcsVirtualHostedStyle})
		got, err := g.PresignList(context.Background(), ListRequest{Prefix: "p/", At: at})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, "https://test-bucket.storage.googleapis.com/?X-Goog-Algorithm=") {
			t.Errorf("URL %s", got)
		}
	})
	t.Run("no signing time", func(t *testing.T) {
		if _, err := g.PresignList(context.Background(), ListRequest{Prefix: "p/"}); err == nil {
			t.Error("signed without a time")
		}
	})
}

// TestS3PresignList checks the list URL's shape; versitygw and MinIO
// verify its signature (internal/listing's tests).
func TestS3PresignList(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, addressing, endpoint, wantPrefix string
	}{
		{"path", "path", "http://127.0.0.1:9000", "http://127.0.0.1:9000/media?"},
		{"virtual", "virtual", "https://s3.example.com", "https://media.s3.example.com/?"},
		{"base path", "path", "http://127.0.0.1:9000/base/", "http://127.0.0.1:9000/base/media?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewS3(context.Background(), Config{Provider: ProviderS3, Bucket: "media", Region: "us-east-1", Endpoint: tc.endpoint, Addressing: tc.addressing,
				Credentials: Credentials{Type: "static", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}}, S3Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.PresignList(context.Background(), ListRequest{Prefix: "a b+c/", Token: "tok/=+", MaxKeys: 7, At: at})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Fatalf("URL %s, want prefix %s", got, tc.wantPrefix)
			}
			u, _ := url.Parse(got)
			q := u.Query()
			for k, want := range map[string]string{"list-type": "2", "encoding-type": "url", "prefix": "a b+c/", "continuation-token": "tok/=+", "max-keys": "7", "X-Amz-Expires": "300", "X-Amz-Date": "20261130T100000Z"} {
				if q.Get(k) != want {
					t.Errorf("%s = %q, want %q", k, q.Get(k), want)
				}
			}
			if strings.Contains(u.RawQuery, "+") {
				t.Errorf("query %s has a '+': SigV4 wants %%20 and %%2B", u.RawQuery)
			}
		})
	}
}
