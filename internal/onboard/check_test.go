package onboard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

// s3Source is an s3 source on srv with static keys.
func s3Source(name, endpoint, bucket, access, secret string) Source {
	return Source{
		Name:   name,
		Prefix: "images/",
		Config: signer.Config{
			Provider: signer.ProviderS3, Bucket: bucket, Region: "us-east-1", Endpoint: endpoint,
			Credentials: signer.Credentials{Type: "static", AccessKeyID: access, SecretAccessKey: secret},
		},
		Origins: []string{"https://app.example.com", "https://*.segments.ai"},
	}
}

// stepOf returns the named step of r, failing t when it is missing.
func stepOf(t *testing.T, r CheckResult, name string) Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Step == name {
			return s
		}
	}
	t.Fatalf("no step %q in %+v", name, r.Steps)
	return Step{}
}

// wantOrder checks the steps come in the contract's order, each once.
func wantOrder(t *testing.T, r CheckResult) {
	t.Helper()
	want := []string{StepConfig, StepCredentials, StepReachable, StepRead, StepList, StepKMS, StepCORS}
	if len(r.Steps) != len(want) {
		t.Fatalf("steps %+v, want %v", r.Steps, want)
	}
	for i, s := range r.Steps {
		if s.Step != want[i] {
			t.Fatalf("step %d is %q, want %q (%+v)", i, s.Step, want[i], r.Steps)
		}
		switch s.Status {
		case StatusOK, StatusWarn, StatusFail, StatusSkipped:
		default:
			t.Errorf("step %s: status %q", s.Step, s.Status)
		}
		if (s.Status == StatusFail) != (s.Code != "" && s.Status == StatusFail) {
			t.Errorf("step %s fails without a code", s.Step)
		}
	}
}

// noSecrets fails t when the result, as JSON, holds any of secrets or a
// signature.
func noSecrets(t *testing.T, r CheckResult, secrets ...string) {
	t.Helper()
	b, _ := json.Marshal(r)
	for _, s := range append(secrets, "X-Amz-Signature", "X-Amz-Credential", "sig=") {
		if s != "" && strings.Contains(string(b), s) {
			t.Errorf("result holds %q: %s", s, b)
		}
	}
}

// wantStep checks one step's status and code.
func wantStep(t *testing.T, r CheckResult, step, status, code string) Step {
	t.Helper()
	s := stepOf(t, r, step)
	if s.Status != status || s.Code != code {
		b, _ := json.MarshalIndent(r, "", " ")
		t.Errorf("step %s: %s %q, want %s %q\n%s", step, s.Status, s.Code, status, code, b)
	}
	return s
}

// TestCheckVersity produces every code versitygw can: a healthy source,
// a wrong secret, an unknown key, a missing bucket, a bucket without CORS,
// one whose CORS lacks "null", an unreachable port and a hung one.
func TestCheckVersity(t *testing.T) {
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "good-bucket")
	v.CreateBucket(t, "nocors-bucket")
	v.CreateBucket(t, "appcors-bucket")
	rule := func(origins ...string) []types.CORSRule {
		return []types.CORSRule{{AllowedOrigins: origins, AllowedMethods: []string{"GET", "HEAD"}, AllowedHeaders: []string{"Range"}}}
	}
	v.PutBucketCORS(t, "good-bucket", rule("null", "https://app.example.com"))
	v.PutBucketCORS(t, "appcors-bucket", rule("https://app.example.com"))
	v.Put(t, "good-bucket", "images/cat.jpg", []byte("cat"))
	v.Put(t, "good-bucket", "other/dog.jpg", []byte("dog"))
	ctx := context.Background()

	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		var conns []net.Conn // accepted, never answered
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	closedPort := testenv.FreePort(t)

	for _, tc := range []struct {
		name     string
		src      Source
		checks   [][3]string // step, status, code
		ok       bool
		duration time.Duration // at most
	}{
		{"healthy", s3Source("good", v.Endpoint, "good-bucket", v.AccessKey, v.SecretKey), [][3]string{
			{StepConfig, StatusOK, ""}, {StepCredentials, StatusOK, ""}, {StepReachable, StatusOK, ""}, {StepRead, StatusOK, ""},
			{StepList, StatusSkipped, ""}, {StepKMS, StatusSkipped, ""}, {StepCORS, StatusOK, ""}}, true, 0},
		{"healthy, syncs", func() Source {
			s := s3Source("good", v.Endpoint, "good-bucket", v.AccessKey, v.SecretKey)
			s.Sync = true
			return s
		}(), [][3]string{
			{StepRead, StatusOK, ""}, {StepList, StatusOK, ""}, {StepCORS, StatusOK, ""}}, true, 0},
		{"wrong secret", s3Source("badsecret", v.Endpoint, "good-bucket", v.AccessKey, "wrong-secret-key-0123456789"), [][3]string{
			{StepReachable, StatusOK, ""}, {StepRead, StatusFail, CodeSignatureMismatch}, {StepCORS, StatusSkipped, ""}}, false, 0},
		{"unknown key", s3Source("badkey", v.Endpoint, "good-bucket", "AKIDNOSUCHKEY0000000", v.SecretKey), [][3]string{
			{StepRead, StatusFail, CodeCredentialsInvalid}}, false, 0},
		{"missing bucket", s3Source("nobucket", v.Endpoint, "no-such-bucket", v.AccessKey, v.SecretKey), [][3]string{
			{StepRead, StatusFail, CodeNoSuchBucket}}, false, 0},
		{"no CORS rule", s3Source("nocors", v.Endpoint, "nocors-bucket", v.AccessKey, v.SecretKey), [][3]string{
			{StepRead, StatusOK, ""}, {StepCORS, StatusWarn, CodeCORSNullMissing}}, true, 0},
		{"CORS without null", s3Source("appcors", v.Endpoint, "appcors-bucket", v.AccessKey, v.SecretKey), [][3]string{
			{StepCORS, StatusWarn, CodeCORSNullMissing}}, true, 0},
		{"CORS without the page origin", func() Source {
			s := s3Source("app2", v.Endpoint, "good-bucket", v.AccessKey, v.SecretKey)
			s.Origins = []string{"https://other.example.com"}
			return s
		}(), [][3]string{{StepCORS, StatusWarn, CodeCORSMissing}}, true, 0},
		{"stream mode needs no CORS", func() Source {
			s := s3Source("stream", v.Endpoint, "nocors-bucket", v.AccessKey, v.SecretKey)
			s.Mode = ModeStream
			return s
		}(), [][3]string{{StepCORS, StatusSkipped, ""}}, true, 0},
		{"unreachable port", s3Source("gone", "http://127.0.0.1:"+itoa(closedPort), "good-bucket", v.AccessKey, v.SecretKey), [][3]string{
			{StepReachable, StatusFail, CodeUnreachable}, {StepRead, StatusSkipped, ""}}, false, 0},
		{"hung port", s3Source("hung", "http://"+hung.Addr().String(), "good-bucket", v.AccessKey, v.SecretKey), [][3]string{
			{StepReachable, StatusFail, CodeTimeout}}, false, 3 * time.Second},
		{"invalid spec", func() Source {
			s := s3Source("bad", v.Endpoint, "", v.AccessKey, v.SecretKey)
			s.Prefix = "images"
			return s
		}(), [][3]string{
			{StepConfig, StatusFail, CodeConfigInvalid}, {StepCredentials, StatusSkipped, ""}}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := Check(ctx, tc.src, CheckOptions{StepTimeout: time.Second, Timeout: 5 * time.Second})
			if tc.duration > 0 && time.Since(start) > tc.duration {
				t.Errorf("check took %s, want at most %s", time.Since(start), tc.duration)
			}
			wantOrder(t, r)
			for _, c := range tc.checks {
				wantStep(t, r, c[0], c[1], c[2])
			}
			if r.OK != tc.ok {
				t.Errorf("ok = %v, want %v: %+v", r.OK, tc.ok, r.Steps)
			}
			for _, s := range r.Steps {
				if s.Status == StatusFail && s.Fix == "" {
					t.Errorf("step %s fails without a fix", s.Step)
				}
			}
			noSecrets(t, r, v.SecretKey, "wrong-secret-key-0123456789")
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestCheckDottedVirtual puts a TLS front with a *.example.com
// certificate before versitygw: a dotted bucket addressed virtual-hosted
// (my.bucket.example.com) fails the certificate, as on AWS; path-style
// through the same front works.
func TestCheckDottedVirtual(t *testing.T) {
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "my.bucket")
	target, _ := url.Parse(v.Endpoint)
	front := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the signed host
	}})
	front.StartTLS()
	defer front.Close()
	pool := x509.NewCertPool()
	pool.AddCert(front.Certificate())
	addr := front.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	for _, tc := range []struct {
		addressing string
		want       [][3]string
	}{
		{"virtual", [][3]string{{StepConfig, StatusWarn, CodeDottedBucketVirtual}, {StepReachable, StatusFail, CodeDottedBucketVirtual}}},
		{"auto", [][3]string{{StepConfig, StatusOK, ""}, {StepReachable, StatusOK, ""}, {StepRead, StatusOK, ""}}},
	} {
		t.Run(tc.addressing, func(t *testing.T) {
			src := s3Source("dotted", "https://example.com:"+port, "my.bucket", v.AccessKey, v.SecretKey)
			src.Addressing = tc.addressing
			src.Mode = ModeStream
			r := Check(context.Background(), src, CheckOptions{HTTPClient: client, StepTimeout: 2 * time.Second})
			wantOrder(t, r)
			for _, c := range tc.want {
				wantStep(t, r, c[0], c[1], c[2])
			}
		})
	}
}

// TestListCredentialsAreTheSigners: the list step acts as the identity
// the signer signs with. A web_identity source whose token file is
// missing has no credentials; listing with the edge's default chain
// instead would probe someone else's access.
func TestListCredentialsAreTheSigners(t *testing.T) {
	cfg := signer.Config{Provider: signer.ProviderS3, Bucket: "b", Region: "us-east-1", Credentials: signer.Credentials{
		Type: "web_identity", RoleARN: "arn:aws:iam::123456789012:role/r", WebIdentityToken: "/nonexistent/s3cr3t/token"}}
	p, err := s3Credentials(context.Background(), cfg, signer.S3Options{})
	if err == nil {
		t.Fatalf("got a provider %T, want an error: the token file is missing", p)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("got %q, want the path left out", err)
	}
}

// TestCheckClosesItsConnections: a check with its own client (the admin
// route's case: one per POST /admin/v1/check) leaves no connection open
// behind it; its transport keeps idle ones forever otherwise.
func TestCheckClosesItsConnections(t *testing.T) {
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<Error><Code>NoSuchKey</Code></Error>")
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	defer srv.Close()
	res := Check(context.Background(), s3Source("s", srv.URL, "bucket", "AKIAEXAMPLE", "secret"), CheckOptions{})
	if len(res.Steps) == 0 {
		t.Fatal("no steps")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(open)
		mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after Check returned", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
