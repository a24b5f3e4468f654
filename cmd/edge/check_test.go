package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/edgeproxy/edge/internal/onboard"
	"github.com/edgeproxy/edge/internal/testenv"
)

// TestCheck runs `edge check` against a real versitygw: a healthy source
// passes, a wrong secret and a missing bucket fail with what to fix, CORS
// without "null" warns, -json prints one result document per source,
// -source narrows it, and nothing printed holds a secret or a signature.
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
	secrets := []string{v.SecretKey, "wrong-secret-key", "X-Amz-Signature=", "X-Amz-Credential=", "0123456789abcdef0123456789abcdef"}
	noSecrets := func(t *testing.T, out string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output holds %q:\n%s", s, out)
			}
		}
	}
	t.Run("healthy", func(t *testing.T) {
		cfg := writeConfig(t, head+src("cors", "cors-bucket", v.SecretKey)+`  - {name: local, provider: file, root: ROOT, mode: stream}
`)
		code, out, errOut := runCmd(t, "check", "-config", cfg)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{"config: ok (2 sources)", "source cors: ok", "ok reachable", "ok read", "-  list", "ok cors        bucket CORS admits Origin null, https://app.example.com",
			"patterns not probed: https://*.segments.ai", "source local: ok", "root readable"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	cfg := writeConfig(t, head+src("good", "good-bucket", v.SecretKey)+src("badkey", "good-bucket", "wrong-secret-key")+
		src("nobucket", "no-such-bucket", v.SecretKey))
	t.Run("problems", func(t *testing.T) {
		code, out, errOut := runCmd(t, "check", "-config", cfg)
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"source good: ok",
			"!  cors        bucket CORS does not admit Origin null",
			"[cors_null_missing]",
			"fix: paste the aws_cors document of `edge policy good`",
			"source badkey: FAIL",
			"x  read        storage refused the edge's signature (403 SignatureDoesNotMatch) [signature_mismatch]",
			"source nobucket: FAIL",
			"bucket no-such-bucket does not exist at this endpoint (NoSuchBucket) [no_such_bucket]",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		noSecrets(t, out+errOut)
	})
	t.Run("json", func(t *testing.T) {
		code, out, errOut := runCmd(t, "check", "-config", cfg, "-json")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines, want one result per source:\n%s", len(lines), out)
		}
		want := map[string][2]any{"good": {true, ""}, "badkey": {false, onboard.CodeSignatureMismatch}, "nobucket": {false, onboard.CodeNoSuchBucket}}
		for _, l := range lines {
			var r onboard.CheckResult
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			w := want[r.Name]
			if r.OK != w[0] {
				t.Errorf("%s: ok %v", r.Name, r.OK)
			}
			if len(r.Steps) != 7 || r.Steps[0].Step != "config" || r.Steps[6].Step != "cors" {
				t.Errorf("%s: steps %+v", r.Name, r.Steps)
			}
			if w[1] != "" && r.Steps[3].Code != w[1] {
				t.Errorf("%s: read step %+v, want code %s", r.Name, r.Steps[3], w[1])
			}
		}
		noSecrets(t, out+errOut)
	})
	t.Run("one source", func(t *testing.T) {
		code, out, _ := runCmd(t, "check", "-config", cfg, "-source", "good", "-json")
		if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"name":"good","ok":true`) {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if code, _, errOut := runCmd(t, "check", "-config", cfg, "-source", "nope"); code != 2 || !strings.Contains(errOut, "nope") {
			t.Errorf("unknown -source: exit %d %s", code, errOut)
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
		if code != 1 || !strings.Contains(out, "storage is unreachable: the connection was refused [unreachable]") {
			t.Errorf("exit %d, want 1 and unreachable:\n%s", code, out)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		cfg := writeConfig(t, "listne: x\n")
		if code, _, errOut := runCmd(t, "check", "-config", cfg); code != 1 || !strings.Contains(errOut, "listne: unknown key") {
			t.Errorf("exit %d, want 1 naming the unknown key:\n%s", code, errOut)
		}
		code, out, _ := runCmd(t, "check", "-config", cfg, "-json")
		var r onboard.CheckResult
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 || r.OK || r.Steps[0].Code != onboard.CodeConfigInvalid ||
			!strings.Contains(r.Steps[0].Message, "listne: unknown key") || r.Steps[1].Status != onboard.StatusSkipped {
			t.Errorf("exit %d, want 1 and a config_invalid result: %v\n%s", code, err, out)
		}
	})
}

// TestPolicy runs `edge policy`: the platform section and a source's
// sync and kms_key_arn shape the documents, -json prints the result
// document, and an unknown source is named.
func TestPolicy(t *testing.T) {
	cfg := writeConfig(t, `auth:
  keys: [{alg: HS256, secret: "0123456789abcdef0123456789abcdef"}]
cors: {allowed_origins: ["https://app.example.com"]}
platform:
  aws_principal: "arn:aws:iam::111122223333:role/edge"
sources:
  - name: customer-b
    provider: s3
    bucket: partner-frames
    region: cn-north-1
    prefix: "datasets/42/"
    sync: true
    kms_key_arn: "arn:aws-cn:kms:cn-north-1:123456789012:key/abc"
    credentials:
      type: assume_role
      role_arn: "arn:aws-cn:iam::123456789012:role/edge-read"
      external_id: "ext-42"
      access_key_id: AKID
      secret_access_key: "never-printed-secret"
`)
	code, out, errOut := runCmd(t, "policy", "-config", cfg, "customer-b")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"1. Trust policy of the role the edge assumes [aws_trust_policy]", `"sts:ExternalId": "ext-42"`,
		`"Resource": "arn:aws-cn:s3:::partner-frames/datasets/42/*"`, `"s3:ListBucket"`, `"kms:Decrypt"`, "[aws_bucket_policy]", "[aws_cors]", `"null"`} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCmd(t, "policy", "-config", cfg, "-json", "customer-b")
	var res onboard.PolicyResult
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res.Name != "customer-b" || res.Provider != "s3" || len(res.Documents) != 4 {
		t.Fatalf("exit %d %v: %s%s", code, err, out, errOut)
	}
	if strings.Contains(out, "never-printed-secret") {
		t.Error("the policy output holds the source's secret")
	}
	if code, _, errOut := runCmd(t, "policy", "-config", cfg, "customer-x"); code != 1 || !strings.Contains(errOut, `no source named "customer-x"`) {
		t.Errorf("unknown source: exit %d %s", code, errOut)
	}
	bad := writeConfig(t, "auth:\n  keys: [{alg: HS256, secret: \"0123456789abcdef0123456789abcdef\"}]\nplatform: {aws_principal: \"not-an-arn-secret\"}\nsources: [{name: l, provider: file, root: ROOT}]\n")
	if code, _, errOut := runCmd(t, "policy", "-config", bad, "l"); code != 1 || !strings.Contains(errOut, "platform.aws_principal:") || strings.Contains(errOut, "not-an-arn-secret") {
		t.Errorf("bad platform: exit %d %s", code, errOut)
	}
}
