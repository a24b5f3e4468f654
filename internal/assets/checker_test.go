package assets

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	if errs := Defaults().Validate("sync.check"); len(errs) != 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"concurrency", func(c *Config) { c.MaxConcurrent = 0 }, "sync.check.max_concurrent: must be at least 1"},
		{"max bytes", func(c *Config) { c.MaxBytes = 10 }, "sync.check.max_bytes: must be at least 4KiB"},
		{"moov", func(c *Config) { c.MaxMoovSize = 0 }, "sync.check.max_moov_size: must be positive"},
		{"head small", func(c *Config) { c.HeadSize = 1 }, "sync.check.head_size: must be at least 512 bytes"},
		{"head big", func(c *Config) { c.HeadSize = c.MaxBytes + 1 }, "sync.check.head_size: must not exceed max_bytes"},
		{"boxes", func(c *Config) { c.MaxBoxes = 1 }, "sync.check.max_boxes: must be at least 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.mod(&c)
			errs := c.Validate("sync.check")
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("got %v, want [%s]", errs, tt.want)
			}
		})
	}
	all := Config{}.Validate("x")
	if len(all) != 5 {
		t.Errorf("zero config: got %d problems %v, want every key at once", len(all), all)
	}
}

func box(typ string, body []byte) []byte {
	b := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(b, uint32(8+len(body)))
	copy(b[4:], typ)
	return append(b, body...)
}

// memObject is an in-memory object that counts and bounds-checks every read.
func memObject(t *testing.T, b []byte, ct string) (Object, *atomic.Int64) {
	var n atomic.Int64
	return Object{Key: "k", Size: int64(len(b)), ContentType: ct, R: RangeReaderFunc(func(ctx context.Context, off, k int64) ([]byte, error) {
		if off < 0 || k <= 0 || off+k > int64(len(b)) {
			t.Errorf("read [%d,+%d) outside a %d-byte object", off, k, len(b))
			return nil, errors.New("out of range")
		}
		n.Add(k)
		return b[off : off+k], nil
	})}, &n
}

// TestHostileMP4 feeds box structures built to make a naive walker read the
// whole file, loop or panic; each must end as "unreadable", within bounds.
func TestHostileMP4(t *testing.T) {
	ftyp := box("ftyp", []byte("mp42\x00\x00\x00\x00mp42isom"))
	bigMdat := func(n int) []byte { // an mdat header claiming n bytes, body absent
		b := make([]byte, 8)
		binary.BigEndian.PutUint32(b, uint32(n))
		copy(b[4:], "mdat")
		return b
	}
	manyFree := bytes.Repeat(box("free", nil), 5000)
	huge := make([]byte, 16)
	binary.BigEndian.PutUint32(huge, 1)
	copy(huge[4:], "mdat")
	binary.BigEndian.PutUint64(huge[8:], 1<<62)
	moovHdr := make([]byte, 8)
	binary.BigEndian.PutUint32(moovHdr, 100<<20)
	copy(moovHdr[4:], "moov")
	tests := []struct {
		name    string
		b       []byte
		maxRead int64
	}{
		{"mdat past end", append(append([]byte{}, ftyp...), bigMdat(1<<30)...), 64 << 10},
		{"no moov", append(append([]byte{}, ftyp...), box("mdat", make([]byte, 100000))...), 64 << 10},
		{"moov larger than max_moov_size", append(append(append([]byte{}, ftyp...), moovHdr...), make([]byte, 1000)...), 64 << 10},
		{"largesize mdat", append(append([]byte{}, ftyp...), huge...), 64 << 10},
		{"box smaller than header", append(append([]byte{}, ftyp...), 0, 0, 0, 3, 'f', 'r', 'e', 'e'), 64 << 10},
		{"too many boxes", append(append([]byte{}, ftyp...), manyFree...), 64 << 10},
		{"garbage moov", append(append([]byte{}, ftyp...), box("moov", bytes.Repeat([]byte{0xff}, 300))...), 64 << 10},
		{"moov with lying child", append(append([]byte{}, ftyp...), box("moov", box("trak", []byte{0, 0, 0xff, 0xff, 't', 'k', 'h', 'd'}))...), 64 << 10},
	}
	cfg := Defaults()
	cfg.MaxBoxes = 1000
	cfg.MaxMoovSize = 1 << 20
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, read := memObject(t, tt.b, "video/mp4")
			ck, n, err := c.Check(context.Background(), obj)
			if err != nil {
				t.Fatal(err)
			}
			if !codes(ck)[CodeUnreadable] {
				t.Errorf("got problems %+v, want unreadable", ck.Problems)
			}
			if n != read.Load() || n > tt.maxRead {
				t.Errorf("read %d (counted %d), want at most %d", n, read.Load(), tt.maxRead)
			}
		})
	}
}

func TestBudget(t *testing.T) {
	// A JPEG whose tables (DHT segments, which DecodeConfig needs, unlike
	// APPn) go on past max_bytes: unreadable, never read further.
	b := []byte{0xFF, 0xD8}
	for i := 0; i < 40; i++ {
		b = append(b, 0xFF, 0xC4, 0xEA, 0x60)
		b = append(b, make([]byte, 59998)...)
	}
	cfg := Defaults()
	cfg.MaxBytes = 512 << 10
	c, _ := New(cfg)
	obj, read := memObject(t, b, "image/jpeg")
	ck, n, err := c.Check(context.Background(), obj)
	if err != nil {
		t.Fatal(err)
	}
	if !codes(ck)[CodeUnreadable] || n > cfg.MaxBytes || read.Load() != n {
		t.Errorf("problems %+v, read %d, budget %d", ck.Problems, n, cfg.MaxBytes)
	}
	if !strings.Contains(ck.Problems[0].Message, "more bytes") {
		t.Errorf("message %q does not say why", ck.Problems[0].Message)
	}
}

func TestStoreErrorIsReturned(t *testing.T) {
	c, _ := New(Defaults())
	boom := errors.New("store says no")
	ck, _, err := c.Check(context.Background(), Object{Size: 100, R: RangeReaderFunc(func(context.Context, int64, int64) ([]byte, error) {
		return nil, boom
	})})
	if !errors.Is(err, boom) || ck != nil {
		t.Fatalf("got %v, %v; want the store's error and no check", ck, err)
	}
}

func pngBytes(t testing.TB, w, h int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestStreamOrderAndBound: results come in input order although checks
// finish out of order, and no more than MaxConcurrent run at once.
func TestStreamOrderAndBound(t *testing.T) {
	cfg := Defaults()
	cfg.MaxConcurrent = 3
	c, _ := New(cfg)
	var inFlight, peak atomic.Int64
	const n = 60
	in := make(chan Object)
	go func() {
		defer close(in)
		for i := 0; i < n; i++ {
			b := pngBytes(t, i+1, 1)
			delay := time.Duration(rand.IntN(3)) * time.Millisecond
			// Each check is one read (the PNG is smaller than the head), so
			// reads in flight are checks in flight.
			in <- Object{Key: string(rune('a' + i%26)), Size: int64(len(b)), ContentType: "image/png",
				R: RangeReaderFunc(func(ctx context.Context, off, k int64) ([]byte, error) {
					v := inFlight.Add(1)
					for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
					}
					defer inFlight.Add(-1)
					time.Sleep(delay + time.Millisecond)
					return b[off : off+k], nil
				})}
		}
	}()
	i := 0
	for r := range c.Stream(context.Background(), in) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Check.Width != i+1 {
			t.Fatalf("result %d has width %d: out of order", i, r.Check.Width)
		}
		i++
	}
	if i != n {
		t.Fatalf("got %d results, want %d", i, n)
	}
	if p := peak.Load(); p > int64(cfg.MaxConcurrent) || p < 2 {
		t.Errorf("peak %d checks in flight, want 2..%d", p, cfg.MaxConcurrent)
	}
}

func TestStreamCancel(t *testing.T) {
	c, _ := New(Defaults())
	ctx, cancel := context.WithCancel(context.Background())
	in := make(chan Object) // never closed
	out := c.Stream(ctx, in)
	cancel()
	select {
	case _, ok := <-out:
		if ok {
			t.Fatal("result after cancel")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Stream did not close its channel after cancel")
	}
}
