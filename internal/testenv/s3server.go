package testenv

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is what the S3 servers the tests start share: an endpoint, its
// random root credentials, and helpers to fill buckets.
type S3Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	Port      int
	AccessKey string // the root user
	SecretKey string
	Region    string // "us-east-1"
	Dir       string // the server's data directory
	name      string // for messages
}

func newS3Server(name, dir string) S3Server {
	return S3Server{AccessKey: "edge" + randHex(8), SecretKey: randHex(20), Region: "us-east-1", Dir: dir, name: name}
}

// Client returns an S3 client for the server: path-style, static root
// credentials, region us-east-1, BaseEndpoint s.Endpoint.
func (s *S3Server) Client() *s3.Client {
	return s.clientFor(s.Endpoint, 0)
}

func (s *S3Server) clientFor(endpoint string, maxAttempts int) *s3.Client {
	return s3.New(s3.Options{
		Region:           s.Region,
		BaseEndpoint:     aws.String(endpoint),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RetryMaxAttempts: maxAttempts,
	})
}

func (s *S3Server) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// CreateBucket creates bucket or fails tb.
func (s *S3Server) CreateBucket(tb testing.TB, bucket string) {
	tb.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		tb.Fatalf("%s", errf("%s: create bucket %q: %v", s.name, bucket, err))
	}
}

// Put stores body as bucket/key or fails tb.
func (s *S3Server) Put(tb testing.TB, bucket, key string, body []byte) {
	tb.Helper()
	s.PutTyped(tb, bucket, key, body, "")
}

// PutTyped is Put with a Content-Type ("": the server's default).
func (s *S3Server) PutTyped(tb testing.TB, bucket, key string, body []byte, contentType string) {
	tb.Helper()
	ctx, cancel := s.ctx()
	defer cancel()
	in := &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	_, err := s.Client().PutObject(ctx, in)
	if err != nil {
		tb.Fatalf("%s", errf("%s: put %s/%s: %v", s.name, bucket, key, err))
	}
}
