package listing

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

func TestExploreVersity(t *testing.T) {
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "bkt")
	for _, k := range []string{"a-c", "a/b", "a+b", "a b", "a%20b", "é", "images/", "images-a", "images0", "images/.x", "images/x y+z%", "images/sub/deep", "images/sub-x", "imagesX/y", "\U0001F600", "\uFF01"} {
		body := []byte(k); if k[len(k)-1] == '/' { body = nil }; v.Put(t, "bkt", k, body)
	}
	s, err := signer.NewS3(context.Background(), signer.Config{Provider: "s3", Bucket: "bkt", Endpoint: v.Endpoint, Region: "us-east-1", Addressing: "path", Credentials: signer.Credentials{Type: "static", AccessKeyID: v.AccessKey, SecretAccessKey: v.SecretKey}}, signer.S3Options{})
	if err != nil { t.Fatal(err) }
	for _, p := range []string{"", "images/"} {
		u, err := s.PresignList(context.Background(), signer.ListRequest{Prefix: p, MaxKeys: 5})
		if err != nil { t.Fatal(err) }
		resp, err := http.Get(u)
		if err != nil { t.Fatal(err) }
		b, _ := io.ReadAll(resp.Body)
		t.Logf("%d %s", resp.StatusCode, b)
	}
}
