package listing

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

// putAll uploads every key (body = key, or empty for a trailing '/')
// with a bounded pool of workers.
func putAll(t testing.TB, srv *testenv.S3Server, bucket string, keys []string) {
	t.Helper()
	c := srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	work := make(chan string)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				body := []byte(k)
				if strings.HasSuffix(k, "/") {
					body = nil
				}
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}); err != nil {
					select {
					case errs <- fmt.Errorf("put %q: %w", k, err):
					default:
					}
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func deleteAll(t *testing.T, srv *testenv.S3Server, bucket string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
}

// Keys around the prefix "images/": awkward ones inside, neighbours that
// sort right before and after it outside. (A posix store cannot hold both
// "images" and "images/x"; the Azurite and file tests cover "images".)
var (
	awkwardInside = []string{
		"images/", // the prefix itself, a folder marker: not listed
		"images/.x", "images/a b.jpg", "images/a+b.jpg", "images/a%2Bb.jpg", "images/a%20b", "images/100%",
		"images/é.jpg", "images/e\u0301.jpg", "images/😀", "images/\uff01", "images/a-c", "images/a/b", "images/a/bc d+e",
		"images/~tilde", "images/semi;colon&amp=eq?q#h", "images/x,y'z\"", "images/ünï/cödé",
	}
	outside = []string{"images0", "imagesX/y", "images-a", "image", "imagesé", "other/images/x", "Images/x"}
)

func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("images/set%02d/img %05d.jpg", i%7, i)
	}
	return keys
}

// wantRelative is what listing "images/" must give: every key inside,
// relative, in byte order, without the prefix itself.
func wantRelative(prefix string, keys ...[]string) []string {
	var out []string
	for _, ks := range keys {
		for _, k := range ks {
			if rel, ok := strings.CutPrefix(k, prefix); ok && rel != "" {
				out = append(out, rel)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func s3Config(srv *testenv.S3Server, bucket string) signer.Config {
	return signer.Config{Provider: signer.ProviderS3, Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region, Addressing: "path",
		Credentials: signer.Credentials{Type: "static", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}}
}

func newLister(t *testing.T, cfg signer.Config, prefix string, pageSize int) *Remote {
	t.Helper()
	sg, err := signer.New(context.Background(), cfg, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(sg, prefix, RemoteOptions{PageSize: pageSize, Client: testenv.LocalhostClient()})
	if err != nil {
		t.Fatal(err)
	}
	return l.(*Remote)
}

// checkListing lists l and compares keys (and byte order) with want.
func checkListing(t *testing.T, l Lister, want []string) []Object {
	t.Helper()
	var got []Object
	var keys []string
	if err := l.List(context.Background(), func(o Object) error {
		got = append(got, o)
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	if !slices.Equal(keys, want) {
		missing, extra := diffKeys(want, keys)
		t.Fatalf("listed %d keys, want %d; missing %q, extra %q; order ok: %v", len(keys), len(want), missing, extra, slices.IsSorted(keys))
	}
	for _, o := range got {
		if o.ETag == "" || o.LastModified.IsZero() || o.StorageKey != "images/"+o.Key {
			t.Fatalf("object %+v lacks etag, time or storage key", o)
		}
	}
	return got
}

func diffKeys(want, got []string) (missing, extra []string) {
	for _, k := range want {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	return
}

func startS3(t *testing.T, name string) *testenv.S3Server {
	switch name {
	case "versitygw":
		return &testenv.StartVersity(t).S3Server
	case "minio":
		return &testenv.StartMinio(t).S3Server
	}
	t.Fatalf("unknown server %s", name)
	return nil
}

// TestRemoteS3 lists more than 1000 objects (several pages) with awkward
// keys from versitygw and MinIO, and never the neighbours of the prefix.
func TestRemoteS3(t *testing.T) {
	for _, server := range []string{"versitygw", "minio"} {
		t.Run(server, func(t *testing.T) {
			srv := startS3(t, server)
			srv.CreateBucket(t, "media")
			many := manyKeys(1100)
			putAll(t, srv, "media", slices.Concat(many, awkwardInside, outside))
			want := wantRelative("images/", many, awkwardInside)
			for _, pageSize := range []int{0, 7} {
				t.Run(fmt.Sprintf("page size %d", pageSize), func(t *testing.T) {
					l := newLister(t, s3Config(srv, "media"), "images/", pageSize)
					got := checkListing(t, l, want)
					if o := got[slices.IndexFunc(got, func(o Object) bool { return o.Key == "a b.jpg" })]; o.Size != int64(len("images/a b.jpg")) || !strings.HasPrefix(o.ETag, `"`) {
						t.Errorf("a b.jpg: %+v", o)
					}
				})
			}
			t.Run("a prefix without a slash lists its neighbours", func(t *testing.T) {
				l := newLister(t, s3Config(srv, "media"), "images", 0)
				var keys []string
				if err := l.List(context.Background(), func(o Object) error { keys = append(keys, o.Key); return nil }); err != nil {
					t.Fatal(err)
				}
				for _, k := range []string{"0", "X/y", "-a", "é", "/a b.jpg"} {
					if !slices.Contains(keys, k) {
						t.Errorf("prefix images: %q not listed", k)
					}
				}
			})
			t.Run("wrong secret", func(t *testing.T) {
				cfg := s3Config(srv, "media")
				cfg.Credentials.SecretAccessKey = "wrong-secret-0123456789"
				err := newLister(t, cfg, "images/", 0).List(context.Background(), func(Object) error { return nil })
				if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
					t.Fatalf("error %v, want HTTP 403", err)
				}
				for _, secret := range []string{"wrong-secret", "Signature=", srv.AccessKey} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q reveals %q", err, secret)
					}
				}
			})
		})
	}
}

// TestRemoteGCSInterop lists through the GCS hmac signer (SigV4 against
// an S3-compatible endpoint, as GCS's interoperability mode takes it).
func TestRemoteGCSInterop(t *testing.T) {
	srv := &testenv.StartVersity(t).S3Server
	srv.CreateBucket(t, "gcs-media")
	putAll(t, srv, "gcs-media", slices.Concat(awkwardInside, outside))
	cfg := signer.Config{Provider: signer.ProviderGCS, Bucket: "gcs-media", Endpoint: srv.Endpoint, Region: srv.Region,
		Credentials: signer.Credentials{Type: "hmac", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}}
	checkListing(t, newLister(t, cfg, "images/", 5), wantRelative("images/", awkwardInside))
}

// TestSyncIncremental: a second run after adding, changing (same size,
// new ETag) and deleting objects reports exactly those changes.
func TestSyncIncremental(t *testing.T) {
	srv := &testenv.StartVersity(t).S3Server
	srv.CreateBucket(t, "media")
	many := manyKeys(1050)
	putAll(t, srv, "media", slices.Concat(many, awkwardInside, outside))
	l := newLister(t, s3Config(srv, "media"), "images/", 0)
	var first bytes.Buffer
	s1, err := Sync(context.Background(), l, Options{}, &first)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(len(wantRelative("images/", many, awkwardInside))); s1.Objects != n {
		t.Fatalf("first run: %d objects, want %d", s1.Objects, n)
	}

	added := []string{"images/0-first", "images/set03/new.jpg", "images/zz last", "images/a/c"}
	changed := []string{"images/a b.jpg", many[500]}
	removed := []string{"images/a+b.jpg", many[0], many[1049], "images/😀"}
	putAll(t, srv, "media", added)
	// Same size, other bytes: only the ETag tells.
	for _, k := range changed {
		srv.Put(t, "media", k, bytes.ToUpper([]byte(k)))
	}
	deleteAll(t, srv, "media", removed...)
	srv.Put(t, "media", "images0", []byte("outside changes nothing"))

	var second bytes.Buffer
	s2, err := Sync(context.Background(), l, Options{Since: bytes.NewReader(first.Bytes())}, &second)
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := decodeManifest(t, second.Bytes())
	got := map[string][]string{}
	var keys []string
	for _, ln := range lines {
		got[ln.Change] = append(got[ln.Change], "images/"+ln.Key)
		keys = append(keys, ln.Key)
	}
	if !slices.IsSorted(keys) {
		t.Error("second manifest not in key order")
	}
	for change, want := range map[string][]string{Added: added, Changed: changed, Removed: removed} {
		g := slices.Sorted(slices.Values(got[change]))
		w := slices.Sorted(slices.Values(want))
		if !slices.Equal(g, w) {
			t.Errorf("%s: got %q, want %q", change, g, w)
		}
	}
	wantUnchanged := int64(s1.Objects) - int64(len(changed)) - int64(len(removed))
	if s2.Unchanged != wantUnchanged || s2.Added != 4 || s2.Changed != 2 || s2.Removed != 4 || s2.Objects != s1.Objects+4-4 {
		t.Errorf("summary %+v, want unchanged %d, added 4, changed 2, removed 4", s2, wantUnchanged)
	}
	if bytes.Contains(second.Bytes(), []byte(srv.SecretKey)) || bytes.Contains(second.Bytes(), []byte("Signature")) {
		t.Error("manifest holds a secret or a signature")
	}
}

// TestRemoteAzurite lists an Azurite container in pages with a list-only
// container SAS, including the keys that sort around the prefix.
func TestRemoteAzurite(t *testing.T) {
	az := testenv.StartAzurite(t)
	az.CreateContainer(t, "media")
	// Azurite answers HTTP 500 for a name holding U+FFFF (real Azure
	// percent-encodes it, Encoded="true": see TestParsePage).
	inside := slices.Concat(awkwardInside, []string{"images/ab", "images/a", "images/\U0001F600x", "images/\ufffd"})
	around := slices.Concat(outside, []string{"images"})
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	all := slices.Concat(inside, around, manyKeys(150))
	for _, k := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			az.Put(t, "media", k, []byte(k))
		}()
	}
	wg.Wait()
	cfg := signer.Config{Provider: signer.ProviderAzure, Bucket: "media", Account: az.Account, Endpoint: az.Endpoint,
		Credentials: signer.Credentials{Type: "shared_key", AccountKey: az.Key}}
	// Azurite lists in UTF-16 code unit order ("！" after "😀").
	want := wantRelative("images/", inside, manyKeys(150))
	slices.SortFunc(want, UTF16Order)
	if slices.IsSorted(want) {
		t.Fatal("the keys do not tell UTF-16 order from byte order")
	}
	for _, pageSize := range []int{0, 9} {
		t.Run(fmt.Sprintf("page size %d", pageSize), func(t *testing.T) {
			got := checkListing(t, newLister(t, cfg, "images/", pageSize), want)
			for _, o := range got {
				if !strings.HasPrefix(o.ETag, `"0x`) || !strings.HasSuffix(o.ETag, `"`) {
					t.Fatalf("%q: etag %s, want a quoted 0x… etag", o.Key, o.ETag)
				}
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		bad := cfg
		bad.Credentials.AccountKey = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
		err := newLister(t, bad, "images/", 0).List(context.Background(), func(Object) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "HTTP 403") {
			t.Fatalf("error %v, want HTTP 403", err)
		}
		if strings.Contains(err.Error(), "sig=") {
			t.Errorf("error reveals the SAS: %v", err)
		}
	})
}
