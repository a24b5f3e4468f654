package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/secure-io/sio-go"
	"golang.org/x/crypto/argon2"
)

// MinIO's admin API (the calls `mc admin` and madmin-go make), signed
// here with the root user's keys so tests can create users and attach
// IAM policies without madmin-go's dependency tree. MinIO then evaluates
// those AWS-style policy documents on every request the user signs.

// AddUser creates an enabled user with the given keys or fails tb.
func (m *Minio) AddUser(tb testing.TB, accessKey, secretKey string) {
	tb.Helper()
	body, err := json.Marshal(map[string]string{"secretKey": secretKey, "status": "enabled"})
	if err != nil {
		tb.Fatal(err)
	}
	// The body travels encrypted with the caller's secret key, as
	// madmin.EncryptData does it: salt, algorithm id, nonce, then a sio
	// stream under an Argon2id key.
	enc, err := minioEncrypt(m.SecretKey, body)
	if err != nil {
		tb.Fatalf("%s", errf("minio: encrypt add-user body: %v", err))
	}
	m.admin(tb, "/add-user", url.Values{"accessKey": {accessKey}}, enc)
}

// AddPolicy stores an IAM policy document under name or fails tb. MinIO
// refuses documents it cannot parse.
func (m *Minio) AddPolicy(tb testing.TB, name string, doc []byte) {
	tb.Helper()
	m.admin(tb, "/add-canned-policy", url.Values{"name": {name}}, doc)
}

// AttachPolicy makes policy the user's policy or fails tb.
func (m *Minio) AttachPolicy(tb testing.TB, policy, user string) {
	tb.Helper()
	m.admin(tb, "/set-user-or-group-policy", url.Values{"policyName": {policy}, "userOrGroup": {user}, "isGroup": {"false"}}, nil)
}

// admin sends one signed PUT to MinIO's admin API.
func (m *Minio) admin(tb testing.TB, path string, q url.Values, body []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u := m.Endpoint + "/minio/admin/v3" + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: m.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", m.Region, time.Now()); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s", errf("minio admin %s: %v", path, err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s", errf("minio admin %s: %d %s", path, resp.StatusCode, msg))
	}
}

// minioEncrypt is madmin.EncryptData with Argon2id and AES-256-GCM.
func minioEncrypt(password string, data []byte) ([]byte, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key := argon2.IDKey([]byte(password), salt, 1, 64*1024, 4, 32)
	stream, err := sio.AES_256_GCM.Stream(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, stream.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(salt)
	out.WriteByte(0x00) // argon2id + AES-256-GCM
	out.Write(nonce)
	w := stream.EncryptWriter(&out, nonce, nil)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("sio: %w", err)
	}
	return out.Bytes(), nil
}
