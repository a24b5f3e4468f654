package assets

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedFixtures adds the generated fixtures whose name passes keep to f's
// corpus (truncated to max bytes), when the tools are installed.
func seedFixtures(f *testing.F, keep func(name string) bool, max int) {
	f.Helper()
	if os.Getenv("ASSETS_FIXTURES") == "" {
		return // plain `go test` runs the seeds above without generating fixtures
	}
	dir := fixtures(f)
	for _, n := range fixtureNames(f, dir) {
		if !keep(n) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > max {
			b = b[:max]
		}
		f.Add(b)
	}
}

// fuzzCheck runs the whole checker over b with a small budget and asserts
// the invariants: no panic, never reading past the budget or the object,
// never an I/O error from an in-memory object, and a type-consistent result.
func fuzzCheck(t *testing.T, b []byte) {
	cfg := Defaults()
	cfg.MaxBytes = 1 << 20
	cfg.MaxMoovSize = 512 << 10
	cfg.HeadSize = 4096
	cfg.MaxBoxes = 1000
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var asked int64
	r := RangeReaderFunc(func(ctx context.Context, off, n int64) ([]byte, error) {
		if off < 0 || n <= 0 || off+n > int64(len(b)) {
			t.Fatalf("read [%d,+%d) outside a %d-byte object", off, n, len(b))
		}
		asked += n
		return bytes.Clone(b[off : off+n]), nil
	})
	ck, n, err := c.Check(context.Background(), Object{Size: int64(len(b)), ContentType: "video/mp4", R: r})
	if err != nil {
		t.Fatalf("in-memory object gave an I/O error: %v", err)
	}
	if n != asked || n > cfg.MaxBytes {
		t.Fatalf("read %d (asked %d), budget %d", n, asked, cfg.MaxBytes)
	}
	if ck.Width < 0 || ck.Height < 0 {
		t.Fatalf("negative size %dx%d", ck.Width, ck.Height)
	}
	for _, p := range ck.Problems {
		if p.Code == "" || p.Message == "" || (p.Severity != SeverityError && p.Severity != SeverityWarn) {
			t.Fatalf("bad problem %+v", p)
		}
	}
}

// FuzzImageHead fuzzes sniffing, the image decoders' headers and the
// JPEG/PNG/WebP metadata walks. Seeded from the fixtures when
// ASSETS_FIXTURES names a directory scripts/fixtures.sh wrote:
//
//	bash scripts/fixtures.sh /tmp/fx
//	ASSETS_FIXTURES=/tmp/fx go test -run '^$' -fuzz FuzzImageHead -fuzztime 60s ./internal/assets/
func FuzzImageHead(f *testing.F) {
	f.Add([]byte("\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*\x00\x00\x00\x08"))
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x08\x00\x00\x00"))
	seedFixtures(f, func(n string) bool { return !strings.HasSuffix(n, ".mp4") && !strings.HasSuffix(n, ".mov") }, 16<<10)
	f.Fuzz(fuzzCheck)
}

// FuzzMP4 fuzzes the top-level box walk and the moov/moof decoding
// (mp4ff behind a recover). Fixture MP4s are cut to their first 8 KiB,
// which holds ftyp and moov of a faststart fixture (bigger seeds make the
// fuzzer spend its time minimizing).
func FuzzMP4(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x10ftypmp42\x00\x00\x00\x00\x00\x00\x00\x08moov"))
	f.Add([]byte("\x00\x00\x00\x01mdat\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("\x00\x00\x00\x00moov"))
	seedFixtures(f, func(n string) bool { return strings.HasSuffix(n, ".mp4") || strings.HasSuffix(n, ".mov") }, 8<<10)
	f.Fuzz(fuzzCheck)
}

// FuzzEXIF fuzzes the EXIF/TIFF orientation reader alone.
func FuzzEXIF(f *testing.F) {
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"))
	f.Add([]byte("II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x03\x00\x00\x00"))
	f.Add([]byte("Exif\x00\x00II*\x00\xff\xff\xff\xff"))
	seedFixtures(f, func(n string) bool { return strings.HasSuffix(n, ".jpg") }, 4<<10)
	f.Fuzz(func(t *testing.T, b []byte) {
		if i := bytes.Index(b, []byte("Exif\x00\x00")); i >= 0 {
			b = b[i:] // a JPEG seed: start at its EXIF block
		}
		o, err := exifOrientation(b)
		if err == nil && (o < 0 || o > 0xFFFF) {
			t.Fatalf("orientation %d", o)
		}
	})
}
