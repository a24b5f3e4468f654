package onboard

import (
	"net/http"
	"strings"
	"testing"
)

// Recorded error bodies. Sources: AWS docs, "Amazon S3 API Reference:
// Error responses" (the <Error> document, the list of error codes:
// PermanentRedirect 301 with x-amz-bucket-region, AuthorizationHeaderMalformed
// and AuthorizationQueryParametersError naming the expected <Region>,
// KMS.* codes); "Troubleshoot access denied (403 Forbidden) errors in
// Amazon S3" (AccessDenied naming kms:Decrypt); "AWS STS API Reference:
// Common errors" and "AssumeRole" (the <ErrorResponse> document,
// AccessDenied, ExpiredToken); Azure docs "Blob service error codes"
// (x-ms-error-code); Google Cloud docs "XML API error codes".
const (
	awsNoSuchKey = `<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The resource you requested does not exist</Message>
  <Resource>/mybucket/myfoto.jpg</Resource>
  <RequestId>4442587FB7D0A2F9</RequestId>
</Error>`
	awsPermanentRedirect = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>acme-images.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>acme-images</Bucket><RequestId>1B2C3D4E5F6A7B8C</RequestId><HostId>aGVsbG8=</HostId></Error>`
	awsHeaderMalformed = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region><RequestId>1B2C3D4E5F6A7B8C</RequestId><HostId>aGVsbG8=</HostId></Error>`
	awsQueryRegion = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AuthorizationQueryParametersError</Code><Message>Error parsing the X-Amz-Credential parameter; the region 'us-east-1' is wrong; expecting 'ap-southeast-2'</Message><RequestId>1B2C3D4E5F6A7B8C</RequestId><HostId>aGVsbG8=</HostId></Error>`
	awsKMSDenied = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>User: arn:aws:sts::111122223333:assumed-role/edge-read/edge is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the kms:Decrypt action</Message><RequestId>1B2C3D4E5F6A7B8C</RequestId><HostId>aGVsbG8=</HostId></Error>`
	awsKMSDisabled = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>KMS.DisabledException</Code><Message>arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab is disabled.</Message><RequestId>1B2C3D4E5F6A7B8C</RequestId></Error>`
	awsAccessDenied = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1B2C3D4E5F6A7B8C</RequestId><HostId>aGVsbG8=</HostId></Error>`
	awsSignature = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20130524T000000Z</StringToSign><SignatureProvided>aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404</SignatureProvided></Error>`
	stsAssumeDenied = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::111122223333:user/edge is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/edge-read</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>`
	stsExpired = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>ExpiredToken</Code>
    <Message>The security token included in the request is expired</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>`
	s3Expired = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><Token-0>FwoGZXIvYXdzEXAMPLE</Token-0><RequestId>1B2C3D4E5F6A7B8C</RequestId></Error>`
	azureAuthFailed = `<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.
RequestId:bb2b7e3f-601e-0029-5e1f-3f4f36000000
Time:2026-11-30T10:00:00.0000000Z</Message><AuthenticationErrorDetail>Signature did not match. String to sign used was r</AuthenticationErrorDetail></Error>`
	gcsNoSuchBucket = `<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist.</Message></Error>`
)

func TestParseStorageError(t *testing.T) {
	for _, tt := range []struct {
		name       string
		status     int
		header     http.Header
		body       string
		code, reg  string
		kms, wrong bool
	}{
		{"no such key", 404, nil, awsNoSuchKey, "NoSuchKey", "", false, false},
		{"permanent redirect", 301, http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}, awsPermanentRedirect, "PermanentRedirect", "eu-west-1", false, true},
		{"permanent redirect, HEAD (no body)", 301, http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}, "", "", "eu-west-1", false, true},
		{"header malformed", 400, nil, awsHeaderMalformed, "AuthorizationHeaderMalformed", "eu-west-1", false, true},
		{"query region", 400, nil, awsQueryRegion, "AuthorizationQueryParametersError", "ap-southeast-2", false, true},
		{"kms denied", 403, nil, awsKMSDenied, "AccessDenied", "", true, false},
		{"kms disabled", 400, nil, awsKMSDisabled, "KMS.DisabledException", "", true, false},
		{"access denied", 403, nil, awsAccessDenied, "AccessDenied", "", false, false},
		{"signature", 403, nil, awsSignature, "SignatureDoesNotMatch", "", false, false},
		{"sts assume denied", 403, nil, stsAssumeDenied, "AccessDenied", "", false, false},
		{"sts expired", 400, nil, stsExpired, "ExpiredToken", "", false, false},
		{"s3 expired", 400, nil, s3Expired, "ExpiredToken", "", false, false},
		{"azure header wins", 403, http.Header{"X-Ms-Error-Code": {"AuthenticationFailed"}}, azureAuthFailed, "AuthenticationFailed", "", false, false},
		{"azure HEAD: header only", 404, http.Header{"X-Ms-Error-Code": {"ContainerNotFound"}}, "", "ContainerNotFound", "", false, false},
		{"gcs", 404, nil, gcsNoSuchBucket, "NoSuchBucket", "", false, false},
		{"not xml", 502, nil, "<html><body>Bad gateway</body></html>", "", "", false, false},
		{"hostile code", 403, http.Header{"X-Ms-Error-Code": {"<script>"}}, "<Error><Code>a b&lt;c</Code><Region>EU WEST</Region></Error>", "", "", false, false},
		{"huge message", 403, nil, "<Error><Code>AccessDenied</Code><Message>" + strings.Repeat("kms:", 5000) + "</Message></Error>", "AccessDenied", "", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseStorageError(tt.status, tt.header, strings.NewReader(tt.body))
			if got.Code != tt.code || got.Region != tt.reg || got.KMS != tt.kms || got.Status != tt.status {
				t.Errorf("got %+v, want code %q region %q kms %v", got, tt.code, tt.reg, tt.kms)
			}
			if w := got.wrongRegion(); w != tt.wrong {
				t.Errorf("wrongRegion() = %v, want %v", w, tt.wrong)
			}
		})
	}
}

// TestParseStorageErrorBounded: a body past the bound is not read whole.
func TestParseStorageErrorBounded(t *testing.T) {
	r := &countingReader{r: strings.NewReader("<Error><Code>AccessDenied</Code>" + strings.Repeat(" ", 1<<20) + "</Error>")}
	got := ParseStorageError(403, nil, r)
	if got.Code != "AccessDenied" {
		t.Errorf("code %q", got.Code)
	}
	if r.n > maxErrorBody {
		t.Errorf("read %d bytes, want at most %d", r.n, maxErrorBody)
	}
}

type countingReader struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzParseStorageError: never panics, keeps only sanitized tokens, and
// never returns more of the body than a short code and region.
func FuzzParseStorageError(f *testing.F) {
	for _, b := range []string{awsNoSuchKey, awsPermanentRedirect, awsHeaderMalformed, awsQueryRegion, awsKMSDenied, awsKMSDisabled,
		awsAccessDenied, awsSignature, stsAssumeDenied, stsExpired, s3Expired, azureAuthFailed, gcsNoSuchBucket, "", "<", "<Error><Code>"} {
		f.Add(403, "", "", b)
	}
	f.Add(301, "eu-west-1", "", "")
	f.Add(403, "", "AuthenticationFailed", "")
	f.Fuzz(func(t *testing.T, status int, region, msCode, body string) {
		h := http.Header{}
		h.Set("X-Amz-Bucket-Region", region)
		h.Set("X-Ms-Error-Code", msCode)
		got := ParseStorageError(status, h, strings.NewReader(body))
		if got.Code != sanitizeCode(got.Code) || len(got.Code) > 64 {
			t.Fatalf("unsanitized code %q", got.Code)
		}
		if got.Region != sanitizeRegion(got.Region) || len(got.Region) > 32 {
			t.Fatalf("unsanitized region %q", got.Region)
		}
		for _, s := range []string{got.Code, got.Region} {
			if strings.ContainsAny(s, "<>&\"' \n:/=") {
				t.Fatalf("token %q carries markup or a value", s)
			}
		}
	})
}

func BenchmarkParseStorageError(b *testing.B) {
	h := http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}
	b.ReportAllocs()
	for b.Loop() {
		ParseStorageError(403, h, strings.NewReader(awsKMSDenied))
	}
}
