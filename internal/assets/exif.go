package assets

import (
	"encoding/binary"
	"errors"
)

// errNoTIFF: the bytes do not start with a TIFF header ("II*\0" or "MM\0*").
var errNoTIFF = errors.New("no TIFF header")

// maxIFDEntries bounds IFD0; real files have a few dozen entries.
const maxIFDEntries = 1024

// tiffOrientation returns the Orientation tag (0x0112) of IFD0 of a TIFF
// structure (an EXIF block after its "Exif\0\0" prefix, or a TIFF file),
// reading it through read, which returns exactly n bytes at off or an error.
// It reads the 8-byte header and IFD0 only: at most 2+12*1024 bytes. It
// returns 0, nil when IFD0 has no Orientation. Both byte orders are handled
// (TIFF 6.0, section 2); the value may be a SHORT or, in broken writers, a LONG.
func tiffOrientation(read func(off, n int64) ([]byte, error)) (int, error) {
	h, err := read(0, 8)
	if err != nil {
		return 0, err
	}
	var bo binary.ByteOrder
	switch {
	case h[0] == 'I' && h[1] == 'I' && h[2] == 42 && h[3] == 0:
		bo = binary.LittleEndian
	case h[0] == 'M' && h[1] == 'M' && h[2] == 0 && h[3] == 42:
		bo = binary.BigEndian
	default:
		return 0, errNoTIFF
	}
	ifd := int64(bo.Uint32(h[4:8]))
	if ifd < 8 {
		return 0, errors.New("IFD0 offset inside the header")
	}
	c, err := read(ifd, 2)
	if err != nil {
		return 0, err
	}
	count := int64(bo.Uint16(c))
	if count > maxIFDEntries {
		return 0, errors.New("IFD0 has too many entries")
	}
	entries, err := read(ifd+2, 12*count)
	if err != nil {
		return 0, err
	}
	for i := int64(0); i < count; i++ {
		e := entries[12*i : 12*i+12]
		if bo.Uint16(e[0:2]) != 0x0112 {
			continue
		}
		typ, n := bo.Uint16(e[2:4]), bo.Uint32(e[4:8])
		if n != 1 {
			return 0, errors.New("orientation tag count is not 1")
		}
		switch typ {
		case 3: // SHORT, left-justified in the value field
			return int(bo.Uint16(e[8:10])), nil
		case 4: // LONG
			v := bo.Uint32(e[8:12])
			if v > 0xFFFF {
				return 0, errors.New("orientation value out of range")
			}
			return int(v), nil
		default:
			return 0, errors.New("orientation tag has an unexpected type")
		}
	}
	return 0, nil
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
