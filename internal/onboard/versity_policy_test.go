package onboard

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/edgeproxy/edge/internal/testenv"
)

// TestBucketPolicyVersity has versitygw's bucket policy engine evaluate
// the generated aws_bucket_policy. versitygw names principals by access
// key, so its user's key stands in for the platform's principal ARN: the
// user, who owns nothing, reads under the prefix only and cannot write.
func TestBucketPolicyVersity(t *testing.T) {
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	v.Put(t, "media", "images/cat.jpg", []byte("cat"))
	v.Put(t, "media", "other/dog.jpg", []byte("dog"))
	const user, secret = "edgeplatform", "edgeplatform-secret-0123456789"
	out, err := exec.Command(testenv.Tool(t, "versitygw"), "admin", "--access", v.AccessKey, "--secret", v.SecretKey,
		"--endpoint-url", v.Endpoint, "create-user", "--access", user, "--secret", secret, "--role", "user").CombinedOutput()
	if err != nil {
		t.Fatalf("versitygw admin create-user: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s3.New(s3.Options{Region: v.Region, BaseEndpoint: aws.String(v.Endpoint), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, "")})
	get := func(key string) string {
		o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
		if err == nil {
			o.Body.Close()
		}
		return apiCode(err)
	}
	list := func(prefix string) string {
		_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("media"), Prefix: aws.String(prefix)})
		return apiCode(err)
	}
	if got := get("images/cat.jpg"); got != "AccessDenied" {
		t.Fatalf("before any bucket policy the user reads: %q, want AccessDenied", got)
	}
	for _, sync := range []bool{false, true} {
		src := s3Source("vgw", v.Endpoint, "media", v.AccessKey, v.SecretKey)
		src.Sync = sync
		res, err := Policy(context.Background(), src, PolicyOptions{Platform: Platform{AWSPrincipal: user}})
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := json.Marshal(documentOf(t, res, KindAWSBucket))
		if _, err := v.Client().PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("media"), Policy: aws.String(string(doc))}); err != nil {
			t.Fatalf("versitygw refuses the generated bucket policy: %v\n%s", err, doc)
		}
		_, perr := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("images/new.jpg"), Body: bytes.NewReader([]byte("x")), ContentLength: aws.Int64(1)})
		listOK := map[bool]string{false: "AccessDenied", true: ""}[sync]
		for _, tt := range []struct{ what, got, want string }{
			{"get images/cat.jpg", get("images/cat.jpg"), ""},
			{"get other/dog.jpg", get("other/dog.jpg"), "AccessDenied"},
			{"put images/new.jpg", apiCode(perr), "AccessDenied"},
			{"list images/", list("images/"), listOK},
			{"list other/", list("other/"), "AccessDenied"},
			{"list the bucket", list(""), "AccessDenied"},
		} {
			if tt.got != tt.want {
				t.Errorf("sync %v: %s as the platform's principal: %q, want %q", sync, tt.what, tt.got, tt.want)
			}
		}
	}
}
