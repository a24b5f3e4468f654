package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Versity is a running versitygw S3 gateway with a posix backend.
type Versity struct {
	S3Server // Dir is the posix backend directory; a bucket is a directory in it
}

// StartVersity starts a fresh versitygw on a free loopback port with its own
// temporary data and IAM directories and random root credentials. It
// accepts path-style requests on 127.0.0.1:PORT and virtual-host requests on
// BUCKET.localhost:PORT (--virtual-domain localhost; dial with
// LocalhostClient). The server is stopped by its PID in tb.Cleanup.
func StartVersity(tb testing.TB) *Versity {
	tb.Helper()
	bin := Tool(tb, "versitygw")
	v := &Versity{newS3Server("versitygw", tb.TempDir())}
	iamDir := tb.TempDir() // absolute: versitygw needs an absolute --iam-dir
	_, port := startServer(tb, v.spec(bin, iamDir))
	v.Port = port
	v.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	return v
}

// spec describes how to run versitygw for v.
func (v *Versity) spec(bin, iamDir string) serverSpec {
	return serverSpec{
		name: "versitygw",
		argv: func(port int) []string {
			return []string{bin,
				"--port", "127.0.0.1:" + strconv.Itoa(port),
				"--virtual-domain", "localhost",
				"--quiet",
				"--iam-dir", iamDir,
				"posix", v.Dir,
			}
		},
		env: []string{
			"ROOT_ACCESS_KEY=" + v.AccessKey,
			"ROOT_SECRET_KEY=" + v.SecretKey,
		},
		dir:          iamDir,
		startTimeout: 30 * time.Second,
		ready: func(ctx context.Context, port int, _ []byte) error {
			// A signed request with this server's own random keys tells
			// it apart from any other server on the port.
			c := v.clientFor(fmt.Sprintf("http://127.0.0.1:%d", port), 1)
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		},
	}
}

// PutBucketCORS sets the bucket's CORS rules or fails tb.
func (v *Versity) PutBucketCORS(tb testing.TB, bucket string, rules []types.CORSRule) {
	tb.Helper()
	ctx, cancel := v.ctx()
	defer cancel()
	_, err := v.Client().PutBucketCors(ctx, &s3.PutBucketCorsInput{
		Bucket:            aws.String(bucket),
		CORSConfiguration: &types.CORSConfiguration{CORSRules: rules},
	})
	if err != nil {
		tb.Fatalf("%s", errf("versitygw: put bucket CORS on %q: %v", bucket, err))
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
