package assets

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
)

// Checker checks objects; build one with New and share it: it holds no
// per-object state.
type Checker struct {
	cfg Config
}

// New returns a Checker for a validated Config.
func New(cfg Config) (*Checker, error) {
	if errs := cfg.Validate(""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Checker{cfg: cfg}, nil
}

// Check reads the fewest bytes obj's format needs and reports what it found.
// The returned count is every byte fetched through obj.R. Bytes that do not
// parse are an "unreadable" problem in the Check; err is non-nil only when
// the RangeReader itself failed (or ctx ended), and then the Check is nil:
// the caller decides whether to retry, and logs err (it is the store's
// error, which may name the bucket; never put it in the manifest).
func (c *Checker) Check(ctx context.Context, obj Object) (*Check, int64, error) {
	o := &objReader{ctx: ctx, r: obj.R, size: obj.Size, budget: c.cfg.MaxBytes}
	ck := &Check{ContentType: obj.ContentType, Problems: []Problem{}}
	err := c.check(o, ck)
	var ioe *ioError
	if errors.As(err, &ioe) {
		return nil, o.read, ioe.err
	}
	if err != nil {
		what := "the file"
		if ck.Type != "" {
			what = "this " + describe(ck.Type)
		}
		ck.add(CodeUnreadable, SeverityError, unreadableMessage(what, err))
	}
	c.contentType(ck)
	if err == nil {
		c.verdicts(ck)
	}
	return ck, o.read, nil
}

func (c *Checker) check(o *objReader, ck *Check) error {
	if o.size <= 0 {
		return errors.New("the object is empty")
	}
	head, err := o.at(0, min(o.size, c.cfg.HeadSize))
	if err != nil {
		return err
	}
	typ, iso := sniff(head)
	ck.Type = typ
	switch {
	case iso:
		return c.checkMP4(o, ck)
	case typ == typeJPEG, typ == typePNG, typ == typeGIF, typ == typeWebP, typ == typeTIFF, typ == typeBMP:
		return c.checkImage(o, ck)
	case typ == "":
		return errors.New("its first bytes match no known image or video format")
	}
	return nil // text, PDF…: the sniffed type is all we report
}

func unreadableMessage(what string, err error) string {
	switch {
	case errors.Is(err, errBudget):
		return fmt.Sprintf("Checking %s needs more bytes than the check may read; its header or index is unusually large or damaged. Re-export it with a standard encoder.", what)
	case errors.Is(err, errPastEnd):
		return fmt.Sprintf("%s points past its own end: it is truncated or damaged (an interrupted upload?). Upload it again from the original.", capitalize(what))
	}
	return fmt.Sprintf("%s cannot be read (%s). Open it locally; if it does not open either, re-export or re-upload it from the original.", capitalize(what), detail(err))
}

// detail keeps a parser's error fit for a customer: printable ASCII, short.
// (Parser errors may quote hostile bytes; they never hold a secret, since
// store errors are returned to the caller, not put in a Check.)
func detail(err error) string {
	s := err.Error()
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 160; i++ {
		if s[i] >= 0x20 && s[i] < 0x7f {
			b.WriteByte(s[i])
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func describe(typ string) string {
	switch typ {
	case typeJPEG:
		return "JPEG"
	case typePNG:
		return "PNG"
	case typeGIF:
		return "GIF"
	case typeWebP:
		return "WebP image"
	case typeTIFF:
		return "TIFF image"
	case typeBMP:
		return "BMP image"
	case typeMP4:
		return "MP4"
	case "video/quicktime":
		return "QuickTime movie"
	}
	return typ + " file"
}

// equivalentTypes maps stored Content-Types browsers treat as the sniffed one.
var equivalentTypes = map[string]string{
	"image/jpg":       typeJPEG,
	"image/pjpeg":     typeJPEG,
	"image/x-png":     typePNG,
	"image/x-ms-bmp":  typeBMP,
	"image/x-bmp":     typeBMP,
	"video/x-m4v":     typeMP4,
	"application/mp4": typeMP4,
}

// contentType adds content_type_mismatch when the stored Content-Type is
// not what the bytes are: a browser given binary/octet-stream downloads the
// file instead of showing it, and refuses it as an <img> or <video> under
// X-Content-Type-Options: nosniff.
func (c *Checker) contentType(ck *Check) {
	if ck.Type == "" {
		return
	}
	stored, _, err := mime.ParseMediaType(ck.ContentType)
	if err != nil {
		stored = ""
	}
	stored = strings.ToLower(stored)
	sniffed, _, _ := mime.ParseMediaType(ck.Type)
	if eq, ok := equivalentTypes[stored]; ok {
		stored = eq
	}
	if stored == sniffed {
		return
	}
	if !strings.HasPrefix(sniffed, "image/") && !strings.HasPrefix(sniffed, "video/") && !strings.HasPrefix(sniffed, "audio/") {
		return // text and documents: not an asset this check judges
	}
	storedName := "no Content-Type"
	if stored != "" {
		storedName = "Content-Type " + stored
	}
	ck.add(CodeContentTypeMismatch, SeverityError, fmt.Sprintf(
		"The object is stored with %s but its bytes are %s, so browsers may download it instead of showing it. "+
			"Set the stored Content-Type to %s (e.g. `aws s3 cp s3://BUCKET/KEY s3://BUCKET/KEY --content-type %s --metadata-directive REPLACE`, "+
			"or `gsutil setmeta -h \"Content-Type:%s\"`, or `az storage blob update --content-type %s`).",
		storedName, sniffed, sniffed, sniffed, sniffed, sniffed))
}

// The ffmpeg line that makes any video play in every browser.
const reencode = "`ffmpeg -i in.mp4 -c:v libx264 -profile:v high -pix_fmt yuv420p -c:a aac -movflags +faststart -brand mp42 out.mp4`"

// orientations says what each EXIF orientation asks a viewer to do (EXIF 2.32, 4.6.5).
var orientations = [9]string{
	2: "mirrored left to right",
	3: "rotated 180°",
	4: "mirrored top to bottom",
	5: "mirrored and rotated 90° counter-clockwise",
	6: "rotated 90° clockwise",
	7: "mirrored and rotated 90° clockwise",
	8: "rotated 90° counter-clockwise",
}

// verdicts turns the facts into problems.
func (c *Checker) verdicts(ck *Check) {
	if o := ck.Orientation; o > 1 {
		how := "transformed"
		if o < len(orientations) {
			how = orientations[o]
		}
		ck.add(CodeEXIFOrientation, SeverityWarn, fmt.Sprintf(
			"The image carries EXIF orientation %d (to be shown %s). Browsers apply it, but tools that read the pixels (canvas, annotation overlays, training pipelines) "+
				"see the stored pixels, so boxes and coordinates may not line up. Rotate the pixels and reset the tag: "+
				"`magick in.jpg -auto-orient out.jpg` (or `exiftran -ai in.jpg`), then check with `exiftool -Orientation -n out.jpg`; "+
				"if the pixels are already upright, only reset the tag: `exiftool -Orientation=1 -n -overwrite_original in.jpg`.", o, how))
	}
	v := ck.Video
	if v == nil {
		return
	}
	switch {
	case v.Codec == "":
		ck.add(CodeVideoCodec, SeverityError, "The file has no video track. Export it again with its video, e.g. "+reencode+".")
	case v.Codec == "avc1" || v.Codec == "avc3":
		switch v.profile {
		case 110, 122, 244, 44:
			ck.add(CodeVideoCodec, SeverityError, fmt.Sprintf(
				"The video is H.264 %s profile, which browsers do not decode (they play Baseline, Main and High, 8-bit 4:2:0). Re-encode it: %s.",
				avcProfileName(v.profile), reencode))
		}
	case v.Codec == "hvc1" || v.Codec == "hev1" || v.Codec == "dvh1" || v.Codec == "dvhe":
		ck.add(CodeVideoCodec, SeverityError,
			"The video is HEVC (H.265), which Firefox does not play and Chrome and Edge play only where the hardware decodes it. Re-encode it to H.264: "+reencode+".")
	case v.Codec == "av01":
		ck.add(CodeVideoCodec, SeverityWarn,
			"The video is AV1, which Safari plays only on devices with hardware AV1 decoding (iPhone 15 Pro, M3 Macs and later). For every browser, re-encode it to H.264: "+reencode+".")
	case v.Codec == "vp09":
		ck.add(CodeVideoCodec, SeverityWarn,
			"The video is VP9 in MP4, which older Safari versions do not play. For every browser, re-encode it to H.264: "+reencode+".")
	default:
		ck.add(CodeVideoCodec, SeverityError, fmt.Sprintf(
			"The video codec %q does not play in every browser. Re-encode it to H.264: %s.", v.Codec, reencode))
	}
	if v.PixFmt != "" && v.PixFmt != "yuv420p" && v.PixFmt != "yuvj420p" {
		ck.add(CodePixelFormat, SeverityError, fmt.Sprintf(
			"The video's pixel format is %s; browsers only play 8-bit 4:2:0 (yuv420p) reliably. Re-encode it with `-pix_fmt yuv420p`: %s.", v.PixFmt, reencode))
	}
	if (v.Brand != "mp42" && ck.Type == typeMP4) || ck.Type == "video/quicktime" {
		brand := strings.TrimSpace(v.Brand)
		if brand == "" {
			brand = "none"
		}
		ck.add(CodeMP4Brand, SeverityWarn, fmt.Sprintf(
			"The file's major brand is %q, not \"mp42\"; some players and platforms (older iOS, smart TVs, upload validators) expect mp42. "+
				"Re-mux it without re-encoding: `ffmpeg -i in.mp4 -c copy -brand mp42 -movflags +faststart out.mp4`.", brand))
	}
	if !v.Faststart {
		ck.add(CodeMoovAtEnd, SeverityWarn,
			"The video's index (moov box) comes after its media data, so a browser must fetch the end of the file before it can start playing. "+
				"Re-mux it without re-encoding: `ffmpeg -i in.mp4 -c copy -movflags +faststart out.mp4`.")
	}
}

func avcProfileName(p uint32) string {
	switch p {
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4 Predictive"
	case 44:
		return "CAVLC 4:4:4 Intra"
	}
	return fmt.Sprintf("profile %d", p)
}
