package edge_test

// Every cloud through the edge, against real servers that check
// signatures: assumed roles against MinIO's STS (session tokens checked on
// presigned URLs), GCS's S3-compatible interop path against versitygw,
// Azure Blob against Azurite; and deterministic windowed signing for every
// provider.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/auth"
	"github.com/edgeproxy/edge/internal/edge"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

const cloudSecret = "clouds-test-hs256-secret-0123456789abcdef"

// cloudEdge is an edge server built from a config's sources section,
// served by an httptest server on loopback.
type cloudEdge struct {
	srv   *edge.Server
	url   string
	token string
}

// newCloudEdge builds an edge the way `edge serve` does (ParseConfig, New)
// from the YAML list under sources:, with the clock now (nil: the wall
// clock), and a token granting every source.
func newCloudEdge(t testing.TB, now func() time.Time, sources string) *cloudEdge {
	t.Helper()
	y := fmt.Sprintf("auth:\n  keys: [{id: k1, alg: HS256, secret: %q}]\nsources:\n%s", cloudSecret, sources)
	cfg, err := edge.ParseConfig([]byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, y)
	}
	srv, err := edge.New(context.Background(), cfg, edge.Options{Now: now})
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	var grants []auth.Grant
	for _, s := range cfg.Sources {
		grants = append(grants, auth.Grant{Source: s.Name})
	}
	mo := auth.MintOptions{Subject: "annotator-9", Grants: grants, TTL: time.Hour}
	if now != nil {
		mo.Now = now()
	}
	tok, err := auth.Mint(cfg.Auth, mo)
	if err != nil {
		t.Fatal(err)
	}
	return &cloudEdge{srv: srv, url: hs.URL, token: tok}
}

// get sends GET target (path and query, escaped) to the edge with the
// token as a bearer header, without following redirects.
func (e *cloudEdge) get(t testing.TB, target string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Authorization", "Bearer "+e.token)
	return fetch(t, e.url+target, hdr)
}

// redirect asks the edge for target and returns the 302's Location and
// its max-age.
func (e *cloudEdge) redirect(t testing.TB, target string) (string, int) {
	t.Helper()
	resp, body := e.get(t, target, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: %d %s, want 302", target, resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	cc := resp.Header.Get("Cache-Control")
	age, ok := strings.CutPrefix(cc, "private, max-age=")
	n, err := strconv.Atoi(age)
	if !ok || err != nil {
		t.Fatalf("Cache-Control %q, want private, max-age=N", cc)
	}
	return loc, n
}

// fetch GETs u on loopback (any *.localhost too) without following
// redirects and reads the whole body.
func fetch(t testing.TB, u string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := cloudClient().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", u, err)
	}
	return resp, body
}

var cloudClient = sync.OnceValue(testenv.LocalhostClient)

// storageURL is the /v1/u target for a storage URL.
func storageURL(raw string) string { return "/v1/u?url=" + url.QueryEscape(raw) }

func query(t testing.TB, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("Location %q: %v", raw, err)
	}
	return u.Query()
}

// withParam returns raw with query parameter name set to value, the rest
// of the query kept byte for byte.
func withParam(t testing.TB, raw, name, value string) string {
	t.Helper()
	base, q, _ := strings.Cut(raw, "?")
	parts := strings.Split(q, "&")
	found := false
	for i, p := range parts {
		if k, _, _ := strings.Cut(p, "="); k == name {
			parts[i] = name + "=" + url.QueryEscape(value)
			found = true
		}
	}
	if !found {
		t.Fatalf("no %s in %s", name, raw)
	}
	return base + "?" + strings.Join(parts, "&")
}

// flipFirst changes the first character of s to another one that is
// valid in hex, base64 and JWTs alike.
func flipFirst(s string) string {
	if s == "" {
		return "x"
	}
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// wantBytes checks a successful fetch returned exactly want.
func wantBytes(t testing.TB, what string, resp *http.Response, body, want []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %.300s, want 200", what, resp.StatusCode, body)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("%s: %d bytes, not the object's %d", what, len(body), len(want))
	}
}

// wantRange checks Range: bytes=from-to gives 206 with that slice.
func wantRange(t testing.TB, e *cloudEdge, target string, obj []byte, from, to int) {
	t.Helper()
	resp, body := e.get(t, target, http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", from, to)}})
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("Range GET %s: %d %.300s, want 206", target, resp.StatusCode, body)
	}
	if want := fmt.Sprintf("bytes %d-%d/%d", from, to, len(obj)); resp.Header.Get("Content-Range") != want {
		t.Errorf("Content-Range = %q, want %q", resp.Header.Get("Content-Range"), want)
	}
	if !bytes.Equal(body, obj[from:to+1]) {
		t.Errorf("Range body is not bytes %d-%d of the object", from, to)
	}
}

// wantRefused checks storage refused a URL (403) without serving the object.
func wantRefused(t testing.TB, what, u string, obj []byte) {
	t.Helper()
	resp, body := fetch(t, u, nil)
	if resp.StatusCode != http.StatusForbidden || bytes.Contains(body, obj[:64]) {
		t.Errorf("%s: %d %.200s, want 403 from storage", what, resp.StatusCode, body)
		return
	}
	_, code, _ := strings.Cut(string(body), "<Code>")
	code, _, _ = strings.Cut(code, "</Code>")
	t.Logf("%s: %d %s", what, resp.StatusCode, code)
}

// testObject is n bytes of a pattern without a short period, so a range
// at the wrong offset does not compare equal.
func testObject(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	copy(b, fmt.Sprintf("object of %d bytes\n", n))
	return b
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// assumeRoleSource is an s3 source on MinIO whose credentials come from
// MinIO's STS AssumeRole, called with base keys access/secret.
func assumeRoleSource(name, mode, endpoint, stsEndpoint, access, secret string, duration time.Duration) string {
	return fmt.Sprintf(`  - name: %s
    provider: s3
    mode: %s
    bucket: partner-frames
    region: us-east-1
    endpoint: %q
    addressing: path
    prefix: "datasets/"
    url_ttl: 24h
    credentials:
      type: assume_role
      role_arn: "arn:aws:iam::123456789012:role/edge-read"
      external_id: "ext-42"
      session_name: "edge-test"
      duration: %s
      sts_endpoint: %q
      access_key_id: %q
      secret_access_key: %q
`, name, mode, endpoint, duration, stsEndpoint, access, secret)
}

// TestCloudAssumeRoleMinio: an assume_role source against MinIO's STS. The
// 302's URL carries the session token, returns the object, is capped at
// the session's expiry minus signer.CredentialMargin although url_ttl is
// 24h, and the 302's max-age does not outlive it; MinIO refuses the URL
// with a tampered session token. MinIO ignores role_arn and external_id
// (it has no role trust policies for AssumeRole: the session inherits the
// calling user's policy), so those are checked against a local STS in
// internal/signer.
func TestCloudAssumeRoleMinio(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinio(t)
	m.CreateBucket(t, "partner-frames")
	obj := testObject(96 << 10)
	m.Put(t, "partner-frames", "datasets/42/frame 1.jpg", obj)

	var sources strings.Builder
	for _, s := range []struct {
		name, mode string
		d          time.Duration
	}{{"role15", "redirect", 15 * time.Minute}, {"role1h", "redirect", time.Hour}, {"role-stream", "stream", 15 * time.Minute}} {
		sources.WriteString(assumeRoleSource(s.name, s.mode, m.Endpoint, m.Endpoint, m.AccessKey, m.SecretKey, s.d))
	}
	start := time.Now()
	e := newCloudEdge(t, nil, sources.String())
	if err := e.srv.CheckReady(t.Context()); err != nil {
		t.Fatalf("CheckReady: %v", err)
	}
	ready := time.Now()

	for _, tc := range []struct {
		source  string
		session time.Duration
	}{{"role15", 15 * time.Minute}, {"role1h", time.Hour}} {
		t.Run(tc.source, func(t *testing.T) {
			loc, maxAge := e.redirect(t, "/v1/s/"+tc.source+"/42/frame%201.jpg")
			asked := time.Now()
			if !strings.HasPrefix(loc, m.Endpoint+"/partner-frames/datasets/42/frame%201.jpg?") {
				t.Fatalf("Location %s is not the object on MinIO", loc)
			}
			q := query(t, loc)
			token := q.Get("X-Amz-Security-Token")
			if token == "" {
				t.Fatalf("Location has no X-Amz-Security-Token: %s", loc)
			}
			if access, _, _ := strings.Cut(q.Get("X-Amz-Credential"), "/"); access == m.AccessKey || access == "" {
				t.Errorf("URL signed with %q, want the session's temporary key", access)
			}
			date, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
			if err != nil {
				t.Fatal(err)
			}
			secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
			if err != nil {
				t.Fatal(err)
			}
			expires := time.Duration(secs) * time.Second
			ends := date.Add(expires)
			// The session began between start and ready (CheckReady
			// fetched it) and lasts tc.session; MinIO states its expiry
			// in whole seconds.
			usable := tc.session - signer.CredentialMargin
			if earliest, latest := start.Truncate(time.Second).Add(usable-time.Second), ready.Add(usable); ends.Before(earliest) || ends.After(latest) {
				t.Errorf("URL ends %s, want session expiry - %s, in [%s, %s]", ends, signer.CredentialMargin, earliest, latest)
			}
			if expires > usable {
				t.Errorf("X-Amz-Expires = %d, above the session's usable %d", secs, int(usable/time.Second))
			}
			if date.Before(start.Truncate(time.Second).Add(-time.Second)) {
				t.Errorf("X-Amz-Date %s predates the session (fetched after %s)", date, start)
			}
			if left := int(ends.Sub(asked) / time.Second); maxAge > left || maxAge <= 0 {
				t.Errorf("max-age=%d, want positive and at most the URL's remaining %ds", maxAge, left)
			}
			t.Logf("url_ttl 24h, session %s → X-Amz-Expires=%d (X-Amz-Date %s), 302 max-age=%d",
				tc.session, secs, date.Format(time.RFC3339), maxAge)

			resp, body := fetch(t, loc, nil)
			wantBytes(t, "the 302's URL", resp, body, obj)

			// The same URL again within the window (browser cache hits).
			if again, _ := e.redirect(t, "/v1/s/"+tc.source+"/42/frame%201.jpg"); again != loc {
				t.Errorf("second 302 differs:\n%s\n%s", loc, again)
			}
			wantRefused(t, "tampered session token", withParam(t, loc, "X-Amz-Security-Token", flipFirst(token)), obj)
			wantRefused(t, "tampered signature", withParam(t, loc, "X-Amz-Signature", flipFirst(q.Get("X-Amz-Signature"))), obj)
		})
	}

	t.Run("stream", func(t *testing.T) {
		resp, body := e.get(t, "/v1/s/role-stream/42/frame%201.jpg", nil)
		wantBytes(t, "stream mode", resp, body, obj)
		wantRange(t, e, "/v1/s/role-stream/42/frame%201.jpg", obj, 1000, 4999)
	})
}

// TestCloudReadiness: /readyz is 200 when every source's credentials
// resolve (assume_role against MinIO) and 503 naming the sources whose
// credentials fail: STS on a closed port, STS refusing the base keys.
// Their objects are 503 credentials_unavailable; the others still work.
func TestCloudReadiness(t *testing.T) {
	t.Parallel()
	m := testenv.StartMinio(t)
	good := assumeRoleSource("good", "redirect", m.Endpoint, m.Endpoint, m.AccessKey, m.SecretKey, 15*time.Minute)

	ok := newCloudEdge(t, nil, good)
	if err := ok.srv.CheckReady(t.Context()); err != nil {
		t.Fatalf("CheckReady: %v", err)
	}
	if resp, body := fetch(t, ok.url+"/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200", resp.StatusCode, body)
	}

	wrongSecret := "wrong-" + m.SecretKey
	e := newCloudEdge(t, nil, good+
		assumeRoleSource("closed", "redirect", m.Endpoint, "http://"+closedPort(t), m.AccessKey, m.SecretKey, 15*time.Minute)+
		assumeRoleSource("denied", "redirect", m.Endpoint, m.Endpoint, m.AccessKey, wrongSecret, 15*time.Minute))
	if err := e.srv.CheckReady(t.Context()); err == nil {
		t.Fatal("CheckReady passed with failing credentials")
	}
	// Failing sources never make the edge unready: their state shows in
	// SourceStates and edge_source_up.
	if resp, body := fetch(t, e.url+"/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200", resp.StatusCode, body)
	}
	_, metrics := fetch(t, e.url+"/metrics", nil)
	for _, st := range e.srv.SourceStates() {
		wantUp := st.Name == "good"
		if st.Up != wantUp || (st.Problem == "") != wantUp {
			t.Errorf("state of %s = %+v, want up %v", st.Name, st, wantUp)
		}
		for _, secret := range []string{m.SecretKey, wrongSecret, e.token} {
			if strings.Contains(st.Problem, secret) {
				t.Errorf("state of %s leaks a secret: %s", st.Name, st.Problem)
			}
		}
		if line := fmt.Sprintf("edge_source_up{source=%q} %d", st.Name, map[bool]int{true: 1}[wantUp]); !strings.Contains(string(metrics), line) {
			t.Errorf("/metrics lacks %s", line)
		}
		t.Logf("%s: up %v, problem %q", st.Name, st.Up, st.Problem)
	}

	for _, src := range []string{"closed", "denied"} {
		resp, body := e.get(t, "/v1/s/"+src+"/k.jpg", nil)
		if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte(`"credentials_unavailable"`)) {
			t.Errorf("/v1/s/%s: %d %s, want 503 credentials_unavailable", src, resp.StatusCode, body)
		}
	}
	e.redirect(t, "/v1/s/good/k.jpg")
}

// gcsKeyFile is Google's conformance-test service account (a dummy key
// published with the V4 signing vectors; it signs nothing real).
func gcsKeyFile(t testing.TB) string {
	return filepath.Join(testenv.RepoRoot(t), "internal", "signer", "testdata", "gcs-v4", "test_service_account.not-a-test.json")
}

// TestCloudGCSInterop: gcs sources with HMAC keys sign SigV4 for GCS's
// S3-compatible interop endpoint; against versitygw standing in for it
// (with its own region configured) the redirect's URL returns the exact
// bytes, stream mode serves them with Range, and gs:// and
// storage.googleapis.com storage URLs resolve to gcs sources.
func TestCloudGCSInterop(t *testing.T) {
	t.Parallel()
	v := testenv.StartVersity(t)
	obj := testObject(200 << 10)
	for _, b := range []string{"acme-gcs", "acme-gcs-stream"} {
		v.CreateBucket(t, b)
		v.Put(t, b, "scans/img 1.png", obj)
	}
	hmac := func(name, mode, bucket, endpoint, region, prefix string) string {
		return fmt.Sprintf(`  - name: %s
    provider: gcs
    mode: %s
    bucket: %s
    endpoint: %q
    region: %q
    prefix: %q
    credentials: {type: hmac, access_key_id: %q, secret_access_key: %q}
`, name, mode, bucket, endpoint, region, prefix, v.AccessKey, v.SecretKey)
	}
	e := newCloudEdge(t, nil,
		hmac("gcs", "redirect", "acme-gcs", v.Endpoint, v.Region, "scans/")+
			hmac("gcs-stream", "stream", "acme-gcs-stream", v.Endpoint, v.Region, "scans/")+
			// the same bucket, a shorter prefix: gs:// URLs go to "gcs"
			hmac("gcs-auto", "redirect", "acme-gcs", v.Endpoint, "", "")+
			hmac("gcs-cloud", "redirect", "acme-gcs-cloud", "", "", "scans/")+
			fmt.Sprintf(`  - name: gcs-sa
    provider: gcs
    bucket: acme-gcs-sa
    credentials: {type: service_account, key_file: %q}
`, gcsKeyFile(t)))

	loc, _ := e.redirect(t, "/v1/s/gcs/img%201.png")
	if !strings.HasPrefix(loc, v.Endpoint+"/acme-gcs/scans/img%201.png?") {
		t.Fatalf("Location %s is not the object on the interop endpoint, path-style", loc)
	}
	q := query(t, loc)
	if cred := q.Get("X-Amz-Credential"); !strings.HasSuffix(cred, "/"+v.Region+"/s3/aws4_request") {
		t.Errorf("X-Amz-Credential %q: want the configured region %s", cred, v.Region)
	}
	resp, body := fetch(t, loc, nil)
	wantBytes(t, "the 302's URL", resp, body, obj)
	wantRefused(t, "tampered signature", withParam(t, loc, "X-Amz-Signature", flipFirst(q.Get("X-Amz-Signature"))), obj)

	// Without a region the signer uses GCS's "auto", which versitygw
	// (checking its own region like AWS) refuses: why the source above
	// sets one.
	auto, _ := e.redirect(t, "/v1/s/gcs-auto/scans/img%201.png")
	if cred := query(t, auto).Get("X-Amz-Credential"); !strings.HasSuffix(cred, "/auto/s3/aws4_request") {
		t.Errorf("gcs source without region: X-Amz-Credential %q, want region auto", cred)
	}
	resp, body = fetch(t, auto, nil)
	_, code, _ := strings.Cut(string(body), "<Code>")
	code, _, _ = strings.Cut(code, "</Code>")
	t.Logf("versitygw on region auto: %d %s", resp.StatusCode, code)
	if resp.StatusCode == http.StatusOK {
		t.Errorf("versitygw accepted region auto; the region override is untested")
	}

	t.Run("storage URLs", func(t *testing.T) {
		for _, tc := range []struct{ storage, same string }{
			{"gs://acme-gcs/scans/img 1.png", loc},
			{"gs://acme-gcs-sa/cats/1.jpg", ""},
			{"https://storage.googleapis.com/acme-gcs-sa/cats/1.jpg", ""},
		} {
			got, _ := e.redirect(t, storageURL(tc.storage))
			if tc.same != "" && got != tc.same {
				t.Errorf("%s → %s, want the /v1/s Location %s", tc.storage, got, tc.same)
			}
			if strings.Contains(tc.storage, "acme-gcs-sa") {
				want := "https://storage.googleapis.com/acme-gcs-sa/cats/1.jpg?X-Goog-Algorithm=GOOG4-RSA-SHA256&"
				if !strings.HasPrefix(got, want) || query(t, got).Get("X-Goog-Signature") == "" {
					t.Errorf("%s → %s, want a V4 RSA URL starting %s", tc.storage, got, want)
				}
			}
		}
		// The cloud's own host: the HMAC source without an endpoint signs
		// for storage.googleapis.com, region auto.
		got, _ := e.redirect(t, storageURL("https://storage.googleapis.com/acme-gcs-cloud/scans/x.jpg"))
		if !strings.HasPrefix(got, "https://storage.googleapis.com/acme-gcs-cloud/scans/x.jpg?") ||
			!strings.HasSuffix(query(t, got).Get("X-Amz-Credential"), "/auto/s3/aws4_request") {
			t.Errorf("storage.googleapis.com URL → %s, want SigV4 for region auto on storage.googleapis.com", got)
		}
		// A bucket no source has, and the versitygw-backed bucket named on
		// Google's host (not the custom endpoint): 404.
		for _, u := range []string{"gs://other-bucket/scans/a.png", "https://storage.googleapis.com/acme-gcs/scans/img 1.png"} {
			if resp, body := e.get(t, storageURL(u), nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d %s, want 404", u, resp.StatusCode, body)
			}
		}
	})

	t.Run("stream", func(t *testing.T) {
		resp, body := e.get(t, "/v1/s/gcs-stream/img%201.png", nil)
		wantBytes(t, "stream mode", resp, body, obj)
		wantRange(t, e, "/v1/s/gcs-stream/img%201.png", obj, 100, 65635)
		resp, body = e.get(t, storageURL("gs://acme-gcs-stream/scans/img 1.png"), nil)
		wantBytes(t, "stream mode through gs://", resp, body, obj)
		if resp, body := e.get(t, "/v1/s/gcs-stream/missing.png", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("missing object: %d %s, want 404", resp.StatusCode, body)
		}
	})
}

// TestCloudAzure: azure sources with the account key against Azurite: the
// redirect's SAS URL returns the exact bytes (by source and by either
// storage URL form), Azurite refuses it tampered, and stream mode serves
// the blob with Range.
func TestCloudAzure(t *testing.T) {
	t.Parallel()
	a := testenv.StartAzurite(t)
	obj := testObject(150 << 10)
	for _, c := range []string{"frames", "clips"} {
		a.CreateContainer(t, c)
		a.Put(t, c, "cats/1 (a).jpg", obj)
	}
	azure := func(name, mode, account, container, endpoint, key string) string {
		return fmt.Sprintf(`  - name: %s
    provider: azure
    mode: %s
    account: %s
    bucket: %s
    endpoint: %q
    credentials: {type: shared_key, account_key: %q}
`, name, mode, account, container, endpoint, key)
	}
	cloudKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 64))
	e := newCloudEdge(t, nil,
		azure("az", "redirect", a.Account, "frames", a.Endpoint, a.Key)+
			azure("az-stream", "stream", a.Account, "clips", a.Endpoint, a.Key)+
			azure("az-cloud", "redirect", "acmestorage", "frames", "", cloudKey))

	loc, maxAge := e.redirect(t, "/v1/s/az/cats/1%20(a).jpg")
	if !strings.HasPrefix(loc, a.Endpoint+"/frames/cats/1%20%28a%29.jpg?") {
		t.Fatalf("Location %s is not the blob on Azurite", loc)
	}
	q := query(t, loc)
	if q.Get("sp") != "r" || q.Get("spr") != "https,http" {
		t.Errorf("SAS sp=%q spr=%q, want read-only, HTTP allowed for the plain-HTTP emulator", q.Get("sp"), q.Get("spr"))
	}
	if se, err := time.Parse(time.RFC3339, q.Get("se")); err != nil || maxAge <= 0 || time.Now().Add(time.Duration(maxAge)*time.Second).After(se) {
		t.Errorf("max-age=%d with se=%s: want positive and within the SAS's life", maxAge, q.Get("se"))
	}
	resp, body := fetch(t, loc, nil)
	wantBytes(t, "the 302's SAS URL", resp, body, obj)
	wantRefused(t, "tampered SAS", withParam(t, loc, "sig", flipFirst(q.Get("sig"))), obj)

	t.Run("storage URLs", func(t *testing.T) {
		// Azurite's path-style URL, as a platform on the emulator stores it.
		raw := a.Endpoint + "/frames/cats/1 (a).jpg"
		if got, _ := e.redirect(t, storageURL(raw)); got != loc {
			t.Errorf("%s → %s, want the /v1/s Location %s", raw, got, loc)
		}
		// The cloud form, for the source without an endpoint.
		got, _ := e.redirect(t, storageURL("https://acmestorage.blob.core.windows.net/frames/cats/1 (a).jpg"))
		gq := query(t, got)
		if !strings.HasPrefix(got, "https://acmestorage.blob.core.windows.net/frames/cats/1%20%28a%29.jpg?") ||
			gq.Get("sig") == "" || gq.Get("sp") != "r" || gq.Get("spr") != "https" {
			t.Errorf("blob.core.windows.net URL → %s, want an HTTPS-only read SAS on the account", got)
		}
		// Another account's container of the same name: 404.
		if resp, body := e.get(t, storageURL("https://otheraccount.blob.core.windows.net/frames/cats/1.jpg"), nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("other account: %d %s, want 404", resp.StatusCode, body)
		}
	})

	t.Run("stream", func(t *testing.T) {
		resp, body := e.get(t, "/v1/s/az-stream/cats/1%20(a).jpg", nil)
		wantBytes(t, "stream mode", resp, body, obj)
		if resp.Header.Get("Accept-Ranges") != "bytes" || resp.Header.Get("ETag") == "" {
			t.Errorf("stream headers Accept-Ranges %q ETag %q", resp.Header.Get("Accept-Ranges"), resp.Header.Get("ETag"))
		}
		wantRange(t, e, "/v1/s/az-stream/cats/1%20(a).jpg", obj, 0, 1023)
		wantRange(t, e, "/v1/s/az-stream/cats/1%20(a).jpg", obj, 100000, len(obj)-1)
		resp, body = e.get(t, storageURL(a.Endpoint+"/clips/cats/1 (a).jpg"), nil)
		wantBytes(t, "stream mode through the Azurite URL", resp, body, obj)
		if resp, body := e.get(t, "/v1/s/az-stream/cats/missing.jpg", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("missing blob: %d %s, want 404", resp.StatusCode, body)
		}
	})
}

// cloudClock is a settable clock shared by several edges.
type cloudClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *cloudClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *cloudClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestCloudDeterministicSigning: edges with the same config and clock
// (replicas) hand out byte-identical URLs for every provider, through the
// whole signing window, and new ones, identical again, in the next.
func TestCloudDeterministicSigning(t *testing.T) {
	t.Parallel()
	azKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 64))
	sources := fmt.Sprintf(`  - name: s3
    provider: s3
    bucket: acme-images
    region: eu-west-1
    credentials: {type: static, access_key_id: AKIDEXAMPLE, secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
  - name: gcs
    provider: gcs
    bucket: acme-gcs-images
    credentials: {type: service_account, key_file: %q}
  - name: gcs-hmac
    provider: gcs
    bucket: acme-gcs-images
    credentials: {type: hmac, access_key_id: GOOGTS7C7FUP3AIRVJTE2BCD, secret_access_key: "bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ"}
  - name: azure
    provider: azure
    account: acmestorage
    bucket: frames
    credentials: {type: shared_key, account_key: %q}
`, gcsKeyFile(t), azKey)
	clock := &cloudClock{t: time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)} // window [12:00, 12:30)
	a := newCloudEdge(t, clock.Now, sources)
	b := newCloudEdge(t, clock.Now, sources)
	paths := map[string]string{
		"s3":       "/v1/s/s3/cats/1.jpg",
		"gcs":      "/v1/s/gcs/cats/1.jpg",
		"gcs-hmac": "/v1/s/gcs-hmac/cats/1.jpg",
		"azure":    "/v1/s/azure/cats/1.jpg",
	}
	first := map[string]string{}
	for name, p := range paths {
		la, _ := a.redirect(t, p)
		lb, _ := b.redirect(t, p)
		if la != lb {
			t.Errorf("%s: two edges, one clock, different URLs:\n%s\n%s", name, la, lb)
		}
		first[name] = la
	}
	// Later in the same window, a third edge (no cache to hide behind)
	// signs the same URLs.
	clock.Add(20 * time.Minute)
	c := newCloudEdge(t, clock.Now, sources)
	for name, p := range paths {
		if lc, _ := c.redirect(t, p); lc != first[name] {
			t.Errorf("%s: same window, fresh edge, different URL:\n%s\n%s", name, first[name], lc)
		}
	}
	// The next window: new URLs, still identical across edges.
	clock.Add(10 * time.Minute)
	d := newCloudEdge(t, clock.Now, sources)
	for name, p := range paths {
		la, _ := a.redirect(t, p)
		ld, _ := d.redirect(t, p)
		if la == first[name] {
			t.Errorf("%s: the next window still hands out the old URL", name)
		}
		if la != ld {
			t.Errorf("%s: next window, two edges, different URLs:\n%s\n%s", name, la, ld)
		}
	}
}

// TestCloudStorageURLTie: when two sources hold the same bucket under the
// same prefix, a storage URL always resolves to the one listed first.
func TestCloudStorageURLTie(t *testing.T) {
	t.Parallel()
	src := func(name, access string) string {
		return fmt.Sprintf(`  - name: %s
    provider: s3
    bucket: shared-bucket
    region: eu-west-1
    prefix: "p/"
    credentials: {type: static, access_key_id: %s, secret_access_key: "secret-of-%s"}
`, name, access, access)
	}
	e := newCloudEdge(t, nil, src("first", "AKIDFIRST")+src("second", "AKIDSECOND"))
	for range 20 {
		loc, _ := e.redirect(t, storageURL("s3://shared-bucket/p/k.jpg"))
		if cred := query(t, loc).Get("X-Amz-Credential"); !strings.HasPrefix(cred, "AKIDFIRST/") {
			t.Fatalf("s3://shared-bucket/p/k.jpg signed by %q, want the first source", cred)
		}
	}
}
