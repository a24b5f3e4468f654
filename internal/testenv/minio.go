package testenv

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Minio is a running MinIO server on a single local drive. Besides S3 it
// speaks STS: AssumeRole signed with the root user's keys (service "sts",
// POST to the server's root) returns temporary credentials, and MinIO
// checks their session token and expiry on every request and presigned
// URL, which versitygw cannot.
type Minio struct {
	S3Server // Endpoint serves S3 and STS; Region is set with MINIO_SITE_REGION and checked in signatures
}

// StartMinio starts a fresh MinIO on a free loopback port with its own
// temporary data directory, random root credentials and the web console
// off. It accepts path-style requests on 127.0.0.1:PORT. The server is
// stopped by its PID in tb.Cleanup.
func StartMinio(tb testing.TB) *Minio {
	tb.Helper()
	bin := Tool(tb, "minio")
	m := &Minio{newS3Server("minio", tb.TempDir())}
	_, port := startServer(tb, m.spec(bin))
	m.Port = port
	m.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	return m
}

// spec describes how to run MinIO for m.
func (m *Minio) spec(bin string) serverSpec {
	return serverSpec{
		name: "minio",
		argv: func(port int) []string {
			return []string{bin, "server",
				"--address", "127.0.0.1:" + strconv.Itoa(port),
				"--quiet",
				m.Dir,
			}
		},
		env: []string{
			"MINIO_ROOT_USER=" + m.AccessKey,
			"MINIO_ROOT_PASSWORD=" + m.SecretKey,
			"MINIO_SITE_REGION=" + m.Region,
			"MINIO_BROWSER=off", // no console listening on a port of its own
			"MINIO_UPDATE=off",
			"MINIO_CI_CD=1", // no terminal colours, no prompts
		},
		dir: m.Dir,
		// A cold start formats the drive: a second or two, more under -race
		// with packages testing in parallel.
		startTimeout: 60 * time.Second,
		ready: func(ctx context.Context, port int, _ []byte) error {
			// A signed request with this server's own random keys tells
			// it apart from any other server on the port.
			endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
			c := m.clientFor(endpoint, 1)
			if _, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
				return err
			}
			// S3 answers before IAM is up: until then STS refuses with
			// "Server not initialized", which tests of assumed roles
			// would read as a failure of their own.
			stsc := sts.New(sts.Options{Region: m.Region, BaseEndpoint: aws.String(endpoint), Credentials: c.Options().Credentials})
			_, err := stsc.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:minio:iam:::role/ready"), RoleSessionName: aws.String("ready")})
			return err
		},
	}
}
