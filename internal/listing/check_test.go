package listing

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edge/internal/assets"
	"github.com/edgeproxy/edge/internal/assets/assetstest"
	"github.com/edgeproxy/edge/internal/signer"
	"github.com/edgeproxy/edge/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	assetstest.Cleanup()
	os.Exit(code)
}

// recorder wraps a CheckFunc and keeps what each check read.
type recorder struct {
	mu    sync.Mutex
	check CheckFunc
	bytes map[string]int64
}

func record(c CheckFunc) *recorder { return &recorder{check: c, bytes: map[string]int64{}} }

func (r *recorder) Check(ctx context.Context, o Object) CheckResult {
	res := r.check(ctx, o)
	r.mu.Lock()
	r.bytes[o.Key] = res.BytesRead
	r.mu.Unlock()
	return res
}

type checkLine struct {
	Key     string          `json:"key"`
	Size    int64           `json:"size"`
	Change  string          `json:"change"`
	Check   json.RawMessage `json:"check"`
	Summary *Summary        `json:"summary"`
}

func parseManifest(t *testing.T, b []byte) (map[string]checkLine, Summary) {
	t.Helper()
	lines := map[string]checkLine{}
	var sum *Summary
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if sum != nil {
			t.Fatalf("a line after the summary: %s", sc.Text())
		}
		var l checkLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if l.Summary != nil {
			sum = l.Summary
			continue
		}
		lines[l.Key] = l
	}
	if sum == nil {
		t.Fatalf("no summary line:\n%s", b)
	}
	return lines, *sum
}

func newChecker(t *testing.T) *assets.Checker {
	t.Helper()
	c, err := assets.New(assets.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runSync syncs l with the check hook of sg into a manifest.
func syncChecked(t *testing.T, l Lister, check CheckFunc, since []byte, recheck bool) []byte {
	t.Helper()
	opts := Options{Check: check, Recheck: recheck}
	if since != nil {
		opts.Since = bytes.NewReader(since)
	}
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := Sync(ctx, l, opts, &buf); err != nil {
		t.Fatalf("Sync: %v\n%s", err, buf.Bytes())
	}
	return buf.Bytes()
}

// fileStoredType is what the edge serves a file with (http.ServeContent):
// its extension's type, else the sniffed one.
func fileStoredType(dir string) func(string) string {
	return func(name string) string {
		if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
			return ct
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return http.DetectContentType(b[:min(len(b), 512)])
	}
}

// compareCheck requires the check of name to hold what the tools say.
func compareCheck(t *testing.T, name string, raw json.RawMessage, w assetstest.Want, stored string) {
	t.Helper()
	var ck assets.Check
	if err := json.Unmarshal(raw, &ck); err != nil {
		t.Fatalf("%s: check %s: %v", name, raw, err)
	}
	// The line's check is PRODUCT.md's shape: these members and no other.
	var members map[string]json.RawMessage
	json.Unmarshal(raw, &members)
	for k := range members {
		switch k {
		case "type", "content_type", "width", "height", "orientation", "video", "problems":
		default:
			t.Errorf("%s: check member %q is not in PRODUCT.md", name, k)
		}
	}
	if ck.ContentType != stored {
		t.Errorf("%s: content_type %q, stored %q", name, ck.ContentType, stored)
	}
	if w.Type != "" {
		got, _, _ := mime.ParseMediaType(ck.Type)
		if got != w.Type {
			t.Errorf("%s: type %q, exiftool %q", name, ck.Type, w.Type)
		}
	}
	if w.Width != 0 && (ck.Width != w.Width || ck.Height != w.Height) {
		t.Errorf("%s: %dx%d, oracle %dx%d", name, ck.Width, ck.Height, w.Width, w.Height)
	}
	if ck.Orientation != w.Orientation && w.Video == nil {
		t.Errorf("%s: orientation %d, exiftool %d", name, ck.Orientation, w.Orientation)
	}
	if w.Video != nil {
		v := ck.Video
		switch {
		case v == nil:
			t.Errorf("%s: no video facts (problems %+v)", name, ck.Problems)
		case v.Brand != w.Video.Brand || v.Codec != w.Video.Codec || v.PixFmt != w.Video.PixFmt ||
			v.Faststart != w.Video.Faststart || v.Fragmented != w.Video.Fragmented || math.Abs(v.DurationS-w.Video.DurationS) > 0.1:
			t.Errorf("%s: video %+v, ffprobe %+v", name, *v, *w.Video)
		}
	}
	got := map[string]bool{}
	for _, p := range ck.Problems {
		got[p.Code] = true
		if p.Severity != assets.SeverityError && p.Severity != assets.SeverityWarn || len(p.Message) < 40 {
			t.Errorf("%s: problem %+v", name, p)
		}
	}
	for c := range w.Codes {
		if !got[c] {
			t.Errorf("%s: missing problem %s; got %+v", name, c, ck.Problems)
		}
	}
	for c := range got {
		if !w.Codes[c] {
			t.Errorf("%s: unexpected problem %s; got %+v", name, c, ck.Problems)
		}
	}
}

// checkManifest compares every line's check with the oracle and the
// bytes read with the objects' sizes, and returns the manifest's lines.
func checkManifest(t *testing.T, b []byte, rec *recorder, dir string, names []string, wants map[string]assetstest.Want, stored func(string) string) map[string]checkLine {
	t.Helper()
	lines, sum := parseManifest(t, b)
	if len(lines) != len(names) || sum.Objects != int64(len(names)) {
		t.Fatalf("%d lines, summary %d objects; want %d", len(lines), sum.Objects, len(names))
	}
	var total, problems int64
	type stat struct{ n, bytes int64 }
	kinds := map[string]*stat{}
	for _, name := range names {
		l, ok := lines[name]
		if !ok || l.Check == nil {
			t.Errorf("%s: no line or no check: %+v", name, l)
			continue
		}
		compareCheck(t, name, l.Check, wants[name], stored(name))
		var ck assets.Check
		json.Unmarshal(l.Check, &ck)
		problems += int64(len(ck.Problems))
		n := rec.bytes[name]
		total += n
		if l.Size > 2*assets.Defaults().HeadSize && n >= l.Size/2 {
			t.Errorf("%s: read %d bytes of %d", name, n, l.Size)
		}
		kind := "other"
		switch {
		case strings.HasPrefix(wants[name].Type, "image/"):
			kind = "image"
		case ck.Video != nil && ck.Video.Faststart && !ck.Video.Fragmented:
			kind = "faststart mp4"
		}
		if kinds[kind] == nil {
			kinds[kind] = &stat{}
		}
		kinds[kind].n++
		kinds[kind].bytes += n
	}
	if sum.BytesRead != total || sum.Problems != problems {
		t.Errorf("summary bytes_read %d problems %d; the checks read %d and found %d", sum.BytesRead, sum.Problems, total, problems)
	}
	for k, s := range kinds {
		t.Logf("%-14s %3d objects, %7d bytes read on average", k, s.n, s.bytes/s.n)
		if k != "other" && s.bytes/s.n > 256<<10 {
			t.Errorf("%s: %d bytes read on average, target under 256 KiB", k, s.bytes/s.n)
		}
	}
	return lines
}

// TestCheckAgainstOracles uploads the fixtures to versitygw (with their
// Content-Types) and copies them into a file source, syncs both with
// checks and requires every check to say what ffprobe and exiftool say;
// then changes one fixture and requires a -since run to check it alone.
func TestCheckAgainstOracles(t *testing.T) {
	dir := assetstest.Fixtures(t)
	names := assetstest.Names(t, dir)
	checker := newChecker(t)

	t.Run("versitygw", func(t *testing.T) {
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
		put("assets0/outside.jpg", "base.jpg")
		sg, err := signer.New(context.Background(), s3Config(&v.S3Server, "media"), signer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := New(sg, "assets/", RemoteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check, err := NewCheck(sg, "assets/", checker, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		wants := assetstest.Oracle(t, dir, names, nil)
		rec := record(check)
		first := syncChecked(t, l, rec.Check, nil, false)
		old := checkManifest(t, first, rec, dir, names, wants, assetstest.StoredType)
		if bytes.Contains(first, []byte(v.SecretKey)) || bytes.Contains(first, []byte("X-Amz-")) {
			t.Error("the manifest holds the secret key or a signature")
		}

		// One fixture changes: orient_1.jpg becomes orient_6.jpg's bytes.
		put("assets/orient_1.jpg", "orient_6.jpg")
		rec2 := record(check)
		second := syncChecked(t, l, rec2.Check, first, false)
		if len(rec2.bytes) != 1 || rec2.bytes["orient_1.jpg"] == 0 {
			t.Errorf("the -since run checked %d objects, want only orient_1.jpg: %v", len(rec2.bytes), rec2.bytes)
		}
		lines, sum := parseManifest(t, second)
		if sum.Changed != 1 || sum.Unchanged != int64(len(names)-1) {
			t.Errorf("summary %+v", sum)
		}
		for name, l := range lines {
			switch {
			case name == "orient_1.jpg":
				if l.Change != Changed {
					t.Errorf("%s: change %q", name, l.Change)
				}
				compareCheck(t, name, l.Check, wants["orient_6.jpg"], "image/jpeg")
			case l.Change != Unchanged || !bytes.Equal(l.Check, old[name].Check):
				t.Errorf("%s: change %q, check %s; want unchanged with the old check %s", name, l.Change, l.Check, old[name].Check)
			}
		}
		if _, s1 := parseManifest(t, first); sum.Problems != s1.Problems+1 { // exif_orientation
			t.Errorf("problems %d, first run %d: want one more", sum.Problems, s1.Problems)
		}

		// -recheck checks every object again.
		rec3 := record(check)
		syncChecked(t, l, rec3.Check, second, true)
		if len(rec3.bytes) != len(names) {
			t.Errorf("-recheck checked %d objects, want %d", len(rec3.bytes), len(names))
		}
	})

	t.Run("file", func(t *testing.T) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "assets"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, _ := os.ReadFile(filepath.Join(dir, n))
			if err := os.WriteFile(filepath.Join(root, "assets", n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		sg, err := signer.NewFile(signer.Config{Provider: signer.ProviderFile, Root: root}, signer.FileOptions{BasePath: "/v1/f/local/", Prefix: "assets/"})
		if err != nil {
			t.Fatal(err)
		}
		defer sg.Close()
		l, err := New(sg, "assets/", RemoteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check, err := NewCheck(sg, "assets/", checker, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		stored := fileStoredType(dir)
		wants := assetstest.Oracle(t, dir, names, stored)
		rec := record(check)
		first := syncChecked(t, l, rec.Check, nil, false)
		checkManifest(t, first, rec, dir, names, wants, stored)

		b, _ := os.ReadFile(filepath.Join(dir, "orient_6.jpg"))
		later := time.Now().Add(time.Second)
		os.WriteFile(filepath.Join(root, "assets", "orient_1.jpg"), b, 0o644)
		os.Chtimes(filepath.Join(root, "assets", "orient_1.jpg"), later, later)
		rec2 := record(check)
		second := syncChecked(t, l, rec2.Check, first, false)
		if len(rec2.bytes) != 1 || rec2.bytes["orient_1.jpg"] == 0 {
			t.Errorf("the -since run checked %d objects, want only orient_1.jpg: %v", len(rec2.bytes), rec2.bytes)
		}
		lines, _ := parseManifest(t, second)
		compareCheck(t, "orient_1.jpg", lines["orient_1.jpg"].Check, wants["orient_6.jpg"], "image/jpeg")
	})
}

// TestCheckReadFailures: an object the store cannot serve gets an
// "unreadable" problem naming the status and the store's code, never the
// URL, the signature or a secret; a file that became a symlink is not
// followed.
func TestCheckReadFailures(t *testing.T) {
	checker := newChecker(t)
	v := testenv.StartVersity(t)
	v.CreateBucket(t, "media")
	v.Put(t, "media", "assets/there.txt", []byte("hello"))
	cfg := s3Config(&v.S3Server, "media")
	sg, err := signer.New(context.Background(), cfg, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Credentials.SecretAccessKey = "0123456789abcdef0123456789abcdefWRONGKEY"
	badSg, err := signer.New(context.Background(), bad, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs := ListerFunc(func(ctx context.Context, yield func(Object) error) error {
		for _, k := range []string{"gone.jpg", "there.txt"} {
			if err := yield(Object{Key: k, StorageKey: "assets/" + k, Size: 5, ETag: `"e"`}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name   string
		sg     signer.Signer
		want   map[string]string // key → text of its unreadable message
		secret string
	}{
		{"missing object", sg, map[string]string{"gone.jpg": "HTTP 404, NoSuchKey"}, v.SecretKey},
		{"bad signature", badSg, map[string]string{"gone.jpg": "HTTP 403, SignatureDoesNotMatch", "there.txt": "HTTP 403, SignatureDoesNotMatch"}, bad.Credentials.SecretAccessKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check, err := NewCheck(tc.sg, "assets/", checker, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			out := syncChecked(t, objs, check, nil, false)
			lines, sum := parseManifest(t, out)
			for key, want := range tc.want {
				var ck assets.Check
				json.Unmarshal(lines[key].Check, &ck)
				if len(ck.Problems) != 1 || ck.Problems[0].Code != assets.CodeUnreadable || !strings.Contains(ck.Problems[0].Message, want) {
					t.Errorf("%s: problems %+v, want unreadable with %q", key, ck.Problems, want)
				}
			}
			if sum.Problems != int64(len(tc.want)) {
				t.Errorf("summary problems %d, want %d", sum.Problems, len(tc.want))
			}
			for _, s := range []string{tc.secret, "X-Amz-Signature", "X-Amz-Credential", v.Endpoint, "127.0.0.1", "media/assets"} {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("the manifest holds %q:\n%s", s, out)
				}
			}
		})
	}

	t.Run("file symlink", func(t *testing.T) {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "assets"), 0o755)
		os.WriteFile(filepath.Join(root, "secret.txt"), []byte("outside the prefix"), 0o644)
		os.Symlink("../secret.txt", filepath.Join(root, "assets", "link.txt"))
		fsg, err := signer.NewFile(signer.Config{Provider: signer.ProviderFile, Root: root}, signer.FileOptions{Prefix: "assets/"})
		if err != nil {
			t.Fatal(err)
		}
		defer fsg.Close()
		check, _ := NewCheck(fsg, "assets/", checker, nil, nil)
		res := check(context.Background(), Object{Key: "link.txt", StorageKey: "assets/link.txt", Size: 18})
		ck := res.Check.(*assets.Check)
		if res.BytesRead != 0 || len(ck.Problems) != 1 || ck.Problems[0].Code != assets.CodeUnreadable || strings.Contains(ck.Problems[0].Message, root) {
			t.Errorf("read %d bytes, problems %+v", res.BytesRead, ck.Problems)
		}
		res = check(context.Background(), Object{Key: "../secret.txt", Size: 18})
		if ck := res.Check.(*assets.Check); res.BytesRead != 0 || len(ck.Problems) != 1 {
			t.Errorf("a key outside the prefix: read %d bytes, problems %+v", res.BytesRead, ck.Problems)
		}
	})
}

// countingSigner counts presigns.
type countingSigner struct {
	signer.Signer
	mu sync.Mutex
	n  map[string]int
}

func (c *countingSigner) Presign(ctx context.Context, r signer.Request) (signer.Presigned, error) {
	c.mu.Lock()
	c.n[r.Key]++
	c.mu.Unlock()
	if !r.ForFetch {
		return signer.Presigned{}, errors.New("presigned without ForFetch: SSE-C headers would be missing")
	}
	return c.Signer.Presign(ctx, r)
}

// TestCheckRemoteRequests: one presign per object, reused for its range
// reads, each sending the SSE-C headers ForFetch gives; a server that
// ignores Range (200) is read for the first bytes only.
func TestCheckRemoteRequests(t *testing.T) {
	dir := assetstest.Fixtures(t)
	var mu sync.Mutex
	var ranges []string
	ignoreRange := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key") == "" || r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != "AES256" {
			http.Error(w, "<Error><Code>InvalidRequest</Code></Error>", http.StatusBadRequest)
			return
		}
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		mu.Unlock()
		if ignoreRange {
			r.Header.Del("Range")
		}
		f, err := os.Open(filepath.Join(dir, path.Base(r.URL.Path)))
		if err != nil {
			http.Error(w, "<Error><Code>NoSuchKey</Code></Error>", http.StatusNotFound)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", assetstest.StoredType(path.Base(r.URL.Path)))
		http.ServeContent(w, r, "", time.Time{}, f)
	}))
	defer srv.Close()
	cfg := signer.Config{Provider: signer.ProviderS3, Bucket: "b", Endpoint: srv.URL, Region: "us-east-1", Addressing: "path",
		SSECKey:     "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		Credentials: signer.Credentials{Type: "static", AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}}
	sg, err := signer.New(context.Background(), cfg, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingSigner{Signer: sg, n: map[string]int{}}
	check, err := NewCheck(cs, "assets/", newChecker(t), srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	obj := func(name string) Object {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return Object{Key: name, StorageKey: "assets/" + name, Size: st.Size()}
	}
	// moov at end: the head, then the moov near the end: several ranges.
	res := check(context.Background(), obj("h264_mp42_moov_at_end.mp4"))
	ck := res.Check.(*assets.Check)
	if ck.Video == nil || ck.Video.Faststart || len(ranges) < 2 || cs.n["assets/h264_mp42_moov_at_end.mp4"] != 1 {
		t.Fatalf("check %+v after %d ranges %v and %d presigns", ck, len(ranges), ranges, cs.n["assets/h264_mp42_moov_at_end.mp4"])
	}
	if ck.ContentType != "video/mp4" {
		t.Errorf("content_type %q, want the answer's video/mp4", ck.ContentType)
	}
	for _, r := range ranges {
		if !strings.HasPrefix(r, "bytes=") || strings.HasSuffix(r, "-") {
			t.Errorf("Range %q: want bytes=off-end", r)
		}
	}

	ignoreRange = true
	o := obj("photo_1920.jpg")
	res = check(context.Background(), o)
	if ck := res.Check.(*assets.Check); ck.Width != 1920 || res.BytesRead >= o.Size {
		t.Errorf("a store ignoring Range: %dx%d, %d bytes of %d read", ck.Width, ck.Height, res.BytesRead, o.Size)
	}
	res = check(context.Background(), obj("h264_mp42_moov_at_end.mp4"))
	if ck := res.Check.(*assets.Check); len(ck.Problems) != 1 || ck.Problems[0].Code != assets.CodeUnreadable || !strings.Contains(ck.Problems[0].Message, "ignored the check's Range") {
		t.Errorf("moov at end on a store ignoring Range: %+v", ck.Problems)
	}
}

// FuzzContentRangeStart: the store's Content-Range never panics the
// parser, and a start it accepts is what the header says.
func FuzzContentRangeStart(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 16384-32767/544070", "bytes */100", "bytes -1-2/3", "", "bytes 9223372036854775807-1/2", "items 0-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, ok := contentRangeStart(v)
		if ok && !strings.HasPrefix(v, "bytes "+strconv.FormatInt(n, 10)+"-") && !strings.HasPrefix(v, "bytes +") && !strings.HasPrefix(v, "bytes 0") {
			t.Errorf("%q: start %d", v, n)
		}
	})
}

// BenchmarkCheckFile is one object's check through the hook on a file
// source (open, the reads, the parse).
func BenchmarkCheckFile(b *testing.B) {
	dir := assetstest.Fixtures(b)
	sg, err := signer.NewFile(signer.Config{Provider: signer.ProviderFile, Root: dir}, signer.FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer sg.Close()
	c, _ := assets.New(assets.Defaults())
	check, _ := NewCheck(sg, "", c, nil, nil)
	for _, name := range []string{"photo_1920.jpg", "h264_mp42_faststart.mp4", "h264_mp42_moov_at_end.mp4"} {
		st, _ := os.Stat(filepath.Join(dir, name))
		o := Object{Key: name, StorageKey: name, Size: st.Size()}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := check(context.Background(), o); r.Check == nil {
					b.Fatal("no check")
				}
			}
		})
	}
}

// failingSigner fails every presign with a cause holding a secret.
type failingSigner struct{ err error }

func (f failingSigner) Presign(context.Context, signer.Request) (signer.Presigned, error) {
	return signer.Presigned{}, f.err
}

// TestCheckPresignFails: a signing failure is an unreadable problem whose
// message holds nothing of the signer's cause.
func TestCheckPresignFails(t *testing.T) {
	const secret = "sts-said-SECRET-0123456789"
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"credentials", fmt.Errorf("%w: assume role: %s", signer.ErrCredentials, secret), "credentials were unavailable"},
		{"other", errors.New("presign: " + secret), "could not be signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check, err := NewCheck(failingSigner{tc.err}, "", newChecker(t), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			res := check(context.Background(), Object{Key: "a.jpg", StorageKey: "a.jpg", Size: 100})
			b, _ := json.Marshal(res.Check)
			if res.Problems != 1 || !strings.Contains(string(b), tc.want) || strings.Contains(string(b), secret) {
				t.Errorf("check %s", b)
			}
		})
	}
}
