package assets

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// Detected types.
const (
	typeJPEG = "image/jpeg"
	typePNG  = "image/png"
	typeGIF  = "image/gif"
	typeWebP = "image/webp"
	typeTIFF = "image/tiff"
	typeBMP  = "image/bmp"
	typeMP4  = "video/mp4"
)

// sniff names the format of an object from its first bytes. isoBMFF is true
// for an ISO base media file (MP4, MOV, HEIF…), whose type depends on its brand.
func sniff(head []byte) (typ string, isoBMFF bool) {
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return typeJPEG, false
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return typePNG, false
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return typeGIF, false
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return typeWebP, false
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return typeTIFF, false
	case len(head) >= 14 && head[0] == 'B' && head[1] == 'M':
		return typeBMP, false
	}
	if len(head) >= 8 {
		switch string(head[4:8]) {
		case "ftyp", "moov", "mdat", "free", "skip", "wide", "styp":
			return typeMP4, true
		}
	}
	if len(head) == 0 {
		return "", false
	}
	t := http.DetectContentType(head)
	if t == "application/octet-stream" {
		return "", false
	}
	return t, false
}

// checkImage fills width, height and orientation of an image.
func (c *Checker) checkImage(o *objReader, ck *Check) error {
	var decode func(io.Reader) (image.Config, error)
	switch ck.Type {
	case typeJPEG:
		decode = jpeg.DecodeConfig
	case typePNG:
		decode = png.DecodeConfig
	case typeGIF:
		decode = gif.DecodeConfig
	case typeWebP:
		decode = webp.DecodeConfig
	case typeTIFF:
		decode = tiff.DecodeConfig
	case typeBMP:
		decode = bmp.DecodeConfig
	}
	var cfg image.Config
	var err error
	var orient int
	if ck.Type == typeJPEG {
		var head []byte
		o.minFetch = 4 << 10 // segment headers past the head: read a little ahead
		head, orient, err = jpegHead(o)
		if err != nil {
			return err
		}
		cfg, err = decode(bytes.NewReader(head))
	} else {
		cfg, err = decode(&stream{o: o, step: c.cfg.HeadSize})
	}
	var unsupported tiff.UnsupportedError
	if ck.Type == typeTIFF && errors.As(err, &unsupported) {
		// x/image/tiff decodes a subset of TIFF; the size is in IFD0 anyway.
		cfg.Width, cfg.Height, err = tiffSize(o.at)
	}
	if err != nil {
		return err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return errors.New("the image has no pixels")
	}
	ck.Width, ck.Height = cfg.Width, cfg.Height
	switch ck.Type {
	case typePNG:
		orient, err = pngOrientation(o)
	case typeWebP:
		orient, err = webpOrientation(o)
	case typeTIFF:
		orient, err = tiffOrientation(o.at)
	}
	if err != nil {
		return err
	}
	ck.Orientation = orient
	return nil
}

// jpegHead walks the JPEG markers up to the first SOS and returns the
// bytes jpeg.DecodeConfig needs (SOI, then every segment but the APPn and
// COM it skips unread, through the SOS header) and the EXIF orientation from the
// first APP1 "Exif" segment wherever it sits among the APPn segments (a JFIF
// APP0 or an APP13 may come first). Skipped segments are jumped over by
// their length, so a 500 KB ICC profile costs one 4-byte header read.
func jpegHead(o *objReader) (head []byte, orient int, err error) {
	head = []byte{0xFF, 0xD8}
	off := int64(2)
	exifSeen, sof := false, false
	for i := 0; i < 1024; i++ {
		h, err := o.at(off, 4)
		if err != nil {
			return nil, 0, err
		}
		if h[0] != 0xFF {
			return nil, 0, errors.New("JPEG marker expected")
		}
		m := h[1]
		if m == 0xFF { // fill byte
			off++
			continue
		}
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) { // no length
			off += 2
			continue
		}
		if m == 0xD9 {
			return nil, 0, errors.New("JPEG ends before its first scan")
		}
		n := int64(binary.BigEndian.Uint16(h[2:4]))
		if n < 2 {
			return nil, 0, errors.New("JPEG segment length below 2")
		}
		if m == 0xDA { // SOS: DecodeConfig stops at its header
			if !sof {
				return nil, 0, errors.New("JPEG has no frame header before its scan")
			}
			return append(head, h...), orient, nil
		}
		sof = sof || (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)
		keep := true
		switch {
		case m == 0xE1 && !exifSeen && n >= 2+6+8:
			keep = false
			seg, err := o.at(off+4, n-2)
			if err != nil {
				return nil, 0, err
			}
			if string(seg[:6]) == "Exif\x00\x00" {
				exifSeen = true
				if orient, err = exifOrientation(bytes.Clone(seg)); err != nil {
					return nil, 0, err
				}
			}
		case m == 0xE0 || m == 0xEE:
			// JFIF APP0 and Adobe APP14: DecodeConfig reads them (both are
			// a few bytes); a big APP0 (a JFXX thumbnail) is skipped.
			keep = n <= 64
		case m >= 0xE1 && m <= 0xEF, m == 0xFE:
			keep = false // other APPn and COM: DecodeConfig skips them unread
		}
		if keep {
			seg, err := o.at(off, 2+n)
			if err != nil {
				return nil, 0, err
			}
			head = append(head, seg...)
			if len(head) > 1<<20 {
				return nil, 0, errors.New("JPEG tables larger than 1 MiB")
			}
		}
		off += 2 + n
	}
	return nil, 0, errors.New("too many JPEG segments")
}

// pngOrientation looks for an eXIf chunk before the first IDAT (PNG 3rd
// edition, eXIf must precede IDAT to be honoured), skipping other chunks by offset.
func pngOrientation(o *objReader) (int, error) {
	off := int64(8)
	for i := 0; i < 1024; i++ {
		h, err := o.at(off, 8)
		if err != nil {
			return 0, err
		}
		n := int64(binary.BigEndian.Uint32(h[0:4]))
		switch string(h[4:8]) {
		case "IDAT", "IEND":
			return 0, nil
		case "eXIf":
			b, err := o.at(off+8, n)
			if err != nil {
				return 0, err
			}
			return exifOrientation(bytes.Clone(b))
		}
		off += 12 + n
	}
	return 0, errors.New("too many PNG chunks")
}

// webpOrientation walks the RIFF chunks of an extended WebP (VP8X) for its
// EXIF chunk, which writers put after the image data; chunks are skipped by
// offset, so only their 8-byte headers are read.
func webpOrientation(o *objReader) (int, error) {
	h, err := o.at(12, 8)
	if err != nil || string(h[0:4]) != "VP8X" {
		return 0, err // simple WebP: no metadata
	}
	flags, err := o.at(20, 1)
	if err != nil {
		return 0, err
	}
	if flags[0]&0x08 == 0 { // EXIF flag
		return 0, nil
	}
	off := int64(12)
	for i := 0; i < 1024 && off+8 <= o.size; i++ {
		h, err := o.at(off, 8)
		if err != nil {
			return 0, err
		}
		n := int64(binary.LittleEndian.Uint32(h[4:8]))
		if string(h[0:4]) == "EXIF" {
			b, err := o.at(off+8, n)
			if err != nil {
				return 0, err
			}
			return exifOrientation(bytes.Clone(b))
		}
		off += 8 + n + n&1
	}
	return 0, nil
}
