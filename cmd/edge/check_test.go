package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/edgeproxy/edge/internal/testenv"
)

// TestCheck runs `edge check` against a real versitygw: a good source
// passes, a wrong secret and a missing bucket fail with what to fix, bucket
// CORS without "null" is a warning, and nothing printed holds a secret or a
// signature.
func TestCheck(t *testing.T) {
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "good-bucket")
	v.CreateBucket(t, "cors-bucket")
	v.PutBucketCORS(t, "cors-bucket", []types.CORSRule{{
		AllowedOrigins: []string{"null", "https://app.example.com"},
		AllowedMethods: []string{"GET", "HEAD"},
		AllowedHeaders: []string{"*"},
	}})
	src := func(name, bucket, secret string) string {
		return fmt.Sprintf(`  - name: %s
    provider: s3
    bucket: %s
    endpoint: %q
    prefix: "images/"
    credentials: {type: static, access_key_id: %q, secret_access_key: %q}
`, name, bucket, v.Endpoint, v.AccessKey, secret)
	}
	head := `auth:
  keys: [{alg: HS256, secret: "0123456789abcdef0123456789abcdef"}]
cors: {allowed_origins: ["https://app.example.com", "https://*.segments.ai"]}
sources:
`
	t.Run("healthy", func(t *testing.T) {
		cfg := writeConfig(t, head+src("cors", "cors-bucket", v.SecretKey)+`  - {name: local, provider: file, root: ROOT, mode: stream}
`)
		code, out, errOut := runCmd(t, "check", "-config", cfg)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{"source cors (s3, redirect mode, bucket cors-bucket): ok", "signature accepted",
			"bucket CORS admits Origin null", "bucket CORS admits Origin https://app.example.com", "source local", "root readable"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("problems", func(t *testing.T) {
		cfg := writeConfig(t, head+src("good", "good-bucket", v.SecretKey)+src("badkey", "good-bucket", "wrong-secret-key")+
			src("nobucket", "no-such-bucket", v.SecretKey))
		code, out, errOut := runCmd(t, "check", "-config", cfg)
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"source good (s3, redirect mode, bucket good-bucket): ok",
			"!  bucket CORS does not admit Origin null",
			"source badkey (s3, redirect mode, bucket good-bucket): FAIL",
			"storage refused the edge's signature (403 SignatureDoesNotMatch)",
			"source nobucket (s3, redirect mode, bucket no-such-bucket): FAIL",
			`bucket "no-such-bucket" does not exist`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		for _, secret := range []string{v.SecretKey, "wrong-secret-key", "X-Amz-Signature=", "X-Amz-Credential="} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("output holds %q:\n%s%s", secret, out, errOut)
			}
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		cfg := writeConfig(t, head+`  - name: gone
    provider: s3
    bucket: b-bucket
    endpoint: "http://127.0.0.1:1"
    credentials: {type: static, access_key_id: a, secret_access_key: b}
`)
		code, out, _ := runCmd(t, "check", "-config", cfg)
		if code != 1 || !strings.Contains(out, "storage unreachable") {
			t.Errorf("exit %d, want 1 and 'storage unreachable':\n%s", code, out)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		cfg := writeConfig(t, "listne: x\n")
		if code, _, errOut := runCmd(t, "check", "-config", cfg); code != 1 || !strings.Contains(errOut, "listne: unknown key") {
			t.Errorf("exit %d, want 1 naming the unknown key:\n%s", code, errOut)
		}
	})
}
