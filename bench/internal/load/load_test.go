package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	var h Hist
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 5000 * time.Microsecond},
		{0.90, 9000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{1.00, 10000 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if d := float64(got-tt.want) / float64(tt.want); d < 0 || d > 1.0/subCount {
			t.Errorf("Quantile(%v) = %v, want %v within +%.1f%%", tt.q, got, tt.want, 100.0/subCount)
		}
	}
	if got, want := h.Max(), 10000*time.Microsecond; got != want {
		t.Errorf("Max() = %v, want %v", got, want)
	}
}

func TestHistBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 123456789, 1 << 40} {
		i := bucketOf(v)
		if up := upperOf(i); up < v {
			t.Errorf("upperOf(bucketOf(%d)) = %d, below the value", v, up)
		}
		if i > 0 && upperOf(i-1) >= v {
			t.Errorf("value %d also fits bucket %d", v, i-1)
		}
	}
}

func TestRunCountsRedirectsWithoutFollowing(t *testing.T) {
	var mu sync.Mutex
	paths := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.RequestURI()]++
		mu.Unlock()
		if r.Header.Get("Origin") != "https://app.example.com" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "http://127.0.0.1:1/never-followed", http.StatusFound)
	}))
	defer srv.Close()

	res, err := Run(context.Background(), Config{
		URLs:        []string{srv.URL + "/a/" + SeqMarker + ".jpg?token=x"},
		Concurrency: 4,
		Duration:    30 * time.Second, // MaxRequests ends it long before
		MaxRequests: 200,
		Header:      []string{"Origin: https://app.example.com"},
		Expect:      http.StatusFound,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 200 || res.Bad != 0 || res.Errors != 0 {
		t.Errorf("ok, bad, errors = %d, %d, %d; want 200, 0, 0 (first error %q)", res.OK, res.Bad, res.Errors, res.FirstError)
	}
	if !res.EndedEarly {
		t.Errorf("EndedEarly = false, want true: MaxRequests bounds the run")
	}
	if got := res.Status["302"]; got != 200 {
		t.Errorf("Status[302] = %d, want 200", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 200 {
		t.Errorf("%d distinct paths, want 200 (every request a different object)", len(paths))
	}
	if paths["/a/0.jpg?token=x"] != 1 || paths["/a/199.jpg?token=x"] != 1 {
		t.Errorf("paths /a/0.jpg and /a/199.jpg not requested once each: %v", paths["/a/0.jpg?token=x"])
	}
}

func TestRunOnceUsesEveryURLOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Query().Get("token")]++
		mu.Unlock()
		w.WriteHeader(http.StatusFound)
	}))
	defer srv.Close()
	var urls []string
	for i := 0; i < 50; i++ {
		urls = append(urls, srv.URL+"/x?token=t"+strings.Repeat("a", i))
	}
	res, err := Run(context.Background(), Config{URLs: urls, Once: true, Concurrency: 3, Duration: 2 * time.Second, Expect: 302})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 50 {
		t.Errorf("ok = %d, want 50", res.OK)
	}
	for tok, n := range seen {
		if n != 1 {
			t.Errorf("token %q used %d times, want once", tok, n)
		}
	}
}

func TestRunReadsBodies(t *testing.T) {
	body := strings.Repeat("x", 1<<20)
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"content-length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1048576")
			w.Write([]byte(body))
		}},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < 16; i++ {
				w.Write([]byte(body[:1<<16]))
				w.(http.Flusher).Flush()
			}
		}},
		{"close-delimited", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			w.Write([]byte(body))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			res, err := Run(context.Background(), Config{
				URLs: []string{srv.URL + "/o"}, Concurrency: 2, Duration: 2 * time.Second, MaxRequests: 10, Expect: 200,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != 10 || res.Errors != 0 {
				t.Errorf("ok, errors = %d, %d; want 10, 0 (%s)", res.OK, res.Errors, res.FirstError)
			}
			if got, want := res.BodyBytes, uint64(10<<20); got != want {
				t.Errorf("BodyBytes = %d, want %d", got, want)
			}
		})
	}
}

func TestRunStopsOnTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	start := time.Now()
	res, err := Run(context.Background(), Config{
		URLs: []string{srv.URL + "/"}, Concurrency: 2, Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond, Expect: 302,
	})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("run took %v, want about 400ms (bounded by Duration)", el)
	}
	if res.OK != 0 || res.Bad == 0 {
		t.Errorf("ok, bad = %d, %d; want 0 and some (401 is not the expected 302)", res.OK, res.Bad)
	}
	// The lower bound proves the measured window is the configured one;
	// the upper catches a window that counted the warmup.
	if res.Seconds < 0.29 || res.Seconds > 0.39 { // 0.4 and more: the 100ms warmup was counted
		t.Errorf("Seconds = %v, want about 0.3", res.Seconds)
	}
}
