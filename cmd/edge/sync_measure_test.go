package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/edgeproxy/edge/internal/testenv"
)

// TestMeasureSync measures `edge sync` listing N objects from versitygw
// (objects/s, peak RSS from /usr/bin/time -v) and, when RCLONE names an
// rclone binary, `rclone lsjson -R` on the same bucket (plain, which
// HEADs every object for its mtime metadata, and with --use-server-modtime,
// which lists only, like edge sync). It runs only with
// EDGE_SYNC_MEASURE=N:
//
//	EDGE_SYNC_MEASURE=10000 RCLONE=/tmp/rclone/rclone go test -run TestMeasureSync -v -timeout 30m ./cmd/edge/
func TestMeasureSync(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EDGE_SYNC_MEASURE"))
	if n <= 0 {
		t.Skip("set EDGE_SYNC_MEASURE=N to measure")
	}
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	start := time.Now()
	upload(t, v.Client(), "media", n)
	t.Logf("uploaded %d objects in %s (%.0f/s, 32 workers)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())

	dir := t.TempDir()
	bin := filepath.Join(dir, "edge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "edge.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
auth:
  keys:
    - {id: k1, alg: HS256, secret: "cmd-test-secret-0123456789abcdef0123"}
sources:
  - name: media
    provider: s3
    bucket: media
    endpoint: %s
    addressing: path
    prefix: images/
    credentials: {type: static, access_key_id: %s, secret_access_key: %s}
`, v.Endpoint, v.AccessKey, v.SecretKey)), 0o600)
	out := filepath.Join(dir, "m.jsonl")
	for i := range 2 {
		timed(t, fmt.Sprintf("edge sync (run %d)", i+1), n, exec.Command("/usr/bin/time", "-v", bin, "sync", "-config", cfg, "-o", out, "media"))
	}
	timed(t, "edge sync -since (nothing changed)", n, exec.Command("/usr/bin/time", "-v", bin, "sync", "-config", cfg, "-since", out, "-o", out+".2", "media"))
	if rc := os.Getenv("RCLONE"); rc != "" {
		env := append(os.Environ(), "RCLONE_CONFIG_V_TYPE=s3", "RCLONE_CONFIG_V_PROVIDER=Other",
			"RCLONE_CONFIG_V_ENDPOINT="+v.Endpoint, "RCLONE_CONFIG_V_ACCESS_KEY_ID="+v.AccessKey,
			"RCLONE_CONFIG_V_SECRET_ACCESS_KEY="+v.SecretKey, "RCLONE_CONFIG_V_FORCE_PATH_STYLE=true")
		for _, args := range [][]string{{"lsjson", "-R", "v:media/images/"}, {"lsjson", "-R", "--fast-list", "--use-server-modtime", "v:media/images/"}, {"lsjson", "-R", "--use-server-modtime", "v:media/images/"}} {
			c := exec.Command("/usr/bin/time", append([]string{"-v", rc}, args...)...)
			c.Env = env
			timed(t, "rclone "+fmt.Sprint(args), n, c)
		}
	} else {
		t.Log("RCLONE not set: no rclone comparison")
	}
}

var (
	rssRe  = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)
	wallRe = regexp.MustCompile(`Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)`)
	cpuRe  = regexp.MustCompile(`Percent of CPU this job got: (\S+)`)
)

func timed(t *testing.T, name string, n int, c *exec.Cmd) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	if err := c.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	d := time.Since(start)
	rss, wall, cpu := "?", "?", "?"
	if m := rssRe.FindStringSubmatch(stderr.String()); m != nil {
		rss = m[1]
	}
	if m := wallRe.FindStringSubmatch(stderr.String()); m != nil {
		wall = m[1]
	}
	if m := cpuRe.FindStringSubmatch(stderr.String()); m != nil {
		cpu = m[1]
	}
	t.Logf("%s: %d objects in %s (%.0f objects/s), wall %s, CPU %s, peak RSS %s KB, stdout %d bytes", name, n, d.Round(time.Millisecond), float64(n)/d.Seconds(), wall, cpu, rss, stdout.Len())
}

// upload puts n small objects with a bounded pool of 32 workers.
func upload(t *testing.T, c *s3.Client, bucket string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				body := []byte(fmt.Sprintf("object %d", i))
				key := fmt.Sprintf("images/set%03d/img%07d.jpg", i%100, i)
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}
