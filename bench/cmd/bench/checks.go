package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"time"
)

// checks asks every subject once, with a real HTTP client, whether it
// answers what the load generator will count as success, and follows
// redirects to prove the presigned URLs work. Failures become notes in the
// report; the subjects are still measured.
func (b *bench) checks(ctx context.Context) {
	client := &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	type answer struct {
		status int
		header http.Header
		body   []byte
	}
	get := func(url string, hdr map[string]string) (*answer, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		return &answer{resp.StatusCode, resp.Header, body}, nil
	}
	origin := map[string]string{"Origin": benchOrigin}
	fail := func(subject, format string, args ...any) {
		b.note("check %s: %s", subject, fmt.Sprintf(format, args...))
	}
	// redirect checks a 302 and follows its Location; it returns the Location.
	redirect := func(subject, url string, wantSize int) string {
		a, err := get(url, origin)
		if err != nil {
			fail(subject, "%v", err)
			return ""
		}
		if a.status != http.StatusFound {
			fail(subject, "status %d, want 302: %s", a.status, truncate(string(a.body), 200))
			return ""
		}
		if got := a.header.Get("Access-Control-Allow-Origin"); got != benchOrigin && got != "*" {
			fail(subject, "Access-Control-Allow-Origin %q, want %q", got, benchOrigin)
		}
		loc := a.header.Get("Location")
		if loc == "" {
			fail(subject, "302 without Location")
			return ""
		}
		if wantSize >= 0 {
			f, err := get(loc, nil)
			switch {
			case err != nil:
				fail(subject, "following Location: %v", err)
			case f.status != http.StatusOK || len(f.body) != wantSize:
				fail(subject, "following Location: status %d, %d bytes; want 200, %d bytes: %s",
					f.status, len(f.body), wantSize, truncate(string(f.body), 200))
			}
		}
		return loc
	}
	locLen := map[string]int{}

	if loc := redirect("floor-302", "http://"+b.floorAddr+"/v1/s/bench/thumbs/000.jpg", -1); loc != "" {
		locLen["floor-302"] = len(loc)
	}
	if b.peerNote == "" {
		if loc := redirect("peer-app-presign", b.peerURL(0), thumbSize); loc != "" {
			locLen["peer-app-presign"] = len(loc)
		}
	}
	var want1m []byte
	for _, tc := range []struct{ subject, endpoint string }{
		{"direct-get", "http://" + b.versityAddr},
		{"peer-nginx", "http://" + b.nginxAddr},
	} {
		u, err := b.presign(ctx, tc.endpoint, bigObjects[0].key)
		if err != nil {
			fail(tc.subject, "presign: %v", err)
			continue
		}
		a, err := get(u, origin)
		if err != nil {
			fail(tc.subject, "%v", err)
			continue
		}
		if a.status != http.StatusOK || len(a.body) != bigObjects[0].size {
			fail(tc.subject, "status %d, %d bytes; want 200, %d bytes: %s", a.status, len(a.body), bigObjects[0].size, truncate(string(a.body), 200))
			continue
		}
		if want1m == nil {
			want1m = a.body
		}
	}
	if b.edge == nil {
		b.locLen = locLen
		return
	}

	hit := b.edgeURL(srcRedirect, thumbKey(0), b.hsToken)
	loc := redirect("edge-redirect-hit", hit, thumbSize)
	if loc != "" {
		locLen["edge-redirect-hit"] = len(loc)
		if a, err := get(hit, origin); err == nil {
			if a.header.Get("Location") != loc {
				fail("edge-redirect-hit", "a second request got a different Location: the presigned URL is not reused within its signing window")
			}
			if a.header.Get("Cache-Control") == "" {
				fail("edge-redirect-hit", "no Cache-Control on the 302")
			}
			if a.header.Get("Referrer-Policy") != "no-referrer" {
				fail("edge-redirect-hit", "Referrer-Policy %q, want no-referrer", a.header.Get("Referrer-Policy"))
			}
		}
	}
	redirect("edge-redirect-miss", b.edgeURL(srcRedirect, "miss/check-0.jpg", b.hsToken), -1)
	if toks, err := b.es.mint(1, "check", 3*time.Hour, benchGrants); err == nil {
		redirect("edge-redirect-token-cold", b.edgeURL(srcRedirect, thumbKey(1), toks[0]), thumbSize)
	}
	if a, err := get(b.edgeURL(srcRedirect, thumbKey(0), ""), origin); err == nil && a.status != http.StatusUnauthorized {
		fail("edge", "no token: status %d, want 401", a.status)
	}

	stream := b.edgeURL(srcStream, bigObjects[0].key, b.hsToken)
	if a, err := get(stream, origin); err != nil {
		fail("edge-stream", "%v", err)
	} else if a.status != http.StatusOK || len(a.body) != bigObjects[0].size {
		fail("edge-stream", "status %d, %d bytes; want 200, %d bytes: %s", a.status, len(a.body), bigObjects[0].size, truncate(string(a.body), 200))
	} else if want1m != nil && sha256.Sum256(a.body) != sha256.Sum256(want1m) {
		fail("edge-stream", "body differs from the object's bytes")
	}
	if a, err := get(stream, map[string]string{"Range": "bytes=100-199", "Origin": benchOrigin}); err != nil {
		fail("edge-stream", "range: %v", err)
	} else if a.status != http.StatusPartialContent || len(a.body) != 100 ||
		(want1m != nil && !bytes.Equal(a.body, want1m[100:200])) {
		fail("edge-stream", "Range bytes=100-199: status %d, %d bytes; want 206 and those 100 bytes", a.status, len(a.body))
	}
	b.locLen = locLen
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
