package stream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var rangeTests = []struct {
	name string
	v    string
	size int64
	want bool
}{
	{"none", "", 100, true},
	{"one", "bytes=0-9", 100, true},
	{"open", "bytes=10-", 100, true},
	{"suffix", "bytes=-10", 100, true},
	{"eight disjoint", "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14", 100, true},
	{"nine", "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16", 100, false},
	{"thousands", "bytes=" + strings.Repeat("0-0,", 2000) + "0-0", 100, false},
	{"overlap within size", "bytes=0-10,5-15", 100, true},
	{"overlap past size", "bytes=0-99,0-99", 100, false},
	{"whole twice by suffix", "bytes=-100,0-", 100, false},
	{"unsatisfiable ignored by sum", "bytes=200-300,0-99", 100, true},
	{"60 KB header", "bytes=0-" + strings.Repeat("0", 60<<10), 100, false},
	{"other unit", "items=0-5", 100, true},
	{"garbage left to the server", "bytes=x-y", 100, true},
	{"unknown size, disjoint", "bytes=0-9,20-29", -1, true},
	{"unknown size, overlapping", "bytes=0-9,5-29", -1, false},
	{"unknown size, open overlaps", "bytes=0-,100-200", -1, false},
	{"unknown size, two suffixes", "bytes=-5,-10", -1, false},
	{"unknown size, one range", "bytes=0-1000000", -1, true},
	{"case-insensitive unit", "BYTES=0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0", 100, false},
}

func TestRangeAllowed(t *testing.T) {
	for _, tt := range rangeTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RangeAllowed(tt.v, tt.size); got != tt.want {
				t.Errorf("RangeAllowed(%.60q, %d) = %v, want %v", tt.v, tt.size, got, tt.want)
			}
		})
	}
}

// FuzzRangeAllowed: never panics; an allowed header never asks for more
// than MaxRanges ranges nor is longer than the cap.
func FuzzRangeAllowed(f *testing.F) {
	for _, tt := range rangeTests {
		f.Add(tt.v, tt.size)
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if RangeAllowed(v, size) {
			if len(v) > maxRangeHeader {
				t.Fatalf("allowed a %d-byte Range", len(v))
			}
			if _, ok := cutPrefixFold(v, "bytes="); ok && strings.Count(v, ",") >= MaxRanges {
				t.Fatalf("allowed %d ranges", strings.Count(v, ",")+1)
			}
		}
	})
}

var errorCodeTests = []struct {
	name   string
	header string
	body   string
	want   string
}{
	{"s3", "", `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>X</RequestId></Error>`, "AccessDenied"},
	{"gcs", "", `<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code><Message>…</Message><StringToSign>GOOG4</StringToSign></Error>`, "SignatureDoesNotMatch"},
	{"azure header wins", "AuthorizationPermissionMismatch", `<Error><Code>Other</Code></Error>`, "AuthorizationPermissionMismatch"},
	{"azure xml", "", "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>", "BlobNotFound"},
	{"no code", "", `<Error><Message>nope</Message></Error>`, ""},
	{"empty", "", "", ""},
	{"unterminated", "", `<Error><Code>AccessDen`, ""},
	{"code is prose", "", `<Error><Code>my bucket private-bucket is secret</Code></Error>`, ""},
	{"code too long", "", "<Error><Code>" + strings.Repeat("A", 65) + "</Code></Error>", ""},
	{"header is prose", "not a code at all", "", ""},
	{"json is no code", "", `{"error":{"code":403,"message":"x"}}`, ""},
	{"spaces trimmed", "", "<Error><Code>\n  NoSuchKey\n</Code></Error>", "NoSuchKey"},
}

func TestErrorCode(t *testing.T) {
	for _, tt := range errorCodeTests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("x-ms-error-code", tt.header)
			}
			if got := ErrorCode(h, []byte(tt.body)); got != tt.want {
				t.Errorf("ErrorCode = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzErrorCode: never panics; what it returns is a short code of
// letters, digits, '.', '_' and '-', never other text of the body.
func FuzzErrorCode(f *testing.F) {
	for _, tt := range errorCodeTests {
		f.Add(tt.header, []byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		h := http.Header{}
		if header != "" {
			h["X-Ms-Error-Code"] = []string{header}
		}
		code := ErrorCode(h, body)
		if code != "" && !validCode(code) {
			t.Fatalf("ErrorCode returned %q", code)
		}
	})
}

// TestStreamStorageCodes: storage's error code reaches the log cause
// (never its body), and a 400 for the client's mistake is a 400 that no
// upstream-error counter sees, while a 400 for the edge's signature is a
// storage_error.
func TestStreamStorageCodes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/denied":
			w.WriteHeader(403)
			io.WriteString(w, "<Error><Code>AccessDenied</Code><BucketName>private-bucket</BucketName></Error>")
		case "/azure":
			w.Header().Set("x-ms-error-code", "AuthorizationFailure")
			w.WriteHeader(403)
		case "/longkey":
			w.WriteHeader(400)
			io.WriteString(w, "<Error><Code>KeyTooLongError</Code><BucketName>private-bucket</BucketName></Error>")
		case "/expired":
			w.WriteHeader(400)
			io.WriteString(w, "<Error><Code>ExpiredToken</Code></Error>")
		case "/sse":
			// SSE-C parameters on an unencrypted object: the source's
			// config, not the client.
			w.WriteHeader(400)
			io.WriteString(w, "<Error><Code>InvalidRequest</Code></Error>")
		case "/nocode":
			w.WriteHeader(400) // as every answer to HEAD: no body
		}
	}))
	defer up.Close()
	reg := prometheus.NewRegistry()
	p := newProxy(t, testConfig(), Options{Registerer: reg})
	p.AddSource("src")
	for _, tc := range []struct {
		path, code, cause string
		status            int
		upstreamErr       bool
	}{
		{"/denied", "storage_denied", "storage answered 403 Forbidden (AccessDenied)", 502, true},
		{"/azure", "storage_denied", "storage answered 403 Forbidden (AuthorizationFailure)", 502, true},
		{"/longkey", "bad_request", "storage answered 400 Bad Request (KeyTooLongError)", 400, false},
		{"/expired", "storage_error", "storage answered 400 Bad Request (ExpiredToken)", 502, true},
		{"/sse", "storage_error", "storage answered 400 Bad Request (InvalidRequest)", 502, true},
		{"/nocode", "storage_error", "storage answered 400 Bad Request", 502, true},
	} {
		t.Run(tc.path, func(t *testing.T) {
			before := testutil.ToFloat64(p.errs.denied) + testutil.ToFloat64(p.errs.status)
			r := httptest.NewRequest("GET", "/x", nil)
			err := p.Serve(httptest.NewRecorder(), r, Fetch{Source: "src", URL: up.URL + tc.path})
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Serve = %v, want *Error", err)
			}
			if se.Status != tc.status || se.Code != tc.code {
				t.Errorf("got %d %s, want %d %s", se.Status, se.Code, tc.status, tc.code)
			}
			if se.Err == nil || se.Err.Error() != tc.cause {
				t.Errorf("cause = %v, want %q", se.Err, tc.cause)
			}
			if strings.Contains(se.Error(), "private-bucket") {
				t.Errorf("error body reached the cause: %v", se)
			}
			after := testutil.ToFloat64(p.errs.denied) + testutil.ToFloat64(p.errs.status)
			if counted := after > before; counted != tc.upstreamErr {
				t.Errorf("counted as an upstream error: %v, want %v", counted, tc.upstreamErr)
			}
		})
	}
}

// TestStreamRequestLimits: a conditional header storage would refuse is
// a 400 before any fetch; a Range past the cap is not passed upstream.
func TestStreamRequestLimits(t *testing.T) {
	got := make(chan http.Header, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		io.WriteString(w, "0123456789")
	}))
	defer up.Close()
	p := newProxy(t, testConfig(), Options{})
	p.AddSource("src")
	for _, tc := range []struct {
		name      string
		header    string
		value     string
		status    int
		passRange bool
	}{
		{"huge If-None-Match", "If-None-Match", strings.Repeat(`"e",`, 16<<10), 400, false},
		{"ok Range", "Range", "bytes=0-1", 200, true},
		{"thousands of ranges", "Range", "bytes=" + strings.Repeat("0-0,", 2000) + "0-0", 200, false},
		{"60 KB Range", "Range", "bytes=0-" + strings.Repeat("1", 60<<10), 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set(tc.header, tc.value)
			r.Header.Set("If-Range", `"e"`)
			w := httptest.NewRecorder()
			err := p.Serve(w, r, Fetch{Source: "src", URL: up.URL + "/x"})
			status := w.Code
			var se *Error
			if errors.As(err, &se) {
				status = se.Status
				if tc.status == 400 && se.Code != "header_too_large" {
					t.Errorf("code %s, want header_too_large", se.Code)
				}
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d (err %v)", status, tc.status, err)
			}
			if tc.status != 200 {
				select {
				case <-got:
					t.Error("storage was asked")
				default:
				}
				return
			}
			h := <-got
			if passed := h.Get("Range") != ""; passed != tc.passRange {
				t.Errorf("Range passed upstream: %v, want %v", passed, tc.passRange)
			}
			if passed := h.Get("If-Range") != ""; passed != tc.passRange {
				t.Errorf("If-Range passed upstream: %v, want %v", passed, tc.passRange)
			}
		})
	}
}

// TestStreamTLSHandshakeTimeout: storage that accepts TCP but never
// finishes the TLS handshake within connect_timeout is unreachable
// (502), as PRODUCT.md says, not a 504.
func TestStreamTLSHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	cfg := testConfig()
	cfg.ConnectTimeout = 200 * time.Millisecond
	p := newProxy(t, cfg, Options{})
	p.AddSource("src")
	r := httptest.NewRequest("GET", "/x", nil)
	start := time.Now()
	err = p.Serve(httptest.NewRecorder(), r, Fetch{Source: "src", URL: "https://" + ln.Addr().String() + "/x"})
	var se *Error
	if !errors.As(err, &se) || se.Status != http.StatusBadGateway || se.Code != "storage_unreachable" {
		t.Fatalf("Serve = %v, want 502 storage_unreachable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestStreamRequestDeadline: storage that does not start answering by
// the request's deadline is a 504, even under a longer
// response_header_timeout.
func TestStreamRequestDeadline(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer up.Close()
	p := newProxy(t, testConfig(), Options{})
	p.AddSource("src")
	r := httptest.NewRequestWithContext(context.Background(), "GET", "/x", nil)
	start := time.Now()
	err := p.Serve(httptest.NewRecorder(), r, Fetch{Source: "src", URL: up.URL + "/x", Deadline: time.Now().Add(300 * time.Millisecond)})
	var se *Error
	if !errors.As(err, &se) || se.Status != http.StatusGatewayTimeout {
		t.Fatalf("Serve = %v, want 504", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v, want about the deadline", took)
	}
}
