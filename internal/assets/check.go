// Package assets checks stored images and videos from as few bytes as their
// format needs: the head of an image for its dimensions and EXIF orientation,
// the ftyp and moov boxes of an MP4 wherever they sit. It reads through a
// small RangeReader so the same checker works over S3, GCS, Azure, local
// files or an HTTP server honouring Range, and it never reads a whole object.
package assets

import (
	"context"
	"errors"
	"io"
)

// RangeReader reads n bytes at offset off of one object. It may return fewer
// bytes only at the end of the object. Declared here so the listing side can
// adapt whatever client it holds (an S3 GetObject with Range, a file).
type RangeReader interface {
	ReadRange(ctx context.Context, off, n int64) ([]byte, error)
}

// RangeReaderFunc adapts a function to RangeReader.
type RangeReaderFunc func(ctx context.Context, off, n int64) ([]byte, error)

// ReadRange calls f.
func (f RangeReaderFunc) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	return f(ctx, off, n)
}

// ReaderAtRange adapts an io.ReaderAt (an *os.File, a *bytes.Reader) to RangeReader.
type ReaderAtRange struct{ R io.ReaderAt }

// ReadRange reads [off, off+n) from the ReaderAt; a short read at EOF is not an error.
func (r ReaderAtRange) ReadRange(ctx context.Context, off, n int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	k, err := r.R.ReadAt(buf, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:k], err
}

// Object is one stored object to check: its size and stored Content-Type come
// from the listing, its bytes from R.
type Object struct {
	Key         string
	Size        int64
	ContentType string
	R           RangeReader
}

// Check is the "check" member of a manifest line (PRODUCT.md, "Asset sync and checks").
type Check struct {
	Type        string    `json:"type"`
	ContentType string    `json:"content_type"`
	Width       int       `json:"width,omitempty"`
	Height      int       `json:"height,omitempty"`
	Orientation int       `json:"orientation,omitempty"`
	Video       *Video    `json:"video,omitempty"`
	Problems    []Problem `json:"problems"`
}

// Video holds the facts of an MP4 that decide whether every browser plays it.
type Video struct {
	Brand     string  `json:"brand"`
	Codec     string  `json:"codec"`
	PixFmt    string  `json:"pix_fmt"`
	Faststart bool    `json:"faststart"`
	DurationS float64 `json:"duration_s"`
	// Fragmented is true for a fragmented MP4 (moov with mvex, media in moof+mdat).
	Fragmented bool `json:"fragmented,omitempty"`

	profile uint32 // H.264 profile_idc, for the codec verdict
}

// Severity of a Problem.
const (
	SeverityError = "error"
	SeverityWarn  = "warn"
)

// Problem codes (PRODUCT.md names them; keep them exactly).
const (
	CodeEXIFOrientation     = "exif_orientation"
	CodePixelFormat         = "pixel_format"
	CodeVideoCodec          = "video_codec"
	CodeMP4Brand            = "mp4_brand"
	CodeMoovAtEnd           = "moov_at_end"
	CodeContentTypeMismatch = "content_type_mismatch"
	CodeUnreadable          = "unreadable"
)

// Problem is one thing a customer should fix, with the fix in Message.
type Problem struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// HasErrors reports whether any problem has severity "error".
func (c *Check) HasErrors() bool {
	for _, p := range c.Problems {
		if p.Severity == SeverityError {
			return true
		}
	}
	return false
}

func (c *Check) add(code, sev, msg string) {
	c.Problems = append(c.Problems, Problem{Code: code, Severity: sev, Message: msg})
}
