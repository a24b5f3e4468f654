package assets

import (
	"context"
	"math"
	"mime"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
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
	exif := exiftoolAll(t, dir, names)
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
			ex := exif[name]
			p := ffprobe(t, filepath.Join(dir, name))
			got := codes(ck)
			want := map[string]bool{}

			// Type: exiftool's MIMEType. Unknown to exiftool: unreadable.
			exType := str(ex["MIMEType"])
			gotType, _, _ := mime.ParseMediaType(ck.Type)
			if exType == "" || str(ex["Error"]) != "" {
				want[CodeUnreadable] = true
			} else if gotType != exType {
				t.Errorf("type %q, exiftool MIMEType %q", ck.Type, exType)
			}
			if exType != "" && !strings.HasPrefix(exType, "text/") && exType != storedType(name) {
				want[CodeContentTypeMismatch] = true
			}
			if ck.ContentType != obj.ContentType {
				t.Errorf("content_type %q, stored %q", ck.ContentType, obj.ContentType)
			}

			var video *struct {
				CodecType string `json:"codec_type"`
				CodecName string `json:"codec_name"`
				CodecTag  string `json:"codec_tag_string"`
				Profile   string `json:"profile"`
				Width     int    `json:"width"`
				Height    int    `json:"height"`
				PixFmt    string `json:"pix_fmt"`
			}
			for i := range p.streams {
				if p.streams[i].CodecType == "video" {
					video = &p.streams[i]
					break
				}
			}
			isVideo := strings.HasPrefix(exType, "video/")
			switch {
			case isVideo && !p.ok:
				want[CodeUnreadable] = true
			case isVideo:
				if ck.Video == nil {
					t.Fatalf("no video facts; problems %+v", ck.Problems)
				}
				v := ck.Video
				if video == nil {
					t.Fatal("ffprobe found no video stream")
				}
				if ck.Width != video.Width || ck.Height != video.Height {
					t.Errorf("size %dx%d, ffprobe %dx%d", ck.Width, ck.Height, video.Width, video.Height)
				}
				if v.Codec != video.CodecTag {
					t.Errorf("codec %q, ffprobe codec_tag_string %q", v.Codec, video.CodecTag)
				}
				// yuvj420p is ffmpeg's name for full-range yuv420p; the checker
				// does not read the full-range flag (see parseAVCSPS).
				if v.PixFmt != strings.Replace(video.PixFmt, "yuvj", "yuv", 1) {
					t.Errorf("pix_fmt %q, ffprobe %q", v.PixFmt, video.PixFmt)
				}
				if b := p.format.Tags["major_brand"]; v.Brand != b {
					t.Errorf("brand %q, ffprobe major_brand %q", v.Brand, b)
				}
				d, _ := strconv.ParseFloat(p.format.Duration, 64)
				if math.Abs(v.DurationS-d) > 0.1 {
					t.Errorf("duration %.3fs, ffprobe %.3fs", v.DurationS, d)
				}
				moov, mdat := indexOf(p.rootBoxes, "moov"), indexOf(p.rootBoxes, "mdat")
				if moov < 0 {
					t.Fatalf("ffprobe trace shows no root moov: %v", p.rootBoxes)
				}
				fast := mdat < 0 || moov < mdat
				if v.Faststart != fast {
					t.Errorf("faststart %v, ffprobe root boxes %v", v.Faststart, p.rootBoxes)
				}
				if v.Fragmented != (indexOf(p.rootBoxes, "moof") >= 0) {
					t.Errorf("fragmented %v, ffprobe root boxes %v", v.Fragmented, p.rootBoxes)
				}
				if !fast {
					want[CodeMoovAtEnd] = true
				}
				if v.Brand != "mp42" {
					want[CodeMP4Brand] = true
				}
				if video.PixFmt != "yuv420p" && video.PixFmt != "yuvj420p" {
					want[CodePixelFormat] = true
				}
				if video.CodecName != "h264" || strings.Contains(video.Profile, "10") ||
					strings.Contains(video.Profile, "4:4:4") || strings.Contains(video.Profile, "4:2:2") {
					want[CodeVideoCodec] = true
				}
			case strings.HasPrefix(exType, "image/"):
				w, h := num(ex["ImageWidth"]), num(ex["ImageHeight"])
				if ck.Width != w || ck.Height != h {
					t.Errorf("size %dx%d, exiftool %dx%d", ck.Width, ck.Height, w, h)
				}
				if video != nil && (video.Width != w || video.Height != h) {
					t.Errorf("oracles disagree: ffprobe %dx%d, exiftool %dx%d", video.Width, video.Height, w, h)
				}
				o := num(ex["Orientation"])
				if ck.Orientation != o {
					t.Errorf("orientation %d, exiftool %d (byte order %v)", ck.Orientation, o, ex["ExifByteOrder"])
				}
				if o > 1 {
					want[CodeEXIFOrientation] = true
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
