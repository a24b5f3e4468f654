package signer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var fileT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fileKey(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(b), 32)))
}

func newFileT(t testing.TB, keys ...string) *File {
	t.Helper()
	f, err := NewFile(Config{Provider: ProviderFile, Root: "(fs)", Credentials: Credentials{URLKeys: keys}},
		FileOptions{BasePath: "/v1/f/local/", Prefix: "files/", FS: fstest.MapFS{"files/a.txt": {Data: []byte("a")}}})
	if err != nil {
		t.Fatalf("NewFile: %v", err)
	}
	return f
}

// fileURLParts splits a /v1/f URL into the key relative to the prefix
// (decoded), exp and sig, as the edge's handler reads them.
func fileURLParts(t testing.TB, raw string) (key, exp, sig string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/v1/f/local/")
	if !ok {
		t.Fatalf("URL %s not under the base path", raw)
	}
	key, err = url.PathUnescape(rest)
	if err != nil {
		t.Fatal(err)
	}
	return key, u.Query().Get("exp"), u.Query().Get("sig")
}

func TestFilePresignVerify(t *testing.T) {
	f := newFileT(t, fileKey('a'))
	ctx := context.Background()
	for _, key := range []string{"a.txt", "a b/(1)+%.png", "猫.jpg", "q?x#y&z=1.txt", "deep/er/k"} {
		p, err := f.Presign(ctx, Request{Method: "GET", Key: "files/" + key, At: fileT0, TTL: time.Hour})
		if err != nil {
			t.Fatalf("Presign(%q): %v", key, err)
		}
		if want := "/v1/f/local/" + EscapePath(key) + "?exp=" + strconv.FormatInt(fileT0.Add(time.Hour).Unix(), 10) + "&sig="; !strings.HasPrefix(p.URL, want) {
			t.Errorf("URL = %s, want prefix %s", p.URL, want)
		}
		if !p.Expires.Equal(fileT0.Add(time.Hour)) {
			t.Errorf("Expires = %s", p.Expires)
		}
		k, exp, sig := fileURLParts(t, p.URL)
		if k != key {
			t.Errorf("URL names %q, want %q", k, key)
		}
		if err := f.Verify(k, exp, sig, fileT0); err != nil {
			t.Errorf("Verify at signing time: %v", err)
		}
		if err := f.Verify(k, exp, sig, fileT0.Add(time.Hour-time.Second)); err != nil {
			t.Errorf("Verify a second before expiry: %v", err)
		}
		if err := f.Verify(k, exp, sig, fileT0.Add(time.Hour)); !errors.Is(err, ErrURLExpired) {
			t.Errorf("Verify at expiry = %v, want ErrURLExpired", err)
		}
		e, _ := strconv.ParseInt(exp, 10, 64)
		for name, args := range map[string][3]string{
			"other key":       {k + "x", exp, sig},
			"prefixed key":    {"files/" + k, exp, sig},
			"later exp":       {k, strconv.FormatInt(e+1, 10), sig},
			"earlier exp":     {k, strconv.FormatInt(e-1, 10), sig},
			"padded exp":      {k, "0" + exp, sig},
			"signed exp":      {k, "+" + exp, sig},
			"bad exp":         {k, "soon", sig},
			"empty exp":       {k, "", sig},
			"flipped sig":     {k, exp, flipFirst(sig)},
			"truncated sig":   {k, exp, sig[:len(sig)-1]},
			"padded sig":      {k, exp, sig + "="},
			"std base64 sig":  {k, exp, strings.NewReplacer("-", "+", "_", "/").Replace(sig) + "x"},
			"empty sig":       {k, exp, ""},
			"sig of empty":    {"", exp, sig},
			"NUL in key":      {k + "\x00", exp, sig},
			"exp in the past": {k, "1", sig},
		} {
			err := f.Verify(args[0], args[1], args[2], fileT0)
			if !errors.Is(err, ErrURLSignature) {
				t.Errorf("%q: %s: Verify = %v, want ErrURLSignature", key, name, err)
			}
		}
	}
	// Deterministic: the same request, the same URL; a new time, a new URL.
	a, _ := f.Presign(ctx, Request{Key: "files/a.txt", At: fileT0, TTL: time.Hour})
	b, _ := f.Presign(ctx, Request{Key: "files/a.txt", At: fileT0.Add(500 * time.Millisecond), TTL: time.Hour})
	c, _ := f.Presign(ctx, Request{Key: "files/a.txt", At: fileT0.Add(time.Second), TTL: time.Hour})
	if a.URL != b.URL || a.URL == c.URL {
		t.Errorf("determinism: %s %s %s", a.URL, b.URL, c.URL)
	}
}

func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestFilePresignErrors(t *testing.T) {
	f := newFileT(t, fileKey('a'))
	for _, r := range []Request{
		{Key: "other/a.txt", At: fileT0, TTL: time.Hour}, // outside the prefix
		{Key: "files/a.txt", At: fileT0, TTL: 0},
		{Key: "files/a.txt", At: fileT0, TTL: MaxTTL + time.Second},
	} {
		if p, err := f.Presign(context.Background(), r); err == nil {
			t.Errorf("Presign(%+v) = %s, want an error", r, p.URL)
		}
	}
}

// TestFileKeyRotation: the first key signs, every key verifies.
func TestFileKeyRotation(t *testing.T) {
	old := newFileT(t, fileKey('a'))
	rotating := newFileT(t, fileKey('b'), fileKey('a'))
	rotated := newFileT(t, fileKey('b'))
	ctx := context.Background()
	p, _ := old.Presign(ctx, Request{Key: "files/a.txt", At: fileT0, TTL: time.Hour})
	k, exp, sig := fileURLParts(t, p.URL)
	if err := rotating.Verify(k, exp, sig, fileT0); err != nil {
		t.Errorf("an old URL during rotation: %v", err)
	}
	if err := rotated.Verify(k, exp, sig, fileT0); !errors.Is(err, ErrURLSignature) {
		t.Errorf("an old URL after rotation: %v", err)
	}
	p, _ = rotating.Presign(ctx, Request{Key: "files/a.txt", At: fileT0, TTL: time.Hour})
	k, exp, sig = fileURLParts(t, p.URL)
	if err := rotated.Verify(k, exp, sig, fileT0); err != nil {
		t.Errorf("a new URL after rotation: %v", err)
	}
	if err := old.Verify(k, exp, sig, fileT0); !errors.Is(err, ErrURLSignature) {
		t.Errorf("a new URL on an edge without the new key: %v", err)
	}
	// Replicas sharing the key agree byte for byte.
	if a, b := mustPresign(t, old), mustPresign(t, newFileT(t, fileKey('a'))); a != b {
		t.Errorf("two signers with one key disagree:\n%s\n%s", a, b)
	}
	// Without url_keys every process has its own random key.
	x, y := newFileT(t), newFileT(t)
	p, _ = x.Presign(ctx, Request{Key: "files/a.txt", At: fileT0, TTL: time.Hour})
	k, exp, sig = fileURLParts(t, p.URL)
	if err := x.Verify(k, exp, sig, fileT0); err != nil {
		t.Errorf("own URL: %v", err)
	}
	if err := y.Verify(k, exp, sig, fileT0); !errors.Is(err, ErrURLSignature) {
		t.Errorf("another process's random key verified: %v", err)
	}
}

func mustPresign(t *testing.T, f *File) string {
	t.Helper()
	p, err := f.Presign(context.Background(), Request{Key: "files/a.txt", At: fileT0, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return p.URL
}

func TestNewFileErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"missing root":  {Provider: ProviderFile, Root: filepath.Join(t.TempDir(), "nope")},
		"short key":     {Provider: ProviderFile, Root: t.TempDir(), Credentials: Credentials{URLKeys: []string{base64.StdEncoding.EncodeToString([]byte("short"))}}},
		"not base64":    {Provider: ProviderFile, Root: t.TempDir(), Credentials: Credentials{URLKeys: []string{"!!!"}}},
		"a bad 2nd key": {Provider: ProviderFile, Root: t.TempDir(), Credentials: Credentials{URLKeys: []string{fileKey('a'), "!!!"}}},
	} {
		if f, err := NewFile(cfg, FileOptions{BasePath: "/v1/f/x/"}); err == nil {
			f.Close()
			t.Errorf("%s: NewFile passed", name)
		}
	}
}

// TestFileRoot: a file source's tree is its root directory, and nothing,
// a symlink included, resolves outside it.
func TestFileRoot(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "files"), 0o755))
	must(os.WriteFile(filepath.Join(root, "files", "a.txt"), []byte("inside"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("outside"), 0o644))
	must(os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(root, "files", "abs-link")))
	must(os.Symlink("../../secret.txt", filepath.Join(root, "files", "rel-link")))
	must(os.Symlink("a.txt", filepath.Join(root, "files", "ok-link")))
	f, err := NewFile(Config{Provider: ProviderFile, Root: root}, FileOptions{BasePath: "/v1/f/l/", Prefix: "files/"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	read := func(name string) (string, error) {
		r, err := f.Open(name)
		if err != nil {
			return "", err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		return string(b), err
	}
	if got, err := read("files/a.txt"); err != nil || got != "inside" {
		t.Errorf("files/a.txt: %q, %v", got, err)
	}
	if got, err := read("files/ok-link"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a symlink inside the root: %q, %v; want fs.ErrNotExist (links are not followed by default)", got, err)
	}
	for _, name := range []string{"files/abs-link", "files/rel-link", "../secret.txt", "files/../../secret.txt", "/etc/passwd"} {
		if got, err := read(name); err == nil {
			t.Errorf("%s read %q outside the root", name, got)
		}
	}
	if _, err := fs.Stat(f, "files"); err != nil {
		t.Errorf("stat files: %v", err)
	}
}

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"a/b.c-d_e~f":     "a/b.c-d_e~f",
		"a b":             "a%20b",
		"a+b":             "a%2Bb",
		"100%":            "100%25",
		"(1)":             "%281%29",
		"a&b=c?d#e":       "a%26b%3Dc%3Fd%23e",
		"猫":               "%E7%8C%AB",
		"\x00\xff":        "%00%FF",
		"a//b/":           "a//b/",
		"semi;colon:at@!": "semi%3Bcolon%3Aat%40%21",
	} {
		got := EscapePath(in)
		if got != want {
			t.Errorf("EscapePath(%q) = %q, want %q", in, got, want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != in {
			t.Errorf("PathUnescape(EscapePath(%q)) = %q, %v", in, back, err)
		}
	}
}

// TestFileURLBoundToSource: two file sources sharing url_keys (as a fleet
// shares them) do not accept each other's URLs for the same key.
func TestFileURLBoundToSource(t *testing.T) {
	k := fileKey('s')
	fsys := fstest.MapFS{"files/a.txt": {Data: []byte("a")}}
	mk := func(base string) *File {
		f, err := NewFile(Config{Provider: ProviderFile, Root: "(fs)", Credentials: Credentials{URLKeys: []string{k}}},
			FileOptions{BasePath: base, Prefix: "files/", FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a, b := mk("/v1/f/local/"), mk("/v1/f/other/")
	p, err := a.Presign(t.Context(), Request{Method: "GET", Key: "files/a.txt", At: fileT0, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key, exp, sig := fileURLParts(t, p.URL)
	if err := a.Verify(key, exp, sig, fileT0); err != nil {
		t.Fatalf("own source: %v", err)
	}
	if err := b.Verify(key, exp, sig, fileT0); err != ErrURLSignature {
		t.Errorf("other source with the same key: got %v, want ErrURLSignature", err)
	}
}

// TestFileSymlinks: a file source serves exactly the file a key names. By
// default it follows no link; with follow_symlinks only links whose target
// stays under the source prefix. Every refusal is fs.ErrNotExist (404),
// links out of the root included (they were 502 storage_error). Each
// "want" differing from what os.Root alone gives is a case that failed
// before Open (os.Root follows links that stay in the root, and answers
// "path escapes from parent" for the others).
func TestFileSymlinks(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"root/images/cats/1.jpg":    "cat",
		"root/images/dogs/1.jpg":    "dog",
		"root/images/deep/er/x.jpg": "deep",
		"root/private/secret.txt":   "private",
		"outside/secret.txt":        "outside",
	} {
		must(os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		must(os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	for link, target := range map[string]string{
		"images/cats/same":        "1.jpg",
		"images/cats/to-dog":      "../dogs/1.jpg",
		"images/cats/private":     "../../private/secret.txt",
		"images/cats/outside":     "../../../outside/secret.txt",
		"images/cats/abs-outside": filepath.Join(dir, "outside", "secret.txt"),
		"images/cats/abs-inside":  filepath.Join(root, "images", "cats", "1.jpg"),
		"images/cats/dangling":    "nowhere.jpg",
		"images/cats/dangling-up": "../../../nowhere.jpg",
		"images/cats/loop":        "loop",
		"images/to-dogs":          "dogs",
		"images/to-private":       "../private",
		"images/deep/up":          "../../private",
		"images/deep/er/to-cats":  "../../cats",
	} {
		must(os.Symlink(target, filepath.Join(root, filepath.FromSlash(link))))
	}
	for _, tc := range []struct {
		name, key    string
		want, follow string // the body served; "" = fs.ErrNotExist
	}{
		{"plain file", "images/cats/1.jpg", "cat", "cat"},
		{"link inside the prefix", "images/cats/same", "", "cat"},
		{"link to another grant's prefix", "images/cats/to-dog", "", "dog"},
		{"link out of the prefix, inside the root", "images/cats/private", "", ""},
		{"link out of the root", "images/cats/outside", "", ""},
		{"absolute link out of the root", "images/cats/abs-outside", "", ""},
		{"absolute link inside the prefix", "images/cats/abs-inside", "", "cat"},
		{"dangling link", "images/cats/dangling", "", ""},
		{"dangling link out of the root", "images/cats/dangling-up", "", ""},
		{"link loop", "images/cats/loop", "", ""},
		{"directory link inside the prefix", "images/to-dogs/1.jpg", "", "dog"},
		{"directory link out of the prefix", "images/to-private/secret.txt", "", ""},
		{"link in a middle component, out of the prefix", "images/deep/up/secret.txt", "", ""},
		{"link in a middle component, inside the prefix", "images/deep/er/to-cats/1.jpg", "", "cat"},
		{"outside the root by name", "../outside/secret.txt", "", ""},
	} {
		for _, follow := range []bool{false, true} {
			want := tc.want
			if follow {
				want = tc.follow
			}
			t.Run(fmt.Sprintf("%s/follow=%v", tc.name, follow), func(t *testing.T) {
				f, err := NewFile(Config{Provider: ProviderFile, Root: root, FollowSymlinks: follow}, FileOptions{BasePath: "/v1/f/l/", Prefix: "images/"})
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				r, err := f.Open(tc.key)
				if want == "" {
					if err == nil {
						b, _ := io.ReadAll(r)
						r.Close()
						t.Fatalf("Open(%q) served %q, want fs.ErrNotExist", tc.key, b)
					}
					if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) {
						t.Fatalf("Open(%q) = %v, want fs.ErrNotExist (404, not 502)", tc.key, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Open(%q) = %v, want %q", tc.key, err, want)
				}
				defer r.Close()
				if b, err := io.ReadAll(r); err != nil || string(b) != want {
					t.Errorf("Open(%q) read %q, %v; want %q", tc.key, b, err, want)
				}
			})
		}
	}

	t.Run("walk without openat2 agrees", func(t *testing.T) {
		f, err := NewFile(Config{Provider: ProviderFile, Root: root}, FileOptions{Prefix: "images/"})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, key := range []string{"images/cats/same", "images/to-dogs/1.jpg", "images/cats/outside", "images/deep/up/secret.txt"} {
			if r, err := f.openNoFollowWalk(key); !errors.Is(err, fs.ErrNotExist) {
				if r != nil {
					r.Close()
				}
				t.Errorf("openNoFollowWalk(%q) = %v, want fs.ErrNotExist", key, err)
			}
		}
		r, err := f.openNoFollowWalk("images/cats/1.jpg")
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	})
}

// TestFileSpecialFiles: only regular files (and directories) open. A
// FIFO planted under the root would block the open until a writer came,
// holding the request's stream slot; a closed File fails, never opening
// through a reused descriptor.
func TestFileSpecialFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(root, "fifo")); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	f, err := NewFile(Config{Provider: ProviderFile, Root: root}, FileOptions{BasePath: "/v1/f/local/"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		r, err := f.Open("fifo")
		if err == nil {
			r.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(fifo) = %v, want fs.ErrNotExist", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Open(fifo) blocked")
	}
	for _, walk := range []bool{false, true} {
		open := f.Open
		if walk {
			open = f.openNoFollowWalk
		}
		if _, err := open("fifo"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("walk %v: Open(fifo) = %v, want fs.ErrNotExist", walk, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if r, err := f.Open("a.txt"); err == nil {
		r.Close()
		t.Error("Open after Close succeeded")
	}
}
