package onboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

// minioUser creates a MinIO user whose only policy is doc.
func minioUser(t *testing.T, m *testenv.Minio, name string, doc any) (access, secret string) {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	access, secret = "user-"+name, "secret-"+name+"-0123456789"
	m.AddPolicy(t, "policy-"+name, raw)
	m.AddUser(t, access, secret)
	m.AttachPolicy(t, "policy-"+name, access)
	return access, secret
}

func documentOf(t *testing.T, res *PolicyResult, kind string) any {
	t.Helper()
	for _, d := range res.Documents {
		if d.Kind == kind {
			return d.JSON
		}
	}
	t.Fatalf("no %s document", kind)
	return nil
}

// apiCode is the S3 error code of err, "" for success.
func apiCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return err.Error()
}

// TestPermissionPolicyMinio has MinIO's policy engine evaluate the
// generated aws_permission_policy: a user holding only that policy reads
// under the prefix and nowhere else, lists only under the prefix and only
// when the source syncs, and cannot write. The check, run as that user,
// agrees.
func TestPermissionPolicyMinio(t *testing.T) {
	m := testenv.StartMinio(t)
	m.CreateBucket(t, "media")
	m.CreateBucket(t, "elsewhere")
	m.Put(t, "media", "images/cat.jpg", []byte("cat"))
	m.Put(t, "media", "images/sub/owl.jpg", []byte("owl"))
	m.Put(t, "media", "imagesX/rat.jpg", []byte("rat"))
	m.Put(t, "media", "other/dog.jpg", []byte("dog"))
	m.Put(t, "elsewhere", "images/cat.jpg", []byte("cat"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, sync := range []bool{false, true} {
		name := map[bool]string{false: "read", true: "sync"}[sync]
		t.Run(name, func(t *testing.T) {
			src := s3Source("minio-"+name, m.Endpoint, "media", "", "")
			src.Sync = sync
			src.Mode = ModeStream
			res, err := Policy(ctx, src, PolicyOptions{Platform: Platform{AWSPrincipal: "arn:aws:iam::111122223333:role/edge"}})
			if err != nil {
				t.Fatal(err)
			}
			access, secret := minioUser(t, m, name, documentOf(t, res, KindAWSPermission))
			c := s3.New(s3.Options{Region: m.Region, BaseEndpoint: aws.String(m.Endpoint), UsePathStyle: true, RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
			get := func(bucket, key string) string {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				if err == nil {
					out.Body.Close()
				}
				return apiCode(err)
			}
			list := func(bucket, prefix string) string {
				_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
				return apiCode(err)
			}
			listOK := map[bool]string{false: "AccessDenied", true: ""}[sync]
			for _, tt := range []struct{ what, got, want string }{
				{"get images/cat.jpg", get("media", "images/cat.jpg"), ""},
				{"get images/sub/owl.jpg", get("media", "images/sub/owl.jpg"), ""},
				{"get other/dog.jpg", get("media", "other/dog.jpg"), "AccessDenied"},
				{"get imagesX/rat.jpg", get("media", "imagesX/rat.jpg"), "AccessDenied"},
				{"get another bucket", get("elsewhere", "images/cat.jpg"), "AccessDenied"},
				{"list images/", list("media", "images/"), listOK},
				{"list images/sub/", list("media", "images/sub/"), listOK},
				{"list other/", list("media", "other/"), "AccessDenied"},
				{"list the bucket", list("media", ""), "AccessDenied"},
				{"put images/new.jpg", apiCode(func() error {
					_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("images/new.jpg"), Body: bytes.NewReader([]byte("x")), ContentLength: aws.Int64(1)})
					return err
				}()), "AccessDenied"},
				{"delete images/cat.jpg", apiCode(func() error {
					_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("media"), Key: aws.String("images/cat.jpg")})
					return err
				}()), "AccessDenied"},
			} {
				if tt.got != tt.want {
					t.Errorf("%s as the policy's user: %q, want %q", tt.what, tt.got, tt.want)
				}
			}
			// The check, as that user, finds nothing to fix.
			src.Credentials = signer.Credentials{Type: "static", AccessKeyID: access, SecretAccessKey: secret}
			r := Check(ctx, src, CheckOptions{StepTimeout: 5 * time.Second})
			wantOrder(t, r)
			if sync {
				wantStep(t, r, StepList, StatusOK, "")
				s := wantStep(t, r, StepRead, StatusOK, "")
				if want := "images/"; !bytes.Contains([]byte(s.Message), []byte(want)) {
					t.Errorf("read step %q", s.Message)
				}
			}
			if !r.OK {
				t.Errorf("check fails for a user holding the generated policy: %+v", r.Steps)
			}
			noSecrets(t, r, secret)
		})
	}
}

// TestCheckMinio produces the codes that need a policy engine or STS:
// a user who may list but not read (access_denied), one who may read but
// not list a syncing source (list_denied), AssumeRole with a wrong base
// secret (credentials_invalid), and a region MinIO does not serve
// (wrong_region, naming MinIO's region).
func TestCheckMinio(t *testing.T) {
	m := testenv.StartMinio(t)
	m.CreateBucket(t, "media")
	m.Put(t, "media", "images/cat.jpg", []byte("cat"))
	ctx := context.Background()
	listOnly := iamPolicy{Version: "2012-10-17", Statement: []iamStatement{{Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::media"}}}
	noList := iamPolicy{Version: "2012-10-17", Statement: []iamStatement{{Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::media/images/*"}}}
	la, ls := minioUser(t, m, "listonly", listOnly)
	ra, rs := minioUser(t, m, "nolist", noList)
	for _, tc := range []struct {
		name string
		edit func(*Source)
		want [][3]string
	}{
		{"denied read", func(s *Source) { s.Credentials.AccessKeyID, s.Credentials.SecretAccessKey = la, ls; s.Sync = true },
			[][3]string{{StepList, StatusOK, ""}, {StepRead, StatusFail, CodeAccessDenied}}},
		{"denied list", func(s *Source) { s.Credentials.AccessKeyID, s.Credentials.SecretAccessKey = ra, rs; s.Sync = true },
			[][3]string{{StepList, StatusFail, CodeListDenied}}},
		{"sts wrong key", func(s *Source) {
			s.Credentials = signer.Credentials{Type: "assume_role", AccessKeyID: m.AccessKey, SecretAccessKey: "wrong-secret-0123456789",
				RoleARN: "arn:minio:iam:::role/edge", STSEndpoint: m.Endpoint}
		}, [][3]string{{StepCredentials, StatusFail, CodeCredentialsInvalid}}},
		{"sts ok", func(s *Source) {
			s.Credentials = signer.Credentials{Type: "assume_role", AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey,
				RoleARN: "arn:minio:iam:::role/edge", STSEndpoint: m.Endpoint}
		}, [][3]string{{StepCredentials, StatusOK, ""}, {StepRead, StatusOK, ""}}},
		{"wrong region", func(s *Source) { s.Region = "eu-west-1" },
			[][3]string{{StepReachable, StatusFail, CodeWrongRegion}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := s3Source("minio", m.Endpoint, "media", m.AccessKey, m.SecretKey)
			src.Mode = ModeStream
			tc.edit(&src)
			r := Check(ctx, src, CheckOptions{StepTimeout: 5 * time.Second})
			wantOrder(t, r)
			for _, c := range tc.want {
				wantStep(t, r, c[0], c[1], c[2])
			}
			noSecrets(t, r, m.SecretKey, ls, rs, "wrong-secret-0123456789")
			if tc.name == "wrong region" {
				if s := stepOf(t, r, StepReachable); !bytes.Contains([]byte(s.Fix), []byte("us-east-1")) {
					t.Errorf("fix %q does not name MinIO's region", s.Fix)
				}
			}
		})
	}
}
