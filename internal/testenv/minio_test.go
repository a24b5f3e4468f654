package testenv

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestMinio: the server starts, serves what Put stored through a presigned
// URL, refuses a tampered one, and issues STS sessions whose tokens it
// checks.
func TestMinio(t *testing.T) {
	t.Parallel()
	start := time.Now()
	m := StartMinio(t)
	t.Logf("minio up at %s in %v", m.Endpoint, time.Since(start))
	if !filepath.IsAbs(m.Dir) || m.Region != "us-east-1" || m.Port == 0 {
		t.Fatalf("bad Minio fields: %+v", m)
	}
	body := []byte("hello from minio\n")
	m.CreateBucket(t, "media")
	m.Put(t, "media", "dir/a b.txt", body)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	presign := func(c *s3.Client) string {
		t.Helper()
		r, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("dir/a b.txt")})
		if err != nil {
			t.Fatal(err)
		}
		return r.URL
	}
	good := presign(m.Client())
	if code, _, got := get(t, "GET", good, nil); code != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET %s: %d %q", good, code, got)
	}
	if code, _, got := get(t, "GET", tamper(t, good, "X-Amz-Signature"), nil); code != 403 {
		t.Fatalf("tampered GET: %d %s", code, got)
	}

	// STS: AssumeRole with the root user's keys at the S3 endpoint.
	stsc := sts.New(sts.Options{Region: m.Region, BaseEndpoint: aws.String(m.Endpoint), Credentials: m.Client().Options().Credentials})
	session := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsc, "arn:minio:iam:::role/anything", func(o *stscreds.AssumeRoleOptions) {
		o.Duration = 15 * time.Minute
	}))
	creds, err := session.Retrieve(ctx)
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	if !creds.CanExpire || creds.SessionToken == "" || creds.AccessKeyID == m.AccessKey {
		t.Fatalf("AssumeRole gave %+v, want a temporary key with a session token", creds)
	}
	if left := time.Until(creds.Expires); left < 14*time.Minute || left > 16*time.Minute {
		t.Errorf("15m session expires in %s", left)
	}
	temp := s3.New(m.Client().Options(), func(o *s3.Options) { o.Credentials = session })
	withToken := presign(temp)
	if code, _, got := get(t, "GET", withToken, nil); code != 200 || !bytes.Equal(got, body) {
		t.Fatalf("GET with the session: %d %q", code, got)
	}
	if code, _, got := get(t, "GET", tamper(t, withToken, "X-Amz-Security-Token"), nil); code != 403 {
		t.Fatalf("tampered session token: %d %s", code, got)
	}
}
