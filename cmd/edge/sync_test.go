package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/assets"
	"github.com/edgeproxy/edge/internal/assets/assetstest"
	"github.com/edgeproxy/edge/internal/testenv"
)

func TestSyncFileSource(t *testing.T) {
	p := writeConfig(t, testConfig)
	code, out, errOut := runCmd(t, "sync", "-config", p, "local")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"key":"a.txt","size":5,"etag":"\"`) || !strings.HasPrefix(lines[1], `{"summary":{"objects":1,`) {
		t.Errorf("manifest:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("stderr is not a terminal, yet: %q", errOut)
	}
}

// mediaConfig writes a config whose one source, "media", is v's bucket
// "media" under prefix (path-style, v's static keys).
func mediaConfig(t *testing.T, v *testenv.Versity, prefix string) string {
	t.Helper()
	return writeConfig(t, `
auth:
  keys:
    - {id: k1, alg: HS256, secret: "cmd-test-secret-0123456789abcdef0123"}
sources:
  - name: media
    provider: s3
    bucket: media
    endpoint: `+v.Endpoint+`
    addressing: path
    prefix: `+prefix+`
    credentials: {type: static, access_key_id: `+v.AccessKey+`, secret_access_key: `+v.SecretKey+`}
`)
}

func TestSyncVersity(t *testing.T) {
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	for _, k := range []string{"images/a.jpg", "images/b c.jpg", "images0", "other/x"} {
		v.Put(t, "media", k, []byte(k))
	}
	cfg := mediaConfig(t, v, "images/")
	dir := t.TempDir()
	first := filepath.Join(dir, "first.jsonl")
	if code, _, errOut := runCmd(t, "sync", "-config", cfg, "-o", first, "media"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 3 || !bytes.Contains(b, []byte(`"key":"b c.jpg"`)) || bytes.Contains(b, []byte("images0")) {
		t.Errorf("first manifest:\n%s", b)
	}

	v.Put(t, "media", "images/a.jpg", []byte("IMAGES/A.JPG"))
	v.Put(t, "media", "images/new", []byte("n"))
	second := filepath.Join(dir, "second.jsonl")
	code, out, errOut := runCmd(t, "sync", "-config", cfg, "-since", first, "-o", second, "media")
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
	}
	b, _ = os.ReadFile(second)
	for _, want := range []string{`"key":"a.jpg","size":12`, `"change":"changed"`, `"key":"b c.jpg"`, `"change":"unchanged"`, `"key":"new"`, `"change":"added"`, `"added":1,"changed":1,"unchanged":1,"removed":0`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("second manifest lacks %s:\n%s", want, b)
		}
	}
	if bytes.Contains(b, []byte(v.SecretKey)) {
		t.Error("manifest holds the secret key")
	}

	t.Run("a bad old manifest leaves -o alone", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.jsonl")
		os.WriteFile(bad, []byte(`{"key":"b","size":1}`+"\n"+`{"key":"a","size":1}`+"\n"), 0o644)
		out := filepath.Join(dir, "third.jsonl")
		code, _, errOut := runCmd(t, "sync", "-config", cfg, "-since", bad, "-o", out, "media")
		if code != 1 || !strings.Contains(errOut, "line 2: keys out of order") {
			t.Errorf("exit %d: %s", code, errOut)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("-o written after a failure: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("temporary file %s left behind", e.Name())
			}
		}
	})
}

func TestSyncErrors(t *testing.T) {
	p := writeConfig(t, testConfig)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no source", []string{"sync", "-config", p}, 2, "exactly one SOURCE"},
		{"unknown source", []string{"sync", "-config", p, "nope"}, 1, `no source named "nope"`},
		{"recheck without check", []string{"sync", "-config", p, "-recheck", "local"}, 2, "-recheck needs -check"},
		{"missing since", []string{"sync", "-config", p, "-since", "/nonexistent.jsonl", "local"}, 1, "-since:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}

// TestSyncCheck runs `edge sync -check` over the asset fixtures on
// versitygw: the checks agree with ffprobe and exiftool, a -since run
// after one fixture changed checks only that one (the others keep their
// old check, so it reads a fraction of the bytes), and -recheck checks
// every object again.
func TestSyncCheck(t *testing.T) {
	dir := assetstest.Fixtures(t)
	names := assetstest.Names(t, dir)
	wants := assetstest.Oracle(t, dir, names, nil)
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	put := func(key, file string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		v.PutTyped(t, "media", key, b, assetstest.StoredType(key))
	}
	for _, n := range names {
		put("assets/"+n, n)
	}
	cfg := mediaConfig(t, v, "assets/")
	out := t.TempDir()
	sync := func(args ...string) (map[string]syncLine, syncSummary, []byte) {
		t.Helper()
		o := filepath.Join(out, fmt.Sprintf("m%d.jsonl", time.Now().UnixNano()))
		if code, _, errOut := runCmd(t, append(append([]string{"sync", "-config", cfg, "-o", o}, args...), "media")...); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		b, err := os.ReadFile(o)
		if err != nil {
			t.Fatal(err)
		}
		lines := map[string]syncLine{}
		var sum syncSummary
		for _, raw := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var l syncLine
			if err := json.Unmarshal(raw, &l); err != nil {
				t.Fatalf("%s: %v", raw, err)
			}
			if l.Summary != nil {
				sum = *l.Summary
				continue
			}
			lines[l.Key] = l
		}
		if bytes.Contains(b, []byte(v.SecretKey)) || bytes.Contains(b, []byte("X-Amz-")) {
			t.Error("the manifest holds the secret key or a signature")
		}
		return lines, sum, b
	}
	first, sum1, firstRaw := sync("-check")
	if len(first) != len(names) || sum1.BytesRead <= 0 {
		t.Fatalf("%d lines, summary %+v", len(first), sum1)
	}
	var problems, size int64
	for _, n := range names {
		l := first[n]
		if l.Check == nil {
			t.Fatalf("%s: no check", n)
		}
		size += l.Size
		problems += int64(len(l.Check.Problems))
		w := wants[n]
		got := map[string]bool{}
		for _, p := range l.Check.Problems {
			got[p.Code] = true
		}
		if len(got) != len(w.Codes) {
			t.Errorf("%s: problems %+v, oracle %v", n, l.Check.Problems, w.Codes)
		}
		for c := range w.Codes {
			if !got[c] {
				t.Errorf("%s: missing %s in %+v", n, c, l.Check.Problems)
			}
		}
		if l.Check.Width != w.Width || l.Check.Height != w.Height || (w.Video == nil && l.Check.Orientation != w.Orientation) {
			t.Errorf("%s: %dx%d/%d, oracle %dx%d/%d", n, l.Check.Width, l.Check.Height, l.Check.Orientation, w.Width, w.Height, w.Orientation)
		}
	}
	if sum1.Problems != problems || sum1.BytesRead > size/4 {
		t.Errorf("summary %+v; %d problems in the lines, %d bytes in the objects", sum1, problems, size)
	}
	t.Logf("first run: %d objects, %d bytes of %d read", len(first), sum1.BytesRead, size)

	put("assets/orient_1.jpg", "orient_6.jpg")
	since := filepath.Join(out, "first.jsonl")
	os.WriteFile(since, firstRaw, 0o644)
	second, sum2, _ := sync("-check", "-since", since)
	if sum2.Changed != 1 || sum2.Unchanged != int64(len(names)-1) || sum2.Problems != sum1.Problems+1 {
		t.Errorf("second summary %+v", sum2)
	}
	if l := second["orient_1.jpg"]; l.Change != "changed" || l.Check == nil || l.Check.Orientation != 6 {
		t.Errorf("orient_1.jpg: %+v", l)
	}
	if sum2.BytesRead <= 0 || sum2.BytesRead > 64<<10 {
		t.Errorf("the -since run read %d bytes: more than one image's check", sum2.BytesRead)
	}
	_, sum3, _ := sync("-check", "-recheck", "-since", since)
	if sum3.BytesRead < sum1.BytesRead*9/10 {
		t.Errorf("-recheck read %d bytes, the first run %d: not every object was checked again", sum3.BytesRead, sum1.BytesRead)
	}
}

type syncLine struct {
	Key     string        `json:"key"`
	Size    int64         `json:"size"`
	Change  string        `json:"change"`
	Check   *assets.Check `json:"check"`
	Summary *syncSummary  `json:"summary"`
}

type syncSummary struct {
	Objects, Changed, Unchanged, Problems int64
	BytesRead                             int64 `json:"bytes_read"`
}

func TestMain(m *testing.M) {
	code := m.Run()
	assetstest.Cleanup()
	os.Exit(code)
}
