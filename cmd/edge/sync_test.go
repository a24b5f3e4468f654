package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

func TestSyncVersity(t *testing.T) {
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	for _, k := range []string{"images/a.jpg", "images/b c.jpg", "images0", "other/x"} {
		v.Put(t, "media", k, []byte(k))
	}
	cfg := writeConfig(t, `
auth:
  keys:
    - {id: k1, alg: HS256, secret: "cmd-test-secret-0123456789abcdef0123"}
sources:
  - name: media
    provider: s3
    bucket: media
    endpoint: `+v.Endpoint+`
    addressing: path
    prefix: images/
    credentials: {type: static, access_key_id: `+v.AccessKey+`, secret_access_key: `+v.SecretKey+`}
`)
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
		{"check not built in", []string{"sync", "-config", p, "-check", "local"}, 1, "-check: asset checks are not available"},
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
