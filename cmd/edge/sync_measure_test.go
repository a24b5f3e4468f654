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
	"github.com/edgeproxy/edge/internal/assets/assetstest"
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
//
// buildEdge builds the edge binary into dir (measured as a process).
func buildEdge(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "edge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

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
	bin := buildEdge(t, dir)
	cfg := mediaConfig(t, v, "images/")
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

// TestMeasureSyncCheck measures the built binary's `edge sync -check`
// over N mixed objects on versitygw (copies of the asset fixtures, in
// turn): objects/s, peak RSS, and bytes read per object from the
// summary. It runs only with EDGE_SYNC_CHECK_MEASURE=N:
//
//	EDGE_SYNC_CHECK_MEASURE=1000 go test -run TestMeasureSyncCheck -v ./cmd/edge/
func TestMeasureSyncCheck(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("EDGE_SYNC_CHECK_MEASURE"))
	if n <= 0 {
		t.Skip("set EDGE_SYNC_CHECK_MEASURE=N to measure")
	}
	fix := assetstest.Fixtures(t)
	names := assetstest.Names(t, fix)
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	c := v.Client()
	for i := range n {
		name := names[i%len(names)]
		b, err := os.ReadFile(filepath.Join(fix, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(fmt.Sprintf("assets/set%02d/%05d-%s", i%10, i, name)),
			Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String(assetstest.StoredType(name))}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	bin := buildEdge(t, dir)
	cfg := mediaConfig(t, v, "assets/")
	out := filepath.Join(dir, "m.jsonl")
	timed(t, "edge sync -check", n, exec.Command("/usr/bin/time", "-v", bin, "sync", "-config", cfg, "-check", "-o", out, "media"))
	b, _ := os.ReadFile(out)
	last := b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]
	t.Logf("summary: %s", bytes.TrimSpace(last))
	timed(t, "edge sync -check -since (nothing changed)", n, exec.Command("/usr/bin/time", "-v", bin, "sync", "-config", cfg, "-check", "-since", out, "-o", out+".2", "media"))
	b, _ = os.ReadFile(out + ".2")
	t.Logf("summary: %s", bytes.TrimSpace(b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]))
}
