package assets

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errNoTIFF: the bytes do not start with a TIFF header ("II*\0" or "MM\0*").
var errNoTIFF = errors.New("no TIFF header")

// maxIFDEntries bounds IFD0; real files have a few dozen entries.
const maxIFDEntries = 1024

// tiffIFD0 returns the SHORT or LONG values of the wanted tags of IFD0 of
// a TIFF structure (an EXIF block after its "Exif\0\0" prefix, or a TIFF
// file), reading through read, which returns exactly n bytes at off or an
// error. It reads the 8-byte header and IFD0 only: at most 2+12*1024 bytes.
// A tag absent from IFD0 is absent from the map. Both byte orders are
// handled (TIFF 6.0, section 2).
func tiffIFD0(read func(off, n int64) ([]byte, error), want ...uint16) (map[uint16]uint32, error) {
	h, err := read(0, 8)
	if err != nil {
		return nil, err
	}
	var bo binary.ByteOrder
	switch {
	case h[0] == 'I' && h[1] == 'I' && h[2] == 42 && h[3] == 0:
		bo = binary.LittleEndian
	case h[0] == 'M' && h[1] == 'M' && h[2] == 0 && h[3] == 42:
		bo = binary.BigEndian
	default:
		return nil, errNoTIFF
	}
	ifd := int64(bo.Uint32(h[4:8]))
	if ifd < 8 {
		return nil, errors.New("IFD0 offset inside the header")
	}
	c, err := read(ifd, 2)
	if err != nil {
		return nil, err
	}
	count := int64(bo.Uint16(c))
	if count > maxIFDEntries {
		return nil, errors.New("IFD0 has too many entries")
	}
	entries, err := read(ifd+2, 12*count)
	if err != nil {
		return nil, err
	}
	got := map[uint16]uint32{}
	for i := int64(0); i < count; i++ {
		e := entries[12*i : 12*i+12]
		tag := bo.Uint16(e[0:2])
		wanted := false
		for _, w := range want {
			wanted = wanted || w == tag
		}
		if !wanted {
			continue
		}
		if _, dup := got[tag]; dup {
			continue // first one wins, as in exiftool
		}
		typ, n := bo.Uint16(e[2:4]), bo.Uint32(e[4:8])
		if n != 1 {
			return nil, fmt.Errorf("TIFF tag 0x%04x count is not 1", tag)
		}
		switch typ {
		case 3: // SHORT, left-justified in the value field
			got[tag] = uint32(bo.Uint16(e[8:10]))
		case 4: // LONG (broken writers use it for Orientation too)
			got[tag] = bo.Uint32(e[8:12])
		default:
			return nil, fmt.Errorf("TIFF tag 0x%04x has an unexpected type", tag)
		}
	}
	return got, nil
}

const (
	tagImageWidth  = 0x0100
	tagImageLength = 0x0101
	tagOrientation = 0x0112
)

// tiffOrientation returns the Orientation tag of IFD0, 0 when it has none.
func tiffOrientation(read func(off, n int64) ([]byte, error)) (int, error) {
	t, err := tiffIFD0(read, tagOrientation)
	if err != nil {
		return 0, err
	}
	if t[tagOrientation] > 0xFFFF {
		return 0, errors.New("orientation value out of range")
	}
	return int(t[tagOrientation]), nil
}

// tiffSize returns ImageWidth and ImageLength of IFD0.
func tiffSize(read func(off, n int64) ([]byte, error)) (int, int, error) {
	t, err := tiffIFD0(read, tagImageWidth, tagImageLength)
	if err != nil {
		return 0, 0, err
	}
	w, h := t[tagImageWidth], t[tagImageLength]
	if w == 0 || h == 0 || w > 1<<30 || h > 1<<30 {
		return 0, 0, errors.New("TIFF has no usable image size")
	}
	return int(w), int(h), nil
}

// sliceRead is a read function over an in-memory block, for tiffOrientation.
func sliceRead(b []byte) func(off, n int64) ([]byte, error) {
	return func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off > int64(len(b)) || n > int64(len(b))-off {
			return nil, errPastEnd
		}
		return b[off : off+n], nil
	}
}

// exifOrientation parses an EXIF block as found in a JPEG APP1 segment
// (after the "Exif\0\0" identifier), a PNG eXIf chunk or a WebP EXIF chunk
// (some writers keep the identifier there too).
func exifOrientation(b []byte) (int, error) {
	if len(b) >= 6 && string(b[:6]) == "Exif\x00\x00" {
		b = b[6:]
	}
	return tiffOrientation(sliceRead(b))
}
