package audit

import (
	"encoding/json"
	"github.com/edgeproxy/edge/internal/jsonstr"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"
)

// decoded is a line as a JSON decoder reads it back.
type decoded struct {
	Time      string `json:"time"`
	RequestID string `json:"request_id"`
	Subject   string `json:"subject"`
	Issuer    string `json:"issuer"`
	TokenID   string `json:"token_id"`
	Source    string `json:"source"`
	Key       string `json:"key"`
	Mode      string `json:"mode"`
	Method    string `json:"method"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	ClientIP  string `json:"client_ip"`
}

var fixed = time.Date(2026, 12, 1, 20, 30, 1, 234567890, time.UTC)

func sample() Record {
	return Record{
		Time: fixed, RequestID: "req-1", Subject: "annotator-17", Issuer: "https://app.example.com",
		TokenID: "jti-9", Source: "customer-a", Key: "datasets/42/frames/000123.jpg", Mode: "redirect",
		Method: "GET", Status: 302, Bytes: 0, ClientIP: netip.MustParseAddr("198.51.100.4"),
	}
}

func TestAppendJSONExact(t *testing.T) {
	r := sample()
	got := string(AppendJSON(nil, &r))
	want := `{"time":"2026-12-01T20:30:01.234Z","request_id":"req-1","subject":"annotator-17","issuer":"https://app.example.com","token_id":"jti-9","source":"customer-a","key":"datasets/42/frames/000123.jpg","mode":"redirect","method":"GET","status":302,"bytes":0,"client_ip":"198.51.100.4"}` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var empty Record
	got = string(AppendJSON(nil, &empty))
	if !strings.Contains(got, `"client_ip":""`) || !json.Valid([]byte(got)) {
		t.Errorf("empty record: %s", got)
	}
}

// wantString is what a JSON decoder must read back for s: s itself when
// it is valid UTF-8, else each invalid byte replaced by U+FFFD (as
// encoding/json does).
func wantString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

var trickyKeys = []string{
	`plain/key.jpg`,
	`quote"in"key`,
	`back\slash\`,
	"new\nline\r\ttab",
	"nul\x00and\x01\x1f\x7f",
	"ünïcödé/猫/😀.png",
	"line\u2028sep\u2029para",
	"bad\xffutf8\xc3",
	"\xed\xa0\x80 surrogate half",
	`</script><!--&`,
	`{"key":"forged","status":200}`,
	strings.Repeat("long/", 100) + "end",
	"",
}

func TestAppendJSONEscapes(t *testing.T) {
	for _, key := range trickyKeys {
		t.Run(strings.ToValidUTF8(key[:min(len(key), 20)], "?"), func(t *testing.T) {
			// Through the queue's entry too, inline and cloned.
			r := sample()
			r.Key, r.Subject = key, key
			var e entry
			e.set(&r)
			line := e.appendJSON(nil, time.Time{})
			if !json.Valid(line) {
				t.Fatalf("invalid JSON: %q", line)
			}
			if line[len(line)-1] != '\n' || strings.Count(string(line), "\n") != 1 {
				t.Fatalf("not one line: %q", line)
			}
			var d decoded
			if err := json.Unmarshal(line, &d); err != nil {
				t.Fatal(err)
			}
			if d.Key != wantString(key) || d.Subject != wantString(key) {
				t.Errorf("key read back %q, want %q", d.Key, wantString(key))
			}
			// Agrees with encoding/json byte for byte on the string
			// (minus its HTML escapes).
			std, _ := json.Marshal(key)
			stdS := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(std))
			if got := string(jsonstr.Append(nil, key)); got != stdS {
				t.Errorf("jsonstr.Append = %s, encoding/json = %s", got, stdS)
			}
		})
	}
}

func TestEntryCopiesRequestLineStrings(t *testing.T) {
	line := "GET /v1/s/customer-a/cats/1.jpg?token=SECRET HTTP/1.1"
	r := sample()
	r.Method = line[:3]
	r.Source = line[10:20]
	r.Key = line[21:31]
	var e entry
	e.set(&r)
	if e.rec.Method != "GET" || unsafe.StringData(e.rec.Method) == unsafe.StringData(line) {
		t.Error("method not replaced by a constant")
	}
	if e.rec.Source != "" || e.rec.Key != "" || e.srcN == 0 || e.keyN == 0 {
		t.Error("short source and key not inline")
	}
	var d decoded
	if err := json.Unmarshal(e.appendJSON(nil, time.Time{}), &d); err != nil || d.Source != "customer-a" || d.Key != "cats/1.jpg" {
		t.Errorf("got %+v, %v", d, err)
	}
	// Too long for the arena: cloned.
	long := "GET /v1/s/customer-a/" + strings.Repeat("k", 300) + "?token=SECRET"
	r.Key = long[21 : 21+300]
	r.Method = "PROPFIND-" + long[:0]
	e.set(&r)
	if e.keyN != 0 || e.rec.Key != r.Key || unsafe.StringData(e.rec.Key) == unsafe.StringData(r.Key) {
		t.Error("long key not cloned")
	}
	if err := json.Unmarshal(e.appendJSON(nil, time.Time{}), &d); err != nil || d.Key != r.Key || d.Method != "PROPFIND-" {
		t.Errorf("got %+v, %v", d, err)
	}
}

func TestZeroTimeStamped(t *testing.T) {
	r := sample()
	r.Time = time.Time{}
	var e entry
	e.set(&r)
	var d decoded
	_ = json.Unmarshal(e.appendJSON(nil, fixed), &d)
	if d.Time != "2026-12-01T20:30:01.234Z" {
		t.Errorf("time %q", d.Time)
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	r := sample()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(1000, func() { buf = AppendJSON(buf[:0], &r) }); n != 0 {
		t.Errorf("AppendJSON: %v allocs, want 0", n)
	}
}

// FuzzAppendJSON: any strings give one valid JSON line that reads back as
// the strings (invalid UTF-8 as U+FFFD).
func FuzzAppendJSON(f *testing.F) {
	for _, k := range trickyKeys {
		f.Add(k, "sub", "GET")
	}
	f.Fuzz(func(t *testing.T, key, subject, method string) {
		r := Record{Key: key, Subject: subject, Method: method, Source: key}
		var e entry
		e.set(&r)
		line := e.appendJSON(nil, fixed)
		if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("not one line: %q", line)
		}
		var d decoded
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		if d.Key != wantString(key) || d.Source != wantString(key) || d.Subject != wantString(subject) || d.Method != wantString(method) {
			t.Fatalf("read back %+v from %q", d, line)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	r := sample()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &r)
	}
	b.SetBytes(int64(len(buf)))
}
