// Package assetstest generates the asset-check fixtures (scripts/fixtures.sh,
// ffmpeg and exiftool) and says, from the independent tools ffprobe and
// exiftool, what a check of each must find: the oracle of every test that
// checks real files through a real store.
package assetstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InstallHint says how to get the tools.
const InstallHint = "run `make tools` in the repository (it apt-get installs ffmpeg and libimage-exiftool-perl)"

var (
	fixOnce sync.Once
	fixDir  string
	fixErr  error
	keep    bool
)

// Fixtures generates the fixtures once per test binary and returns their
// directory; ASSETS_FIXTURES=DIR reuses one `bash scripts/fixtures.sh DIR`
// wrote. Call Cleanup from TestMain to remove a generated one.
func Fixtures(tb testing.TB) string {
	tb.Helper()
	fixOnce.Do(func() {
		if d := os.Getenv("ASSETS_FIXTURES"); d != "" {
			fixDir, keep = d, true
			return
		}
		for _, tool := range []string{"ffmpeg", "ffprobe", "exiftool"} {
			if _, err := exec.LookPath(tool); err != nil {
				fixErr = fmt.Errorf("%s not found: %s", tool, InstallHint)
				return
			}
		}
		script, err := repoFile("scripts/fixtures.sh")
		if err != nil {
			fixErr = err
			return
		}
		if fixDir, fixErr = os.MkdirTemp("", "assets-fixtures-"); fixErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script, fixDir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			fixErr = fmt.Errorf("scripts/fixtures.sh: %v: %s", err, stderr.String())
		}
	})
	if fixErr != nil {
		tb.Fatal(fixErr)
	}
	return fixDir
}

// Cleanup removes the directory Fixtures generated (not ASSETS_FIXTURES).
func Cleanup() {
	if fixDir != "" && !keep {
		os.RemoveAll(fixDir)
	}
}

// repoFile finds rel under the module root (the directory with go.mod,
// upwards from the test's working directory).
func repoFile(rel string) (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, rel), nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("no go.mod above the working directory: cannot find %s", rel)
		}
		d = up
	}
}

// Names lists dir's files, sorted.
func Names(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// StoredType is the Content-Type a careful uploader stores a fixture
// with; names holding "octet" are stored as binary/octet-stream, as a
// careless one does.
func StoredType(name string) string {
	if strings.Contains(name, "octet") {
		return "binary/octet-stream"
	}
	switch filepath.Ext(name) {
	case ".jpg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".bmp":
		return "image/bmp"
	case ".tiff":
		return "image/tiff"
	case ".mp4":
		return "video/mp4"
	case ".mov":
		return "video/quicktime"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "binary/octet-stream"
}

// Want is what the tools say a check of one file must find.
type Want struct {
	// Type is exiftool's MIMEType; "" when exiftool does not know the file.
	Type                       string
	Width, Height, Orientation int
	Video                      *WantVideo // video files ffprobe reads
	// Codes are the problem codes the check must report, no more, given
	// the Content-Type the file is stored with.
	Codes map[string]bool
}

// WantVideo is ffprobe's view of a video.
type WantVideo struct {
	Brand      string  // format tag major_brand
	Codec      string  // codec_tag_string
	PixFmt     string  // pix_fmt, yuvj420p as yuv420p (the check does not read the range flag)
	Faststart  bool    // moov before mdat among the root boxes (-v trace)
	Fragmented bool    // a root moof
	DurationS  float64 // format duration
}

type probe struct {
	ok      bool
	streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		CodecTag  string `json:"codec_tag_string"`
		Profile   string `json:"profile"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		PixFmt    string `json:"pix_fmt"`
	}
	format struct {
		Duration string            `json:"duration"`
		Tags     map[string]string `json:"tags"`
	}
	rootBoxes []string
}

var traceBox = regexp.MustCompile(`type:'(....)' parent:'root'`)

// ffprobe reads path's streams and format, and with trace its root boxes
// (ffprobe -v trace, slow: videos only).
func ffprobe(tb testing.TB, path string, trace bool) probe {
	tb.Helper()
	var p probe
	out, err := exec.Command("ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", path).Output()
	if err != nil {
		return p
	}
	var doc struct {
		Streams json.RawMessage `json:"streams"`
		Format  json.RawMessage `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	json.Unmarshal(doc.Streams, &p.streams)
	json.Unmarshal(doc.Format, &p.format)
	p.ok = true
	if !trace {
		return p
	}
	out, _ = exec.Command("ffprobe", "-v", "trace", "-i", path).CombinedOutput()
	for _, m := range traceBox.FindAllSubmatch(out, -1) {
		p.rootBoxes = append(p.rootBoxes, string(m[1]))
	}
	return p
}

// Oracle runs exiftool (once for all names) and ffprobe (per file) on
// dir's files and says what each check must find; stored gives the
// Content-Type each name is stored with (nil: StoredType).
func Oracle(tb testing.TB, dir string, names []string, stored func(name string) string) map[string]Want {
	tb.Helper()
	if stored == nil {
		stored = StoredType
	}
	args := []string{"-j", "-n", "-q", "-q"}
	for _, n := range names {
		args = append(args, filepath.Join(dir, n))
	}
	out, _ := exec.Command("exiftool", args...).Output() // exit 1 when one file is unknown
	var docs []map[string]any
	if err := json.Unmarshal(out, &docs); err != nil {
		tb.Fatalf("exiftool -j: %v: %s", err, out)
	}
	exif := map[string]map[string]any{}
	for _, d := range docs {
		exif[filepath.Base(d["SourceFile"].(string))] = d
	}
	wants := map[string]Want{}
	for _, name := range names {
		ex := exif[name]
		w := Want{Type: str(ex["MIMEType"]), Codes: map[string]bool{}}
		if w.Type == "" || str(ex["Error"]) != "" {
			w.Type = ""
			w.Codes["unreadable"] = true
		}
		st := stored(name)
		if i := strings.IndexByte(st, ';'); i >= 0 {
			st = st[:i]
		}
		if w.Type != "" && !strings.HasPrefix(w.Type, "text/") && w.Type != st {
			w.Codes["content_type_mismatch"] = true
		}
		switch {
		case strings.HasPrefix(w.Type, "video/"):
			p := ffprobe(tb, filepath.Join(dir, name), true)
			if !p.ok {
				w.Codes["unreadable"] = true
				break
			}
			if indexOf(p.rootBoxes, "moov") < 0 {
				tb.Fatalf("%s: ffprobe's trace shows no root moov: %v", name, p.rootBoxes)
			}
			for _, s := range p.streams {
				if s.CodecType != "video" {
					continue
				}
				d, _ := strconv.ParseFloat(p.format.Duration, 64)
				moov, mdat := indexOf(p.rootBoxes, "moov"), indexOf(p.rootBoxes, "mdat")
				w.Width, w.Height = s.Width, s.Height
				w.Video = &WantVideo{Brand: p.format.Tags["major_brand"], Codec: s.CodecTag,
					PixFmt: strings.Replace(s.PixFmt, "yuvj", "yuv", 1), Faststart: moov >= 0 && (mdat < 0 || moov < mdat),
					Fragmented: indexOf(p.rootBoxes, "moof") >= 0, DurationS: d}
				if !w.Video.Faststart {
					w.Codes["moov_at_end"] = true
				}
				if w.Video.Brand != "mp42" {
					w.Codes["mp4_brand"] = true
				}
				if s.PixFmt != "yuv420p" && s.PixFmt != "yuvj420p" {
					w.Codes["pixel_format"] = true
				}
				if s.CodecName != "h264" || strings.Contains(s.Profile, "10") || strings.Contains(s.Profile, "4:4:4") || strings.Contains(s.Profile, "4:2:2") {
					w.Codes["video_codec"] = true
				}
				break
			}
			if w.Video == nil {
				tb.Fatalf("%s: exiftool says %s, ffprobe finds no video stream", name, w.Type)
			}
		case strings.HasPrefix(w.Type, "image/"):
			w.Width, w.Height, w.Orientation = num(ex["ImageWidth"]), num(ex["ImageHeight"]), num(ex["Orientation"])
			// The two oracles must agree where both read the file.
			for _, s := range ffprobe(tb, filepath.Join(dir, name), false).streams {
				if s.CodecType == "video" && (s.Width != w.Width || s.Height != w.Height) {
					tb.Errorf("%s: oracles disagree: ffprobe %dx%d, exiftool %dx%d", name, s.Width, s.Height, w.Width, w.Height)
				}
			}
			if w.Orientation > 1 {
				w.Codes["exif_orientation"] = true
			}
		}
		wants[name] = w
	}
	return wants
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func num(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
