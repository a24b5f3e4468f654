package onboard

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/signer"
)

// TestCheckRecorded plays recorded AWS answers (storageerr_test.go cites
// their source) for conditions no local server produces: a bucket in
// another region, KMS refusing to decrypt, STS refusing AssumeRole (the
// trust policy) and an expired session calling STS. The SDK parses the
// STS answers; the check classifies them.
func TestCheckRecorded(t *testing.T) {
	const kmsKey = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	listing := `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>acme-images</Name><Prefix>images/</Prefix><KeyCount>1</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>images/cat.jpg</Key><LastModified>2026-11-30T10:00:00.000Z</LastModified><ETag>"9b2c"</ETag><Size>20000</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>`
	s3Answer := func(status int, header http.Header, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	kms := func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Query().Get("list-type") == "2":
			s3Answer(200, nil, listing)(w, r)
		case strings.HasSuffix(r.URL.Path, "/images/cat.jpg"):
			s3Answer(403, nil, awsKMSDenied)(w, r)
		default:
			s3Answer(404, nil, awsNoSuchKey)(w, r)
		}
	}
	for _, tc := range []struct {
		name    string
		storage http.HandlerFunc
		sts     http.HandlerFunc
		edit    func(*Source)
		want    [][3]string
		inMsg   []string
	}{
		{"wrong region, 301", s3Answer(301, http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}, awsPermanentRedirect), nil, nil,
			[][3]string{{StepReachable, StatusFail, CodeWrongRegion}, {StepRead, StatusSkipped, ""}}, []string{"region eu-west-1", "set region: eu-west-1"}},
		{"wrong region, presigned", s3Answer(400, nil, awsQueryRegion), nil, nil,
			[][3]string{{StepReachable, StatusFail, CodeWrongRegion}}, []string{"set region: ap-southeast-2"}},
		{"kms denied", kms, nil, func(s *Source) { s.Sync = true; s.KMSKeyARN = kmsKey },
			[][3]string{{StepList, StatusOK, ""}, {StepRead, StatusWarn, CodeKMSDenied}, {StepKMS, StatusFail, CodeKMSDenied}}, []string{KindAWSPermission}},
		{"kms disabled", s3Answer(400, nil, awsKMSDisabled), nil, func(s *Source) { s.KMSKeyARN = kmsKey },
			[][3]string{{StepKMS, StatusFail, CodeKMSDenied}}, nil},
		{"assume role refused", s3Answer(404, nil, awsNoSuchKey), s3Answer(403, nil, stsAssumeDenied), nil,
			[][3]string{{StepCredentials, StatusFail, CodeAssumeRoleDenied}, {StepReachable, StatusSkipped, ""}}, []string{KindAWSTrust}},
		{"expired session at storage", s3Answer(400, nil, s3Expired), nil, nil,
			[][3]string{{StepRead, StatusFail, CodeCredentialsExpired}}, nil},
		{"expired base session", s3Answer(404, nil, awsNoSuchKey), s3Answer(400, nil, stsExpired), nil,
			[][3]string{{StepCredentials, StatusFail, CodeCredentialsExpired}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storage := httptest.NewServer(tc.storage)
			defer storage.Close()
			src := s3Source("recorded", storage.URL, "acme-images", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
			if tc.sts != nil {
				sts := httptest.NewServer(tc.sts)
				defer sts.Close()
				src.Credentials = signer.Credentials{Type: "assume_role", AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
					RoleARN: "arn:aws:iam::123456789012:role/edge-read", ExternalID: "edge-ext", STSEndpoint: sts.URL}
			}
			if tc.edit != nil {
				tc.edit(&src)
			}
			r := Check(context.Background(), src, CheckOptions{StepTimeout: 3 * time.Second})
			wantOrder(t, r)
			for _, c := range tc.want {
				wantStep(t, r, c[0], c[1], c[2])
			}
			if r.OK {
				t.Errorf("ok, want a failure: %+v", r.Steps)
			}
			var all strings.Builder
			r.WriteText(&all)
			for _, m := range tc.inMsg {
				if !strings.Contains(all.String(), m) {
					t.Errorf("output lacks %q:\n%s", m, all.String())
				}
			}
			// The bodies quote principals, keys and a string to sign:
			// none of it is repeated.
			for _, leak := range []string{"111122223333", "is not authorized", "wJalrXUtnFEMI", "Please send"} {
				if strings.Contains(all.String(), leak) {
					t.Errorf("output repeats the body (%q):\n%s", leak, all.String())
				}
			}
		})
	}
}
