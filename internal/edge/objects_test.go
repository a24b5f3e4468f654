package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/edgeproxy/edge/internal/assets"
	"github.com/edgeproxy/edge/internal/assets/assetstest"
	"github.com/edgeproxy/edge/internal/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	code := m.Run()
	assetstest.Cleanup()
	os.Exit(code)
}

// objectsFixtures are the fixtures the admin route checks: one per
// problem family.
var objectsFixtures = []string{"base.jpg", "orient_6.jpg", "png_as_octet.png", "h264_mp42_faststart.mp4", "h264_mp42_moov_at_end.mp4", "notes.txt"}

// objectsServer is an edge over versitygw and a file source, with the
// admin route mounted the way the lead mounts it: one call.
type objectsServer struct {
	*httptest.Server
	v    *testenv.Versity
	e    *env
	logs *observer.ObservedLogs
	done chan struct{} // a value per ServeObjects return
}

func newObjectsServer(t *testing.T, fileRoot string) *objectsServer {
	t.Helper()
	dir := assetstest.Fixtures(t)
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	for _, n := range objectsFixtures {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("assets/" + n),
			Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String(assetstest.StoredType(n))}); err != nil {
			t.Fatal(err)
		}
	}
	v.Put(t, "media", "outside.jpg", []byte("outside the prefix"))
	media := vSource(v, "media", "media", v.Endpoint, "path", "assets/")
	media.Mode = ModeStream
	wrong := vSource(v, "wrong", "media", v.Endpoint, "path", "assets/")
	wrong.Credentials.SecretAccessKey = "0123456789abcdef0123456789abcdefWRONGKEY"
	cfg := &Config{
		Auth:    vConfig(v).Auth,
		Sources: []SourceConfig{media, wrong, fileSource("local", fileRoot, "assets/", ModeStream)},
	}
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, cfg, withLogger(zap.New(core)))
	e.clk.Set(time.Now()) // versitygw judges the signatures by the wall clock
	s := &objectsServer{v: v, e: e, logs: logs, done: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/v1/connections/{name}/objects", func(w http.ResponseWriter, r *http.Request) {
		defer func() { s.done <- struct{}{} }()
		w.Header().Set("X-Request-Id", "req-objects-test") // the admin listener's middleware sets it
		if err := e.srv.ServeObjects(w, r, r.PathValue("name")); err != nil {
			writeError(w, r, err)
		}
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *objectsServer) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

type objectsLine struct {
	Key     string        `json:"key"`
	Size    int64         `json:"size"`
	Check   *assets.Check `json:"check"`
	Summary *struct {
		Objects   int64 `json:"objects"`
		Problems  int64 `json:"problems"`
		BytesRead int64 `json:"bytes_read"`
	} `json:"summary"`
}

func parseObjects(t *testing.T, b []byte) ([]objectsLine, objectsLine) {
	t.Helper()
	var lines []objectsLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var l objectsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 || lines[len(lines)-1].Summary == nil {
		t.Fatalf("no summary line last:\n%s", b)
	}
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestServeObjects(t *testing.T) {
	dir := assetstest.Fixtures(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "assets"), 0o755)
	for _, n := range objectsFixtures {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		os.WriteFile(filepath.Join(root, "assets", n), b, 0o644)
	}
	s := newObjectsServer(t, root)
	wants := assetstest.Oracle(t, dir, objectsFixtures, nil)

	for _, src := range []string{"media", "local"} {
		t.Run(src+" checked", func(t *testing.T) {
			resp, b := s.get(t, "/admin/v1/connections/"+src+"/objects?check=1")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			lines, sum := parseObjects(t, b)
			if len(lines) != len(objectsFixtures) || sum.Summary.Objects != int64(len(objectsFixtures)) {
				t.Fatalf("%d lines:\n%s", len(lines), b)
			}
			var size, problems int64
			for _, l := range lines {
				w := wants[l.Key]
				if l.Check == nil {
					t.Fatalf("%s: no check", l.Key)
				}
				size += l.Size
				problems += int64(len(l.Check.Problems))
				if l.Check.Width != w.Width || l.Check.Height != w.Height || (w.Video == nil && l.Check.Orientation != w.Orientation) {
					t.Errorf("%s: %dx%d orientation %d; oracle %dx%d orientation %d", l.Key, l.Check.Width, l.Check.Height, l.Check.Orientation, w.Width, w.Height, w.Orientation)
				}
				got := map[string]bool{}
				for _, p := range l.Check.Problems {
					got[p.Code] = true
				}
				for c := range w.Codes {
					// A file is served with its extension's type: png_as_octet.png is no mismatch there.
					if !got[c] && !(src == "local" && c == assets.CodeContentTypeMismatch) {
						t.Errorf("%s: missing %s in %+v", l.Key, c, l.Check.Problems)
					}
				}
			}
			if sum.Summary.Problems != problems || sum.Summary.BytesRead <= 0 || sum.Summary.BytesRead > size/4 {
				t.Errorf("summary %+v: %d problems in the lines, %d bytes in the objects", *sum.Summary, problems, size)
			}
		})
	}

	t.Run("unchecked", func(t *testing.T) {
		_, b := s.get(t, "/admin/v1/connections/media/objects")
		lines, sum := parseObjects(t, b)
		if len(lines) != len(objectsFixtures) || lines[0].Check != nil || bytes.Contains(b, []byte("bytes_read")) || sum.Summary.Problems != 0 {
			t.Errorf("manifest:\n%s", b)
		}
		if bytes.Contains(b, []byte("outside")) {
			t.Errorf("an object outside the prefix is listed:\n%s", b)
		}
	})

	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/admin/v1/connections/nope/objects", 404, "unknown_source"},
		{"/admin/v1/connections/media/objects?check=yes", 400, "bad_request"},
		{"/admin/v1/connections/wrong/objects?check=1", 502, "list_failed"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			resp, b := s.get(t, tc.path)
			var body errBody
			if resp.StatusCode != tc.status || json.Unmarshal(b, &body) != nil || body.Error != tc.code || body.RequestID == "" {
				t.Errorf("status %d, body %s; want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
			for _, secret := range []string{s.v.SecretKey, "0123456789abcdef0123456789abcdefWRONGKEY", "X-Amz-"} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("answer holds %q: %s", secret, b)
				}
			}
		})
	}
	for _, e := range s.logs.All() {
		for _, f := range e.Context {
			if v := fmt.Sprint(f.Interface, f.String); strings.Contains(v, "X-Amz-Signature") || strings.Contains(v, s.v.SecretKey) {
				t.Errorf("log %q holds a signature or the secret: %s", e.Message, v)
			}
		}
	}
}

// TestServeObjectsClientGone: a client that goes away stops the listing
// and its checks.
func TestServeObjectsClientGone(t *testing.T) {
	t0w := time.Now()
	// Many files, so the listing is still running when the client goes:
	// on tmpfs when there is one (writing them to a busy disk takes long).
	root, terr := os.MkdirTemp("/dev/shm", "edge-objects-")
	if terr != nil {
		root = t.TempDir()
	} else {
		t.Cleanup(func() { os.RemoveAll(root) })
	}
	const n = 40000 // a full checked listing of them takes ~1.6 s on a 2-core machine; the client leaves after ~0.2 s
	for d := range 20 {
		p := filepath.Join(root, "assets", fmt.Sprintf("d%02d", d))
		os.MkdirAll(p, 0o755)
		for i := range n / 20 {
			os.WriteFile(filepath.Join(p, fmt.Sprintf("f%05d.txt", i)), []byte("x"), 0o644)
		}
	}
	s := newObjectsServer(t, root)
	resp, err := http.Get(s.URL + "/admin/v1/connections/local/objects?check=1")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, `{"key":"d00/f00000.txt"`) {
		t.Fatalf("first line %q: %v", line, err)
	}
	resp.Body.Close()
	gone := time.Now()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("ServeObjects still running 20s after the client went away")
	}
	t.Logf("files written and server up in %s; ServeObjects returned %s after the client went away", gone.Sub(t0w).Round(time.Millisecond), time.Since(gone))
	if s.logs.FilterMessage("objects listing stopped: the client went away").Len() != 1 || s.logs.FilterMessage("objects listed").Len() != 0 {
		for _, e := range s.logs.All() {
			t.Logf("log: %s %v", e.Message, e.ContextMap())
		}
		t.Error("the listing was not stopped by the client going away")
	}
}
