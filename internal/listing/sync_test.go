package listing

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sliceLister lists objs in order (they must be sorted).
func sliceLister(objs []Object) Lister {
	return ListerFunc(func(ctx context.Context, yield func(Object) error) error {
		for _, o := range objs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := yield(o); err != nil {
				return err
			}
		}
		return nil
	})
}

func objs(spec ...string) []Object {
	var out []Object
	for _, s := range spec {
		key, etag, _ := strings.Cut(s, "=")
		out = append(out, Object{Key: key, StorageKey: "p/" + key, Size: int64(len(etag)), ETag: etag,
			LastModified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	}
	return out
}

// manifestLine is any line, decoded.
type manifestLine struct {
	Key     string          `json:"key"`
	Size    *int64          `json:"size"`
	ETag    *string         `json:"etag"`
	Change  string          `json:"change"`
	Check   json.RawMessage `json:"check"`
	Summary *Summary        `json:"summary"`
}

func decodeManifest(t *testing.T, b []byte) ([]manifestLine, Summary) {
	t.Helper()
	var lines []manifestLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l manifestLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 || lines[len(lines)-1].Summary == nil {
		t.Fatalf("manifest without a summary line:\n%s", b)
	}
	return lines[:len(lines)-1], *lines[len(lines)-1].Summary
}

// changes renders lines as "key:change" for comparison.
func changes(lines []manifestLine) string {
	var parts []string
	for _, l := range lines {
		parts = append(parts, l.Key+":"+l.Change)
	}
	return strings.Join(parts, " ")
}

func runSync(t *testing.T, l Lister, opts Options) ([]byte, Summary) {
	t.Helper()
	var buf bytes.Buffer
	s, err := Sync(context.Background(), l, opts, &buf)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return buf.Bytes(), s
}

func TestSyncDiff(t *testing.T) {
	oldObjs := objs("a=1", "b=22", "c=3", "d=4", "f=6")
	old, _ := runSync(t, sliceLister(oldObjs), Options{})
	tests := []struct {
		name string
		now  []Object
		want string
		sum  Summary
	}{
		{"same", oldObjs, "a:unchanged b:unchanged c:unchanged d:unchanged f:unchanged", Summary{Objects: 5, Unchanged: 5}},
		{"empty now", nil, "a:removed b:removed c:removed d:removed f:removed", Summary{Removed: 5}},
		{"mixed", objs("0=x", "a=1", "b=2X", "c=9", "e=5", "g=7"),
			"0:added a:unchanged b:changed c:changed d:removed e:added f:removed g:added",
			Summary{Objects: 6, Added: 3, Changed: 2, Unchanged: 1, Removed: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, s := runSync(t, sliceLister(tt.now), Options{Since: bytes.NewReader(old)})
			lines, sumLine := decodeManifest(t, out)
			if got := changes(lines); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			s.Seconds, sumLine.Seconds = 0, 0
			if s != tt.sum || sumLine != tt.sum {
				t.Errorf("summary %+v (line %+v), want %+v", s, sumLine, tt.sum)
			}
			for _, l := range lines {
				if l.Change == Removed && (l.Size != nil || l.ETag != nil) {
					t.Errorf("removed line carries size or etag: %+v", l)
				}
			}
		})
	}
	t.Run("size change with the same etag", func(t *testing.T) {
		now := objs("a=1", "b=22", "c=3", "d=4", "f=6")
		now[1].Size = 99
		out, _ := runSync(t, sliceLister(now), Options{Since: bytes.NewReader(old)})
		lines, _ := decodeManifest(t, out)
		if lines[1].Change != Changed {
			t.Errorf("b: %s, want changed", lines[1].Change)
		}
	})
	t.Run("bad old manifest", func(t *testing.T) {
		var buf bytes.Buffer
		_, err := Sync(context.Background(), sliceLister(oldObjs), Options{Since: strings.NewReader(`{"key":"b","size":1}` + "\n" + `{"key":"a","size":1}` + "\n" + sum)}, &buf)
		var me *ManifestError
		if !errors.As(err, &me) || me.Line != 2 {
			t.Fatalf("error %v, want a ManifestError on line 2", err)
		}
		if bytes.Contains(buf.Bytes(), []byte(`"summary"`)) {
			t.Errorf("a failed run wrote a summary: %s", buf.Bytes())
		}
	})
	t.Run("without since no change field", func(t *testing.T) {
		out, s := runSync(t, sliceLister(oldObjs), Options{})
		if bytes.Contains(out, []byte(`"change"`)) {
			t.Errorf("change field without Since: %s", out)
		}
		if s.Objects != 5 {
			t.Errorf("objects %d", s.Objects)
		}
	})
}

// TestSyncChecksInOrder runs checks that finish in random order and
// checks lines come out in listing order with their own results.
func TestSyncChecksInOrder(t *testing.T) {
	var all []Object
	for i := range 500 {
		all = append(all, Object{Key: fmt.Sprintf("k%04d", i), Size: int64(i), ETag: fmt.Sprint(i)})
	}
	var inFlight, peak atomic.Int64
	check := func(ctx context.Context, o Object) CheckResult {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		inFlight.Add(-1)
		problems := 0
		var c map[string]any
		if o.Size%7 == 0 {
			problems = 1
			c = map[string]any{"key": o.Key, "problems": []map[string]string{{"code": "x"}}}
		} else {
			c = map[string]any{"key": o.Key, "problems": []any{}}
		}
		return CheckResult{Check: c, Problems: problems, BytesRead: 10}
	}
	out, s := runSync(t, sliceLister(all), Options{Check: check, Concurrency: 4})
	lines, _ := decodeManifest(t, out)
	if len(lines) != len(all) {
		t.Fatalf("%d lines, want %d", len(lines), len(all))
	}
	for i, l := range lines {
		var c struct{ Key string }
		if err := json.Unmarshal(l.Check, &c); err != nil || l.Key != all[i].Key || c.Key != l.Key {
			t.Fatalf("line %d: key %q check %s, want %q", i, l.Key, l.Check, all[i].Key)
		}
	}
	if p := peak.Load(); p > 4 {
		t.Errorf("%d checks at once, want at most 4", p)
	}
	if s.BytesRead != 5000 || s.Problems != 72 {
		t.Errorf("summary %+v, want bytes_read 5000, problems 72", s)
	}
	if !bytes.Contains(out, []byte(`"bytes_read":5000}}`)) {
		t.Errorf("summary line lacks bytes_read: %s", out[bytes.LastIndexByte(out[:len(out)-1], '\n')+1:])
	}

	t.Run("unchanged objects keep their old check", func(t *testing.T) {
		var calls atomic.Int64
		counting := func(ctx context.Context, o Object) CheckResult {
			calls.Add(1)
			return check(ctx, o)
		}
		now := append([]Object(nil), all...)
		now[3].ETag = "new"
		out2, s2 := runSync(t, sliceLister(now), Options{Since: bytes.NewReader(out), Check: counting})
		if calls.Load() != 1 {
			t.Errorf("%d checks ran, want 1 (the changed object)", calls.Load())
		}
		if s2.Problems != s.Problems {
			t.Errorf("problems %d, want %d (carried over)", s2.Problems, s.Problems)
		}
		lines2, _ := decodeManifest(t, out2)
		for i := range lines2 {
			if !bytes.Equal(lines2[i].Check, lines[i].Check) {
				t.Errorf("line %d check %s, want %s", i, lines2[i].Check, lines[i].Check)
			}
		}
		calls.Store(0)
		runSync(t, sliceLister(now), Options{Since: bytes.NewReader(out), Check: counting, Recheck: true})
		if calls.Load() != int64(len(now)) {
			t.Errorf("Recheck: %d checks, want %d", calls.Load(), len(now))
		}
	})
}

// TestSyncStops: a cancelled context or a failing writer stops the
// listing; no summary is written and no check outlives Sync.
func TestSyncStops(t *testing.T) {
	endless := ListerFunc(func(ctx context.Context, yield func(Object) error) error {
		for i := 0; ; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := yield(Object{Key: fmt.Sprintf("k%09d", i), ETag: "e"}); err != nil {
				return err
			}
		}
	})
	for _, withCheck := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancel check=%v", withCheck), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			var running atomic.Int64
			opts := Options{}
			if withCheck {
				opts.Check = func(ctx context.Context, o Object) CheckResult {
					running.Add(1)
					defer running.Add(-1)
					return CheckResult{}
				}
			}
			var buf bytes.Buffer
			_, err := Sync(ctx, endless, opts, &buf)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want the context's", err)
			}
			if running.Load() != 0 {
				t.Errorf("%d checks still running after Sync returned", running.Load())
			}
			if bytes.Contains(buf.Bytes(), []byte("summary")) {
				t.Error("summary written after cancel")
			}
		})
		t.Run(fmt.Sprintf("writer fails check=%v", withCheck), func(t *testing.T) {
			opts := Options{}
			if withCheck {
				opts.Check = func(context.Context, Object) CheckResult { return CheckResult{} }
			}
			w := &failAfter{n: 1 << 20}
			_, err := Sync(context.Background(), endless, opts, w)
			if !errors.Is(err, errWrite) {
				t.Fatalf("error %v, want the writer's", err)
			}
		})
	}
}

var errWrite = errors.New("client went away")

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errWrite
	}
	return len(p), nil
}

// BenchmarkSyncDiff merges a 10,000-object listing against its old
// manifest (a few changes), without checks: the diff's own cost.
func BenchmarkSyncDiff(b *testing.B) {
	var all []Object
	for i := range 10000 {
		all = append(all, Object{Key: fmt.Sprintf("datasets/42/img%06d.jpg", i), Size: int64(i), ETag: fmt.Sprintf(`"%032x"`, i), LastModified: time.Now()})
	}
	var old bytes.Buffer
	if _, err := Sync(context.Background(), sliceLister(all), Options{}, &old); err != nil {
		b.Fatal(err)
	}
	now := append([]Object(nil), all...)
	now[10].ETag, now[500].Size = `"x"`, 1
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var out bytes.Buffer
		out.Grow(old.Len() + 1<<16)
		if _, err := Sync(context.Background(), sliceLister(now), Options{Since: bytes.NewReader(old.Bytes())}, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(all)*b.N)/b.Elapsed().Seconds(), "objects/s")
}

// utf16Lister lists in UTF-16 order, as an Azure Remote does.
type utf16Lister struct{ Lister }

func (utf16Lister) Order() KeyOrder { return UTF16Order }

// TestSyncUTF16Order: an Azure source's manifests are in UTF-16 order, and
// the diff merges in it.
func TestSyncUTF16Order(t *testing.T) {
	old := utf16Lister{sliceLister(objs("a=1", "b\U0001F600=2", "b\uff01=3", "c=4"))}
	first, _ := runSync(t, old, Options{})
	now := utf16Lister{sliceLister(objs("a=1", "b\U0001F600=2X", "b\uff01=3", "b\uff02=5"))}
	out, _ := runSync(t, now, Options{Since: bytes.NewReader(first)})
	lines, _ := decodeManifest(t, out)
	if got, want := changes(lines), "a:unchanged b\U0001F600:changed b\uff01:unchanged b\uff02:added c:removed"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// A byte-ordered stream from a UTF-16 source is an error, not a diff.
	var buf bytes.Buffer
	_, err := Sync(context.Background(), utf16Lister{sliceLister(objs("a=1"))}, Options{Since: strings.NewReader(`{"key":"b\uff01","size":1}` + "\n" + "{\"key\":\"b\U0001F600\",\"size\":1}\n" + sum)}, &buf)
	if err == nil || !strings.Contains(err.Error(), "line 2: keys out of order") {
		t.Errorf("error %v", err)
	}
}
