package testenv

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Minio is a running MinIO server on a single local drive. Besides S3 it
// speaks STS: AssumeRole signed with the root user's keys (service "sts",
// POST to the server's root) returns temporary credentials, and MinIO
// checks their session token and expiry on every request and presigned
// URL, which versitygw cannot.
type Minio struct {
	Endpoint  string // "http://127.0.0.1:PORT": S3 and STS
	Port      int
	AccessKey string // the root user
	SecretKey string
	Region    string // "us-east-1", set with MINIO_SITE_REGION and checked in signatures
	Dir       string // the data directory
}

// StartMinio starts a fresh MinIO on a free loopback port with its own
// temporary data directory, random root credentials and the web console
// off. It accepts path-style requests on 127.0.0.1:PORT. The server is
// stopped by its PID in tb.Cleanup.
func StartMinio(tb testing.TB) *Minio {
	tb.Helper()
	bin := Tool(tb, "minio")
	m := &Minio{
		AccessKey: "edge" + randHex(8),
		SecretKey: randHex(20),
		Region:    "us-east-1",
		Dir:       tb.TempDir(),
	}
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
			c := m.clientFor(fmt.Sprintf("http://127.0.0.1:%d", port), 1)
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		},
	}
}

// Client returns an S3 client for the server: path-style, static root
// credentials, region us-east-1, BaseEndpoint m.Endpoint.
func (m *Minio) Client() *s3.Client {
	return m.clientFor(m.Endpoint, 0)
}

func (m *Minio) clientFor(endpoint string, maxAttempts int) *s3.Client {
	return s3.New(s3.Options{
		Region:           m.Region,
		BaseEndpoint:     aws.String(endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		RetryMaxAttempts: maxAttempts,
	})
}

func (m *Minio) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// CreateBucket creates bucket or fails tb.
func (m *Minio) CreateBucket(tb testing.TB, bucket string) {
	tb.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	if _, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		tb.Fatalf("%s", errf("minio: create bucket %q: %v", bucket, err))
	}
}

// Put stores body as bucket/key or fails tb.
func (m *Minio) Put(tb testing.TB, bucket, key string, body []byte) {
	tb.Helper()
	ctx, cancel := m.ctx()
	defer cancel()
	_, err := m.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		tb.Fatalf("%s", errf("minio: put %s/%s: %v", bucket, key, err))
	}
}
