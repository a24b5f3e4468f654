package assets

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCheckMixed checks 1000 objects (the fixtures, repeated) through
// Stream over a real HTTP server honouring Range, as `edge sync -check`
// would over a store: it reports checks/s and bytes read per check.
//
//	go test -run '^$' -bench CheckMixed -benchtime 3x ./internal/assets/
func BenchmarkCheckMixed(b *testing.B) {
	dir := fixtures(b)
	names := fixtureNames(b, dir)
	rs := newRangeServer(b, dir)
	c, err := New(Defaults())
	if err != nil {
		b.Fatal(err)
	}
	objs := make([]Object, 0, 1000)
	for i := 0; len(objs) < 1000; i++ {
		o, err := rs.object(names[i%len(names)])
		if err != nil {
			b.Fatal(err)
		}
		objs = append(objs, o)
	}
	b.ReportAllocs()
	var checks, read int64
	start := time.Now()
	for b.Loop() {
		in := make(chan Object)
		go func() {
			defer close(in)
			for _, o := range objs {
				in <- o
			}
		}()
		for r := range c.Stream(context.Background(), in) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			checks++
			read += r.BytesRead
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(checks)/el.Seconds(), "checks/s")
	b.ReportMetric(float64(read)/float64(checks), "B/check")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCheckFile checks each fixture kind from a file ReaderAt: the
// checker's own cost without the network.
//
//	go test -run '^$' -bench CheckFile ./internal/assets/
func BenchmarkCheckFile(b *testing.B) {
	dir := fixtures(b)
	c, _ := New(Defaults())
	for _, name := range []string{"h264_mp42_faststart.mp4", "h264_mp42_moov_at_end.mp4", "h264_fragmented.mp4", "orient_6.jpg", "big_header.jpg", "base.png", "base.webp"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue // skipped by fixtures.sh (encoder missing)
		}
		st, _ := f.Stat()
		obj := Object{Size: st.Size(), ContentType: storedType(name), R: ReaderAtRange{f}}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var read int64
			for b.Loop() {
				_, n, err := c.Check(context.Background(), obj)
				if err != nil {
					b.Fatal(err)
				}
				read = n
			}
			b.ReportMetric(float64(read), "B/check")
		})
		f.Close()
	}
}

// BenchmarkCheckPNGMemory needs no tools: a stdlib-encoded PNG in memory.
func BenchmarkCheckPNGMemory(b *testing.B) {
	p := pngBytes(b, 640, 480)
	c, _ := New(Defaults())
	obj := Object{Size: int64(len(p)), ContentType: "image/png", R: ReaderAtRange{bytes.NewReader(p)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Check(context.Background(), obj); err != nil {
			b.Fatal(err)
		}
	}
}
