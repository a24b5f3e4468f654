package listing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/edgeproxy/edge/internal/assets"
	"github.com/edgeproxy/edge/internal/assets/assetstest"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

// TestMeasureCheck measures checks over N mixed objects on versitygw
// (copies of the generated fixtures, in turn): objects/s of a checked
// sync, and bytes read per object by kind. It runs only with
// LISTING_CHECK_MEASURE=N:
//
//	LISTING_CHECK_MEASURE=1000 go test -run TestMeasureCheck -v ./internal/listing/
func TestMeasureCheck(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LISTING_CHECK_MEASURE"))
	if n <= 0 {
		t.Skip("set LISTING_CHECK_MEASURE=N to measure")
	}
	dir := assetstest.Fixtures(t)
	names := assetstest.Names(t, dir)
	bodies := map[string][]byte{}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		bodies[name] = b
	}
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	fixtureOf := map[string]string{} // key → fixture
	var keys []string
	for i := range n {
		name := names[i%len(names)]
		k := fmt.Sprintf("set%02d/%05d-%s", i%10, i, name)
		fixtureOf[k] = name
		keys = append(keys, k)
	}
	start := time.Now()
	work := make(chan string)
	var wg sync.WaitGroup
	c := v.Client()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				b := bodies[fixtureOf[k]]
				if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("assets/" + k),
					Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String(assetstest.StoredType(fixtureOf[k]))}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	t.Logf("uploaded %d objects in %s", n, time.Since(start).Round(time.Millisecond))

	sg, err := signer.New(context.Background(), s3Config(&v.S3Server, "media"), signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := New(sg, "assets/", RemoteOptions{})
	checker := newChecker(t)
	check, _ := NewCheck(sg, "assets/", checker, nil, nil)
	for run := range 2 {
		rec := record(check)
		var buf bytes.Buffer
		start = time.Now()
		sum, err := Sync(context.Background(), l, Options{Check: rec.Check, Concurrency: checker.Config().MaxConcurrent}, &buf)
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		type stat struct{ n, bytes, size int64 }
		kinds := map[string]*stat{}
		lines, _ := parseManifest(t, buf.Bytes())
		for k, ln := range lines {
			kind := filepath.Ext(fixtureOf[k])
			var ck assets.Check
			if err := json.Unmarshal(ln.Check, &ck); err == nil && ck.Video != nil {
				switch {
				case ck.Video.Fragmented:
					kind = "mp4 fragmented"
				case ck.Video.Faststart:
					kind = "mp4 faststart"
				default:
					kind = "mp4 moov at end"
				}
			}
			switch kind {
			case ".jpg", ".png", ".gif", ".webp", ".bmp", ".tiff":
				kind = "image " + kind
			}
			s := kinds[kind]
			if s == nil {
				s = &stat{}
				kinds[kind] = s
			}
			s.n++
			s.bytes += rec.bytes[k]
			s.size += ln.Size
		}
		t.Logf("run %d (concurrency %d): %d objects checked in %s: %.0f objects/s, %d bytes read (%d per object), %d problems",
			run+1, checker.Config().MaxConcurrent, sum.Objects, d.Round(time.Millisecond), float64(sum.Objects)/d.Seconds(), sum.BytesRead, sum.BytesRead/sum.Objects, sum.Problems)
		var ks []string
		for k := range kinds {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var imgN, imgB int64
		for _, k := range ks {
			s := kinds[k]
			t.Logf("  %-16s %4d objects, avg read %7d B of avg size %8d B (%.1f%%)", k, s.n, s.bytes/s.n, s.size/s.n, 100*float64(s.bytes)/float64(s.size))
			if len(k) > 6 && k[:6] == "image " {
				imgN += s.n
				imgB += s.bytes
			}
		}
		if imgN > 0 {
			t.Logf("  images: avg read %d B per object (target < 262144)", imgB/imgN)
		}
		if s := kinds["mp4 faststart"]; s != nil {
			t.Logf("  faststart MP4: avg read %d B per object (target < 262144)", s.bytes/s.n)
		}
	}
}
