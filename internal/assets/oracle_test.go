package assets

import (
	"context"
	"math"
	"mime"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/edgeproxy/edge/internal/assets/assetstest"
)

func codes(ck *Check) map[string]bool {
	m := map[string]bool{}
	for _, p := range ck.Problems {
		m[p.Code] = true
	}
	return m
}

// TestAgainstOracles checks every generated fixture through a real HTTP
// server honouring Range and requires the facts to agree with ffprobe and
// exiftool, and the problems to follow from what those tools report.
func TestAgainstOracles(t *testing.T) {
	dir := fixtures(t)
	names := fixtureNames(t, dir)
	for _, must := range []string{"h264_mp42_faststart.mp4", "h264_isom_faststart.mp4", "h264_mp42_moov_at_end.mp4",
		"h264_yuv444p.mp4", "h264_fragmented.mp4", "orient_1.jpg", "orient_8.jpg", "exif_after_app13.jpg", "base.png", "png_as_octet.png", "base.gif"} {
		if indexOf(names, must) < 0 {
			t.Fatalf("fixtures.sh did not write %s (see its skip lines above); %s", must, installHint)
		}
	}
	wants := assetstest.Oracle(t, dir, names, nil) // stored as rangeServer stores them (StoredType)
	rs := newRangeServer(t, dir)
	cfg := Defaults()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type kindStat struct{ n, bytes, size, requests int64 }
	stats := map[string]*kindStat{}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			obj, err := rs.object(name)
			if err != nil {
				t.Fatal(err)
			}
			sent0, req0 := rs.received.Load(), rs.requests.Load()
			ck, n, err := c.Check(context.Background(), obj)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			sent, reqs := rs.received.Load()-sent0, rs.requests.Load()-req0
			if sent != n {
				t.Errorf("Check says it read %d bytes, the HTTP client received %d", n, sent)
			}
			if obj.Size > 2*cfg.HeadSize && n >= obj.Size {
				t.Errorf("read %d bytes of a %d-byte object: the whole object", n, obj.Size)
			}
			t.Logf("%-28s size %8d  read %7d B in %d requests", name, obj.Size, n, reqs)
			w := wants[name]
			got := codes(ck)
			want := w.Codes

			// Type: exiftool's MIMEType ("" when exiftool does not know it).
			if gotType, _, _ := mime.ParseMediaType(ck.Type); w.Type != "" && gotType != w.Type {
				t.Errorf("type %q, exiftool MIMEType %q", ck.Type, w.Type)
			}
			if ck.ContentType != obj.ContentType {
				t.Errorf("content_type %q, stored %q", ck.ContentType, obj.ContentType)
			}
			switch {
			case w.Video != nil:
				if ck.Video == nil {
					t.Fatalf("no video facts; problems %+v", ck.Problems)
				}
				v, wv := ck.Video, w.Video
				if ck.Width != w.Width || ck.Height != w.Height {
					t.Errorf("size %dx%d, ffprobe %dx%d", ck.Width, ck.Height, w.Width, w.Height)
				}
				if v.Codec != wv.Codec {
					t.Errorf("codec %q, ffprobe codec_tag_string %q", v.Codec, wv.Codec)
				}
				// yuvj420p is ffmpeg's name for full-range yuv420p; the checker
				// does not read the full-range flag (see parseAVCSPS).
				if v.PixFmt != wv.PixFmt {
					t.Errorf("pix_fmt %q, ffprobe %q", v.PixFmt, wv.PixFmt)
				}
				if v.Brand != wv.Brand {
					t.Errorf("brand %q, ffprobe major_brand %q", v.Brand, wv.Brand)
				}
				if math.Abs(v.DurationS-wv.DurationS) > 0.1 {
					t.Errorf("duration %.3fs, ffprobe %.3fs", v.DurationS, wv.DurationS)
				}
				if v.Faststart != wv.Faststart {
					t.Errorf("faststart %v, ffprobe's root boxes say %v", v.Faststart, wv.Faststart)
				}
				if v.Fragmented != wv.Fragmented {
					t.Errorf("fragmented %v, ffprobe's root boxes say %v", v.Fragmented, wv.Fragmented)
				}
			case strings.HasPrefix(w.Type, "image/"):
				if ck.Width != w.Width || ck.Height != w.Height {
					t.Errorf("size %dx%d, exiftool %dx%d", ck.Width, ck.Height, w.Width, w.Height)
				}
				if ck.Orientation != w.Orientation {
					t.Errorf("orientation %d, exiftool %d", ck.Orientation, w.Orientation)
				}
			}
			for code := range want {
				if !got[code] {
					t.Errorf("missing problem %s; got %+v", code, ck.Problems)
				}
			}
			for code := range got {
				if !want[code] {
					t.Errorf("unexpected problem %s; got %+v", code, ck.Problems)
				}
			}
			for _, pr := range ck.Problems {
				if pr.Severity != SeverityError && pr.Severity != SeverityWarn {
					t.Errorf("severity %q", pr.Severity)
				}
				if len(pr.Message) < 40 {
					t.Errorf("message too short to say the fix: %q", pr.Message)
				}
			}
			kind := filepath.Ext(name)
			if kind == ".mp4" {
				switch {
				case ck.Video != nil && ck.Video.Fragmented:
					kind = "mp4 fragmented"
				case ck.Video != nil && ck.Video.Faststart:
					kind = "mp4 faststart"
				default:
					kind = "mp4 other"
				}
			}
			s := stats[kind]
			if s == nil {
				s = &kindStat{}
				stats[kind] = s
			}
			s.n++
			s.bytes += n
			s.size += obj.Size
			s.requests += reqs
		})
	}
	kinds := make([]string, 0, len(stats))
	for k := range stats {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var imgBytes, imgN int64
	for _, k := range kinds {
		s := stats[k]
		t.Logf("%-16s files %2d  avg read %7d B  avg size %8d B  avg requests %.1f", k, s.n, s.bytes/s.n, s.size/s.n, float64(s.requests)/float64(s.n))
		switch k {
		case ".jpg", ".png", ".gif", ".webp", ".bmp", ".tiff":
			imgBytes += s.bytes
			imgN += s.n
		}
	}
	if imgN > 0 {
		t.Logf("images: avg read %d B", imgBytes/imgN)
		if imgBytes/imgN > 256<<10 {
			t.Errorf("images read %d B on average, target under 256 KiB", imgBytes/imgN)
		}
	}
	if s := stats["mp4 faststart"]; s != nil && s.bytes/s.n > 256<<10 {
		t.Errorf("faststart MP4s read %d B on average, target under 256 KiB", s.bytes/s.n)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
