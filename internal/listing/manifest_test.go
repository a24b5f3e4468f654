package listing

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendLine(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 500, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		ln   line
		want string
	}{
		{"plain", line{obj: Object{Key: "cats/1.jpg", Size: 20000, ETag: `"9b2c"`, LastModified: at}},
			`{"key":"cats/1.jpg","size":20000,"etag":"\"9b2c\"","last_modified":"2026-11-30T09:00:00Z"}`},
		{"change", line{obj: Object{Key: "a", Size: 1, ETag: `"e"`, LastModified: at}, change: Unchanged},
			`{"key":"a","size":1,"etag":"\"e\"","last_modified":"2026-11-30T09:00:00Z","change":"unchanged"}`},
		{"removed", line{obj: Object{Key: "gone", Size: 9}, change: Removed}, `{"key":"gone","change":"removed"}`},
		{"check", line{obj: Object{Key: "a", ETag: `"e"`}, check: json.RawMessage(`{"type":"image/png"}`)},
			`{"key":"a","size":0,"etag":"\"e\"","check":{"type":"image/png"}}`},
		{"awkward key", line{obj: Object{Key: "a \"b\"\\\n\t\x01<&>\u2028é😀", ETag: ""}},
			`{"key":"a \"b\"\\\n\t\u0001<&>\u2028é😀","size":0,"etag":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendLine(nil, &tt.ln))
			if got != tt.want+"\n" {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

func TestAppendSummary(t *testing.T) {
	s := Summary{Objects: 5, Added: 1, Changed: 2, Unchanged: 1, Removed: 3, Problems: 4, Seconds: 1.23456, BytesRead: 99}
	if got, want := string(appendSummary(nil, &s, false)), `{"summary":{"objects":5,"added":1,"changed":2,"unchanged":1,"removed":3,"problems":4,"seconds":1.235}}`+"\n"; got != want {
		t.Errorf("got %s want %s", got, want)
	}
	if got := string(appendSummary(nil, &s, true)); !strings.Contains(got, `"seconds":1.235,"bytes_read":99}}`) {
		t.Errorf("got %s", got)
	}
}

// readAll reads every entry of a manifest.
func readAll(s string) ([]OldEntry, error) {
	m := NewManifestReader(strings.NewReader(s))
	var out []OldEntry
	for {
		e, err := m.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

const sum = `{"summary":{"objects":0,"added":0,"changed":0,"unchanged":0,"removed":0,"problems":0,"seconds":0}}`

func TestManifestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		keys    string // comma-joined keys read
		wantErr string // substring; "" = no error
	}{
		{"empty manifest", sum + "\n", "", ""},
		{"no trailing newline", `{"key":"a","size":1,"etag":"x"}` + "\n" + sum, "a", ""},
		{"objects", `{"key":"a","size":1,"etag":"x","last_modified":"2026-01-01T00:00:00Z"}` + "\n" + `{"key":"b","size":2,"etag":"y","change":"added","check":{"problems":[]}}` + "\n" + sum + "\n", "a,b", ""},
		{"removed skipped", `{"key":"a","size":1,"etag":"x"}` + "\n" + `{"key":"b","change":"removed"}` + "\n" + `{"key":"c","size":1,"etag":"x"}` + "\n" + sum + "\n", "a,c", ""},
		{"crlf", `{"key":"a","size":1,"etag":"x"}` + "\r\n" + sum + "\r\n", "a", ""},
		{"unknown fields ignored", `{"key":"a","size":1,"etag":"x","future":[1,2]}` + "\n" + sum, "a", ""},
		{"no summary", `{"key":"a","size":1,"etag":"x"}` + "\n", "a", "line 1: ends without a summary line"},
		{"nothing", "", "", "ends without a summary line"},
		{"line after summary", sum + "\n" + `{"key":"a","size":1}` + "\n", "", "line 2: a line after the summary"},
		{"out of order", `{"key":"b","size":1,"etag":"x"}` + "\n" + `{"key":"a","size":1,"etag":"x"}` + "\n" + sum, "b", `line 2: keys out of order: "a" after "b"`},
		{"byte order not walk order", `{"key":"a/b","size":1,"etag":"x"}` + "\n" + `{"key":"a-c","size":1,"etag":"x"}` + "\n" + sum, "a/b", `line 2: keys out of order`},
		{"duplicate", `{"key":"a","size":1,"etag":"x"}` + "\n" + `{"key":"a","size":1,"etag":"x"}` + "\n" + sum, "a", `line 2: key "a" listed twice`},
		{"removed out of order", `{"key":"b","size":1,"etag":"x"}` + "\n" + `{"key":"a","change":"removed"}` + "\n" + sum, "b", `line 2: keys out of order`},
		{"not json", `{"key":"a",` + "\n" + sum, "", "line 1: not JSON"},
		{"empty line", `{"key":"a","size":1,"etag":"x"}` + "\n\n" + sum, "a", "line 2: empty line"},
		{"no key", `{"size":1,"etag":"x"}` + "\n" + sum, "", "line 1: no key"},
		{"empty key", `{"key":"","size":1}` + "\n" + sum, "", "line 1: empty key"},
		{"key not a string", `{"key":7,"size":1}` + "\n" + sum, "", "line 1: not a manifest line"},
		{"no size", `{"key":"a","etag":"x"}` + "\n" + sum, "", "line 1: no size"},
		{"negative size", `{"key":"a","size":-1}` + "\n" + sum, "", "line 1: negative size"},
		{"fractional size", `{"key":"a","size":1.5}` + "\n" + sum, "", "line 1: not a manifest line"},
		{"unknown change", `{"key":"a","size":1,"change":"moved"}` + "\n" + sum, "", `line 1: unknown change "moved"`},
		{"array", `[1]` + "\n" + sum, "", "line 1: not a manifest line"},
		{"summary not object", `{"summary":3}` + "\n", "", "line 1: summary is not an object"},
		{"summary with key", `{"key":"a","summary":{}}` + "\n", "", "line 1: a summary line with a key"},
		{"huge line", `{"key":"` + strings.Repeat("a", maxLineBytes) + `","size":1}` + "\n" + sum, "", "line 1: longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(tt.in)
			var keys []string
			for _, e := range got {
				keys = append(keys, e.Key)
			}
			if k := strings.Join(keys, ","); k != tt.keys {
				t.Errorf("keys %q, want %q", k, tt.keys)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			var me *ManifestError
			if err != nil && !errors.As(err, &me) {
				t.Errorf("error %T is not a *ManifestError", err)
			}
		})
	}
}

func TestManifestReaderKeepsCheckAndETag(t *testing.T) {
	got, err := readAll(`{"key":"a","size":3,"etag":"\"x\"","check":{"type":"image/png","problems":[{"code":"c"}]}}` + "\n" + `{"key":"b","size":1,"etag":"y","check":null}` + "\n" + sum)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ETag != `"x"` || got[0].Size != 3 || string(got[0].Check) != `{"type":"image/png","problems":[{"code":"c"}]}` {
		t.Errorf("got %+v", got[0])
	}
	if got[1].Check != nil {
		t.Errorf("null check kept: %s", got[1].Check)
	}
}

// FuzzManifestReader: any input either reads as strictly increasing keys
// or fails with a *ManifestError; never a panic, never a key twice.
func FuzzManifestReader(f *testing.F) {
	f.Add(`{"key":"a","size":1,"etag":"x"}` + "\n" + sum + "\n")
	f.Add(`{"key":"b","size":1}` + "\n" + `{"key":"a","change":"removed"}` + "\n" + sum)
	f.Add(`{"key":"a","size":1,"check":{"x":[1]}}` + "\r\n" + sum)
	f.Add("\n")
	f.Add(`{"summary":{}}` + "\n" + `{"key":"a"}`)
	f.Fuzz(func(t *testing.T, in string) {
		got, err := readAll(in)
		for i := 1; i < len(got); i++ {
			if got[i].Key <= got[i-1].Key {
				t.Fatalf("keys not increasing: %q then %q", got[i-1].Key, got[i].Key)
			}
		}
		for _, e := range got {
			if e.Key == "" || e.Size < 0 {
				t.Fatalf("bad entry %+v", e)
			}
			if e.Check != nil && !json.Valid(e.Check) {
				t.Fatalf("check not JSON: %q", e.Check)
			}
		}
		var me *ManifestError
		if err != nil && !errors.As(err, &me) {
			t.Fatalf("error %T %v is not a *ManifestError", err, err)
		}
	})
}

// FuzzAppendString: for valid UTF-8 the line encoder's strings decode,
// with encoding/json, to exactly the input, and stay on one line.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a b", "\"\\", "\x00\x1f\x7f", "\u2028\u2029", "é😀", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("newline in %q", b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q does not decode: %v", b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	})
}

func BenchmarkAppendLine(b *testing.B) {
	ln := line{obj: Object{Key: "datasets/42/images/cat 0001.jpg", Size: 123456, ETag: `"9b2c0d1e2f3a4b5c6d7e8f9a0b1c2d3e"`, LastModified: time.Now()}, change: Unchanged}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendLine(buf[:0], &ln)
	}
	b.SetBytes(int64(len(buf)))
}

func TestAppendLineAllocs(t *testing.T) {
	ln := line{obj: Object{Key: "a/b c.jpg", Size: 1, ETag: `"e"`, LastModified: time.Now()}, change: Added}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = appendLine(buf[:0], &ln) }); n != 0 {
		t.Errorf("appendLine allocates %v times, want 0", n)
	}
}
