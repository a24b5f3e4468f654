package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// get fetches u with LocalhostClient and returns status, header and body.
func get(t *testing.T, method, u string, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := LocalhostClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, body
}

// tamper changes the first character of query parameter name in u to
// another character valid in both hex (SigV4) and base64 (SAS).
func tamper(t *testing.T, u, name string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	sig := q.Get(name)
	if sig == "" {
		t.Fatalf("no %s in %s", name, u)
	}
	repl := "0"
	if sig[0] == '0' {
		repl = "1"
	}
	q.Set(name, repl+sig[1:])
	pu.RawQuery = q.Encode()
	return pu.String()
}

func TestVersity(t *testing.T) {
	t.Parallel()
	start := time.Now()
	v := StartVersity(t)
	t.Logf("versitygw up at %s in %v", v.Endpoint, time.Since(start))
	if !filepath.IsAbs(v.Dir) || v.Region != "us-east-1" || v.Port == 0 {
		t.Fatalf("bad Versity fields: %+v", v)
	}

	body := []byte("hello from versitygw\n" + strings.Repeat("0123456789", 100))
	v.CreateBucket(t, "media")
	v.Put(t, "media", "dir/a b+c.txt", body)
	if _, err := os.Stat(filepath.Join(v.Dir, "media", "dir", "a b+c.txt")); err != nil {
		t.Errorf("object not in the posix backend dir: %v", err)
	}

	ctx := context.Background()
	presign := func(c *s3.Client, key string, opts ...func(*s3.PresignOptions)) string {
		t.Helper()
		r, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String("media"), Key: aws.String(key),
		}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return r.URL
	}
	good := presign(v.Client(), "dir/a b+c.txt")

	t.Run("path-style GET", func(t *testing.T) {
		code, h, got := get(t, "GET", good, nil)
		if code != 200 || !bytes.Equal(got, body) {
			t.Fatalf("GET %s: %d %q", good, code, got)
		}
		if h.Get("ETag") == "" {
			t.Errorf("no ETag on 200")
		}
	})
	t.Run("tampered signature 403", func(t *testing.T) {
		bad := tamper(t, good, "X-Amz-Signature")
		if code, _, got := get(t, "GET", bad, nil); code != 403 {
			t.Fatalf("tampered GET: %d %s", code, got)
		}
	})
	t.Run("other object 403", func(t *testing.T) {
		other := strings.Replace(good, "/media/dir/", "/media/dis/", 1)
		if code, _, got := get(t, "GET", other, nil); code != 403 {
			t.Fatalf("GET other key with the same signature: %d %s", code, got)
		}
	})
	t.Run("wrong secret 403", func(t *testing.T) {
		c := s3.New(v.Client().Options(), func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(v.AccessKey, "wrong"+v.SecretKey, "")
		})
		u := presign(c, "dir/a b+c.txt")
		if code, _, got := get(t, "GET", u, nil); code != 403 {
			t.Fatalf("GET signed with a wrong secret: %d %s", code, got)
		}
	})
	t.Run("unknown access key 403", func(t *testing.T) {
		c := s3.New(v.Client().Options(), func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider("nobody", v.SecretKey, "")
		})
		u := presign(c, "dir/a b+c.txt")
		if code, _, got := get(t, "GET", u, nil); code != 403 {
			t.Fatalf("GET signed with an unknown access key: %d %s", code, got)
		}
	})
	t.Run("expired 403", func(t *testing.T) {
		req, err := http.NewRequest("GET", v.Endpoint+"/media/dir/a%20b%2Bc.txt?X-Amz-Expires=60", nil)
		if err != nil {
			t.Fatal(err)
		}
		// S3 paths are escaped once: without DisableURIPathEscaping the
		// v4 signer escapes the escaped path again and S3 answers 403.
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		creds := aws.Credentials{AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey}
		u, _, err := signer.PresignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", v.Region, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if code, _, got := get(t, "GET", u, nil); code != 403 {
			t.Fatalf("GET expired URL: %d %s", code, got)
		}
		// The same signer with a current time works, so the 403 above is
		// about expiry, not about how the URL was built.
		u, _, err = signer.PresignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", v.Region, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if code, _, got := get(t, "GET", u, nil); code != 200 {
			t.Fatalf("GET fresh URL from v4 signer: %d %s", code, got)
		}
	})
	t.Run("range 206", func(t *testing.T) {
		code, h, got := get(t, "GET", good, http.Header{"Range": {"bytes=6-9"}})
		if code != 206 || string(got) != "from" {
			t.Fatalf("range GET: %d %q", code, got)
		}
		if cr := h.Get("Content-Range"); cr != fmt.Sprintf("bytes 6-9/%d", len(body)) {
			t.Errorf("Content-Range %q", cr)
		}
	})
	t.Run("virtual-host GET", func(t *testing.T) {
		c := s3.New(v.Client().Options(), func(o *s3.Options) {
			o.UsePathStyle = false
			o.BaseEndpoint = aws.String(fmt.Sprintf("http://localhost:%d", v.Port))
		})
		u := presign(c, "dir/a b+c.txt")
		if !strings.HasPrefix(u, fmt.Sprintf("http://media.localhost:%d/", v.Port)) {
			t.Fatalf("not a virtual-host URL: %s", u)
		}
		if code, _, got := get(t, "GET", u, nil); code != 200 || !bytes.Equal(got, body) {
			t.Fatalf("virtual-host GET %s: %d %q", u, code, got)
		}
		if code, _, got := get(t, "GET", tamper(t, u, "X-Amz-Signature"), nil); code != 403 {
			t.Fatalf("tampered virtual-host GET: %d %s", code, got)
		}
	})
	t.Run("CORS", func(t *testing.T) {
		v.PutBucketCORS(t, "media", []types.CORSRule{{
			AllowedOrigins: []string{"http://app.localhost:1234"},
			AllowedMethods: []string{"GET", "HEAD"},
			AllowedHeaders: []string{"Range"},
			ExposeHeaders:  []string{"ETag", "Content-Range"},
			MaxAgeSeconds:  aws.Int32(600),
		}})
		out, err := v.Client().GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String("media")})
		if err != nil || len(out.CORSRules) != 1 {
			t.Fatalf("GetBucketCors: %v %+v", err, out)
		}
		pre := http.Header{
			"Origin":                         {"http://app.localhost:1234"},
			"Access-Control-Request-Method":  {"GET"},
			"Access-Control-Request-Headers": {"range"},
		}
		code, h, got := get(t, "OPTIONS", v.Endpoint+"/media/dir/a%20b%2Bc.txt", pre)
		t.Logf("preflight: %d %v %s", code, h, got)
		if code != 200 || h.Get("Access-Control-Allow-Origin") != "http://app.localhost:1234" {
			t.Errorf("preflight from an allowed origin: %d %v", code, h)
		}
		code, h, _ = get(t, "GET", good, http.Header{"Origin": {"http://app.localhost:1234"}})
		t.Logf("GET with Origin: %d %v", code, h)
		if code != 200 || h.Get("Access-Control-Allow-Origin") != "http://app.localhost:1234" {
			t.Errorf("GET from an allowed origin: %d %v", code, h)
		}
		pre.Set("Origin", "http://evil.localhost:1234")
		code, h, got = get(t, "OPTIONS", v.Endpoint+"/media/dir/a%20b%2Bc.txt", pre)
		t.Logf("preflight from other origin: %d %v %s", code, h, got)
		if h.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from another origin allowed: %d %v", code, h)
		}
	})
}

func TestAzurite(t *testing.T) {
	t.Parallel()
	start := time.Now()
	a := StartAzurite(t)
	t.Logf("azurite up at %s in %v", a.Endpoint, time.Since(start))
	if !strings.HasSuffix(a.Endpoint, "/devstoreaccount1") || a.Account != "devstoreaccount1" || a.Key == "" {
		t.Fatalf("bad Azurite fields: %+v", a)
	}

	body := []byte("hello from azurite\n" + strings.Repeat("0123456789", 100))
	a.CreateContainer(t, "media")
	a.Put(t, "media", "dir/a b+c.txt", body)

	cred, err := azblob.NewSharedKeyCredential(a.Account, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(t *testing.T, cred *azblob.SharedKeyCredential, blob string, start, expiry time.Time) string {
		t.Helper()
		qp, err := sas.BlobSignatureValues{
			Protocol:      sas.ProtocolHTTPSandHTTP,
			StartTime:     start,
			ExpiryTime:    expiry,
			Permissions:   (&sas.BlobPermissions{Read: true}).String(),
			ContainerName: "media",
			BlobName:      blob,
		}.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		return a.Endpoint + "/media/" + (&url.URL{Path: blob}).EscapedPath() + "?" + qp.Encode()
	}
	now := time.Now().UTC()
	good := sign(t, cred, "dir/a b+c.txt", now.Add(-5*time.Minute), now.Add(time.Hour))

	t.Run("SAS GET", func(t *testing.T) {
		code, h, got := get(t, "GET", good, nil)
		if code != 200 || !bytes.Equal(got, body) {
			t.Fatalf("GET %s: %d %q", good, code, got)
		}
		if h.Get("ETag") == "" {
			t.Errorf("no ETag on 200")
		}
	})
	t.Run("tampered signature 403", func(t *testing.T) {
		bad := tamper(t, good, "sig")
		if code, _, got := get(t, "GET", bad, nil); code != 403 {
			t.Fatalf("tampered GET: %d %s", code, got)
		}
	})
	t.Run("other blob 403", func(t *testing.T) {
		a.Put(t, "media", "dir/other", []byte("x"))
		other := strings.Replace(good, "/dir/a%20b+c.txt?", "/dir/other?", 1)
		if other == good {
			t.Fatalf("could not rewrite %s", good)
		}
		if code, _, got := get(t, "GET", other, nil); code != 403 {
			t.Fatalf("GET other blob with the same SAS: %d %s", code, got)
		}
	})
	t.Run("wrong key 403", func(t *testing.T) {
		wrong, err := azblob.NewSharedKeyCredential(a.Account, "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nd3Jvbmc=")
		if err != nil {
			t.Fatal(err)
		}
		u := sign(t, wrong, "dir/a b+c.txt", now.Add(-5*time.Minute), now.Add(time.Hour))
		if code, _, got := get(t, "GET", u, nil); code != 403 {
			t.Fatalf("GET with a SAS from a wrong key: %d %s", code, got)
		}
	})
	t.Run("expired 403", func(t *testing.T) {
		u := sign(t, cred, "dir/a b+c.txt", now.Add(-2*time.Hour), now.Add(-time.Hour))
		if code, _, got := get(t, "GET", u, nil); code != 403 {
			t.Fatalf("GET with an expired SAS: %d %s", code, got)
		}
	})
	t.Run("not yet valid 403", func(t *testing.T) {
		u := sign(t, cred, "dir/a b+c.txt", now.Add(time.Hour), now.Add(2*time.Hour))
		if code, _, got := get(t, "GET", u, nil); code != 403 {
			t.Fatalf("GET with a future SAS: %d %s", code, got)
		}
	})
	t.Run("range 206", func(t *testing.T) {
		code, h, got := get(t, "GET", good, http.Header{"Range": {"bytes=6-9"}})
		if code != 206 || string(got) != "from" {
			t.Fatalf("range GET: %d %q", code, got)
		}
		if cr := h.Get("Content-Range"); cr != fmt.Sprintf("bytes 6-9/%d", len(body)) {
			t.Errorf("Content-Range %q", cr)
		}
	})
}

func TestLocalhostClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/target", http.StatusFound)
			return
		}
		fmt.Fprintf(w, "host=%s", r.Host)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	for _, host := range []string{"localhost", "bucket.localhost", "a.b.LOCALHOST"} {
		code, _, got := get(t, "GET", "http://"+host+":"+port+"/x", nil)
		if code != 200 || string(got) != "host="+host+":"+port {
			t.Errorf("%s: %d %q", host, code, got)
		}
	}
	code, h, _ := get(t, "GET", "http://edge.localhost:"+port+"/redirect", nil)
	if code != http.StatusFound || h.Get("Location") != "/target" {
		t.Errorf("redirect followed or lost: %d %v", code, h)
	}
	if c := LocalhostClient(); c.Timeout != 30*time.Second {
		t.Errorf("timeout %v", c.Timeout)
	}
	for in, want := range map[string]string{
		"localhost:80":            "127.0.0.1:80",
		"x.localhost:9":           "127.0.0.1:9",
		"x.localhost.:9":          "127.0.0.1:9",
		"notlocalhost:9":          "notlocalhost:9",
		"localhost.example:9":     "localhost.example:9",
		"[::1]:9":                 "[::1]:9",
		"example.com:443":         "example.com:443",
		"mylocalhost.localhost:1": "127.0.0.1:1",
	} {
		if got := rewriteLocalhost(in); got != want {
			t.Errorf("rewriteLocalhost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRepoRootAndTools(t *testing.T) {
	t.Parallel()
	root := RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv")); err != nil {
		t.Fatalf("RepoRoot %s is not this module's root: %v", root, err)
	}
	for _, name := range []string{"versitygw", "azurite"} {
		if p := Tool(t, name); !filepath.IsAbs(p) {
			t.Errorf("Tool(%q) = %q, not absolute", name, p)
		}
	}
	msg := fatalMessage(t, func(tb testing.TB) { Tool(tb, "no-such-tool") })
	if !strings.Contains(msg, "no-such-tool") {
		t.Errorf("Tool on an unknown name: %q", msg)
	}
}

// TestStaleServerOnPort checks the start discipline: a second versitygw
// started on a port another versitygw already serves is not taken for
// ready, although the port answers at once.
func TestStaleServerOnPort(t *testing.T) {
	t.Parallel()
	stale := StartVersity(t)
	v := &Versity{S3Server{AccessKey: "other" + randHex(4), SecretKey: randHex(20), Region: "us-east-1", Dir: t.TempDir(), name: "versitygw"}}
	dir := t.TempDir()
	spec := v.spec(Tool(t, "versitygw"), dir)
	p, err := spawn(spec, stale.Port, filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	start := time.Now()
	err = p.waitReady(spec, stale.Port)
	if err == nil {
		t.Fatalf("waitReady took the stale server on port %d for ours", stale.Port)
	}
	t.Logf("reported after %v: %v; output tail: %s", time.Since(start), err, p.tail())
}

// fatalMessage runs f with a TB whose Fatalf records the message and ends
// f's goroutine, and returns the message ("" when f did not fail).
func fatalMessage(t *testing.T, f func(testing.TB)) string {
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ft)
	}()
	<-done
	return ft.msg
}

type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestStartRetriesLostPortRace makes the first start attempt lose its port to
// another server and checks that startServer tries again on a new port.
func TestStartRetriesLostPortRace(t *testing.T) {
	t.Parallel()
	taken := StartVersity(t)
	v := &Versity{S3Server{AccessKey: "retry" + randHex(4), SecretKey: randHex(20), Region: "us-east-1", Dir: t.TempDir(), name: "versitygw"}}
	spec := v.spec(Tool(t, "versitygw"), t.TempDir())
	calls := 0
	argv := spec.argv
	spec.argv = func(port int) []string {
		calls++
		if calls == 1 {
			port = taken.Port // as if someone took our free port first
		}
		return argv(port)
	}
	_, port := startServer(t, spec)
	if calls != 2 || port == taken.Port {
		t.Fatalf("calls=%d port=%d (taken %d)", calls, port, taken.Port)
	}
	v.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	v.CreateBucket(t, "retried")
}
